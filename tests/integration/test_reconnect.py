"""What the proxy does after its LISTEN (control) connection is lost and comes back, as
docs/ARCHITECTURE.md says: it flushes its cache, listens again so that a change committed after the
reconnect still invalidates, and reloads the /rpc catalog (a function created meanwhile becomes
callable)."""
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import wait_for


@pytest.fixture
def rp(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = start_proxy(cluster, "reconnect", rpc={"functions": ["add", "late"]})
    yield p
    stop_proxy(p)
    cluster.psql("DROP FUNCTION IF EXISTS api.late()")


def grant_ids(p, user="alice"):
    status, h, body = call(p.port, "GET", "/v1/me/context", token(user))
    assert status == 200, body
    return sorted(g["id"] for g in body["grants"]), h["x-cache"]


def test_changes_after_a_control_reconnect_still_invalidate(cluster, rp):
    assert grant_ids(rp) == ([11, 21], "MISS")
    assert grant_ids(rp) == ([11, 21], "HIT")
    assert call(rp.port, "GET", "/rpc/late", token("alice"))[0] == 404
    listens = len(rp.logs("listening for changes"))
    catalogs = len(rp.logs("/rpc catalog loaded"))
    # A function created while the proxy is not listening, then the control connection ends.
    cluster.psql("CREATE FUNCTION api.late() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'here' $$")
    killed = cluster.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'zonegate-proxy-listen'")
    assert int(killed) >= 1
    wait_for(lambda: len(rp.logs("listening for changes")) > listens, what="LISTEN again")
    wait_for(lambda: len(rp.logs("/rpc catalog loaded")) > catalogs, what="the catalog reload")
    # The reconnect flushed the cache; the next read stores a fresh entry.
    assert grant_ids(rp) == ([11, 21], "MISS")
    assert grant_ids(rp) == ([11, 21], "HIT")
    # A change committed after the reconnect reaches the proxy through the new LISTEN.
    cluster.psql("INSERT INTO zonegate.user_zones VALUES ('alice', 2)")
    wait_for(lambda: grant_ids(rp)[0] == [2, 11, 21], what="the grant to invalidate the entry")
    assert call(rp.port, "GET", "/rpc/late", token("alice"))[2] == "here"
