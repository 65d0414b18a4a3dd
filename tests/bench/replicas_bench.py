#!/usr/bin/python3
"""Read replicas (docs/BENCHMARKS.md, "Read replicas"). Not part of CI.

    replicas_bench.py OUT_DIR [--proxy-bin PATH] [--quick]

One primary and two streaming hot standbys (pg_basebackup -R), all on this machine's loopback,
and one proxy per topology (workers 2, pool max 2 per upstream, no cache for the route):

  throughput  wrk -t1 -c32 on the uncached read GET /rpc/add?a=2&b=3 for 8 s (--quick: 4 s) with
              0, 1 and 2 replicas configured, alternated over 3 rounds (--quick: 1): req/s, p50,
              p99, and the share of reads the replicas served. Every server shares the same
              2 cores, so this shows what routing costs (lag check, replica choice, one more hop
              of bookkeeping), not what replicas on their own machines would add: on one box the
              total CPU is fixed.
  fallback    4 client threads on the same read against the 1-replica proxy; the replica is
              stopped (pg_ctl -m fast) under them: errors seen by clients (the goal: 0), the
              slowest read around the stop, the time until /health marks the replica not
              eligible, and after a restart the time until reads go to it again.

Results: OUT_DIR/replicas.json and a summary on stdout; timings are reported, never asserted.
Clusters and proxies are stopped on exit, also on failure.
"""
import argparse
import json
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

PATH = "/rpc/add?a=2&b=3"


def proxy_config(primary, replicas):
    cfg = yaml.safe_load(rb.proxy_config(primary))
    cfg["rpc"] = {"schema": "api", "functions": ["add"]}
    # The adaptive concurrency limit off: at -c32 it sheds a few hundred requests of 200,000
    # with the primary alone (none with replicas, whose paths have limits of their own), and a
    # routing comparison should compare served reads only.
    cfg["resilience"] = {"breaker": {"open": "200ms", "open_max": "500ms"},
                         "concurrency": {"enabled": False}}
    if replicas:
        cfg["database"]["replicas"] = [
            {"name": "r%d" % (i + 1),
             "conninfo": "host=%s port=%d dbname=%s user=postgres" % (r.host, r.port, primary.dbname),
             "pool": {"min": 1, "max": 2, "reconnect_max": "300ms"}}
            for i, r in enumerate(replicas)]
        cfg["database"]["routing"] = {"check_interval": "100ms"}
    return yaml.safe_dump(cfg)


def health(p):
    return json.loads(zg.http(p.admin_port, "GET", "/health")[2])


def replica_status(p, name):
    return [u for u in health(p)["postgres"] if u["upstream"] == name][0]


def start(primary, replicas, name):
    p = zg.Proxy(proxy_config(primary, replicas), name=name)
    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
    for i in range(len(replicas)):
        zg.wait_for(lambda i=i: replica_status(p, "r%d" % (i + 1))["eligible"], timeout=30,
                    what="replica r%d eligible" % (i + 1))
    return p


def throughput(primary, replicas, secs, rounds):
    tok = rb.token("alice")
    out = {0: [], 1: [], 2: []}
    order = [0, 1, 2]
    for r in range(rounds):
        for n in (order if r % 2 == 0 else order[::-1]):
            p = start(primary, replicas[:n], "replicas-%d" % n)
            try:
                zg.http(p.port, "GET", PATH, {"Authorization": "Bearer " + tok})
                before = [replica_status(p, "r%d" % (i + 1))["reads"] for i in range(n)]
                w = pb.run_wrk(p.port, 1, 32, secs, str(HERE / "wrk" / "static.lua"), path=PATH,
                               token=tok)
                after = [replica_status(p, "r%d" % (i + 1))["reads"] for i in range(n)]
                served = sum(after) - sum(before)
                rec = {"replicas": n, "round": r, "rps": round(w["rps"]), "p50_us": w["p50_us"],
                       "p99_us": w["p99_us"], "non2xx": w["non2xx"],
                       "socket_errors": w["socket_errors"],
                       "replica_share": round(served / max(1, w["requests"]), 3),
                       "per_replica": [a - b for a, b in zip(after, before)]}
                out[n].append(rec)
                pb.log("%d replicas: %d req/s, p99 %.0f us, replicas served %.0f%%" %
                       (n, w["rps"], w["p99_us"], 100 * rec["replica_share"]))
            finally:
                p.stop()
    return out


class Clients:
    """Threads reading PATH in a loop, each request timed; any non-200 is an error."""

    def __init__(self, port, tok, threads=4):
        self.port, self.tok = port, tok
        self.samples = []  # (start time, latency s, status)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        import http.client as hc
        conn = None
        while not self.stopping.is_set():
            t0 = time.time()
            try:
                if conn is None:
                    conn = hc.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", PATH, headers={"Authorization": "Bearer " + self.tok})
                r = conn.getresponse()
                r.read()
                status = r.status
            except Exception:
                status, conn = "exception", None
            with self.lock:
                self.samples.append((t0, time.time() - t0, status))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        return self.samples


def fallback(primary, replicas, rounds):
    tok = rb.token("alice")
    out = []
    for r in range(rounds):
        p = start(primary, replicas[:1], "replicas-fallback")
        try:
            c = Clients(p.port, tok)
            time.sleep(2)
            t_stop = time.time()
            replicas[0].stop()
            t_stopped = time.time()
            zg.wait_for(lambda: not replica_status(p, "r1")["eligible"], timeout=30,
                        what="the replica not eligible")
            t_ineligible = time.time()
            time.sleep(2)
            reads_before = replica_status(p, "r1")["reads"]
            t_start = time.time()
            replicas[0].start()
            zg.wait_for(lambda: replica_status(p, "r1")["reads"] > reads_before, timeout=60,
                        what="reads on the replica again")
            t_back = time.time()
            time.sleep(1)
            samples = c.stop()
        finally:
            p.stop()
        errors = [s for s in samples if s[2] != 200]
        around = [s[1] for s in samples if t_stop - 0.5 <= s[0] <= t_ineligible + 0.5]
        steady = sorted(s[1] for s in samples if s[0] < t_stop)
        rec = {"round": r, "requests": len(samples), "errors": len(errors),
               "pg_ctl_stop_s": round(t_stopped - t_stop, 3),
               "ineligible_after_stop_s": round(t_ineligible - t_stop, 3),
               "slowest_read_around_stop_ms": round(1000 * max(around), 1) if around else None,
               "steady_p99_ms": round(1000 * steady[int(0.99 * (len(steady) - 1))], 2)
               if steady else None,
               "reads_on_replica_after_start_s": round(t_back - t_start, 3)}
        out.append(rec)
        pb.log("fallback: %d requests, %d errors, replica ineligible %.2f s after the stop, "
               "slowest read %.1f ms, back %.2f s after start" %
               (rec["requests"], rec["errors"], rec["ineligible_after_stop_s"],
                rec["slowest_read_around_stop_ms"] or 0, rec["reads_on_replica_after_start_s"]))
    return out


def run(out, proxy_bin, quick):
    if proxy_bin:
        zg.PROXY_BIN = Path(proxy_bin)
    secs, rounds = (4, 1) if quick else (8, 3)
    primary = zg.Cluster(dbname="replicasbench")
    replicas = []
    try:
        primary.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        for _ in range(2):
            replicas.append(zg.Replica(primary))
        for r in replicas:
            r.wait_caught_up()
        tp = throughput(primary, replicas, secs, rounds)
        fb = fallback(primary, replicas, 1 if quick else 2)
    finally:
        for r in replicas:
            r.destroy()
        primary.destroy()
    med = {n: {"rps": pb.median([x["rps"] for x in v]), "p99_us": pb.median([x["p99_us"] for x in v]),
               "replica_share": pb.median([x["replica_share"] for x in v])}
           for n, v in tp.items()}
    return {
        "throughput": {str(n): v for n, v in tp.items()},
        "median": {str(n): v for n, v in med.items()},
        "rps_ratio_to_primary_only": {str(n): round(med[n]["rps"] / med[0]["rps"], 3) for n in med},
        "fallback": fb,
        "fallback_errors": sum(x["errors"] for x in fb),
        "note": "all servers on one 2-core machine: the ratio is the routing's cost, not scale-out",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--proxy-bin")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    summary = run(a.out, a.proxy_bin, a.quick)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "replicas.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("median", "rps_ratio_to_primary_only",
                                              "fallback_errors")}, indent=2))
    for f in summary["fallback"]:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
