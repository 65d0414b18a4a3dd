"""GET / on the public listener: the /rpc functions as PostgREST 12's root describes them, a
Swagger 2.0 document built from the live catalog, valid for @apidevtools/swagger-parser, with
PostgREST's parameter forms; what the Accept header and the token decide."""
import json

from test_api import api, call, token  # noqa: F401  (the module-scoped proxy fixture)
from zg import ROOT, http
from test_clients import node


def test_root_describes_the_callable_functions_and_validates(api, cluster, tmp_path):
    status, headers, body = http(api.port, "GET", "/", {"Authorization": "Bearer " + token("alice")})
    assert status == 200, body
    assert headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = json.loads(body)
    f = tmp_path / "root.json"
    f.write_bytes(body)
    result = node("validate_openapi.mjs", f)  # throws (exit 1) on an invalid document
    callable_ = cluster.psql("SELECT string_agg(DISTINCT proname, ',' ORDER BY proname) FROM pg_proc "
                             "WHERE pronamespace = 'api'::regnamespace AND proname <> 'hidden'").split(",")
    assert result["paths"] == sorted(["/", "/openapi.json"] + ["/rpc/" + n for n in callable_])
    assert doc["swagger"] == "2.0" and doc["externalDocs"]["url"] == "/openapi.json"
    paths = doc["paths"]
    add = paths["/rpc/add"]
    assert add["get"]["tags"] == ["(rpc) add"]
    assert add["get"]["parameters"] == [
        {"name": "a", "in": "query", "required": True, "type": "integer", "format": "integer"},
        {"name": "b", "in": "query", "required": True, "type": "integer", "format": "integer"}]
    assert add["post"]["parameters"] == [
        {"name": "args", "in": "body", "required": True,
         "schema": {"type": "object",
                    "properties": {"a": {"type": "integer", "format": "integer"},
                                   "b": {"type": "integer", "format": "integer"}},
                    "required": ["a", "b"]}},
        {"$ref": "#/parameters/preferParams"}]
    # A default makes an argument optional; of two overloads, b is in one only.
    assert [(p["name"], p["required"]) for p in paths["/rpc/echo"]["get"]["parameters"]] == \
        [("msg", True), ("times", False)]
    assert [(p["name"], p["required"]) for p in paths["/rpc/over"]["get"]["parameters"]] == \
        [("a", True), ("b", False)]
    xs = paths["/rpc/arr_sum"]["post"]["parameters"][0]["schema"]["properties"]["xs"]
    assert xs == {"type": "array", "format": "integer[]", "items": {"type": "integer"}}
    assert "type" not in paths["/rpc/doc"]["post"]["parameters"][0]["schema"]["properties"]["body"]
    assert "204" in paths["/rpc/nothing"]["post"]["responses"]
    assert "text/csv" in paths["/rpc/my_zones"]["get"]["produces"]  # a set


def test_root_asks_what_rpc_asks(api):
    auth = {"Authorization": "Bearer " + token("alice")}
    for accept in ("application/openapi+json", "application/json", "*/*", "text/html, */*;q=0.1"):
        assert http(api.port, "GET", "/", dict(auth, Accept=accept))[0] == 200, accept
    status, _, body = http(api.port, "GET", "/", dict(auth, Accept="text/csv"))
    assert status == 406 and json.loads(body)["code"] == "PGRST107"
    status, headers, body = http(api.port, "HEAD", "/", auth)
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    status, headers, _ = http(api.port, "GET", "/")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    # The admin listener has no such route.
    assert http(api.admin_port, "GET", "/", auth)[0] == 404
