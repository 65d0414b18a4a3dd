#!/usr/bin/python3
"""Backend CPU of a user cache miss, two builds of the extension library side by side.

    tests/bench/miss_cost.py A.so B.so [--rounds N] [--calls N] [--functions f,g,...]
    tests/bench/miss_cost.py A.so B.so --instructions DATADIR [--calls N] [--functions ...]

For each round and each library (alternating which goes first), a new connection (so the library
installed at that moment is loaded) shrinks its user cache to 64 kB, so that every call misses,
and runs, for each function, `SELECT count(zonegate.FN(n::text)) FROM generate_series(...)` over
users it has not seen, and the same statement without the call. The backend's CPU time
(/proc/PID/schedstat) of the first minus the second, over the calls, is the cost of one miss.
Then the same with one prepared statement per call (`EXECUTE`, one transaction each, as pgbench
and the proxy call it): the miss plus what each transaction pays to open and lock the tables.
Prints the median per library and B/A. CPU time, not wall time, and alternation, because this
host's speed drifts by tens of percent within minutes (docs/BENCHMARKS.md).

With --instructions DATADIR (a stopped copy of such a cluster's data directory), instructions
instead of time: for each library, one single-user backend (`postgres --single`) under
valgrind's callgrind runs the calls, each `SELECT count(zonegate.FN('id'))` its own transaction
and every one a miss, and another runs `SELECT count('id'::text)` over the same ids; the
difference of their instruction counts over the calls is the cost of one miss, transaction
included. The same library measured twice agrees within 0.01%, where CPU time on this host
moves by tens of percent, so one run settles what many timed rounds cannot. Needs valgrind;
default 2,000 calls (about a minute per library).

Needs what extension_bench.py needs (the users of generate_users.sql with ids=number), Postgres on
this machine (it reads /proc of the backends) and write access to Postgres' pkglibdir: the library
is replaced by a new file (cp --remove-destination), never overwritten in place. B is left
installed.
"""
import argparse
import os
import pwd
import random
import re
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


def single_user_instructions(datadir, dbname, script):
    """Instructions a single-user backend executes for `script` (one statement a line)."""
    bindir = subprocess.check_output(["pg_config", "--bindir"], text=True).strip()
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           os.path.join(bindir, "postgres"), "--single", "-D", datadir, dbname]
    owner = pwd.getpwuid(os.stat(datadir).st_uid).pw_name
    if os.geteuid() == 0 and owner != "root":
        cmd = ["runuser", "-u", owner, "--"] + cmd  # Postgres refuses to run as root
    p = subprocess.run(cmd, input=script, capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or m is None or "ERROR" in p.stdout + p.stderr:
        sys.exit(f"miss_cost: the single-user backend failed:\n{(p.stdout + p.stderr)[-2000:]}")
    return int(m.group(1))


def instructions(args, lib, libs):
    """Per-miss instructions of each function for both libraries (see the module's text)."""
    datadir = os.path.abspath(args.instructions)
    if not os.path.isfile(os.path.join(datadir, "PG_VERSION")):
        sys.exit(f"miss_cost: {datadir} is not a Postgres data directory")
    if os.path.exists(os.path.join(datadir, "postmaster.pid")):
        sys.exit(f"miss_cost: {datadir} is in use (postmaster.pid): stop it or use a copy")
    dbname = os.environ.get("PGDATABASE", "postgres")
    ids = random.sample(range(11, 100001), args.calls)
    head = "SET zonegate.user_cache_size = '64kB'\nSELECT zonegate.zone_path(11)\n"

    def script(expr):
        return head + "".join(f"SELECT count({expr.format(i)})\n" for i in ids)

    base_script = script("'{}'::text")
    print(f"{'per miss, instructions':<40} {'A':>9} {'B':>9} {'B/A':>6}")
    for fn in args.functions:
        extra = ", 11" if fn == "can_access" else ""
        calls_script = script(f"zonegate.{fn}('{{}}'{extra})")
        per = {}
        for name in ("A", "B"):
            subprocess.check_call(["cp", "--remove-destination", libs[name], lib])
            base = single_user_instructions(datadir, dbname, base_script)
            used = single_user_instructions(datadir, dbname, calls_script)
            per[name] = (used - base) / len(ids)
        print(f"{fn + ' (transaction)':<40} {per['A']:>9,.0f} {per['B']:>9,.0f} "
              f"{per['B'] / per['A']:>6.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=None,
                    help="calls per measurement (default 20000; 2000 with --instructions)")
    ap.add_argument("--instructions", metavar="DATADIR",
                    help="count instructions in single-user backends on this stopped data "
                         "directory instead of timing a running server")
    ap.add_argument("--functions", default="user_context,user_context_json,can_access")
    args = ap.parse_args()
    args.functions = [f for f in args.functions.split(",") if f]
    for f in args.functions:
        if f not in ("user_context", "user_context_json", "can_access", "visible_zones"):
            sys.exit(f"miss_cost: unknown function {f}")
    if args.calls is None:
        args.calls = 2000 if args.instructions else 20000
    lib = subprocess.check_output(["pg_config", "--pkglibdir"], text=True).strip() + "/zonegate.so"
    libs = {"A": args.a, "B": args.b}
    results = {}
    random.seed(42)
    if args.instructions:
        try:
            instructions(args, lib, libs)
        finally:
            subprocess.check_call(["cp", "--remove-destination", libs["B"], lib])
        return
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
