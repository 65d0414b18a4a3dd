#!/usr/bin/python3
"""Rate limiting in zonegate-proxy (docs/BENCHMARKS.md, "Rate limiting"). Not part of CI.

    rate_limit_bench.py OUT_DIR [--proxy-bin PATH] [--keys-bin PATH] [--quick]
                        [--only accuracy,hit_overhead,redis_overhead,rss]

accuracy      policy {routes: ["/rpc/*"], rate: 100/s, burst: 10} keyed by subject; one subject
              drives GET /rpc/add?a=1&b=2 at 2x the rate (200 req/s, paced, one keep-alive
              connection) and at 10x (4 keep-alive connections as fast as they go, >= 1000 req/s)
              for 10 s each (--quick: 4 s). Accepted (200) against the budget burst + rate *
              elapsed, elapsed from the first request sent to the last answer received; the error
              in %. /rpc/add is not cached (cache.rpc lists no function): every admitted request
              runs its statement. server.workers 2, pool 1..2.
hit_overhead  wrk -t2 -c32 10 s (--quick: 4 s) on the cached GET /v1/me/context with one bearer
              token, the limiter off against on (a policy on /v1/me/* at 1000000/s, so nothing is
              refused), alternating 3 rounds each: medians and their ratio.
redis_overhead  the same cached route with a policy at 1000000/s kept in Redis (store: redis,
              a redis-server on a free loopback port) against the same policy local, alternating
              3 rounds: the ratio of the medians (one EVALSHA round trip per request).
rss           build-bench/tests/bench/rate_limit_keys: KeyTable at 1,000,000 keys (VmRSS per key,
              ns per admit, 1 and 2 threads).

Each proxy section uses its own throwaway cluster with the integration fixture
(tests/integration/api_fixture.sql), as resilience_bench.py does; both are stopped on exit, also
on failure. Results: OUT_DIR/rate_limit.json; a summary on stdout. Timings are reported, never
asserted; the exit status is non-zero only when something could not run.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402

import proxy_bench as pb  # noqa: E402
import resilience_bench as rb  # noqa: E402
import zg  # noqa: E402

RATE, BURST = 100, 10


def config(cluster, policies=None, redis_port=None):
    cfg = yaml.safe_load(rb.proxy_config(cluster))
    cfg["rpc"] = {"schema": "api", "functions": ["add"]}  # not in cache.rpc: uncached
    if policies:
        cfg["rate_limit"] = {"policies": policies}
        if redis_port:
            cfg["rate_limit"]["redis"] = {"host": "127.0.0.1", "port": redis_port}
    return yaml.safe_dump(cfg)


def start(cluster, policies, name, redis_port=None):
    p = zg.Proxy(config(cluster, policies, redis_port), name=name)
    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
    return p


def drive(port, tok, secs, conns, pace_rps=None):
    """GET /rpc/add from `conns` keep-alive connections for `secs`; paced at pace_rps in total
    when given, else as fast as they go. Returns (statuses, first send, last answer)."""
    statuses = {}
    lock = threading.Lock()
    t_first, t_last = [None], [0.0]
    t0 = time.monotonic() + 0.05
    end = t0 + secs

    def run(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        h = {"Authorization": "Bearer " + tok}
        n, local = 0, {}
        first, last = None, 0.0
        while True:
            if pace_rps:
                due = t0 + (n * conns + i) / pace_rps
                if due >= end:
                    break
                d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
            elif time.monotonic() >= end:
                break
            ts = time.monotonic()
            first = ts if first is None else first
            try:
                conn.request("GET", "/rpc/add?a=1&b=2", headers=h)
                r = conn.getresponse()
                r.read()
                s = r.status
            except (OSError, http.client.HTTPException):
                s = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            last = time.monotonic()
            local[s] = local.get(s, 0) + 1
            n += 1
        with lock:
            for k, v in local.items():
                statuses[k] = statuses.get(k, 0) + v
            if first is not None and (t_first[0] is None or first < t_first[0]):
                t_first[0] = first
            t_last[0] = max(t_last[0], last)

    th = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(conns)]
    for t in th:
        t.start()
    for t in th:
        t.join(secs + 60)
    return statuses, t_first[0], t_last[0]


def accuracy(quick, **_):
    secs = 4 if quick else 10
    c = zg.Cluster(dbname="ratelimit")
    res = {"rate_per_s": RATE, "burst": BURST, "seconds": secs, "workers": 2,
           "cache": "off (/rpc/add not in cache.rpc)", "runs": []}
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        p = start(c, {"rpc": {"routes": ["/rpc/*"], "rate": "%d/s" % RATE, "burst": BURST}},
                  "rl-accuracy")
        try:
            for factor, conns, pace in ((2, 1, 2 * RATE), (10, 4, None)):
                tok = rb.token("alice")
                time.sleep(1.0)  # the bucket refills (burst / rate = 0.1 s)
                st, t1, t2 = drive(p.port, tok, secs, conns, pace)
                elapsed = t2 - t1
                sent = sum(st.values())
                ok = st.get(200, 0)
                expected = BURST + RATE * elapsed
                r = {"factor": factor, "connections": conns, "paced": pace is not None,
                     "sent": sent, "offered_rps": round(sent / elapsed, 1),
                     "elapsed_s": round(elapsed, 3), "accepted": ok,
                     "refused_429": st.get(429, 0),
                     "other": {str(k): v for k, v in st.items() if k not in (200, 429)},
                     "expected": round(expected, 1),
                     "error_pct": round(100.0 * (ok - expected) / expected, 2)}
                res["runs"].append(r)
                pb.log("accuracy %dx: %s" % (factor, r))
        finally:
            p.stop()
    finally:
        c.destroy()
    return res


def hit_overhead(quick, **_):
    secs, rounds = (4, 3) if quick else (10, 3)
    c = zg.Cluster(dbname="rlhit")
    runs = {"off": [], "on": []}
    p99 = {"off": [], "on": []}
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        proxies = {}
        try:
            proxies["off"] = start(c, None, "rl-hit-off")
            proxies["on"] = start(c, {"me": {"routes": ["/v1/me/*"], "rate": "1000000/s"}},
                                  "rl-hit-on")
            tok = rb.token("alice")
            for p in proxies.values():
                for _ in range(3):
                    zg.http(p.port, "GET", "/v1/me/context", {"Authorization": "Bearer " + tok})
            order = ["off", "on"]
            for i in range(rounds):
                for name in (order if i % 2 == 0 else order[::-1]):
                    w = pb.run_wrk(proxies[name].port, 2, 32, secs, str(HERE / "wrk" / "static.lua"),
                                   path="/v1/me/context", token=tok)
                    if w["non2xx"] or w["socket_errors"]:
                        raise RuntimeError("hit_overhead %s: %d non-2xx, %d socket errors" % (
                            name, w["non2xx"], w["socket_errors"]))
                    runs[name].append(round(w["rps"]))
                    p99[name].append(w["p99_us"])
                    pb.log("rate limit hit overhead %s: %d req/s" % (name, w["rps"]))
        finally:
            for p in proxies.values():
                p.stop()
    finally:
        c.destroy()
    on, off = pb.median(runs["on"]), pb.median(runs["off"])
    return {"seconds": secs, "wrk": "-t2 -c32", "rounds": runs, "p99_us": p99,
            "median_off": off, "median_on": on, "ratio_on_off": round(on / off, 4),
            "us_per_request_off": round(1e6 / off, 3), "us_per_request_on": round(1e6 / on, 3)}


def redis_overhead(quick, **_):
    """The cache-hit path with a policy whose budget is in Redis (store: redis, one EVALSHA per
    request on loopback) against the same policy local, alternating rounds: the ratio of the
    medians is what a global limit costs a hit. A redis-server on a free port, no persistence."""
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from test_redis_limits import Redis  # the integration suite's throwaway redis-server
    secs, rounds = (4, 1) if quick else (10, 3)
    c = zg.Cluster(dbname="rlredis")
    r = Redis()
    runs = {"local": [], "redis": []}
    p99 = {"local": [], "redis": []}
    policy = {"routes": ["/v1/me/*"], "rate": "1000000/s"}
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        proxies = {}
        try:
            proxies["local"] = start(c, {"me": dict(policy)}, "rl-local")
            proxies["redis"] = start(c, {"me": dict(policy, store="redis")}, "rl-redis", r.port)
            tok = rb.token("alice")
            for p in proxies.values():
                for _ in range(3):
                    zg.http(p.port, "GET", "/v1/me/context", {"Authorization": "Bearer " + tok})
            order = ["local", "redis"]
            for i in range(rounds):
                for name in (order if i % 2 == 0 else order[::-1]):
                    w = pb.run_wrk(proxies[name].port, 2, 32, secs, str(HERE / "wrk" / "static.lua"),
                                   path="/v1/me/context", token=tok)
                    if w["non2xx"] or w["socket_errors"]:
                        raise RuntimeError("redis_overhead %s: %d non-2xx, %d socket errors" % (
                            name, w["non2xx"], w["socket_errors"]))
                    runs[name].append(round(w["rps"]))
                    p99[name].append(w["p99_us"])
                    pb.log("rate limit %s: %d req/s, p99 %.0f us" % (name, w["rps"], w["p99_us"]))
            text = zg.http(proxies["redis"].admin_port, "GET", "/metrics")[2].decode()
            outcomes = {l.split('"')[1]: float(l.split()[1]) for l in text.splitlines()
                        if l.startswith("zonegate_rate_limit_redis_decisions_total{")}
        finally:
            for p in proxies.values():
                p.stop()
    finally:
        r.destroy()
        c.destroy()
    loc, red = pb.median(runs["local"]), pb.median(runs["redis"])
    return {"seconds": secs, "wrk": "-t2 -c32", "rounds": runs, "p99_us": p99,
            "median_local": loc, "median_redis": red, "ratio_redis_local": round(red / loc, 4),
            "redis_outcomes": outcomes}


def rss(quick, keys_bin=None, **_):
    b = Path(keys_bin) if keys_bin else ROOT / "build-bench" / "tests" / "bench" / "rate_limit_keys"
    out = subprocess.run([str(b)], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout)


SECTIONS = {"accuracy": accuracy, "hit_overhead": hit_overhead, "redis_overhead": redis_overhead,
            "rss": rss}


def summary(res):
    lines = []
    if "accuracy" in res:
        a = res["accuracy"]
        for r in a["runs"]:
            lines.append("accuracy %2dx: %d sent (%.0f/s), %d accepted, budget %.1f (burst %d + "
                         "%d/s x %.2f s): error %+.2f%%" % (
                             r["factor"], r["sent"], r["offered_rps"], r["accepted"], r["expected"],
                             a["burst"], a["rate_per_s"], r["elapsed_s"], r["error_pct"]))
    if "hit_overhead" in res:
        h = res["hit_overhead"]
        lines.append("hit_overhead: off %s req/s, on %s req/s (medians of %s / %s): on/off %.4f" % (
            h["median_off"], h["median_on"], h["rounds"]["off"], h["rounds"]["on"],
            h["ratio_on_off"]))
    if "redis_overhead" in res:
        h = res["redis_overhead"]
        lines.append("redis_overhead: local %s req/s, redis %s req/s (medians of %s / %s): "
                     "redis/local %.4f; outcomes %s" % (
                         h["median_local"], h["median_redis"], h["rounds"]["local"],
                         h["rounds"]["redis"], h["ratio_redis_local"], h["redis_outcomes"]))
    if "rss" in res:
        k = res["rss"]
        lines.append("rss: %d keys, +%d KiB VmRSS = %.1f bytes/key (estimate %d); admit %.0f ns "
                     "(median of 5), 2 threads %.0f ns/admit aggregate" % (
                         k["keys"], k["rss_after_kib"] - k["rss_before_kib"],
                         k["bytes_per_key_measured"], k["bytes_per_key_estimate"],
                         k["admit_ns_median"], k["admit_ns_2threads_aggregate"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--proxy-bin")
    ap.add_argument("--keys-bin")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="accuracy,hit_overhead,redis_overhead,rss")
    a = ap.parse_args()
    if a.proxy_bin:
        zg.PROXY_BIN = Path(a.proxy_bin)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"quick": a.quick, "cpus": os.cpu_count()}
    for section in a.only.split(","):
        if section not in SECTIONS:
            ap.error("unknown section %r (sections: %s)" % (section, ",".join(SECTIONS)))
        pb.log("rate_limit: %s" % section)
        res[section] = SECTIONS[section](a.quick, keys_bin=a.keys_bin)
    (out / "rate_limit.json").write_text(json.dumps(res, indent=2) + "\n")
    print(summary(res))


if __name__ == "__main__":
    main()
