"""Cached /rpc functions over application tables (cache.rpc.<fn>.depends_on, extension 0.7's
zonegate.watch_table): a committed change to a watched table drops the entries of the functions
that read it, so the next call sees it; a function over a table that is not watched is not
cached at all, and /health and the log say what to run; a function that depends on zonegate is
dropped by a grant change; a cached function that declares nothing is a config error."""
import json
from pathlib import Path

import pytest
import yaml

from test_api import ADMIN, call, config, start_proxy, stop_proxy, token
from zg import Proxy, get_json, run_cli, wait_for

FUNCTIONS = ["item", "item_count", "tag_labels", "note", "grant_count"]
POLICIES = {
    "item": {"ttl": "10m", "scope": "shared", "depends_on": ["appdata.items"]},
    "item_count": {"ttl": "10m", "scope": "shared", "depends_on": ["appdata.items"]},
    "tag_labels": {"ttl": "10m", "scope": "shared", "depends_on": ["appdata.tags"]},
    "note": {"ttl": "10m", "scope": "shared", "depends_on": ["appdata.notes"]},
    "grant_count": {"ttl": "10m", "scope": "shared", "depends_on": ["zonegate"]},
}


def notifications(p):
    status, _, body = call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)
    assert status == 200
    return body["notifications"]


def cache_refused(p):
    return get_json(p.admin_port, "/health")[2]["rpc"]["cache_refused"]


def checked(p):
    """The tables were checked since start (until then nothing over a table is cached)."""
    return all(r["reason"] != "not checked yet" for r in cache_refused(p))


def changed(cluster, p, sql):
    """Commits `sql` and waits until the proxy has processed what it notified."""
    before = notifications(p)
    cluster.psql(sql)
    wait_for(lambda: notifications(p) > before, what="the change notification")


def rpc(p, path, user="alice"):
    status, h, body = call(p.port, "GET", "/rpc/" + path, token(user))
    assert status == 200, (status, body)
    return body, h.get("x-cache")


@pytest.fixture(scope="module")
def ap(cluster):
    cluster.psql(Path(__file__).with_name("app_table_cache_fixture.sql").read_text())
    p = start_proxy(cluster, "app-table-cache", rpc={"schema": "appapi", "functions": FUNCTIONS},
                    cache={"rpc": POLICIES})
    wait_for(lambda: checked(p), what="the depends_on check")
    yield p
    stop_proxy(p)


def test_a_changed_row_is_seen_by_the_next_call(ap, cluster):
    """Every committed change to a watched table is in the very next answer: 60 updates, inserts,
    deletes and a truncate, each followed by a call, never a stale one; a rolled-back change
    shows nowhere and drops nothing."""
    assert rpc(ap, "item?item_id=1")[1] == "MISS"
    assert rpc(ap, "item?item_id=1") == ({"id": 1, "name": "pen", "price": 2.50}, "HIT")
    stale = 0
    for i in range(60):
        changed(cluster, ap, "UPDATE appdata.items SET price = %d WHERE id = 1" % (100 + i))
        body, outcome = rpc(ap, "item?item_id=1")
        stale += body["price"] != 100 + i
        assert outcome == "MISS"
        assert rpc(ap, "item?item_id=1")[1] == "HIT"
    assert stale == 0
    assert rpc(ap, "item_count") == (2, "MISS")
    changed(cluster, ap, "INSERT INTO appdata.items VALUES (3, 'nib', 1)")
    assert rpc(ap, "item_count") == (3, "MISS")
    changed(cluster, ap, "DELETE FROM appdata.items WHERE id = 3")
    assert rpc(ap, "item_count") == (2, "MISS")
    conn = cluster.connect()
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO appdata.items VALUES (4, 'cap', 1)")
        assert rpc(ap, "item_count") == (2, "HIT")  # not committed: not seen, nothing dropped
        conn.rollback()
    finally:
        conn.close()
    assert rpc(ap, "item_count") == (2, "HIT")
    changed(cluster, ap, "TRUNCATE appdata.items")
    assert rpc(ap, "item_count") == (0, "MISS")
    assert rpc(ap, "item?item_id=1") == (None, "MISS")
    changed(cluster, ap, "INSERT INTO appdata.items VALUES (1, 'pen', 2.50), (2, 'ink', 7.00)")


def test_only_the_functions_that_read_the_table_are_dropped(ap, cluster):
    rpc(ap, "tag_labels")
    rpc(ap, "item_count")
    assert rpc(ap, "tag_labels") == ("office", "HIT")
    assert rpc(ap, "item_count")[1] == "HIT"
    changed(cluster, ap, "UPDATE appdata.items SET name = name")
    assert rpc(ap, "tag_labels") == ("office", "HIT")  # appdata.tags did not change
    assert rpc(ap, "item_count")[1] == "MISS"
    changed(cluster, ap, "INSERT INTO appdata.tags VALUES (2, 'desk')")
    assert rpc(ap, "tag_labels") == ("office,desk", "MISS")
    assert rpc(ap, "item_count")[1] == "HIT"
    changed(cluster, ap, "DELETE FROM appdata.tags WHERE id = 2")


def test_an_unwatched_table_is_not_cached_and_health_says_what_to_run(ap, cluster):
    """appdata.notes is not watched: note is answered from the database every time (so a
    change is seen at once, notified or not), /health and the log name the statement to run;
    once it runs, note is cached; after unwatch_table or a trigger disabled, it is not."""
    refused = {r["function"]: r for r in cache_refused(ap)}
    assert list(refused) == ["note"]
    assert refused["note"] == {
        "function": "note", "key": "cache.rpc.note.depends_on", "table": "appdata.notes",
        "reason": "table appdata.notes is not watched: zonegate.watch_table() was not run on it",
        "hint": "SELECT zonegate.watch_table('appdata.notes')"}
    assert get_json(ap.port, "/health")[2]["rpc"]["cache_refused"] == 1  # public: a count
    lines = [l for l in ap.logs("cached /rpc function not cached: a table it reads is not watched")
             if l["function"] == "note"]
    assert lines and lines[0]["level"] == "error"
    assert lines[0]["hint"] == "SELECT zonegate.watch_table('appdata.notes')"
    for _ in range(3):
        assert rpc(ap, "note?note_id=1") == ("first", None)  # no X-Cache: not cached
    cluster.psql("UPDATE appdata.notes SET body = 'second' WHERE id = 1")  # no notification
    assert rpc(ap, "note?note_id=1") == ("second", None)

    # Running the hint: the proxies are told (WATCH), check again and cache note.
    cluster.psql(refused["note"]["hint"])
    wait_for(lambda: cache_refused(ap) == [], what="note to be cached")
    assert rpc(ap, "note?note_id=1") == ("second", "MISS")
    assert rpc(ap, "note?note_id=1") == ("second", "HIT")
    changed(cluster, ap, "UPDATE appdata.notes SET body = 'third' WHERE id = 1")
    assert rpc(ap, "note?note_id=1") == ("third", "MISS")

    # DDL past watch_table: the trigger disabled. Not cached from then on, and what was cached
    # is gone (a change made while disabled would not be notified).
    rpc(ap, "note?note_id=1")
    cluster.psql("ALTER TABLE appdata.notes DISABLE TRIGGER zz_zonegate_watch")
    wait_for(lambda: [r["function"] for r in cache_refused(ap)] == ["note"], what="the refusal")
    assert cache_refused(ap)[0]["reason"] == ("table appdata.notes is not watched: its statement "
                                             "trigger zz_zonegate_watch is not ENABLE ALWAYS")
    cluster.psql("UPDATE appdata.notes SET body = 'fourth' WHERE id = 1")  # not notified
    assert rpc(ap, "note?note_id=1") == ("fourth", None)
    cluster.psql("SELECT zonegate.watch_table('appdata.notes')")
    wait_for(lambda: cache_refused(ap) == [], what="note to be cached again")
    assert rpc(ap, "note?note_id=1") == ("fourth", "MISS")
    cluster.psql("SELECT zonegate.unwatch_table('appdata.notes')")
    wait_for(lambda: [r["function"] for r in cache_refused(ap)] == ["note"], what="the refusal")
    cluster.psql("UPDATE appdata.notes SET body = 'fifth' WHERE id = 1")
    assert rpc(ap, "note?note_id=1") == ("fifth", None)


def test_a_function_over_zonegate_is_dropped_by_a_grant_change(ap, cluster):
    """grant_count reads zonegate.user_zones for everyone (a shared answer): a grant change that
    names one user drops it, though the entry is nobody's."""
    assert rpc(ap, "grant_count")[0] == 0
    assert rpc(ap, "grant_count", "bob") == (0, "HIT")
    changed(cluster, ap, "INSERT INTO zonegate.user_zones VALUES ('apt-u2', 9001)")
    assert rpc(ap, "grant_count") == (1, "MISS")
    assert rpc(ap, "grant_count", "bob") == (1, "HIT")
    changed(cluster, ap, "DELETE FROM zonegate.user_zones WHERE user_id = 'apt-u2'")
    assert rpc(ap, "grant_count") == (0, "MISS")
    # An application table's change leaves it alone.
    changed(cluster, ap, "UPDATE appdata.items SET name = name")
    assert rpc(ap, "grant_count") == (0, "HIT")


def test_a_table_that_does_not_exist_is_not_cached(cluster, ap):
    p = start_proxy(cluster, "app-table-missing", rpc={"schema": "appapi", "functions": ["item"]},
                    cache={"rpc": {"item": {"ttl": "10m", "depends_on": ["appdata.items",
                                                                          "appdata.nope"]}}})
    try:
        wait_for(lambda: checked(p), what="the depends_on check")
        assert cache_refused(p) == [{
            "function": "item", "key": "cache.rpc.item.depends_on", "table": "appdata.nope",
            "reason": "table appdata.nope does not exist",
            "hint": "correct cache.rpc.item.depends_on, or create the table and run SELECT "
                    "zonegate.reload_schema()"}]
        assert rpc(p, "item?item_id=2") == ({"id": 2, "name": "ink", "price": 7.0}, None)
    finally:
        stop_proxy(p)


def test_a_cached_function_must_declare_what_it_reads(cluster, tmp_path):
    cfg = yaml.safe_load(config(cluster, rpc={"schema": "appapi", "functions": ["item"]},
                                cache={"rpc": {"item": {"ttl": "10m"}}}))
    f = tmp_path / "zonegate.yaml"
    f.write_text(yaml.safe_dump(cfg))
    out = run_cli(["--config", str(f), "--check-config"])
    assert out.returncode != 0
    assert "cache.rpc.item: declare what the function reads: depends_on:" in out.stdout + out.stderr
