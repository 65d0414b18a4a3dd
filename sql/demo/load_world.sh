#!/usr/bin/env bash
# Loads Natural Earth's countries (public domain; npm package world-atlas, converted with
# topojson-client by sql/demo/world_zones.mjs) into zonegate.zones as level 'country' zones with
# their boundary, and makes Indonesia the parent of the Indonesian provinces that load_idn.sh
# loaded as roots. Every other country is a root. Run it after load_idn.sh (make demo does).
#
#   load_world.sh [ATLAS]     ATLAS: countries-50m.json (default), countries-110m.json or
#                             countries-10m.json of world-atlas, or a path (with a slash) to a
#                             TopoJSON file with a "countries" object;
#                             PGHOST/PGPORT/PGDATABASE/PGUSER select the database
#
# Ids and codes (world_zones.mjs): 1,000,000,000,000 + the ISO 3166-1 numeric code, "ISO-360"
# (Indonesia is 1000000000360), or for the few units without their own code 1,000,001,xxx,xxx
# and "NE-<name>": never one of the Indonesian codes (at most 10 digits). Loading again updates
# names and boundaries in place. Features without a polygonal geometry, or whose boundary
# zonegate refuses, are skipped and counted, not fatal. Needs a role that may call
# zonegate._check_boundary (the demo's superuser).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ATLAS=${1:-countries-50m.json}
case $ATLAS in
  *\'*) echo "load_world: the atlas name must not contain a quote" >&2; exit 2 ;;
  countries-*.json | */*) ;;  # a world-atlas file, or a path to another TopoJSON (the tests')
  *) echo "load_world: ATLAS must be countries-*.json or a path, not $ATLAS" >&2; exit 2 ;;
esac
for pkg in world-atlas topojson-client; do
  if [ ! -d "$ROOT/node_modules/$pkg" ]; then
    echo "load_world: node_modules/$pkg not found; run 'make deps' (npm package $pkg)" >&2
    exit 1
  fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-world.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
node "$ROOT/sql/demo/world_zones.mjs" "$TMP/zones.ndjson" "$ATLAS"
case $TMP in *\'*) echo "load_world: the temporary path must not contain a quote" >&2; exit 1 ;; esac

echo "load_world: loading countries from $ATLAS" >&2
psql -X -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE world_zones (z jsonb) ON COMMIT DROP;
\copy world_zones FROM '$TMP/zones.ndjson'
CREATE TEMP TABLE world_skipped (id bigint, name text, reason text);  -- read after COMMIT
CREATE TEMP TABLE world_skipped_raw (s jsonb) ON COMMIT DROP;
\copy world_skipped_raw FROM '$TMP/zones.ndjson.skipped'
INSERT INTO world_skipped SELECT NULL, s ->> 'name', s ->> 'reason' FROM world_skipped_raw;
-- The boundary check the zones trigger makes, one feature at a time: a refused boundary is
-- recorded and skipped instead of failing the load.
DO \$\$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT z FROM world_zones LOOP
    BEGIN
      PERFORM zonegate._check_boundary((r.z ->> 'id')::bigint, r.z -> 'geometry');
    EXCEPTION WHEN data_exception THEN
      INSERT INTO world_skipped VALUES ((r.z ->> 'id')::bigint, r.z ->> 'name', SQLERRM);
    END;
  END LOOP;
END
\$\$;
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary, attributes)
SELECT (z ->> 'id')::bigint, NULL, z ->> 'code', z ->> 'name', 'country', z -> 'geometry',
       jsonb_strip_nulls(jsonb_build_object('source', 'natural-earth', 'atlas', '$(basename "$ATLAS")',
                                            'iso_numeric', z ->> 'iso'))
FROM world_zones
WHERE (z ->> 'id')::bigint NOT IN (SELECT id FROM world_skipped WHERE id IS NOT NULL)
ON CONFLICT (id) DO UPDATE
  SET code = EXCLUDED.code, name = EXCLUDED.name, level = EXCLUDED.level,
      boundary = EXCLUDED.boundary, attributes = EXCLUDED.attributes
  WHERE (zonegate.zones.code, zonegate.zones.name, zonegate.zones.level, zonegate.zones.boundary,
         zonegate.zones.attributes)
        IS DISTINCT FROM (EXCLUDED.code, EXCLUDED.name, EXCLUDED.level, EXCLUDED.boundary,
                          EXCLUDED.attributes);
-- The Indonesian provinces hang below Indonesia (the deepest zone with a boundary answers
-- zone_at, so a point on Java is Indonesia until provinces get boundaries of their own).
UPDATE zonegate.zones p SET parent_id = c.id
FROM zonegate.zones c
WHERE c.code = 'ISO-360' AND p.level = 'province' AND p.parent_id IS NULL
  AND p.attributes ->> 'source' = 'idn-area-data';
COMMIT;
SELECT format('load_world: %s country zones, %s skipped%s; %s of %s Indonesian provinces below Indonesia; %s zones in all',
              (SELECT count(*) FROM zonegate.zones WHERE level = 'country'),
              (SELECT count(*) FROM world_skipped),
              (SELECT coalesce(' (' || string_agg(name || ': ' || reason, '; ') || ')', '') FROM world_skipped),
              (SELECT count(*) FROM zonegate.zones p JOIN zonegate.zones c ON c.id = p.parent_id
               WHERE p.level = 'province' AND c.code = 'ISO-360'),
              (SELECT count(*) FROM zonegate.zones WHERE level = 'province'
                 AND attributes ->> 'source' = 'idn-area-data'),
              (SELECT count(*) FROM zonegate.zones)) AS summary \gset
\echo :summary
SQL
