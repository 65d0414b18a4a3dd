#!/usr/bin/python3
"""Instructions a cache hit costs zonegate-proxy with metrics and the access log on and off.

    tests/bench/overhead_instructions.py PROXY [PROXY...] [--seconds N]

For each binary, two proxies in turn (1 worker, pool 1, the response cache on, log level info;
one with metrics and the access log to a file, one with both off) run under valgrind's callgrind
with instrumentation off until the hot key (user 1, as the overhead section) is cached, then
`wrk -t1 -c1` sends it for N seconds (default 6) with every thread counted: one connection, so
every request takes the same path through the loop (with more, how many requests share a loop
turn varies from run to run, and so does the count). Prints the user-space
instructions per request of the event loop and of the log writer, and what "on" adds to "off".
Measured again, the same binary's per-thread figures agree within about 0.5% (timers and idle
loop turns), so what "on" adds, a difference of two of them, moves by about 60 instructions:
give each binary two or three passes. The timed shared-core measure of docs/BENCHMARKS.md,
section 9, moves by a point or two of a hit's cost (200-250 instructions) between runs. The kernel's part (sockets, the log file's
write(2)) is not counted: callgrind sees user space only.

Needs what proxy_bench.py needs (the bench database, PG* variables), valgrind and wrk.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_bench as pb  # noqa: E402


def callgrind_totals(path):
    """(total instructions, function names) of one callgrind output file."""
    total, names = 0, set()
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif line.startswith(("fn=", "cfn=")):  # a name is spelled out where first seen
                names.add(line)
    return total, names


def measure(binary, on, seconds, work):
    """Instructions per request of the loop and the log writer, for one proxy."""
    name = "on" if on else "off"
    d = os.path.join(work, f"{os.path.basename(binary)}-{name}")
    os.makedirs(d)
    port = pb.free_port()
    cfg = pb.proxy_config(port, workers=1, pool=1, cache=True, metrics=on, access_log=on,
                          level="info", log_file=os.path.join(d, "proxy.log"), slow_query="0ms")
    conf = os.path.join(d, "zonegate.yaml")
    with open(conf, "w") as f:
        yaml.safe_dump(cfg, f)
    tok = subprocess.run([binary, "token", "--config", conf, "--sub", "svc", "--role", "service",
                          "--ttl", "86400"], capture_output=True, text=True, check=True,
                         timeout=30).stdout.strip()
    out = os.path.join(d, "cg.out")
    vg = pb.start_process(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                           "--instr-atstart=no", f"--callgrind-out-file={out}", binary,
                           "--config", conf], os.path.join(d, "valgrind.log"))
    try:
        deadline = time.time() + 120
        while True:
            try:
                if pb.http_get(port, "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if vg.poll() is not None or time.time() > deadline:
                raise pb.Failure(f"proxy under valgrind did not start: see {d}/valgrind.log")
            time.sleep(0.5)
        _, path = pb.hot_key(None)
        auth = {"Authorization": "Bearer " + tok}
        for _ in range(3):
            st, hd, _ = pb.http_get(port, path, auth, timeout=30)
        if st != 200 or hd.get("x-cache") != "HIT":
            raise pb.Failure(f"no cache hit ({st}, {hd.get('x-cache')})")
        subprocess.run(["callgrind_control", "-i", "on", str(vg.pid)], check=True,
                       capture_output=True, timeout=60)
        cmd = pb.wrk_cmd(port, 1, 1, seconds, "static.lua", path=path, token=tok)
        w = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        res = pb.wrk_summary(cmd, w.returncode, w.stdout)
        if any(res["errors"].values()):
            raise pb.Failure(f"wrk errors {res['errors']}")
        time.sleep(0.6)  # past log.access_log_flush: the writer has formatted every line
        subprocess.run(["callgrind_control", "-d", str(vg.pid)], check=True,
                       capture_output=True, timeout=60)
    finally:
        pb.stop_process(vg, timeout=60)
    requests = res["requests"]
    loop = writer = 0
    for f in glob.glob(out + ".1-*"):  # the first dump, one file per thread
        total, names = callgrind_totals(f)
        if any("on_read" in n for n in names):
            loop += total
        elif any("render_batch" in n for n in names):
            writer += total
    if loop == 0:
        raise pb.Failure(f"no event-loop thread in {out}.1-*")
    shutil.rmtree(d, ignore_errors=True)
    return {"requests": requests, "loop": loop / requests, "writer": writer / requests}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("proxies", nargs="+", help="zonegate-proxy binaries")
    ap.add_argument("--seconds", type=int, default=6)
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"overhead_instructions: {tool} is not installed (make deps-bench)")
    work = tempfile.mkdtemp(prefix="zonegate-overhead-instr.")
    try:
        print(f"{'binary':<28} {'off loop':>9} {'on loop':>9} {'on writer':>9} "
              f"{'added':>7} {'added/off':>9}")
        for b in args.proxies:
            b = os.path.abspath(b)
            off = measure(b, False, args.seconds, work)
            on = measure(b, True, args.seconds, work)
            added = on["loop"] - off["loop"] + on["writer"]
            print(f"{os.path.basename(b):<28} {off['loop']:>9,.0f} {on['loop']:>9,.0f} "
                  f"{on['writer']:>9,.0f} {added:>7,.0f} {added / off['loop'] * 100:>8.1f}%  "
                  f"(loop +{on['loop'] - off['loop']:,.0f}; {off['requests']:,} / "
                  f"{on['requests']:,} requests)", flush=True)
    except pb.Failure as e:
        sys.exit(f"overhead_instructions: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
