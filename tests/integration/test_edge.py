"""The proxy's edge over real sockets (docs/SECURITY.md, "The proxy"): HTTP framing to RFC
9110/9112 (field names are tokens, exactly one Host, no duplicate singleton fields, trailers never
become headers, control bytes never echoed), security headers, the admin listener (its routes are
nowhere else, /health redacted on the public side, the sign-in throttle, Secure cookies, sessions
revoked on sign-out), and slow or abusive clients (connection caps answered with a clean 503, a
client that never reads, one that never sends)."""
import json
import socket
import time
from pathlib import Path

import pytest

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import RawConn, get_json, http, request_bytes, wait_for


@pytest.fixture(scope="module")
def ep(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = start_proxy(cluster, "edge", server={"workers": 1})
    yield p
    stop_proxy(p)


def jobs(p):
    """Database jobs the pool ran so far (zonegate_pool_jobs_total)."""
    text = http(p.admin_port, "GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith("zonegate_pool_jobs_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no zonegate_pool_jobs_total")


def raw_exchange(port, data, timeout=5):
    """Sends raw bytes; returns (status, headers, body, closed) of the first response."""
    c = RawConn(port, timeout=timeout)
    try:
        c.send(data)
        resp = c.read_response()
        assert resp is not None, "no response to %r" % data[:80]
        return resp + (c.at_eof(timeout),)
    finally:
        c.close()


# --- HTTP framing -----------------------------------------------------------------------------

BAD_FRAMING = [
    ("space in a field name", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n"),
    ("no Host in HTTP/1.1", b"GET /v1/me/context HTTP/1.1\r\n\r\n"),
    ("two Host fields", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("two Authorization fields", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\n"
                                 b"Authorization: Bearer x\r\nAuthorization: Bearer y\r\n\r\n"),
    ("two Content-Type fields", b"POST /rpc/add HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                                b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}"),
    ("two Cookie fields", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"),
    ("a control byte in a value", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n"),
    ("a NUL in a field name", b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nX\x00A: 1\r\n\r\n"),
]


@pytest.mark.parametrize("what,data", BAD_FRAMING, ids=[w for w, _ in BAD_FRAMING])
def test_bad_framing_is_400_and_closes_before_any_query(ep, what, data):
    before = jobs(ep)
    status, headers, body, closed = raw_exchange(ep.port, data)
    assert status == 400, (what, status, body)
    assert json.loads(body)["code"] == "malformed_request"
    assert headers.get("connection") == "close" and closed
    assert jobs(ep) == before


def test_http10_without_host_is_accepted(ep):
    status, _, _, _ = raw_exchange(ep.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert status == 200


def test_a_trailer_never_becomes_a_header(ep):
    """An Authorization sent as a trailer of a chunked body (after the headers a gateway
    checked) is not the request's: the request is unauthenticated."""
    body = b'{"a":1,"b":2}'
    chunked = b"%x\r\n%s\r\n0\r\nAuthorization: Bearer %s\r\n\r\n" % (len(body), body, token("alice").encode())
    data = (b"POST /rpc/add HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    before = jobs(ep)
    status, headers, resp, _ = raw_exchange(ep.port, data)
    assert status == 401, resp
    assert json.loads(resp)["code"] == "missing_token"
    assert jobs(ep) == before
    # The same call with the header is answered: the trailer was the only difference.
    data = (b"POST /rpc/add HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token("alice").encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    status, _, resp, _ = raw_exchange(ep.port, data)
    assert status == 200 and json.loads(resp) == 3


def test_security_headers_on_api_answers(ep):
    for path, tok in (("/v1/me/context", None), ("/v1/me/context", token("alice")), ("/nope", None)):
        status, h, _ = call(ep.port, "GET", path, tok)[:3]
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # The dashboard keeps its own policy (one CSP header, not two).
    status, h, _ = http(ep.admin_port, "GET", "/admin/", {"Authorization": "Bearer " + ADMIN})
    assert status == 200 and "script-src 'self'" in h["content-security-policy"]


def test_control_bytes_from_a_request_never_reach_a_response_header(ep):
    """A token whose header names an algorithm with CR/LF: the 401's WWW-Authenticate carries
    no raw control byte (the response is not split)."""
    import base64
    hdr = base64.urlsafe_b64encode(b'{"alg":"HS256\\r\\nSet-Cookie: x=1","typ":"JWT"}').rstrip(b"=")
    bad = hdr.decode() + ".e30.c2ln"
    c = RawConn(ep.port)
    try:
        c.send(request_bytes("GET", "/v1/me/context", {"Authorization": "Bearer " + bad}))
        status, headers, _ = c.read_response()
    finally:
        c.close()
    assert status == 401
    assert "set-cookie" not in headers
    assert all("\r" not in v and "\n" not in v for v in headers.values())


# --- the admin listener -----------------------------------------------------------------------

def test_admin_routes_live_on_the_admin_listener_only(ep):
    assert ep.admin_port and ep.admin_port != ep.port
    for method, path in (("GET", "/metrics"), ("GET", "/admin/"), ("GET", "/admin/cache/stats"),
                         ("POST", "/admin/login"), ("GET", "/admin/api/series")):
        status, _, body = http(ep.port, method, path, {"Authorization": "Bearer " + ADMIN})
        assert status == 404, (path, status)
    assert http(ep.admin_port, "GET", "/metrics")[0] == 200
    assert call(ep.admin_port, "GET", "/admin/cache/stats", ADMIN)[0] == 200
    # And the apps' routes are not on the admin listener.
    assert call(ep.admin_port, "GET", "/v1/me/context", token("alice"))[0] == 404
    for path in ("/healthz", "/readyz", "/openapi.json", "/health"):
        assert http(ep.admin_port, "GET", path)[0] in (200, 503), path
        assert http(ep.port, "GET", path)[0] in (200, 503), path


def test_public_health_leaves_out_error_texts(cluster):
    """/health on the public listener says whether there is an error; the admin one says what
    (libpq's messages name hosts, ports and roles)."""
    # A proxy whose database is not there: started without waiting for the catalog.
    from test_api import config
    from zg import Proxy
    p = Proxy(config(cluster, database={"conninfo": "host=/nonexistent/secret-socket-dir dbname=x"}),
              name="edge-health")
    try:
        wait_for(lambda: get_json(p.admin_port, "/health")[2]["postgres"][0]["error"], what="a db error")
        full = get_json(p.admin_port, "/health")[2]
        public = get_json(p.port, "/health")[2]
        assert "secret-socket-dir" in full["postgres"][0]["error"], full["postgres"][0]
        assert "secret-socket-dir" not in json.dumps(public)
        assert public["postgres"][0]["error"] == "(details on the admin listener)"
        assert public["postgres"][0]["connected"] is False and public["status"] == full["status"]
        assert "server_version" not in public["postgres"][0]
        assert isinstance(public["rpc"]["refused"], int) and isinstance(full["rpc"]["refused"], list)
    finally:
        stop_proxy(p)


def login(port, tok, client=None):
    return http(port, "POST", "/admin/login", {"Content-Type": "application/x-www-form-urlencoded"},
                "token=" + tok)


def test_sign_in_is_throttled_per_client(cluster):
    p = start_proxy(cluster, "edge-login", admin={"login_rate": "3/min"})
    try:
        codes = [login(p.admin_port, "wrong-token")[0] for _ in range(3)]
        assert codes == [401, 401, 401]
        status, h, body = login(p.admin_port, "wrong-token")
        assert status == 429 and int(h["retry-after"]) >= 1
        # Past the throttle even the right token is not looked at.
        assert login(p.admin_port, ADMIN)[0] == 429
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        assert 'zonegate_admin_logins_total{outcome="throttled"} 2' in text
    finally:
        stop_proxy(p)


def test_session_cookie_secure_flag_and_revocation(cluster):
    p = start_proxy(cluster, "edge-session", admin={"secure_cookie": True})
    try:
        status, h, _ = login(p.admin_port, ADMIN)
        assert status == 303
        cookie = h["set-cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        value = cookie.split(";")[0]
        second = login(p.admin_port, ADMIN)[1]["set-cookie"].split(";")[0]
        assert http(p.admin_port, "GET", "/admin/api/series", {"Cookie": value})[0] == 200
        assert http(p.admin_port, "GET", "/admin/api/series", {"Cookie": second})[0] == 200
        # Signing out with one session ends both (the server-side epoch moved).
        status, h, _ = http(p.admin_port, "POST", "/admin/logout", {"Cookie": value})
        assert status == 303 and "Max-Age=0" in h["set-cookie"]
        assert http(p.admin_port, "GET", "/admin/api/series", {"Cookie": value})[0] == 401
        assert http(p.admin_port, "GET", "/admin/api/series", {"Cookie": second})[0] == 401
        # A sign-out without a session ends nobody's.
        third = login(p.admin_port, ADMIN)[1]["set-cookie"].split(";")[0]
        assert http(p.admin_port, "POST", "/admin/logout")[0] == 303
        assert http(p.admin_port, "GET", "/admin/api/series", {"Cookie": third})[0] == 200
    finally:
        stop_proxy(p)


# --- slow and abusive clients -----------------------------------------------------------------

def refused(port):
    """Opens a connection and returns the proxy's answer to it without sending a byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def test_per_address_and_global_caps_refuse_with_a_clean_503(cluster):
    p = start_proxy(cluster, "edge-caps", server={"workers": 1, "max_connections": 6,
                                                  "max_connections_per_address": 3})
    held = []
    try:
        for _ in range(3):
            c = RawConn(p.port)
            c.send(request_bytes("GET", "/healthz"))
            assert c.read_response()[0] == 200
            held.append(c)
        # The fourth connection from 127.0.0.1: answered at once, then closed.
        answer = refused(p.port)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"Retry-After: 1" in head and b"Connection: close" in head
        assert b"Proxy-Status: zonegate; error=connection_limit_reached" in head
        assert json.loads(body)["code"] == "too_many_connections"
        # Another loopback address (127.0.0.2 reaches the same listener) still gets in...
        if p.port:
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", p.port))
            s.sendall(request_bytes("GET", "/healthz"))
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            held.append(s)
        # ...and the admin listener is apart from these caps.
        assert http(p.admin_port, "GET", "/metrics")[0] == 200
        # A slot that frees is usable again.
        held.pop(0).close()
        wait_for(lambda: http(p.port, "GET", "/healthz")[0] == 200, what="a freed slot")
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        assert 'zonegate_connections_refused_total{listener="public",reason="per_address"} ' in text
        n = [l for l in text.splitlines()
             if l.startswith('zonegate_connections_refused_total{listener="public",reason="per_address"}')]
        assert int(n[0].split()[1]) >= 1
    finally:
        for c in held:
            c.close()
        stop_proxy(p)


def test_a_client_that_never_reads_is_closed_after_write_timeout(cluster):
    """It pipelines many requests for a large answer and never reads: the proxy queues at most
    max_output_bytes plus one response for it, stops reading its requests, and closes it after
    write_timeout; other clients are answered meanwhile."""
    p = start_proxy(cluster, "edge-noread", server={"workers": 1, "write_timeout": "1s",
                                                    "max_output_bytes": "64KiB"})
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        s.connect(("127.0.0.1", p.port))
        # 300 answers of 30 KB: more than the kernel's send buffer (4 MiB at most) takes.
        s.sendall(request_bytes("GET", "/openapi.json") * 300)
        wait_for(lambda: 'zonegate_connections_closed_total{reason="write_timeout"} 1' in
                 http(p.admin_port, "GET", "/metrics")[2].decode(), timeout=20, what="write timeout")
        assert http(p.port, "GET", "/healthz")[0] == 200
        s.close()
    finally:
        stop_proxy(p)


def test_a_connection_that_sends_nothing_gets_header_timeout_not_idle_timeout(cluster):
    p = start_proxy(cluster, "edge-silent", server={"workers": 1, "header_timeout": "500ms",
                                                    "idle_timeout": "60s"})
    try:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=20)
        t0 = time.time()
        assert s.recv(10) == b""  # closed by the proxy, without a response
        assert time.time() - t0 < 15
        s.close()
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        assert 'zonegate_connections_closed_total{reason="header_timeout"} 1' in text
    finally:
        stop_proxy(p)


def test_obs_fold_split_across_reads_is_refused(ep):
    """A folded line whose continuation arrives in a read of its own (the fold check looks back
    into the previous read)."""
    c = RawConn(ep.port)
    try:
        c.send(b"GET /v1/me/context HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n")
        time.sleep(0.2)
        c.send(b"  folded\r\n\r\n")
        status, headers, body = c.read_response()
        assert status == 400 and b"folding" in body
        assert c.at_eof()
    finally:
        c.close()
