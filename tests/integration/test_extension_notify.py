"""The extension's change notifications on channel zonegate_changes, as a proxy receives them
over a real LISTEN connection: which users a change names, "*" for zone and role changes and for
lists too long for one NOTIFY, nothing for rolled-back or empty changes, and every payload signed
(version, at, mac: docs/API.md, "Change notifications")."""
import json
import select
import time
import uuid

import pytest


@pytest.fixture
def db(cluster):
    conn = cluster.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE")
    cur.execute("INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES "
                "(1, NULL, 'A', 'A', 'province'), (11, 1, 'A1', 'A1', 'regency')")
    cur.execute("INSERT INTO zonegate.roles (name) VALUES ('staff')")
    cur.execute("INSERT INTO zonegate.users (user_id, role) VALUES ('u1', 'staff'), ('u2', 'staff')")
    yield conn
    conn.close()


@pytest.fixture
def listener(cluster):
    conn = cluster.connect()
    conn.autocommit = True
    conn.cursor().execute("LISTEN zonegate_changes")
    yield conn
    conn.close()


def drain(conn, timeout=20):
    """Every notification committed before this call, parsed. The listener notifies itself a
    sentinel and reads up to it: notifications arrive in commit order, so whatever was committed
    before is in front of it (no fixed time window)."""
    sentinel = {"sentinel": uuid.uuid4().hex}
    conn.cursor().execute("SELECT pg_notify('zonegate_changes', %s)", (json.dumps(sentinel),))
    out = []
    deadline = time.time() + timeout
    while True:
        conn.poll()
        while conn.notifies:
            n = conn.notifies.pop(0)
            assert n.channel == "zonegate_changes"
            payload = json.loads(n.payload)
            if payload == sentinel:
                return out
            out.append(payload)
        left = deadline - time.time()
        assert left > 0, "the sentinel notification never arrived"
        select.select([conn], [], [], left)


def test_grant_changes_name_the_users(db, listener):
    drain(listener)
    cur = db.cursor()
    cur.execute("INSERT INTO zonegate.user_zones VALUES ('u1', 1), ('u2', 11)")
    cur.execute("DELETE FROM zonegate.user_zones WHERE user_id = 'u1'")
    cur.execute("UPDATE zonegate.users SET email = 'x@example.org' WHERE user_id = 'u2'")
    got = drain(listener)
    assert [(n["table"], n["op"], n["users"]) for n in got] == [
        ("user_zones", "INSERT", ["u1", "u2"]),
        ("user_zones", "DELETE", ["u1"]),
        ("users", "UPDATE", ["u2"]),
    ]
    versions = [n["version"] for n in got]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert all(len(n["mac"]) == 64 and n["at"] > 0 for n in got)


def test_a_users_list_too_long_for_one_notify_says_star(db, listener):
    # 200 ids of 40 bytes do not fit in NOTIFY's 8000 bytes: before 0.6 the insert failed.
    drain(listener)
    db.cursor().execute("INSERT INTO zonegate.users (user_id, role) "
                        "SELECT 'user-' || md5(g::text) || '-abc', 'staff' FROM generate_series(1, 200) g")
    got = drain(listener)
    assert [(n["table"], n["op"], n["users"]) for n in got] == [("users", "INSERT", "*")]


def test_zone_and_role_changes_affect_everybody(db, listener):
    drain(listener)
    cur = db.cursor()
    cur.execute("UPDATE zonegate.zones SET name = 'Aa' WHERE id = 1")
    cur.execute("UPDATE zonegate.roles SET sees_all = true")
    cur.execute("TRUNCATE zonegate.user_zones")
    got = drain(listener)
    assert [(n["table"], n["op"], n["users"]) for n in got] == [
        ("zones", "UPDATE", "*"), ("roles", "UPDATE", "*"), ("user_zones", "TRUNCATE", "*")]


def test_big_changes_say_star_and_empty_or_rolled_back_ones_say_nothing(db, listener):
    drain(listener)
    cur = db.cursor()
    cur.execute("INSERT INTO zonegate.users (user_id, role) "
                "SELECT 'bulk' || g, 'staff' FROM generate_series(1, 300) g")
    cur.execute("UPDATE zonegate.users SET email = 'none' WHERE false")
    db.autocommit = False
    cur.execute("INSERT INTO zonegate.user_zones VALUES ('u1', 1)")
    db.rollback()
    db.autocommit = True
    got = drain(listener)
    assert [(n["table"], n["op"], n["users"]) for n in got] == [("users", "INSERT", "*")]


def test_notification_is_sent_at_commit_not_before(db, listener):
    drain(listener)
    db.autocommit = False
    cur = db.cursor()
    cur.execute("INSERT INTO zonegate.user_zones VALUES ('u2', 1)")
    assert drain(listener) == []
    db.commit()
    got = drain(listener)
    assert [n["users"] for n in got] == [["u2"]]
