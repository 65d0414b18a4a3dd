"""Behaviour docs/ promise that no other test pinned down: the security headers on every kind of
answer, the admin API when no admin token is configured, logout, and 501 for /v1/zones/at
against an extension too old to have zone_at."""
import threading
from pathlib import Path

import pytest

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import http, wait_sleeping


@pytest.fixture(scope="module")
def dp(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = start_proxy(cluster, "documented")
    yield p
    stop_proxy(p)


@pytest.mark.parametrize("method,path,headers", [
    ("GET", "/healthz", {}),
    ("GET", "/nope", {}),                                     # 404
    ("GET", "/v1/me/context", {}),                            # 401
    ("DELETE", "/healthz", {}),                               # 405
    ("GET", "/v1/me/context", {"Authorization": "Bearer " + token("alice")}),
    ("GET", "/admin/", {"Authorization": "Bearer " + ADMIN}),
])
def test_security_headers_on_every_answer(dp, method, path, headers):
    status, h, _ = http(dp.port, method, path, headers)
    assert status in (200, 401, 404, 405), status
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"


def test_logout_clears_the_session_cookie(dp):
    status, h, _ = http(dp.admin_port, "POST", "/admin/logout")
    assert status == 303 and h["location"] == "/admin/"
    cookie = h["set-cookie"]
    assert cookie.startswith("zg_admin=;") and "Max-Age=0" in cookie and "HttpOnly" in cookie


def test_admin_api_is_disabled_without_an_admin_token(cluster):
    p = start_proxy(cluster, "no-admin", auth={"admin_token": ""})
    try:
        for path in ("/admin/cache/stats",):
            status, _, body = call(p.admin_port, "GET", path, ADMIN)
            assert status == 403 and body["code"] == "admin_disabled", body
        status, _, body = call(p.admin_port, "POST", "/admin/cache/purge", ADMIN)
        assert status == 403 and body["code"] == "admin_disabled"
    finally:
        stop_proxy(p)


def test_zone_at_is_501_on_an_extension_without_it(cluster):
    cluster.psql("DROP DATABASE IF EXISTS old_ext", db="postgres")
    cluster.psql("CREATE DATABASE old_ext", db="postgres")
    try:
        cluster.psql("CREATE EXTENSION zonegate VERSION '0.3'", db="old_ext")
        conninfo = cluster.conninfo.replace("dbname=%s" % cluster.dbname, "dbname=old_ext")
        p = start_proxy(cluster, "old-ext", database={"conninfo": conninfo}, rpc={"functions": []})
        try:
            status, _, body = call(p.port, "GET", "/v1/zones/at?lon=1&lat=1", token("alice"))
            assert status == 501 and body["code"] == "not_implemented", body
            assert "ALTER EXTENSION zonegate UPDATE" in body["hint"]
        finally:
            stop_proxy(p)
    finally:
        cluster.psql("DROP DATABASE IF EXISTS old_ext", db="postgres")


def test_a_terminated_backend_answers_503_with_retry_after(cluster, dp):
    """docs/API.md: a request whose backend Postgres ends mid-query gets 503 with 57P01 (or
    PGRST001 when the socket broke first) and Retry-After, and the proxy serves the next one."""
    result = {}
    def slow():
        result["r"] = call(dp.port, "POST", "/rpc/slow", token("alice"), {"seconds": 60})
    th = threading.Thread(target=slow)
    th.start()
    wait_sleeping(cluster)
    cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
    th.join(30)
    status, h, body = result["r"]
    assert status == 503 and body["code"] in ("57P01", "PGRST001"), (status, body)
    assert h["retry-after"] == "1"
    assert call(dp.port, "GET", "/rpc/add?a=1&b=2", token("alice"))[2] == 3
