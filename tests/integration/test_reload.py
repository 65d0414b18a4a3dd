"""Live reload: SIGHUP re-reads zonegate.yaml. Under a steady client load (0 failed requests), a
valid file's live keys apply to new requests: pool sizes (backends counted in pg_stat_activity),
rate-limit policies, the /rpc allow-list, JWT keys, the admin token, log.level; restart-only keys
are reported and keep their running value; a file that does not load, or cannot apply, is refused
with line:column and the running configuration stays."""
import http.client as httpclient
import threading
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import yaml

from test_api import ADMIN, FUNCTIONS, SECRET, call, stop_proxy, token
from zg import Proxy, get_json, http, wait_for, with_admin_port

NEW_KEY = "rotated-key-0123456789-abcdef-0123456789"
NEW_ADMIN = "rotated-admin-token-0123456789abcdef-0123"
APP = "zonegate-reload-test"


def base_config(cluster, **over):
    cfg = {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 2},
        "database": {"conninfo": cluster.conninfo + " application_name=" + APP,
                     "pool": {"min": 1, "max": 2}},
        "auth": {"jwt": {"secret": SECRET}, "admin_token": ADMIN},
        "rpc": {"schema": "api", "functions": list(FUNCTIONS)},
        "rate_limit": {"policies": {"rpc": {"routes": ["/rpc/*"], "key": "subject",
                                            "rate": "100000/s"}}},
        "log": {"level": "info"},
    }
    for k, v in over.items():
        cfg[k] = v
    return cfg


def write(p, cfg):
    text = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg)
    with open(p.config_path, "w") as f:
        f.write(with_admin_port(text) if not isinstance(cfg, str) else text)


def reload(p, cfg, expect="config reloaded"):
    """Writes the file, sends SIGHUP, returns the outcome line (reloaded or refused)."""
    done = {"config reloaded", "config reload refused: the running configuration stays"}
    seen = len([l for l in p.logs() if l.get("msg") in done])
    write(p, cfg)
    p.proc.send_signal(1)  # SIGHUP
    wait_for(lambda: len([l for l in p.logs() if l.get("msg") in done]) > seen, timeout=10,
             what="the reload's outcome in the log")
    line = [l for l in p.logs() if l.get("msg") in done][-1]
    assert line["msg"] == expect, line
    return line


def backends(cluster):
    out = cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'" % APP)
    return int(out.strip())


class Load:
    """Clients calling /rpc/add over keep-alive connections (a fresh one now and then) until
    stopped; every answer that is not 200 is a failure."""

    def __init__(self, port, tok, threads=4):
        self.port, self.tok = port, tok
        self.ok = 0
        self.failures = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        conn, n = None, 0
        while not self.stop_flag.is_set():
            try:
                if conn is None or n % 50 == 0:
                    if conn is not None:
                        conn.close()
                    conn = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/rpc/add?a=2&b=3", headers={"Authorization": "Bearer " + self.tok})
                r = conn.getresponse()
                body = r.read()
                n += 1
                with self.lock:
                    if r.status == 200 and body == b"5":
                        self.ok += 1
                    else:
                        self.failures.append((r.status, body[:200]))
            except Exception as e:  # a dropped connection is a failure too
                with self.lock:
                    self.failures.append(("exception", repr(e)))
                conn = None
        if conn is not None:
            conn.close()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)
        return self.ok, self.failures


@pytest.fixture
def reloading(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = Proxy(yaml.safe_dump(base_config(cluster)), name="reload")
    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=20)
    yield p
    stop_proxy(p)


def test_sighup_under_load_applies_pools_limits_allow_list_and_keys(cluster, reloading):
    p = reloading
    tok = token("alice")
    new_tok = pyjwt.encode({"sub": "bob", "iat": int(time.time()), "exp": int(time.time()) + 600},
                           NEW_KEY, algorithm="HS256", headers={"kid": "rotated"})
    assert call(p.port, "GET", "/rpc/hidden", tok)[0] == 404  # not allow-listed
    assert call(p.port, "GET", "/rpc/add?a=1&b=1", new_tok)[0] == 401  # unknown kid
    status, hdrs, _ = call(p.port, "GET", "/rpc/add?a=1&b=1", tok)
    assert status == 200 and "q=100000" in hdrs["ratelimit-policy"]

    load = Load(p.port, tok)
    time.sleep(0.5)
    grown = base_config(cluster)
    grown["database"]["pool"] = {"min": 3, "max": 4}
    grown["rpc"]["functions"].append("hidden")
    grown["auth"]["jwt"]["keys"] = [{"kid": "rotated", "alg": "HS256", "secret": NEW_KEY}]
    grown["rate_limit"]["policies"]["rpc"]["rate"] = "50000/s"
    line = reload(p, grown)
    assert line["applied"] >= 4 and line["restart_needed"] == 0 and line["generation"] == 1
    changed = {l["key"] for l in p.logs("config changed")}
    assert {"database.pool.min", "database.pool.max", "rpc.functions",
            "auth.jwt.keys[rotated].alg", "rate_limit.policies[rpc]"} <= changed, changed
    # Secrets are logged as hashes, never as themselves.
    assert NEW_KEY not in "\n".join(p.raw)

    wait_for(lambda: call(p.port, "GET", "/rpc/hidden", tok)[0] == 200, timeout=10,
             what="the allow-list's new function")
    assert call(p.port, "GET", "/rpc/hidden", tok)[2] == 42
    assert call(p.port, "GET", "/rpc/add?a=1&b=1", new_tok)[0] == 200  # the new key
    status, hdrs, _ = call(p.port, "GET", "/rpc/add?a=1&b=1", tok)
    assert "q=50000" in hdrs["ratelimit-policy"], hdrs
    # Two workers with pool.min 3 each, and the control connection.
    wait_for(lambda: backends(cluster) >= 2 * 3 + 1, timeout=10, what="pools grown to min 3")
    time.sleep(0.5)

    shrunk = base_config(cluster)
    shrunk["database"]["pool"] = {"min": 1, "max": 1}
    line = reload(p, shrunk)
    assert line["generation"] == 2
    wait_for(lambda: backends(cluster) <= 2 * 1 + 1, timeout=10, what="pools shrunk to max 1")
    assert call(p.port, "GET", "/rpc/add?a=1&b=1", new_tok)[0] == 401  # the key went
    assert call(p.port, "GET", "/rpc/hidden", tok)[0] in (200, 404)
    wait_for(lambda: call(p.port, "GET", "/rpc/hidden", tok)[0] == 404, timeout=10,
             what="the allow-list without the function")
    time.sleep(0.5)
    ok, failures = load.finish()
    assert failures == [], failures[:5]
    assert ok > 100, ok
    m = http(p.admin_port, "GET", "/metrics", {"Authorization": "Bearer " + ADMIN})[2].decode()
    assert 'zonegate_config_reloads_total{result="applied"} 2' in m
    assert "zonegate_config_generation 2" in m


def test_broken_file_is_refused_with_its_position_and_the_old_config_stays(cluster, reloading):
    p = reloading
    tok = token("alice")
    load = Load(p.port, tok, threads=2)
    # Not YAML at all.
    reload(p, "server: {port: [\n", expect="config reload refused: the running configuration stays")
    problem = p.logs("config reload refused")[-1]["problem"]
    assert p.config_path + ":" in problem and problem.split(":")[1].isdigit(), problem
    # YAML, but invalid: a pool whose max is below its min, an unknown key.
    bad = base_config(cluster)
    bad["database"]["pool"] = {"min": 4, "max": 2}
    bad["rpc"]["functions"].append("hidden")
    bad["rpc"]["bogus"] = 1
    reload(p, bad, expect="config reload refused: the running configuration stays")
    problems = [l["problem"] for l in p.logs("config reload refused")]
    assert any("bogus" in x for x in problems), problems
    # Nothing of it applied: the allow-list is the old one.
    assert call(p.port, "GET", "/rpc/hidden", tok)[0] == 404
    ok, failures = load.finish()
    assert failures == [] and ok > 0, failures[:5]
    h = get_json(p.admin_port, "/health")[2]["config"]
    assert h["last_reload"] == "refused" and h["reloads_refused"] == 2 and h["generation"] == 0, h
    assert "bogus" in h["last_error"] or "pool" in h["last_error"], h
    # The public listener's /health says that it failed, not the file's text.
    pub = get_json(p.port, "/health")[2]["config"]
    assert pub["last_reload"] == "refused" and "bogus" not in str(pub["last_error"]), pub


def test_restart_only_keys_are_reported_and_keep_their_running_value(cluster, reloading):
    p = reloading
    tok = token("alice")
    cfg = base_config(cluster)
    cfg["server"]["max_headers"] = 5  # restart-only
    cfg["database"]["pool"]["statement_timeout"] = "1s"  # restart-only
    cfg["log"]["level"] = "warn"  # live
    line = reload(p, cfg)
    # resilience.deadline follows: its default is pool.acquire_timeout + pool.statement_timeout.
    expected = ["database.pool.statement_timeout", "resilience.deadline", "server.max_headers"]
    assert line["applied"] == 1 and line["restart_needed"] == 3, line
    pending = {l["key"] for l in p.logs("config change needs a restart: the running value stays")}
    assert pending == set(expected), pending
    h = get_json(p.admin_port, "/health")[2]["config"]
    assert sorted(h["restart_pending"]) == expected, h
    # max_headers stays 64: a request with 10 headers is fine.
    headers = {"X-H%d" % i: "v" for i in range(10)}
    assert call(p.port, "GET", "/rpc/add?a=1&b=2", tok, headers=headers)[0] == 200
    # log.level warn applied: no more info lines (access lines are info).
    n = len(p.logs("access"))
    for _ in range(5):
        call(p.port, "GET", "/rpc/add?a=1&b=2", tok)
    time.sleep(0.5)
    assert len(p.logs("access")) == n


def test_redis_policy_needs_a_restart_and_admin_token_rotates(cluster, reloading):
    p = reloading
    cfg = base_config(cluster)
    cfg["rate_limit"] = {"redis": {"host": "127.0.0.1", "port": 1},
                         "policies": {"rpc": {"routes": ["/rpc/*"], "key": "subject",
                                              "rate": "10/s", "store": "redis"}}}
    reload(p, cfg, expect="config reload refused: the running configuration stays")
    assert "store: redis" in p.logs("config reload refused")[-1]["problem"]
    _, hdrs, _ = call(p.port, "GET", "/rpc/add?a=1&b=1", token("alice"))
    assert "q=100000" in hdrs["ratelimit-policy"]  # the running policy

    admin = {"Authorization": "Bearer " + ADMIN}
    assert http(p.admin_port, "GET", "/admin/cache/stats", admin)[0] == 200
    cfg = base_config(cluster)
    cfg["auth"]["admin_token"] = NEW_ADMIN
    reload(p, cfg)
    assert http(p.admin_port, "GET", "/admin/cache/stats", admin)[0] == 401
    assert http(p.admin_port, "GET", "/admin/cache/stats",
                {"Authorization": "Bearer " + NEW_ADMIN})[0] == 200
    assert NEW_ADMIN not in "\n".join(p.raw)
