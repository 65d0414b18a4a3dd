"""Hostile corpora against the real proxy over raw sockets (docs/SECURITY.md, "The proxy"):
request smuggling shapes, forged tokens, injection attempts and oversized inputs. Every case
asserts the status, whether the connection must close, and that nothing reached Postgres: the
pool's job counter (zonegate_pool_jobs_total, on the admin listener) does not move. The cases
where a request value does reach Postgres, as a bound parameter, assert instead that it came back
as Postgres' own error for that value and that the canary table is still there."""
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from test_api import SECRET, call, start_proxy, stop_proxy, token
from zg import RawConn, http


@pytest.fixture(scope="module")
def hp(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("CREATE TABLE IF NOT EXISTS public.canary(x int); "
                 "GRANT SELECT ON public.canary TO PUBLIC")
    p = start_proxy(cluster, "hostile", server={"workers": 1, "max_body_bytes": "64KiB"})
    yield p
    stop_proxy(p)


def jobs_now(p):
    text = http(p.admin_port, "GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith("zonegate_pool_jobs_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no zonegate_pool_jobs_total")


def jobs(p):
    """The pool's job count, settled: workers publish their pool figures every 100 ms (a tick of
    25 ms, every fourth), so a reading right after a request may not count that request's job
    yet; 150 ms later it does."""
    time.sleep(0.15)
    return jobs_now(p)


def b64(raw):
    if not isinstance(raw, bytes):
        raw = json.dumps(raw, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256(header, payload, secret=SECRET):
    """A token signed with the right secret, with any header and payload bytes: what is refused
    is the shape, not the signature."""
    signing = b64(header) + "." + b64(payload)
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def now():
    return int(time.time())


def req(method, path, headers=(), body=b"", version=b"1.1"):
    out = method.encode() + b" " + path.encode() + b" HTTP/" + version + b"\r\n"
    for h in headers:
        out += (h if isinstance(h, bytes) else h.encode()) + b"\r\n"
    return out + b"\r\n" + body


AUTH = lambda: "Authorization: Bearer " + token("alice")  # noqa: E731
JSON = "Content-Type: application/json"

# --- smuggling shapes: 400 (or 501/413 for what llhttp names so) and the connection closes ------
# (name, request bytes, statuses accepted)
SMUGGLING = [
    ("CL and TE together", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Length: 4",
                                                            "Transfer-Encoding: chunked"], b"0\r\n\r\n"), (400,)),
    ("two different CL", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Length: 2",
                                                          "Content-Length: 13"], b"{}"), (400,)),
    ("CL list", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Length: 2, 2"], b"{}"), (400,)),
    ("CL with a sign", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Length: +2"], b"{}"), (400,)),
    ("TE not chunked last", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON,
                                                             "Transfer-Encoding: chunked, identity"], b"0\r\n\r\n"), (400, 501)),
    ("TE xchunked", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Transfer-Encoding: xchunked"], b""), (400, 501)),
    ("TE folded", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Transfer-Encoding:", " chunked"],
                              b"0\r\n\r\n"), (400,)),
    ("obs-fold continuation", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH(), "X-A: 1", " folded"]), (400,)),
    ("space before colon", lambda: req("GET", "/v1/me/context", ["Host : a", AUTH()]), (400,)),
    ("bare LF line ends", lambda: b"GET /v1/me/context HTTP/1.1\nHost: a\n" + AUTH().encode() + b"\n\n", (400,)),
    ("bare CR in a value", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH(), b"X-A: a\rb"]), (400,)),
    ("chunk size overflow", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Transfer-Encoding: chunked"],
                                        b"fffffffffffffffffff1\r\nx\r\n0\r\n\r\n"), (400, 413)),
    ("chunk extension with a bare CR", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON,
                                                                        "Transfer-Encoding: chunked"],
                                                   b"2;a=\rb\r\n{}\r\n0\r\n\r\n"), (400,)),
    ("a NUL in the target", lambda: b"GET /v1/me/context\x00x HTTP/1.1\r\nHost: a\r\n" + AUTH().encode() + b"\r\n\r\n", (400,)),
    ("a space in the target", lambda: b"GET /v1/me /context HTTP/1.1\r\nHost: a\r\n" + AUTH().encode() + b"\r\n\r\n", (400,)),
    ("HTTP/2 preface", lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400,)),
    ("unknown version", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH()], version=b"1.7"), (400, 505)),
    ("two Host", lambda: req("GET", "/v1/me/context", ["Host: a", "Host: b", AUTH()]), (400,)),
    ("Host missing", lambda: req("GET", "/v1/me/context", [AUTH()]), (400,)),
    ("two Authorization, the second forged", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH(),
                                                                                   "Authorization: Bearer x"]), (400,)),
    ("two Content-Type", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Type: text/plain",
                                                          "Content-Length: 2"], b"{}"), (400,)),
    ("header name with a slash", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH(), "X/Y: 1"]), (400,)),
]


@pytest.mark.parametrize("name,make,statuses", SMUGGLING, ids=[c[0] for c in SMUGGLING])
def test_smuggling_shapes(hp, name, make, statuses):
    before = jobs(hp)
    c = RawConn(hp.port)
    try:
        c.send(make())
        resp = c.read_response()
        assert resp is not None, "no answer"
        status, headers, body = resp
        assert status in statuses, (status, body[:200])
        assert headers.get("connection") == "close"
        assert c.at_eof(), "the connection stayed open after a framing error"
    finally:
        c.close()
    assert jobs(hp) == before, "a query reached Postgres"


# --- forged and malformed tokens: 401, the connection stays usable, nothing reaches Postgres --
FORGED = [
    ("alg none", lambda: b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "alice", "exp": now() + 60}) + "."),
    ("alg None", lambda: b64({"alg": "None"}) + "." + b64({"sub": "alice", "exp": now() + 60}) + "."),
    ("alg missing", lambda: hs256({"typ": "JWT"}, {"sub": "alice", "exp": now() + 60})),
    ("crit b64", lambda: hs256({"alg": "HS256", "b64": False, "crit": ["b64"]}, {"sub": "alice", "exp": now() + 60})),
    ("crit empty", lambda: hs256({"alg": "HS256", "crit": []}, {"sub": "alice", "exp": now() + 60})),
    ("unknown kid", lambda: hs256({"alg": "HS256", "kid": "nope"}, {"sub": "alice", "exp": now() + 60})),
    ("duplicate role", lambda: hs256({"alg": "HS256"}, b'{"sub":"alice","role":"user","role":"service","exp":%d}' % (now() + 60))),
    ("duplicate sub", lambda: hs256({"alg": "HS256"}, b'{"sub":"alice","sub":"bob","exp":%d}' % (now() + 60))),
    ("NUL in sub", lambda: hs256({"alg": "HS256"}, {"sub": "alice\u0000bob", "exp": now() + 60})),
    ("NUL nested", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "app": {"r": "a\u0000"}, "exp": now() + 60})),
    ("no exp", lambda: hs256({"alg": "HS256"}, {"sub": "alice"})),
    ("expired", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "exp": now() - 3600})),
    ("not yet valid", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "exp": now() + 7200, "nbf": now() + 3600})),
    ("exp a string", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "exp": str(now() + 60)})),
    ("wrong secret", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "exp": now() + 60}, secret="x" * 40)),
    ("truncated signature", lambda: token("alice")[:-4]),
    ("signature of another token", lambda: token("alice").rsplit(".", 1)[0] + "." + token("bob").rsplit(".", 1)[1]),
    ("four parts", lambda: token("alice") + ".x"),
    ("bad base64", lambda: "e30.e30.!!!"),
    ("header not JSON", lambda: b64(b"not json") + "." + b64({"sub": "alice"}) + ".x"),
    ("payload an array", lambda: hs256({"alg": "HS256"}, b"[1,2]")),
    ("9 KB token", lambda: hs256({"alg": "HS256"}, {"sub": "alice", "pad": "a" * 7000, "exp": now() + 60})),
    ("deep header, forged", lambda: b64(b'{"alg":"HS256","x":' + b"[" * 2500 + b"]" * 2500 + b"}") + "." +
     b64({"sub": "alice", "exp": now() + 60}) + ".c2ln"),
    ("no sub", lambda: hs256({"alg": "HS256"}, {"exp": now() + 60})),
    ("empty sub", lambda: hs256({"alg": "HS256"}, {"sub": "", "exp": now() + 60})),
]


@pytest.mark.parametrize("name,make", FORGED, ids=[c[0] for c in FORGED])
def test_forged_tokens(hp, name, make):
    before = jobs(hp)
    tok = make()
    c = RawConn(hp.port)
    try:
        c.send(req("GET", "/v1/me/context", ["Host: a", "Authorization: Bearer " + tok]))
        status, headers, body = c.read_response()
        assert status == 401, (name, status, body[:200])
        assert json.loads(body)["code"] in ("invalid_token", "missing_token")
        assert headers["www-authenticate"].startswith("Bearer")
        # A refused token is not a framing error: the connection stays usable.
        c.send(req("GET", "/healthz", ["Host: a"]))
        assert c.read_response()[0] == 200
    finally:
        c.close()
    assert jobs(hp) == before, "a query reached Postgres"


# --- injection attempts: refused before any SQL, or bound as a value Postgres rejects ----------
INJECTION_REFUSED = [
    ("function name with SQL", "GET", "/rpc/add%3B%20DROP%20TABLE%20canary", None, (404,)),
    ("function name with a quote", "GET", "/rpc/add%22%29--", None, (404,)),
    ("function name with a path", "GET", "/rpc/..%2Fadd", None, (404,)),
    ("qualified function name", "GET", "/rpc/pg_catalog.pg_sleep?seconds=5", None, (404,)),
    ("function not allow-listed", "GET", "/rpc/pg_sleep?seconds=5", None, (404,)),
    ("argument name with SQL", "GET", "/rpc/add?a=1&b%29%3BDROP=2", None, (404,)),
    ("argument name with a quote", "POST", "/rpc/add", {"a": 1, "b\"": 2}, (404,)),
    ("argument twice", "GET", "/rpc/add?a=1&a=2&b=3", None, (400,)),
    ("argument separators in a value", "GET", "/rpc/add?a=1%1Eb%1Fv2", None, (404,)),
    ("JSON body not an object", "POST", "/rpc/add", b'"a"', (400,)),
    ("JSON deep", "POST", "/rpc/add", b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}", (400, 413)),
    ("JSON duplicate names", "POST", "/rpc/add", b'{"a":1,"a":2,"b":3}', (400,)),
    ("JSON number overflow", "POST", "/rpc/add", b'{"a":2e308,"b":1}', (400,)),
    ("a percent-escape cut short", "GET", "/rpc/add?a=%2&b=1", None, (400,)),
]


@pytest.mark.parametrize("name,method,path,body,statuses", INJECTION_REFUSED,
                         ids=[c[0] for c in INJECTION_REFUSED])
def test_injection_refused_before_sql(hp, cluster, name, method, path, body, statuses):
    before = jobs(hp)
    status, _, resp = call(hp.port, method, path, token("alice"), body)
    assert status in statuses, (name, status, resp)
    assert jobs(hp) == before, "a query reached Postgres"
    assert cluster.psql("SELECT to_regclass('public.canary') IS NOT NULL") == "t"


INJECTION_BOUND = [
    ("SQL in an integer value", "/rpc/add?a=1);DROP%20TABLE%20canary;--&b=2", "22P02"),
    ("quotes in an integer value", "/rpc/add?a='1'&b=2", "22P02"),
    ("a huge integer", "/rpc/add?a=99999999999999999999999&b=2", "22003"),
    ("unicode digits", "/rpc/add?a=%D9%A1&b=2", "22P02"),
]


@pytest.mark.parametrize("name,path,sqlstate", INJECTION_BOUND, ids=[c[0] for c in INJECTION_BOUND])
def test_injection_bound_as_a_value(hp, cluster, name, path, sqlstate):
    status, _, resp = call(hp.port, "GET", path, token("alice"))
    assert status == 400 and resp["code"] == sqlstate, (name, status, resp)
    assert cluster.psql("SELECT to_regclass('public.canary') IS NOT NULL") == "t"


# --- oversized inputs: the limit's status, nothing reaches Postgres ---------------------------
OVERSIZED = [
    ("a 9 KB target", lambda: req("GET", "/rpc/add?a=" + "1" * 9000 + "&b=1", ["Host: a", AUTH()]), 414, True),
    ("17 KB of headers", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH(), "X-Pad: " + "a" * 17000]), 431, True),
    ("65 headers", lambda: req("GET", "/v1/me/context", ["Host: a", AUTH()] + ["X-H%d: 1" % i for i in range(64)]), 431, True),
    ("a 1 MiB body announced", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Content-Length: 1048576"]), 413, True),
    ("a token past the header limit", lambda: req("GET", "/v1/me/context", ["Host: a", "Authorization: Bearer " +
                                                                             hs256({"alg": "HS256"}, {"sub": "alice", "pad": "a" * 20000})]), 431, True),
    ("a 100 KB chunked body", lambda: req("POST", "/rpc/add", ["Host: a", AUTH(), JSON, "Transfer-Encoding: chunked"],
                                           b"".join(b"2710\r\n" + b"a" * 10000 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"), 413, True),
]


@pytest.mark.parametrize("name,make,status,closes", OVERSIZED, ids=[c[0] for c in OVERSIZED])
def test_oversized_inputs(hp, name, make, status, closes):
    before = jobs(hp)
    c = RawConn(hp.port)
    try:
        try:
            c.send(make())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy answered and closed before taking all of it
        resp = c.read_response()
        assert resp is not None, "no answer"
        assert resp[0] == status, (name, resp[0], resp[2][:200])
        if closes:
            assert resp[1].get("connection") == "close" and c.at_eof()
    finally:
        c.close()
    assert jobs(hp) == before, "a query reached Postgres"
