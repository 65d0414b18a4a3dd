"""Error parity with PostgREST 12 over real HTTP and a real Postgres: SQLSTATEs raised by real
statements (constraint violations, casts, a read-only transaction, run-time lookups) and by
RAISE (P0001, PTxyz, SQLSTATE 'PGRST' with its headers, insufficient_privilege) answered with
PostgREST's status and {code, message, details, hint}; the proxy's own errors with PostgREST's
codes (PGRST100/101/102/107/202/203); Proxy-Status on what the proxy refused itself; and the
same error objects as @supabase/postgrest-js reads them (node/postgrest_errors.mjs)."""
import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from test_api import call, config, start_proxy, stop_proxy, token
from zg import ROOT, RawConn, http, request_bytes, run_cli, wait_sleeping

FUNCTIONS = ["to_int", "claim", "adopt", "refuse", "pay", "full_control", "members_only",
             "write_read_only", "cardinality", "missing_table", "missing_function",
             "admin_shutdown", "twin", "nap"]


@pytest.fixture(scope="module")
def ep(cluster):
    cluster.psql(Path(__file__).with_name("postgrest_errors_fixture.sql").read_text())
    p = start_proxy(cluster, "postgrest-errors", rpc={"schema": "perr", "functions": FUNCTIONS})
    yield p
    stop_proxy(p)


def rpc(p, method, path, body=None, tok="alice", headers=None):
    return call(p.port, method, "/rpc/" + path, token(tok) if tok else None, body, headers)


def pgrst(status, code, message, details=None, hint=None):
    return status, {"code": code, "message": message, "details": details, "hint": hint}


# (method, path, body) -> (status, the whole error object PostgREST would send)
DATABASE_ERRORS = [
    (("GET", "to_int?t=abc", None),
     pgrst(400, "22P02", 'invalid input syntax for type integer: "abc"')),
    (("POST", "claim", {"k": "taken"}),
     pgrst(409, "23505", 'duplicate key value violates unique constraint "uniq_pkey"',
           "Key (k)=(taken) already exists.")),
    (("POST", "adopt", {"parent": 9}),
     pgrst(409, "23503", 'insert or update on table "child" violates foreign key constraint '
           '"child_parent_id_fkey"', 'Key (parent_id)=(9) is not present in table "parent".')),
    (("GET", "refuse?msg=I%20refuse!", None),
     pgrst(400, "P0001", "I refuse!", "Pretty simple", "There is nothing you can do.")),
    (("GET", "pay", None),
     pgrst(402, "PT402", "Payment Required", "Quota exceeded", "Upgrade your plan")),
    (("GET", "pay?code=PT418", None),
     pgrst(418, "PT418", "Payment Required", "Quota exceeded", "Upgrade your plan")),
    (("GET", "pay?code=PT4X2", None),
     pgrst(500, "PT4X2", "Payment Required", "Quota exceeded", "Upgrade your plan")),
    (("GET", "full_control", None),
     pgrst(402, "123", "Payment Required", "Quota exceeded", "Upgrade your plan")),
    (("GET", "full_control?good=false", None),
     pgrst(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
           "Invalid JSON value for MESSAGE: 'not json'",
           "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional "
           "keys: 'details', 'hint'.")),
    (("GET", "members_only", None),
     pgrst(403, "42501", "permission denied for members_only")),
    (("POST", "write_read_only", {}),
     pgrst(405, "25006", "cannot execute INSERT in a read-only transaction")),
    (("GET", "cardinality?safeupdate=true", None),
     pgrst(400, "21000", "DELETE requires a WHERE clause")),
    (("GET", "cardinality?safeupdate=false", None),
     pgrst(500, "21000", "more than one row returned by a subquery used as an expression")),
    (("GET", "missing_table", None),
     pgrst(404, "42P01", 'relation "perr.no_such_table" does not exist')),
    (("GET", "missing_function", None),
     pgrst(404, "42883", "function perr.no_such_function() does not exist",
           None, "No function matches the given name and argument types. You might need to add "
           "explicit type casts.")),
    (("POST", "admin_shutdown", {}),
     pgrst(503, "57P01", "terminating connection due to administrator command")),
]


@pytest.mark.parametrize("request_,expected", DATABASE_ERRORS,
                         ids=[r[0][1].split("?")[0] + ":" + r[1][1]["code"] for r in DATABASE_ERRORS])
def test_database_errors_answer_as_postgrest(ep, request_, expected):
    method, path, body = request_
    status, headers, got = rpc(ep, method, path, body)
    assert (status, got) == expected, (status, got)
    assert headers["content-type"].startswith("application/json")
    assert "proxy-status" not in headers  # the database answered, not the proxy
    if status == 503:
        assert headers["retry-after"] == "1"


def test_raise_pgrst_sets_the_headers_a_function_may_set(ep):
    status, headers, _ = rpc(ep, "GET", "full_control")
    assert status == 402 and headers["x-powered-by"] == "Nerd Rage"
    assert headers["content-length"] != "0"  # framing stays the proxy's


def test_the_proxys_own_errors_have_postgrest_codes(ep):
    # PGRST202: no such function, or no overload with these argument names.
    status, _, body = rpc(ep, "GET", "nope?a=1")
    assert status == 404 and body["code"] == "PGRST202"
    assert body["message"] == "Could not find the function perr.nope(a) in the schema cache"
    status, _, body = rpc(ep, "GET", "to_int?s=1")
    assert status == 404 and body["code"] == "PGRST202"
    # PGRST203: two overloads fit as well as each other.
    status, _, body = rpc(ep, "GET", "twin?x=1")
    assert status == 300 and body == {
        "code": "PGRST203",
        "message": "Could not choose the best candidate function between: perr.twin(x => integer), "
                   "perr.twin(x => text)",
        "details": None,
        "hint": "Try renaming the parameters or the function itself in the database so function "
                "overloading can be resolved"}
    # PGRST101: a method /rpc does not take.
    for method in ("PUT", "PATCH", "DELETE"):
        status, headers, body = rpc(ep, method, "to_int?t=1")
        assert status == 405 and body["code"] == "PGRST101", (method, body)
        assert body["message"] == "Cannot use the %s method on RPC" % method
        assert headers["allow"] == "GET, HEAD, POST"
    # PGRST100: a query string that cannot be read; PGRST102: a body that cannot be.
    status, _, body = rpc(ep, "GET", "to_int?t=%zz")
    assert status == 400 and body["code"] == "PGRST100"
    status, _, body = rpc(ep, "POST", "to_int", "{not json",
                          headers={"Content-Type": "application/json"})
    assert status == 400 and body["code"] == "PGRST102"
    # A Content-Type /rpc does not read: 415 PGRST102 (PostgREST: 400 PGRST102; docs/API.md).
    status, _, body = rpc(ep, "POST", "to_int", "x", headers={"Content-Type": "application/x-foo"})
    assert status == 415 and body["code"] == "PGRST102", (status, body)
    # text/xml goes to a function with one unnamed xml parameter; to_int(t text) is none, so
    # no function matches (PostgREST 12, Plan.hs: hasSingleUnnamedParam): 404 PGRST202.
    status, _, body = rpc(ep, "POST", "to_int", "<t>1</t>", headers={"Content-Type": "text/xml"})
    assert status == 404 and body["code"] == "PGRST202", (status, body)


def test_proxy_status_on_what_the_proxy_refused_itself(cluster, ep):
    """RFC 9209 Proxy-Status on the proxy's own refusals: a request it cannot take
    (http_request_error), a rate limit (http_request_denied), a deadline (http_response_timeout);
    none on answers the database gave."""
    c = RawConn(ep.port)
    try:
        c.send(b"GARBAGE\r\n\r\n")
        status, headers, _ = c.read_response()
        assert status == 400
        assert headers["proxy-status"] == 'zonegate; error=http_request_error; details="malformed_request"'
    finally:
        c.close()
    c = RawConn(ep.port)
    try:
        c.send(request_bytes("GET", "/" + "a" * 9000))
        status, headers, _ = c.read_response()
        assert status == 414 and headers["proxy-status"].startswith("zonegate; error=http_request_error")
    finally:
        c.close()
    p = start_proxy(cluster, "errors-limits", rpc={"schema": "perr", "functions": FUNCTIONS},
                    rate_limit={"policies": {"rpc": {"routes": ["/rpc/*"], "rate": "1/min"}}},
                    admin={"login_rate": "1/min"})
    try:
        assert rpc(p, "GET", "to_int?t=1")[0] == 200
        status, headers, body = rpc(p, "GET", "to_int?t=1")
        assert status == 429 and body["code"] == "rate_limited"
        assert headers["proxy-status"] == 'zonegate; error=http_request_denied; details="rate limit rpc"'
        # The dashboard's sign-in throttle too.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert http(p.admin_port, "POST", "/admin/login", form, "token=wrong")[0] == 401
        status, headers, _ = http(p.admin_port, "POST", "/admin/login", form, "token=wrong")
        assert status == 429
        assert headers["proxy-status"] == 'zonegate; error=http_request_denied; details="admin.login_rate"'
    finally:
        stop_proxy(p)
    p = start_proxy(cluster, "errors-deadline", rpc={"schema": "perr", "functions": FUNCTIONS},
                    resilience={"deadlines": {"rpc": "300ms"}})
    try:
        status, headers, body = rpc(p, "GET", "nap?seconds=5")
        assert status == 504 and body["code"] == "57014"
        assert headers["proxy-status"].startswith("zonegate; error=http_response_timeout")
    finally:
        stop_proxy(p)


def node(script, *args):
    out = subprocess.run(["node", str(ROOT / "tests" / "integration" / "node" / script),
                          *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_postgrest_js_reads_the_same_error_objects(ep):
    """@supabase/postgrest-js, as apps call it: error.code/message/details/hint and the status
    for 22P02, 23505, P0001, PGRST202, a PT4xx status and 42501."""
    got = node("postgrest_errors.mjs", ep.base, token("alice"))
    expect = {
        "cast_22P02": (400, {"code": "22P02", "message": 'invalid input syntax for type integer: "abc"',
                             "details": None, "hint": None}),
        "unique_23505": (409, {"code": "23505",
                               "message": 'duplicate key value violates unique constraint "uniq_pkey"',
                               "details": "Key (k)=(taken) already exists.", "hint": None}),
        "raise_P0001": (400, {"code": "P0001", "message": "I refuse!", "details": "Pretty simple",
                              "hint": "There is nothing you can do."}),
        "unknown_PGRST202": (404, {"code": "PGRST202",
                                   "message": "Could not find the function perr.nope(a) in the schema cache",
                                   "details": None,
                                   "hint": "the function must exist and be listed in rpc.functions, "
                                           "with these argument names"}),
        "custom_PT402": (402, {"code": "PT402", "message": "Payment Required",
                               "details": "Quota exceeded", "hint": "Upgrade your plan"}),
        "privilege_42501": (403, {"code": "42501", "message": "permission denied for members_only",
                                  "details": None, "hint": None}),
    }
    for name, (status, error) in expect.items():
        assert got[name]["status"] == status, (name, got[name])
        assert got[name]["error"] == error, (name, got[name])
        assert got[name]["data"] is None


def anon_role_supported(cluster, tmp_path):
    """Whether this build has auth.anon_role (the roles work of issue 23)."""
    cfg = yaml.safe_load(config(cluster, auth={"anon_role": "perr_anon"}))
    f = tmp_path / "anon.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return run_cli(["--config", str(f), "--check-config"]).returncode == 0


def test_insufficient_privilege_is_401_for_the_anonymous_role(cluster, ep, tmp_path):
    """PostgREST: 42501 answers 401 (with WWW-Authenticate: Bearer) when the request runs as the
    anonymous role, 403 when it runs as any other. Without a token and without an anonymous
    role, the request is refused before the database (401)."""
    status, headers, body = rpc(ep, "GET", "members_only", tok=None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    if not anon_role_supported(cluster, tmp_path):
        # Before auth.anon_role, every call that reaches the database has a token: 403 (the
        # anonymous case is unit-tested in errors_test.cpp, ErrorParity).
        assert rpc(ep, "GET", "members_only")[0] == 403
        return
    cluster.psql("DO $$ BEGIN CREATE ROLE perr_anon NOLOGIN; EXCEPTION WHEN duplicate_object "
                 "THEN NULL; END $$; GRANT USAGE ON SCHEMA perr TO perr_anon; "
                 "GRANT perr_anon TO CURRENT_USER; "
                 "DO $$ BEGIN CREATE ROLE perr_user NOLOGIN; EXCEPTION WHEN duplicate_object "
                 "THEN NULL; END $$; GRANT USAGE ON SCHEMA perr TO perr_user; "
                 "GRANT perr_user TO CURRENT_USER")
    p = start_proxy(cluster, "errors-anon", rpc={"schema": "perr", "functions": FUNCTIONS},
                    auth={"anon_role": "perr_anon"})
    try:
        status, headers, body = rpc(p, "GET", "members_only", tok=None)
        assert status == 401 and body["code"] == "42501", (status, body)
        assert headers["www-authenticate"] == "Bearer"
        got = node("postgrest_errors.mjs", p.base, "")
        assert got["privilege_42501"]["status"] == 401
        assert got["privilege_42501"]["error"]["code"] == "42501"
        # PostgREST 12 (App.hs: authed = the request's role is not db-anon-role): a token
        # without a role claim runs as the anonymous role, so it is 401 too; a token whose
        # role claim names another role is authenticated: 403.
        status, headers, body = rpc(p, "GET", "members_only")
        assert status == 401 and body["code"] == "42501", (status, body)
        status, headers, body = call(p.port, "GET", "/rpc/members_only",
                                     token("alice", role="perr_user"))
        assert status == 403 and body["code"] == "42501"
    finally:
        stop_proxy(p)
