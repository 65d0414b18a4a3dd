#!/usr/bin/python3
"""zone_at against PostGIS in SQL, side by side in one database: Natural Earth's 50m countries
(world-atlas, converted by tests/bench/geo/to_geojson.mjs) loaded into zonegate and into a
PostGIS table with a GiST index; N random points resolved by

  zonegate:  SELECT zonegate.zone_at(lon, lat) FROM pts
  batch:     SELECT zonegate.zone_at(array_agg(lon), array_agg(lat)) FROM pts
  PostGIS:   SELECT (SELECT c.id FROM countries c WHERE ST_Covers(c.geom, p.geom) ORDER BY c.id
             LIMIT 1) FROM pts p            -- points stored as geometry, as a PostGIS user would

Median of R timed runs after a warm-up, alternating the three. Writes a JSON result and prints a
summary. Needs PG* env pointing at a database where CREATE EXTENSION zonegate/postgis work.
  geo_sql_bench.py GEOJSON OUT.json [--points N] [--repeat R]"""
import argparse
import json
import random
import statistics
import time

import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("geojson")
    ap.add_argument("out")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    fc = json.load(open(a.geojson))
    for i, f in enumerate(fc["features"], start=1):
        f.pop("id", None)
        f["properties"] = {"zid": i, "code": "C%d" % i, "name": f["properties"].get("name") or "unit %d" % i}
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP DATABASE IF EXISTS zonegate_geo_bench")
    cur.execute("CREATE DATABASE zonegate_geo_bench")
    conn.close()
    conn = psycopg2.connect(dbname="zonegate_geo_bench")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION zonegate")
    cur.execute("CREATE EXTENSION postgis")
    cur.execute("SET max_parallel_workers_per_gather = 0")
    cur.execute("SELECT zonegate.import_geojson(%s::jsonb, 'country', NULL, 'zid')", (json.dumps(fc),))
    cur.execute("CREATE TABLE countries (id bigint PRIMARY KEY, geom geometry(Geometry, 4326) NOT NULL)")
    for f in fc["features"]:
        cur.execute("INSERT INTO countries VALUES (%s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
                    (f["properties"]["zid"], json.dumps(f["geometry"])))
    cur.execute("CREATE INDEX ON countries USING gist (geom)")
    cur.execute("ANALYZE countries")
    rng = random.Random(2026)
    pts = [(rng.uniform(-180, 180), rng.uniform(-90, 90)) for _ in range(a.points)]
    cur.execute("CREATE TABLE pts (n int, lon float8, lat float8, geom geometry(Point, 4326))")
    for i in range(0, len(pts), 10_000):
        chunk = pts[i:i + 10_000]
        args = ",".join(cur.mogrify("(%s,%s,%s)", (i + k, x, y)).decode() for k, (x, y) in enumerate(chunk))
        cur.execute("INSERT INTO pts (n, lon, lat) VALUES " + args)
    cur.execute("UPDATE pts SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)")
    cur.execute("VACUUM ANALYZE pts")

    queries = {
        "zonegate": "SELECT count(zonegate.zone_at(lon, lat)) FROM pts",
        "zonegate_batch": "SELECT cardinality(array_remove(zonegate.zone_at(array_agg(lon), array_agg(lat)), NULL)) FROM pts",
        "postgis": "SELECT count((SELECT c.id FROM countries c WHERE ST_Covers(c.geom, p.geom) ORDER BY c.id LIMIT 1)) FROM pts p",
    }
    # Same answers first (the count of covered points), then timing.
    counts = {}
    for name, q in queries.items():
        cur.execute(q)
        counts[name] = cur.fetchone()[0]
    cur.execute("SELECT entries, bytes, last_rebuild_ms FROM zonegate.cache_stats() WHERE cache = 'spatial'")
    entries, nbytes, build_ms = cur.fetchone()
    times = {name: [] for name in queries}
    for _ in range(a.repeat):
        for name, q in queries.items():
            t0 = time.perf_counter()
            cur.execute(q)
            cur.fetchone()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "points": a.points, "countries": len(fc["features"]), "covered": counts,
        "median_seconds": med, "points_per_second": {n: a.points / s for n, s in med.items()},
        "ratio_zonegate_vs_postgis": med["postgis"] / med["zonegate"],
        "ratio_batch_vs_postgis": med["postgis"] / med["zonegate_batch"],
        "spatial_index": {"zones": entries, "bytes": nbytes, "build_ms_in_backend": build_ms},
        "runs": times,
    }
    json.dump(result, open(a.out, "w"), indent=2)
    print("geo (SQL): %d points over %d countries; covered: %s" % (a.points, len(fc["features"]), counts))
    for n in queries:
        print("  %-15s median %.3f s  %10.0f points/s" % (n, med[n], a.points / med[n]))
    print("  zonegate / PostGIS throughput: %.1fx (batch form %.1fx)" %
          (result["ratio_zonegate_vs_postgis"], result["ratio_batch_vs_postgis"]))
    print("  spatial index: %d zones, %.1f MB, built in %.1f ms in the backend" % (entries, nbytes / 1e6, build_ms))
    if len(set(counts.values())) != 1:
        raise SystemExit("the three ways disagree on how many points are covered: %s" % counts)
    cur.close()
    conn.close()
    conn = psycopg2.connect("")
    conn.autocommit = True
    conn.cursor().execute("DROP DATABASE zonegate_geo_bench")


if __name__ == "__main__":
    main()
