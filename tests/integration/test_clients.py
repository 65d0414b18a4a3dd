"""Clients nobody here wrote: @supabase/postgrest-js calls /rpc through the proxy and must get
what the same functions return in psql; @apidevtools/swagger-parser validates /openapi.json."""
import json
import re
import subprocess
from pathlib import Path

from test_api import api, call, token  # noqa: F401  (the module-scoped proxy fixture)
from zg import ROOT, http

NODE = ROOT / "tests" / "integration" / "node"


def node(script, *args):
    out = subprocess.run(["node", str(NODE / script), *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_postgrest_js_gets_what_psql_gets(api, cluster):
    got = node("postgrest_client.mjs", "http://127.0.0.1:%d" % api.port, token("bob"))
    psql = lambda sql: cluster.psql("SET zonegate.user_id = 'bob'; " + sql).splitlines()[-1]
    assert got["add_post"]["data"] == int(psql("SELECT api.add(2, 3)"))
    assert got["add_get"]["data"] == int(psql("SELECT api.add(20, 22)"))
    assert got["echo_get"]["data"] == psql("SELECT api.echo('hi', 2)")
    # VOLATILE through POST: the counter it returns moves on by one in psql afterwards.
    bumped = got["bump_post"]["data"]
    assert int(psql("SELECT api.bump(0)")) == bumped + 1
    assert got["my_zones_get"]["data"] == json.loads(psql("SELECT json_agg(z) FROM api.my_zones() z"))
    assert got["report_post"]["data"] == json.loads(psql("SELECT json_agg(r) FROM api.report(21) r"))
    assert got["one_thing_get"]["data"] == json.loads(psql("SELECT to_json(api.one_thing())"))
    assert got["fail_get"]["status"] == 400 and got["fail_get"]["error"]["code"] == "P0001"
    assert got["fail_get"]["error"]["message"] == "boom"
    assert got["hidden_post"]["status"] == 404 and got["hidden_post"]["error"]["code"] == "PGRST202"


def test_openapi_is_served_valid_and_complete(api, tmp_path):
    status, headers, body = http(api.port, "GET", "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/openapi+json"
    assert body == (ROOT / "docs" / "openapi.json").read_bytes()
    f = tmp_path / "openapi.json"
    f.write_bytes(body)
    result = node("validate_openapi.mjs", f)
    assert result["openapi"].startswith("3.")
    # Every route the proxy registers (router.add, or the dashboard's add_admin_route, in its
    # sources) is described, and nothing else.
    registered = set()
    for src in (ROOT / "proxy").rglob("*.cpp"):
        for method, path in re.findall(r'(?:router\.add|add_admin_route)\(\s*(?:router,\s*)?"([A-Z]+)",\s*"([^"]+)"',
                                       src.read_text()):
            registered.add((method.lower(), path))
    assert len(registered) >= 20, registered
    spec = json.loads(body)
    described = {(m, p) for p, ops in spec["paths"].items() for m in ops
                 if m in ("get", "post", "put", "patch", "delete")}
    assert described == registered, (sorted(registered - described), sorted(described - registered))
    assert result["paths"] == sorted(spec["paths"])
