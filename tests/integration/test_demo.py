"""`make demo`'s runner end to end: start, health through the address it advertises in
demo.env, the Natural Earth country layer and the point lookup, README's tour run line by line,
idempotent restart, and a stop that leaves no process behind. The demo tests share one demo
(module fixture); test_demo_start_health_stop stops it, so it comes last."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from zg import PROXY_BIN, ROOT, http, keep_server_log

DEMO = ROOT / "tests" / "lib" / "demo.sh"
LOAD_WORLD = ROOT / "sql" / "demo" / "load_world.sh"
INDONESIA = 1000000000360  # load_world.sh: 1,000,000,000,000 + ISO 3166-1 numeric


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_env(path):
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path("/proc/%d/stat" % pid).read_text().split()[2] != "Z"


class Demo:
    def __init__(self, tmp_path, env, out):
        self.tmp_path = tmp_path
        self.dir = tmp_path / "demo"
        self.env = env
        self.out = out
        self.demo_env = read_env(self.dir / "demo.env")
        self.port = int(self.demo_env["ZONEGATE_URL"].rsplit(":", 1)[1])
        # What a shell that sourced demo.env sees (psql and curl from PATH).
        self.shell_env = dict(os.environ, **self.demo_env)

    def psql(self, sql):
        r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           env=self.shell_env, capture_output=True, text=True)
        assert r.returncode == 0, sql + r.stderr
        return r.stdout.strip()

    def stop(self):
        return subprocess.run([str(DEMO), "stop"], env=self.env, capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def demo():
    # A directory the postgres user can enter, as a project checkout normally is.
    tmp_path = Path(tempfile.mkdtemp(prefix="zonegate-demo-test."))
    tmp_path.chmod(0o755)
    env = dict(os.environ, ZONEGATE_DEMO_DIR=str(tmp_path / "demo"), ZONEGATE_PORT=str(free_port()),
               ZONEGATE_PROXY_BIN=str(PROXY_BIN), ZONEGATE_DEMO_USERS="2000")
    out = subprocess.run([str(DEMO), "start"], env=env, capture_output=True, text=True, timeout=300)
    d = None
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        d = Demo(tmp_path, env, out)
        yield d
    finally:
        # test_demo_start_health_stop stops it and checks; this is for every other way out.
        subprocess.run([str(DEMO), "stop"], env=env, capture_output=True, text=True, timeout=60)
        pgdir_file = tmp_path / "demo" / "pgdir"
        if pgdir_file.exists():
            keep_server_log(Path(pgdir_file.read_text().strip()) / "server.log", "demo")
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_demo_country_layer_and_point_lookup(demo):
    """The Natural Earth countries sit above the Indonesian tree, and /v1/zones/at answers a
    point with its zone and path: Jakarta is Indonesia, Paris France, mid-ocean no zone."""
    assert demo.psql("SELECT count(*) FROM zonegate.zones WHERE level = 'country'") == "241"
    assert demo.psql("SELECT count(*) FROM zonegate.zones WHERE level = 'country' AND boundary IS NULL") == "0"
    assert demo.psql("SELECT id || ' ' || code || ' ' || name || ' ' || coalesce(parent_id::text, 'root') "
                     "FROM zonegate.zones WHERE code = 'ISO-360'") == "%d ISO-360 Indonesia root" % INDONESIA
    # Every Indonesian province hangs below Indonesia; no idn id is in the country id range.
    assert demo.psql("SELECT count(*) FILTER (WHERE parent_id = %d), count(*) FROM zonegate.zones "
                     "WHERE level = 'province'" % INDONESIA) == "38|38"
    assert demo.psql("SELECT max(id) < 10000000000 FROM zonegate.zones WHERE level <> 'country'") == "t"
    assert demo.psql("SELECT zonegate.zone_path(3201)") == "{%d,32,3201}" % INDONESIA

    user = {"Authorization": "Bearer " + demo.demo_env["ZONEGATE_USER_TOKEN"]}
    service = {"Authorization": "Bearer " + demo.demo_env["ZONEGATE_SERVICE_TOKEN"]}
    status, _, body = http(demo.port, "GET", "/v1/zones/at?lon=106.8&lat=-6.2", user)
    assert status == 200, body
    jakarta = json.loads(body)
    # Only the countries have boundaries, so the deepest covering zone is the country itself.
    assert (jakarta["id"], jakarta["code"], jakarta["name"], jakarta["level"]) == \
        (INDONESIA, "ISO-360", "Indonesia", "country")
    assert jakarta["path"] == [{"id": INDONESIA, "code": "ISO-360", "name": "Indonesia", "level": "country"}]
    assert (jakarta["lon"], jakarta["lat"]) == (106.8, -6.2)
    status, _, body = http(demo.port, "GET", "/v1/zones/at?lon=2.35&lat=48.85", service)
    assert status == 200, body
    paris = json.loads(body)
    assert (paris["name"], paris["code"], paris["level"]) == ("France", "ISO-250", "country")
    assert [p["name"] for p in paris["path"]] == ["France"]
    # Mid-Pacific: docs/API.md's 404 no_zone.
    status, _, body = http(demo.port, "GET", "/v1/zones/at?lon=-140&lat=-30", user)
    assert status == 404 and json.loads(body)["code"] == "no_zone", body
    # The route needs a token (any valid one), which is why the examples send one.
    assert http(demo.port, "GET", "/v1/zones/at?lon=106.8&lat=-6.2")[0] == 401


def readme_tour():
    """The commands of README's "A 60-second tour" block, backslash continuations joined, without
    `make demo` / `make demo-stop` and comments; a `# => JSON` comment is the answer the command
    before it shows."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## A 60-second tour\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("# => "):
            commands[-1]["expect"] = json.loads(line[len("# => "):])
        elif not line or line.startswith("#") or re.match(r"make demo(-stop)?(\s|$)", line):
            continue
        else:
            commands.append({"cmd": line})
    return commands


def test_readme_tour(demo):
    """Every line of README's tour runs against the demo (cwd the repo root, demo.env exported)
    and answers what the tour says: 2xx JSON from each plain curl, the shown answer where the
    tour shows one, a burst of 200s ending in 429s."""
    tour = readme_tour()
    assert len(tour) >= 8, tour
    assert any("/v1/zones/at?" in c["cmd"] and "expect" in c for c in tour), tour
    time.sleep(2.5)  # the per-user bucket (10/s, burst 20) refills after the other tests' requests
    kinds = []
    for c in tour:
        # The tour's demo.env is the default demo directory's; this demo lives elsewhere.
        cmd = c["cmd"].replace(".zonegate/", str(demo.dir) + "/")
        plain_curl = cmd.startswith("curl ") and not re.search(r"[|;&]\s|\s-[a-z]*[io]\b|-w ", cmd)
        if plain_curl:
            cmd += " -w '\\n%{http_code}'"
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, env=demo.shell_env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "%s -> %d %s %s" % (cmd, r.returncode, r.stdout, r.stderr)
        out = r.stdout
        if plain_curl:
            body, _, code = out.rpartition("\n")
            assert code.startswith("2"), cmd + " -> " + out
            answer = json.loads(body)
            if "expect" in c:
                assert answer == c["expect"], cmd + " -> " + body
            kinds.append("curl")
        elif "curl" in cmd and ("[1-" in cmd or cmd.startswith("for ")):  # the rate-limit burst
            codes = out.split()
            assert "200" in codes and "429" in codes and codes[0] == "200", cmd + " -> " + out
            kinds.append("burst")
        elif cmd.startswith("curl -si"):  # the headers after the burst: 429 or 200, with RateLimit
            assert re.search(r"^HTTP/\S+ (200|429)", out, re.M | re.I), cmd + " -> " + out
            assert re.search(r"^ratelimit-policy:", out, re.M | re.I), cmd + " -> " + out
            kinds.append("headers")
        elif cmd.startswith("psql "):
            assert out.strip(), cmd + " -> " + r.stderr
            kinds.append("psql")
        elif cmd.startswith("echo $ZONEGATE_URL"):
            assert out.strip() == demo.demo_env["ZONEGATE_URL"] + cmd.split("$ZONEGATE_URL", 1)[1]
            kinds.append("echo")
        else:
            kinds.append("other")
        assert "expect" not in c or plain_curl, "an answer shown for a command the test cannot check: " + cmd
    assert {"curl", "burst", "headers", "psql"} <= set(kinds), kinds


def test_demo_start_health_stop(demo):
    out = demo.out
    tmp_path = demo.tmp_path
    env = demo.env
    assert "zonegate demo is running" in out.stdout
    demo_env = demo.demo_env
    for key in ("ZONEGATE_URL", "ZONEGATE_CONFIG", "ZONEGATE_ADMIN_TOKEN", "ZONEGATE_SERVICE_TOKEN",
                "PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
        assert demo_env.get(key), key
    port = demo.port
    assert http(port, "GET", "/healthz")[0] == 200
    proxy_pid = int((tmp_path / "demo" / "proxy.pid").read_text())
    pgdir = Path((tmp_path / "demo" / "pgdir").read_text().strip())
    pg_pid = int((pgdir / "data" / "postmaster.pid").read_text().split()[0])
    psql_env = demo.shell_env
    try:
        # 241 Natural Earth countries + Indonesia's 91,599 zones; 2,000 users.
        assert demo.psql("SELECT (SELECT count(*) FROM zonegate.zones), "
                         "(SELECT count(*) FROM zonegate.users)") == "91840|2000"
        assert "91840 zones (241 Natural Earth countries" in out.stdout
        # The three psql examples the tour prints run and answer.
        examples = [l.strip()[len("psql -c "):] for l in out.stdout.splitlines()
                    if l.strip().startswith("psql -c ")]
        assert len(examples) == 3
        answers = []
        for ex in examples:
            r = subprocess.run(["bash", "-c", "psql -X -At -c " + ex], env=psql_env,
                               capture_output=True, text=True)
            assert r.returncode == 0, ex + r.stderr
            answers.append(r.stdout.strip())
        assert json.loads(answers[0])["role"] == "regency_supervisor"
        # The curl examples: each answers 200 with the tokens demo.env provides.
        curls = [l.strip() for l in out.stdout.splitlines() if l.strip().startswith("curl -s")]
        assert len(curls) >= 6
        assert any("/v1/zones/at?lon=106.8&lat=-6.2" in c for c in curls), curls
        time.sleep(2.5)  # the per-user bucket refills after the tour's burst
        for ex in curls:
            r = subprocess.run(["bash", "-c", ex + " -o /dev/null -w '%{http_code}'"], env=psql_env,
                               capture_output=True, text=True)
            assert r.stdout == "200", ex + " -> " + r.stdout + r.stderr
        # The demo's rate limit on /v1/me/* (README's tour): a burst of 25 ends in 429.
        time.sleep(2.5)
        auth = {"Authorization": "Bearer " + demo_env["ZONEGATE_USER_TOKEN"]}
        burst = [http(port, "GET", "/v1/me/context", auth) for _ in range(25)]
        codes = [b[0] for b in burst]
        assert 429 in codes and codes[0] == 200, codes
        last = burst[codes.index(429)][1]
        assert int(last["retry-after"]) >= 1 and last["ratelimit-policy"] == '"me";q=10;w=1'
        assert last["ratelimit"].startswith('"me";r=0;t=')
        for key in ("ZONEGATE_ADMIN_TOKEN", "ZONEGATE_SERVICE_TOKEN", "ZONEGATE_USER_TOKEN"):
            assert len(demo_env[key]) > 16, key
        assert int(answers[1]) > 0
        assert answers[2].splitlines()[-1] == "t|f"
        # A second start finds everything running and changes nothing (the country layer
        # included: no second load).
        again = subprocess.run([str(DEMO), "start"], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout
        assert "loading" not in again.stdout, again.stdout
        assert int((tmp_path / "demo" / "proxy.pid").read_text()) == proxy_pid
    finally:
        stop = demo.stop()
    assert stop.returncode == 0, stop.stderr
    assert not alive(proxy_pid)
    assert not alive(pg_pid)
    assert pgdir.is_relative_to(tmp_path)  # project-local, not a fallback directory


def run_generate_users(cluster, db, *variables):
    env = dict(os.environ)
    env.update(cluster.env)
    env["PGDATABASE"] = db
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for v in variables:
        args += ["-v", v]
    args += ["-f", str(ROOT / "sql" / "demo" / "generate_users.sql")]
    return subprocess.run(args, capture_output=True, text=True, env=env)


def test_generate_users_id_styles(cluster):
    """generate_users.sql makes the same organisation with UUID or numeric ids (the benchmarks'
    ids=number), and refuses any other id style without adding a user."""
    zones = ("INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES "
             "(1, NULL, '1', 'P1', 'province'), (2, NULL, '2', 'P2', 'province'), "
             "(11, 1, '1.1', 'R11', 'regency'), (21, 2, '2.1', 'R21', 'regency'), "
             "(111, 11, '1.1.1', 'D111', 'district'), (112, 11, '1.1.2', 'D112', 'district'), "
             "(211, 21, '2.1.1', 'D211', 'district')")
    dbs = {"uuid": "gen_uuid", "number": "gen_number", "bogus": "gen_bogus"}
    for db in dbs.values():
        cluster.psql("CREATE DATABASE %s" % db, db="postgres")
        cluster.psql("CREATE EXTENSION zonegate", db=db)
        cluster.psql(zones, db=db)
    try:
        for style in ("uuid", "number"):
            out = run_generate_users(cluster, dbs[style], "users=300", "seed=7", "ids=" + style)
            assert out.returncode == 0, out.stderr
        # The same people, roles, activity and grants; only the ids differ.
        q = ("SELECT %s, u.role, u.active, coalesce(string_agg(g.zone_id::text, ',' ORDER BY "
             "g.zone_id), '') FROM zonegate.users u LEFT JOIN zonegate.user_zones g USING (user_id) "
             "GROUP BY 1, 2, 3 ORDER BY 1")
        by_number = cluster.psql(q % "u.user_id::int", db=dbs["number"]).splitlines()
        by_email = cluster.psql(q % "substring(u.email from 'user([0-9]+)@')::int",
                                db=dbs["uuid"]).splitlines()
        assert len(by_number) == 300
        assert by_number == by_email
        assert by_number[0].startswith("1|admin|t|")
        uid = cluster.psql("SELECT user_id FROM zonegate.users WHERE email = 'user5@demo.example.org'",
                           db=dbs["uuid"])
        assert len(uid) == 36 and uid.count("-") == 4
        ctx = json.loads(cluster.psql("SELECT zonegate.user_context('1')", db=dbs["number"]))
        assert ctx["user_id"] == "1" and ctx["sees_all"] is True

        bad = run_generate_users(cluster, dbs["bogus"], "users=300", "ids=bogus")
        assert bad.returncode != 0
        assert 'ids must be uuid or number, not "bogus"' in bad.stderr
        assert cluster.psql("SELECT count(*) FROM zonegate.users", db=dbs["bogus"]) == "0"
    finally:
        for db in dbs.values():
            cluster.psql("DROP DATABASE IF EXISTS %s" % db, db="postgres")


def test_load_world_skips_bad_features_and_reparents(cluster, tmp_path):
    """load_world.sh on a small TopoJSON: features without a polygonal, non-empty geometry and
    a boundary zonegate refuses are skipped and counted, not fatal; an ISO code shared by two
    units stays with the larger one; the Indonesian provinces (idn-area-data's, only those) get
    Indonesia as parent; a second load leaves every row as it was."""
    arcs = [[[106, -7], [107, -7], [107, -6], [106, -6], [106, -7]],  # around Jakarta
            [[120, -10], [121, -10], [121, -9], [120, -10]],          # a small unit sharing 360
            [[20, 42], [21, 42], [21, 43], [20, 42]],                 # no ISO code
            [[200, 0], [201, 0], [201, 1], [200, 0]]]                 # longitude out of range
    geometries = [
        {"type": "Polygon", "id": "360", "properties": {"name": "Indonesia"}, "arcs": [[0]]},
        {"type": "Polygon", "id": "360", "properties": {"name": "Small Isle"}, "arcs": [[1]]},
        {"type": "Polygon", "properties": {"name": "Kosovo"}, "arcs": [[2]]},
        {"type": "Polygon", "id": "999", "properties": {"name": "Faraway"}, "arcs": [[3]]},
        {"type": None, "id": "001", "properties": {"name": "Nothing"}},
        {"type": "Point", "id": "002", "properties": {"name": "Dot"}, "coordinates": [1, 2]},
        {"type": "MultiPolygon", "id": "003", "properties": {"name": "Empty"}, "arcs": []},
    ]
    atlas = tmp_path / "countries-test.json"
    atlas.write_text(json.dumps({"type": "Topology", "arcs": arcs, "objects": {
        "countries": {"type": "GeometryCollection", "geometries": geometries}}}))
    db = "world_load"
    cluster.psql("CREATE DATABASE %s" % db, db="postgres")
    try:
        cluster.psql("CREATE EXTENSION zonegate", db=db)
        cluster.psql("INSERT INTO zonegate.zones (id, parent_id, code, name, level, attributes) VALUES "
                     "(31, NULL, '31', 'DKI Jakarta', 'province', '{\"source\": \"idn-area-data\"}'), "
                     "(3171, 31, '31.71', 'Kota Jakarta Selatan', 'regency', '{\"source\": \"idn-area-data\"}'), "
                     "(7, NULL, 'other', 'Another province', 'province', '{}')", db=db)
        env = dict(os.environ, **cluster.env)
        env.update(PGDATABASE=db, PGOPTIONS="-c client_min_messages=warning")
        for attempt in (1, 2):
            r = subprocess.run([str(LOAD_WORLD), str(atlas)], env=env, capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            assert r.stdout.startswith("load_world: 3 country zones, 4 skipped ("), r.stdout
            for reason in ("Nothing: geometry null", "Dot: geometry Point", "Empty: empty MultiPolygon",
                           "Faraway: invalid boundary for zone 1000000000999"):
                assert reason in r.stdout, r.stdout
            assert "1 of 1 Indonesian provinces below Indonesia; 6 zones in all" in r.stdout, r.stdout
            if attempt == 1:
                first = cluster.psql("SELECT string_agg(id || ' ' || code || ' ' || name || ' ' || "
                                     "coalesce(parent_id::text, '-') || ' ' || attributes::text, E'\\n' "
                                     "ORDER BY id) FROM zonegate.zones", db=db)
        rows = cluster.psql("SELECT string_agg(id || ' ' || code || ' ' || name || ' ' || "
                            "coalesce(parent_id::text, '-') || ' ' || attributes::text, E'\\n' "
                            "ORDER BY id) FROM zonegate.zones", db=db)
        assert rows == first
        lines = rows.splitlines()
        assert lines[0] == "7 other Another province - {}"
        assert lines[1].startswith("31 31 DKI Jakarta %d " % INDONESIA)
        assert lines[3].startswith('%d ISO-360 Indonesia - {"atlas": "countries-test.json", '
                                   '"source": "natural-earth", "iso_numeric": "360"}' % INDONESIA)
        assert sorted(l.split(" ")[1] for l in lines[4:]) == ["NE-kosovo", "NE-small-isle"]
        assert all(1000001000000 <= int(l.split(" ")[0]) < 1000002000000 for l in lines[4:])
        assert cluster.psql("SELECT zonegate.zone_at(106.5, -6.5), zonegate.zone_at(0, 0) IS NULL, "
                            "zonegate.zone_path(3171)", db=db) == "%d|t|{%d,31,3171}" % (INDONESIA, INDONESIA)
    finally:
        cluster.psql("DROP DATABASE IF EXISTS %s" % db, db="postgres")
