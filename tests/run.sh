#!/usr/bin/env bash
# Runs zonegate's suites in order and ends with one line: "tests: N passed, M failed, K skipped".
# A suite that runs fewer tests than its floor (tests/floors), a skip not on tests/skips.allow, a
# runner's non-zero exit, and a crash, sanitizer report or unexpected FATAL in any cluster's log
# each count as failures.
#
#   tests/run.sh [--build-dir DIR] [--asan-build-dir DIR] [--fuzz-build-dir DIR]
#                [--asan-extension SO]
#                [--suites unit,regress,isolation,integration,fuzz,regress-asan,lint,package]
#                [--sanitized]
#
# unit         GoogleTest via ctest (pure core and proxy parts)
# regress      pg_regress over tests/regress/schedule against a throwaway cluster, then a check that
#              no backend died by a signal
# isolation    pg_isolation_regress over tests/isolation/specs, when there are any
# integration  pytest over tests/integration: the real proxy against real Postgres clusters
# sanitize     with --asan-build-dir: unit and integration again with the ASan+UBSan build
# regress-asan with --asan-extension: pg_regress and isolation again against a server that loads
#              the extension's ASan+UBSan build (the runtime preloaded); any sanitizer report or
#              backend crash in its log fails it. The normal library is put back afterwards.
# lint         clang-format over every tracked C++ file, then clang-tidy (tests/lib/lint.sh)
# package      tests/package/test_package.sh: builds the Debian packages, checks them and, as
#              root, installs, runs and purges them (the machine is put back as it was)
# fuzz         with --fuzz-build-dir: every libFuzzer target for $FUZZ_SECONDS (default 15) from
#              its seed corpus; a crash or sanitizer report fails it (artifacts kept)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=build
ASAN_BUILD_DIR=""
FUZZ_BUILD_DIR=""
ASAN_EXTENSION=""
SUITES="unit,regress,isolation,integration,fuzz,regress-asan,lint,package"
SANITIZED=0
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --asan-build-dir) ASAN_BUILD_DIR=$2; shift 2 ;;
    --fuzz-build-dir) FUZZ_BUILD_DIR=$2; shift 2 ;;
    --asan-extension) ASAN_EXTENSION=$2; shift 2 ;;
    --suites) SUITES=$2; shift 2 ;;
    --sanitized) SANITIZED=1; shift ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
ARTIFACTS="$ROOT/tests/.artifacts"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

PG_BINDIR=$(pg_config --bindir)
PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
SUMMARY=()
CLUSTER_DIR=""

PKGLIB_SO="$(pg_config --pkglibdir)/zonegate.so"
SWAPPED_LIB=0
cleanup() {
  if [ -n "$CLUSTER_DIR" ]; then tests/lib/pgcluster.sh destroy "$CLUSTER_DIR"; fi
  # The sanitizer build of the extension never stays installed. A new file, not a rewrite: a
  # library still mapped by a running backend must not change under it.
  if [ $SWAPPED_LIB -eq 1 ]; then cp --remove-destination "$ROOT/extension/zonegate.so" "$PKGLIB_SO"; fi
  SWAPPED_LIB=0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every suite must run at least its floor (tests/floors): a suite that ran nothing, or less than
# it used to, fails instead of passing quietly.
record() {  # suite passed failed [skipped]
  local suite=$1 p=$2 f=$3 k=${4:-0} floor
  floor=$(awk -v s="$suite" '$1 == s { print $2 }' tests/floors)
  if [ -z "$floor" ]; then
    echo "== $suite: no floor in tests/floors"
    f=$((f + 1))
  elif [ $((p + f)) -lt "$floor" ]; then
    echo "== $suite: ran $((p + f)) tests, fewer than its floor of $floor (tests/floors)"
    f=$((f + 1))
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + k))
  SUMMARY+=("$(printf '%-22s %5d passed, %d failed, %d skipped' "$suite" "$p" "$f" "$k")")
  echo "== $suite: $p passed, $f failed, $k skipped"
}

# Skipped tests not on tests/skips.allow, one a line (each counts as a failure).
unexpected_skips() {  # junit.xml
  tests/lib/junit_count.py --skipped "$1" | grep . | grep -vxF -f <(grep -vE '^(#|$)' tests/skips.allow) || true
}

# Backend crashes, sanitizer reports, PANIC, and FATAL lines other than the expected ones
# (tests/lib/expected_fatal.txt) in server logs: a crash would not fail a test by itself, since
# clients reconnect and tests retry. One "test" per log.
scan_server_logs() {  # label log...
  local label=$1 clean=0 dirty=0 log hits allowed
  shift
  allowed=$(grep -vE '^(#|$)' tests/lib/expected_fatal.txt | paste -sd'|')
  [ -n "$allowed" ] || allowed='$^'  # none: a pattern that matches no line
  for log in "$@"; do
    [ -f "$log" ] || continue
    hits=$(grep -E 'terminated by signal|server process .* was terminated|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer|runtime error:|PANIC:|FATAL:' "$log" |
      grep -vE "FATAL: +($allowed)" || true)
    if [ -z "$hits" ]; then clean=$((clean + 1)); else
      dirty=$((dirty + 1)); echo "== $label: $log:"; echo "$hits" | head -n 20; fi
  done
  record "$label" "$clean" "$dirty"
}

# Sanitized binaries exit with 86 on a report, a status no test expects: a test of an error
# path that expects exit status 1 (ASan's default) fails when the path also corrupts memory.
sanitizer_env() {
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1:exitcode=86"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/lib/lsan.supp:exitcode=86"
}

run_unit() {  # label build_dir
  local label=$1 dir=$2 xml="$ARTIFACTS/$1.xml"
  echo "== $label: ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure --output-junit "$xml" -j2 >"$ARTIFACTS/$label.log" 2>&1
  local rc=$?
  tail -n 3 "$ARTIFACTS/$label.log"
  read -r p f k < <(tests/lib/junit_count.py "$xml")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; cat "$ARTIFACTS/$label.log"; fi
  [ "$f" -gt 0 ] && grep -B2 -A20 -E "Failed|FAILED" "$ARTIFACTS/$label.log" | head -n 80
  local bad
  bad=$(unexpected_skips "$xml")
  if [ -n "$bad" ]; then echo "== $label: skipped, not on tests/skips.allow:"; echo "$bad"
    f=$((f + $(echo "$bad" | wc -l))); fi
  record "$label" "$p" "$f" "$k"
}

start_cluster() {  # [pgcluster start options]
  CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-pg.XXXXXX")
  tests/lib/pgcluster.sh start "$CLUSTER_DIR" "$@" >/dev/null || { echo "could not start Postgres"; return 1; }
  set -a
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/env"
  set +a
}

# Counts "... ok" / "... FAILED" lines of pg_regress-style output.
count_regress() {  # label logfile rc
  local p f
  p=$(grep -cE '\.\.\. ok' "$2" || true)
  f=$(grep -cE '\.\.\. (FAILED|failed)' "$2" || true)
  if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record "$1" "$p" "$f"
}

run_regress() {  # [label]
  local label=${1:-regress}
  local out="$ARTIFACTS/$label"
  mkdir -p "$out"
  echo "== $label: pg_regress"
  "$PGXS_DIR/test/regress/pg_regress" --inputdir=tests/regress --outputdir="$out" \
    --bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname=zonegate_regress --schedule=tests/regress/schedule >"$out/run.log" 2>&1
  local rc=$?
  grep -E '^(test| |ok|not ok|#)' "$out/run.log" | grep -vE '^(=|ALTER|CREATE|DROP|SET)' || true
  [ -f "$out/regression.diffs" ] && head -n 100 "$out/regression.diffs"
  count_regress "$label" "$out/run.log" $rc
}

check_server_log() {  # label: the current cluster's log
  scan_server_logs "$1" "$CLUSTER_DIR/server.log"
}

run_isolation() {  # [label]
  local label=${1:-isolation}
  local specs
  specs=$(cd tests/isolation/specs 2>/dev/null && ls ./*.spec 2>/dev/null | sed 's#^\./##; s#\.spec$##' | sort)
  if [ -z "$specs" ]; then echo "== isolation: no specs yet"; return; fi
  local out="$ARTIFACTS/$label"
  mkdir -p "$out"
  echo "== $label: pg_isolation_regress"
  # shellcheck disable=SC2086
  "$PGXS_DIR/test/isolation/pg_isolation_regress" --inputdir=tests/isolation --outputdir="$out" \
    --bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname=zonegate_isolation --load-extension=zonegate $specs >"$out/run.log" 2>&1
  local rc=$?
  grep -E '\.\.\. ' "$out/run.log" || true
  [ -f "$out/regression.diffs" ] && head -n 100 "$out/regression.diffs"
  count_regress "$label" "$out/run.log" $rc
}

# The regress and isolation suites against the extension's ASan+UBSan build. Postgres is not
# instrumented, so the runtime is preloaded into the server, after libasan a shim that starts it
# first (tests/lib/asan_initfirst.c says why).
run_regress_asan() {
  local so=$1 shimdir libasan
  [ -f "$so" ] || { echo "== regress-asan: no sanitizer build at $so"; record regress-asan 0 1; return; }
  shimdir=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-asan.XXXXXX")
  chmod 755 "$shimdir"
  gcc -O2 -fPIC -shared -Wl,-z,initfirst -o "$shimdir/asan_initfirst.so" tests/lib/asan_initfirst.c
  libasan=$(readlink -f "$(gcc -print-file-name=libasan.so)")
  SWAPPED_LIB=1
  cp --remove-destination "$so" "$PKGLIB_SO"
  if start_cluster --preload "$libasan $shimdir/asan_initfirst.so"; then
    run_regress regress-asan
    run_isolation isolation-asan
    check_server_log server-log-asan
  else
    record regress-asan 0 1
  fi
  cleanup
  CLUSTER_DIR=""
  rm -rf "$shimdir"
}

run_integration() {  # label proxy_binary pg_logs_label
  local label=$1 xml="$ARTIFACTS/$1.xml" rc
  echo "== $label: pytest tests/integration (proxy $2)"
  rm -rf "$ARTIFACTS/pg-logs"
  ZONEGATE_PROXY_BIN="$2" ZONEGATE_ARTIFACTS="$ARTIFACTS" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -rs --junitxml="$xml" tests/integration 2>&1 | tail -n 40
  rc=${PIPESTATUS[0]}
  read -r p f k < <(tests/lib/junit_count.py "$xml")
  # pytest's own status counts too: 5 is "no tests collected", anything else non-zero a failure
  # the report may not show (an error at collection, an internal error).
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "== $label: pytest exited with $rc"; f=1; fi
  local bad
  bad=$(unexpected_skips "$xml")
  if [ -n "$bad" ]; then echo "== $label: skipped, not on tests/skips.allow:"; echo "$bad"
    f=$((f + $(echo "$bad" | wc -l))); fi
  record "$label" "$p" "$f" "$k"
  # Every cluster the suite started left its server log here (tests/integration/zg.py).
  scan_server_logs "$3" "$ARTIFACTS"/pg-logs/*.log
  [ -d "$ARTIFACTS/pg-logs" ] && mv "$ARTIFACTS/pg-logs" "$ARTIFACTS/server-logs-$1"
}

run_fuzz() {
  local dir out="$ARTIFACTS/fuzz" secs=${FUZZ_SECONDS:-15} f name corpus
  dir=$(cd "$1" && pwd)
  mkdir -p "$out"
  for f in "$dir"/tests/fuzz/*_fuzz; do
    [ -x "$f" ] || continue
    name=$(basename "$f" _fuzz)
    corpus=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-fuzz.XXXXXX")
    cp -r "tests/fuzz/corpus/$name/." "$corpus/" 2>/dev/null || true
    echo "== fuzz-$name: ${secs}s"
    if (cd "$out" && "$f" -max_total_time="$secs" -print_final_stats=1 "$corpus" >"$out/$name.log" 2>&1); then
      grep -E 'stat::number_of_executed_units' "$out/$name.log" | sed 's/^/   /'
      record "fuzz-$name" 1 0
    else
      tail -n 40 "$out/$name.log"
      record "fuzz-$name" 0 1
    fi
    rm -rf "$corpus"
  done
}

run_lint() {
  local p=0 f=0
  echo "== lint: clang-format and clang-tidy"
  if git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror >"$ARTIFACTS/clang-format.log" 2>&1; then
    p=$((p + 1)); else f=$((f + 1)); head -n 40 "$ARTIFACTS/clang-format.log"; fi
  if LINT_BUILD_DIR=build-lint tests/lib/lint.sh >"$ARTIFACTS/clang-tidy.log" 2>&1; then
    p=$((p + 1)); tail -n 1 "$ARTIFACTS/clang-tidy.log"
  else f=$((f + 1)); tail -n 60 "$ARTIFACTS/clang-tidy.log"; fi
  record lint "$p" "$f"
}

# TAP-like lines of tests/package/test_package.sh: "ok - ", "not ok - ", "skip - ".
run_package() {
  local log="$ARTIFACTS/package.log" p f k
  echo "== package: tests/package/test_package.sh"
  JOBS=2 tests/package/test_package.sh >"$log" 2>&1
  local rc=$?
  p=$(grep -c '^ok - ' "$log" || true)
  f=$(grep -c '^not ok - ' "$log" || true)
  k=$(grep -c '^skip - ' "$log" || true)
  grep -E '^(not ok|skip) - ' -A 25 "$log" | head -n 80 || true
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -n 30 "$log"; fi
  # Skips are allowed only where tests/skips.allow names them.
  local bad
  bad=$(sed -n 's/^skip - //p' "$log" | grep -vxF -f <(grep -vE '^(#|$)' tests/skips.allow) || true)
  if [ -n "$bad" ]; then echo "== package: skipped, not on tests/skips.allow:"; echo "$bad"
    f=$((f + $(echo "$bad" | wc -l))); fi
  record package "$p" "$f" "$k"
}

has() { [[ ",$SUITES," == *",$1,"* ]]; }

if [ $SANITIZED -eq 1 ]; then sanitizer_env; fi
has unit && run_unit unit "$BUILD_DIR"
if has regress || has isolation; then
  if start_cluster; then
    has regress && run_regress
    has isolation && run_isolation
    check_server_log server-log
  else
    record "postgres-cluster" 0 1
  fi
  cleanup
  CLUSTER_DIR=""
fi
has integration && run_integration integration "$ROOT/$BUILD_DIR/proxy/zonegate-proxy" pg-logs
if has regress-asan && [ -n "$ASAN_EXTENSION" ]; then run_regress_asan "$ASAN_EXTENSION"; fi
if [ -n "$ASAN_BUILD_DIR" ]; then
  sanitizer_env  # only the sanitized binaries read these variables
  run_unit unit-asan "$ASAN_BUILD_DIR"
  run_integration integration-asan "$ROOT/$ASAN_BUILD_DIR/proxy/zonegate-proxy" pg-logs-asan
fi
has lint && run_lint
has package && run_package
# Fuzzers last, as README.md and the Makefile say.
if has fuzz && [ -n "$FUZZ_BUILD_DIR" ]; then run_fuzz "$FUZZ_BUILD_DIR"; fi

echo
printf '%s\n' "${SUMMARY[@]}"
echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
[ "$TOTAL_FAILED" -eq 0 ] && [ "$TOTAL_PASSED" -gt 0 ]
