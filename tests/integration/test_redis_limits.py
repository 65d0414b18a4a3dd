"""Global rate limits (rate_limit.redis, `store: redis`) with a real redis-server on a free
loopback port and real proxies: two proxies share one budget; with Redis gone every request is
still answered (the local fallback, counted); when it is back, decisions go to Redis again."""
import http.client as httpclient
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import http, wait_for

RATE, BURST = 40, 10


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    """redis-server on a free loopback port, no persistence; stopped on exit."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="zonegate-redis.")
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, timeout=10, what="redis-server")

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server():
    assert shutil.which("redis-server") or os.path.exists("/usr/bin/redis-server"), \
        "redis-server is missing (make deps installs it)"
    r = Redis()
    yield r
    r.destroy()


def limited_proxy(cluster, redis_port, name, rate=RATE, burst=BURST, timeout="200ms"):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    return start_proxy(cluster, name, rate_limit={
        "redis": {"host": "127.0.0.1", "port": redis_port, "timeout": timeout,
                  "reconnect_max": "200ms", "prefix": "zg-test:%s:" % name.split("-")[0]},
        "policies": {"global": {"routes": ["/rpc/*"], "key": "subject", "rate": "%d/s" % rate,
                                "burst": burst, "store": "redis"}}})


def metric(p, name, labels=""):
    text = http(p.admin_port, "GET", "/metrics")[2].decode()
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[1])
    return None


def drive(ports, tok, secs, conns_per_port=2):
    """GET /rpc/add from keep-alive connections spread over `ports`, as fast as they go, for
    `secs`. Returns (status counts, first send, last answer)."""
    statuses, lock = {}, threading.Lock()
    first, last = [None], [0.0]
    end = time.monotonic() + secs

    def run(port):
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=10)
        local = {}
        while time.monotonic() < end:
            t = time.monotonic()
            conn.request("GET", "/rpc/add?a=1&b=2", headers={"Authorization": "Bearer " + tok})
            r = conn.getresponse()
            r.read()
            local[r.status] = local.get(r.status, 0) + 1
            with lock:
                if first[0] is None or t < first[0]:
                    first[0] = t
                last[0] = max(last[0], time.monotonic())
        conn.close()
        with lock:
            for k, v in local.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=run, args=(port,)) for port in ports
               for _ in range(conns_per_port)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, first[0], last[0]


def test_two_proxies_share_one_budget(cluster, redis_server):
    a = limited_proxy(cluster, redis_server.port, "shared-a")
    b = limited_proxy(cluster, redis_server.port, "shared-b")
    try:
        wait_for(lambda: metric(a, "zonegate_rate_limit_redis_connections") == 2 and
                 metric(b, "zonegate_rate_limit_redis_connections") == 2, what="redis connections")
        statuses, t0, t1 = drive([a.port, b.port], token("global-alice"), secs=4)
        accepted = statuses.get(200, 0)
        budget = BURST + RATE * (t1 - t0)
        assert set(statuses) <= {200, 429}, statuses
        # One budget for both: within 5% of burst + rate x elapsed (alone, each would take that).
        print("shared budget: accepted %d of %.1f (%+.2f%%), %s" % (accepted, budget, 100.0 * (accepted - budget) / budget, statuses))
        assert abs(accepted - budget) <= 0.05 * budget, (accepted, budget, statuses)
        assert statuses.get(429, 0) > accepted  # the load was well above the rate
        for p in (a, b):
            assert metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="ok"') > 0
            assert (metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="down"') or 0) == 0
    finally:
        stop_proxy(a)
        stop_proxy(b)


def test_redis_down_falls_back_locally_and_comes_back(cluster):
    r = Redis()
    p = limited_proxy(cluster, r.port, "fallback-a", rate=1000, burst=1000)
    try:
        wait_for(lambda: metric(p, "zonegate_rate_limit_redis_connections") == 2, what="redis")
        tok = token("fallback-bob")
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", tok)[0] == 200
        r.stop()
        # Every request is answered while Redis is gone: local budget, never a 5xx.
        codes = [call(p.port, "GET", "/rpc/add?a=1&b=2", tok)[0] for _ in range(30)]
        assert codes == [200] * 30, codes
        fallbacks = sum(metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="%s"' % o) or 0
                        for o in ("down", "error", "timeout"))
        assert fallbacks >= 30
        assert metric(p, "zonegate_rate_limit_redis_connections") == 0
        status, _, health = call(p.admin_port, "GET", "/health")
        assert health["rate_limit"]["redis"]["connections"] == 0
        assert health["rate_limit"]["policies"][0]["store"] == "redis"
        # Redis back on the same port: the workers reconnect and decide there again.
        r.start()
        wait_for(lambda: metric(p, "zonegate_rate_limit_redis_connections") == 2, what="reconnect")
        ok0 = metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="ok"')
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", tok)[0] == 200
        assert metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="ok"') == ok0 + 1
    finally:
        stop_proxy(p)
        r.destroy()


def test_a_redis_that_never_answers_is_a_timeout_not_a_stall(cluster):
    """A listener that accepts and never answers (a hung Redis): each decision waits at most
    rate_limit.redis.timeout, then is made locally."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    port = hung.getsockname()[1]
    p = limited_proxy(cluster, port, "hung-a", timeout="50ms")
    try:
        t0 = time.monotonic()
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("hung-carol"))[0] == 200
        assert time.monotonic() - t0 < 5
        assert (metric(p, "zonegate_rate_limit_redis_decisions_total", 'outcome="down"') or 0) >= 1
    finally:
        stop_proxy(p)
        hung.close()


def test_store_redis_needs_a_redis_host(tmp_path):
    from zg import run_cli
    cfg = tmp_path / "z.yaml"
    cfg.write_text("rate_limit:\n  policies:\n    g:\n      routes: [\"/rpc/*\"]\n"
                   "      rate: 10/s\n      store: redis\n")
    out = run_cli(["--check-config", "--config", str(cfg)])
    assert out.returncode == 1
    assert "z.yaml:6:14: rate_limit.policies.g.store: redis needs rate_limit.redis.host" in out.stderr
