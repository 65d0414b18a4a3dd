"""The request collections in docs/ cannot rot: newman runs docs/postman/zonegate.postman_collection.json
(every request, every pm.test) against a real zonegate-proxy started with the demo's own zonegate.yaml
over the API fixture, and every path and method of docs/openapi.json must have a request in the
collection and in docs/zonegate.http (and every request must be a documented route)."""
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_api import ADMIN, SECRET, stop_proxy, token
from zg import ROOT, Proxy, get_json, wait_for

POSTMAN = ROOT / "docs" / "postman"
COLLECTION = POSTMAN / "zonegate.postman_collection.json"
ENVIRONMENT = POSTMAN / "demo.postman_environment.json"
HTTP_FILE = ROOT / "docs" / "zonegate.http"
OPENAPI = ROOT / "docs" / "openapi.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# api_fixture.sql's values for the variables whose demo defaults (demo.postman_environment.json)
# name demo data: alice sees 11 and 21 with their subtrees; (2.5, 2.5) lies in district 111.
FIXTURE_VALUES = {"userId": "alice", "zoneId": "11", "lon": "2.5", "lat": "2.5", "zoneAtId": "111"}


def leaves(items):
    for it in items:
        if "item" in it:
            yield from leaves(it["item"])
        else:
            yield it


def requests_of_collection():
    """(method, path with {{variables}}) of every request, in run order."""
    out = []
    for it in leaves(json.loads(COLLECTION.read_text())["item"]):
        raw = it["request"]["url"]["raw"]
        out.append((it["request"]["method"].upper(), split_base(raw, it["name"])))
    return out


def split_base(raw, where):
    """The path of a request URL: {{adminUrl}} for the admin listener's routes (/admin*,
    /metrics), {{baseUrl}} for every other."""
    admin = raw.startswith("{{adminUrl}}/")
    assert admin or raw.startswith("{{baseUrl}}/"), "%s: %s starts with neither base" % (where, raw)
    path = raw[len("{{adminUrl}}" if admin else "{{baseUrl}}"):].split("?")[0]
    assert admin == (path.startswith("/admin") or path == "/metrics"), \
        "%s: %s is on the wrong listener" % (where, raw)
    return path


def requests_of_http_file():
    found = []
    for line in HTTP_FILE.read_text().splitlines():
        m = re.match(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+)(?: HTTP/1\.1)?$", line)
        if m:
            found.append((m.group(1), split_base(m.group(2), line)))
    return found


def documented_operations():
    doc = json.loads(OPENAPI.read_text())
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}


def template_matches(template, path):
    """An OpenAPI path template against a request path, whose segments may be {{variables}}."""
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                      for part in re.split(r"(\{[^}/]+\})", template))
    return re.fullmatch(pattern, path) is not None


def operation_of(method, path, ops):
    """The documented operation a request calls; an exact path wins over a template."""
    exact = [(m, p) for m, p in ops if m == method and p == path]
    if exact:
        return exact[0]
    matches = [(m, p) for m, p in ops if m == method and template_matches(p, path)]
    return matches[0] if len(matches) == 1 else None


def check_coverage(requests, where):
    ops = documented_operations()
    undocumented = [r for r in requests if operation_of(*r, ops) is None]
    assert not undocumented, "%s calls routes docs/openapi.json does not describe: %s" % (where, undocumented)
    covered = {operation_of(*r, ops) for r in requests}
    missing = sorted(ops - covered)
    assert not missing, "%s has no request for %s" % (where, missing)


def test_the_collection_has_a_request_for_every_documented_route():
    check_coverage(requests_of_collection(), "docs/postman/zonegate.postman_collection.json")


def test_the_http_file_has_a_request_for_every_documented_route():
    check_coverage(requests_of_http_file(), "docs/zonegate.http")


def used_variables(text):
    return set(re.findall(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}", text))


def test_every_variable_the_requests_use_is_in_the_environment_or_set_by_a_script():
    collection = json.loads(COLLECTION.read_text())
    env = {v["key"] for v in json.loads(ENVIRONMENT.read_text())["values"]}
    scripts = "\n".join("\n".join(e["script"]["exec"]) for it in leaves(collection["item"])
                        for e in it.get("event", []))
    set_by_scripts = set(re.findall(r'pm\.collectionVariables\.set\("([^"]+)"', scripts))
    requests = json.dumps([it["request"] for it in leaves(collection["item"])])
    assert used_variables(requests) - env - set_by_scripts == set()
    # demo.env's keys fill the five that name the demo's own tokens and user (docs/postman/README.md).
    assert {"baseUrl", "adminUrl", "userToken", "serviceToken", "adminToken", "userId"} <= env
    # Each remaining variable has a demo default and a fixture value below.
    defaults = {v["key"]: v["value"] for v in json.loads(ENVIRONMENT.read_text())["values"]}
    assert set(FIXTURE_VALUES) == env - {"baseUrl", "adminUrl", "userToken", "serviceToken", "adminToken"}
    assert all(defaults[k] for k in FIXTURE_VALUES if k != "userId")
    assert defaults["baseUrl"] == "http://127.0.0.1:8080"
    assert defaults["adminUrl"] == "http://127.0.0.1:8081"
    # The .http file declares and uses the same variables.
    http_text = HTTP_FILE.read_text()
    declared = set(re.findall(r"^@([A-Za-z_][A-Za-z0-9_]*)\s*=", http_text, re.M))
    assert used_variables(http_text) - declared == set()
    assert env - {"zoneAtId"} <= declared <= env  # zoneAtId is only what the collection expects


@pytest.fixture(scope="module")
def demo_proxy(cluster):
    """zonegate-proxy as the demo runs it: the repository's zonegate.yaml (its rpc allow-list,
    rate limits and auth settings), pointed at the fixture through the variables it reads."""
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    p = Proxy((ROOT / "zonegate.yaml").read_text(), name="postman", env={
        "ZONEGATE_HOST": "127.0.0.1", "ZONEGATE_PORT": "0", "ZONEGATE_ADMIN_PORT": "0",
        "ZONEGATE_DATABASE_URL": cluster.conninfo,
        "ZONEGATE_JWT_SECRET": SECRET, "ZONEGATE_ADMIN_TOKEN": ADMIN})
    try:
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=20)
        # /health reports "degraded" until every worker's pool has a ready connection.
        wait_for(lambda: get_json(p.port, "/health")[2]["status"] == "ok", what="/health ok")
    except BaseException:
        p.stop()
        raise
    yield p
    stop_proxy(p)


def test_newman_runs_the_collection_against_a_real_proxy(demo_proxy):
    assert NEWMAN.exists(), "node_modules/.bin/newman is missing: run make deps (npm ci)"
    values = dict(FIXTURE_VALUES, baseUrl=demo_proxy.base, adminUrl=demo_proxy.admin_base,
                  userToken=token("alice"),
                  serviceToken=token("postman-service", role="service"), adminToken=ADMIN)
    n_items = len(requests_of_collection())
    with tempfile.TemporaryDirectory(prefix="zonegate-newman.") as tmp:
        report_path = Path(tmp, "report.json")
        cmd = [str(NEWMAN), "run", str(COLLECTION), "--environment", str(ENVIRONMENT),
               "--reporters", "cli,json", "--reporter-json-export", str(report_path),
               "--color", "off", "--timeout-request", "10000"]
        for k, v in values.items():
            cmd += ["--env-var", "%s=%s" % (k, v)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env=dict(os.environ, NO_COLOR="1"))
        cli = out.stdout[-6000:] + out.stderr[-2000:]
        assert report_path.exists(), "newman wrote no report (exit %s):\n%s" % (out.returncode, cli)
        report = json.loads(report_path.read_text())
    run = report["run"]
    failures = ["%s: %s" % (f.get("source", {}).get("name"), f.get("error", {}).get("message"))
                for f in run["failures"]]
    assert out.returncode == 0 and not failures, "newman failed:\n%s\n%s" % ("\n".join(failures), cli)
    stats = run["stats"]
    assert stats["assertions"]["failed"] == 0 and stats["requests"]["failed"] == 0
    assert stats["testScripts"]["failed"] == 0 and stats["prerequestScripts"]["failed"] == 0
    # Every item ran once, each sent its request and asserted something.
    assert stats["requests"]["total"] == n_items == len(run["executions"]), stats
    names = [e["item"]["name"] for e in run["executions"]]
    assert len(set(names)) == n_items, "item names must be unique: %s" % names
    for e in run["executions"]:
        assertions = e.get("assertions") or []
        assert len(assertions) >= 2, "%s asserted nothing of its own" % e["item"]["name"]
        assert all("error" not in a for a in assertions), e["item"]["name"]
        assert "response" in e, "%s got no response" % e["item"]["name"]
    assert stats["assertions"]["total"] >= 3 * n_items
