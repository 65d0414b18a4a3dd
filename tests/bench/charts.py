#!/usr/bin/python3
"""Charts of the side-by-side benchmarks, drawn from the results tests/bench/run.sh writes.

    charts.py [--out DIR] [CHART...]     draw (all charts there are results for, or the ones named)
    charts.py --list                     the charts and the result files each one reads
    charts.py --record SECTION --command CMD --started EPOCH --quick 0|1
                                         (run.sh, after each section) stamp the section's JSON
                                         with how it was made: a "run" object (command, date,
                                         commit, machine) that the captions print

Results: $ZONEGATE_BENCH_RESULTS or tests/.artifacts/bench. One PNG per comparison, into
docs/img/ (the charts docs/BENCHMARKS.md shows), except that a chart drawn from a quick-mode run
(`run.sh --quick`: numbers too short to compare) goes to RESULTS/charts/ so that a smoke run does
not replace the docs' charts; --out DIR puts every chart in DIR. Under each plot a caption gives
the machine (CPUs, CPU model, RAM), the date, the commit and the exact command of the run.

A chart whose results are missing (a section that was not run) is skipped with a message; a result
file that is not valid JSON, or lacks what its chart reads, is an error (exit status 1) naming it.
Needs Debian's python3-matplotlib (make deps-bench); draws with the Agg backend.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DPI = 90

# The JSON files each section of run.sh writes (default: SECTION.json).
SECTION_FILES = {"geo": ["geo_sql.json", "geo_core.json"]}


class Malformed(Exception):
    """A result file that cannot be read as what it should be."""


def results_dir():
    return os.environ.get("ZONEGATE_BENCH_RESULTS") or os.path.join(ROOT, "tests", ".artifacts",
                                                                     "bench")


def rel(path):
    """A path for messages: relative to the repository when inside it."""
    p = os.path.abspath(path)
    return os.path.relpath(p, ROOT) if p.startswith(ROOT + os.sep) else p


# ------------------------------------------------------------------------------------------
# What a run was: recorded by run.sh after each section
# ------------------------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def git_commit():
    """The short commit, '+' when tracked files differ from it (a run of uncommitted code)."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=20)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--"],
                               capture_output=True, timeout=20).returncode != 0
        return head.stdout.strip() + ("+" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def sched_autogroup():
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def record(art, section, command, started, quick):
    """Adds "run" to each JSON object the section wrote since `started` (epoch seconds)."""
    now = time.time()
    run = {
        "section": section, "command": command, "quick": bool(int(quick)),
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        "seconds": round(now - started),
        "commit": git_commit(), "cpus": os.cpu_count(), "cpu_model": cpu_model(),
        "mem_gib": mem_total_gib(), "kernel": platform.release(),
        "sched_autogroup": sched_autogroup(),
    }
    stamped = 0
    for name in SECTION_FILES.get(section, [section + ".json"]):
        path = os.path.join(art, name)
        if not os.path.exists(path) or os.path.getmtime(path) < started - 1:
            continue  # not written by this run of the section
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            print(f"charts: {rel(path)} is not a JSON object; its run is not recorded")
            continue
        data["run"] = run
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        stamped += 1
    return stamped


# ------------------------------------------------------------------------------------------
# Captions
# ------------------------------------------------------------------------------------------

def run_info(data, section):
    """{machine, date, commit, command, quick} of a result, from its "run" (run.sh) or, for a
    file written by a benchmark script run by hand, from whatever metadata it carries."""
    run = data.get("run") if isinstance(data, dict) else None
    if isinstance(run, dict):
        return run
    meta = data.get("meta") if isinstance(data, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    ctx = data.get("context") if isinstance(data, dict) else None  # Google Benchmark's
    ctx = ctx if isinstance(ctx, dict) else {}
    started = meta.get("date") or ctx.get("date")
    if not started and data.get("_file_mtime"):
        started = "file written " + when(datetime.datetime.fromtimestamp(
            data["_file_mtime"], datetime.timezone.utc).isoformat())
    return {"section": section, "command": None, "quick": meta.get("quick", data.get("quick")),
            "started": started, "commit": None,
            "cpus": meta.get("cpus") or ctx.get("num_cpus") or data.get("cpus"),
            "cpu_model": meta.get("cpu_model"), "mem_gib": None}


def when(iso):
    if not iso:
        return "date not recorded"
    if iso.startswith("file written "):
        return iso
    try:
        d = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return str(iso)
    if d.tzinfo is not None:
        d = d.astimezone(datetime.timezone.utc)
        return d.strftime("%Y-%m-%d %H:%M UTC")
    return d.strftime("%Y-%m-%d %H:%M")


def caption_lines(info):
    cpus = info.get("cpus")
    mem = info.get("mem_gib")
    machine = ", ".join(x for x in (
        f"{cpus} CPUs" if cpus else None, info.get("cpu_model"),
        f"{mem:g} GiB RAM" if mem else None) if x) or "machine not recorded"
    commit = info.get("commit")
    secs = info.get("seconds")
    line1 = (f"{machine}; {when(info.get('started'))}"
             + (f" ({secs / 60:.0f} min)" if secs and secs >= 90 else
                f" ({secs} s)" if secs else "")
             + f"; commit {commit if commit else 'not recorded'}"
             + (" (uncommitted changes)" if commit and commit.endswith("+") else ""))
    cmd = info.get("command")
    sec = info.get("section")
    line2 = ("command: " + cmd if cmd
             else "command not recorded (not run through tests/bench/run.sh)")
    words = (cmd or "").replace("--only=", "--only ").split()
    only = words[words.index("--only") + 1] if "--only" in words[:-1] else None
    if cmd and sec and only != sec:
        line2 += f"   (this section alone: tests/bench/run.sh --only {sec})"
    lines = [line1, line2]
    if info.get("quick"):
        lines.append("QUICK MODE (--quick): short runs, a smoke test; not figures to compare")
    return lines


# ------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------

def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as p
    p.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7,
                       "axes.grid": True, "grid.alpha": 0.3})
    return p


def figure(ncols, width=10.0, height=3.9):
    p = plt()
    fig, axes = p.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, list(axes[0])


def finish(fig, info, out_path, title):
    lines = caption_lines(info)
    fig.suptitle(title, fontsize=10, fontweight="bold")
    h = fig.get_size_inches()[1]
    step = 0.13 / h  # one 7-point caption line, in figure coordinates
    for i, line in enumerate(reversed(lines)):
        red = line.startswith("QUICK MODE")
        fig.text(0.01, 0.008 + i * step, line, fontsize=7,
                 color="#b00000" if red else "#333333", fontweight="bold" if red else "normal",
                 family="monospace" if line.startswith("command") else None)
    fig.tight_layout(rect=(0, 0.012 + len(lines) * step, 1, 0.95))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    fig.savefig(out_path, dpi=DPI)
    plt().close(fig)


def ms(us):
    return None if us is None else us / 1000.0


def maybe_log(ax, values, axis="y"):
    vals = [v for v in values if v]
    if vals and max(vals) / min(vals) > 12:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def conns_axis(ax, xs):
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([str(x) for x in xs])
    ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
    ax.minorticks_off()
    ax.set_xlabel("client connections")


def kfmt(ax):
    from matplotlib.ticker import FuncFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v / 1000:.0f}k" if v >= 1000 else f"{v:g}"))


def shape_label(name):
    """proxy_w1_pool2 / proxy_db_w2_pool2 -> 'proxy, 1 worker, pool 2'."""
    import re
    m = re.match(r"proxy(?:_db)?_w(\d+)_pool(\d+)$", name)
    if m:
        w = int(m.group(1))
        return f"proxy, {w} worker{'s' if w > 1 else ''}, pool {m.group(2)}"
    m = re.match(r"fastapi_(\d+)w(_reset)?$", name)
    if m:
        w = int(m.group(1))
        return (f"FastAPI, {w} worker{'s' if w > 1 else ''}"
                + (", asyncpg reset" if m.group(2) else ""))
    return {"pgbench": "pgbench", "proxy_cached": "proxy, cache on",
            "proxy": "proxy (cache hit)", "nginx": "nginx (static file)"}.get(name, name)


def section_result(data, name):
    """The "result" of a proxy_bench.py file; None (with the reason) when the run failed."""
    if not isinstance(data, dict) or "section" not in data:
        raise Malformed("not a proxy_bench.py result (no 'section')")
    if data.get("section") != name:
        raise Malformed(f"its section is {data.get('section')!r}, not {name!r}")
    r = data.get("result")
    if not r:
        return None, "; ".join(data.get("failures") or ["no result"])
    return r, None


# ------------------------------------------------------------------------------------------
# The charts
# ------------------------------------------------------------------------------------------

def chart_proxy_db(files, out):
    data = files["proxy_db.json"]
    r, why = section_result(data, "proxy_db")
    if r is None:
        return f"the proxy_db run failed: {why}"
    cells = sorted(r["cells"].values(), key=lambda c: (c["dist"], c["conns"]))
    dists = sorted({c["dist"] for c in cells})
    dist = "zipf" if "zipf" in dists else dists[0]
    cells = [c for c in cells if c["dist"] == dist]
    xs = [c["conns"] for c in cells]
    names = list(cells[0]["configs"])
    fig, (a1, a2) = figure(2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    proxies = [n for n in names if n != "pgbench"]
    for i, n in enumerate(["pgbench"] + proxies):
        rps = [c["configs"][n]["rps_median"] for c in cells]
        p99 = [ms(c["configs"][n].get("p99_us_median")) for c in cells]
        style = dict(color="black", linewidth=2.2, marker="s") if n == "pgbench" else \
            dict(color=colors[i % len(colors)], linewidth=1.2, marker="o")
        a1.plot(xs, rps, label=shape_label(n), **style)
        a2.plot(xs, p99, label=shape_label(n), **style)
    for c in cells:
        a1.text(c["conns"], 0.03, f"best proxy / pgbench\n{c['ratio']:.2f}x", ha="center",
                va="bottom", fontsize=7, fontweight="bold", transform=a1.get_xaxis_transform())
    for a in (a1, a2):
        conns_axis(a, xs)
    a1.set_ylabel("requests (transactions) per second, median")
    a1.set_ylim(bottom=0, top=max(c["configs"][n]["rps_median"] for c in cells
                                  for n in names) * 1.6)
    kfmt(a1)
    a1.set_title("throughput")
    a2.set_ylabel("p99 latency, ms (wrk; pgbench\x27s alike)")
    a2.set_title("p99 latency")
    maybe_log(a2, [ms(c["configs"][n].get("p99_us_median")) for c in cells for n in names])
    if a2.get_yscale() == "linear":
        a2.set_ylim(bottom=0)
    a1.legend(loc="upper center", ncol=2, fontsize=6.5)
    finish(fig, run_info(data, "proxy_db"), out,
           f"zonegate-proxy's database path (cache off) vs pgbench: the same statement, "
           f"{'Zipf' if dist == 'zipf' else dist} users")


def chart_fastapi(files, out):
    data = files["fastapi.json"]
    r, why = section_result(data, "fastapi")
    if r is None:
        return f"the fastapi run failed: {why}"
    main = r["conns"]
    bp, bf = r["best_proxy"], r["best_fastapi"]
    sweep = r.get("sweep") or {"conns": [], "configs": {}}

    def series(name):
        pts = {main: r["configs"][name]}
        for n in sweep["conns"]:
            s = sweep["configs"].get(name, {}).get(str(n))
            if s:
                pts[n] = s
        return sorted(pts.items())

    fig, (a1, a2) = figure(2)
    allx = sorted({main, *sweep["conns"]})
    for name, style in ((bp, dict(color="#1f77b4", marker="o", linewidth=2)),
                        (bf, dict(color="#d62728", marker="s", linewidth=2))):
        pts = series(name)
        a1.plot([x for x, _ in pts], [s["rps_median"] for _, s in pts],
                label=shape_label(name) + ", best", **style)
        a2.plot([x for x, _ in pts], [ms(s["p99_us_median"]) for _, s in pts],
                label=shape_label(name), **style)
    # The other shapes, measured at the main concurrency only.
    others = [n for n in r["configs"] if n not in (bp, bf)]
    markers = {"proxy_cached": ("#2ca02c", "*", 11)}
    for n in others:
        color, marker, size = markers.get(n, ("#888888", "x" if n.startswith("fastapi")
                                              else "+", 7))
        s = r["configs"][n]
        a1.plot([main], [s["rps_median"]], linestyle="none", color=color, marker=marker,
                markersize=size, label=shape_label(n).replace("asyncpg reset", "reset"))
        a2.plot([main], [ms(s["p99_us_median"])], linestyle="none", color=color, marker=marker,
                markersize=size)
    ratios = {main: r["ratio"], **{int(k): v for k, v in sweep.get("ratios", {}).items()}}
    for x, v in sorted(ratios.items()):
        top = max(s["rps_median"] for n, s in series(bp) if n == x)
        a1.annotate(f"{v:.1f}x", (x, top), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8, fontweight="bold", color="#1f77b4")
    for a in (a1, a2):
        conns_axis(a, allx)
    a1.set_ylim(bottom=0, top=max([s["rps_median"] for s in r["configs"].values()]
                                  + [s["rps_median"] for by in sweep["configs"].values()
                                     for s in by.values()]) * 1.7)
    kfmt(a1)
    a1.set_ylabel("requests per second, median")
    a1.set_title(f"throughput (labels: proxy / FastAPI; other shapes at {main} only)")
    a2.set_yscale("log")
    a2.set_ylabel("p99 latency, ms (wrk)")
    a2.set_title("p99 latency")
    a1.legend(loc="upper left", fontsize=6.5, ncol=2)
    a2.legend(loc="upper left", fontsize=6.5)
    u = r.get("uvicorn") or {}
    finish(fig, run_info(data, "fastapi"), out,
           "zonegate-proxy (cache off) vs FastAPI + asyncpg (uvicorn, "
           f"{u.get('loop', '?')}, {u.get('http', '?')}): GET /v1/users/{{id}}/context, Zipf users")


def chart_cache_hit(files, out):
    data = files["cache_hit.json"]
    r, why = section_result(data, "cache_hit")
    if r is None:
        return f"the cache_hit run failed: {why}"
    by_workers = {}
    for c in r["cells"].values():
        by_workers.setdefault(c["workers"], []).append(c)
    fig, (a1, a2) = figure(2)
    xs = sorted({c["conns"] for c in r["cells"].values()})
    dashes = ["-", "--", ":"]
    for i, (w, cells) in enumerate(sorted(by_workers.items())):
        cells.sort(key=lambda c: c["conns"])
        cx = [c["conns"] for c in cells]
        for name, color, marker in (("proxy", "#1f77b4", "o"), ("nginx", "#2ca02c", "s")):
            label = f"{shape_label(name)}, {w} worker{'s' if w > 1 else ''}"
            style = dict(color=color, marker=marker, linestyle=dashes[i % len(dashes)],
                         markerfacecolor=color if i == 0 else "white", markersize=7)
            a1.plot(cx, [c["configs"][name]["rps_median"] for c in cells], label=label, **style)
            a2.plot(cx, [ms(c["configs"][name]["p99_us_median"]) for c in cells], label=label,
                    **style)
        for c in cells:
            a1.annotate(f"{w}w: {c['ratio']:.2f}x", (c["conns"],
                        c["configs"]["proxy"]["rps_median"]), textcoords="offset points",
                        xytext=(22 if i == 0 else -22, 8), ha="center", fontsize=7,
                        fontweight="bold", color="#1f77b4")
    for a in (a1, a2):
        conns_axis(a, xs)
        a.set_xlabel("client connections (" + ", ".join(sorted(
            {f"wrk -t{c['threads']} -c{c['conns']}" for c in r["cells"].values()},
            key=lambda t: int(t.rsplit("c", 1)[1]))) + ")")
    a1.set_ylim(bottom=0, top=max(c["configs"][n]["rps_median"] for c in r["cells"].values()
                                  for n in ("proxy", "nginx")) * 1.25)
    kfmt(a1)
    a1.set_ylabel("requests per second, median")
    a1.set_title("throughput (labels: proxy / nginx)")
    a2.set_ylabel("p99 latency, ms (wrk)")
    a2.set_title("p99 latency")
    a2.set_ylim(bottom=0)
    a1.legend(loc="lower right")
    finish(fig, run_info(data, "cache_hit"), out,
           f"cache hit vs nginx serving the same {r.get('body_bytes', '?')} bytes "
           "from a file: one hot key")


def chart_extension(files, out):
    data = files["extension.json"]
    if not isinstance(data, dict) or "meta" not in data:
        raise Malformed("not an extension_bench.py result (no 'meta')")
    pg, rls = data.get("pgbench"), data.get("rls")
    if not pg and not rls:
        return "extension.json has neither pgbench nor rls results (" + "; ".join(
            data.get("failures") or ["not run"]) + ")"
    fig, axes = figure(2 if pg and rls else 1, width=10.0 if pg and rls else 6.5)
    if pg:
        ax = axes[0]
        c = {k: v["tps_median"] for k, v in pg["configs"].items()}
        groups = [("Zipf by user number\n(36% admins)", "b_context_zipf", "d_naive_zipf"),
                  ("Zipf, ranks permuted\n(mostly field staff)", "b2_context_zipf_perm",
                   "d2_naive_zipf_perm"),
                  ("uniform users\n(mostly cache misses)", "c_context_uniform", "d_naive_uniform")]
        groups = [g for g in groups if g[1] in c and g[2] in c]
        xs = range(len(groups))
        w = 0.38
        zg = [c[g[1]] for g in groups]
        nv = [c[g[2]] for g in groups]
        ax.bar([x - w / 2 for x in xs], zg, w, color="#1f77b4",
               label="zonegate.user_context($1)")
        ax.bar([x + w / 2 for x in xs], nv, w, color="#d62728",
               label="naive SQL: 5 prepared queries")
        if "a_select1" in c:
            ax.axhline(c["a_select1"], color="black", linestyle="--", linewidth=1.2,
                       label=f"SELECT 1 ({c['a_select1']:,.0f} tps)")
        for x, a, b in zip(xs, zg, nv):
            ax.annotate(f"{a:,.0f}\n\n{a / b:,.1f}x\nnaive" + (
                f"\n\n{a / c['a_select1']:.2f}\nof\nSELECT 1" if "a_select1" in c else ""),
                (x - w / 2, a), textcoords="offset points", xytext=(0, -4), ha="center",
                va="top", fontsize=7, fontweight="bold", color="white")
            ax.annotate(f"{b:,.0f}", (x + w / 2, b), textcoords="offset points", xytext=(0, 2),
                        ha="center", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(bottom=min(nv) / 3, top=max(zg + [c.get("a_select1", 0)]) * 30)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([g[0] for g in groups])
        cfg = data["meta"].get("config", {})
        ax.set_ylabel("transactions per second, median (log)")
        ax.set_title(f"user_context vs naive SQL and SELECT 1 (pgbench -M prepared "
                     f"-c {cfg.get('clients', '?')} -T {cfg.get('pgbench_seconds', '?')})")
        ax.legend(loc="upper center", fontsize=6.5, ncol=2)
    if rls:
        ax = axes[-1]
        scopes = sorted(rls["scopes"].values(), key=lambda s: s["visible_zones"])
        zx = [s["visible_zones"] for s in scopes]
        for key, label, color, marker in (
                ("a_literal", "(a) no RLS, literal = ANY('{...}')", "black", "s"),
                ("b_zonegate", "(b) zonegate policy", "#1f77b4", "o"),
                ("c_supabase", "(c) Supabase's policy", "#ff7f0e", "^")):
            ax.plot(zx, [s["ways"][key]["median_ms"] for s in scopes], color=color,
                    marker=marker, label=label, linewidth=2 if key == "b_zonegate" else 1.2)
        naive = rls.get("naive") or {}
        nx, ny, timed_out = [], [], []
        for name, s in sorted(rls["scopes"].items(), key=lambda kv: kv[1]["visible_zones"]):
            d = naive.get(name)
            if d is None:
                continue
            if d.get("ms") is None:
                timed_out.append((s["visible_zones"], d["timeout_s"] * 1000))
            else:
                nx.append(s["visible_zones"])
                ny.append(d["ms"])
        if nx:
            ax.plot(nx, ny, color="#d62728", marker="v", label="(d) naive per-row policy")
        for x, y in timed_out:
            ax.plot([x], [y], color="#d62728", marker="^", linestyle="none")
            ax.annotate("timed out", (x, y), textcoords="offset points", xytext=(0, 5),
                        ha="center", fontsize=7, color="#d62728")
        for s in scopes:
            ax.annotate(f"b/a {s['b_over_a']:.2f}\nc/b {s['c_over_b']:.1f}",
                        (s["visible_zones"], s["ways"]["b_zonegate"]["median_ms"]),
                        textcoords="offset points", xytext=(0, -26), ha="center", fontsize=6.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo = min(s["ways"][k]["median_ms"] for s in scopes for k in ("a_literal", "b_zonegate"))
        ax.set_ylim(bottom=lo / 12)
        ax.set_xlim(min(zx) / 2.5, max(zx) * 2.5)
        ax.set_xticks(zx)
        ax.set_xticklabels([f"{z:,}" for z in zx])
        ax.minorticks_off()
        ax.set_xlabel("zones the user sees")
        ax.set_ylabel("count(*) time, median ms (log)")
        ax.set_title(f"RLS: count(*) over {rls['rows']:,} rows")
        ax.legend(loc="center left", fontsize=6.5)
    finish(fig, run_info(data, "extension"), out,
           "zonegate extension vs naive SQL, SELECT 1 and other RLS policies")


def gbench_rate(doc, run_name):
    """items_per_second of a Google Benchmark run: the median aggregate when there is one."""
    single = None
    for b in doc.get("benchmarks", []):
        name = b.get("run_name", b.get("name"))
        if name != run_name:
            continue
        if b.get("aggregate_name") == "median":
            return b.get("items_per_second")
        if b.get("run_type", "iteration") == "iteration" and single is None:
            single = b.get("items_per_second")
    return single


def chart_geo(files, out):
    sql, core = files.get("geo_sql.json"), files.get("geo_core.json")
    if sql is not None and "points_per_second" not in sql:
        raise Malformed("geo_sql.json has no points_per_second")
    if core is not None and "benchmarks" not in core:
        raise Malformed("geo_core.json has no benchmarks")
    sets = []
    if core is not None:
        for label, z, g in (("world: uniform\nlon/lat", "zone_at/zonegate/world",
                             "zone_at/geos/world"),
                            ("boxes: in a country's\nbounding box", "zone_at/zonegate/boxes",
                             "zone_at/geos/boxes"),
                            ("largest polygon\n(covers test)", "covers/zonegate/largest",
                             "covers/geos/largest")):
            a, b = gbench_rate(core, z), gbench_rate(core, g)
            if a and b:
                sets.append((label, a, b))
    panels = (1 if sql is not None else 0) + (1 if sets else 0)
    if not panels:
        return "no geo results with lookups per second"
    fig, axes = figure(panels, width=10.0 if panels == 2 else 6.0)
    if sql is not None:
        ax = axes[0]
        pps = sql["points_per_second"]
        bars = [("zone_at(lon, lat)\nper row", "zonegate", "#1f77b4"),
                ("zone_at(lon[], lat[])\nbatch", "zonegate_batch", "#6baed6"),
                ("PostGIS ST_Covers\n+ GiST, per row", "postgis", "#d62728")]
        bars = [b for b in bars if b[1] in pps]
        ax.bar(range(len(bars)), [pps[k] for _, k, _ in bars], color=[c for *_, c in bars])
        for i, (_, k, _) in enumerate(bars):
            txt = f"{pps[k]:,.0f}/s"
            if k != "postgis" and "postgis" in pps:
                txt += f"\n{pps[k] / pps['postgis']:,.0f}x PostGIS"
            ax.annotate(txt, (i, pps[k]), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=7, fontweight="bold")
        ax.set_yscale("log")
        ax.set_ylim(top=max(pps.values()) * 12)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars])
        ax.set_ylabel("points per second, median (log)")
        ax.set_title(f"SQL: {sql['points']:,} random points, {sql['countries']} countries")
    if sets:
        ax = axes[-1]
        w = 0.38
        xs = range(len(sets))
        ax.bar([x - w / 2 for x in xs], [s[1] / 1e6 for s in sets], w, color="#1f77b4",
               label="zonegate SpatialIndex (C++)")
        ax.bar([x + w / 2 for x in xs], [s[2] / 1e6 for s in sets], w, color="#ff7f0e",
               label="GEOS prepared geometries + STRtree")
        for x, (_, a, b) in zip(xs, sets):
            ax.annotate(f"{a / b:.1f}x", (x - w / 2, a / 1e6), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8, fontweight="bold")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([s[0] for s in sets])
        ax.set_ylabel("million lookups per second, median")
        ax.set_ylim(top=max(s[1] for s in sets) / 1e6 * 1.2)
        ax.set_title("core: the same polygons and points, one thread")
        ax.legend(loc="upper left", fontsize=6.5)
    info = run_info(sql if sql is not None else core, "geo")
    if sql is not None and not isinstance(sql.get("run"), dict) and core is not None:
        info = run_info(core, "geo")
    finish(fig, info, out, "point in zone: zone_at vs PostGIS (SQL) and vs GEOS (C++)")


def chart_rate_limit(files, out):
    data = files["rate_limit.json"]
    acc, hit = data.get("accuracy"), data.get("hit_overhead")
    if not acc and not hit:
        raise Malformed("rate_limit.json has neither accuracy nor hit_overhead")
    fig, axes = figure((1 if acc else 0) + (1 if hit else 0), width=9.0)
    if acc:
        ax = axes[0]
        runs = acc["runs"]
        xs = range(len(runs))
        w = 0.38
        ax.bar([x - w / 2 for x in xs], [r["expected"] for r in runs], w, color="#bbbbbb",
               label="budget: burst + rate x elapsed")
        ax.bar([x + w / 2 for x in xs], [r["accepted"] for r in runs], w, color="#1f77b4",
               label="accepted (200)")
        for x, r in zip(xs, runs):
            ax.annotate(f"{r['error_pct']:+.2f}%\n({r['refused_429']:,} refused)",
                        (x + w / 2, r["accepted"]), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=7, fontweight="bold")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{r['factor']}x the rate\n({r['offered_rps']:,.0f} req/s offered)"
                            for r in runs])
        ax.set_ylim(top=max(r["expected"] for r in runs) * 1.3)
        ax.set_ylabel("requests")
        ax.set_title(f"accuracy: {acc['rate_per_s']}/s burst {acc['burst']}, one subject, "
                     f"{acc['seconds']} s")
        ax.legend(loc="lower right", fontsize=6.5)
    if hit:
        hit_rounds(axes[-1], hit, "limiter", f"cost on the cache-hit path (wrk {hit['wrk']})")
    finish(fig, run_info(data, "rate_limit"), out, "rate limiter: accuracy and cost")


def hit_rounds(ax, hit, what, title):
    """Each round's req/s of on and off, and their medians."""
    for i, (k, color) in enumerate((("off", "#888888"), ("on", "#1f77b4"))):
        rs = hit["rounds"][k]
        ax.plot([i] * len(rs), rs, "o", color=color, alpha=0.6, markersize=5)
        med = hit["median_" + k]
        ax.hlines(med, i - 0.25, i + 0.25, color=color, linewidth=2.5)
        ax.annotate(f"median {med:,.0f}", (i + 0.27, med), fontsize=7, va="center")
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"{what} off", f"{what} on"])
    ax.set_xlim(-0.6, 1.9)
    ax.set_ylim(bottom=0, top=max(hit["rounds"]["off"] + hit["rounds"]["on"]) * 1.2)
    kfmt(ax)
    ax.set_ylabel("requests per second (dots: rounds)")
    ax.set_title(f"{title}: on / off {hit['ratio_on_off']:.3f}")


def chart_hit_overhead(files, out):
    data = files["hit_overhead.json"]
    for k in ("rounds", "median_on", "median_off", "ratio_on_off"):
        if k not in data:
            raise Malformed(f"hit_overhead.json has no {k}")
    fig, (ax,) = figure(1, width=6.0, height=3.6)
    hit_rounds(ax, data, "resilience stages", "one hot key, wrk -t1 -c64")
    finish(fig, run_info(data, "hit_overhead"), out,
           "cache-hit path: resilience stages on vs off")


# name -> (files read (the first is required), draw function, what it shows)
CHARTS = {
    "proxy_db": (["proxy_db.json"], chart_proxy_db,
                 "proxy database path vs pgbench: throughput and p99 against connections"),
    "fastapi": (["fastapi.json"], chart_fastapi,
                "proxy (cache off) vs FastAPI + asyncpg: throughput and p99 against connections"),
    "cache_hit": (["cache_hit.json"], chart_cache_hit,
                  "cache hit vs nginx: throughput and p99 against connections, 1 and 2 workers"),
    "extension": (["extension.json"], chart_extension,
                  "user_context vs naive SQL and SELECT 1; RLS policies against scope size"),
    "geo": (["geo_sql.json", "geo_core.json"], chart_geo,
            "zone_at vs PostGIS in SQL; SpatialIndex vs GEOS"),
    "rate_limit": (["rate_limit.json"], chart_rate_limit,
                   "rate limiter accuracy; limiter on vs off on the cache-hit path"),
    "hit_overhead": (["hit_overhead.json"], chart_hit_overhead,
                     "resilience stages on vs off on the cache-hit path"),
}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise Malformed(f"not valid JSON: {e}") from None


def draw(art, names, out_dir):
    img = os.path.join(ROOT, "docs", "img")
    errors, drawn, skipped = [], [], []
    for name in names:
        wanted, fn, _ = CHARTS[name]
        present = [f for f in wanted if os.path.exists(os.path.join(art, f))]
        if not present or (name != "geo" and wanted[0] not in present):
            skipped.append(name)
            print(f"charts: {name}: skipped, no {' or '.join(wanted)} in {rel(art)}")
            continue
        files = {}
        try:
            for f in present:
                files[f] = load(os.path.join(art, f))
                if not isinstance(files[f], dict):
                    raise Malformed(f"{f} is not a JSON object")
                files[f]["_file_mtime"] = os.path.getmtime(os.path.join(art, f))
            quick = any(run_info(d, name).get("quick") for d in files.values())
            target = out_dir or (os.path.join(art, "charts") if quick else img)
            path = os.path.join(target, name + ".png")
            why = fn(files, path)
        except Malformed as e:
            errors.append(f"{name}: {', '.join(present)}: {e}")
            continue
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
            errors.append(f"{name}: {', '.join(present)} lacks what the chart reads "
                          f"({type(e).__name__}: {e})")
            continue
        if why:
            skipped.append(name)
            print(f"charts: {name}: skipped, {why}")
            continue
        drawn.append(name)
        print(f"charts: {name}: {rel(path)} ({os.path.getsize(path) / 1024:.0f} KiB"
              f"{', quick-mode results' if quick else ''})")
    for e in errors:
        print(f"charts: ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("charts", nargs="*", help="charts to draw (default: all)")
    ap.add_argument("--out", help="directory for every chart (default: docs/img, or "
                                  "RESULTS/charts for quick-mode results)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--record", metavar="SECTION")
    ap.add_argument("--command")
    ap.add_argument("--started", type=float)
    ap.add_argument("--quick", default="0")
    a = ap.parse_args()
    art = results_dir()
    if a.list:
        for n, (files, _, what) in CHARTS.items():
            print(f"{n:<13} {', '.join(files):<28} {what}")
        return 0
    if a.record:
        if a.command is None or a.started is None:
            ap.error("--record needs --command and --started")
        n = record(art, a.record, a.command, a.started, a.quick)
        if n:
            print(f"charts: recorded the run in {n} {a.record} result file(s)")
        return 0
    for n in a.charts:
        if n not in CHARTS:
            ap.error(f"unknown chart {n} (charts: {', '.join(CHARTS)})")
    try:
        plt()
    except ImportError as e:
        print(f"charts: matplotlib is missing ({e}); run 'make deps-bench'", file=sys.stderr)
        return 2
    return draw(art, a.charts or list(CHARTS), a.out and os.path.abspath(a.out))


if __name__ == "__main__":
    sys.exit(main())
