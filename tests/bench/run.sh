#!/usr/bin/env bash
# Benchmarks side by side with their peers: the entry point of `make bench` (which runs deps-bench,
# build and install first). Not part of CI. Timings are reported, never asserted: the exit status
# is non-zero only when a benchmark could not run or produced wrong results.
#
#   tests/bench/run.sh [--quick] [--only SECTION[,SECTION...]] [--list] [--charts-only]
#
#   --quick   short durations and a 200,000-row RLS table: a smoke run (minutes, not a quarter hour)
#   --only    run only these sections, in the order of SECTIONS below
#   --charts-only  run no section: redraw the charts from the results there are (charts.py)
#
# Sections (a function section_NAME each; see docs/BENCHMARKS.md for what they measure):
#   core       Google Benchmark micro-benchmarks of the pure core (build-bench/core_bench)
#   extension  tests/bench/extension_bench.py: user_context throughput with pgbench, RLS on a large
#              table, cache rebuild and memory; needs the cluster
#   geo        point-in-zone: build-bench/tests/bench/geo_bench (the C++ index against GEOS
#              prepared geometries) and tests/bench/geo_sql_bench.py (zone_at against PostGIS
#              ST_Covers + GiST in SQL), both on Natural Earth's 50m countries (npm world-atlas,
#              converted by tests/bench/geo/to_geojson.mjs into $ART); needs the cluster
#   proxy_db   tests/bench/proxy_bench.py: zonegate-proxy's database path (cache off) against
#              pgbench running the same statement, same connections and user distribution
#   fastapi    the same route against a FastAPI + asyncpg app (tests/bench/peers/fastapi_app.py)
#              (the best shape of each also at 8 and 128 connections, for docs/img/fastapi.png)
#   cache_hit  one hot key from the proxy's cache against nginx serving the same bytes
#   mix        100,000 users, Zipf reads with per-user tokens, one grant change per second: hit
#              rate, invalidation lag, RSS
#   overhead   the cache-hit path with metrics and the access log on against both off
#   chaos      tests/bench/resilience_bench.py: Postgres stopped 5 s, every pool backend terminated,
#              a fast restart, all under a steady load of cached and uncached requests; draws
#              docs/img/chaos_timeline.png
#   overload   the uncached route at 1x, 2x, 3x its saturating concurrency: goodput, p99, shed;
#              draws docs/img/overload.png
#   hit_overhead  the cache-hit path with the resilience stages on against off
#   slow_clients tests/bench/slow_clients_bench.py: normal clients' p99 on a cached route, quiet
#              against 1,000 slowloris connections, 1,000 that never read, and both
#   rate_limit tests/bench/rate_limit_bench.py: the limiter's accuracy at 2x and 10x a policy's
#              rate, its cost on the cache-hit path (on against off), and KeyTable's memory and
#              admit time at 1,000,000 keys (build-bench/tests/bench/rate_limit_keys)
#   replicas   tests/bench/replicas_bench.py: uncached read throughput with 0, 1 and 2 streaming
#              replicas (one machine: the routing's cost), and a replica stopped under load
#   postgrest  tests/bench/postgrest_anchor_bench.py: PostgREST's GETSingle and POSTSingle shapes
#              through /rpc, against PostgREST's published figures (its binary is not here)
# The proxy sections build build-bench/proxy/zonegate-proxy (Release) and need wrk, nginx (run as
# root), pgbench and Debian's uvicorn/FastAPI/asyncpg (make deps-bench); they use the cluster.
#
# Sections that need PostgreSQL call need_cluster: ONE throwaway cluster (tests/lib/pgcluster.sh)
# is started on first use, with zonegate, the Indonesian tree (sql/demo/load_idn.sh) and 100,000
# generated users (sql/demo/generate_users.sql, seed 42, ids=number: user k's id is "k", so pgbench
# binds it as a parameter). PGHOST/PGPORT/PGUSER/PGDATABASE are exported for the sections. The cluster and every temp dir are removed on exit, also on failure
# and Ctrl-C. Results: tests/.artifacts/bench/NAME.json and NAME.txt (the section's summary), or
# $ZONEGATE_BENCH_RESULTS/ when set.
#
# Charts: after each section, `charts.py --record` stamps its JSON with how it was made (command,
# date, commit, machine); at the end tests/bench/charts.py draws every side-by-side comparison
# there are results for into docs/img/ (quick-mode results into $ART/charts/ instead, so a smoke
# run leaves the docs' charts alone). A missing section is skipped, a malformed result fails.
#
# Adding a section: write section_NAME (call need_cluster if it needs Postgres, run long commands
# through `bounded SECONDS CMD...`, write $ART/NAME.txt), then add NAME to SECTIONS.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SECTIONS=(core extension geo proxy_db fastapi cache_hit mix overhead chaos overload hit_overhead rate_limit
          slow_clients replicas postgrest)
PYTHON=/usr/bin/python3
# Results (git-ignored). Note: tests/run.sh (make test) empties tests/.artifacts when it starts.
ART=${ZONEGATE_BENCH_RESULTS:-$ROOT/tests/.artifacts/bench}
QUICK=0
ONLY=""
CHARTS_ONLY=0
# The command as typed, for the charts' captions (make exports MAKELEVEL to `make bench`'s recipe).
if [ $# -eq 0 ] && [ -n "${MAKELEVEL:-}" ]; then
  COMMAND="make bench"
else
  COMMAND="tests/bench/run.sh${*:+ $*}"
fi

usage() { sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --list) printf '%s\n' "${SECTIONS[@]}"; exit 0 ;;
    --charts-only) CHARTS_ONLY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

RUN=()
if [ -n "$ONLY" ]; then
  IFS=, read -r -a wanted <<<"$ONLY"
  for w in "${wanted[@]}"; do
    if ! printf '%s\n' "${SECTIONS[@]}" | grep -qx -- "$w"; then
      echo "bench: unknown section '$w' (sections: ${SECTIONS[*]})" >&2
      exit 2
    fi
  done
  for s in "${SECTIONS[@]}"; do
    for w in "${wanted[@]}"; do [ "$s" = "$w" ] && RUN+=("$s"); done
  done
else
  RUN=("${SECTIONS[@]}")
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- process and cleanup handling -------------------------------------------------------------

WORK=""
CLUSTER_DIR=""
CHILD=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    # bounded: `timeout` below kills its command 30 s after a TERM at the latest
    wait "$CHILD" 2>/dev/null || true
  fi
  if [ -n "$CLUSTER_DIR" ]; then
    log "removing the cluster"
    "$ROOT/tests/lib/pgcluster.sh" destroy "$CLUSTER_DIR" || true
  fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  restore_autogroup
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bounded SECONDS CMD...: runs CMD with a time limit (TERM, then KILL 30 s later). It runs as a
# background job waited for, so that Ctrl-C and TERM reach this script's traps at once.
bounded() {
  local limit=$1
  shift
  timeout --kill-after=30 "$limit" "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  if [ "$rc" -eq 124 ]; then echo "bench: timed out after ${limit}s: $*" >&2; fi
  return "$rc"
}

# --- the host's scheduler ---------------------------------------------------------------------

# Linux autogroup (kernel.sched_autogroup_enabled=1, Debian's default) gives every session its own
# scheduling group, and every PostgreSQL backend calls setsid(): each backend becomes a group of
# its own. On this 2-vCPU VM (kernel 6.18, EEVDF) that starved runnable backends for 0.1-4.5 s
# at a time (state R, CPU time unchanged, while other processes ran): the "two-worker stall" of
# docs/TROUBLESHOOTING.md. 10 of 10 runs were clean with it off against 8 of 10 stalled with it
# on, so the benches turn it off while they run (as root) and put it back afterwards; every
# result records the setting. ZONEGATE_BENCH_AUTOGROUP=keep leaves the host as it is.
AUTOGROUP_FILE=/proc/sys/kernel/sched_autogroup_enabled
AUTOGROUP_SAVED=""

tune_autogroup() {
  [ -r "$AUTOGROUP_FILE" ] || return 0
  local now
  now=$(cat "$AUTOGROUP_FILE")
  if [ "${ZONEGATE_BENCH_AUTOGROUP:-off}" = keep ] || [ "$now" = 0 ]; then
    log "kernel.sched_autogroup_enabled=$now (left as it is)"
    return 0
  fi
  if echo 0 2>/dev/null >"$AUTOGROUP_FILE"; then
    AUTOGROUP_SAVED=$now
    log "kernel.sched_autogroup_enabled: $now -> 0 while the benches run (see docs/TROUBLESHOOTING.md)"
  else
    log "warning: kernel.sched_autogroup_enabled=$now and not writable here: Postgres backends" \
      "may stall for seconds (docs/TROUBLESHOOTING.md)"
  fi
}

restore_autogroup() {
  if [ -n "$AUTOGROUP_SAVED" ]; then
    echo "$AUTOGROUP_SAVED" >"$AUTOGROUP_FILE" 2>/dev/null || true
    AUTOGROUP_SAVED=""
  fi
}

# --- the cluster --------------------------------------------------------------------------------

need_cluster() {
  [ -z "$CLUSTER_DIR" ] || return 0
  if [ ! -r "$ROOT/node_modules/idn-area-data/data/villages.csv" ]; then
    echo "bench: node_modules/idn-area-data is missing; run 'make deps'" >&2
    return 1
  fi
  WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zonegate-bench.XXXXXX")}
  chmod 711 "$WORK"  # the server runs as postgres and must reach its directory below
  CLUSTER_DIR="$WORK/pg"
  log "starting a throwaway cluster in $CLUSTER_DIR"
  "$ROOT/tests/lib/pgcluster.sh" start "$CLUSTER_DIR" >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/env"
  set +a
  local try
  for try in 1 2 3 4 5 6; do
    # Someone may be reinstalling the extension (make install) right now: wait and retry.
    if psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS zonegate' \
      2>"$WORK/ext.err"; then
      break
    fi
    if [ "$try" -eq 6 ]; then cat "$WORK/ext.err" >&2; return 1; fi
    log "CREATE EXTENSION zonegate failed ($(head -n 1 "$WORK/ext.err")); retrying in 60 s"
    sleep 60
  done
  log "loading the Indonesian tree and 100,000 users (seed 42, numeric ids)"
  bounded 600 "$ROOT/sql/demo/load_idn.sh"
  bounded 900 psql -X -q -v ON_ERROR_STOP=1 -v users=100000 -v seed=42 -v ids=number \
    -f "$ROOT/sql/demo/generate_users.sql"
  psql -X -q -c 'VACUUM (ANALYZE) zonegate.zones, zonegate.users, zonegate.roles,
    zonegate.user_zones'
}

# --- sections -----------------------------------------------------------------------------------

section_core() {
  log "core: building build-bench/tests/bench/core_bench (Release)"
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DZONEGATE_BENCH=ON -DZONEGATE_TESTS=OFF \
    >"$ART/core-cmake.log"
  cmake --build build-bench --target core_bench -j "$(nproc)" >>"$ART/core-cmake.log"
  local args=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
  if [ "$QUICK" -eq 1 ]; then args=(--benchmark_min_time=0.05); fi
  log "core: running core_bench ${args[*]}"
  bounded 900 build-bench/tests/bench/core_bench "${args[@]}" \
    --benchmark_out="$ART/core.json" --benchmark_out_format=json >"$ART/core.txt"
  cat "$ART/core.txt"
}

section_extension() {
  need_cluster
  local args=()
  local limit=3600
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); limit=900; fi
  log "extension: tests/bench/extension_bench.py ${args[*]}"
  bounded "$limit" "$PYTHON" "$ROOT/tests/bench/extension_bench.py" "$ART/extension.json" \
    "${args[@]}"
}

section_geo() {
  need_cluster
  local geojson="$ART/countries-50m.geojson"
  log "geo: converting world-atlas countries-50m to $geojson"
  node "$ROOT/tests/bench/geo/to_geojson.mjs" "$geojson" countries-50m.json
  log "geo: building build-bench/tests/bench/geo_bench (Release)"
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DZONEGATE_BENCH=ON -DZONEGATE_TESTS=OFF \
    >"$ART/geo-cmake.log"
  cmake --build build-bench --target geo_bench -j "$(nproc)" >>"$ART/geo-cmake.log"
  local args=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
  local points=100000 repeat=5
  if [ "$QUICK" -eq 1 ]; then args=(--benchmark_min_time=0.05); points=20000; repeat=2; fi
  log "geo: running geo_bench ${args[*]}"
  ZONEGATE_GEO_DATA="$geojson" bounded 900 build-bench/tests/bench/geo_bench "${args[@]}" \
    --benchmark_out="$ART/geo_core.json" --benchmark_out_format=json >"$ART/geo.txt"
  log "geo: tests/bench/geo_sql_bench.py --points $points --repeat $repeat"
  bounded 1200 "$PYTHON" "$ROOT/tests/bench/geo_sql_bench.py" "$geojson" "$ART/geo_sql.json" \
    --points "$points" --repeat "$repeat" >>"$ART/geo.txt"
  cat "$ART/geo.txt"
}

# The proxy sections: one Release proxy binary in build-bench (built once per run), and
# tests/bench/proxy_bench.py per section. proxy_bench.py starts and stops every proxy, nginx and
# uvicorn it needs (also on TERM, which `bounded` sends on a time-out or Ctrl-C here) in a scratch
# directory under $WORK, which the EXIT trap removes.
PROXY_BIN=""

need_tools() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "bench: $tool is missing; run 'make deps-bench'" >&2
      return 1
    fi
  done
}

need_proxy() {
  [ -z "$PROXY_BIN" ] || return 0
  need_tools wrk
  log "building build-bench/proxy/zonegate-proxy (Release)"
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DZONEGATE_BENCH=ON -DZONEGATE_TESTS=OFF \
    >"$ART/proxy-cmake.log"
  bounded 1800 cmake --build build-bench --target zonegate-proxy -j "$(nproc)" \
    >>"$ART/proxy-cmake.log"
  PROXY_BIN="$ROOT/build-bench/proxy/zonegate-proxy"
}

proxy_section() {
  local name=$1 limit=$2
  need_tools wrk nginx pgbench
  need_cluster
  need_proxy
  local args=(--section "$name" --proxy-bin "$PROXY_BIN" --workdir "$WORK/proxy-$name")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); limit=$((limit / 3)); fi
  log "$name: tests/bench/proxy_bench.py ${args[*]}"
  bounded "$limit" "$PYTHON" "$ROOT/tests/bench/proxy_bench.py" "$ART/$name.json" "${args[@]}"
}

# Time limits (full runs; --quick gets a third). Typical full durations: proxy_db 12 min,
# fastapi 7, cache_hit 5, mix 2, overhead 8.
section_proxy_db() { proxy_section proxy_db 2700; }
section_fastapi() { proxy_section fastapi 1200; }
section_cache_hit() { proxy_section cache_hit 1200; }
section_mix() { proxy_section mix 900; }
section_overhead() { proxy_section overhead 1200; }

# The resilience runs (tests/bench/resilience_bench.py): their own throwaway clusters, since they
# stop and restart Postgres. Typical full durations: chaos 2 min, overload 2.
resilience_section() {
  local name=$1
  need_proxy
  local args=(--only "$name" --proxy-bin "$PROXY_BIN")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); fi
  log "$name: tests/bench/resilience_bench.py ${args[*]}"
  bounded 900 "$PYTHON" "$ROOT/tests/bench/resilience_bench.py" "$ART" "${args[@]}" \
    >"$ART/$name.txt"
}
section_chaos() { resilience_section chaos; }
section_overload() { resilience_section overload; }
section_hit_overhead() { resilience_section hit_overhead; }

# The rate limiter (tests/bench/rate_limit_bench.py): its own throwaway clusters, like the
# resilience runs. Typical full duration: 3 min (--quick: 1).
section_rate_limit() {
  need_proxy
  log "building build-bench/tests/bench/rate_limit_keys"
  bounded 1800 cmake --build build-bench --target rate_limit_keys -j "$(nproc)" \
    >>"$ART/proxy-cmake.log"
  local args=(--proxy-bin "$PROXY_BIN" --keys-bin "$ROOT/build-bench/tests/bench/rate_limit_keys")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); fi
  log "rate_limit: tests/bench/rate_limit_bench.py ${args[*]}"
  bounded 900 "$PYTHON" "$ROOT/tests/bench/rate_limit_bench.py" "$ART" "${args[@]}" \
    >"$ART/rate_limit.txt"
}

# Slow and abusive clients (tests/bench/slow_clients_bench.py): its own throwaway cluster.
# Typical full duration: 4 min (--quick: 1).
section_slow_clients() {
  need_proxy
  local args=(--proxy-bin "$PROXY_BIN")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); fi
  log "slow_clients: tests/bench/slow_clients_bench.py ${args[*]}"
  bounded 900 "$PYTHON" "$ROOT/tests/bench/slow_clients_bench.py" "$ART" "${args[@]}" \
    >"$ART/slow_clients.txt"
}

# Read replicas (tests/bench/replicas_bench.py): a primary and two standbys of its own.
# Typical full duration: 3 min (--quick: 1).
section_replicas() {
  need_proxy
  local args=(--proxy-bin "$PROXY_BIN")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); fi
  log "replicas: tests/bench/replicas_bench.py ${args[*]}"
  bounded 900 "$PYTHON" "$ROOT/tests/bench/replicas_bench.py" "$ART" "${args[@]}" \
    >"$ART/replicas.txt"
}

# PostgREST's load-test shapes through /rpc (tests/bench/postgrest_anchor_bench.py): its own
# throwaway cluster. Typical full duration: 2 min (--quick: 1).
section_postgrest() {
  need_proxy
  local args=(--proxy-bin "$PROXY_BIN")
  if [ "$QUICK" -eq 1 ]; then args+=(--quick); fi
  log "postgrest: tests/bench/postgrest_anchor_bench.py ${args[*]}"
  bounded 600 "$PYTHON" "$ROOT/tests/bench/postgrest_anchor_bench.py" "$ART" "${args[@]}" \
    >"$ART/postgrest.txt"
}

# --- charts -------------------------------------------------------------------------------------

charts() {
  log "charts: tests/bench/charts.py"
  ZONEGATE_BENCH_RESULTS="$ART" "$PYTHON" "$ROOT/tests/bench/charts.py"
}

# --- main ---------------------------------------------------------------------------------------

mkdir -p "$ART"
if [ "$CHARTS_ONLY" -eq 1 ]; then
  charts
  exit
fi
MODE=""
if [ "$QUICK" -eq 1 ]; then MODE=", quick"; fi
log "sections: ${RUN[*]}$MODE; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
tune_autogroup
DONE=()
for s in "${RUN[@]}"; do
  mkdir -p "$ART"
  rm -f "$ART/$s.txt"
  started=$SECONDS
  started_at=$(date +%s)
  log "== $s"
  "section_$s"
  # Stamp the section's JSON with how it was made (the charts' captions); never fails the bench.
  ZONEGATE_BENCH_RESULTS="$ART" "$PYTHON" "$ROOT/tests/bench/charts.py" --record "$s" \
    --command "$COMMAND" --started "$started_at" --quick "$QUICK" ||
    log "warning: could not record $s's run in its JSON"
  DONE+=("$(printf '%-10s %5ds' "$s" $((SECONDS - started)))")
done

echo
echo "== bench summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs$MODE)"
for s in "${RUN[@]}"; do
  echo "-- $s"
  if [ ! -f "$ART/$s.txt" ]; then
    echo "  (no $s.txt in $ART: removed while running, e.g. by make test?)"
  elif [ "$s" = core ]; then
    grep -E '^BM_' "$ART/core.txt" | grep -Ev '_(stddev|cv) ' || true
  elif [ "$s" = geo ]; then
    grep -Ev '_(stddev|cv) |^-+$|^Benchmark ' "$ART/geo.txt" || true
  else
    cat "$ART/$s.txt"
  fi
done
echo "-- durations"
printf '  %s\n' "${DONE[@]}"
echo "results in ${ART#"$ROOT"/}/"
echo
charts
