"""Read replicas (docs/ARCHITECTURE.md, "Replicas"): a primary and a streaming hot standby
(pg_basebackup -R) on loopback, proxies configured with both. Reads go to the replica; with the
replica stopped under a steady client they go to the primary with no error, and come back when
it does; with replay paused the lag check skips it, a subject's read after its own write never
sees the old value, and the cache never stores what a lagging replica answers after an
invalidation."""
import json
import threading
import time
from pathlib import Path

import pytest

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import Cluster, Replica, http, wait_for

FIXTURE = """
CREATE TABLE IF NOT EXISTS api.notes(sub text PRIMARY KEY, n int NOT NULL);
GRANT SELECT, INSERT, UPDATE ON api.notes TO PUBLIC;
CREATE OR REPLACE FUNCTION api.set_note(n int) RETURNS int LANGUAGE sql VOLATILE AS $$
  INSERT INTO api.notes VALUES (zonegate.current_user_id(), n)
  ON CONFLICT (sub) DO UPDATE SET n = EXCLUDED.n RETURNING n $$;
CREATE OR REPLACE FUNCTION api.my_note() RETURNS int LANGUAGE sql STABLE AS $$
  SELECT n FROM api.notes WHERE sub = zonegate.current_user_id() $$;
CREATE OR REPLACE FUNCTION api.in_recovery() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT pg_is_in_recovery() $$;
"""
FUNCTIONS = ["add", "set_note", "my_note", "in_recovery"]


@pytest.fixture(scope="module")
def pair():
    primary = Cluster(dbname="replicas")
    replica = None
    try:
        primary.psql(Path(__file__).with_name("api_fixture.sql").read_text())
        primary.psql(FIXTURE)
        replica = Replica(primary)
        replica.wait_caught_up()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def replica_proxy(primary, replica, name, **routing):
    conninfo = "host=%s port=%d dbname=%s user=postgres" % (replica.host, replica.port, primary.dbname)
    p = start_proxy(primary, name, server={"workers": 1},
                    rpc={"schema": "api", "functions": FUNCTIONS},
                    database={"conninfo": primary.conninfo, "pool": {"min": 1, "max": 2},
                              "replicas": [{"name": "r1", "conninfo": conninfo,
                                            "pool": {"min": 1, "max": 2,
                                                     "reconnect_max": "300ms"}}],
                              "routing": dict({"check_interval": "100ms"}, **routing)},
                    resilience={"breaker": {"open": "200ms", "open_max": "500ms"}})
    wait_for(lambda: health_replica(p)["eligible"], timeout=20, what="the replica eligible")
    return p


def health_replica(p):
    h = json.loads(http(p.admin_port, "GET", "/health")[2])
    return [u for u in h["postgres"] if u["upstream"] == "r1"][0]


def reads(p):
    return health_replica(p)["reads"]


def test_reads_go_to_the_replica_writes_to_the_primary(pair):
    primary, replica = pair
    p = replica_proxy(primary, replica, "rep-route")
    try:
        tok = token("route-u")
        r0 = reads(p)
        # A STABLE function over GET: a read, served by the standby (it says so itself).
        s, h, body = call(p.port, "GET", "/rpc/in_recovery", tok)
        assert s == 200 and body is True, body
        assert reads(p) == r0 + 1
        # A VOLATILE function: the primary.
        s, _, body = call(p.port, "POST", "/rpc/set_note", tok, {"n": 5})
        assert s == 200 and body == 5
        assert reads(p) == r0 + 1
        # The replica's sessions are the proxy's (pg_stat_activity on the standby).
        apps = replica.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'zonegate-proxy'")
        assert int(apps) >= 1
        # /v1 reads too.
        assert call(p.port, "GET", "/v1/me/context", token("alice"))[0] == 200
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        assert 'zonegate_replica_up{upstream="r1"} 1' in text
        assert 'zonegate_replica_reads_total{upstream="r1"}' in text
        # The public /health says which replica without its error text.
        pub = [u for u in json.loads(http(p.port, "GET", "/health")[2])["postgres"] if u["upstream"] == "r1"][0]
        assert pub["eligible"] is True
    finally:
        stop_proxy(p)


def test_replica_stopped_under_load_then_back(pair):
    primary, replica = pair
    p = replica_proxy(primary, replica, "rep-outage")
    tok = token("outage-u")
    statuses, stop = {}, threading.Event()

    def steady():
        while not stop.is_set():
            s = call(p.port, "GET", "/rpc/add?a=1&b=2", tok)[0]
            statuses[s] = statuses.get(s, 0) + 1

    th = threading.Thread(target=steady)
    th.start()
    try:
        time.sleep(0.5)
        replica.stop()
        wait_for(lambda: not health_replica(p)["eligible"], timeout=20, what="the replica skipped")
        time.sleep(1.0)
        replica.start()
        wait_for(lambda: health_replica(p)["eligible"], timeout=30, what="the replica back")
        r0 = reads(p)
        wait_for(lambda: reads(p) > r0 + 5, timeout=20, what="reads on the replica again")
    finally:
        stop.set()
        th.join()
        stop_proxy(p)
    assert set(statuses) == {200}, statuses  # 0 errors: its failed reads were answered by the primary
    assert statuses[200] > 20


def test_paused_replay_is_skipped_and_read_your_writes(pair):
    primary, replica = pair
    # max_lag 0: any lag skips the replica.
    p = replica_proxy(primary, replica, "rep-pause", max_lag="0B")
    try:
        replica.psql("SELECT pg_wal_replay_pause()")
        primary.psql("INSERT INTO api.notes VALUES ('lag-probe', 1) ON CONFLICT (sub) DO UPDATE SET n = api.notes.n + 1")
        wait_for(lambda: health_replica(p)["reason"] == "lagging", timeout=20, what="the lag seen")
        r0 = reads(p)
        assert call(p.port, "GET", "/rpc/in_recovery", token("pause-u"))[2] is False  # the primary
        assert reads(p) == r0
    finally:
        replica.psql("SELECT pg_wal_replay_resume()")
        replica.wait_caught_up()
        stop_proxy(p)


def test_a_subjects_read_after_its_write_never_sees_the_old_value(pair):
    primary, replica = pair
    # Lag allowed (1 GiB, 1 h): the replica stays eligible while paused; only read-your-writes
    # keeps the writer's reads off it.
    p = replica_proxy(primary, replica, "rep-ryw", max_lag="1GiB", max_lag_time="1h")
    try:
        writer, other = token("ryw-writer"), token("ryw-other")
        assert call(p.port, "POST", "/rpc/set_note", writer, {"n": 1})[2] == 1
        replica.wait_caught_up()
        replica.psql("SELECT pg_wal_replay_pause()")
        for n in range(2, 7):
            assert call(p.port, "POST", "/rpc/set_note", writer, {"n": n})[2] == n
            # At once after its own write: never the old value.
            assert call(p.port, "GET", "/rpc/my_note", writer)[2] == n
        # Someone else's reads still go to the (lagging, allowed) replica.
        r0 = reads(p)
        assert call(p.port, "GET", "/rpc/my_note", other)[0] == 200
        assert reads(p) == r0 + 1
        # The writer's reads stay off the replica while it has not replayed the write.
        r1 = reads(p)
        assert call(p.port, "GET", "/rpc/my_note", writer)[2] == 6
        assert reads(p) == r1
        replica.psql("SELECT pg_wal_replay_resume()")
        replica.wait_caught_up()
        # Once replayed past the write, the replica may serve the writer again.
        wait_for(lambda: (call(p.port, "GET", "/rpc/my_note", writer)[2] == 6 and reads(p) > r1),
                 timeout=20, what="the writer back on the replica")
    finally:
        replica.psql("SELECT pg_wal_replay_resume()")
        stop_proxy(p)


def test_a_lagging_replica_answer_after_an_invalidation_is_not_cached(pair):
    primary, replica = pair
    p = replica_proxy(primary, replica, "rep-cache", max_lag="1GiB", max_lag_time="1h")
    try:
        primary.psql("INSERT INTO zonegate.users(user_id, role) VALUES ('lagcache', 'staff') "
                     "ON CONFLICT DO NOTHING; DELETE FROM zonegate.user_zones WHERE user_id = 'lagcache'")
        replica.wait_caught_up()
        tok = token("lagcache")
        wait_for(lambda: call(p.port, "GET", "/v1/me/context", tok)[1].get("x-cache") == "HIT",
                 what="the context cached")
        replica.psql("SELECT pg_wal_replay_pause()")
        zone = int(primary.psql("SELECT min(id) FROM zonegate.zones"))
        n0 = call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)[2]["notifications"]
        primary.psql("INSERT INTO zonegate.user_zones VALUES ('lagcache', %d)" % zone)
        wait_for(lambda: call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)[2]["notifications"] > n0,
                 what="the invalidation")
        # The replica (eligible, lagging) answers the old context: served, never stored.
        text0 = http(p.admin_port, "GET", "/metrics")[2].decode()
        for _ in range(3):
            s, h, body = call(p.port, "GET", "/v1/me/context", tok)
            assert s == 200 and h.get("x-cache") != "HIT", h
        text = http(p.admin_port, "GET", "/metrics")[2].decode()

        def not_stored(t):
            return int(float([l for l in t.splitlines()
                              if l.startswith("zonegate_cache_replica_not_stored_total ")][0].split()[1]))
        assert not_stored(text) >= not_stored(text0) + 3
        replica.psql("SELECT pg_wal_replay_resume()")
        replica.wait_caught_up()
        # Caught up: the new grant, and now it is cached.
        wait_for(lambda: [g["id"] for g in call(p.port, "GET", "/v1/me/context", tok)[2]["grants"]] == [zone],
                 what="the grant")
        wait_for(lambda: call(p.port, "GET", "/v1/me/context", tok)[1].get("x-cache") == "HIT",
                 what="cached again")
        assert [g["id"] for g in call(p.port, "GET", "/v1/me/context", tok)[2]["grants"]] == [zone]
    finally:
        replica.psql("SELECT pg_wal_replay_resume()")
        stop_proxy(p)
