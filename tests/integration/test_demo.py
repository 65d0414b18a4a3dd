"""`make demo`'s runner end to end: start, health through the address it advertises in
demo.env, idempotent restart, and a stop that leaves no process behind."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from zg import PROXY_BIN, ROOT, http, keep_server_log

DEMO = ROOT / "tests" / "lib" / "demo.sh"


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


def test_demo_start_health_stop():
    # A directory the postgres user can enter, as a project checkout normally is.
    tmp_path = Path(tempfile.mkdtemp(prefix="zonegate-demo-test."))
    tmp_path.chmod(0o755)
    env = dict(os.environ, ZONEGATE_DEMO_DIR=str(tmp_path / "demo"), ZONEGATE_PORT=str(free_port()),
               ZONEGATE_PROXY_BIN=str(PROXY_BIN), ZONEGATE_DEMO_USERS="2000")
    try:
        out = subprocess.run([str(DEMO), "start"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "zonegate demo is running" in out.stdout
        demo_env = read_env(tmp_path / "demo" / "demo.env")
        for key in ("ZONEGATE_URL", "ZONEGATE_CONFIG", "ZONEGATE_ADMIN_TOKEN", "ZONEGATE_SERVICE_TOKEN",
                    "PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
            assert demo_env.get(key), key
        port = int(demo_env["ZONEGATE_URL"].rsplit(":", 1)[1])
        assert http(port, "GET", "/healthz")[0] == 200
        proxy_pid = int((tmp_path / "demo" / "proxy.pid").read_text())
        pgdir = Path((tmp_path / "demo" / "pgdir").read_text().strip())
        pg_pid = int((pgdir / "data" / "postmaster.pid").read_text().split()[0])
        psql_env = dict(os.environ, **demo_env)
        counts = subprocess.run(["psql", "-X", "-At", "-c",
                                 "SELECT (SELECT count(*) FROM zonegate.zones), "
                                 "(SELECT count(*) FROM zonegate.users)"],
                                env=psql_env, capture_output=True, text=True)
        assert counts.stdout.strip() == "91599|2000", counts.stdout + counts.stderr
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
        assert len(curls) >= 5
        for ex in curls:
            r = subprocess.run(["bash", "-c", ex + " -o /dev/null -w '%{http_code}'"], env=psql_env,
                               capture_output=True, text=True)
            assert r.stdout == "200", ex + " -> " + r.stdout + r.stderr
        # The demo's rate limit on /v1/me/* (README's tour): a burst of 25 ends in 429.
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
        # A second start finds everything running and changes nothing.
        again = subprocess.run([str(DEMO), "start"], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout
        assert int((tmp_path / "demo" / "proxy.pid").read_text()) == proxy_pid
    finally:
        stop = subprocess.run([str(DEMO), "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not alive(proxy_pid)
    assert not alive(pg_pid)
    assert pgdir.is_relative_to(tmp_path)  # project-local, not a fallback directory
    keep_server_log(pgdir / "server.log", "demo")
    shutil.rmtree(tmp_path)


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
