#!/usr/bin/env bash
# clang-tidy over the C++ that CMake builds (make lint runs it after the clang-format check).
# Configures a build directory of its own, build-lint, with the normal Release options and a
# compilation database (nothing is compiled: no generated header is needed), then runs
# clang-tidy-14 with the repository's .clang-tidy on every .cpp of proxy/, extension/core/ and
# tests/unit/, two files at a time. Exits 1 on any finding (.clang-tidy makes every warning an
# error), printing each failing file's report.
#
# Not covered: extension/pg/*.cpp. PGXS builds them with the server's flags and headers
# (postgres.h, pg_config --includedir-server), so they are not in CMake's compilation database;
# tests/integration/pool_test.cpp (an integration suite) and the generated
# build-*/proxy/{openapi_json,dashboard_assets}.cpp are left out too.
#
#   tests/lib/lint.sh                 every file
#   tests/lib/lint.sh FILE...         only these (paths from the repository's top)
#   LINT_BUILD_DIR=dir                the build directory (default build-lint)
#   LINT_JOBS=n                       files checked at once (default 2)
#   CLANG_TIDY=path                   the clang-tidy binary (default clang-tidy-14)
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${LINT_BUILD_DIR:-build-lint}
jobs=${LINT_JOBS:-2}
tidy=${CLANG_TIDY:-clang-tidy-14}
command -v "$tidy" >/dev/null 2>&1 ||
  { echo "lint: $tidy not found (make deps installs clang-14, which has it)" >&2; exit 1; }

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null ||
  { echo "lint: cmake could not configure $build" >&2; exit 1; }

if [ $# -gt 0 ]; then
  files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new files alike, never ignored ones (build output).
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
    'proxy/*.cpp' 'extension/core/*.cpp' 'tests/unit/*.cpp' | sort -u)
else
  mapfile -t files < <(find proxy extension/core tests/unit -name '*.cpp' | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "lint: no files to check" >&2; exit 1; }

# A file without a compile command would be checked with guessed flags: refuse instead.
missing=$(python3 - "$build/compile_commands.json" "${files[@]}" <<'EOF'
import json, os, sys
db = {os.path.realpath(e["file"]) for e in json.load(open(sys.argv[1]))}
print("\n".join(f for f in sys.argv[2:] if os.path.realpath(f) not in db))
EOF
)
if [ -n "$missing" ]; then
  echo "lint: not in $build/compile_commands.json (not built by CMake?):" >&2
  printf '  %s\n' $missing >&2
  exit 1
fi

out="$build/clang-tidy"
rm -rf "$out" && mkdir -p "$out"
echo "lint: clang-tidy on ${#files[@]} files ($jobs at a time)"
# Each file's report goes to its own file, so parallel runs do not interleave.
status=0
printf '%s\0' "${files[@]}" | xargs -0 -P "$jobs" -n 1 sh -c '
  report="$2/$(printf "%s" "$3" | tr / _).txt"
  "$1" -p "$0" --quiet "$3" >"$report" 2>&1 || { echo "$3" >>"$report.failed"; exit 1; }
' "$build" "$tidy" "$out" || status=$?

failed=$(find "$out" -name '*.failed' | wc -l)
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  for f in "$out"/*.txt; do
    [ -e "$f.failed" ] || continue
    grep -v -e '^[0-9]* warnings\? generated\.$' -e '^[0-9]* warnings\? and [0-9]* errors\? generated\.$' "$f" || true
  done
  findings=$(cat "$out"/*.txt | grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' | sort -u | wc -l)
  echo "lint: $findings clang-tidy findings in $failed of ${#files[@]} files (reports in $out/)" >&2
  exit 1
fi
echo "lint: clang-tidy clean (${#files[@]} files)"
