"""PostgREST's roles, request context and transactions on /rpc (issue 23, items 1, 2 and 5),
against a real Postgres and the real proxy logged in as a PostgREST-style authenticator
(zg_pgr_login: no superuser, a member of the roles tokens may name). Each request.* setting a
function sees; response.status and response.headers a function sets reaching the client, and a
bad one answered 500; rpc.pre_request refusing and leaving a setting; auth.anon_role for requests
without a token or without a subject; role claims that grant, deny, or name a role the proxy
may not switch to (401 before anything reaches Postgres); GET runs READ ONLY (a write is 25006),
POST commits, Prefer: tx=rollback rolls back; the per-user cache keyed by role; and
@supabase/postgrest-js as an anon client and as clients whose JWT role grants or denies."""
import json
import subprocess
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import yaml

from test_api import SECRET, call, stop_proxy
from zg import ROOT, Proxy, RawConn, http, request_bytes, wait_for

NODE = ROOT / "tests" / "integration" / "node"
FUNCTIONS = ["seen", "respond", "respond_void", "writer", "editor_only", "cached_role", "tagged"]
LOGIN = "zg_pgr_login"
ANON = "zg_pgr_anon"


def config(cluster, **over):
    cfg = {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 1},
        "database": {"conninfo": cluster.conninfo.replace("user=postgres", "user=" + LOGIN),
                     "pool": {"min": 1, "max": 2}},
        "auth": {"jwt": {"secret": SECRET}, "anon_role": ANON},
        "rpc": {"schema": "pgr", "functions": FUNCTIONS, "pre_request": "pre_check",
                "tx_end": "commit-allow-override"},
        "cache": {"rpc": {"cached_role": {"ttl": "60s", "depends_on": []},
                          "tagged": {"ttl": "60s", "depends_on": []}}},
        "log": {"level": "info"},
    }
    for k, v in over.items():
        for kk, vv in v.items():
            if vv is None:
                cfg[k].pop(kk, None)
            elif isinstance(vv, dict) and isinstance(cfg[k].get(kk), dict):
                cfg[k][kk] = {**cfg[k][kk], **vv}
            else:
                cfg[k][kk] = vv
    return yaml.safe_dump(cfg, allow_unicode=True)


def start(cluster, name, **over):
    p = Proxy(config(cluster, **over), name=name)
    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=20)
    return p


def jwt(sub="alice", role=None, ttl=3600, **claims):
    now = int(time.time())
    payload = {"iat": now, "exp": now + ttl, **claims}
    if sub is not None:
        payload["sub"] = sub
    if role is not None:
        payload["role"] = role
    return pyjwt.encode(payload, SECRET, algorithm="HS256")


def jobs(p):
    """zonegate_pool_jobs_total on the admin listener: every job sent to Postgres. The figure is
    published every 100 ms: read until two reads 300 ms apart agree, so that the jobs of the
    requests answered before the call are all in it."""
    def read():
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        for line in text.splitlines():
            if line.startswith("zonegate_pool_jobs_total "):
                return int(float(line.split()[1]))
        raise AssertionError("no zonegate_pool_jobs_total")
    last = read()
    while True:
        time.sleep(0.3)
        now = read()
        if now == last:
            return now
        last = now


def writes(cluster, v):
    return int(cluster.psql("SELECT count(*) FROM pgr.writes WHERE v = '%s'" % v))


@pytest.fixture(scope="module")
def pg(cluster):
    cluster.psql(Path(__file__).with_name("postgrest_context_fixture.sql").read_text())
    p = start(cluster, "pgr")
    yield p
    stop_proxy(p)


@pytest.fixture(scope="module")
def plain(cluster, pg):
    """No anon role, tx_end commit, no pre-request: today's /rpc with roles."""
    p = start(cluster, "pgr-plain", auth={"anon_role": None},
              rpc={"pre_request": None, "tx_end": None})
    yield p
    stop_proxy(p)


# ---------------------------------------------------------------- request context

def test_every_request_setting_reaches_the_function(pg):
    status, h, got = call(pg.port, "POST", "/rpc/seen", jwt("alice", "zg_pgr_user"), {},
                          headers={"X-Custom": "hello", "Cookie": "a=1; b = two words",
                                   "X-Twice": "x"})
    assert status == 200, got
    assert got["current_user"] == "zg_pgr_user" and got["session_user"] == LOGIN
    assert got["user_id"] == "alice"
    assert got["claims"]["sub"] == "alice" and got["claims"]["role"] == "zg_pgr_user"
    assert got["method"] == "POST" and got["path"] == "/rpc/seen"
    assert got["headers"]["x-custom"] == "hello" and got["headers"]["x-twice"] == "x"
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["authorization"].startswith("Bearer ")
    assert "cookie" not in got["headers"]
    assert got["cookies"] == {"a": "1", "b": "two words"}
    assert got["read_only"] == "off"
    # rpc.pre_request ran first, in the same transaction, as the same role.
    assert got["pre"] == "ran as zg_pgr_user"

    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt("bob", "zg_pgr_editor"))
    assert status == 200 and got["method"] == "GET" and got["read_only"] == "on", got
    assert got["current_user"] == "zg_pgr_editor" and got["user_id"] == "bob"
    assert got["cookies"] == {} and got["pre"] == "ran as zg_pgr_editor"
    status, h, body = http(pg.port, "HEAD", "/rpc/seen", {"Authorization": "Bearer " + jwt()})
    assert status == 200 and body == b"" and int(h["content-length"]) > 0


def test_nothing_outlives_the_request_on_the_pooled_connection(pg):
    call(pg.port, "POST", "/rpc/seen", jwt("alice", "zg_pgr_editor"), {}, headers={"X-Custom": "1"})
    for _ in range(4):  # the pool has at most two connections: each one is reused
        status, _, got = call(pg.port, "POST", "/rpc/seen", None, {})
        assert status == 200 and got["current_user"] == ANON, got
        assert got["user_id"] == "" and "x-custom" not in got["headers"]
        assert got["claims"] == {"role": ANON}


# ---------------------------------------------------------------- anonymous requests

def test_no_token_and_a_token_without_sub_run_as_anon_role(pg):
    status, _, got = call(pg.port, "GET", "/rpc/seen")
    assert status == 200, got
    assert got["current_user"] == ANON and got["session_user"] == LOGIN
    assert got["user_id"] == "" and got["claims"] == {"role": ANON}
    # A Supabase-style anon key: a role, no sub.
    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt(None, ANON, ref="abc"))
    assert status == 200 and got["current_user"] == ANON and got["user_id"] == ""
    assert got["claims"]["ref"] == "abc" and got["claims"]["role"] == ANON
    # Neither sub nor role: the anonymous role, written into the claims as PostgREST does.
    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt(None, None, ref="xyz"))
    assert status == 200 and got["current_user"] == ANON and got["claims"]["role"] == ANON
    # A service key: a role and no sub runs as that role.
    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt(None, "zg_pgr_editor"))
    assert status == 200 and got["current_user"] == "zg_pgr_editor" and got["user_id"] == ""
    # A sub and no role: the anonymous role too (PostgREST), with the identity set.
    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt("carol"))
    assert status == 200 and got["current_user"] == ANON and got["user_id"] == "carol"


def test_without_anon_role_no_token_stays_401(plain):
    status, h, got = call(plain.port, "GET", "/rpc/seen")
    assert status == 401 and got["code"] == "missing_token" and h["www-authenticate"] == "Bearer"
    status, h, got = call(plain.port, "GET", "/rpc/seen", jwt(None, None))
    assert status == 401 and "no sub claim" in h["www-authenticate"], got
    # A subject and no role claim: the login role itself, as /rpc always ran.
    status, _, got = call(plain.port, "GET", "/rpc/seen", jwt("dave"))
    assert status == 200 and got["current_user"] == LOGIN and got["user_id"] == "dave"
    assert "role" not in got["claims"] and got["pre"] is None
    # A role and no subject: that role.
    status, _, got = call(plain.port, "GET", "/rpc/seen", jwt(None, "zg_pgr_user"))
    assert status == 200 and got["current_user"] == "zg_pgr_user"


def test_v1_still_needs_a_subject_and_the_service_role(pg):
    status, h, got = call(pg.port, "GET", "/v1/me/context", jwt(None, ANON))
    assert status == 401 and "no sub claim" in h["www-authenticate"]
    assert call(pg.port, "GET", "/v1/me/context")[0] == 401
    status, _, got = call(pg.port, "GET", "/v1/users/nobody/context", jwt("svc", "zg_pgr_user"))
    assert status == 403 and got["code"] == "forbidden"
    # The service role is a claim value for /v1, no database role: not refused for that.
    assert call(pg.port, "GET", "/v1/users/nobody/context", jwt("svc", "service"))[0] != 403


# ---------------------------------------------------------------- roles

def test_role_claim_grants_and_denies(pg):
    status, _, got = call(pg.port, "POST", "/rpc/editor_only", jwt("eve", "zg_pgr_editor"), {})
    assert status == 200 and got == "for editors"
    status, _, got = call(pg.port, "POST", "/rpc/editor_only", jwt("eve", "zg_pgr_user"), {})
    assert status == 403 and got["code"] == "42501", got
    assert "permission denied for function editor_only" in got["message"]
    status, _, got = call(pg.port, "GET", "/rpc/editor_only")
    assert status in (401, 403) and got["code"] == "42501", got


def test_a_role_name_with_quotes_and_unicode_is_a_value_not_sql(pg):
    odd = 'zg_pgr "odd" ü'
    status, _, got = call(pg.port, "GET", "/rpc/seen", jwt("f", odd))
    assert status == 200 and got["current_user"] == odd and got["claims"]["role"] == odd, got


REFUSED_ROLES = [
    ("superuser, not a member", "postgres"),
    ("superuser the login is a member of", "zg_pgr_super"),
    ("inherits a superuser", "zg_pgr_heir"),
    ("not a member", "zg_pgr_outsider"),
    ("unknown", "no_such_role"),
    ("predefined", "pg_read_server_files"),
    ("empty", ""),
    ("other case", "ZG_PGR_USER"),
    ("sql", 'zg_pgr_user"; DROP TABLE pgr.writes; --'),
    ("quote", "zg_pgr_user'"),
    ("unicode lookalike", "zg_pgr_usеr"),  # a Cyrillic е
    ("longer than a name", "zg_pgr_user" + "x" * 120),
    ("truncates to a role", "zg_pgr_user" + "\u00fc" * 40),
    ("control bytes", "zg_pgr_user\r\nX-Injected: 1"),
    ("a number", 42),
    ("an object", {"name": "zg_pgr_user"}),
    ("null", None),
]


@pytest.mark.parametrize("name,role", REFUSED_ROLES, ids=[r[0] for r in REFUSED_ROLES])
def test_a_role_the_proxy_may_not_switch_to_is_401_before_postgres(pg, cluster, name, role):
    now = int(time.time())
    tok = pyjwt.encode({"sub": "mallory", "role": role, "exp": now + 60}, SECRET, algorithm="HS256")
    before = jobs(pg)
    for method, body in (("GET", None), ("POST", {})):
        status, h, got = call(pg.port, method, "/rpc/seen", tok, body)
        assert status == 401, (name, status, got)
        assert got["code"] == "PGRST303" and "cannot be used" in got["message"], got
        assert "member of" in got["details"]
        assert h["www-authenticate"] == ('Bearer error="invalid_token", error_description="the '
                                         "token's role cannot be used\"")
        assert "x-injected" not in h
    # The counter moves for a request that does reach Postgres (one job), not for those.
    assert call(pg.port, "GET", "/rpc/seen", jwt("ok", "zg_pgr_user"))[0] == 200
    assert jobs(pg) == before + 1, "a refused request reached Postgres"
    assert cluster.psql("SELECT to_regclass('pgr.writes') IS NOT NULL") == "t"


def test_nul_in_the_role_claim_is_refused_by_the_jwt_layer(pg):
    now = int(time.time())
    tok = pyjwt.encode({"sub": "m", "role": "zg_pgr_user\u0000x", "exp": now + 60}, SECRET,
                       algorithm="HS256")
    status, h, got = call(pg.port, "GET", "/rpc/seen", tok)
    assert status == 401 and got["code"] == "invalid_token" and "NUL" in h["www-authenticate"]


def test_anon_role_the_login_may_not_use_is_refused_and_logged(cluster, pg):
    p = start(cluster, "pgr-bad-anon", auth={"anon_role": "zg_pgr_outsider"})
    try:
        line = p.wait_for_log(lambda l: l.get("msg", "").startswith("auth.anon_role cannot be used"))
        assert line["role"] == "zg_pgr_outsider"
        status, h, got = call(p.port, "GET", "/rpc/seen")
        assert status == 401 and got["code"] == "PGRST302", got
        assert "zg_pgr_outsider" in got["details"] and h["www-authenticate"] == "Bearer"
        # A token with its own role is not affected.
        assert call(p.port, "GET", "/rpc/seen", jwt("a", "zg_pgr_user"))[0] == 200
    finally:
        stop_proxy(p)


def test_role_claim_key_reads_a_nested_claim(cluster, pg):
    p = start(cluster, "pgr-claim-key", auth={"jwt": {"secret": SECRET,
                                                      "role_claim_key": ".app_metadata.role"}})
    try:
        tok = jwt("gil", "zg_pgr_user", app_metadata={"role": "zg_pgr_editor"})
        status, _, got = call(p.port, "GET", "/rpc/seen", tok)
        assert status == 200 and got["current_user"] == "zg_pgr_editor", got
        # request.jwt.claims says the role it runs as, as PostgREST writes it.
        assert got["claims"]["role"] == "zg_pgr_editor"
        assert got["claims"]["app_metadata"] == {"role": "zg_pgr_editor"}
        # The top-level role alone is no role claim here: the anonymous role.
        status, _, got = call(p.port, "GET", "/rpc/seen", jwt("gil", "zg_pgr_editor"))
        assert status == 200 and got["current_user"] == ANON
    finally:
        stop_proxy(p)


def test_roles_granted_later_are_seen_after_reload_schema(cluster, pg):
    assert call(pg.port, "GET", "/rpc/seen", jwt("h", "zg_pgr_outsider"))[0] == 401
    cluster.psql("GRANT zg_pgr_outsider TO %s; SELECT zonegate.reload_schema()" % LOGIN)
    try:
        wait_for(lambda: call(pg.port, "GET", "/rpc/seen", jwt("h", "zg_pgr_outsider"))[0] == 200,
                 timeout=10, what="the role after reload_schema")
    finally:
        cluster.psql("REVOKE zg_pgr_outsider FROM %s; SELECT zonegate.reload_schema()" % LOGIN)
    wait_for(lambda: call(pg.port, "GET", "/rpc/seen", jwt("h", "zg_pgr_outsider"))[0] == 401,
             timeout=10, what="the role refused again")


# ---------------------------------------------------------------- response.status and headers

def test_a_function_sets_status_and_headers(pg):
    hdrs = json.dumps([{"X-Fn": "yes"}, {"Set-Cookie": "s=1; HttpOnly"}, {"Set-Cookie": "t=2"},
                       {"Content-Type": "text/plain; charset=utf-8"}])
    status, h, body = http(pg.port, "POST", "/rpc/respond",
                           {"Authorization": "Bearer " + jwt(), "Content-Type": "application/json"},
                           json.dumps({"status": "201", "headers": hdrs}))
    assert status == 201 and body == b'"done"', (status, body)
    assert h["x-fn"] == "yes" and h["content-type"] == "text/plain; charset=utf-8"
    assert call(pg.port, "GET", "/rpc/respond?status=404", jwt())[0] == 404
    status, _, got = call(pg.port, "GET", "/rpc/respond_void?status=202", jwt())
    assert status == 202 and got is None


def test_every_header_a_function_sets_is_sent_even_twice(pg):
    hdrs = json.dumps([{"Set-Cookie": "s=1; HttpOnly"}, {"Set-Cookie": "t=2"}])
    body = json.dumps({"headers": hdrs}).encode()
    c = RawConn(pg.port)
    try:
        c.send(request_bytes("POST", "/rpc/respond", {"Authorization": "Bearer " + jwt(),
                                                      "Content-Type": "application/json"}, body))
        while b"\r\n\r\n" not in c.buf:
            c.buf += c.sock.recv(65536)
        head = c.buf.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    finally:
        c.close()
    assert head[0].startswith("HTTP/1.1 200")
    cookies = [l.split(":", 1)[1].strip() for l in head if l.lower().startswith("set-cookie:")]
    assert cookies == ["s=1; HttpOnly", "t=2"], head


BAD_RESPONSE = [
    ({"status": "99"}, "PGRST112"),
    ({"status": "600"}, "PGRST112"),
    ({"status": "101"}, "PGRST112"),
    ({"status": "abc"}, "PGRST112"),
    ({"headers": '{"X-A": "b"}'}, "PGRST111"),
    ({"headers": "not json"}, "PGRST111"),
    ({"headers": '[{"X-A": 1}]'}, "PGRST111"),
    ({"headers": '[{"Bad Name": "x"}]'}, "PGRST111"),
    ({"headers": '[{"X-A": "v\\r\\nX-Injected: 1"}]'}, "PGRST111"),
    ({"headers": '[{"Content-Length": "0"}]'}, "PGRST111"),
    ({"headers": '[{"Transfer-Encoding": "chunked"}]'}, "PGRST111"),
]


@pytest.mark.parametrize("args,code", BAD_RESPONSE, ids=[str(a) for a, _ in BAD_RESPONSE])
def test_a_status_or_header_that_cannot_be_sent_is_a_500(pg, args, code):
    status, h, got = call(pg.port, "POST", "/rpc/respond", jwt(), args)
    assert status == 500 and got["code"] == code, (status, got)
    assert "x-injected" not in h and "x-a" not in h
    assert h.get("transfer-encoding") is None


# ---------------------------------------------------------------- rpc.pre_request

def test_pre_request_refusal_is_the_answer_and_the_call_is_not_made(pg, cluster):
    before = writes(cluster, "pre")
    status, _, got = call(pg.port, "POST", "/rpc/writer", jwt("i", "zg_pgr_user"), {"v": "pre"},
                          headers={"X-Block": "privilege"})
    assert status == 403 and got["code"] == "42501", got
    assert got["message"] == "blocked by the pre-request function"
    status, _, got = call(pg.port, "POST", "/rpc/writer", jwt("i", "zg_pgr_user"), {"v": "pre"},
                          headers={"X-Block": "nope"})
    assert status == 400 and got["code"] == "P0001", got
    assert got["message"] == "pre-request says no: nope" and got["hint"] == "ask nicely"
    assert writes(cluster, "pre") == before
    assert call(pg.port, "POST", "/rpc/writer", jwt("i", "zg_pgr_user"), {"v": "pre"})[0] == 200
    assert writes(cluster, "pre") == before + 1


def test_pre_request_that_does_not_exist_is_a_clear_500(cluster, pg):
    p = start(cluster, "pgr-no-pre", rpc={"pre_request": "pgr.no_such_hook"})
    try:
        p.wait_for_log(lambda l: l.get("msg", "").startswith("rpc.pre_request names no function"))
        status, _, got = call(p.port, "GET", "/rpc/seen", jwt())
        assert status == 500 and got["code"] == "PGRSTX00", got
        assert '"pgr"."no_such_hook"()' in got["message"]
    finally:
        stop_proxy(p)


# ---------------------------------------------------------------- transactions

def test_get_runs_read_only_post_commits_tx_rollback_rolls_back(pg, cluster):
    tok = jwt("w", "zg_pgr_user")
    status, _, got = call(pg.port, "GET", "/rpc/writer?v=ro", tok)
    assert status == 405 and got["code"] == "25006", got
    assert "read-only transaction" in got["message"]
    assert writes(cluster, "ro") == 0
    status, h, got = call(pg.port, "POST", "/rpc/writer", tok, {"v": "rw"})
    assert status == 200 and got == 1 and "preference-applied" not in h
    assert writes(cluster, "rw") == 1
    status, h, got = call(pg.port, "POST", "/rpc/writer", tok, {"v": "rb"},
                          headers={"Prefer": "tx=rollback"})
    assert status == 200 and got == 1 and h["preference-applied"] == "tx=rollback", got
    assert writes(cluster, "rb") == 0
    status, h, got = call(pg.port, "POST", "/rpc/writer", tok, {"v": "cm"},
                          headers={"Prefer": "return=minimal, tx=commit"})
    assert status == 200 and h["preference-applied"] == "tx=commit"
    assert writes(cluster, "cm") == 1
    # Deferred constraints are checked before the rollback, as they would be at COMMIT.
    status, _, got = call(pg.port, "POST", "/rpc/writer", tok, {"v": "dup", "token": "t1"},
                          headers={"Prefer": "tx=rollback"})
    assert status == 200, got
    cluster.psql("INSERT INTO pgr.writes (v, token) VALUES ('dup', 't2')")
    status, _, got = call(pg.port, "POST", "/rpc/writer", tok, {"v": "dup", "token": "t2"},
                          headers={"Prefer": "tx=rollback"})
    assert status == 409 and got["code"] == "23505", got
    # The connection is clean afterwards: the next calls commit and read normally.
    assert call(pg.port, "POST", "/rpc/writer", tok, {"v": "after"})[2] == 1
    assert writes(cluster, "after") == 1
    assert call(pg.port, "GET", "/rpc/seen", tok)[2]["read_only"] == "on"


def test_tx_end_commit_ignores_prefer_tx(plain, cluster):
    status, h, got = call(plain.port, "POST", "/rpc/writer", jwt("x"), {"v": "ignored"},
                          headers={"Prefer": "tx=rollback"})
    assert status == 200 and "preference-applied" not in h, got
    assert writes(cluster, "ignored") == 1


def test_tx_end_rollback_rolls_back_everything(cluster, pg):
    p = start(cluster, "pgr-rollback", rpc={"tx_end": "rollback"})
    try:
        assert call(p.port, "POST", "/rpc/writer", jwt("y"), {"v": "always-rb"})[2] == 1
        status, h, _ = call(p.port, "POST", "/rpc/writer", jwt("y"), {"v": "always-rb"},
                            headers={"Prefer": "tx=commit"})
        assert status == 200 and "preference-applied" not in h
        assert writes(cluster, "always-rb") == 0
    finally:
        stop_proxy(p)


# ---------------------------------------------------------------- the cache

def test_cached_answers_are_keyed_by_role(pg):
    seen = {}
    for role in ("zg_pgr_user", "zg_pgr_editor", None):
        tok = jwt("kim", role)
        s1, h1, b1 = call(pg.port, "GET", "/rpc/cached_role", tok)
        s2, h2, b2 = call(pg.port, "GET", "/rpc/cached_role", tok)
        assert s1 == s2 == 200 and b1 == b2, (role, b1, b2)
        assert h2["x-cache"] == "HIT", role
        seen[role] = b1
    assert seen == {"zg_pgr_user": "zg_pgr_user", "zg_pgr_editor": "zg_pgr_editor", None: ANON}
    s, h, b = call(pg.port, "GET", "/rpc/cached_role")  # no token at all: anon, its own entry
    assert s == 200 and b == ANON


def test_cached_answers_keep_their_headers_but_never_a_cookie(pg):
    tok = jwt("lee", "zg_pgr_user")
    _, h1, b1 = call(pg.port, "GET", "/rpc/tagged?tag=t1", tok)
    _, h2, b2 = call(pg.port, "GET", "/rpc/tagged?tag=t1", tok)
    assert h1["x-cache"] == "MISS" and h2["x-cache"] == "HIT"
    assert h1["x-tag"] == h2["x-tag"] == "t1" and b1 == b2 == "zg_pgr_user"
    _, h3, _ = call(pg.port, "GET", "/rpc/tagged?tag=t2&cookie=true", tok)
    _, h4, _ = call(pg.port, "GET", "/rpc/tagged?tag=t2&cookie=true", tok)
    assert h3["set-cookie"] == h4["set-cookie"] == "c=t2"
    assert h4.get("x-cache") != "HIT" and "etag" not in h4  # answered each time, never stored
    status, h5, _ = call(pg.port, "GET", "/rpc/tagged?tag=t1", tok, headers={"Prefer": "tx=rollback"})
    # With Preference-Applied the answer is not the stored one, nor stored itself.
    assert status == 200 and h5["preference-applied"] == "tx=rollback" and "etag" not in h5
    assert h5["x-tag"] == "t1" and h5.get("x-cache") != "HIT"


# ---------------------------------------------------------------- @supabase/postgrest-js

def test_postgrest_js_anon_and_role_clients(pg, cluster):
    anon_key = jwt(None, ANON)
    out = subprocess.run(["node", str(NODE / "postgrest_roles.mjs"), "http://127.0.0.1:%d" % pg.port,
                          anon_key, jwt("nina", "zg_pgr_editor"), jwt("otto", "zg_pgr_user"),
                          jwt("pat", "postgres")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["no_token"]["status"] == 200 and got["no_token"]["data"]["current_user"] == ANON
    assert got["anon_key"]["data"]["current_user"] == ANON
    assert got["anon_key"]["data"]["user_id"] == ""
    assert got["editor"]["status"] == 200 and got["editor"]["data"] == "for editors"
    assert got["user"]["status"] == 403 and got["user"]["error"]["code"] == "42501"
    assert got["user"]["data"] is None
    assert got["get_writer"]["status"] == 405 and got["get_writer"]["error"]["code"] == "25006"
    assert writes(cluster, "from-js-get") == 0
    assert got["post_writer"]["status"] == 200 and writes(cluster, "from-js-post") == 1
    assert got["bad_role"]["status"] == 401 and got["bad_role"]["error"]["code"] == "PGRST303"
