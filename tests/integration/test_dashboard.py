"""The live dashboard in real headless Chromium (tests/e2e/dashboard.mjs): sign-in with a wrong
and a right admin token, no console errors, charts that render and move while traffic runs; a
screenshot is saved under tests/.artifacts/. Also /health, /metrics (checked by promtool) and
the JSON logs."""
import json
import re
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import ARTIFACTS, ROOT, Cluster, http, wait_for


@pytest.fixture(scope="module")
def dp(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = start_proxy(cluster, "dashboard", health={"check_interval": "200ms"},
                    log={"level": "info", "slow_query": "100ms"},
                    rate_limit={"policies": {"me": {"routes": ["/v1/me/*"], "rate": "10000/s"}}})
    yield p
    stop_proxy(p)


def traffic(port, stop, errors=False):
    t = token("alice")
    while not stop.is_set():
        call(port, "GET", "/v1/me/context", t)
        call(port, "GET", "/rpc/add?a=1&b=2", t)
        if errors:
            call(port, "GET", "/rpc/fail?msg=x", t)
        time.sleep(0.01)


def test_dashboard_in_headless_chromium(dp):
    # Never skipped: make deps installs Debian's chromium; without it this test fails.
    assert shutil.which("chromium") or os.path.exists("/usr/bin/chromium"), "chromium is missing"
    stop = threading.Event()
    th = threading.Thread(target=traffic, args=(dp.port, stop))
    th.start()
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        out = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "dashboard.mjs"),
                              "http://127.0.0.1:%d" % dp.admin_port, ADMIN, str(shot)],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    finally:
        stop.set()
        th.join()
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["unauthenticatedStatus"] == 401 and r["formShown"]
    assert r["wrongTokenStatus"] == 401 and "not the admin token" in r["wrongTokenMessage"]
    assert r["consoleErrors"] == [] and r["pageErrors"] == [] and r["failedRequests"] == []
    assert r["samplesGrew"]
    assert r["canvases"] >= 6
    assert r["status"] == "ok" and r["db"].startswith("up")
    assert r["breaker"].startswith("closed, 0 retries"), r["breaker"]
    # The traffic's /v1/me/context calls count against the one policy; none is refused.
    m = re.match(r"1 policy, (\d+) allowed, 0 limited, (\d+) keys$", r["ratelimit"])
    assert m and int(m.group(1)) > 0 and int(m.group(2)) >= 1, r["ratelimit"]
    assert max(r["series"]) > 0, r["series"]  # the traffic shows in requests/s
    assert shot.stat().st_size > 10000


def test_dashboard_data_needs_the_admin_token(dp):
    assert http(dp.admin_port, "GET", "/admin/api/series")[0] == 401
    assert http(dp.admin_port, "GET", "/admin/api/series", {"Authorization": "Bearer nope"})[0] == 401
    assert http(dp.admin_port, "GET", "/admin/assets/app.js")[0] == 401
    assert http(dp.admin_port, "GET", "/admin/assets/app.css")[0] == 200  # the sign-in page's style
    status, headers, _ = http(dp.admin_port, "GET", "/admin/", {"Authorization": "Bearer " + ADMIN})
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    # A forged or expired session cookie is refused.
    for c in ("zg_admin=1.abc", "zg_admin=99999999999.%s" % ("0" * 64), "zg_admin=1000.%s" % ("0" * 64)):
        assert http(dp.admin_port, "GET", "/admin/api/series", {"Cookie": c})[0] == 401
    status, headers, _ = http(dp.admin_port, "POST", "/admin/login", {"Content-Type": "application/x-www-form-urlencoded"},
                              "token=" + ADMIN)
    assert status == 303 and headers["location"] == "/admin/"
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    assert ADMIN not in cookie
    assert http(dp.admin_port, "GET", "/admin/api/series", {"Cookie": "x=1; " + cookie})[0] == 200


def promtool_check(text, tmp_path):
    f = tmp_path / "metrics.txt"
    f.write_text(text)
    out = subprocess.run(["promtool", "check", "metrics"], stdin=f.open(), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def metric(text, name, **labels):
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all('%s="%s"' % kv in head for kv in labels.items()):
            total += float(value)
            found = True
    return total if found else None


def test_metrics_are_valid_and_move_with_traffic(dp, tmp_path):
    t = token("alice")
    call(dp.port, "GET", "/v1/me/context", t)
    before = http(dp.admin_port, "GET", "/metrics")[2].decode()
    promtool_check(before, tmp_path)
    call(dp.port, "GET", "/v1/me/context", t)          # a hit
    call(dp.port, "GET", "/rpc/fail?msg=boom", t)      # a 400
    call(dp.port, "GET", "/no/such/route")              # a 404
    status, headers, body = http(dp.admin_port, "GET", "/metrics")
    after = body.decode()
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool_check(after, tmp_path)
    assert metric(after, "zonegate_cache_hits_total", route="me_context") == \
        metric(before, "zonegate_cache_hits_total", route="me_context") + 1
    assert metric(after, "zonegate_http_requests_total", route="rpc", code="400") == \
        (metric(before, "zonegate_http_requests_total", route="rpc", code="400") or 0) + 1
    assert metric(after, "zonegate_http_requests_total", route="unmatched", code="404") >= 1
    assert metric(after, "zonegate_http_request_duration_seconds_count", route="me_context") >= 2
    assert metric(after, "zonegate_upstream_query_duration_seconds_count", kind="rpc") >= 1
    assert metric(after, "zonegate_listen_up") == 1 and metric(after, "zonegate_database_up") == 1
    assert metric(after, "process_resident_memory_bytes") > 1e6
    assert metric(after, "zonegate_pool_connections", state="ready") >= 1


def test_health_reflects_a_stopped_postgres_within_one_interval():
    c2 = Cluster(dbname="health")
    try:
        c2.psql(Path(__file__).with_name("api_fixture.sql").read_text())
        p = start_proxy(c2, "health", health={"check_interval": "1s"},
                        database={"conninfo": c2.conninfo, "pool": {"reconnect_max": "300ms"}})
        try:
            def health():
                return json.loads(http(p.admin_port, "GET", "/health")[2])  # in full
            wait_for(lambda: health()["status"] == "ok", timeout=20, what="/health to be ok")
            h = health()
            assert h["status"] == "ok" and h["postgres"][0]["server_version"].startswith("15")
            assert h["postgres"][0]["in_recovery"] is False and h["listen"]["up"] is True
            assert h["pool"]["ready"] >= 1 and h["version"] and h["build"] and h["uptime_seconds"] > 0
            c2.stop()
            wait_for(lambda: not health()["postgres"][0]["connected"], timeout=20,
                     what="/health to report the stopped database")
            h = health()
            assert h["status"] in ("degraded", "unavailable") and h["postgres"][0]["error"]
            c2.start()
            deadline = time.time() + 15
            while health()["status"] != "ok":
                assert time.time() < deadline, "no recovery"
                time.sleep(0.1)
        finally:
            stop_proxy(p)
    finally:
        c2.destroy()


def test_log_lines_are_json_with_the_request_id(dp):
    _, h, _ = http(dp.port, "GET", "/v1/me/context", {"Authorization": "Bearer " + token("bob"),
                                                      "X-Request-Id": "log-check-1"})
    line = dp.wait_for_log(lambda l: l.get("msg") == "access" and l.get("request_id") == "log-check-1")
    for key in ("ts", "level", "route", "status", "latency_ms", "upstream_ms", "client", "method", "path"):
        assert key in line, key
    assert line["user"] == "bob" and line["cache"] in ("hit", "miss") and line["route"] == "me_context"
    # A query above log.slow_query gets a warn line with the same request id.
    http(dp.port, "POST", "/rpc/slow", {"Authorization": "Bearer " + token("bob"),
                                       "Content-Type": "application/json", "X-Request-Id": "slow-1"},
         '{"seconds": 0.25}')
    slow = dp.wait_for_log(lambda l: l.get("msg") == "slow query" and l.get("request_id") == "slow-1")
    assert slow["level"] == "warn" and slow["upstream_ms"] >= 200
    # Every line the proxy wrote is JSON.
    assert all(json.loads(raw) for raw in dp.raw if raw.strip())
