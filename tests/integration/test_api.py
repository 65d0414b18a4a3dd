"""zonegate-proxy's API over real HTTP against a real Postgres: the /v1 routes, /rpc, JWT
authentication (HS256, RS256, ES256 and the attacks on them), errors, pool limits, outages,
catalog reloads and graceful drain."""
import base64
import fcntl
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import termios
import subprocess
import threading
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from zg import (PROXY_BIN, ROOT, Cluster, Proxy, RawConn, get_json, http, request_bytes, run_cli, wait_for,
                wait_sleeping)

SECRET = "integration-secret-0123456789-abcdef"
ADMIN = "integration-admin-token-0123456789abcdef"
FUNCTIONS = ["add", "echo", "whoami", "my_zones", "report", "one_thing", "bump", "nothing", "fail",
             "dup", "slow", "over", "arr_sum", "doc", "late", "slow_stable", "grants_of_caller"]


def config(cluster, **over):
    cfg = {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 2},
        "database": {"conninfo": cluster.conninfo, "pool": {"min": 1, "max": 2}},
        "auth": {"jwt": {"secret": SECRET}, "admin_token": ADMIN},
        "rpc": {"schema": "api", "functions": FUNCTIONS},
        "log": {"level": "info"},
    }
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return yaml.safe_dump(cfg)


def start_proxy(cluster, name, **over):
    p = Proxy(config(cluster, **over), name=name)
    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=20)
    return p


def stop_proxy(p):
    rc = p.stop()
    assert rc == 0, "proxy exited with %s" % rc
    assert not p.sanitizer_reports(), p.sanitizer_reports()


def token(sub="alice", role=None, ttl=3600, secret=SECRET, **claims):
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + ttl, **claims}
    if role is not None:
        payload["role"] = role
    return pyjwt.encode(payload, secret, algorithm="HS256")


def call(port, method, path, tok=None, body=None, headers=None):
    h = dict(headers or {})
    if tok is not None:
        h["Authorization"] = "Bearer " + tok
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    status, hdrs, data = http(port, method, path, h, body)
    parsed = None
    if data:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data
    return status, hdrs, parsed


@pytest.fixture(scope="module")
def api(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = start_proxy(cluster, "api")
    yield p
    stop_proxy(p)


# ---------------------------------------------------------------- /v1

def test_me_context(api):
    status, h, body = call(api.port, "GET", "/v1/me/context", token("alice"))
    assert status == 200 and h["content-type"].startswith("application/json")
    assert body["user_id"] == "alice" and body["role"] == "staff"
    assert [g["id"] for g in body["grants"]] == [11, 21]
    assert [r["id"] for r in body["regions"]] == [1, 2]
    assert body["visible_zone_count"] == 4


def test_unknown_and_inactive_users_are_404(api):
    for sub in ("nobody", "gone"):
        status, _, body = call(api.port, "GET", "/v1/me/context", token(sub))
        assert status == 404 and body["code"] == "user_not_found"
        assert status == call(api.port, "GET", "/v1/me/zones", token(sub))[0]


def test_other_users_context_needs_the_service_role(api):
    status, _, body = call(api.port, "GET", "/v1/users/bob/context", token("alice"))
    assert status == 403 and body["code"] == "forbidden"
    status, _, body = call(api.port, "GET", "/v1/users/bob/context", token("svc", role="service"))
    assert status == 200 and body["user_id"] == "bob"
    status, _, body = call(api.port, "GET", "/v1/users/nobody/context", token("svc", role="service"))
    assert status == 404
    # Percent-encoded ids are decoded.
    assert call(api.port, "GET", "/v1/users/%62ob/context", token("svc", role="service"))[2]["user_id"] == "bob"


def test_me_zones(api):
    status, _, body = call(api.port, "GET", "/v1/me/zones", token("alice"))
    assert status == 200 and body == {"user_id": "alice", "zones": [11, 21, 111, 211]}
    status, _, body = call(api.port, "GET", "/v1/me/zones", token("root"))
    assert body["zones"] == [1, 2, 11, 12, 21, 111, 211]


def test_filter_region_story(api):
    t = token("alice")
    def f(zones):
        status, _, body = call(api.port, "POST", "/v1/me/zones/filter", t, {"zones": zones})
        assert status == 200, body
        return body["zones"]
    assert f([1]) == [11, 111]
    assert f([2]) == [21, 211]
    assert f([1, 2]) == [11, 21, 111, 211]
    assert f(None) == [11, 21, 111, 211]
    assert f([]) == [11, 21, 111, 211]
    assert f([12]) == []
    assert f([999]) == []
    status, _, body = call(api.port, "POST", "/v1/me/zones/filter", t, b"")
    assert status == 200 and body["zones"] == [11, 21, 111, 211]


@pytest.mark.parametrize("raw,detail", [
    (b"[1,2]", "the body must be a JSON object"),
    (b'{"zones": 5}', '"zones" must be an array of zone ids'),
    (b'{"zones": [1, "x"]}', '"zones"[1] is not an integer zone id'),
    (b'{"zones": [1.5]}', '"zones"[0] is not an integer zone id'),
    (b'{"zone": [1]}', 'unknown member "zone"'),
    (b'{"zones": [1]', "Missing a comma or '}' after an object member"),
])
def test_filter_rejects_bad_bodies(api, raw, detail):
    status, _, body = call(api.port, "POST", "/v1/me/zones/filter", token("alice"), raw,
                           {"Content-Type": "application/json"})
    assert status == 400 and body["code"] == "invalid_body"
    assert detail in body["details"]


def test_filter_wants_json(api):
    status, _, body = call(api.port, "POST", "/v1/me/zones/filter", token("alice"), b"zones=1",
                           {"Content-Type": "text/plain"})
    assert status == 415


def test_filter_with_a_chunked_body(api):
    c = RawConn(api.port)
    body = b'{"zones": [2]}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4]), body[i:i + 4]) for i in range(0, len(body), 4))
    c.send(request_bytes("POST", "/v1/me/zones/filter",
                         {"Authorization": "Bearer " + token("alice"), "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"}) + chunks + b"0\r\n\r\n")
    status, _, data = c.read_response()
    assert status == 200 and json.loads(data)["zones"] == [21, 211]


def test_zone_at_returns_the_deepest_zone_with_its_path(api, cluster):
    t = token("alice")
    status, h, body = call(api.port, "GET", "/v1/zones/at?lon=2.5&lat=2.5", t)
    assert status == 200
    assert body["id"] == 111 and body["code"] == "A1a" and body["level"] == "district"
    assert [z["id"] for z in body["path"]] == [1, 11, 111]
    assert body["lon"] == 2.5 and body["lat"] == 2.5
    assert call(api.port, "GET", "/v1/zones/at?lon=6&lat=6", t)[2]["id"] == 1
    assert call(api.port, "GET", "/v1/zones/at?lon=4&lat=2", t)[2]["id"] == 11  # on an edge: inside
    status, _, body = call(api.port, "GET", "/v1/zones/at?lon=15&lat=5", t)
    assert status == 404 and body["code"] == "no_zone"
    # Shared entries: a second asker gets the cached answer.
    assert call(api.port, "GET", "/v1/zones/at?lon=2.5&lat=2.5", token("bob"))[1]["x-cache"] == "HIT"


def test_zone_at_validates_coordinates(api):
    t = token("alice")
    for q in ("lon=200&lat=0", "lon=abc&lat=0", "lat=0", "lon=1&lat=-91", "lon=nan&lat=0", "lon=1e999&lat=0"):
        status, _, body = call(api.port, "GET", "/v1/zones/at?" + q, t)
        assert status == 400 and body["code"] == "invalid_parameter", q


def test_request_id_is_echoed_on_api_routes(api):
    _, h, _ = call(api.port, "GET", "/v1/me/context", token("alice"), headers={"X-Request-Id": "abc.1"})
    assert h["x-request-id"] == "abc.1"


# ---------------------------------------------------------------- /rpc

def test_rpc_scalar_get_and_post(api):
    t = token("alice")
    assert call(api.port, "GET", "/rpc/add?a=2&b=3", t)[2] == 5
    assert call(api.port, "POST", "/rpc/add", t, {"a": 2, "b": 40})[2] == 42
    assert call(api.port, "GET", "/rpc/echo?msg=hi", t)[2] == "hi"
    assert call(api.port, "GET", "/rpc/echo?msg=hi&times=3", t)[2] == "hihihi"
    assert call(api.port, "POST", "/rpc/echo", t, {"msg": "a \"quoted\" ü"})[2] == "a \"quoted\" ü"


def test_rpc_runs_as_the_tokens_user(api):
    # Issue 23: a role claim on /rpc is a database role the call switches to (PostgREST), so a
    # token for a role that does not exist ("staff") is refused there; without one the call runs
    # as the login role, with the claims as sent.
    status, _, body = call(api.port, "GET", "/rpc/whoami", token("bob", tenant="t1"))
    assert status == 200 and body["user"] == "bob"
    assert body["claims"]["sub"] == "bob" and body["claims"]["tenant"] == "t1"
    assert call(api.port, "GET", "/rpc/whoami", token("bob", role="staff"))[2]["code"] == "PGRST303"
    assert call(api.port, "GET", "/rpc/my_zones", token("bob"))[2] == [2, 21, 211]
    assert call(api.port, "GET", "/rpc/report?zone=111", token("alice"))[2] == [{"zone_id": 111, "visible": True}]
    assert call(api.port, "GET", "/rpc/report?zone=12", token("alice"))[2] == [{"zone_id": 12, "visible": False}]


def test_rpc_shapes(api):
    t = token("alice")
    assert call(api.port, "GET", "/rpc/one_thing", t)[2] == {"id": 7, "label": "seven"}
    status, _, body = call(api.port, "POST", "/rpc/nothing", t, {})
    assert status == 204 and body is None
    assert call(api.port, "POST", "/rpc/arr_sum", t, {"xs": [1, 2, 3, None]})[2] == 6
    assert call(api.port, "GET", "/rpc/arr_sum?xs=%7B4,5%7D", t)[2] == 9
    assert call(api.port, "POST", "/rpc/doc", t, {"body": {"a": [1, {"b": None}]}})[2] == [1, {"b": None}]
    assert call(api.port, "POST", "/rpc/over", t, {"a": 1})[2] == "one"
    assert call(api.port, "POST", "/rpc/over", t, {"a": 1, "b": 2})[2] == "two"
    status, _, body = call(api.port, "POST", "/rpc/add", t, b"a=1&b=2",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body == 3


def test_rpc_volatile_needs_post(api):
    t = token("alice")
    # Issue 23: GET runs READ ONLY (as PostgREST), so a VOLATILE function is called and its
    # write is refused by Postgres (25006, 405) rather than by the proxy (PGRST101).
    status, h, body = call(api.port, "GET", "/rpc/bump?n=1", t)
    assert status == 405 and body["code"] == "25006", body
    first = call(api.port, "POST", "/rpc/bump", t, {"n": 1})[2]
    assert call(api.port, "POST", "/rpc/bump", t, {"n": 2})[2] == first + 1


def test_rpc_errors_map_like_postgrest(api):
    t = token("alice")
    status, _, body = call(api.port, "GET", "/rpc/fail?msg=boom", t)
    assert status == 400
    assert body == {"code": "P0001", "message": "boom", "details": "raised on purpose", "hint": "do not call fail"}
    call(api.port, "POST", "/rpc/dup", t, {"k": "x"})
    status, _, body = call(api.port, "POST", "/rpc/dup", t, {"k": "x"})
    assert status == 409 and body["code"] == "23505"
    status, _, body = call(api.port, "GET", "/rpc/add?a=1&b=notanumber", t)
    assert status == 400 and body["code"] == "22P02"


def test_rpc_not_found_cases(api):
    t = token("alice")
    for path in ("/rpc/hidden", "/rpc/add?a=1", "/rpc/add?a=1&b=2&c=3", "/rpc/no_such_fn", "/rpc/late"):
        status, _, body = call(api.port, "GET", path, t)
        assert status == 404 and body["code"] == "PGRST202", path
    status, _, body = call(api.port, "GET", "/rpc/add?a=1&a=2&b=1", t)
    assert status == 400
    status, _, body = call(api.port, "POST", "/rpc/add", t, b'{"a": 1,', {"Content-Type": "application/json"})
    assert status == 400 and body["code"] == "PGRST102"
    status, _, body = call(api.port, "POST", "/rpc/add", t, b'<a/>', {"Content-Type": "application/xml"})
    assert status == 415


def test_rpc_catalog_reloads_on_reload_schema(api, cluster):
    # zonegate.reload_schema() sends a signed RELOAD_SCHEMA; a plain NOTIFY is ignored
    # (test_notify_auth.py).
    t = token("alice")
    assert call(api.port, "GET", "/rpc/late", t)[0] == 404
    loads = len(api.logs("/rpc catalog loaded"))
    cluster.psql("CREATE FUNCTION api.late() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'here' $$; "
                 "SELECT zonegate.reload_schema()")
    deadline = time.time() + 10
    while len(api.logs("/rpc catalog loaded")) == loads:
        assert time.time() < deadline, "no catalog reload after zonegate.reload_schema()"
        time.sleep(0.05)
    assert call(api.port, "GET", "/rpc/late", t)[2] == "here"


def test_pipelined_db_requests_answer_in_order(api):
    c = RawConn(api.port)
    t = token("alice")
    c.send(b"".join(request_bytes("GET", "/rpc/add?a=%d&b=1" % i, {"Authorization": "Bearer " + t})
                    for i in range(30)))
    got = [json.loads(c.read_response()[2]) for _ in range(30)]
    assert got == [i + 1 for i in range(30)]


# ---------------------------------------------------------------- auth

def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_auth_matrix_hs256(api):
    now = int(time.time())
    cases = {
        "no token": (None, "missing_token"),
        "garbage": ("not.a.jwt", "invalid_token"),
        "two parts": ("abc.def", "invalid_token"),
        "expired": (token(ttl=-120), "invalid_token"),
        "not yet valid": (pyjwt.encode({"sub": "alice", "nbf": now + 600, "exp": now + 900}, SECRET, algorithm="HS256"), "invalid_token"),
        "issued in the future": (pyjwt.encode({"sub": "alice", "iat": now + 600, "exp": now + 900}, SECRET, algorithm="HS256"), "invalid_token"),
        "wrong secret": (token(secret="another-secret-another-secret-x"), "invalid_token"),
        "alg none": (b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "alice", "exp": now + 60}) + ".", "invalid_token"),
        "no sub": (pyjwt.encode({"role": "x", "exp": now + 60}, SECRET, algorithm="HS256"), "invalid_token"),
        "no exp": (pyjwt.encode({"sub": "alice", "iat": now}, SECRET, algorithm="HS256"), "invalid_token"),
        "HS512": (pyjwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS512"), "invalid_token"),
    }
    reasons = {"garbage": "malformed token", "two parts": "malformed token", "expired": "token expired",
               "not yet valid": "not valid yet", "issued in the future": "issued in the future",
               "wrong secret": "signature verification failed", "alg none": 'algorithm \'none\' is not allowed',
               "no sub": "no sub claim", "no exp": "token has no exp claim",
               "HS512": "algorithm \'HS512\' is not allowed"}
    for name, (tok, code) in cases.items():
        status, h, body = call(api.port, "GET", "/v1/me/context", tok)
        assert status == 401, name
        assert body["code"] == code, name
        assert h["www-authenticate"].startswith("Bearer"), name
        if tok is not None:
            assert 'error="invalid_token"' in h["www-authenticate"], name
            assert reasons[name] in h["www-authenticate"], (name, h["www-authenticate"])
    # Expired but within the 30 s leeway is accepted.
    assert call(api.port, "GET", "/v1/me/context", token(ttl=-10))[0] == 200
    # Lowercase scheme and surrounding spaces are accepted.
    assert http(api.port, "GET", "/v1/me/context", {"Authorization": "bearer  " + token() + " "})[0] == 200


# Every route that needs a JWT, with a request that succeeds given a good token.
AUTHENTICATED_ROUTES = [
    ("GET", "/v1/me/context", None),
    ("GET", "/v1/users/alice/context", None),
    ("GET", "/v1/me/zones", None),
    ("POST", "/v1/me/zones/filter", {"zones": []}),
    ("GET", "/v1/zones/at?lon=2.5&lat=2.5", None),
    ("GET", "/rpc/add?a=1&b=2", None),
    ("POST", "/rpc/add", {"a": 1, "b": 2}),
]


@pytest.mark.parametrize("method,path,body", AUTHENTICATED_ROUTES)
def test_every_api_route_refuses_missing_and_bad_tokens(api, method, path, body):
    for name, tok, code in (("no token", None, "missing_token"),
                            ("wrong secret", token(role="service", secret="x" * 40), "invalid_token"),
                            ("expired", token(role="service", ttl=-120), "invalid_token")):
        status, h, got = call(api.port, method, path, tok, body=body)
        assert status == 401, (name, status, got)
        assert got["code"] == code, name
        assert h["www-authenticate"].startswith("Bearer"), name
    # The service role is a claim value for /v1; on /rpc a role claim names a database role
    # (issue 23), and there is none called "service" here.
    good = token(role="service") if path.startswith("/v1/") else token()
    status, _, got = call(api.port, method, path, good, body=body)
    assert status == 200, (status, got)


def test_subject_and_role_claims_are_configurable(cluster, api):
    p = start_proxy(cluster, "claims", auth={"jwt": {"secret": SECRET, "subject_claim": "uid",
                                                     "role_claim": "https://zonegate/role"}})
    try:
        now = int(time.time())
        enc = lambda claims: pyjwt.encode({"iat": now, "exp": now + 60, **claims}, SECRET, algorithm="HS256")
        # The subject comes from "uid"; "sub" is ignored.
        status, _, body = call(p.port, "GET", "/v1/me/context", enc({"uid": "alice", "sub": "bob"}))
        assert status == 200 and body["user_id"] == "alice", body
        # Without "uid" the token has no subject, even with a "sub".
        status, _, body = call(p.port, "GET", "/v1/me/context", enc({"sub": "alice"}))
        assert status == 401 and body["code"] == "invalid_token", body
        # The service role is read from the namespaced claim, not from "role".
        assert call(p.port, "GET", "/v1/users/bob/context",
                    enc({"uid": "alice", "https://zonegate/role": "service"}))[0] == 200
        assert call(p.port, "GET", "/v1/users/bob/context",
                    enc({"uid": "alice", "role": "service"}))[0] == 403
    finally:
        stop_proxy(p)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = lambda k: k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    (d / "rsa.pub").write_bytes(pem(rsa_key))
    (d / "ec.pub").write_bytes(pem(ec_key))
    return {"rsa": rsa_key, "ec": ec_key, "rsa_pub": d / "rsa.pub", "ec_pub": d / "ec.pub"}


def test_rs256_and_the_algorithm_confusion_attack(cluster, keys, api):
    p = start_proxy(cluster, "rs256", auth={"jwt": {"algorithms": ["RS256"], "public_key_file": str(keys["rsa_pub"]),
                                                    "audience": ["zonegate"], "issuer": "https://issuer.example"}})
    try:
        good = {"sub": "alice", "aud": "zonegate", "iss": "https://issuer.example", "exp": int(time.time()) + 60}
        assert call(p.port, "GET", "/v1/me/context", pyjwt.encode(good, keys["rsa"], algorithm="RS256"))[0] == 200
        # An audience list containing ours is fine; a wrong audience or issuer is not.
        assert call(p.port, "GET", "/v1/me/context",
                    pyjwt.encode({**good, "aud": ["other", "zonegate"]}, keys["rsa"], algorithm="RS256"))[0] == 200
        for bad in ({**good, "aud": "other"}, {**good, "iss": "https://evil.example"}):
            status, _, body = call(p.port, "GET", "/v1/me/context", pyjwt.encode(bad, keys["rsa"], algorithm="RS256"))
            assert status == 401
        # HS256 "signed" with the RSA public key as the HMAC secret must be refused.
        pub = keys["rsa_pub"].read_bytes()
        header = b64({"alg": "HS256", "typ": "JWT"})
        payload = b64(good)
        sig = base64.urlsafe_b64encode(hmac.new(pub, (header + "." + payload).encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        status, _, body = call(p.port, "GET", "/v1/me/context", header + "." + payload + "." + sig)
        assert status == 401 and "not allowed" in body["message"]
        # An HS256 token with the shared secret is refused too: HS256 is not on this allow-list.
        assert call(p.port, "GET", "/v1/me/context", token())[0] == 401
        # A tampered payload fails the signature check.
        t = pyjwt.encode(good, keys["rsa"], algorithm="RS256").split(".")
        t[1] = b64({**good, "sub": "root"})
        assert call(p.port, "GET", "/v1/me/context", ".".join(t))[0] == 401
    finally:
        stop_proxy(p)


def test_es256(cluster, keys, api):
    p = start_proxy(cluster, "es256", auth={"jwt": {"algorithms": ["ES256"], "public_key_file": str(keys["ec_pub"])}})
    try:
        good = pyjwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, keys["ec"], algorithm="ES256")
        status, _, body = call(p.port, "GET", "/v1/me/context", good)
        assert status == 200 and body["user_id"] == "bob"
        other = ec.generate_private_key(ec.SECP256R1())
        assert call(p.port, "GET", "/v1/me/context",
                    pyjwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, other, algorithm="ES256"))[0] == 401
    finally:
        stop_proxy(p)


def test_token_command(cluster, api, tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(config(cluster))
    out = run_cli(["token", "--config", str(cfg), "--sub", "bob", "--role", "service",
                          "--ttl", "60"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    claims = pyjwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob" and claims["role"] == "service" and claims["exp"] - claims["iat"] == 60
    assert call(api.port, "GET", "/v1/users/alice/context", out.stdout.strip())[0] == 200
    prod = tmp_path / "prod.yaml"
    prod.write_text(config(cluster, profile="prod", auth={"jwt": {"secret": SECRET, "audience": ["zonegate"]},
                                                        "admin_token": ADMIN}))
    out = run_cli(["token", "--config", str(prod), "--sub", "bob"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "refused in the prod profile" in out.stderr
    out = run_cli(["token", "--config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 2 and "--sub" in out.stderr


def test_prod_profile_refuses_unsafe_settings(tmp_path, cluster):
    cfg = tmp_path / "prod.yaml"
    cfg.write_text(yaml.safe_dump({"profile": "prod", "auth": {"jwt": {"secret": "short"}}}))
    out = run_cli(["--check-config", "--config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "auth.jwt.secret must be set and at least 32 bytes" in out.stderr
    assert "auth.admin_token must be set" in out.stderr
    cfg.write_text(yaml.safe_dump({"auth": {"jwt": {"algorithms": ["HS256", "none"]}}}))
    out = run_cli(["--check-config", "--config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and "unsigned tokens are never accepted" in out.stderr


# ---------------------------------------------------------------- pool, outages, drain

def test_pool_acquisition_timeout_and_load_shedding(cluster, api):
    p = start_proxy(cluster, "pool", server={"workers": 1}, cache={"enabled": False},
                    database={"conninfo": cluster.conninfo,
                              "pool": {"min": 1, "max": 1, "pipeline_depth": 1, "acquire_timeout": "2s",
                                       "max_waiting": 1}})
    try:
        t = token("alice")
        slow = threading.Thread(target=call, args=(p.port, "POST", "/rpc/slow", t, {"seconds": 5}))
        slow.start()
        wait_sleeping(cluster)  # the only connection is busy
        # One may wait (and times out), the next is shed at once.
        results = {}
        def waiter():
            results["wait"] = call(p.port, "GET", "/v1/me/context", t)
        w = threading.Thread(target=waiter)
        w.start()
        wait_for(lambda: get_json(p.port, "/health")[2]["pool"]["waiting"] == 1, what="a waiting request")
        status, h, body = call(p.port, "GET", "/v1/me/context", t)
        assert status == 503 and h["retry-after"] == "1" and body["code"] == "53300"
        assert "wait" not in results  # shed while the other one still waits
        w.join()
        status, h, body = results["wait"]
        # PostgREST's answer for a pool wait that timed out: 504 PGRST003.
        assert status == 504 and body["code"] == "PGRST003" and h["retry-after"] == "1"
        slow.join()
        assert call(p.port, "GET", "/v1/me/context", t)[0] == 200
    finally:
        stop_proxy(p)


def test_statement_timeout(cluster, api):
    p = start_proxy(cluster, "stmt", database={"conninfo": cluster.conninfo, "pool": {"statement_timeout": "200ms"}})
    try:
        status, _, body = call(p.port, "POST", "/rpc/slow", token("alice"), {"seconds": 2})
        assert status == 500 and body["code"] == "57014"
        assert call(p.port, "GET", "/rpc/add?a=1&b=1", token("alice"))[2] == 2
    finally:
        stop_proxy(p)


def test_database_outage_and_recovery():
    c2 = Cluster(dbname="outage")
    try:
        c2.psql(Path(__file__).with_name("api_fixture.sql").read_text())
        p = start_proxy(c2, "outage", cache={"enabled": False}, database={"conninfo": c2.conninfo,
                                                "pool": {"reconnect_min": "50ms", "reconnect_max": "500ms",
                                                         "acquire_timeout": "500ms"}})
        try:
            t = token("alice")
            assert call(p.port, "GET", "/v1/me/context", t)[0] == 200
            # Waited for: /readyz asks the worker it lands on, whose pool may still be connecting.
            wait_for(lambda: call(p.port, "GET", "/readyz")[0] == 200, what="/readyz")
            c2.stop()
            deadline = time.time() + 10
            while call(p.port, "GET", "/readyz")[0] != 503:
                assert time.time() < deadline
                time.sleep(0.1)
            status, h, body = call(p.port, "GET", "/v1/me/context", t)
            assert status == 503 and "retry-after" in h
            c2.start()
            deadline = time.time() + 15
            while call(p.port, "GET", "/v1/me/context", t)[0] != 200:
                assert time.time() < deadline, "no recovery"
                time.sleep(0.1)
            deadline = time.time() + 15
            while call(p.port, "GET", "/readyz")[0] != 200:
                assert time.time() < deadline
                time.sleep(0.1)
        finally:
            stop_proxy(p)
    finally:
        c2.destroy()


def test_sigterm_drains_in_flight_requests(cluster, api):
    p = start_proxy(cluster, "drain", server={"drain_timeout": "30s"})
    t = token("alice")
    result = {}
    def slow():
        c = RawConn(p.port, timeout=30)
        c.send(request_bytes("POST", "/rpc/slow", {"Authorization": "Bearer " + t,
                                                   "Content-Type": "application/json"}, b'{"seconds": 2.5}'))
        result["resp"] = c.read_response()
    th = threading.Thread(target=slow)
    th.start()
    # Signal only once the query runs in Postgres: the request is then surely in flight (a fixed
    # sleep is not enough on a loaded machine).
    wait_sleeping(cluster)
    p.proc.send_signal(signal.SIGTERM)
    p.wait_for_log(lambda l: l.get("msg") == "draining", timeout=20)
    # Not accepting any more: the workers close their listeners right after the signal.
    deadline = time.time() + 20
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", p.port), timeout=1)
        except OSError:
            break
        s.close()
        assert time.time() < deadline, "still accepting connections while draining"
        time.sleep(0.05)
    th.join(30)
    assert "resp" in result, "the in-flight request got no response"
    status, headers, body = result["resp"]
    assert status == 200 and json.loads(body).endswith("done")
    assert headers["connection"] == "close"
    assert p.proc.wait(30) == 0
    stop_proxy(p)


def test_backpressure_many_pipelined_requests_unread(cluster, api):
    """A client that pipelines far more than it reads: the proxy pauses reading instead of
    buffering without bound, then answers everything in order once the client reads."""
    p = start_proxy(cluster, "backpressure", server={"max_output_bytes": "4KiB", "max_pipelined": 8})
    try:
        c = RawConn(p.port, timeout=30)
        n = 30000
        payload = b"".join(request_bytes("GET", "/healthz", {"X-Request-Id": "r%d" % i}) for i in range(n))
        sender = threading.Thread(target=c.send, args=(payload,))
        sender.start()
        # The proxy's output fills and it stops reading: bytes pile up unsent in our socket (a
        # proxy that kept reading would drain them, and this wait would fail).
        unsent = lambda: struct.unpack("i", fcntl.ioctl(c.sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        wait_for(lambda: unsent() > 0, what="the proxy to stop reading")
        ids = [c.read_response()[1]["x-request-id"] for _ in range(n)]
        sender.join(10)
        assert ids == ["r%d" % i for i in range(n)]
    finally:
        stop_proxy(p)


def test_drain_timeout_closes_what_is_still_running(cluster, api):
    p = start_proxy(cluster, "drain-timeout", server={"drain_timeout": "300ms"})
    result = {}
    def slow():
        c = RawConn(p.port)
        c.send(request_bytes("POST", "/rpc/slow", {"Authorization": "Bearer " + token("alice"),
                                                   "Content-Type": "application/json"}, b'{"seconds": 60}'))
        result["resp"] = c.read_response()
    th = threading.Thread(target=slow)
    th.start()
    wait_sleeping(cluster)
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(30) == 0  # did not wait for the 60 s query
    th.join(10)
    assert result["resp"] is None  # the connection was closed without a response
    assert p.logs("drain timeout reached: closing remaining connections")
    stop_proxy(p)
    # The abandoned query sleeps on in its backend: end it, later tests count sleepers.
    cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")


def test_connections_are_replaced_after_max_lifetime(cluster, api):
    p = start_proxy(cluster, "lifetime", server={"workers": 1},
                    database={"conninfo": cluster.conninfo + " application_name=lifetime-test",
                              "pool": {"min": 1, "max": 1, "max_lifetime": "1s"}})
    try:
        t = token("alice")
        def backend():
            assert call(p.port, "GET", "/rpc/whoami", t)[0] == 200
            return cluster.psql("SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity "
                                "WHERE application_name = 'lifetime-test' AND query NOT LIKE 'LISTEN%'")
        first = backend()
        deadline = time.time() + 30  # generous: each round spawns psql, slow on a loaded machine
        while backend() == first:
            assert time.time() < deadline, "connection never replaced: %s" % get_json(p.port, "/health", {"Authorization": "Bearer " + ADMIN})[2]
            time.sleep(0.3)
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", t)[2] == 3
    finally:
        stop_proxy(p)


def pool_counter(port, name):
    status, _, text = http(port, "GET", "/metrics", {})
    assert status == 200
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError("no %s in /metrics" % name)


def test_db_reads_of_one_loop_turn_share_a_sync(cluster, api):
    """Pipelined /v1 reads arrive in one loop turn and go out as one batch (one Sync); each
    answer is still its own user's, and a missing user's 404 does not disturb the others."""
    p = start_proxy(cluster, "batch", server={"workers": 1},
                    database={"conninfo": cluster.conninfo, "pool": {"min": 1, "max": 1}},
                    cache={"enabled": False})
    try:
        t = token("svc", role="service")
        users = ["alice", "bob", "root", "gone", "nobody"] * 6
        # The connection's own session setup and warm-up are its first two Syncs; the pool
        # gauges are refreshed every 100 ms.
        wait_for(lambda: pool_counter(p.admin_port, "zonegate_pool_syncs_total") >= 2, timeout=10)
        jobs0 = pool_counter(p.admin_port, "zonegate_pool_jobs_total")
        syncs0 = pool_counter(p.admin_port, "zonegate_pool_syncs_total")
        c = RawConn(p.port)
        c.send(b"".join(request_bytes("GET", "/v1/users/%s/context" % u,
                                      {"Authorization": "Bearer " + t}) for u in users))
        for u in users:
            status, _, body = c.read_response()
            if u in ("gone", "nobody"):
                assert status == 404, (u, status, body)
            else:
                assert status == 200, (u, status, body)
                assert json.loads(body)["user_id"] == u
        wait_for(lambda: pool_counter(p.admin_port, "zonegate_pool_jobs_total") - jobs0 >= len(users),
                 timeout=5)
        jobs = pool_counter(p.admin_port, "zonegate_pool_jobs_total") - jobs0
        syncs = pool_counter(p.admin_port, "zonegate_pool_syncs_total") - syncs0
        assert jobs == len(users)
        assert 1 <= syncs < jobs, "%d syncs for %d jobs: the reads were not batched" % (syncs, jobs)
        assert pool_counter(p.admin_port, "zonegate_pool_batch_resends_total") == 0
    finally:
        stop_proxy(p)
