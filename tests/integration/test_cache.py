"""The coherent response cache over real sockets and a real Postgres: coherence under a stream
of committed and rolled-back grant changes, single-flight, the byte bound, TTL, stale-while-
revalidate, stale-if-error, ETag/304, push invalidation, the listener reconnect flush, admin."""
import json
import threading
import time
from pathlib import Path

import pytest

from test_api import ADMIN, call, config, start_proxy, stop_proxy, token
from zg import Cluster, Proxy, get_json, http, wait_for, wait_sleeping


def admin(p, method, path, body=None):
    return call(p.admin_port, method, path, ADMIN, body)


def cache_stats(p):
    status, _, body = admin(p, "GET", "/admin/cache/stats")
    assert status == 200
    return body


@pytest.fixture(scope="module")
def cp(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    cluster.psql("SELECT zonegate.watch_table('api.counter')")
    # Each cached function says what it reads (cache.rpc.<fn>.depends_on): these read no table
    # but grants_of_caller, which reads zonegate's, and bump, which is never cached anyway
    # (VOLATILE) however well watched what it reads is.
    p = start_proxy(cluster, "cache", cache={
        "rpc": {"add": {"ttl": "60s", "scope": "shared", "depends_on": []},
                "echo": {"ttl": "60s", "scope": "shared", "depends_on": []},
                "slow_stable": {"ttl": "60s", "scope": "shared", "depends_on": []},
                "grants_of_caller": {"ttl": "60s", "depends_on": ["zonegate"]},
                "bump": {"ttl": "60s", "depends_on": ["api.counter"]}}})
    yield p
    stop_proxy(p)


def grants(p, user="alice"):
    status, headers, body = call(p.port, "GET", "/v1/me/context", token(user))
    assert status == 200, body
    return sorted(g["id"] for g in body["grants"]), headers


def test_hit_after_miss_with_etag_and_304(cp):
    admin(cp, "POST", "/admin/cache/purge")
    _, h1 = grants(cp)
    _, h2 = grants(cp)
    assert h1["x-cache"] == "MISS" and h2["x-cache"] == "HIT"
    assert h1["etag"] == h2["etag"] and h1["etag"].startswith('"zg-')
    assert h2["cache-control"] == "private, no-cache"
    status, h3, body = call(cp.port, "GET", "/v1/me/context", token("alice"),
                            headers={"If-None-Match": h1["etag"]})
    assert status == 304 and body is None and h3["etag"] == h1["etag"]
    status, _, body = call(cp.port, "GET", "/v1/me/context", token("alice"),
                           headers={"If-None-Match": '"zg-0000000000000000", W/' + h1["etag"]})
    assert status == 304
    status, _, body = call(cp.port, "GET", "/v1/me/context", token("alice"),
                           headers={"If-None-Match": '"other"'})
    assert status == 200 and body["user_id"] == "alice"
    # The service route shares the per-user entry.
    _, h4, _ = call(cp.port, "GET", "/v1/users/alice/context", token("svc", role="service"))
    assert h4["x-cache"] == "HIT"


def test_coherence_1000_changes_zero_stale_answers(cp, cluster):
    """Commit a grant change, wait until the proxy has processed the notification, then the very
    next request must return the new context; a rolled-back change never shows."""
    conn = cluster.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 12")
    grants(cp)  # warm
    stale = 0
    lags = []
    for i in range(1000):
        before = cache_stats(cp)["notifications"]
        t0 = time.time()
        if i % 2 == 0:
            cur.execute("INSERT INTO zonegate.user_zones VALUES ('alice', 12)")
            want = [11, 12, 21]
        else:
            cur.execute("DELETE FROM zonegate.user_zones WHERE user_id = 'alice' AND zone_id = 12")
            want = [11, 21]
        wait_for(lambda: cache_stats(cp)["notifications"] > before, what="the notification")
        lags.append(time.time() - t0)
        got, _ = grants(cp)
        stale += got != want
        if i % 100 == 50:
            # A rolled-back change: nothing is notified and the answer does not move.
            conn.autocommit = False
            cur.execute("INSERT INTO zonegate.user_zones VALUES ('alice', 111)")
            mid, _ = grants(cp)
            conn.rollback()
            conn.autocommit = True
            after, _ = grants(cp)
            stale += mid != want or after != want
    conn.close()
    assert stale == 0
    lags.sort()
    print("invalidation lag (commit -> notification processed): p50 %.1f ms, p99 %.1f ms" %
          (lags[len(lags) // 2] * 1000, lags[int(len(lags) * 0.99)] * 1000))
    s = cache_stats(cp)
    assert s["last_invalidation_lag_ms"] is not None and s["last_invalidation_lag_ms"] >= 0


def test_single_flight_200_concurrent_misses_make_one_query(cp, cluster):
    cluster.psql("SELECT pg_stat_statements_reset()")
    admin(cp, "POST", "/admin/cache/purge")
    before = cache_stats(cp)
    t = token("alice")
    results = [None] * 200
    barrier = threading.Barrier(200)
    def one(i):
        barrier.wait()
        results[i] = call(cp.port, "GET", "/rpc/slow_stable?seconds=0.5&tag=sf", t)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert all(r[0] == 200 and r[2] == "slept sf" for r in results)
    calls = int(cluster.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                             "WHERE query LIKE '%slow_stable%' AND query NOT LIKE '%pg_stat_statements%'"))
    assert calls == 1
    after = cache_stats(cp)
    outcomes = [r[1]["x-cache"] for r in results]
    assert outcomes.count("MISS") == 1
    assert set(outcomes) <= {"MISS", "COALESCED", "HIT"}
    assert after["coalesced"] - before["coalesced"] == outcomes.count("COALESCED")


def test_lock_timeout_lets_waiters_go_upstream(cluster, cp):
    # The waiters' queries run one after the other on a pipelined connection: the last one ends
    # after about 7.5 s, past the default deadline (7 s), which is not what this test is about.
    p = start_proxy(cluster, "locktimeout", cache={"lock_timeout": "100ms",
                                                   "rpc": {"slow_stable": {"ttl": "60s", "scope": "shared",
                                                                           "depends_on": []}}},
                    resilience={"deadline": "30s"})
    try:
        t = token("alice")
        results = []
        def one():
            results.append(call(p.port, "GET", "/rpc/slow_stable?seconds=1.5&tag=lt", t))
        threads = [threading.Thread(target=one) for _ in range(5)]
        threads[0].start()
        wait_sleeping(cluster)  # the first request holds the lock and is in Postgres
        for th in threads[1:]:
            th.start()
        for th in threads:
            th.join(10)
        assert len(results) == 5 and all(r[0] == 200 for r in results), results
        assert cache_stats(p)["lock_timeouts"] >= 1
    finally:
        stop_proxy(p)


def test_byte_bound_holds_under_a_flood_of_keys(cluster, cp):
    p = start_proxy(cluster, "bytes", server={"workers": 2},
                    cache={"max_bytes": "64KiB", "shards": 4,
                           "rpc": {"add": {"ttl": "60s", "scope": "shared", "depends_on": []}}})
    try:
        t = token("alice")
        peak = 0
        for i in range(2000):
            assert call(p.port, "GET", "/rpc/add?a=%d&b=1" % i, t)[2] == i + 1
            if i % 100 == 0:
                s = cache_stats(p)
                peak = max(peak, s["bytes"])
                assert s["bytes"] <= s["max_bytes"] == 65536
        s = cache_stats(p)
        assert s["evictions"] > 0 and s["bytes"] <= 65536 and 0 < s["entries"] < 2000
        # Recently stored keys are still there.
        assert call(p.port, "GET", "/rpc/add?a=1999&b=1", t)[1]["x-cache"] == "HIT"
    finally:
        stop_proxy(p)


def test_ttl_and_stale_while_revalidate(cluster, cp):
    p = start_proxy(cluster, "swr", cache={"rpc": {
        "slow_stable": {"ttl": "1s", "stale_while_revalidate": "60s", "scope": "shared",
                        "depends_on": []},
        "add": {"ttl": "2s", "stale_while_revalidate": "0ms", "scope": "shared", "depends_on": []}}})
    try:
        t = token("alice")
        assert call(p.port, "GET", "/rpc/add?a=1&b=1", t)[1]["x-cache"] == "MISS"
        assert call(p.port, "GET", "/rpc/add?a=1&b=1", t)[1]["x-cache"] == "HIT"
        # Past the TTL, without stale-while-revalidate: the next answer is a miss (hits until
        # then; the exact instants are unit-tested with an injected clock in cache_store_test).
        wait_for(lambda: call(p.port, "GET", "/rpc/add?a=1&b=1", t)[1]["x-cache"] == "MISS",
                 what="the entry to expire")
        path = "/rpc/slow_stable?seconds=4&tag=swr"
        assert call(p.port, "GET", path, t)[1]["x-cache"] == "MISS"
        answers = []
        def stale():
            answers.append(call(p.port, "GET", path, t))
            return answers[-1][1]["x-cache"] == "STALE"
        wait_for(stale, what="the entry to turn stale")
        status, h, body = answers[-1]
        assert status == 200 and body == "slept swr"
        assert all(a[1]["x-cache"] in ("HIT", "STALE") for a in answers)
        # Served at once: the background refresh (a 4 s query) is still running in Postgres.
        assert int(cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")) == 1
        wait_for(lambda: call(p.port, "GET", path, t)[1]["x-cache"] == "HIT", what="the refresh")
        assert cache_stats(p)["revalidations"] >= 1
    finally:
        stop_proxy(p)


def test_stale_if_error_when_postgres_is_down():
    c2 = Cluster(dbname="sie")
    try:
        c2.psql(Path(__file__).with_name("api_fixture.sql").read_text())
        p = start_proxy(c2, "sie", database={"conninfo": c2.conninfo,
                                             "pool": {"acquire_timeout": "300ms", "reconnect_max": "300ms"}},
                        cache={"routes": {"me_context": {"ttl": "200ms", "stale_while_revalidate": "0ms",
                                                         "stale_if_error": "60s"}}})
        try:
            assert grants(p)[1]["x-cache"] == "MISS"
            c2.stop()
            time.sleep(0.3)  # past the TTL
            status, h, body = call(p.port, "GET", "/v1/me/context", token("alice"))
            assert status == 200 and h["x-cache"] == "STALE" and body["user_id"] == "alice"
            assert cache_stats(p)["stale_if_error"] >= 1
            # Nothing cached for bob: the outage shows.
            status, h, body = call(p.port, "GET", "/v1/me/context", token("bob"))
            assert status == 503 and "retry-after" in h
        finally:
            stop_proxy(p)
    finally:
        c2.destroy()


def test_invalidation_scopes(cp, cluster):
    admin(cp, "POST", "/admin/cache/purge")
    grants(cp, "alice")
    grants(cp, "bob")
    assert grants(cp, "bob")[1]["x-cache"] == "HIT"
    n = cache_stats(cp)["notifications"]
    cluster.psql("UPDATE zonegate.users SET display_name = 'Alice' WHERE user_id = 'alice'")
    wait_for(lambda: cache_stats(cp)["notifications"] > n)
    assert grants(cp, "alice")[1]["x-cache"] == "MISS"  # alice's entry dropped
    assert grants(cp, "bob")[1]["x-cache"] == "HIT"     # bob's kept
    n = cache_stats(cp)["notifications"]
    flushes = cache_stats(cp)["flushes"]
    cluster.psql("UPDATE zonegate.zones SET name = name || '' WHERE id = 1")
    wait_for(lambda: cache_stats(cp)["notifications"] > n)
    s = cache_stats(cp)
    assert s["flushes"] == flushes + 1 and s["entries"] == 0
    assert grants(cp, "bob")[1]["x-cache"] == "MISS"


def test_volatile_functions_are_never_cached(cp):
    t = token("alice")
    first = call(cp.port, "POST", "/rpc/bump", t, {"n": 1})
    second = call(cp.port, "POST", "/rpc/bump", t, {"n": 1})
    assert "x-cache" not in first[1] and "x-cache" not in second[1]
    assert second[2] == first[2] + 1


def test_user_scoped_rpc_is_keyed_by_caller(cp):
    a = call(cp.port, "GET", "/rpc/grants_of_caller", token("alice"))
    b = call(cp.port, "GET", "/rpc/grants_of_caller", token("bob"))
    assert a[2] != b[2] and a[1]["x-cache"] == "MISS" and b[1]["x-cache"] == "MISS"
    assert call(cp.port, "GET", "/rpc/grants_of_caller", token("bob"))[2] == b[2]


def test_separator_bytes_in_a_value_do_not_reach_another_entry(cp):
    """Keys were once joined with \\x1e and \\x1f: msg=hi%1Etimes%1Fv3 (one argument) made the key
    of msg=hi&times=3 (two) and was answered from its entry. Keys are length-prefixed now."""
    admin(cp, "POST", "/admin/cache/purge")
    t = token("alice")
    s, h, body = call(cp.port, "GET", "/rpc/echo?msg=hi&times=3", t)
    assert s == 200 and body == "hihihi" and h["x-cache"] == "MISS"
    assert call(cp.port, "GET", "/rpc/echo?msg=hi&times=3", t)[1]["x-cache"] == "HIT"
    s, h, body = call(cp.port, "GET", "/rpc/echo?msg=hi%1Etimes%1Fv3", t)
    assert s == 200 and h["x-cache"] == "MISS" and body == "hi\x1etimes\x1fv3", (h, body)
    s, h, body = call(cp.port, "GET", "/rpc/echo?msg=hi%1Etimes%1Fn", t)
    assert s == 200 and h["x-cache"] == "MISS" and body == "hi\x1etimes\x1fn"


def test_shared_scope_is_refused_for_functions_that_read_the_caller(cp, cluster):
    """cache.rpc.<fn>.scope shared: a function whose body reads the caller's identity (or whose
    language cannot be read) is cached per user instead, logged and listed in /health; a pure
    one stays shared; identity_free asserts it, and the shared call then runs without any
    identity, so its answer cannot be anybody's."""
    cluster.psql("""
      CREATE OR REPLACE FUNCTION api.who_am_i() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT coalesce(nullif(current_setting('zonegate.user_id', true), ''), 'nobody') $$;
      CREATE OR REPLACE FUNCTION api.who_asserted() RETURNS text LANGUAGE plpgsql STABLE
        AS $$ BEGIN RETURN coalesce(nullif(current_setting('zonegate.user_id', true), ''), 'nobody'); END $$;
      CREATE OR REPLACE FUNCTION api.int_add(a int4, b int4) RETURNS int4 LANGUAGE internal IMMUTABLE STRICT
        AS 'int4pl';""")
    shared = {"ttl": "60s", "scope": "shared", "depends_on": []}
    p = start_proxy(cluster, "shared-scope",
                    rpc={"functions": ["who_am_i", "who_asserted", "int_add", "add"]},
                    cache={"rpc": {"who_am_i": shared, "add": shared, "int_add": shared,
                                   "who_asserted": dict(shared, identity_free=True)}})
    try:
        alice, bob = token("alice"), token("bob")
        # Refused: per user, each caller gets their own answer, never another's.
        s, h, body = call(p.port, "GET", "/rpc/who_am_i", alice)
        assert s == 200 and body == "alice" and h["x-cache"] == "MISS"
        assert h["cache-control"] == "private, no-cache"
        s, h, body = call(p.port, "GET", "/rpc/who_am_i", bob)
        assert body == "bob" and h["x-cache"] == "MISS"
        s, h, body = call(p.port, "GET", "/rpc/who_am_i", alice)
        assert body == "alice" and h["x-cache"] == "HIT"
        assert call(p.port, "GET", "/rpc/who_am_i", bob)[2] == "bob"
        # A language the proxy cannot read: per user too.
        assert call(p.port, "GET", "/rpc/int_add?a=1&b=2", alice)[1]["x-cache"] == "MISS"
        s, h, body = call(p.port, "GET", "/rpc/int_add?a=1&b=2", bob)
        assert body == 3 and h["x-cache"] == "MISS"
        # Pure: shared.
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", alice)[1]["x-cache"] == "MISS"
        s, h, body = call(p.port, "GET", "/rpc/add?a=1&b=2", bob)
        assert body == 3 and h["x-cache"] == "HIT" and h["cache-control"] == "public, no-cache"
        # Asserted identity-free: shared, and computed without anybody's identity.
        s, h, body = call(p.port, "GET", "/rpc/who_asserted", alice)
        assert body == "nobody" and h["x-cache"] == "MISS"
        s, h, body = call(p.port, "GET", "/rpc/who_asserted", bob)
        assert body == "nobody" and h["x-cache"] == "HIT"

        health = get_json(p.admin_port, "/health")[2]["rpc"]
        got = {r["function"]: r for r in health["shared_refused"]}
        assert sorted(got) == ["int_add", "who_am_i"]
        assert got["who_am_i"]["key"] == "cache.rpc.who_am_i.scope"
        assert got["who_am_i"]["reason"] == "who_am_i(): its body reads current_setting"
        assert got["int_add"]["reason"] == "int_add(integer, integer): its language, internal, cannot be checked"
        lines = p.logs("cache scope shared refused: cached per user")
        assert {l["key"] for l in lines} == {"cache.rpc.who_am_i.scope", "cache.rpc.int_add.scope"}
        assert all(l["level"] == "error" and "identity_free: true" in l["hint"] for l in lines)
    finally:
        stop_proxy(p)


def test_listener_drop_makes_every_entry_not_fresh(cp, cluster):
    grants(cp, "alice")
    assert grants(cp, "alice")[1]["x-cache"] == "HIT"
    assert cache_stats(cp)["entries"] > 0
    flushes = cache_stats(cp)["flushes"]
    reconnects = get_json(cp.port, "/health")[2]["listen"]["reconnects"]
    cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'zonegate-proxy-listen'")
    wait_for(lambda: cache_stats(cp)["flushes"] > flushes, what="the reconnect flush")
    wait_for(lambda: call(cp.port, "GET", "/readyz")[0] == 200, what="LISTEN again")
    # A notification may have been missed: the entries stay (a stale-if-error reserve), but
    # none made before the reconnect is served as fresh.
    assert cache_stats(cp)["entries"] > 0
    assert grants(cp, "alice")[1]["x-cache"] == "MISS"
    assert grants(cp, "alice")[1]["x-cache"] == "HIT"
    # Counted apart from "*" flushes, in /health and /metrics.
    assert get_json(cp.port, "/health")[2]["listen"]["reconnects"] == reconnects + 1
    metrics = http(cp.admin_port, "GET", "/metrics")[2].decode()
    assert "zonegate_listen_reconnects_total %d" % (reconnects + 1) in metrics


def test_admin_needs_the_admin_token_and_purges(cp):
    assert call(cp.admin_port, "GET", "/admin/cache/stats")[0] == 401
    assert call(cp.admin_port, "GET", "/admin/cache/stats", "wrong-token")[0] == 401
    assert call(cp.admin_port, "GET", "/admin/cache/stats", token("root"))[0] == 401  # a JWT is not the admin token
    assert admin(cp, "POST", "/admin/cache/purge")[0] == 200  # what earlier tests left
    # Until both are stored: the catalog reload the previous test's reconnect started may finish
    # during a fetch, and a fetch in flight across a catalog change is not stored.
    for user in ("alice", "bob"):
        wait_for(lambda u=user: grants(cp, u)[1]["x-cache"] == "HIT", what=user + "'s entry")
    status, _, body = admin(cp, "POST", "/admin/cache/purge", {"user": "alice"})
    assert status == 200 and body == {"purged": 1, "scope": "user"}
    assert grants(cp, "bob")[1]["x-cache"] == "HIT"
    status, _, body = admin(cp, "POST", "/admin/cache/purge", {"route": "me_context"})
    assert status == 200 and body["scope"] == "route" and body["purged"] >= 1
    assert admin(cp, "POST", "/admin/cache/purge", {"bogus": 1})[0] == 400
    assert admin(cp, "POST", "/admin/cache/purge")[2]["scope"] == "all"
    s = cache_stats(cp)
    assert s["entries"] == 0 and "me_context" in s["routes"] and "hit_rate" in s["routes"]["me_context"]


def test_several_proxies_stay_coherent(cluster, cp):
    """Proxies share nothing but the database: each LISTENs, so a change committed once drops
    the entry in every proxy's cache (docs/DEPLOYMENT.md)."""
    others = [start_proxy(cluster, "peer%d" % i) for i in range(2)]
    try:
        proxies = [cp] + others
        for p in proxies:
            grants(p, "bob")
            assert grants(p, "bob")[1]["x-cache"] == "HIT"
        counts = [cache_stats(p)["notifications"] for p in proxies]
        cluster.psql("INSERT INTO zonegate.user_zones VALUES ('bob', 11)")
        for p, n in zip(proxies, counts):
            wait_for(lambda: cache_stats(p)["notifications"] > n, what="the notification")
            got, h = grants(p, "bob")
            assert 11 in got and h["x-cache"] == "MISS"
        cluster.psql("DELETE FROM zonegate.user_zones WHERE user_id = 'bob' AND zone_id = 11")
    finally:
        for p in others:
            stop_proxy(p)


# Every cached route: a miss then a hit with the same strong ETag, 304 for If-None-Match, an
# integer Age, and Cache-Control saying whether the entry is shared (public) or per user.
@pytest.mark.parametrize("method,path,body,user,shared", [
    ("GET", "/v1/me/context", None, "alice", False),
    ("GET", "/v1/users/bob/context", None, "svc", False),
    ("GET", "/v1/me/zones", None, "alice", False),
    ("POST", "/v1/me/zones/filter", {"zones": [1]}, "alice", False),
    ("GET", "/v1/zones/at?lon=2.5&lat=2.5", None, "alice", True),
    ("GET", "/rpc/add?a=40&b=2", None, "alice", True),
    ("GET", "/rpc/grants_of_caller", None, "bob", False),
])
def test_every_cached_route_has_etag_304_age_and_cache_control(cp, method, path, body, user, shared):
    admin(cp, "POST", "/admin/cache/purge")
    tok = token(user, role="service" if user == "svc" else None)
    s1, h1, b1 = call(cp.port, method, path, tok, body)
    s2, h2, b2 = call(cp.port, method, path, tok, body)
    assert s1 == s2 == 200 and b1 == b2, (s1, s2, b1)
    assert h1["x-cache"] == "MISS" and h2["x-cache"] == "HIT", (h1, h2)
    assert h1["etag"] == h2["etag"] and h1["etag"].startswith('"zg-')
    assert h2["age"].isdigit() and int(h2["age"]) >= 0
    assert h2["cache-control"] == ("public, no-cache" if shared else "private, no-cache")
    s3, h3, b3 = call(cp.port, method, path, tok, body, headers={"If-None-Match": h1["etag"]})
    assert s3 == 304 and b3 is None and h3["etag"] == h1["etag"]


# stale-if-error beyond a stopped database: a statement timeout (57014) and an error the
# database raises (XX000), both answered 500, are served from the stale entry while its
# stale_if_error window lasts; a key with nothing cached gets the error itself.
def test_stale_if_error_on_statement_timeout_and_server_errors(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("""
      CREATE TABLE api.mood (mode text NOT NULL);
      INSERT INTO api.mood VALUES ('fine');
      CREATE FUNCTION api.moody(k int) RETURNS text LANGUAGE plpgsql STABLE AS $$
      DECLARE m text := (SELECT mode FROM api.mood);
      BEGIN
        IF m = 'slow' THEN PERFORM pg_sleep(5); END IF;
        IF m = 'broken' THEN RAISE EXCEPTION 'broken on purpose' USING ERRCODE = 'XX000'; END IF;
        RETURN 'answer ' || k;
      END $$;""")
    p = start_proxy(cluster, "sie-errors",
                    database={"conninfo": cluster.conninfo,
                              "pool": {"min": 1, "max": 2, "statement_timeout": "300ms"}},
                    rpc={"functions": ["moody"]},
                    # api.mood is this test's fault switch, not what the answer is computed from
                    # ("answer k" either way): declared as read, its change would drop the entry
                    # that stale-if-error is about.
                    cache={"rpc": {"moody": {"ttl": "200ms", "stale_while_revalidate": "0ms",
                                             "stale_if_error": "60s", "scope": "shared",
                                             "depends_on": []}}})
    try:
        t = token("alice")
        for k, mode in ((1, "slow"), (2, "broken")):
            cluster.psql("UPDATE api.mood SET mode = 'fine'")
            s, h, body = call(p.port, "GET", "/rpc/moody?k=%d" % k, t)
            assert s == 200 and h["x-cache"] == "MISS" and body == "answer %d" % k
            cluster.psql("UPDATE api.mood SET mode = '%s'" % mode)
            answers = []
            def past_ttl():
                answers.append(call(p.port, "GET", "/rpc/moody?k=%d" % k, t))
                return answers[-1][1]["x-cache"] != "HIT"
            wait_for(past_ttl, what="the entry to expire")
            s, h, body = answers[-1]
            assert s == 200 and h["x-cache"] == "STALE" and body == "answer %d" % k, (mode, s, h, body)
            # Nothing cached under this key: the error itself, PostgREST-style.
            s, _, body = call(p.port, "GET", "/rpc/moody?k=%d" % (k + 100), t)
            assert s == 500 and body["code"] == ("57014" if mode == "slow" else "XX000"), body
        assert cache_stats(p)["stale_if_error"] >= 2
    finally:
        stop_proxy(p)
        cluster.psql("DROP FUNCTION IF EXISTS api.moody(int); DROP TABLE IF EXISTS api.mood")
