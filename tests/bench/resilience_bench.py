#!/usr/bin/python3
"""Chaos and overload runs of zonegate-proxy (docs/BENCHMARKS.md, "Resilience"). Not part of CI.

    resilience_bench.py OUT_DIR [--proxy-bin PATH] [--quick] [--only chaos,overload]

chaos     16 keep-alive clients, half on a cached key (GET /v1/me/context), half on always-new
          keys (POST /v1/me/zones/filter with a random zone), through three events at t=5 s:
          stop   Postgres stopped for 5 s, then started again
          kill   pg_terminate_backend of every pool connection
          restart  pg_ctl restart (fast shutdown, start)
          Per event: errors on cached keys, statuses of the uncached ones, the latency of the
          503s once the first failure was seen, the time from Postgres accepting again to the
          first success and to the first second without a failure, RSS before/after, LISTEN.
          Draws docs/img/chaos_timeline.png (ok/s, stale/s, 503/s per scenario).
overload  the uncached route with wrk: closed-loop concurrency ramped to find the saturating
          load C, then C, 2C, 3C: goodput, 503 share and the proxy's own p99 of 2xx answers
          (from its histogram) against the unloaded p99 (one connection). docs/img/overload.png.
hit_overhead  the cache-hit path (one hot key, wrk) with the resilience stages on against off
          (no retries, no breaker, no concurrency limit), alternating rounds: ratio of medians.

A throwaway cluster with the integration fixture (tests/integration/api_fixture.sql) and one
proxy (2 workers, pool 1..2) per section; both are stopped on exit, also on failure. Timings are
reported, never asserted; the exit status is non-zero only when something could not run.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import jwt as pyjwt  # noqa: E402
import yaml  # noqa: E402

import proxy_bench as pb  # noqa: E402
import zg  # noqa: E402

SECRET = "bench-secret-0123456789-abcdefghij"


def token(sub):
    now = int(time.time())
    return pyjwt.encode({"sub": sub, "iat": now, "exp": now + 7200}, SECRET, algorithm="HS256")


def proxy_config(cluster, stages=True, cache_filter=True):
    cfg = {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 2},
        "database": {"conninfo": cluster.conninfo, "pool": {"min": 1, "max": 2}},
        "auth": {"jwt": {"secret": SECRET}, "admin_token": "bench-admin-token-0123456789abcdef0123"},
        "log": {"level": "info", "access_log": False},
    }
    if not cache_filter:
        cfg["cache"] = {"routes": {"me_zones_filter": "off"}}
    if not stages:
        cfg["resilience"] = {"retries": {"max_retries": 0}, "breaker": {"enabled": False},
                             "concurrency": {"enabled": False}}
    return yaml.safe_dump(cfg)


def rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Load:
    """Closed-loop keep-alive clients; every answer recorded as (t, kind, status, latency, cache)."""

    def __init__(self, port, clients=16):
        self.port, self.clients = port, clients
        self.tok = token("alice")
        self.records = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(clients)]

    def run(self, i):
        conn = None
        kind = "cached" if i % 2 == 0 else "uncached"
        rnd = random.Random(i)
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            h = {"Authorization": "Bearer " + self.tok}
            t0 = time.monotonic()
            try:
                if kind == "cached":
                    conn.request("GET", "/v1/me/context", headers=h)
                else:
                    h["Content-Type"] = "application/json"
                    conn.request("POST", "/v1/me/zones/filter",
                                 json.dumps({"zones": [rnd.randint(1, 10 ** 9)]}), h)
                r = conn.getresponse()
                r.read()
                rec = (t0, kind, r.status, time.monotonic() - t0, r.getheader("X-Cache") or "",
                       r.getheader("Retry-After") is not None, r.getheader("Proxy-Status") is not None)
            except (OSError, http.client.HTTPException):
                rec = (t0, kind, 0, time.monotonic() - t0, "", False, False)
                conn.close()
                conn = None
            with self.lock:
                self.records.append(rec)

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return self.records


def scenario(cluster, proxy, name, event, secs, at):
    """Runs the load for `secs`, `event()` at `at` seconds; returns the figures and the records."""
    port = proxy.port
    for _ in range(3):  # warm the cached key
        zg.http(port, "GET", "/v1/me/context", {"Authorization": "Bearer " + token("alice")})
    rss0 = rss_kb(proxy.proc.pid)
    health0 = zg.get_json(port, "/health")[2]
    load = Load(port)
    t_start = time.monotonic()
    load.start()
    time.sleep(at)
    marks = event()
    time.sleep(max(0.0, secs - (time.monotonic() - t_start)))
    recs = load.finish()
    time.sleep(1)
    health1 = zg.get_json(port, "/health")[2]
    rss1 = rss_kb(proxy.proc.pid)
    cached = [r for r in recs if r[1] == "cached"]
    uncached = [r for r in recs if r[1] == "uncached"]
    first_fail = min((r[0] for r in recs if r[2] != 200), default=None)
    fails_503 = [r for r in uncached if r[2] == 503 and first_fail is not None and r[0] >= first_fail]
    lat = sorted(r[3] for r in fails_503)
    back = marks.get("accepting")
    res = {
        "scenario": name, "requests": len(recs), "seconds": secs,
        "cached_requests": len(cached),
        "cached_errors": sum(1 for r in cached if r[2] != 200),
        "cached_stale": sum(1 for r in cached if r[4] == "STALE"),
        "uncached_requests": len(uncached),
        "uncached_statuses": {str(s): sum(1 for r in uncached if r[2] == s)
                              for s in sorted({r[2] for r in uncached})},
        "uncached_503_without_retry_after": sum(1 for r in uncached if r[2] == 503 and not r[5]),
        "uncached_503_without_proxy_status": sum(1 for r in uncached if r[2] == 503 and not r[6]),
        "fail_503_max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "fail_503_p99_ms": round(lat[int(0.99 * (len(lat) - 1))] * 1000, 1) if lat else None,
        "rss_kb_before": rss0, "rss_kb_after": rss1,
        "listen_up_after": health1["listen"]["up"],
        "listen_reconnects": health1["listen"]["reconnects"] - health0["listen"]["reconnects"],
        "breaker_opened": health1["breakers"][0]["opened"] - health0["breakers"][0]["opened"],
        "retries": health1["resilience"]["retries"] - health0["resilience"]["retries"],
    }
    if back is not None:
        after = [r for r in uncached if r[0] >= back]
        ok = [r for r in after if r[2] == 200]
        res["first_success_after_accepting_ms"] = \
            round((min(r[0] for r in ok) - back) * 1000) if ok else None
        # The first moment after which no uncached request failed.
        last_fail = max((r[0] + r[3] for r in after if r[2] != 200), default=back)
        res["full_service_after_accepting_ms"] = round((last_fail - back) * 1000)
    res["_timeline"] = timeline(recs, t_start, secs, marks)
    return res


def timeline(recs, t0, secs, marks):
    n = int(secs) + 1
    rows = {"ok": [0] * n, "stale": [0] * n, "err503": [0] * n, "other": [0] * n}
    for t, kind, status, _, cache, _, _ in recs:
        i = min(n - 1, max(0, int(t - t0)))
        if status == 200 and cache == "STALE":
            rows["stale"][i] += 1
        elif status == 200:
            rows["ok"][i] += 1
        elif status == 503:
            rows["err503"][i] += 1
        else:
            rows["other"][i] += 1
    rows["marks"] = {k: v - t0 for k, v in marks.items()}
    return rows


def chaos(out, proxy_bin, quick):
    secs = 10 if quick else 15
    c = zg.Cluster(dbname="chaos")
    results = []
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        p = zg.Proxy(proxy_config(c), name="chaos")
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
        try:
            def stop_start():
                m = {"stopped": time.monotonic()}
                c.stop()
                time.sleep(5)
                c.start()  # returns once the server accepts connections (pg_ctl -w)
                m["accepting"] = time.monotonic()
                return m

            def kill():
                m = {"killed": time.monotonic()}
                c.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE application_name = 'zonegate-proxy'")
                return m

            def restart():
                m = {"stopped": time.monotonic()}
                c.stop()
                c.start()
                m["accepting"] = time.monotonic()
                return m

            for name, ev in (("stop", stop_start), ("kill", kill), ("restart", restart)):
                pb.log("chaos: %s" % name)
                r = scenario(c, p, name, ev, secs + (5 if name == "stop" else 0), 5)
                results.append(r)
                zg.wait_for(lambda: zg.get_json(p.port, "/health")[2]["status"] == "ok", 30,
                            "the proxy to be healthy again")
        finally:
            p.stop()
    finally:
        c.destroy()
    draw_chaos(results)
    for r in results:
        r.pop("_timeline_drawn", None)
    return results


def draw_chaos(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 3 * len(results)), sharex=False)
    for ax, r in zip(axes, results):
        tl = r["_timeline"]
        xs = list(range(len(tl["ok"])))
        ax.plot(xs, tl["ok"], label="200 fresh/miss per s")
        ax.plot(xs, tl["stale"], label="200 stale per s")
        ax.plot(xs, tl["err503"], label="503 per s")
        ax.plot(xs, tl["other"], label="other errors per s")
        m = tl["marks"]
        if "stopped" in m:
            ax.axvspan(m["stopped"], m.get("accepting", m["stopped"]), color="grey", alpha=0.25,
                       label="Postgres down")
        if "killed" in m:
            ax.axvline(m["killed"], color="red", linestyle="--", label="pool backends terminated")
        ax.set_title("%s: cached errors %d, uncached %s, breaker opened %d" % (
            r["scenario"], r["cached_errors"], r["uncached_statuses"], r["breaker_opened"]))
        ax.set_ylabel("answers/s")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("seconds")
    fig.text(0.01, 0.005, "%s, %d cores, %s; tests/bench/run.sh --only chaos" % (
        platform.node(), os.cpu_count(), datetime.date.today().isoformat()), fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    fig.savefig(img / "chaos_timeline.png", dpi=90)
    for r in results:
        r.pop("_timeline")


def server_p99(m0, m1, route, cls="2xx"):
    def buckets(m):
        acc = {}
        for (n, labels), v in m.items():
            d = dict(labels)
            if n == "zonegate_http_request_duration_seconds_bucket" and d.get("route") == route \
                    and d.get("class") == cls:
                le = float("inf") if d["le"] == "+Inf" else float(d["le"])
                acc[le] = acc.get(le, 0) + v
        return sorted(acc.items())
    q = pb.histogram_quantile(pb.delta_buckets(buckets(m0), buckets(m1)), 0.99)
    return None if q is None else round(q * 1000, 2)


def overload(out, proxy_bin, quick):
    secs = 4 if quick else 8
    c = zg.Cluster(dbname="overload")
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        # The filter route uncached: with it cached, every request stores a new entry, and once
        # cache.max_bytes is reached the store's eviction, not the database path, sets the pace
        # (docs/BENCHMARKS.md, section 10).
        p = zg.Proxy(proxy_config(c, cache_filter=False), name="overload")
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
        script = str(HERE / "wrk" / "filter.lua")
        tok = token("alice")

        def run(conns):
            m0 = pb.parse_prometheus(zg.http(p.port, "GET", "/metrics")[2].decode())
            w = pb.run_wrk(p.port, min(2, conns), conns, secs, script, token=tok)
            m1 = pb.parse_prometheus(zg.http(p.port, "GET", "/metrics")[2].decode())
            ok = w["requests"] - w["non2xx"]
            return {"connections": conns, "rps": round(w["rps"]), "goodput": round(ok / w["secs"]),
                    "refused_share": round(w["non2xx"] / max(1, w["requests"]), 4),
                    "server_p99_2xx_ms": server_p99(m0, m1, "me_zones_filter"),
                    "server_p99_5xx_ms": server_p99(m0, m1, "me_zones_filter", "5xx"),
                    "wrk_p99_ms": round(w["p99_us"] / 1000, 2)}
        try:
            run(4)  # warm-up
            unloaded = run(1)
            ramp = []
            for conns in (2, 4, 8, 16, 32, 64):
                ramp.append(run(conns))
                pb.log("overload ramp: %s" % ramp[-1])
            peak = max(r["goodput"] for r in ramp)
            if peak == 0:
                raise RuntimeError("the uncached route answered no 2xx: %s" % ramp)
            sat = next(r["connections"] for r in ramp if r["goodput"] >= 0.95 * peak)
            loads = []
            for f in (1, 2, 3):
                r = run(sat * f)
                r["factor"] = f
                r["goodput_of_peak"] = round(r["goodput"] / peak, 3)
                loads.append(r)
                pb.log("overload %dx: %s" % (f, r))
        finally:
            p.stop()
    finally:
        c.destroy()
    res = {"unloaded": unloaded, "ramp": ramp, "peak_goodput": peak, "saturating_connections": sat,
           "loads": loads}
    draw_overload(res)
    return res


def draw_overload(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    fs = [r["factor"] for r in res["loads"]]
    ax.bar([f - 0.15 for f in fs], [r["goodput"] for r in res["loads"]], width=0.3, label="goodput (2xx/s)")
    ax.bar([f + 0.15 for f in fs], [r["rps"] - r["goodput"] for r in res["loads"]], width=0.3,
           label="refused at once (503/s)")
    ax.set_xlabel("load (x saturating concurrency %d)" % res["saturating_connections"])
    ax.set_ylabel("answers/s")
    ax2 = ax.twinx()
    ax2.plot(fs, [r["server_p99_2xx_ms"] for r in res["loads"]], "k-o", label="p99 of 2xx (ms)")
    ax2.axhline(res["unloaded"]["server_p99_2xx_ms"] or 0, color="grey", linestyle=":",
                label="unloaded p99 (ms)")
    ax2.set_ylabel("ms")
    ax.legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    fig.text(0.01, 0.005, "%s, %d cores, %s; tests/bench/run.sh --only overload" % (
        platform.node(), os.cpu_count(), datetime.date.today().isoformat()), fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    fig.savefig(img / "overload.png", dpi=90)


def hit_overhead(out, proxy_bin, quick):
    """The cache-hit path with the resilience stages on (defaults) against off, one hot key,
    alternating rounds (on, off, off, on, ...); the ratio of the medians."""
    secs, rounds = (3, 3) if quick else (8, 5)
    c = zg.Cluster(dbname="hitoverhead")
    runs = {"on": [], "off": []}
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        proxies = {}
        for name, stages in (("on", True), ("off", False)):
            proxies[name] = zg.Proxy(proxy_config(c, stages), name="hit-" + name)
            proxies[name].wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
        try:
            tok = token("alice")
            for p in proxies.values():
                zg.http(p.port, "GET", "/v1/me/context", {"Authorization": "Bearer " + tok})
            order = ["on", "off"]
            for i in range(rounds):
                for name in (order if i % 2 == 0 else order[::-1]):
                    w = pb.run_wrk(proxies[name].port, 1, 64, secs, str(HERE / "wrk" / "static.lua"),
                                   path="/v1/me/context", token=tok)
                    runs[name].append(round(w["rps"]))
                    pb.log("hit overhead %s: %d req/s" % (name, w["rps"]))
        finally:
            for p in proxies.values():
                p.stop()
    finally:
        c.destroy()
    on, off = pb.median(runs["on"]), pb.median(runs["off"])
    return {"rounds": runs, "median_on": on, "median_off": off, "ratio_on_off": round(on / off, 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--proxy-bin")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="chaos,overload,hit_overhead")
    a = ap.parse_args()
    if a.proxy_bin:
        zg.PROXY_BIN = Path(a.proxy_bin)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for section in a.only.split(","):
        fn = {"chaos": chaos, "overload": overload, "hit_overhead": hit_overhead}[section]
        res = fn(out, a.proxy_bin, a.quick)
        (out / ("%s.json" % section)).write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
