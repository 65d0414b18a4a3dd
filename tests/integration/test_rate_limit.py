"""Rate limiting (docs/CONFIG.md "rate_limit", docs/API.md "429"): GCRA per key, exact across the
workers of a process; 429 with Retry-After and the RateLimit-Policy/RateLimit fields of
draft-ietf-httpapi-ratelimit-headers; keys by JWT subject, API-key header or client address
(X-Forwarded-For believed only from trusted proxies); dry run. Real Postgres, real sockets. The
accuracy test paces its requests by the wall clock and allows one burst of slack; it asserts
counts, never durations."""
import http.client as httpclient
import re
import threading
import time
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import Cluster, get_json, http, run_cli

FIXTURE = Path(__file__).with_name("api_fixture.sql").read_text()


@pytest.fixture(scope="module")
def lcluster():
    c = Cluster(dbname="ratelimit")
    c.psql(FIXTURE)
    yield c
    c.destroy()


def policy(routes, rate, burst=None, key=None, mode=None):
    p = {"routes": routes, "rate": rate}
    if burst is not None:
        p["burst"] = burst
    if key is not None:
        p["key"] = key
    if mode is not None:
        p["mode"] = mode
    return p


def metric(port, name, labels):
    text = http(port, "GET", "/metrics")[2].decode()
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def test_a_burst_gets_429_with_the_fields_and_waiting_retry_after_succeeds(lcluster):
    p = start_proxy(lcluster, "rl-burst", cache={"enabled": False},
                    rate_limit={"policies": {"me": policy(["/rpc/*"], "60/min", burst=2)}})
    try:
        alice = token("alice")
        s1, h1, _ = call(p.port, "GET", "/rpc/add?a=1&b=2", alice)
        s2, h2, _ = call(p.port, "GET", "/rpc/add?a=1&b=2", alice)
        s3, h3, b3 = call(p.port, "GET", "/rpc/add?a=1&b=2", alice)
        assert (s1, s2, s3) == (200, 200, 429)
        # RFC 9651 lists: the policy (quota per window, as configured) and what is left of it.
        assert h1["ratelimit-policy"] == '"me";q=60;w=60'
        assert h1["ratelimit"] == '"me";r=1;t=1'
        assert h2["ratelimit"] == '"me";r=0;t=2'
        assert h3["ratelimit-policy"] == '"me";q=60;w=60'
        assert h3["ratelimit"] == '"me";r=0;t=2'
        assert h3["retry-after"] == "1"
        assert b3["code"] == "rate_limited" and '"me"' in b3["message"] and "subject" in b3["message"]
        assert "cache-control" in h3 and "no-store" in h3["cache-control"]
        # Another subject has a bucket of its own.
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("bob"))[0] == 200
        # A route outside the policy carries no fields and is never limited.
        st, hh, _ = call(p.port, "GET", "/v1/me/context", alice)
        assert st == 200 and "ratelimit" not in hh
        # The client that waits Retry-After seconds gets through.
        time.sleep(int(h3["retry-after"]))
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", alice)[0] == 200
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="me",decision="limited"') == 1
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="me",decision="allowed"') == 4
        assert metric(p.admin_port, "zonegate_rate_limit_keys", 'policy="me"') == 2
        h = get_json(p.port, "/health")[2]["rate_limit"]
        assert h["enabled"] and h["policies"][0]["name"] == "me"
        assert h["policies"][0]["routes"] == ["/rpc/*"] and h["policies"][0]["key"] == "subject"
        assert h["policies"][0]["limited"] == 1 and h["policies"][0]["bytes_per_key"] > 0
    finally:
        stop_proxy(p)


def paced_run(port, tok, rate, seconds, threads=2):
    """Sends at `rate` requests/s in total from `threads` keep-alive clients; returns the
    (status, headers) of each and the span the requests took."""
    out, lock = [], threading.Lock()
    start = time.monotonic() + 0.05
    n = int(rate * seconds)

    def client(k):
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for i in range(k, n, threads):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                conn.request("GET", "/rpc/add?a=1&b=2", headers={"Authorization": "Bearer " + tok})
                r = conn.getresponse()
                r.read()
                with lock:
                    out.append((r.status, {k2.lower(): v for k2, v in r.getheaders()}))
        finally:
            conn.close()

    ts = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out, time.monotonic() - start


@pytest.mark.parametrize("workers", [1, 2])
def test_twice_the_rate_admits_the_rate_exactly_across_workers(lcluster, workers):
    rate, burst = 20, 5
    p = start_proxy(lcluster, "rl-accuracy-%d" % workers, cache={"enabled": False},
                    server={"host": "127.0.0.1", "port": 0, "workers": workers},
                    rate_limit={"policies": {"rpc": policy(["/rpc/*"], "%d/s" % rate, burst=burst)}})
    try:
        out, span = paced_run(p.port, token("carol"), 2 * rate, 3.0)
        assert len(out) == 2 * rate * 3, len(out)  # every request was answered
        ok = sum(1 for s, _ in out if s == 200)
        limited = [h for s, h in out if s == 429]
        assert ok + len(limited) == len(out), sorted({s for s, _ in out})
        expected = burst + rate * span
        assert expected - burst - 2 <= ok <= expected + 1, (ok, expected, span)
        for h in limited:
            assert int(h["retry-after"]) >= 1
            assert h["ratelimit-policy"] == '"rpc";q=%d;w=1' % rate
            assert re.fullmatch(r'"rpc";r=0;t=\d+', h["ratelimit"]), h["ratelimit"]
        # The proxy's own count agrees with what the clients saw.
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="rpc",decision="allowed"') == ok
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="rpc",decision="limited"') == len(limited)
        # Another subject is untouched by carol's overload.
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("dave"))[0] == 200
    finally:
        stop_proxy(p)


def test_x_forwarded_for_counts_only_from_trusted_proxies(lcluster):
    addr = {"routes": ["/rpc/*"], "rate": "1/min", "burst": 2, "key": "client_address"}
    p = start_proxy(lcluster, "rl-untrusted", rate_limit={"policies": {"addr": addr}})
    try:
        # Nothing is trusted: three "different" clients are one peer, limited as one.
        st = [call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                   headers={"X-Forwarded-For": "198.51.100.%d" % i})[0] for i in range(3)]
        assert st == [200, 200, 429]
        st = call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                  headers={"Forwarded": "for=198.51.100.77"})[0]
        assert st == 429
    finally:
        stop_proxy(p)
    p = start_proxy(lcluster, "rl-trusted",
                    rate_limit={"trusted_proxies": ["127.0.0.1/32"], "policies": {"addr": addr}})
    try:
        # Loopback is the trusted proxy: each forwarded client has its own bucket.
        st = [call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                   headers={"X-Forwarded-For": "198.51.100.%d" % i})[0] for i in range(5)]
        assert st == [200] * 5
        # The client is the hop the trusted proxy saw (rightmost), not what the client wrote.
        st = [call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                   headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.9"})[0] for _ in range(3)]
        assert st == [200, 200, 429]
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                    headers={"X-Forwarded-For": "198.51.100.9"})[0] == 429
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"),
                    headers={"X-Forwarded-For": "203.0.113.1"})[0] == 200
    finally:
        stop_proxy(p)


def test_anonymous_requests_count_against_their_address_and_api_keys_by_header(lcluster):
    p = start_proxy(lcluster, "rl-anon", rate_limit={"policies": {
        "subj": policy(["/rpc/add"], "1/min", burst=2),
        "keys": policy(["/rpc/echo"], "1/min", burst=1, key="header:X-API-Key")}})
    try:
        # No token: the subject policy falls back to the client address (then 401 after it).
        st = [call(p.port, "GET", "/rpc/add?a=1&b=2")[0] for _ in range(3)]
        assert st[2] == 429 and st[0] != 429 and st[1] != 429, st
        t = token("alice")
        a = call(p.port, "GET", "/rpc/echo?x=1", t, headers={"X-API-Key": "k1"})[0]
        b = call(p.port, "GET", "/rpc/echo?x=1", t, headers={"X-API-Key": "k2"})[0]
        c = call(p.port, "GET", "/rpc/echo?x=1", t, headers={"X-API-Key": "k1"})[0]
        assert (a != 429, b != 429, c) == (True, True, 429)
    finally:
        stop_proxy(p)


def test_dry_run_refuses_nothing_and_counts(lcluster):
    p = start_proxy(lcluster, "rl-dry", rate_limit={"policies": {
        "shadow": policy(["/rpc/*"], "1/min", burst=1, mode="dry_run")}})
    try:
        t = token("alice")
        res = [call(p.port, "GET", "/rpc/add?a=1&b=2", t) for _ in range(5)]
        assert [r[0] for r in res] == [200] * 5
        assert all("ratelimit" not in r[1] for r in res)  # shadow mode leaves responses alone
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="shadow",decision="dry_run_limited"') == 4
        assert metric(p.admin_port, "zonegate_rate_limit_decisions_total",
                      'policy="shadow",decision="limited"') == 0
        pol = get_json(p.port, "/health")[2]["rate_limit"]["policies"][0]
        assert pol["mode"] == "dry_run" and pol["dry_run_limited"] == 4
        assert p.wait_for_log(lambda l: l.get("msg") == "rate limit would refuse (dry run)"
                              and l.get("policy") == "shadow", timeout=5)
    finally:
        stop_proxy(p)


def test_bad_rate_limit_config_is_refused_with_its_position(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("rate_limit:\n  policies:\n    me:\n      routes: [/v1/me/*]\n      rate: 0/s\n")
    out = run_cli(["--config", str(f), "--check-config"], timeout=30)
    assert out.returncode == 1
    assert "bad.yaml:5:13: rate_limit.policies.me.rate" in out.stdout + out.stderr


def test_cached_answers_and_304s_carry_the_fields_too(lcluster):
    p = start_proxy(lcluster, "rl-cached",
                    rate_limit={"policies": {"me": policy(["/v1/me/*"], "10/s", burst=20)}})
    try:
        t = token("alice")
        first = call(p.port, "GET", "/v1/me/context", t)
        hit = call(p.port, "GET", "/v1/me/context", t)
        assert first[0] == hit[0] == 200
        assert hit[1]["x-cache"] == "HIT", hit[1]
        assert first[1]["ratelimit"] == '"me";r=19;t=1'
        assert re.fullmatch(r'"me";r=1[78];t=1', hit[1]["ratelimit"]), hit[1]["ratelimit"]
        nm = call(p.port, "GET", "/v1/me/context", t, headers={"If-None-Match": hit[1]["etag"]})
        assert nm[0] == 304 and nm[1]["ratelimit-policy"] == '"me";q=10;w=1'
    finally:
        stop_proxy(p)
