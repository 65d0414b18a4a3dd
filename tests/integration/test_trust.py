"""The identity trust boundary as the proxy meets it (docs/SECURITY.md): logged in as its own
non-superuser role, a member of zonegate_authenticator, every route works and the identity it sets
is honoured; logged in as a role outside it, the proxy warns at start and the database refuses
the identity instead of answering for whoever the proxy named."""
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token


@pytest.fixture(scope="module")
def roles(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("""
      DROP ROLE IF EXISTS zg_it_proxy; DROP ROLE IF EXISTS zg_it_plain;
      CREATE ROLE zg_it_proxy LOGIN IN ROLE zonegate_authenticator;
      CREATE ROLE zg_it_plain LOGIN;
      GRANT USAGE ON SCHEMA api TO zg_it_proxy, zg_it_plain;""")
    yield
    cluster.psql("DROP OWNED BY zg_it_proxy, zg_it_plain; DROP ROLE zg_it_proxy, zg_it_plain")


def as_role(cluster, role):
    return {"conninfo": cluster.conninfo.replace("user=postgres", "user=" + role),
            "pool": {"min": 1, "max": 2}}


def test_authenticator_member_serves_every_route(cluster, roles):
    p = start_proxy(cluster, "trusted", database=as_role(cluster, "zg_it_proxy"))
    try:
        status, _, body = call(p.port, "GET", "/v1/me/context", token("alice"))
        assert status == 200 and body["user_id"] == "alice"
        assert call(p.port, "GET", "/v1/me/zones", token("bob"))[2]["zones"] == [2, 21, 211]
        status, _, body = call(p.port, "POST", "/v1/me/zones/filter", token("alice"), {"zones": [1]})
        assert status == 200 and body["zones"] == [11, 111]
        status, _, body = call(p.port, "GET", "/v1/zones/at?lon=2.5&lat=2.5", token("alice"))
        assert status == 200 and body["id"] == 111 and [z["id"] for z in body["path"]] == [1, 11, 111]
        # /rpc sets the identity for the transaction; RLS-style checks read it.
        assert call(p.port, "GET", "/rpc/my_zones", token("bob"))[2] == [2, 21, 211]
        assert call(p.port, "GET", "/rpc/whoami", token("alice"))[2]["user"] == "alice"
        assert p.logs("the proxy's login role may not set identities") == []
    finally:
        stop_proxy(p)


def test_untrusted_login_is_warned_and_refused(cluster, roles):
    p = start_proxy(cluster, "untrusted", database=as_role(cluster, "zg_it_plain"))
    try:
        line = p.wait_for_log(lambda l: l.get("msg") == "the proxy's login role may not set identities")
        assert line["role"] == "zg_it_plain" and "GRANT zonegate_authenticator" in line["hint"]
        # The identity it sets is refused, not honoured: an error, never bob's zones.
        status, _, body = call(p.port, "GET", "/rpc/my_zones", token("bob"))
        assert status == 403 and body["code"] == "42501", body
        assert "not honoured" in body["message"]
        # Any user's context is not for this login either.
        assert call(p.port, "GET", "/v1/me/context", token("alice"))[0] == 403
    finally:
        stop_proxy(p)
