#!/usr/bin/python3
"""zonegate's PostgREST-compatible /rpc against PostgREST's published load tests
(docs/BENCHMARKS.md, "PostgREST-compatible /rpc"). Not part of CI.

    postgrest_anchor_bench.py OUT_DIR [--proxy-bin PATH] [--quick]

PostgREST cannot be installed here, so its own figures are the anchor: the Supabase load tests
of PostgREST (github.com/supabase/benchmarks-archive, issue 2, 2020-10-23, k6 on another
instance against a t3a.nano, 2 vCPU): GETSingle (one Chinook artist by id) 2,068 req/s and
POSTSingle (insert one employee) 1,547 req/s. The same two shapes through zonegate's /rpc, on
this 2-core machine with the client, the proxy (workers 2, pool max 2) and Postgres sharing the
cores:

  get_single         GET  /rpc/artist?id=3 with Accept: application/vnd.pgrst.object+json
                     (STABLE SQL function, one row; uncached)
  get_single_cached  the same with cache.rpc.artist (depends_on: [api.artist], watched)
  post_single        POST /rpc/add_employee {"first_name":..,"last_name":..} (VOLATILE INSERT)

wrk -t1 -c32 for 8 s (--quick: 4 s) each, alternated over 3 rounds (--quick: 1); medians.
The ratio to the anchor crosses machines and years (a burstable t3a.nano with the load generator
elsewhere; PostgREST 7-era master): it is an order of magnitude, said so wherever it is quoted.

Results: OUT_DIR/postgrest_anchor.json and a summary on stdout.
"""
import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402

import proxy_bench as pb  # noqa: E402
import resilience_bench as rb  # noqa: E402
import zg  # noqa: E402

ANCHOR = {"get_single": 2067.9, "post_single": 1546.6}
FIXTURE = """
CREATE SCHEMA IF NOT EXISTS api;
CREATE TABLE api.artist(artist_id int PRIMARY KEY, name text NOT NULL);
INSERT INTO api.artist SELECT g, 'artist ' || g FROM generate_series(1, 275) g;
CREATE TABLE api.employee(employee_id bigserial PRIMARY KEY, first_name text NOT NULL,
                          last_name text NOT NULL, title text);
GRANT SELECT ON api.artist TO PUBLIC;
GRANT SELECT, INSERT ON api.employee TO PUBLIC;
GRANT USAGE ON SEQUENCE api.employee_employee_id_seq TO PUBLIC;
CREATE FUNCTION api.artist(id int) RETURNS SETOF api.artist LANGUAGE sql STABLE AS
  $$ SELECT * FROM api.artist WHERE artist_id = id $$;
CREATE FUNCTION api.add_employee(first_name text, last_name text) RETURNS bigint
  LANGUAGE sql VOLATILE AS
  $$ INSERT INTO api.employee(first_name, last_name) VALUES (first_name, last_name)
     RETURNING employee_id $$;
SELECT zonegate.watch_table('api.artist');
"""


def proxy_config(cluster, cached):
    cfg = yaml.safe_load(rb.proxy_config(cluster))
    cfg["rpc"] = {"schema": "api", "functions": ["artist", "add_employee"]}
    # PostgREST's runs failed no request; the adaptive concurrency limit would shed ~0.2% at
    # -c32 here (503, counted as failures), so it is off: every request is served.
    cfg["resilience"] = {"concurrency": {"enabled": False}}
    if cached:
        cfg["cache"] = {"rpc": {"artist": {"ttl": "1h", "depends_on": ["api.artist"]}}}
    return yaml.safe_dump(cfg)


def measure(p, shape, tok, secs):
    if shape == "post_single":
        os.environ["WRK_BODY"] = json.dumps({"first_name": "Ada", "last_name": "Lovelace"})
        return pb.run_wrk(p.port, 1, 32, secs, str(HERE / "wrk" / "post.lua"),
                          path="/rpc/add_employee", token=tok)
    return pb.run_wrk(p.port, 1, 32, secs, str(HERE / "wrk" / "object.lua"),
                      path="/rpc/artist?id=3", token=tok)


def run(proxy_bin, quick):
    if proxy_bin:
        zg.PROXY_BIN = Path(proxy_bin)
    secs, rounds = (4, 1) if quick else (8, 3)
    c = zg.Cluster(dbname="pgrstanchor")
    results = {"get_single": [], "get_single_cached": [], "post_single": []}
    details = []
    try:
        c.psql((ROOT / "tests" / "integration" / "api_fixture.sql").read_text())
        c.psql(FIXTURE)
        tok = rb.token("alice")
        order = list(results)
        for r in range(rounds):
            for shape in (order if r % 2 == 0 else order[::-1]):
                p = zg.Proxy(proxy_config(c, shape == "get_single_cached"), name="pgrst-" + shape)
                try:
                    p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=30)
                    st, hdrs, body = zg.http(p.port, "GET", "/rpc/artist?id=3",
                                             {"Authorization": "Bearer " + tok,
                                              "Accept": "application/vnd.pgrst.object+json"})
                    assert st == 200 and json.loads(body)["artist_id"] == 3, (st, body)
                    w = measure(p, shape, tok, secs)
                finally:
                    p.stop()
                if w["non2xx"] or w["socket_errors"]:
                    raise RuntimeError("%s: %d non-2xx, %d socket errors" %
                                       (shape, w["non2xx"], w["socket_errors"]))
                rec = {"shape": shape, "round": r, "rps": round(w["rps"]), "p50_us": w["p50_us"],
                       "p99_us": w["p99_us"]}
                details.append(rec)
                results[shape].append(w["rps"])
                pb.log("%s: %d req/s, p99 %.0f us" % (shape, w["rps"], w["p99_us"]))
        rows = int(c.psql("SELECT count(*) FROM api.employee"))
    finally:
        c.destroy()
    med = {k: round(pb.median(v)) for k, v in results.items()}
    return {
        "rounds": details,
        "rps_median": med,
        "anchor_rps": ANCHOR,
        "ratio_to_anchor": {
            "get_single": round(med["get_single"] / ANCHOR["get_single"], 1),
            "get_single_cached": round(med["get_single_cached"] / ANCHOR["get_single"], 1),
            "post_single": round(med["post_single"] / ANCHOR["post_single"], 1),
        },
        "employees_inserted": rows,
        "note": "anchor: PostgREST on a t3a.nano (2 vCPU), k6 elsewhere, 2020 "
                "(supabase/benchmarks-archive#2); ours: 2 shared cores, wrk on the same machine",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--proxy-bin")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    summary = run(a.proxy_bin, a.quick)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "postgrest_anchor.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("rps_median", "anchor_rps", "ratio_to_anchor",
                                              "employees_inserted")}, indent=2))


if __name__ == "__main__":
    main()
