"""zone_at against a real peer on real data: Natural Earth's 50m countries (npm world-atlas,
converted with topojson-client at test time, never committed) loaded into zonegate and into
PostGIS; 100,000 random points plus 2,000 points exactly on polygon vertices must get the same
answer from zone_at and from ST_Covers + GiST, with the same tie rule (smallest id)."""
import json
import random
import subprocess
import time

import pytest

from zg import ARTIFACTS, ROOT


def postgis_available(cluster):
    return cluster.psql("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'",
                        db="postgres") == "1"


@pytest.fixture(scope="module")
def geo(cluster, tmp_path_factory):
    if not postgis_available(cluster):
        pytest.fail("PostGIS is not installed (make deps installs postgresql-15-postgis-3)")
    out = tmp_path_factory.mktemp("geo") / "countries-50m.geojson"
    conv = subprocess.run(["node", str(ROOT / "tests" / "bench" / "geo" / "to_geojson.mjs"), str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert conv.returncode == 0, conv.stderr
    fc = json.loads(out.read_text())
    # Stable integer ids (some Natural Earth units have no ISO number) and codes.
    for i, f in enumerate(fc["features"], start=1):
        f.pop("id", None)
        f["properties"] = {"zid": i, "code": "C%d" % i, "name": f["properties"].get("name") or "unit %d" % i}
    cluster.psql("DROP DATABASE IF EXISTS geo", db="postgres")
    cluster.psql("CREATE DATABASE geo", db="postgres")
    conn = cluster.connect(db="geo")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION zonegate")
    cur.execute("CREATE EXTENSION postgis")
    t0 = time.time()
    cur.execute("SELECT zonegate.import_geojson(%s::jsonb, 'country', NULL, 'zid')", (json.dumps(fc),))
    assert cur.fetchone()[0] == len(fc["features"])
    cur.execute("CREATE TABLE pg_countries (id bigint PRIMARY KEY, geom geometry(Geometry, 4326) NOT NULL)")
    for f in fc["features"]:
        cur.execute("INSERT INTO pg_countries VALUES (%s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
                    (f["properties"]["zid"], json.dumps(f["geometry"])))
    cur.execute("CREATE INDEX ON pg_countries USING gist (geom)")
    cur.execute("ANALYZE pg_countries")
    print("loaded %d countries in %.1f s" % (len(fc["features"]), time.time() - t0))
    yield cur, fc
    conn.close()


def load_points(cur, points):
    cur.execute("DROP TABLE IF EXISTS pts")
    cur.execute("CREATE TEMP TABLE pts (n int, lon float8, lat float8)")
    args = ",".join(cur.mogrify("(%s,%s,%s)", (i, lon, lat)).decode() for i, (lon, lat) in enumerate(points))
    cur.execute("INSERT INTO pts VALUES " + args)


def disagreements(cur):
    cur.execute("""
        SELECT p.n, p.lon, p.lat, zonegate.zone_at(p.lon, p.lat),
               (SELECT c.id FROM pg_countries c
                WHERE ST_Covers(c.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
                ORDER BY c.id LIMIT 1)
        FROM pts p""")
    rows = cur.fetchall()
    bad = [r for r in rows if r[3] != r[4]]
    return rows, bad


def test_random_points_agree_with_postgis(geo):
    cur, _ = geo
    rng = random.Random(42)
    load_points(cur, [(rng.uniform(-180, 180), rng.uniform(-90, 90)) for _ in range(100_000)])
    rows, bad = disagreements(cur)
    covered = sum(1 for r in rows if r[4] is not None)
    print("100,000 random points: %d in a country, %d disagreements" % (covered, len(bad)))
    assert covered > 20_000  # about a quarter of the globe is land
    assert bad == []


def test_vertex_points_agree_with_postgis(geo):
    cur, fc = geo
    rng = random.Random(7)
    vertices = []
    for f in fc["features"]:
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        for poly in polys:
            for ring in poly:
                vertices.extend(tuple(p[:2]) for p in ring)
    load_points(cur, rng.sample(vertices, 2000))
    rows, bad = disagreements(cur)
    covered = sum(1 for r in rows if r[4] is not None)
    print("2,000 vertex points: %d covered, %d disagreements" % (covered, len(bad)))
    # Nearly all are covered (boundary points count as inside); the exceptions are vertices of
    # Antarctica's ring that Natural Earth stores outside its own shell (an invalid polygon).
    assert covered > 1900
    assert bad == []


def test_batch_form_and_spatial_cache(geo):
    cur, _ = geo
    cur.execute("SELECT zonegate.zone_at(ARRAY(SELECT lon FROM pts ORDER BY n), ARRAY(SELECT lat FROM pts ORDER BY n))")
    batch = cur.fetchone()[0]
    cur.execute("SELECT zonegate.zone_at(lon, lat) FROM pts ORDER BY n")
    assert batch == [r[0] for r in cur.fetchall()]
    cur.execute("SELECT entries, bytes, last_rebuild_ms FROM zonegate.cache_stats() WHERE cache = 'spatial'")
    entries, nbytes, ms = cur.fetchone()
    print("spatial index: %d zones, %.1f MB, built in %.1f ms" % (entries, nbytes / 1e6, ms))
    assert entries > 200 and nbytes > 0
