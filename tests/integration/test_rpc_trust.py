"""/rpc reaches only allow-listed overloads with a trusted owner (docs/SECURITY.md, "/rpc"): an
overload an unprivileged role adds to the rpc schema is never called (its side effect never
happens), logged and listed in /health; trusted_owners admits a named role; a signature entry
allows exactly that overload, whatever spelling of its types; a schema PUBLIC may CREATE in is
refused whole."""
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import get_json


@pytest.fixture(scope="module")
def mallory(cluster):
    """mallory: no superuser, not the schema's owner, but allowed to CREATE in it. Its overload
    of add records every call in a table it owns, so a call cannot go unnoticed."""
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    cluster.psql("""
      DROP ROLE IF EXISTS zg_mallory;
      CREATE ROLE zg_mallory NOLOGIN;
      GRANT USAGE, CREATE ON SCHEMA api TO zg_mallory;
      SET ROLE zg_mallory;
      CREATE TABLE api.pwned (who text, via text);
      GRANT INSERT ON api.pwned TO PUBLIC;
      CREATE FUNCTION api.add(a int, b int, c int) RETURNS int LANGUAGE sql VOLATILE AS $$
        INSERT INTO api.pwned VALUES (current_setting('zonegate.user_id', true), 'add');
        SELECT 666 $$;
      CREATE FUNCTION api.over(a int, b int, c int) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT 'mallory' $$;
      RESET ROLE;""")
    yield
    cluster.psql("DROP SCHEMA IF EXISTS open_api CASCADE; DROP OWNED BY zg_mallory; DROP ROLE zg_mallory")


def pwned(cluster):
    return int(cluster.psql("SELECT count(*) FROM api.pwned"))


def refused(p):
    return get_json(p.admin_port, "/health")[2]["rpc"]["refused"]  # the list: admin listener


def test_an_untrusted_overload_is_never_called(cluster, mallory):
    p = start_proxy(cluster, "untrusted-overload")
    try:
        t = token("alice")
        for method, path, body in (("POST", "/rpc/add", {"a": 1, "b": 2, "c": 3}),
                                   ("GET", "/rpc/add?a=1&b=2&c=3", None),
                                   ("POST", "/rpc/add", b"a=1&b=2&c=3")):
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if isinstance(body, bytes) else None
            status, _, answer = call(p.port, method, path, t, body, headers)
            assert status == 404 and answer["code"] == "PGRST202", (path, status, answer)
        assert pwned(cluster) == 0
        # The trusted overloads of the same name stay callable.
        assert call(p.port, "GET", "/rpc/add?a=2&b=3", t)[2] == 5
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1, "b": 2})[2] == "two"
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1, "b": 2, "c": 3})[0] == 404
        # Logged with the signature and the owner, and listed in /health.
        lines = [l for l in p.logs("allow-listed function refused")]
        assert {l["function"] for l in lines} == {"api.add(integer, integer, integer)",
                                                  "api.over(integer, integer, integer)"}
        assert all(l["level"] == "error" and l["owner"] == "zg_mallory" for l in lines)
        assert "not trusted" in lines[0]["reason"]
        health = get_json(p.admin_port, "/health")[2]["rpc"]
        assert health["schema"] == "api" and health["public_create"] is False
        assert sorted(r["function"] for r in health["refused"]) == [
            "api.add(integer, integer, integer)", "api.over(integer, integer, integer)"]
        assert {r["owner"] for r in health["refused"]} == {"zg_mallory"}
        assert p.wait_for_log(lambda l: l.get("msg") == "roles besides the schema's owner may "
                                                        "CREATE in the /rpc schema")["roles"] == "zg_mallory"
    finally:
        stop_proxy(p)
    assert pwned(cluster) == 0


def test_an_overload_added_later_is_refused_at_the_reload(cluster, mallory):
    p = start_proxy(cluster, "late-overload")
    try:
        t = token("bob")
        loads = len(p.logs("/rpc catalog loaded"))
        cluster.psql("""SET ROLE zg_mallory;
          CREATE FUNCTION api.echo(msg text, times int, loud boolean) RETURNS text LANGUAGE sql STABLE
            AS $$ SELECT 'mallory' $$;
          RESET ROLE; SELECT zonegate.reload_schema()""")
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded" and l.get("refused") == 3)
        assert len(p.logs("/rpc catalog loaded")) > loads
        status, _, body = call(p.port, "GET", "/rpc/echo?msg=hi&times=2&loud=true", t)
        assert status == 404 and body["code"] == "PGRST202"
        assert call(p.port, "GET", "/rpc/echo?msg=hi&times=2", t)[2] == "hihi"
        assert "api.echo(text, integer, boolean)" in {r["function"] for r in refused(p)}
    finally:
        stop_proxy(p)
        cluster.psql("DROP FUNCTION api.echo(text, int, boolean)")


def test_trusted_owners_admits_a_named_role(cluster, mallory):
    p = start_proxy(cluster, "trusted-owner", rpc={"trusted_owners": ["zg_mallory"]})
    try:
        assert refused(p) == []
        assert call(p.port, "POST", "/rpc/add", token("carol"), {"a": 1, "b": 2, "c": 3})[2] == 666
        assert cluster.psql("SELECT who FROM api.pwned") == "carol"
    finally:
        stop_proxy(p)
        cluster.psql("TRUNCATE api.pwned")


def test_roles_with_the_privileges_of_the_owner_or_a_trusted_role_are_trusted(cluster, mallory):
    """The schema belongs to a group: a member that inherits it owns its functions as the group
    could (as the database owner does for public, owned by pg_database_owner). trusted_owners
    names a group the same way. Anyone else with CREATE stays refused."""
    cluster.psql("""
      DROP SCHEMA IF EXISTS team_api CASCADE;
      DROP ROLE IF EXISTS zg_team_dev; DROP ROLE IF EXISTS zg_team;
      DROP ROLE IF EXISTS zg_lead_dev; DROP ROLE IF EXISTS zg_leads;
      CREATE ROLE zg_team NOLOGIN; CREATE ROLE zg_team_dev NOLOGIN IN ROLE zg_team;
      CREATE ROLE zg_leads NOLOGIN; CREATE ROLE zg_lead_dev NOLOGIN IN ROLE zg_leads;
      CREATE SCHEMA team_api AUTHORIZATION zg_team;
      GRANT USAGE ON SCHEMA team_api TO PUBLIC;
      GRANT CREATE ON SCHEMA team_api TO zg_mallory, zg_lead_dev;
      SET ROLE zg_team_dev;
      CREATE FUNCTION team_api.hello() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'team' $$;
      SET ROLE zg_lead_dev;
      CREATE FUNCTION team_api.hello(who text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'lead' $$;
      SET ROLE zg_mallory;
      CREATE FUNCTION team_api.hello(who text, loud boolean) RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT 'mallory' $$;
      RESET ROLE;""")
    try:
        t = token("alice")
        p = start_proxy(cluster, "team", rpc={"schema": "team_api", "functions": ["hello"]})
        try:
            assert call(p.port, "GET", "/rpc/hello", t)[2] == "team"
            assert call(p.port, "GET", "/rpc/hello?who=x", t)[0] == 404
            assert {r["owner"] for r in refused(p)} == {"zg_lead_dev", "zg_mallory"}
        finally:
            stop_proxy(p)
        p = start_proxy(cluster, "team-leads", rpc={"schema": "team_api", "functions": ["hello"],
                                                     "trusted_owners": ["zg_leads", "no_such_role"]})
        try:
            assert call(p.port, "GET", "/rpc/hello", t)[2] == "team"
            assert call(p.port, "GET", "/rpc/hello?who=x", t)[2] == "lead"
            assert call(p.port, "GET", "/rpc/hello?who=x&loud=true", t)[0] == 404
            assert [r["owner"] for r in refused(p)] == ["zg_mallory"]
        finally:
            stop_proxy(p)
    finally:
        cluster.psql("""DROP SCHEMA team_api CASCADE;
          DROP ROLE zg_team_dev, zg_team, zg_lead_dev, zg_leads""")


def test_signature_entries_allow_exactly_their_overload(cluster, mallory):
    p = start_proxy(cluster, "signatures", rpc={"functions": [
        "over(integer)", "add(int4, int4)", "echo(text, int)", "add(int4,int4,int4)",
        "doc(nosuchtype)", "arr_sum(int[])"]})
    try:
        t = token("alice")
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1})[2] == "one"
        status, _, body = call(p.port, "POST", "/rpc/over", t, {"a": 1, "b": 2})
        assert status == 404 and body["code"] == "PGRST202"  # over(int, int) is not listed
        assert call(p.port, "GET", "/rpc/add?a=20&b=22", t)[2] == 42  # int4 is integer
        assert call(p.port, "GET", "/rpc/echo?msg=ab&times=2", t)[2] == "abab"
        assert call(p.port, "GET", "/rpc/echo?msg=ab", t)[2] == "ab"  # the default still applies
        assert call(p.port, "POST", "/rpc/arr_sum", t, {"xs": [1, 2]})[2] == 3  # int[] is integer[]
        # Listed by signature, but its owner is not trusted: refused all the same.
        assert call(p.port, "POST", "/rpc/add", t, {"a": 1, "b": 2, "c": 3})[0] == 404
        assert [r["function"] for r in refused(p)] == ["api.add(integer, integer, integer)"]
        assert pwned(cluster) == 0
        # An entry PostgreSQL cannot resolve allows nothing and costs no other entry.
        line = p.wait_for_log(lambda l: l.get("msg") ==
                              "an rpc.functions entry could not be resolved: it allows nothing")
        assert line["entry"] == "doc(nosuchtype)" and "nosuchtype" in line["error"]
        assert call(p.port, "POST", "/rpc/doc", t, {"body": {"a": 1}})[0] == 404
    finally:
        stop_proxy(p)


def test_name_entry_allows_every_trusted_overload(cluster, mallory):
    p = start_proxy(cluster, "names", rpc={"functions": ["over"]})
    try:
        t = token("alice")
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1})[2] == "one"
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1, "b": 2})[2] == "two"
        assert call(p.port, "POST", "/rpc/over", t, {"a": 1, "b": 2, "c": 3})[0] == 404
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", t)[0] == 404  # not listed at all
    finally:
        stop_proxy(p)


def test_a_schema_public_may_create_in_is_refused(cluster, mallory):
    cluster.psql("""DROP SCHEMA IF EXISTS open_api CASCADE; CREATE SCHEMA open_api;
      GRANT USAGE, CREATE ON SCHEMA open_api TO PUBLIC;
      CREATE FUNCTION open_api.hello() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'hi' $$;""")
    p = start_proxy(cluster, "public-create", rpc={"schema": "open_api", "functions": ["hello"]})
    try:
        status, _, body = call(p.port, "GET", "/rpc/hello", token("alice"))
        assert status == 404 and body["code"] == "PGRST202"
        line = p.wait_for_log(lambda l: l.get("msg") == "PUBLIC may CREATE in the /rpc schema: "
                                                        "every function in it is refused")
        assert line["level"] == "error" and 'REVOKE CREATE ON SCHEMA "open_api" FROM PUBLIC' in line["hint"]
        health = get_json(p.admin_port, "/health")[2]["rpc"]
        assert health["public_create"] is True
        assert [r["function"] for r in health["refused"]] == ["open_api.hello()"]
        assert "PUBLIC may CREATE" in health["refused"][0]["reason"]
        # Revoked and reloaded: callable.
        cluster.psql("REVOKE CREATE ON SCHEMA open_api FROM PUBLIC; SELECT zonegate.reload_schema()")
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded" and l.get("refused") == 0)
        assert call(p.port, "GET", "/rpc/hello", token("alice"))[2] == "hi"
    finally:
        stop_proxy(p)


def test_a_missing_schema_is_reported(cluster, mallory):
    p = start_proxy(cluster, "no-schema", rpc={"schema": "nowhere", "functions": ["add"]})
    try:
        line = p.wait_for_log(lambda l: l.get("msg") ==
                              "the /rpc schema does not exist: no function is callable")
        assert line["schema"] == "nowhere" and "api" in line["hint"]
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", token("alice"))[0] == 404
    finally:
        stop_proxy(p)
