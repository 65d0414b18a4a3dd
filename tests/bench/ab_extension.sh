#!/usr/bin/env bash
# Compares two builds of the extension library side by side: pgbench runs of the given scripts
# (tests/bench/sql/NAME.pgbench), alternating the two zonegate.so files between runs, then the
# median tps of each and the median of the per-round ratios B/A.
#
#   tests/bench/ab_extension.sh A.so B.so [--rounds N] [--seconds S] NAME...
#
# Needs the database run.sh prepares (zonegate, the Indonesian tree, 100,000 users), selected by
# PGHOST/PGPORT/PGDATABASE/PGUSER, and write access to Postgres' pkglibdir. Each run opens new
# connections, so each loads the library installed at that moment. The library is replaced by a
# new file (cp --remove-destination), never overwritten in place: backends still running map the
# old file, and rewriting a mapped library under them kills them with SIGBUS. B is left installed.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 3 ] || usage
A=$1 B=$2
shift 2
ROUNDS=5 SECONDS_PER_RUN=10
NAMES=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    -h|--help) usage ;;
    *) NAMES+=("$1"); shift ;;
  esac
done
[ ${#NAMES[@]} -gt 0 ] || usage
for f in "$A" "$B"; do [ -r "$f" ] || { echo "ab_extension: cannot read $f" >&2; exit 2; }; done
HERE=$(cd "$(dirname "$0")" && pwd)
for n in "${NAMES[@]}"; do
  [ -r "$HERE/sql/$n.pgbench" ] || { echo "ab_extension: no script $HERE/sql/$n.pgbench" >&2; exit 2; }
done
LIB="$(pg_config --pkglibdir)/zonegate.so"
RESULTS=$(mktemp)
trap 'cp --remove-destination "$B" "$LIB"; rm -f "$RESULTS"' EXIT

for r in $(seq "$ROUNDS"); do
  # Alternate which build goes first, so a drift of the host hits both alike.
  if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    if [ "$side" = A ]; then cp --remove-destination "$A" "$LIB"; else cp --remove-destination "$B" "$LIB"; fi
    for n in "${NAMES[@]}"; do
      tps=$(pgbench -n -M prepared -c 4 -j 2 -T "$SECONDS_PER_RUN" -f "$HERE/sql/$n.pgbench" 2>&1 |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p')
      [ -n "$tps" ] || { echo "ab_extension: pgbench failed for $n" >&2; exit 1; }
      echo "$r $side $n $tps" | tee -a "$RESULTS" >&2
    done
  done
done

/usr/bin/python3 - "$RESULTS" <<'EOF'
import statistics
import sys
runs = {}
for line in open(sys.argv[1]):
    r, side, name, tps = line.split()
    runs.setdefault(name, {}).setdefault(side, {})[int(r)] = float(tps)
print(f"{'script':32} {'A tps':>10} {'B tps':>10} {'B/A per round (median)':>24}")
for name, sides in runs.items():
    ratios = [sides["B"][r] / sides["A"][r] for r in sides["A"] if r in sides["B"]]
    print(f"{name:32} {statistics.median(sides['A'].values()):10.0f} "
          f"{statistics.median(sides['B'].values()):10.0f} {statistics.median(ratios):24.3f}")
EOF
