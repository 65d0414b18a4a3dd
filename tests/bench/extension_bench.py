#!/usr/bin/python3
"""Benchmarks of the zonegate extension against its peers, side by side in one run.

    extension_bench.py OUT.json [--quick] [--only pgbench,rls,cache]
    extension_bench.py --markdown OUT.json      the tables of docs/BENCHMARKS.md from a result

Needs a database with zonegate, the Indonesian tree (sql/demo/load_idn.sh) and the generated
users (generate_users.sql with users=100000, seed=42, ids=number); PGHOST/PGPORT/PGUSER/PGDATABASE
select it and PGUSER must be a superuser. tests/bench/run.sh prepares all of that in a throwaway cluster.

Sections (see docs/BENCHMARKS.md):
  pgbench  user_context throughput against SELECT 1 and the naive five-query baseline
  rls      count(*) on a 1,000,000-row table: literal ANY, zonegate's policy, Supabase's
           recommended policy and a naive per-row policy, at 10, 500 and 5,000 visible zones
  cache    zone-tree rebuild time, per-backend memory, user cache hit and miss cost

Writes every number to OUT.json and a human summary to stdout and to OUT.txt (OUT without .json).
Timings are reported, never asserted: the exit status is non-zero only when something failed
(an error, or two ways of counting the same rows that disagree).
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
SQL_DIR = os.path.join(HERE, "sql")
SEED = 42
USERS = 100000
ZIPF_S = 1.1

FULL = {
    "pgbench_seconds": 20, "pgbench_rounds": 3, "clients": 4, "threads": 2,
    "rows": 1000000, "warmups": 3, "reps": 15, "naive_timeout_s": 120,
    "naive_sizes": [10, 500, 5000], "rebuilds": 10, "memory_users": 2000,
    "hit_rate_warmup": 400000, "hit_rate_calls": 200000,
}
QUICK = {
    "pgbench_seconds": 3, "pgbench_rounds": 1, "clients": 4, "threads": 2,
    "rows": 200000, "warmups": 1, "reps": 3, "naive_timeout_s": 20,
    "naive_sizes": [10], "rebuilds": 3, "memory_users": 2000,
    "hit_rate_warmup": 20000, "hit_rate_calls": 10000,
}
SCOPES = [("bench_10", 10, "field_staff"), ("bench_500", 500, "regency_supervisor"),
          ("bench_5000", 5000, "regency_supervisor")]
ADMIN = "bench_admin"


class Failure(Exception):
    """A benchmark could not produce a valid result (not a slow one: those are reported)."""


def on_sigterm(signum, frame):
    # Turn SIGTERM into an exception so running pgbench children are killed on the way out.
    raise KeyboardInterrupt("terminated")


def demo_user_id(i):
    """User number i's id: run.sh loads generate_users.sql with ids=number."""
    return str(i)


def median(xs):
    return statistics.median(xs) if xs else None


def connect(**kw):
    conn = psycopg2.connect(application_name="zonegate-bench", **kw)
    conn.autocommit = True
    return conn


def q1(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchone()[0]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------
# 1. user_context throughput (pgbench)
# ------------------------------------------------------------------------------------------

PGBENCH_CONFIGS = [
    # key, script, description
    ("a_select1", "select1.pgbench", "SELECT 1 (protocol ceiling)"),
    ("b_context_zipf", "user_context_zipf.pgbench",
     "zonegate.user_context, users random_zipfian(1, 100000, 1.1)"),
    ("c_context_uniform", "user_context_uniform.pgbench",
     "zonegate.user_context, users random(1, 100000)"),
    ("d_naive_zipf", "naive_zipf.pgbench",
     "naive: 5 prepared queries incl. recursive CTE, zipfian users"),
    ("d_naive_uniform", "naive_uniform.pgbench",
     "naive: 5 prepared queries incl. recursive CTE, uniform users"),
    ("b2_context_zipf_perm", "user_context_zipf_perm.pgbench",
     "zonegate.user_context, zipfian popularity mapped to users by permute()"),
    ("d2_naive_zipf_perm", "naive_zipf_perm.pgbench",
     "naive: 5 prepared queries, the same users as b2"),
    # Diagnostic: where (b)'s time goes relative to (a).
    ("x_context_bool_zipf", "user_context_bool_zipf.pgbench",
     "diagnostic: (b) returning IS NOT NULL instead of the jsonb"),
]


def run_pgbench(script, cfg, seed):
    secs = cfg["pgbench_seconds"]
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(cfg["clients"]), "-j",
           str(cfg["threads"]), "-T", str(secs), f"--random-seed={seed}",
           "-f", os.path.join(SQL_DIR, script)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 180)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise Failure(f"pgbench {script} failed ({p.returncode}):\n{out[-2000:]}")

    def grab(pattern, conv=float):
        m = re.search(pattern, out)
        if not m:
            raise Failure(f"pgbench {script}: no '{pattern}' in output:\n{out[-2000:]}")
        return conv(m.group(1))

    res = {
        "tps": grab(r"tps = ([\d.]+) \(without initial connection time\)"),
        "latency_avg_ms": grab(r"latency average = ([\d.]+) ms"),
        "transactions": grab(r"number of transactions actually processed: (\d+)", int),
    }
    m = re.search(r"number of failed transactions: (\d+)", out)
    res["failed"] = int(m.group(1)) if m else 0
    res["loadavg_1m_after"] = os.getloadavg()[0]
    if res["failed"] or res["transactions"] == 0:
        raise Failure(f"pgbench {script}: {res['failed']} failed, {res['transactions']} done")
    return res


def zipf_mass(upto, n=USERS, s=ZIPF_S):
    """Share of random_zipfian(1, n, s) draws that are <= upto."""
    weights = [k ** -s for k in range(1, n + 1)]
    return sum(weights[:upto]) / sum(weights)


def section_pgbench(cfg, cur):
    log("pgbench: checking that demo user ids resolve")
    probe = [1, 2, 11, 500, 5000, 50000, 99999, 100000]
    resolved = {}
    for i in probe:
        resolved[i] = q1(cur, "SELECT zonegate.user_context(%s) IS NOT NULL", (demo_user_id(i),))
    if sum(resolved.values()) < len(probe) - 1:
        raise Failure(f"demo users do not resolve: {resolved} (the pgbench scripts bind the user's "
                      "number as its id: load generate_users.sql with ids=number)")
    admins = q1(cur, "SELECT count(*) FROM zonegate.users u JOIN zonegate.roles r "
                     "ON r.name = u.role WHERE r.sees_all")
    # generate_users.sql numbers admins first: users 1..admins are sees_all.
    admin_ids = [demo_user_id(i) for i in range(1, admins + 1)]
    n_admin_first = q1(cur, "SELECT count(*) FROM zonegate.users u JOIN zonegate.roles r "
                            "ON r.name = u.role WHERE r.sees_all AND u.user_id = ANY(%s)",
                       (admin_ids,))
    runs = {key: [] for key, _, _ in PGBENCH_CONFIGS}
    for rnd in range(cfg["pgbench_rounds"]):
        order = PGBENCH_CONFIGS if rnd % 2 == 0 else list(reversed(PGBENCH_CONFIGS))
        for key, script, _ in order:
            log(f"pgbench round {rnd + 1}/{cfg['pgbench_rounds']}: {key} "
                f"({cfg['pgbench_seconds']} s)")
            r = run_pgbench(script, cfg, seed=SEED + rnd)
            runs[key].append(r)
            log(f"  tps {r['tps']:.0f}, latency {r['latency_avg_ms']:.3f} ms")
    result = {"configs": {}, "resolved_probe": {str(k): v for k, v in resolved.items()},
              "admins": admins, "admins_are_users_1_to_n": n_admin_first == admins,
              "zipf_admin_share": zipf_mass(admins)}
    for key, script, desc in PGBENCH_CONFIGS:
        rs = runs[key]
        result["configs"][key] = {
            "description": desc, "script": f"tests/bench/sql/{script}", "runs": rs,
            "tps_median": median([r["tps"] for r in rs]),
            "latency_avg_ms_median": median([r["latency_avg_ms"] for r in rs]),
        }
    c = result["configs"]
    tps = {k: v["tps_median"] for k, v in c.items()}
    result["ratios"] = {
        "b_over_d": tps["b_context_zipf"] / tps["d_naive_zipf"],
        "b_over_a": tps["b_context_zipf"] / tps["a_select1"],
        "c_over_a": tps["c_context_uniform"] / tps["a_select1"],
        "c_over_d_uniform": tps["c_context_uniform"] / tps["d_naive_uniform"],
        "b_over_d_uniform": tps["b_context_zipf"] / tps["d_naive_uniform"],
        "b2_over_d2_perm": tps["b2_context_zipf_perm"] / tps["d2_naive_zipf_perm"],
        "b2_over_a": tps["b2_context_zipf_perm"] / tps["a_select1"],
        "x_bool_over_a": tps["x_context_bool_zipf"] / tps["a_select1"],
    }

    # The same ratios round by round (the two runs of a round are minutes apart, the rounds up
    # to a quarter of an hour): this host's speed drifts, so the median of per-round ratios is
    # the steadier figure.
    def per_round(num, den):
        return median([n["tps"] / d["tps"] for n, d in zip(runs[num], runs[den])])

    result["ratios_per_round"] = {
        "b_over_a": per_round("b_context_zipf", "a_select1"),
        "b2_over_a": per_round("b2_context_zipf_perm", "a_select1"),
        "x_bool_over_a": per_round("x_context_bool_zipf", "a_select1"),
        "b2_over_d2_perm": per_round("b2_context_zipf_perm", "d2_naive_zipf_perm"),
    }
    return result


# ------------------------------------------------------------------------------------------
# 2. RLS on a large app table
# ------------------------------------------------------------------------------------------

def pick_grants(zones, children, target):
    """Grants whose subtrees add up to `target` zones (exactly, when villages can fill the rest):
    regencies, then districts, then villages, each in code order, taking a zone while it fits."""
    size = {}

    def subtree(z):  # every zone below z, z included
        out, stack = [], [z]
        while stack:
            x = stack.pop()
            out.append(x)
            stack.extend(children.get(x, ()))
        return out

    chosen, covered, remaining = [], set(), target
    for level in ("regency", "district", "village"):
        for zid, _, lvl, _ in zones:
            if remaining == 0:
                return chosen
            if lvl != level or zid in covered:
                continue
            if zid not in size:
                size[zid] = len(subtree(zid))
            if size[zid] <= remaining:
                chosen.append(zid)
                covered.update(subtree(zid))
                remaining -= size[zid]
    return chosen


def create_bench_users(cur):
    cur.execute("SELECT id, parent_id, level, code FROM zonegate.zones ORDER BY code")
    zones = cur.fetchall()
    children = {}
    for zid, parent, _, _ in zones:
        if parent is not None:
            children.setdefault(parent, []).append(zid)
    cur.execute("DELETE FROM zonegate.users WHERE user_id LIKE 'bench\\_%%'")
    users = {}
    for name, target, role in SCOPES:
        grants = pick_grants(zones, children, target)
        cur.execute("INSERT INTO zonegate.users (user_id, email, display_name, role) "
                    "VALUES (%s, %s, %s, %s)", (name, f"{name}@bench.example.org", name, role))
        cur.execute("INSERT INTO zonegate.user_zones (user_id, zone_id) "
                    "SELECT %s, unnest(%s::bigint[])", (name, grants))
        users[name] = {"target": target, "role": role, "grants": len(grants)}
    cur.execute("INSERT INTO zonegate.users (user_id, email, display_name, role) "
                "VALUES (%s, %s, %s, 'admin')", (ADMIN, f"{ADMIN}@bench.example.org", ADMIN))
    users[ADMIN] = {"target": None, "role": "admin", "grants": 0}
    for name in users:
        users[name]["visible_zones"] = q1(
            cur, "SELECT cardinality(zonegate.visible_zones(%s))", (name,))
        # Cross-check the cache against the SQL function the Supabase policy uses.
        cur.execute("SELECT set_config('zonegate.user_id', %s, false)", (name,))
        n_sql = q1(cur, "SELECT count(*) FROM bench.visible_zones_sql()")
        cur.execute("RESET zonegate.user_id")
        if n_sql != users[name]["visible_zones"]:
            raise Failure(f"{name}: visible_zones {users[name]['visible_zones']} "
                          f"!= bench.visible_zones_sql() {n_sql}")
    return users


def timed_ms(cur, sql):
    t0 = time.perf_counter()
    cur.execute(sql)
    row = cur.fetchone()
    return (time.perf_counter() - t0) * 1000.0, row[0]


def explain(cur, sql, analyze=False):
    opts = "ANALYZE, BUFFERS, TIMING OFF, COSTS OFF" if analyze else "COSTS OFF"
    cur.execute(f"EXPLAIN ({opts}) {sql}")
    return "\n".join(r[0] for r in cur.fetchall())


def set_user(cur, user):
    cur.execute("SELECT set_config('zonegate.user_id', %s, false)", (user,))


def measure_ways(cur, ways, cfg):
    """ways: {name: (user or None, sql)}. Interleaved rounds: warm-ups then timed runs."""
    times = {w: [] for w in ways}
    counts = {w: set() for w in ways}
    for rnd in range(cfg["warmups"] + cfg["reps"]):
        for w, (user, sql) in ways.items():
            set_user(cur, user or "")
            ms, n = timed_ms(cur, sql)
            counts[w].add(n)
            if rnd >= cfg["warmups"]:
                times[w].append(ms)
    out = {}
    for w in ways:
        if len(counts[w]) != 1:
            raise Failure(f"{w}: count(*) changed between runs: {counts[w]}")
        out[w] = {"times_ms": times[w], "median_ms": median(times[w]),
                  "count": counts[w].pop()}
    return out


def section_rls(cfg, admin_cur):
    rows = cfg["rows"]
    log(f"rls: building bench.rows_* ({rows:,} rows x 4 tables)")
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"rows={rows}",
                        "-f", os.path.join(SQL_DIR, "rls_setup.sql")],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise Failure(f"rls_setup.sql failed:\n{p.stdout}\n{p.stderr}")
    tables = ("rows_plain", "rows_zg", "rows_supa", "rows_naive")
    # Index-only scans are only fair when the visibility map is complete. A VACUUM right after the
    # load can leave pages not all-visible (hint bits not yet settable): vacuum until it is.
    for attempt in range(6):
        for t in tables:
            admin_cur.execute(f"VACUUM (ANALYZE) bench.{t}")
        admin_cur.execute("SELECT relname, relpages, relallvisible FROM pg_class "
                          "WHERE relnamespace = 'bench'::regnamespace AND relkind = 'r'")
        vis = {r[0]: {"relpages": r[1], "relallvisible": r[2]} for r in admin_cur.fetchall()}
        if all(v["relallvisible"] == v["relpages"] for v in vis.values()):
            break
        log(f"  visibility map incomplete after VACUUM ({vis}); again")
        time.sleep(1)
    else:
        raise Failure(f"bench tables not all-visible after 6 VACUUMs: {vis}")
    users = create_bench_users(admin_cur)
    for name, u in users.items():
        log(f"  {name}: {u['role']}, {u['grants']} grants, {u['visible_zones']} visible zones")

    reader = connect(user="bench_reader")
    cur = reader.cursor()
    cur.execute("SET max_parallel_workers_per_gather = 0")
    cur.execute("SET statement_timeout = '600s'")
    result = {"rows": rows, "users": users, "max_parallel_workers_per_gather": 0,
              "loadavg_start": os.getloadavg(),
              "visibility": vis, "vacuum_rounds": attempt + 1,
              "warmups": cfg["warmups"], "reps": cfg["reps"], "scopes": {}}

    for name, target, _ in SCOPES:
        zones = q1(admin_cur, "SELECT zonegate.visible_zones(%s)::text", (name,))
        ways = {
            "a_literal": (None, "SELECT count(*) FROM bench.rows_plain "
                                f"WHERE zone_id = ANY('{zones}'::bigint[])"),
            "b_zonegate": (name, "SELECT count(*) FROM bench.rows_zg"),
            "c_supabase": (name, "SELECT count(*) FROM bench.rows_supa"),
        }
        log(f"rls: {name}: (a) literal, (b) zonegate, (c) supabase")
        m = measure_ways(cur, ways, cfg)
        n = {w: v["count"] for w, v in m.items()}
        if len(set(n.values())) != 1:
            raise Failure(f"{name}: the ways disagree on the visible row count: {n}")
        plans = {}
        for w, (user, sql) in ways.items():
            set_user(cur, user or "")
            plans[w] = explain(cur, sql)
            plans[w + "_analyze"] = explain(cur, sql, analyze=True)
        # The literal is long: keep its plan readable.
        plans["a_literal"] = re.sub(r"'\{[^}]*\}'", "'{...}'", plans["a_literal"])
        plans["a_literal_analyze"] = re.sub(r"'\{[^}]*\}'", "'{...}'", plans["a_literal_analyze"])
        entry = {"visible_zones": users[name]["visible_zones"], "visible_rows": n["b_zonegate"],
                 "ways": m, "plans": plans,
                 "b_over_a": m["b_zonegate"]["median_ms"] / m["a_literal"]["median_ms"],
                 "c_over_b": m["c_supabase"]["median_ms"] / m["b_zonegate"]["median_ms"]}
        for w in m:
            log(f"  {w}: median {m[w]['median_ms']:.2f} ms ({m[w]['count']} rows)")
        result["scopes"][name] = entry

    log("rls: sees_all admin: (b) zonegate vs plain count(*) without RLS")
    ways = {
        "plain_count": (None, "SELECT count(*) FROM bench.rows_plain"),
        "b_zonegate": (ADMIN, "SELECT count(*) FROM bench.rows_zg"),
    }
    m = measure_ways(cur, ways, cfg)
    if m["plain_count"]["count"] != m["b_zonegate"]["count"]:
        raise Failure(f"admin sees {m['b_zonegate']['count']} of {m['plain_count']['count']} rows")
    plans = {}
    for w, (user, sql) in ways.items():
        set_user(cur, user or "")
        plans[w] = explain(cur, sql)
    # Supabase's policy for the admin: a 91,600-element array from the initPlan (one run).
    set_user(cur, ADMIN)
    cur.execute(f"SET statement_timeout = '{cfg['naive_timeout_s']}s'")
    c_admin = {"timeout_s": cfg["naive_timeout_s"]}
    try:
        c_admin["ms"], c_admin["count"] = timed_ms(cur, "SELECT count(*) FROM bench.rows_supa")
    except psycopg2.errors.QueryCanceled:
        c_admin["ms"] = None
        c_admin["timed_out"] = True
    plans["c_supabase"] = explain(cur, "SELECT count(*) FROM bench.rows_supa")
    cur.execute("SET statement_timeout = '600s'")
    for w in m:
        log(f"  {w}: median {m[w]['median_ms']:.2f} ms ({m[w]['count']} rows)")
    log(f"  c_supabase (1 run): {fmt_ms(c_admin['ms'], c_admin['timeout_s'])}")
    result["sees_all"] = {"ways": m, "plans": plans, "c_supabase_once": c_admin,
                          "b_over_plain": m["b_zonegate"]["median_ms"]
                          / m["plain_count"]["median_ms"]}

    # A prepared statement without parameters keeps the plan of its first execution, and the
    # support function chose it for the user current at that time. Measure (b) when the plan
    # was made for another user (PostgREST and PL/pgSQL reuse plans like this).
    log("rls: (b) through a plan cached for another user (PREPARE, EXECUTE as someone else)")
    reuse = {}
    fresh = {ADMIN: result["sees_all"]["ways"]["b_zonegate"]["median_ms"]}
    for name, _, _ in SCOPES:
        fresh[name] = result["scopes"][name]["ways"]["b_zonegate"]["median_ms"]
    for planned_for, run_as in (("bench_10", ADMIN), ("bench_5000", ADMIN), (ADMIN, "bench_10"),
                                (ADMIN, "bench_5000")):
        set_user(cur, planned_for)
        cur.execute("PREPARE reuse_q AS SELECT count(*) FROM bench.rows_zg")
        cur.execute("EXECUTE reuse_q")  # plans it, for planned_for
        cur.fetchall()
        set_user(cur, run_as)
        times, counts = [], set()
        for rnd in range(cfg["warmups"] + cfg["reps"]):
            ms, n = timed_ms(cur, "EXECUTE reuse_q")
            counts.add(n)
            if rnd >= cfg["warmups"]:
                times.append(ms)
        plan = explain(cur, "EXECUTE reuse_q")
        cur.execute("DEALLOCATE reuse_q")
        expected = (result["sees_all"]["ways"]["b_zonegate"]["count"] if run_as == ADMIN
                    else result["scopes"][run_as]["visible_rows"])
        if counts != {expected}:
            raise Failure(f"plan for {planned_for} run as {run_as} counted {counts}, "
                          f"not {expected}")
        key = f"planned_for_{planned_for}_run_as_{run_as}"
        reuse[key] = {"planned_for": planned_for, "run_as": run_as, "times_ms": times,
                      "median_ms": median(times), "fresh_plan_median_ms": fresh[run_as],
                      "slowdown": median(times) / fresh[run_as], "plan": plan}
        log(f"  plan for {planned_for}, run as {run_as}: {median(times):.2f} ms "
            f"(own plan {fresh[run_as]:.2f} ms, x{median(times) / fresh[run_as]:.1f})")
    result["plan_reuse"] = reuse

    log(f"rls: (d) naive per-row policy, once per size, statement_timeout "
        f"{cfg['naive_timeout_s']} s")
    naive = {}
    cur.execute(f"SET statement_timeout = '{cfg['naive_timeout_s']}s'")
    for name, target, _ in SCOPES:
        if target not in cfg["naive_sizes"]:
            continue
        set_user(cur, name)
        entry = {"timeout_s": cfg["naive_timeout_s"]}
        try:
            entry["ms"], entry["count"] = timed_ms(cur, "SELECT count(*) FROM bench.rows_naive")
            expected = result["scopes"][name]["visible_rows"]
            if entry["count"] != expected:
                raise Failure(f"(d) for {name} counted {entry['count']} rows, not {expected}")
        except psycopg2.errors.QueryCanceled:
            entry["ms"] = None
            entry["timed_out"] = True
        entry["plan"] = explain(cur, "SELECT count(*) FROM bench.rows_naive")
        naive[name] = entry
        log(f"  {name}: {fmt_ms(entry['ms'], entry['timeout_s'])}")
    cur.execute("SET statement_timeout = '600s'")
    result["naive"] = naive
    reader.close()
    return result


def fmt_ms(ms, timeout_s):
    return f">{timeout_s} s (statement_timeout)" if ms is None else f"{ms:.0f} ms"


# ------------------------------------------------------------------------------------------
# 3. Cache rebuild and memory
# ------------------------------------------------------------------------------------------

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[k + "_kB"] = int(v.split()[0])
    return out


def cache_row(cur, cache):
    cur.execute("SELECT hits, misses, invalidations, rebuilds, entries, bytes, last_rebuild_ms "
                "FROM zonegate.cache_stats() WHERE cache = %s", (cache,))
    cols = ["hits", "misses", "invalidations", "rebuilds", "entries", "bytes", "last_rebuild_ms"]
    return dict(zip(cols, cur.fetchone()))


def section_cache(cfg, _admin_cur):
    n = cfg["memory_users"]
    res = {}
    # Memory: a fresh backend, before its first zonegate call and after n distinct users.
    conn = connect()
    cur = conn.cursor()
    pid = q1(cur, "SELECT pg_backend_pid()")
    before = proc_status(pid)
    t0 = time.perf_counter()
    resolved = q1(cur, "SELECT count(zonegate.user_context(i::text)) "
                       "FROM generate_series(1, %s) i", (n,))
    first_ms = (time.perf_counter() - t0) * 1000.0
    after = proc_status(pid)
    zones, users = cache_row(cur, "zones"), cache_row(cur, "users")
    res["memory"] = {
        "users_called": n, "users_resolved": resolved, "first_statement_ms": first_ms,
        "proc_before": before, "proc_after": after,
        "growth_kB": {k: after[k] - before[k] for k in before if k != "VmHWM_kB"},
        "zones_cache": zones, "users_cache": users,
    }
    log(f"cache: {n} user_context calls: RSS +{res['memory']['growth_kB']['VmRSS_kB']} kB "
        f"(anon +{res['memory']['growth_kB']['RssAnon_kB']} kB), zones {zones['bytes']} B, "
        f"users {users['bytes']} B")

    # Rebuilds: an UPDATE invalidates the tree; the next call rebuilds it.
    times, user_times = [], []
    for _ in range(cfg["rebuilds"]):
        cur.execute("UPDATE zonegate.zones SET name = name WHERE id = 11")
        cur.execute("SELECT zonegate.zone_path(11)")
        times.append(cache_row(cur, "zones")["last_rebuild_ms"])
        cur.execute("SELECT zonegate.user_context(%s)", (demo_user_id(5000),))
        user_times.append(cache_row(cur, "users")["last_rebuild_ms"])
    res["rebuild"] = {"zones_last_rebuild_ms": times, "median_ms": median(times),
                      "user_entry_load_ms": user_times,
                      "user_entry_load_median_ms": median(user_times),
                      "proc_after_rebuilds": proc_status(pid)}
    log(f"cache: zone tree rebuild median {median(times):.1f} ms over {len(times)}")
    conn.close()

    # Per-call cost of a miss and a hit: a fresh backend (tree built first), n users not seen
    # yet, the same n again, and the same statement without the zonegate call (the cast's cost).
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT zonegate.zone_path(11)")
    lo, hi = 20001, 20000 + n
    base_sql = ("SELECT count(i::text) "
                f"FROM generate_series({lo}, {hi}) i")
    call_sql = ("SELECT count(zonegate.user_context(i::text)) "
                f"FROM generate_series({lo}, {hi}) i")
    # Misses: with a 64 kB user cache every call misses (each new entry evicts the last one);
    # user_context (the jsonb made too) and user_context_json (the text the proxy serves).
    json_sql = call_sql.replace("zonegate.user_context(", "zonegate.user_context_json(")
    cur.execute("SET zonegate.user_cache_size = '64kB'")
    miss_ms = median([timed_ms(cur, call_sql)[0] for _ in range(3)])
    json_miss_ms = median([timed_ms(cur, json_sql)[0] for _ in range(3)])
    cur.execute("RESET zonegate.user_cache_size")
    timed_ms(cur, call_sql)  # now every one of the n users is cached
    hit_ms = median([timed_ms(cur, call_sql)[0] for _ in range(5)])
    base_ms = median([timed_ms(cur, base_sql)[0] for _ in range(5)])
    # The jsonb -> text conversion every client gets (jsonb_out), for a regular user's context
    # (about 0.6 kB) and for a sees_all admin's (every province: about 3 kB).
    text_ms = median([timed_ms(cur, call_sql.replace("::text))", "::text)::text)"))[0]
                      for _ in range(5)])
    admin_sql = ("SELECT count(zonegate.user_context((1 + i % 10)::text)) "
                 f"FROM generate_series({lo}, {hi}) i")
    admin_base = ("SELECT count((1 + i % 10)::text) "
                  f"FROM generate_series({lo}, {hi}) i")
    timed_ms(cur, admin_sql)
    admin_ms = median([timed_ms(cur, admin_sql)[0] for _ in range(5)])
    admin_text_ms = median([timed_ms(cur, admin_sql.replace("::text))", "::text)::text)"))[0]
                            for _ in range(5)])
    admin_base_ms = median([timed_ms(cur, admin_base)[0] for _ in range(5)])
    sizes = {}
    for label, i in (("regular", 50000), ("admin", 1)):
        sizes[label] = q1(cur, "SELECT length(zonegate.user_context(%s)::text)", (demo_user_id(i),))
    users = cache_row(cur, "users")
    res["per_call"] = {
        "calls": n, "miss_us": (miss_ms - base_ms) * 1000.0 / n,
        "json_miss_us": (json_miss_ms - base_ms) * 1000.0 / n,
        "hit_us": (hit_ms - base_ms) * 1000.0 / n,
        "jsonb_out_us": (text_ms - hit_ms) * 1000.0 / n,
        "admin_hit_us": (admin_ms - admin_base_ms) * 1000.0 / n,
        "admin_jsonb_out_us": (admin_text_ms - admin_ms) * 1000.0 / n,
        "context_text_bytes": sizes,
        "statement_ms": {"misses_median": miss_ms, "json_misses_median": json_miss_ms,
                         "hits_median": hit_ms, "no_call_median": base_ms,
                         "hits_as_text_median": text_ms, "admin_hits_median": admin_ms,
                         "admin_hits_as_text_median": admin_text_ms,
                         "admin_no_call_median": admin_base_ms},
        "users_cache": users,
    }
    log(f"cache: user_context miss {res['per_call']['miss_us']:.1f} us, "
        f"hit {res['per_call']['hit_us']:.2f} us per call")
    conn.close()

    # Hit rate of one backend's user cache (zonegate.user_cache_size) under the pgbench
    # distributions: replay draws in one session, long enough to reach the steady state (a
    # 20-second pgbench run gives each of its 4 backends several hundred thousand calls), then
    # count hits and misses.
    res["hit_rate"] = {}
    warm, calls = cfg["hit_rate_warmup"], cfg["hit_rate_calls"]
    for label, draws in (("zipf", zipf_draws(warm + calls, SEED)),
                         ("uniform", uniform_draws(warm + calls, SEED))):
        conn = connect()
        cur = conn.cursor()
        before = None
        for start in range(0, len(draws), 2000):
            if start >= warm and before is None:
                before = cache_row(cur, "users")
            cur.execute("SELECT count(zonegate.user_context(n::text)) FROM unnest(%s::int[]) n",
                        (draws[start:start + 2000],))
        after = cache_row(cur, "users")
        hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
        res["hit_rate"][label] = {"calls": hits + misses, "hits": hits, "misses": misses,
                                  "hit_rate": hits / max(1, hits + misses),
                                  "entries": after["entries"], "bytes": after["bytes"]}
        log(f"cache: {label} draws: hit rate {hits / max(1, hits + misses) * 100:.1f}% "
            f"({after['entries']} entries, {after['bytes'] / 1e6:.2f} MB)")
        conn.close()
    return res


def zipf_draws(k, seed, n=USERS, s=ZIPF_S):
    """k draws of random_zipfian(1, n, s), as pgbench makes them (value i has weight i^-s)."""
    import bisect
    import itertools
    import random
    cum = list(itertools.accumulate(i ** -s for i in range(1, n + 1)))
    rng = random.Random(seed)
    return [bisect.bisect_left(cum, rng.random() * cum[-1]) + 1 for _ in range(k)]


def uniform_draws(k, seed, n=USERS):
    import random
    rng = random.Random(seed)
    return [rng.randint(1, n) for _ in range(k)]


# ------------------------------------------------------------------------------------------

def targets(result):
    t = []

    def add(name, value, goal, met, note=""):
        t.append({"target": name, "value": value, "goal": goal, "met": bool(met), "note": note})

    pg = result.get("pgbench")
    if pg:
        r = pg["ratios"]
        add("user_context (zipf) tps >= 20x naive (zipf)", round(r["b_over_d"], 1), ">= 20",
            r["b_over_d"] >= 20)
        add("user_context (zipf, permuted) tps >= 20x naive (same users)",
            round(r["b2_over_d2_perm"], 1), ">= 20", r["b2_over_d2_perm"] >= 20)
        add("user_context (zipf) tps >= 0.7x SELECT 1", round(r["b_over_a"], 3), ">= 0.7",
            r["b_over_a"] >= 0.7)
        add("user_context (zipf, permuted) tps >= 0.7x SELECT 1", round(r["b2_over_a"], 3),
            ">= 0.7", r["b2_over_a"] >= 0.7)
    rls = result.get("rls")
    if rls:
        for name, s in rls["scopes"].items():
            add(f"RLS (b)/(a) at {s['visible_zones']} zones", round(s["b_over_a"], 2), "<= 1.3",
                s["b_over_a"] <= 1.3)
        s = rls["scopes"].get("bench_5000")
        if s:
            add(f"RLS (c)/(b) at {s['visible_zones']} zones", round(s["c_over_b"], 2), ">= 10",
                s["c_over_b"] >= 10)
        sa = rls["sees_all"]
        add("RLS sees_all (b) / plain count(*)", round(sa["b_over_plain"], 2),
            "no 91,600-key index condition", "current_zones" not in sa["plans"]["b_zonegate"],
            "plan: " + sa["plans"]["b_zonegate"].splitlines()[-1].strip())
    cache = result.get("cache")
    if cache:
        med = cache["rebuild"]["median_ms"]
        add("zone tree rebuild median ms", round(med, 1), "< 50", med < 50)
        g = cache["memory"]["growth_kB"]
        add("backend VmRSS growth after 2,000 users (MB)", round(g["VmRSS_kB"] / 1024, 1),
            "<= 16", g["VmRSS_kB"] <= 16 * 1024,
            f"of which shared_buffers pages (RssShmem) {g['RssShmem_kB'] / 1024:.1f} MB, "
            f"mapped files {g['RssFile_kB'] / 1024:.1f} MB")
        add("backend private memory (RssAnon) growth after 2,000 users (MB)",
            round(g["RssAnon_kB"] / 1024, 1), "<= 16", g["RssAnon_kB"] <= 16 * 1024)
        before = cache["memory"]["proc_before"]["RssAnon_kB"]
        after = cache["rebuild"]["proc_after_rebuilds"]["RssAnon_kB"]
        n_rb = len(cache["rebuild"]["zones_last_rebuild_ms"])
        add(f"backend private memory (RssAnon) growth after {n_rb} rebuilds (MB)",
            round((after - before) / 1024, 1), "<= 16", after - before <= 16 * 1024)
    return t


def summary_lines(result):
    L = []
    m = result["meta"]
    L.append(f"extension benchmarks ({'quick' if m['quick'] else 'full'}), {m['date']}, "
             f"{m['cpus']} CPUs, {m['postgres']}, zonegate {m['zonegate']}, "
             f"{m['zones']} zones, {m['users']} users")
    pg = result.get("pgbench")
    if pg:
        L.append(f"pgbench -M prepared -c {m['config']['clients']} -j {m['config']['threads']} "
                 f"-T {m['config']['pgbench_seconds']}, median of "
                 f"{m['config']['pgbench_rounds']}:")
        for key, c in pg["configs"].items():
            L.append(f"  {key:<24} {c['tps_median']:>10.0f} tps  "
                     f"{c['latency_avg_ms_median']:>8.3f} ms avg latency")
        r = pg["ratios"]
        L.append(f"  b/d {r['b_over_d']:.1f}x (admins are {pg['zipf_admin_share'] * 100:.0f}% of "
                 f"zipfian draws)   b2/d2 permuted {r['b2_over_d2_perm']:.1f}x   "
                 f"c/d_uniform {r['c_over_d_uniform']:.1f}x")
        L.append(f"  b/a {r['b_over_a']:.2f}   b2/a {r['b2_over_a']:.2f}   c/a {r['c_over_a']:.2f}"
                 f"   x_context_bool/a {r['x_bool_over_a']:.2f}")
        pr = pg.get("ratios_per_round")
        if pr:
            L.append(f"  per round (median): b/a {pr['b_over_a']:.2f}   b2/a {pr['b2_over_a']:.2f}"
                     f"   x_context_bool/a {pr['x_bool_over_a']:.2f}   b2/d2 "
                     f"{pr['b2_over_d2_perm']:.1f}x")
    rls = result.get("rls")
    if rls:
        L.append(f"RLS count(*) over {rls['rows']:,} rows, median ms of {rls['reps']} "
                 f"(max_parallel_workers_per_gather=0):")
        L.append(f"  {'user':<12} {'zones':>6} {'rows':>7} {'(a) literal':>12} "
                 f"{'(b) zonegate':>13} {'(c) supabase':>13} {'(d) naive':>12} {'b/a':>6} "
                 f"{'c/b':>6}")
        for name, s in rls["scopes"].items():
            w = s["ways"]
            d = rls["naive"].get(name)
            dtxt = "-" if d is None else (f">{d['timeout_s']}s" if d["ms"] is None
                                          else f"{d['ms']:.0f}")
            L.append(f"  {name:<12} {s['visible_zones']:>6} {s['visible_rows']:>7} "
                     f"{w['a_literal']['median_ms']:>12.2f} {w['b_zonegate']['median_ms']:>13.2f} "
                     f"{w['c_supabase']['median_ms']:>13.2f} {dtxt:>12} {s['b_over_a']:>6.2f} "
                     f"{s['c_over_b']:>6.2f}")
        sa = rls["sees_all"]
        L.append(f"  sees_all: plain count(*) {sa['ways']['plain_count']['median_ms']:.1f} ms, "
                 f"(b) {sa['ways']['b_zonegate']['median_ms']:.1f} ms "
                 f"({sa['b_over_plain']:.2f}x); (c) once: "
                 f"{fmt_ms(sa['c_supabase_once']['ms'], sa['c_supabase_once']['timeout_s'])}")
        for r in rls.get("plan_reuse", {}).values():
            L.append(f"  cached plan made for {r['planned_for']}, run as {r['run_as']}: "
                     f"{r['median_ms']:.2f} ms vs {r['fresh_plan_median_ms']:.2f} ms with its "
                     f"own plan (x{r['slowdown']:.1f})")
    cache = result.get("cache")
    if cache:
        mem = cache["memory"]
        L.append(f"cache: zone tree rebuild median {cache['rebuild']['median_ms']:.1f} ms; "
                 f"zones cache {mem['zones_cache']['bytes'] / 1e6:.2f} MB, users cache "
                 f"{mem['users_cache']['bytes'] / 1e6:.2f} MB ({mem['users_cache']['entries']} "
                 f"entries); RSS +{mem['growth_kB']['VmRSS_kB'] / 1024:.1f} MB (anon "
                 f"+{mem['growth_kB']['RssAnon_kB'] / 1024:.1f} MB)")
        pc = cache["per_call"]
        hr = cache.get("hit_rate", {})
        if hr:
            L.append("  one backend's user cache hit rate: " + ", ".join(
                f"{k} {v['hit_rate'] * 100:.1f}% ({v['entries']} entries)" for k, v in hr.items()))
        L.append(f"  user_context per call: miss {pc['miss_us']:.1f} us (user_context_json "
                 f"{pc.get('json_miss_us', 0):.1f} us), hit {pc['hit_us']:.2f} us;"
                 f" jsonb -> text {pc['jsonb_out_us']:.1f} us "
                 f"({pc['context_text_bytes']['regular']} B), admin "
                 f"{pc['admin_jsonb_out_us']:.1f} us ({pc['context_text_bytes']['admin']} B)")
    L.append("targets:")
    for t in result["targets"]:
        L.append(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['value']} "
                 f"(goal {t['goal']})")
    return L


def markdown(result):
    """The tables of docs/BENCHMARKS.md, from a result file (extension_bench.py --markdown)."""
    L = []
    m = result["meta"]
    pg = result.get("pgbench")
    if pg:
        cfg = m["config"]
        L += [f"pgbench -n -M prepared -c {cfg['clients']} -j {cfg['threads']} -T "
              f"{cfg['pgbench_seconds']}, {cfg['pgbench_rounds']} runs per configuration in "
              "alternating order, median tps (and the median of the average latencies):", "",
              "| | configuration | tps (median) | avg latency | runs (tps) |",
              "|---|---|---:|---:|---|"]
        for key, c in pg["configs"].items():
            runs = ", ".join(f"{r['tps']:.0f}" for r in c["runs"])
            L.append(f"| {key} | {c['description']} | {c['tps_median']:,.0f} | "
                     f"{c['latency_avg_ms_median']:.3f} ms | {runs} |")
        r = pg["ratios"]
        L += ["", "| ratio | value |", "|---|---:|",
              f"| b / d (zipfian, admins are {pg['zipf_admin_share'] * 100:.0f}% of draws) | "
              f"{r['b_over_d']:,.0f}x |",
              f"| b2 / d2 (zipfian, ranks permuted) | {r['b2_over_d2_perm']:.1f}x |",
              f"| c / d_uniform (uniform users) | {r['c_over_d_uniform']:.1f}x |",
              f"| b / a (user_context vs SELECT 1) | {r['b_over_a']:.2f} |",
              f"| b2 / a (ranks permuted) | {r['b2_over_a']:.2f} |",
              f"| c / a (uniform: mostly misses) | {r['c_over_a']:.2f} |",
              f"| x_context_bool / a (the call, returning a boolean) | {r['x_bool_over_a']:.2f} |",
              ""]
        pr = pg.get("ratios_per_round")
        if pr:
            L += ["| median of per-round ratios | value |", "|---|---:|",
                  f"| b / a | {pr['b_over_a']:.2f} |", f"| b2 / a | {pr['b2_over_a']:.2f} |",
                  f"| x_context_bool / a | {pr['x_bool_over_a']:.2f} |",
                  f"| b2 / d2 | {pr['b2_over_d2_perm']:.1f}x |", ""]
    rls = result.get("rls")
    if rls:
        L += [f"`SELECT count(*)` over {rls['rows']:,} rows, median of {rls['reps']} timed runs "
              f"after {rls['warmups']} warm-ups, client wall time (parse, plan, execute, round "
              "trip), max_parallel_workers_per_gather = 0:", "",
              "| user | visible zones | grants | visible rows | (a) literal ANY | (b) zonegate "
              "| (c) Supabase | (d) naive | (b)/(a) | (c)/(b) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, sc in rls["scopes"].items():
            w = sc["ways"]
            d = rls["naive"].get(name)
            dtxt = "not run" if d is None else (f">{d['timeout_s']} s" if d["ms"] is None
                                                else f"{d['ms'] / 1000:.1f} s")
            L.append(f"| {name} | {sc['visible_zones']:,} | {rls['users'][name]['grants']} | "
                     f"{sc['visible_rows']:,} | {w['a_literal']['median_ms']:.2f} ms | "
                     f"{w['b_zonegate']['median_ms']:.2f} ms | {w['c_supabase']['median_ms']:.2f} "
                     f"ms | {dtxt} | {sc['b_over_a']:.2f} | {sc['c_over_b']:.1f} |")
        sa = rls["sees_all"]
        c1 = sa["c_supabase_once"]
        L += ["", "| sees_all admin (91,599 zones) | median |", "|---|---:|",
              f"| plain `count(*)`, no RLS | {sa['ways']['plain_count']['median_ms']:.1f} ms |",
              f"| (b) zonegate policy | {sa['ways']['b_zonegate']['median_ms']:.1f} ms "
              f"({sa['b_over_plain']:.2f}x) |",
              f"| (c) Supabase policy (one run) | {fmt_ms(c1['ms'], c1['timeout_s'])} |", ""]
        if rls.get("plan_reuse"):
            L += ["| (b) through a prepared statement planned for | executed as | median | "
                  "with its own plan | slowdown |", "|---|---|---:|---:|---:|"]
            for r in rls["plan_reuse"].values():
                L.append(f"| {r['planned_for']} | {r['run_as']} | {r['median_ms']:.2f} ms | "
                         f"{r['fresh_plan_median_ms']:.2f} ms | {r['slowdown']:.1f}x |")
            L.append("")
    cache = result.get("cache")
    if cache:
        mem, rb, pc = cache["memory"], cache["rebuild"], cache["per_call"]
        g = mem["growth_kB"]
        after_rb = rb["proc_after_rebuilds"]
        before = mem["proc_before"]
        L += ["| cache measurement | value |", "|---|---:|",
              f"| zone tree rebuild, median of {len(rb['zones_last_rebuild_ms'])} "
              f"(`last_rebuild_ms`) | {rb['median_ms']:.1f} ms |",
              f"| rebuilds (ms) | {', '.join(f'{x:.1f}' for x in rb['zones_last_rebuild_ms'])} |",
              f"| one user entry load (median, `users.last_rebuild_ms`) | "
              f"{rb['user_entry_load_median_ms'] * 1000:.0f} us |",
              f"| zones cache `bytes` | {mem['zones_cache']['bytes'] / 1e6:.2f} MB |",
              f"| users cache `bytes` after {mem['users_called']:,} users "
              f"({mem['users_cache']['entries']:,} entries) | "
              f"{mem['users_cache']['bytes'] / 1e6:.2f} MB |",
              f"| VmRSS growth (first call to {mem['users_called']:,} users) | "
              f"{g['VmRSS_kB'] / 1024:.1f} MB |",
              f"| of which RssAnon (private) | {g['RssAnon_kB'] / 1024:.1f} MB |",
              f"| of which RssShmem (shared_buffers pages touched) | "
              f"{g['RssShmem_kB'] / 1024:.1f} MB |",
              f"| of which RssFile (zonegate.so, libstdc++) | {g['RssFile_kB'] / 1024:.1f} MB |",
              f"| RssAnon growth after the rebuilds too | "
              f"{(after_rb['RssAnon_kB'] - before['RssAnon_kB']) / 1024:.1f} MB |",
              f"| VmHWM (peak RSS) of the backend at the end | "
              f"{after_rb['VmHWM_kB'] / 1024:.1f} MB |",
              f"| user_context per call: cache miss | {pc['miss_us']:.1f} us |",
              f"| user_context_json per call: cache miss | {pc.get('json_miss_us', 0):.1f} us |",
              f"| user_context per call: cache hit | {pc['hit_us']:.2f} us |",
              f"| jsonb -> text of a regular context ({pc['context_text_bytes']['regular']} B) | "
              f"{pc['jsonb_out_us']:.1f} us |",
              f"| jsonb -> text of an admin context ({pc['context_text_bytes']['admin']} B) | "
              f"{pc['admin_jsonb_out_us']:.1f} us |"]
        for k, v in cache.get("hit_rate", {}).items():
            L.append(f"| one backend's user cache hit rate, {k} users ({v['calls']:,} calls after "
                     f"as many warm-up calls) | {v['hit_rate'] * 100:.1f}% ({v['entries']:,} "
                     f"entries, {v['bytes'] / 1e6:.2f} MB) |")
        L.append("")
    L += ["| target | measured | goal | |", "|---|---:|---|---|"]
    for t in result["targets"]:
        L.append(f"| {t['target']} | {t['value']} | {t['goal']} | "
                 f"{'met' if t['met'] else '**missed**'} |")
    return "\n".join(L)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        with open(sys.argv[2]) as f:
            print(markdown(json.load(f)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON result file")
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--only", default="pgbench,rls,cache",
                    help="comma-separated sections (pgbench, rls, cache)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    cfg = QUICK if args.quick else FULL
    sections = [s for s in args.only.split(",") if s]
    for s in sections:
        if s not in ("pgbench", "rls", "cache"):
            ap.error(f"unknown section {s}")

    admin = connect()
    cur = admin.cursor()
    cur.execute("SET statement_timeout = '1800s'")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick, "config": cfg, "cpus": os.cpu_count(),
        "cpu_model": cpu_model(), "kernel": platform.release(),
        "sched_autogroup": sched_autogroup(),
        "postgres": q1(cur, "SELECT version()").split(" on ")[0],
        "zonegate": q1(cur, "SELECT zonegate.version()"),
        "zones": q1(cur, "SELECT count(*) FROM zonegate.zones"),
        "users": q1(cur, "SELECT count(*) FROM zonegate.users"),
        "grants": q1(cur, "SELECT count(*) FROM zonegate.user_zones"),
        "loadavg_start": os.getloadavg(),
        "settings": settings(cur),
    }
    result = {"meta": meta}
    failures = []
    runners = {"pgbench": section_pgbench, "rls": section_rls, "cache": section_cache}
    for s in sections:
        t0 = time.time()
        try:
            result[s] = runners[s](cfg, cur)
        except Failure as e:
            failures.append(f"{s}: {e}")
            log(f"FAILED {s}: {e}")
        result.setdefault("durations_s", {})[s] = round(time.time() - t0, 1)
    meta["loadavg_end"] = os.getloadavg()
    result["targets"] = targets(result)
    result["failures"] = failures
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=False)
    lines = summary_lines(result)
    txt = re.sub(r"\.json$", "", args.out) + ".txt"
    with open(txt, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"results: {args.out}")
    return 1 if failures else 0


def settings(cur):
    cur.execute("SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'jit', "
                "'max_parallel_workers_per_gather', 'shared_preload_libraries', 'fsync', "
                "'work_mem', 'zonegate.user_cache_size')")
    return dict(cur.fetchall())


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def sched_autogroup():
    """kernel.sched_autogroup_enabled while measuring (run.sh turns it off: TROUBLESHOOTING.md)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("extension_bench: interrupted", file=sys.stderr)
        sys.exit(130)
