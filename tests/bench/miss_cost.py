#!/usr/bin/python3
"""Backend CPU of a user cache miss, two builds of the extension library side by side.

    tests/bench/miss_cost.py A.so B.so [--rounds N] [--calls N] [--functions f,g,...]

For each round and each library (alternating which goes first), a new connection (so the library
installed at that moment is loaded) shrinks its user cache to 64 kB, so that every call misses,
and runs, for each function, `SELECT count(zonegate.FN(n::text)) FROM generate_series(...)` over
users it has not seen, and the same statement without the call. The backend's CPU time
(/proc/PID/schedstat) of the first minus the second, over the calls, is the cost of one miss.
Then the same with one prepared statement per call (`EXECUTE`, one transaction each, as pgbench
and the proxy call it): the miss plus what each transaction pays to open and lock the tables.
Prints the median per library and B/A. CPU time, not wall time, and alternation, because this
host's speed drifts by tens of percent within minutes (docs/BENCHMARKS.md).

Needs what extension_bench.py needs (the users of generate_users.sql with ids=number), Postgres on
this machine (it reads /proc of the backends) and write access to Postgres' pkglibdir: the library
is replaced by a new file (cp --remove-destination), never overwritten in place. B is left
installed.
"""
import argparse
import random
import statistics
import subprocess
import sys

import psycopg2


def backend_cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def one_round(args, lo):
    """Per-miss microseconds of each function, in-statement and per-transaction, for the library
    installed now."""
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    cur.execute("SET zonegate.user_cache_size = '64kB'")
    cur.execute("SELECT zonegate.zone_path(11)")  # the tree is built outside the measurement
    out = {}
    hi = lo + args.calls - 1

    def cpu_of(sql, params=None):
        before = backend_cpu_ns(pid)
        cur.execute(sql, params)
        cur.fetchall()
        return backend_cpu_ns(pid) - before

    for fn in args.functions:
        call = f"zonegate.{fn}(n::text{', 11' if fn == 'can_access' else ''})"
        base = cpu_of(f"SELECT count(n::text) FROM generate_series({lo}, {hi}) n")
        used = cpu_of(f"SELECT count({call}) FROM generate_series({lo}, {hi}) n")
        out[(fn, "statement")] = (used - base) / args.calls / 1000.0
    # One transaction per call: prepared statements, fresh users drawn at random.
    ids = [str(random.randint(11, 100000)) for _ in range(args.calls // 2)]
    cur.execute("PREPARE zg_call(text) AS SELECT zonegate.user_context($1)")
    cur.execute("PREPARE zg_base(text) AS SELECT $1::text")
    for name in ("zg_call", "zg_base"):
        before = backend_cpu_ns(pid)
        for uid in ids:
            cur.execute(f"EXECUTE {name}(%s)", (uid,))
            cur.fetchall()
        out[name] = backend_cpu_ns(pid) - before
    out[("user_context", "transaction")] = (out.pop("zg_call") - out.pop("zg_base")) / len(ids) / 1000.0
    conn.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--functions", default="user_context,user_context_json,can_access")
    args = ap.parse_args()
    args.functions = [f for f in args.functions.split(",") if f]
    for f in args.functions:
        if f not in ("user_context", "user_context_json", "can_access", "visible_zones"):
            sys.exit(f"miss_cost: unknown function {f}")
    lib = subprocess.check_output(["pg_config", "--pkglibdir"], text=True).strip() + "/zonegate.so"
    libs = {"A": args.a, "B": args.b}
    results = {}
    random.seed(42)
    try:
        for rnd in range(args.rounds):
            for name in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
                subprocess.check_call(["cp", "--remove-destination", libs[name], lib])
                # Users 11 + round * calls ...: not seen by this backend, the same for A and B.
                for key, us in one_round(args, 11 + (rnd * args.calls) % 60000).items():
                    results.setdefault(key, {}).setdefault(name, []).append(us)
                print(f"round {rnd + 1} {name} done", file=sys.stderr)
    finally:
        subprocess.check_call(["cp", "--remove-destination", libs["B"], lib])
    print(f"{'per miss, backend CPU':<40} {'A us':>8} {'B us':>8} {'B/A':>6}")
    for (fn, how), runs in results.items():
        a, b = statistics.median(runs["A"]), statistics.median(runs["B"])
        print(f"{fn + ' (' + how + ')':<40} {a:>8.1f} {b:>8.1f} {b / a:>6.2f}   "
              f"A {[round(x, 1) for x in runs['A']]} B {[round(x, 1) for x in runs['B']]}")


if __name__ == "__main__":
    main()
