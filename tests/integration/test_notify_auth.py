"""Signed change notifications against a real Postgres and the real proxy (docs/SECURITY.md, "The
change channel"): NOTIFY needs no privilege, so what a plain role sends on zonegate_changes (a
flush, a user invalidation, 'reload schema', a forged or malformed MAC, a replayed genuine
payload) leaves the cache and the /rpc catalog alone and is counted; real changes, key rotation
and zonegate.reload_schema() still work; a login that cannot read the key gets what
cache.notify_auth says (required: the cache is bypassed and /health says why; optional: unsigned
notifications as before 0.6); bursts of flushes are coalesced."""
import json
import select
import time
from pathlib import Path

import psycopg2
import pytest

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import get_json, http, wait_for

PROXY_ROLE = "zg_na_proxy"    # the proxy's login: a member of zonegate_authenticator
FORGER = "zg_na_forger"       # any login at all: no grants
OUTSIDER = "zg_na_outsider"   # a proxy login outside zonegate_authenticator


@pytest.fixture(scope="module")
def roles(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("""
      DROP ROLE IF EXISTS zg_na_proxy; DROP ROLE IF EXISTS zg_na_forger;
      DROP ROLE IF EXISTS zg_na_outsider;
      CREATE ROLE zg_na_proxy LOGIN IN ROLE zonegate_authenticator;
      CREATE ROLE zg_na_forger LOGIN;
      CREATE ROLE zg_na_outsider LOGIN;
      GRANT USAGE ON SCHEMA api TO zg_na_proxy, zg_na_outsider;
      -- What /v1/me/context needs, granted directly: everything but the key.
      GRANT EXECUTE ON FUNCTION zonegate.user_context_json(text) TO zg_na_outsider;""")
    yield
    cluster.psql("DROP OWNED BY zg_na_proxy, zg_na_forger, zg_na_outsider; "
                 "DROP ROLE zg_na_proxy, zg_na_forger, zg_na_outsider")


def login(cluster, role):
    return {"conninfo": cluster.conninfo.replace("user=postgres", "user=" + role),
            "pool": {"min": 1, "max": 2}}


@pytest.fixture(scope="module")
def np(cluster, roles):
    p = start_proxy(cluster, "notify-auth", database=login(cluster, PROXY_ROLE),
                    cache={"notify_auth": "required"}, log={"level": "debug"})
    wait_for(lambda: listen(p)["auth_state"] == "authenticated", what="the key")
    yield p
    stop_proxy(p)


def connect(cluster, role="postgres"):
    conn = psycopg2.connect(host=cluster.host, port=cluster.port, user=role, dbname=cluster.dbname)
    conn.autocommit = True
    return conn


def listen(p):
    return get_json(p.port, "/health")[2]["listen"]


def stats(p):
    status, _, body = call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)
    assert status == 200
    return body


def outcome(p, user="alice"):
    status, h, body = call(p.port, "GET", "/v1/me/context", token(user))
    assert status == 200, body
    return h["x-cache"], sorted(g["id"] for g in body["grants"])


def warm(p, *users):
    for u in users:
        outcome(p, u)
        assert outcome(p, u)[0] == "HIT"


def settle(p, cluster):
    """Waits until the proxy has processed every notification sent before: a genuine change
    that names nobody cached is committed last, and notifications arrive in commit order."""
    n = stats(p)["notifications"]
    cluster.psql("UPDATE zonegate.users SET display_name = coalesce(display_name, '') || '.' "
                 "WHERE user_id = 'root'")
    wait_for(lambda: stats(p)["notifications"] > n, what="the sentinel notification")


def forge(cluster, *payloads, role=FORGER):
    conn = connect(cluster, role)
    try:
        cur = conn.cursor()
        for payload in payloads:
            cur.execute("SELECT pg_notify('zonegate_changes', %s)", (payload,))
    finally:
        conn.close()


def capture(cluster, sql):
    """Runs sql and returns the zonegate_changes payloads it made, as a LISTEN connection of
    psycopg2 receives them (what an attacker with a LISTEN connection captures)."""
    conn = connect(cluster)
    try:
        conn.cursor().execute("LISTEN zonegate_changes")
        cluster.psql(sql)
        got = []
        deadline = time.time() + 20
        while not got:
            assert time.time() < deadline, "no notification for " + sql
            select.select([conn], [], [], 0.2)
            conn.poll()
            while conn.notifies:
                got.append(conn.notifies.pop(0).payload)
        return got
    finally:
        conn.close()


def test_health_and_metrics_say_notifications_are_authenticated(np):
    l = listen(np)
    assert l["up"] is True and l["authenticated"] is True and l["notify_auth"] == "required"
    assert l["auth_error"] is None
    assert set(l["rejected"]) == {"unsigned", "bad_mac", "replay", "malformed"}
    metrics = http(np.admin_port, "GET", "/metrics")[2].decode()
    assert "zonegate_notify_authenticated 1" in metrics
    for reason in ("unsigned", "bad_mac", "replay", "malformed"):
        assert 'zonegate_notify_rejected_total{reason="%s"}' % reason in metrics
    assert "zonegate_cache_flushes_coalesced_total" in metrics
    # Once every worker's pool has connected.
    wait_for(lambda: get_json(np.port, "/health")[2]["status"] == "ok", what="status ok")


def test_forged_notifications_drop_nothing_and_are_counted(np, cluster):
    warm(np, "alice", "bob")
    before, flushes = listen(np)["rejected"], stats(np)["flushes"]
    loads = len(np.logs("/rpc catalog loaded"))
    fake_mac = json.dumps({"users": "*", "version": 10**9, "at": 1})[:-1] + ',"mac":"%s"}' % ("0" * 64)
    forge(cluster,
          json.dumps({"users": "*"}),
          json.dumps({"table": "*", "op": "FLUSH", "users": "*", "version": 10**9, "at": 1}),
          json.dumps({"table": "user_zones", "op": "DELETE", "users": ["alice"]}),
          "reload schema",
          fake_mac,
          '{"users":"*","mac":"not hex"}')
    settle(np, cluster)
    after = listen(np)["rejected"]
    assert after["unsigned"] - before["unsigned"] == 4
    assert after["bad_mac"] - before["bad_mac"] == 1
    assert after["malformed"] - before["malformed"] == 1
    assert outcome(np, "alice")[0] == "HIT" and outcome(np, "bob")[0] == "HIT"
    assert stats(np)["flushes"] == flushes
    assert len(np.logs("/rpc catalog loaded")) == loads
    warning = np.wait_for_log(lambda l: l.get("msg") == "zonegate_changes notification ignored")
    assert warning["level"] == "warn" and warning["reason"] in after


def test_a_replayed_genuine_payload_is_not_applied_again(np, cluster):
    # A real flush and a real invalidation of alice, captured on their way.
    n = stats(np)["notifications"]
    flush = capture(cluster, "SELECT zonegate.flush_caches()")
    grant = capture(cluster, "INSERT INTO zonegate.user_zones VALUES ('alice', 12)")
    wait_for(lambda: stats(np)["notifications"] >= n + 2, what="the genuine notifications")
    assert len(flush) == 1 and len(grant) == 1 and '"mac":"' in flush[0]
    assert outcome(np, "alice") == ("MISS", [11, 12, 21])
    warm(np, "alice", "bob")
    before, flushes = listen(np)["rejected"]["replay"], stats(np)["flushes"]
    # A flush loop from the captured payload, and the captured invalidation again.
    forge(cluster, *(flush * 20 + grant * 5))
    settle(np, cluster)
    assert listen(np)["rejected"]["replay"] - before == 25
    assert stats(np)["flushes"] == flushes
    assert outcome(np, "alice")[0] == "HIT" and outcome(np, "bob")[0] == "HIT"
    cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 12")
    wait_for(lambda: outcome(np, "alice")[1] == [11, 21], what="the revocation")


def test_a_real_grant_change_still_invalidates(np, cluster):
    warm(np, "alice", "bob")
    before = listen(np)["rejected"]
    cluster.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
    wait_for(lambda: outcome(np, "alice")[1] == [2, 11, 21], what="the grant")
    assert outcome(np, "bob")[0] == "HIT"  # bob was not named
    cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 2")
    wait_for(lambda: outcome(np, "alice")[1] == [11, 21], what="the revocation")
    assert listen(np)["rejected"] == before


def test_reload_schema_is_signed_and_plain_reload_schema_is_ignored(np, cluster):
    t = token("alice")
    assert call(np.port, "GET", "/rpc/late", t)[0] == 404
    cluster.psql("DROP FUNCTION IF EXISTS api.late(); "
                 "CREATE FUNCTION api.late() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'here' $$")
    # PostgREST's way, as a superuser even: unsigned, so ignored and counted.
    unsigned = listen(np)["rejected"]["unsigned"]
    cluster.psql("NOTIFY zonegate_changes, 'reload schema'")
    settle(np, cluster)
    assert listen(np)["rejected"]["unsigned"] == unsigned + 1
    assert call(np.port, "GET", "/rpc/late", t)[0] == 404
    # The signed way.
    loads = len(np.logs("/rpc catalog loaded"))
    cluster.psql("SELECT zonegate.reload_schema()")
    wait_for(lambda: len(np.logs("/rpc catalog loaded")) > loads, what="the catalog reload")
    assert call(np.port, "GET", "/rpc/late", t)[2] == "here"
    line = [l for l in np.logs("reloading the /rpc catalog")][-1]
    assert line["reason"] == "zonegate.reload_schema()"


def test_key_rotation_is_followed(np, cluster):
    warm(np, "alice")
    fetches = int(metric(np, "zonegate_notify_key_fetches_total"))
    bad = listen(np)["rejected"]["bad_mac"]
    cluster.psql("SELECT zonegate.rotate_notify_key()")
    # The first notification signed with the new key fails, the key is read again, and it is
    # applied: nothing is lost (a re-read at most every 3 s; a later one waits for its turn).
    cluster.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
    wait_for(lambda: outcome(np, "alice")[1] == [2, 11, 21], what="the grant after the rotation")
    assert int(metric(np, "zonegate_notify_key_fetches_total")) > fetches
    assert listen(np)["rejected"]["bad_mac"] == bad
    cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 2")
    wait_for(lambda: outcome(np, "alice")[1] == [11, 21], what="the revocation")


def test_a_burst_of_flushes_takes_effect_at_once_and_purges_at_the_rate(np, cluster):
    warm(np, "alice")
    s0 = stats(np)
    # Thirty flushes in one transaction: thirty signed notifications delivered at once.
    cluster.psql("BEGIN; " + "SELECT zonegate.flush_caches(); " * 30 + "COMMIT")
    wait_for(lambda: stats(np)["flushes"] >= s0["flushes"] + 30, what="the flushes")
    s1 = stats(np)
    assert s1["flushes"] == s0["flushes"] + 30
    # max_flushes_per_second 5: at most five purges in the second they arrived in.
    assert s1["flushes_coalesced"] - s0["flushes_coalesced"] >= 25
    assert outcome(np, "alice")[0] == "MISS"  # every flush is in effect at once
    wait_for(lambda: outcome(np, "alice")[0] == "HIT", what="an entry stored after the flushes")
    # The deferred purge runs within a second or so.
    np.wait_for_log(lambda l: l.get("msg") == "coalesced flushes purged")
    assert "zonegate_cache_flushes_coalesced_total %d" % stats(np)["flushes_coalesced"] in \
        http(np.admin_port, "GET", "/metrics")[2].decode()


def metric(p, name):
    for line in http(p.admin_port, "GET", "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    raise AssertionError(name + " not in /metrics")


def test_required_without_the_key_bypasses_the_cache_and_says_why(cluster, roles):
    p = start_proxy(cluster, "notify-refused", database=login(cluster, OUTSIDER),
                    cache={"notify_auth": "required"})
    try:
        line = p.wait_for_log(lambda l: l.get("msg", "").startswith(
            "zonegate_changes notifications cannot be authenticated"))
        assert line["level"] == "error" and "GRANT zonegate_authenticator" in line["hint"]
        assert "notify_key" in line["error"]
        # Ready: the answers are right, only slower. (Waited for, as the pools connect.)
        wait_for(lambda: call(p.port, "GET", "/readyz")[0] == 200, what="/readyz")
        h = get_json(p.port, "/health")[2]
        assert h["status"] == "degraded"
        assert h["listen"]["up"] is True and h["listen"]["authenticated"] is False
        assert h["listen"]["auth_state"] == "refused" and "notify_key" in h["listen"]["auth_error"]
        assert metric(p, "zonegate_notify_authenticated") == "0"
        # Every request goes to the database, and is right at once: no notification needed.
        assert outcome(p) == ("MISS", [11, 21])
        assert outcome(p) == ("MISS", [11, 21])
        cluster.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
        assert outcome(p) == ("MISS", [2, 11, 21])
        cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 2")
        assert outcome(p) == ("MISS", [11, 21])
        # Once granted, the proxy reads the key again by itself and the cache works again.
        cluster.psql("GRANT zonegate_authenticator TO %s" % OUTSIDER)
        try:
            wait_for(lambda: listen(p)["authenticated"], timeout=40, what="the key after the grant")
            assert get_json(p.port, "/health")[2]["status"] == "ok"
            outcome(p)
            assert outcome(p)[0] == "HIT"
        finally:
            cluster.psql("REVOKE zonegate_authenticator FROM %s" % OUTSIDER)
    finally:
        stop_proxy(p)


def test_optional_without_the_key_takes_unsigned_notifications(cluster, roles):
    p = start_proxy(cluster, "notify-optional", database=login(cluster, OUTSIDER),
                    cache={"notify_auth": "optional"})
    try:
        line = p.wait_for_log(lambda l: l.get("msg", "").startswith(
            "zonegate_changes notifications are not authenticated"))
        assert line["level"] == "warn"
        l = listen(p)
        assert l["auth_state"] == "unauthenticated" and l["authenticated"] is False
        wait_for(lambda: get_json(p.port, "/health")[2]["status"] == "ok", what="status ok")
        assert metric(p, "zonegate_notify_authenticated") == "0"
        warm(p, "alice")
        # Changes invalidate as before 0.6 (their MAC unchecked).
        cluster.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
        wait_for(lambda: outcome(p)[1] == [2, 11, 21], what="the grant")
        cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 2")
        wait_for(lambda: outcome(p)[1] == [11, 21], what="the revocation")
        # And so does anyone's NOTIFY: that is what optional means.
        warm(p, "alice")
        n = stats(p)["notifications"]
        forge(cluster, json.dumps({"users": ["alice"]}))
        wait_for(lambda: stats(p)["notifications"] > n, what="the unsigned notification")
        assert outcome(p)[0] == "MISS"
    finally:
        stop_proxy(p)
