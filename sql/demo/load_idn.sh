#!/usr/bin/env bash
# Loads the real Indonesian administrative hierarchy into zonegate.zones: 38 provinces > 514
# regencies > 7,285 districts > 83,762 villages, from the npm package idn-area-data (ODbL,
# installed into node_modules/ by `make deps`; never committed).
#
#   load_idn.sh [DATA_DIR]     PGHOST/PGPORT/PGDATABASE/PGUSER select the database
#
# Zone ids are the official codes without dots (province 11, regency 1101, district 110101,
# village 1101012001), so they are stable across loads. Loading again updates names in place.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${1:-$ROOT/node_modules/idn-area-data/data}
for f in provinces regencies districts villages; do
  if [ ! -r "$DATA/$f.csv" ]; then
    echo "load_idn: $DATA/$f.csv not found; run 'make deps' (npm package idn-area-data)" >&2
    exit 1
  fi
done
case $DATA in *\'*) echo "load_idn: the data path must not contain a quote" >&2; exit 1 ;; esac

echo "load_idn: loading zones from $DATA" >&2
psql -X -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE idn_provinces (code text, name text) ON COMMIT DROP;
CREATE TEMP TABLE idn_regencies (code text, parent text, name text) ON COMMIT DROP;
CREATE TEMP TABLE idn_districts (code text, parent text, name text) ON COMMIT DROP;
CREATE TEMP TABLE idn_villages (code text, parent text, name text) ON COMMIT DROP;
\copy idn_provinces FROM '$DATA/provinces.csv' WITH (FORMAT csv, HEADER true)
\copy idn_regencies FROM '$DATA/regencies.csv' WITH (FORMAT csv, HEADER true)
\copy idn_districts FROM '$DATA/districts.csv' WITH (FORMAT csv, HEADER true)
\copy idn_villages FROM '$DATA/villages.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO zonegate.zones (id, parent_id, code, name, level, attributes)
SELECT replace(code, '.', '')::bigint, NULL, code, name, 'province', '{"source": "idn-area-data"}'::jsonb
FROM idn_provinces
UNION ALL
SELECT replace(code, '.', '')::bigint, replace(parent, '.', '')::bigint, code, name, 'regency',
       '{"source": "idn-area-data"}'::jsonb
FROM idn_regencies
UNION ALL
SELECT replace(code, '.', '')::bigint, replace(parent, '.', '')::bigint, code, name, 'district',
       '{"source": "idn-area-data"}'::jsonb
FROM idn_districts
UNION ALL
SELECT replace(code, '.', '')::bigint, replace(parent, '.', '')::bigint, code, name, 'village',
       '{"source": "idn-area-data"}'::jsonb
FROM idn_villages
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name
  WHERE zonegate.zones.name IS DISTINCT FROM EXCLUDED.name;
COMMIT;
SELECT format('load_idn: %s zones (%s)', sum(n),
              string_agg(level || ': ' || n, ', ' ORDER BY min_id))
FROM (SELECT level, count(*) AS n, min(id) AS min_id FROM zonegate.zones GROUP BY level) s \gset
\echo :format
SQL
