"""What the proxy does when Postgres fails, as docs/ARCHITECTURE.md ("Failure behaviour") says:
transient failures of idempotent work are retried on fresh connections, a VOLATILE call that was
sent is never run twice, the circuit breaker opens on an outage (cached keys answer stale, the rest
503 with Retry-After and Proxy-Status) and closes when Postgres is back, a request past its deadline
gets 504 and its query is cancelled, and load past the concurrency limit is refused at once. Real
Postgres clusters, real sockets; no timing is asserted."""
import json
import random
import re
import threading
import time
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import Cluster, get_json, http, wait_for, wait_sleeping

FIXTURE = Path(__file__).with_name("api_fixture.sql").read_text()
EXTRA = """
CREATE SEQUENCE api.flaky_calls;
CREATE FUNCTION api.flaky() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE n bigint := nextval('api.flaky_calls');
BEGIN
  IF n = 1 THEN RAISE EXCEPTION 'simulated conflict' USING ERRCODE = '40001'; END IF;
  RETURN n;
END $$;
CREATE SEQUENCE api.flaky_write_calls;
CREATE FUNCTION api.flaky_write() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE n bigint := nextval('api.flaky_write_calls');
BEGIN
  IF n = 1 THEN RAISE EXCEPTION 'simulated conflict' USING ERRCODE = '40001'; END IF;
  RETURN n;
END $$;
CREATE SEQUENCE api.sleepy_write_calls;
CREATE FUNCTION api.sleepy_write(seconds float8) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE n bigint := nextval('api.sleepy_write_calls');
BEGIN PERFORM pg_sleep(seconds); RETURN n; END $$;
"""
FUNCTIONS = ["add", "echo", "slow_stable", "flaky", "flaky_write", "sleepy_write"]


def metric(port, name, labels=""):
    """The value of one sample in /metrics (0 when the series does not exist yet)."""
    text = http(port, "GET", "/metrics")[2].decode()
    pat = re.compile(r"^%s%s (\S+)$" % (re.escape(name), re.escape("{%s}" % labels if labels else "")),
                     re.M)
    m = pat.search(text)
    return float(m.group(1)) if m else 0.0


def pool_pids(cluster):
    out = cluster.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'zonegate-proxy'")
    return [int(x) for x in out.split()] if out else []


def answer_when_its_backend_dies(cluster, request):
    """Runs request() in a thread, terminates the backend it sleeps on, returns its answer."""
    res = {}
    th = threading.Thread(target=lambda: res.setdefault("r", request()))
    th.start()
    wait_sleeping(cluster, n=1)
    cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'zonegate-proxy' AND wait_event = 'PgSleep'")
    th.join()
    return res["r"]


@pytest.fixture(scope="module")
def rcluster():
    c = Cluster(dbname="resilience")
    c.psql(FIXTURE)
    c.psql(EXTRA)
    yield c
    c.destroy()


def start(cluster, name, **over):
    over.setdefault("rpc", {"schema": "api", "functions": FUNCTIONS})
    return start_proxy(cluster, name, **over)


def test_transient_sql_errors_of_idempotent_calls_are_retried(rcluster):
    p = start(rcluster, "retry-40001")
    try:
        # The STABLE function fails with 40001 on its first call only: the retry answers. (POST:
        # it counts its calls with nextval, which a GET's READ ONLY transaction refuses.)
        status, _, body = call(p.port, "POST", "/rpc/flaky", token("alice"), {})
        assert status == 200 and body == 2
        assert rcluster.psql("SELECT last_value FROM api.flaky_calls") == "2"
        assert metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="serialization"') == 1
        # The VOLATILE one was sent, so it is not run again: the client sees the conflict.
        status, _, body = call(p.port, "POST", "/rpc/flaky_write", token("alice"), {})
        assert status == 500 and body["code"] == "40001"
        assert rcluster.psql("SELECT last_value FROM api.flaky_write_calls") == "1"
        assert metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="serialization"') == 1
        # User errors are never retried.
        assert call(p.port, "GET", "/rpc/add?a=x&b=1", token("alice"))[0] == 400
        assert metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="serialization"') == 1
    finally:
        stop_proxy(p)


def test_terminating_every_pool_connection_costs_idempotent_requests_nothing(rcluster):
    # Four requests may all land on one worker and all lose their connection at once; the
    # default budget (max(3, 20% of active)) would then refuse the fourth retry, which is its job.
    # This test is about the retry itself, so the budget is set above the burst.
    p = start(rcluster, "terminate", cache={"enabled": False},
              database={"conninfo": rcluster.conninfo, "pool": {"min": 1, "max": 2}},
              resilience={"retries": {"budget_min": 8}})
    try:
        t = token("alice")
        results = []

        def one(i):
            results.append(call(p.port, "GET", "/rpc/slow_stable?seconds=1&tag=t%d" % i, t))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        wait_sleeping(rcluster, n=1)  # at least one query is running on the pool's backends
        before = pool_pids(rcluster)
        assert before
        rcluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'zonegate-proxy'")
        for th in threads:
            th.join()
        assert [r[0] for r in results] == [200] * 4, [(r[0], r[2]) for r in results]
        assert sorted(r[2] for r in results) == ["slept t%d" % i for i in range(4)]
        assert metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="shutdown"') + \
            metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="connection"') >= 1
        # They ran again on new connections, and the breaker stayed closed.
        assert not set(pool_pids(rcluster)) & set(before)
        assert get_json(p.port, "/health")[2]["breakers"][0]["state"] == "closed"
    finally:
        stop_proxy(p)


def test_an_exhausted_retry_budget_refuses_the_retry_and_says_so(rcluster):
    # A budget of zero retries in flight: the lost connection is not retried, the client gets
    # 503 with Retry-After, and the refusal is counted.
    p = start(rcluster, "budget-zero", cache={"enabled": False},
              resilience={"retries": {"budget_min": 0, "budget_ratio": 0}})
    try:
        status, h, body = answer_when_its_backend_dies(rcluster, lambda: call(
            p.port, "GET", "/rpc/slow_stable?seconds=1&tag=b", token("alice")))
        assert status == 503 and "retry-after" in h, (status, h, body)
        assert body["code"] in ("PGRST001", "57P01"), body  # the socket broke / Postgres's FATAL
        assert metric(p.admin_port, "zonegate_retry_budget_exhausted_total") == 1
        assert metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="shutdown"') + \
            metric(p.admin_port, "zonegate_retries_total", 'route="rpc",reason="connection"') == 0
    finally:
        stop_proxy(p)


def test_a_volatile_call_whose_connection_dies_is_not_run_again(rcluster):
    p = start(rcluster, "volatile-once")
    try:
        status, h, body = answer_when_its_backend_dies(rcluster, lambda: call(
            p.port, "POST", "/rpc/sleepy_write", token("alice"), {"seconds": 2}))
        assert status == 503 and "retry-after" in h, (status, h, body)
        assert "proxy-status" in h
        # Called exactly once: the sequence is not transactional, so a second call would show.
        assert rcluster.psql("SELECT last_value FROM api.sleepy_write_calls") == "1"
    finally:
        stop_proxy(p)


def test_a_request_past_its_deadline_gets_504_and_its_query_is_cancelled(rcluster):
    p = start(rcluster, "deadline", resilience={"deadlines": {"rpc": "500ms"}})
    try:
        status, h, body = call(p.port, "GET", "/rpc/slow_stable?seconds=60&tag=d", token("alice"))
        assert status == 504, body
        assert h["proxy-status"].startswith("zonegate; error=http_response_timeout")
        assert body["code"] == "57014"
        # The backend stops working for nobody: the sleep is cancelled, not left running.
        wait_for(lambda: rcluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'zonegate-proxy' "
            "AND state = 'active' AND query LIKE '%slow_stable%'") == "0",
            what="the cancelled query to end")
        # Pool figures are published by each worker every 100 ms.
        wait_for(lambda: metric(p.admin_port, "zonegate_pool_cancels_total") >= 1, what="the cancel count")
        assert metric(p.admin_port, "zonegate_deadline_exceeded_total", 'route="rpc"') == 1
        # The connection is still good afterwards.
        assert call(p.port, "GET", "/rpc/add?a=2&b=3", token("alice"))[2] == 5
    finally:
        stop_proxy(p)


def test_load_past_the_concurrency_limit_is_refused_at_once(rcluster):
    p = start(rcluster, "shed", server={"workers": 1}, cache={"enabled": False},
              resilience={"concurrency": {"initial": 1, "min": 1, "max": 1}})
    try:
        t = token("alice")
        th = threading.Thread(target=call, args=(p.port, "GET", "/rpc/slow_stable?seconds=2&tag=s", t))
        th.start()
        wait_sleeping(rcluster, n=1)
        status, h, body = call(p.port, "GET", "/rpc/add?a=1&b=1", t)
        assert status == 503 and body["code"] == "53000", body
        assert h["retry-after"] == "1"
        assert h["proxy-status"].startswith("zonegate; error=connection_limit_reached")
        th.join()
        assert call(p.port, "GET", "/rpc/add?a=1&b=1", t)[2] == 2
        assert metric(p.admin_port, "zonegate_shed_total", 'reason="concurrency_limit"') == 1
        assert get_json(p.port, "/health")[2]["resilience"]["shed"] == 1
    finally:
        stop_proxy(p)


def test_without_a_breaker_a_failed_connect_fails_requests_at_once():
    c = Cluster(dbname="failfast")
    try:
        c.psql(FIXTURE)
        p = start(c, "failfast", cache={"enabled": False},
                  resilience={"breaker": {"enabled": False}},
                  database={"conninfo": c.conninfo, "pool": {"acquire_timeout": "30s"}})
        try:
            t = token("alice")
            assert call(p.port, "GET", "/v1/me/context", t)[0] == 200
            c.stop()
            # Once a connect attempt failed, requests get its error instead of waiting 30 s.
            wait_for(lambda: call(p.port, "GET", "/v1/me/context", t)[2].get("code") == "PGRST000",
                     what="the cached connect error")
            status, h, body = call(p.port, "GET", "/v1/me/context", t)
            assert status == 503 and body["code"] == "PGRST000" and h["retry-after"] == "1"
            assert body["details"]  # the connect error itself
            assert get_json(p.port, "/health")[2]["resilience"]["fail_fast"] >= 1
            c.start()
            wait_for(lambda: call(p.port, "GET", "/v1/me/context", t)[0] == 200, what="recovery")
        finally:
            stop_proxy(p)
    finally:
        c.destroy()


def test_outage_opens_the_breaker_serves_stale_and_recovers():
    c = Cluster(dbname="breaker")
    try:
        c.psql(FIXTURE)
        p = start(c, "breaker", database={"conninfo": c.conninfo,
                                          "pool": {"reconnect_min": "50ms", "reconnect_max": "10s"}})
        try:
            t = token("alice")
            assert call(p.port, "GET", "/v1/me/context", t)[1]["x-cache"] == "MISS"
            assert call(p.port, "GET", "/v1/me/context", t)[1]["x-cache"] == "HIT"
            seen = {"cached": [], "uncached": []}
            stop = threading.Event()

            def client():
                while not stop.is_set():
                    seen["cached"].append(call(p.port, "GET", "/v1/me/context", t))
                    zones = {"zones": [random.randint(1, 10 ** 9)]}
                    seen["uncached"].append(call(p.port, "POST", "/v1/me/zones/filter", t, zones))

            th = threading.Thread(target=client)
            c.stop()
            th.start()
            try:
                wait_for(lambda: get_json(p.port, "/health")[2]["breakers"][0]["state"] == "open",
                         what="the breaker to open")
                status, h, body = call(p.port, "POST", "/v1/me/zones/filter", t, {"zones": [1]})
                assert status == 503 and body["code"] == "PGRST000", body
                assert int(h["retry-after"]) >= 1
                assert h["proxy-status"].startswith("zonegate; error=destination_unavailable")
                assert call(p.port, "GET", "/readyz")[0] == 503
                health = get_json(p.port, "/health")[2]
                assert health["breakers"][0]["last_error"]
                assert health["status"] != "ok"
                # The cached key is served stale while LISTEN is down and the database fails.
                status, h, _ = call(p.port, "GET", "/v1/me/context", t)
                assert status == 200 and h["x-cache"] == "STALE"
                c.start()
                wait_for(lambda: get_json(p.port, "/health")[2]["breakers"][0]["state"] == "closed",
                         what="the breaker to close")
                wait_for(lambda: call(p.port, "POST", "/v1/me/zones/filter", t,
                                      {"zones": [2]})[0] == 200, what="uncached requests to succeed")
            finally:
                stop.set()
                th.join()
            assert seen["cached"] and seen["uncached"]
            assert {r[0] for r in seen["cached"]} == {200}, {r[0] for r in seen["cached"]}
            for status, h, body in seen["uncached"]:
                assert status in (200, 503), (status, body)
                if status == 503:
                    assert "retry-after" in h and "proxy-status" in h, h
            assert any(r[0] == 503 for r in seen["uncached"])
            # LISTEN is back: a grant committed after the restart invalidates the cached context.
            wait_for(lambda: get_json(p.port, "/health")[2]["listen"]["up"], what="LISTEN")
            c.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
            wait_for(lambda: 2 in [g["id"] for g in call(p.port, "GET", "/v1/me/context", t)[2]["grants"]],
                     what="the grant to invalidate the entry")
            assert p.logs("circuit breaker open")
            # The log is written by its own thread: the line may follow /health's "closed".
            assert p.wait_for_log(lambda l: l.get("msg") == "circuit breaker closed", timeout=10)
            assert metric(p.admin_port, "zonegate_breaker_transitions_total",
                          'upstream="primary",to="open"') >= 1
            assert metric(p.admin_port, "zonegate_breaker_state", 'upstream="primary",state="closed"') == 1
        finally:
            stop_proxy(p)
    finally:
        c.destroy()
