"""Beyond one machine (docs/DEPLOYMENT.md, "Topologies"): the extension on a streaming hot standby
invalidates its per-backend cache from replayed WAL (a grant committed on the primary changes
user_context() in a replica session that had it cached), and any number of proxies stay coherent
through NOTIFY (three proxies on one primary: a grant reaches all of them)."""
import json
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import Cluster, Replica, wait_for


@pytest.fixture(scope="module")
def primary():
    c = Cluster(dbname="scaleout")
    try:
        c.psql(Path(__file__).with_name("api_fixture.sql").read_text())
        yield c
    finally:
        c.destroy()


def grants_of(context):
    return sorted(g["id"] for g in (context or {}).get("grants", []))


def test_the_extension_on_a_standby_invalidates_from_replayed_wal(primary):
    replica = Replica(primary)
    try:
        replica.wait_caught_up()
        assert replica.psql("SELECT pg_is_in_recovery()") == "t"
        conn = replica.connect()
        conn.autocommit = True
        cur = conn.cursor()
        primary.psql("INSERT INTO zonegate.users(user_id, role) VALUES ('standby_u', 'staff') "
                     "ON CONFLICT DO NOTHING; DELETE FROM zonegate.user_zones WHERE user_id = 'standby_u'")
        replica.wait_caught_up()
        cur.execute("SELECT zonegate.user_context('standby_u')")
        before = cur.fetchone()[0]
        assert before is not None and grants_of(before) == []
        # The same backend has the user cached now (cache_stats counts it).
        cur.execute("SELECT sum(entries) FROM zonegate.cache_stats()")
        assert cur.fetchone()[0] >= 1
        zone = int(primary.psql("SELECT min(id) FROM zonegate.zones"))
        primary.psql("INSERT INTO zonegate.user_zones VALUES ('standby_u', %d)" % zone)
        replica.wait_caught_up()
        # Replay delivered the relcache invalidation the primary's trigger queued at commit: the
        # same session, next statement, sees the grant.
        cur.execute("SELECT zonegate.user_context('standby_u')")
        after = cur.fetchone()[0]
        assert grants_of(after) == [zone], after
        cur.execute("SELECT zonegate.can_access('standby_u', %s)", (zone,))
        assert cur.fetchone()[0] is True
        primary.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'standby_u'")
        replica.wait_caught_up()
        cur.execute("SELECT zonegate.can_access('standby_u', %s)", (zone,))
        assert cur.fetchone()[0] is False
        # Taken up by the relcache callback (replayed invalidation messages), not by chance.
        cur.execute("SELECT sum(invalidations) FROM zonegate.cache_stats()")
        assert cur.fetchone()[0] >= 2
        conn.close()
    finally:
        replica.destroy()


def test_three_proxies_are_coherent_through_notify(primary):
    proxies = [start_proxy(primary, "coherent-%d" % i, server={"workers": 1}) for i in range(3)]
    try:
        primary.psql("INSERT INTO zonegate.users(user_id, role) VALUES ('coherent_u', 'staff') "
                     "ON CONFLICT DO NOTHING; DELETE FROM zonegate.user_zones WHERE user_id = 'coherent_u'")
        tok = token("coherent_u")
        for p in proxies:
            wait_for(lambda p=p: call(p.port, "GET", "/v1/me/context", tok)[0] == 200, what="context")
            s, h, body = call(p.port, "GET", "/v1/me/context", tok)
            assert h["x-cache"] == "HIT" and grants_of(body) == [], (h, body)
        zone = int(primary.psql("SELECT min(id) FROM zonegate.zones"))
        primary.psql("INSERT INTO zonegate.user_zones VALUES ('coherent_u', %d)" % zone)
        # Each proxy drops its entry on the signed notification and answers the new grant.
        for p in proxies:
            wait_for(lambda p=p: grants_of(call(p.port, "GET", "/v1/me/context", tok)[2]) == [zone],
                     timeout=10, what="the grant at proxy %s" % p.name)
        for p in proxies:
            stats = call(p.admin_port, "GET", "/admin/cache/stats",
                         __import__("test_api").ADMIN)[2]
            assert stats["notifications"] >= 1 and stats["invalidated"] >= 1, stats
    finally:
        for p in proxies:
            stop_proxy(p)
