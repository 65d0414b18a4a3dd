"""pg_dump / pg_restore of a database with the extension installed: the zone tree, roles, users
and grants come back (they are marked as configuration tables), and the restored database
answers the same contexts and RLS checks as the original. The key that signs notifications is
not in the dump: the restore's CREATE EXTENSION makes a new one."""
import os
import subprocess



def run(cluster, args):
    env = dict(os.environ, **cluster.env)
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    assert out.returncode == 0, " ".join(args) + "\n" + out.stdout + out.stderr
    return out.stdout


def test_dump_and_restore_keep_zones_users_and_answers(cluster, tmp_path):
    cluster.psql("CREATE DATABASE dumpsrc", db="postgres")
    cluster.psql("CREATE DATABASE dumpdst", db="postgres")
    try:
        cluster.psql("""
          CREATE EXTENSION zonegate;
          INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
            (1, NULL, 'A', 'Region A', 'province',
             '{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]]]}'),
            (11, 1, 'A1', 'A one', 'regency', NULL), (2, NULL, 'B', 'Region B', 'province', NULL);
          INSERT INTO zonegate.roles VALUES ('staff', '{read}', false), ('admin', '{}', true);
          INSERT INTO zonegate.users (user_id, email, role, attributes) VALUES
            ('u', 'u@example.org', 'staff', '{"team": "north"}'), ('a', NULL, 'admin', '{}');
          INSERT INTO zonegate.user_zones VALUES ('u', 1);""", db="dumpsrc")
        probe = ("SELECT zonegate.user_context('u') - 'cache_version', zonegate.visible_zones('a'), "
                 "zonegate.zone_at(5, 5), zonegate.can_access('u', 2)")
        before = cluster.psql(probe, db="dumpsrc")
        dump = tmp_path / "zonegate.dump"
        run(cluster, ["pg_dump", "-Fc", "-d", "dumpsrc", "-f", str(dump)])
        run(cluster, ["pg_restore", "--exit-on-error", "-d", "dumpdst", str(dump)])
        assert cluster.psql(probe, db="dumpdst") == before
        key = cluster.psql("SELECT zonegate.notify_key()", db="dumpsrc")
        assert len(key) == 64
        assert key not in run(cluster, ["pg_restore", "-f", "-", str(dump)])
        restored_key = cluster.psql("SELECT zonegate.notify_key()", db="dumpdst")
        assert len(restored_key) == 64 and restored_key != key
        assert cluster.psql("SELECT count(*) FROM zonegate.zones", db="dumpdst") == "3"
        # The restored database is a working install: a grant there is seen at once.
        cluster.psql("INSERT INTO zonegate.user_zones VALUES ('u', 2)", db="dumpdst")
        assert cluster.psql("SELECT zonegate.can_access('u', 2)", db="dumpdst") == "t"
        assert cluster.psql("SELECT zonegate.can_access('u', 2)", db="dumpsrc") == "f"
    finally:
        cluster.psql("DROP DATABASE IF EXISTS dumpsrc", db="postgres")
        cluster.psql("DROP DATABASE IF EXISTS dumpdst", db="postgres")
