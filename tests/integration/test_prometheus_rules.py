"""deploy/: the Prometheus rules (deploy/prometheus/*.rules.yml) and the Grafana dashboard
(deploy/grafana/zonegate.json). promtool checks the rules and runs their unit tests; mutated rules
must fail those tests (so they can fail); every alert is tested firing and not firing; and, so
that neither can rot, every metric, label and label value they read is looked up in a scrape of
the real proxy's /metrics against the test fixture, with the right kind of function around it
(rate() over counters only, never a bare counter)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from test_api import ADMIN, call, start_proxy, stop_proxy, token
from zg import ROOT, http

PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(PROM.glob("*.rules.yml"))
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "zonegate.json"
TROUBLESHOOTING = ROOT / "docs" / "TROUBLESHOOTING.md"
FIXTURE = Path(__file__).with_name("api_fixture.sql")

# Series Prometheus makes itself for every target; not in /metrics.
SYNTHETIC = {"up"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}
# Where a counter may appear: a rate, or a Grafana variable's label_values() (labels only).
COUNTER_FUNCTIONS = RATE_FUNCTIONS | {"resets", "label_values"}
TARGET_LABELS = {"job", "instance"}  # added by Prometheus at scrape time


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: it is Debian's prometheus package (make deps installs it)")
    return path


def run_promtool(*args, cwd=None):
    out = subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                         timeout=300)
    return out.returncode, (out.stdout + out.stderr)


def load_rules(paths=RULE_FILES):
    groups = []
    for path in paths:
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def all_rules():
    return [r for g in load_rules() for r in g["rules"]]


def load_rule_tests():
    return [(path, t) for path in RULE_TESTS for t in yaml.safe_load(path.read_text())["tests"]]


# --- PromQL: the metric selectors an expression reads --------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<braces>\{(?:[^}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)
  | (?P<var>\$\{[^}]*\}|\$\w+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>,@=])
""", re.X)
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
# Keywords whose parenthesised argument is a list of label names, not an expression.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _LABEL_LISTS | {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def parse_matchers(braces):
    inner, pos, out = braces[1:-1], 0, []
    while inner[pos:].strip():
        m = _MATCHER.match(inner, pos)
        if m is None:
            raise ValueError("cannot parse label matchers %r" % braces)
        out.append((m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")))
        pos = m.end()
    return out


def selectors(expr):
    """(metric name, [(label, op, value)], innermost enclosing function or None) for every
    vector selector in `expr`. Grafana variables ($job, $__rate_interval) may appear in label
    values and ranges."""
    toks = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError("cannot tokenize %r at %r" % (expr, expr[pos:pos + 20]))
        pos = m.end()
        if m.lastgroup != "ws":
            toks.append((m.lastgroup, m.group()))
    out, stack, pending, i = [], [], None, 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident" and text in _LABEL_LISTS:
            if nxt[0] == "open":  # skip the label list
                depth, i = 0, i + 1
                while True:
                    depth += {"open": 1, "close": -1}.get(toks[i][0], 0)
                    if depth == 0:
                        break
                    i += 1
        elif kind == "ident" and text in _KEYWORDS:
            pass
        elif kind == "ident" and nxt[0] == "open":
            pending = text  # a function call
        elif kind == "ident" and nxt[0] == "ident" and nxt[1] in ("by", "without"):
            pending = text  # an aggregation: sum by (x) (...)
        elif kind == "ident":
            matchers = parse_matchers(nxt[1]) if nxt[0] == "braces" else []
            fn = next((f for f in reversed(stack) if f is not None), None)
            out.append((text, matchers, fn))
        elif kind == "braces" and (i == 0 or toks[i - 1][0] != "ident"):
            raise ValueError("a selector without a metric name in %r" % expr)
        elif kind == "open":
            stack.append(pending)
            pending = None
        elif kind == "close":
            stack.pop()
        i += 1
    assert not stack, "unbalanced parentheses in %r" % expr
    return out


@pytest.mark.parametrize("expr,expected", [
    ('sum by (job, route) (rate(a_total{route!~"x|y",code=~"5.."}[5m]))',
     [("a_total", [("route", "!~", "x|y"), ("code", "=~", "5..")], "rate")]),
    ('histogram_quantile(0.95, sum by (le) (rate(h_bucket{class!="5xx"}[$__rate_interval])))',
     [("h_bucket", [("class", "!=", "5xx")], "rate")]),
    ('sum(rate(a[5m])) by (job) / ignoring(code) group_left(route) b:rec:rate5m > (14.4 * 0.001)',
     [("a", [], "rate"), ("b:rec:rate5m", [], None)]),
    ('absent(up{job="zonegate"}) or vector(0) offset 1h', [("up", [("job", "=", "zonegate")], "absent")]),
    ('max by (instance) (g{state="open"}) * 2 + max without (le) (g{state="half_open"}) == bool 1',
     [("g", [("state", "=", "open")], "max"), ("g", [("state", "=", "half_open")], "max")]),
    ('label_replace(rate(c_total{a="}"}[1m:10s]), "dst", "$1", "src", "(.*)")',
     [("c_total", [("a", "=", "}")], "rate")]),
    ('(x) - (sum(increase(y_total{job=~"$job"}[$__range])) or vector(0))',
     [("x", [], None), ("y_total", [("job", "=~", "$job")], "increase")]),
])
def test_the_promql_reader_finds_every_selector(expr, expected):
    assert selectors(expr) == expected


def rule_exprs():
    for g in load_rules():
        for r in g["rules"]:
            yield "rule %s" % (r.get("record") or r.get("alert")), r["expr"]


def dashboard():
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs():
    d = dashboard()
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield "panel %d %r target %s" % (p["id"], p["title"], t["refId"]), t["expr"]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", q)
            assert m, "variable %s: expected label_values(selector, label), got %r" % (v["name"], q)
            yield "variable %s" % v["name"], "label_values(%s)" % m.group(1)


# --- promtool ------------------------------------------------------------------------------

def test_promtool_checks_the_rules():
    assert RULE_FILES, "no deploy/prometheus/*.rules.yml"
    rc, out = run_promtool("check", "rules", *RULE_FILES)
    assert rc == 0, out
    assert "SUCCESS" in out, out


def test_promtool_unit_tests_pass():
    assert RULE_TESTS, "no deploy/prometheus/tests/*.yml"
    rc, out = run_promtool("test", "rules", *RULE_TESTS)
    assert rc == 0, out
    assert out.count("SUCCESS") == len(RULE_TESTS), out


SLO_ROUTES = 'route!~"metrics|health|healthz|readyz|openapi|admin_.*"'


# Each mutation breaks one rule the way a careless edit would; the named unit tests must notice.
MUTATIONS = [
    ("fast-burn-factor", "> (14.4 * 0.001)", "> (144 * 0.001)", "availability_test.yml"),
    ("medium-burn-for", "for: 15m\n        labels:\n          severity: page\n          long: 6h",
     "for: 45m\n        labels:\n          severity: page\n          long: 6h", "availability_test.yml"),
    ("4xx-as-errors", 'code=~"5.."', 'code=~"4.."', "availability_test.yml"),
    ("probes-count", SLO_ROUTES, 'route!~"metrics"', "availability_slow_test.yml"),
    ("slow-burn-factor", "> (3 * 0.001)", "> (6 * 0.001)", "availability_slow_test.yml"),
    ("5xx-latency-counts", ',class!="5xx"', "", "latency_errors_test.yml"),
    ("no-latency-traffic-floor", "route:zonegate_http_requests:rate5m > 0.1",
     "route:zonegate_http_requests:rate5m > 0", "latency_errors_test.yml"),
    ("p50-not-p95", "histogram_quantile(0.95, sum by (job, route, le)",
     "histogram_quantile(0.5, sum by (job, route, le)", "latency_errors_test.yml"),
    ("route-error-threshold", "ratio_rate30m > 0.001", "ratio_rate30m > 0.01", "latency_errors_test.yml"),
    ("hit-target-lowered", "ratio_rate30m < 0.8", "ratio_rate30m < 0.5", "cache_test.yml"),
    ("stale-not-a-hit",
     "+ sum by (job, route) (rate(zonegate_cache_stale_total[5m]))\n"
     "            + sum by (job, route) (rate(zonegate_cache_coalesced_total[5m]))\n          )\n          /",
     "+ sum by (job, route) (rate(zonegate_cache_coalesced_total[5m]))\n          )\n          /",
     "cache_test.yml"),
    ("lag-threshold", "p99_rate5m > 1", "p99_rate5m > 2", "cache_test.yml"),
    ("proxy-down-for", 'up{job="zonegate"} == 0\n        for: 2m', 'up{job="zonegate"} == 0\n        for: 10m',
     "platform_test.yml"),
    ("breaker-state", 'zonegate_breaker_state{state="open"}', 'zonegate_breaker_state{state="half_open"}',
     "platform_test.yml"),
    ("flapping-threshold", "[30m]) > 3", "[30m]) > 4", "platform_test.yml"),
]


@pytest.mark.parametrize("old,new,tests", [pytest.param(*m[1:], id=m[0]) for m in MUTATIONS])
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path, old, new, tests):
    shutil.copytree(PROM, tmp_path / "prometheus")
    (rules,) = [tmp_path / "prometheus" / p.name for p in RULE_FILES if old in p.read_text()]
    text = rules.read_text()
    rules.write_text(text.replace(old, new))
    rc, out = run_promtool("check", "rules", rules)
    assert rc == 0, "the mutation must still be valid rules:\n" + out
    rc, out = run_promtool("test", "rules", tmp_path / "prometheus" / "tests" / tests)
    assert rc != 0, "%s passed with %r replaced by %r:\n%s" % (tests, old, new, out)
    assert "FAILED" in out, out


def _rule_labels(rule):
    return {"alertname": rule["alert"], **rule.get("labels", {})}


def test_every_alert_is_tested_firing_and_not_firing():
    cases = [c for _, t in load_rule_tests() for c in t.get("alert_rule_test", [])]
    for rule in (r for r in all_rules() if "alert" in r):
        want = _rule_labels(rule)
        named = [c for c in cases if c["alertname"] == rule["alert"]]
        fired = [a for c in named for a in c.get("exp_alerts") or []
                 if want.items() <= {"alertname": c["alertname"], **a["exp_labels"]}.items()]
        assert fired, "no unit test expects %s to fire" % want
        # Not firing: a case for this alert where this rule's labels are not expected.
        quiet = [c for c in named
                 if not any(want.items() <= {"alertname": c["alertname"], **a["exp_labels"]}.items()
                            for a in c.get("exp_alerts") or [])]
        assert quiet, "no unit test expects %s not to fire" % want
        for a in fired:
            assert a.get("exp_annotations"), "%s: check the rendered annotations" % want


def test_every_recording_rule_value_is_checked():
    exprs = " ".join(e["expr"] for _, t in load_rule_tests() for e in t.get("promql_expr_test", []))
    unchecked = [r["record"] for r in all_rules()
                 if "record" in r and not re.search(r"(?<![\w:])%s(?![\w:])" % re.escape(r["record"]), exprs)]
    assert not unchecked, "recording rules no promql_expr_test reads: %s" % unchecked


def test_rules_read_recording_rules_of_their_own_group_defined_before_them():
    """Groups are evaluated independently (promtool even in a random order): a rule that reads
    another group's recording rule sees it one evaluation late, and unit tests become flaky."""
    recorded = {r["record"] for r in all_rules() if "record" in r}
    for g in load_rules():
        before = set()
        for r in g["rules"]:
            for name, _, _ in selectors(r["expr"]):
                if name in recorded:
                    assert name in before, "%s reads %s, which is not recorded before it in group %s" % (
                        r.get("record") or r.get("alert"), name, g["name"])
            if "record" in r:
                before.add(r["record"])


def github_anchors(markdown):
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_alerts_have_a_severity_annotations_and_a_runbook_that_exists():
    anchors = github_anchors(TROUBLESHOOTING.read_text())
    assert "the-circuit-breaker-is-open" in anchors  # the slug rule itself
    names = set()
    for rule in (r for r in all_rules() if "alert" in r):
        names.add(rule["alert"])
        assert re.fullmatch(r"Zonegate[A-Z]\w+", rule["alert"]), rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("page", "ticket"), rule["alert"]
        ann = rule.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), rule["alert"]
        path, _, anchor = ann.get("runbook_url", "").partition("#")
        assert path == "docs/TROUBLESHOOTING.md", (rule["alert"], ann.get("runbook_url"))
        assert anchor in anchors, "%s: runbook anchor #%s is not a heading of %s" % (
            rule["alert"], anchor, TROUBLESHOOTING.name)
    # The alerts section names every alert, so an operator paged by one finds it.
    section = TROUBLESHOOTING.read_text().split("## Alerts and dashboards", 1)[1]
    missing = sorted(n for n in names if n not in section)
    assert not missing, "docs/TROUBLESHOOTING.md 'Alerts and dashboards' does not name %s" % missing
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", section)) - anchors)
    assert not broken, "links to no heading in 'Alerts and dashboards': %s" % broken


def test_the_dashboard_is_valid():
    d = dashboard()
    assert 36 <= d["schemaVersion"] <= 41, d["schemaVersion"]
    assert d["uid"] and d["title"]
    ds = [v for v in d["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert ds and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids: %s" % ids
    cells = set()
    for p in d["panels"]:
        assert p["title"], p["id"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"], "panel %r has no targets" % p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t.get("expr", "").strip(), "panel %r target %s has no expr" % (p["title"], t["refId"])
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "panel %r overlaps another" % p["title"]
                cells.add((x, y))
    for where, expr in dashboard_exprs():
        selectors(expr)  # every expression reads as PromQL
    used_vars = set(re.findall(r"\$(\w+)", DASHBOARD.read_text())) - {"__rate_interval", "__range"}
    defined = {v["name"] for v in d["templating"]["list"]}
    assert used_vars <= defined, used_vars - defined


# --- the real proxy's scrape ---------------------------------------------------------------

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})? \S+$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_scrape(text):
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            assert m, "not a sample line: %r" % line
            samples.setdefault(m.group(1), []).append(dict(_LABEL.findall(m.group(3) or "")))
    return types, samples


def kind_of(name, types):
    if name in types:
        return types[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return "counter"  # a histogram's series are counters
    return None


@pytest.fixture(scope="module")
def scrape(cluster):
    cluster.psql(FIXTURE.read_text())
    p = start_proxy(cluster, "prometheus-rules",
                    rate_limit={"policies": {"add": {"routes": ["/rpc/add"], "rate": "1/min",
                                                     "burst": 1}}},
                    resilience={"deadlines": {"rpc": "300ms"}})
    try:
        alice = token("alice")
        assert call(p.port, "GET", "/v1/me/context", alice)[0] == 200        # a miss
        assert call(p.port, "GET", "/v1/me/context", alice)[0] == 200        # a hit
        assert call(p.port, "GET", "/v1/me/zones", alice)[0] == 200
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", alice)[0] == 200
        assert call(p.port, "GET", "/rpc/add?a=1&b=2", alice)[0] == 429     # rate_limited
        status, _, body = call(p.port, "GET", "/rpc/slow_stable?seconds=5&tag=prom", alice)
        assert status == 504, body                                           # a 5xx, a deadline
        for path in ("/health", "/healthz", "/readyz", "/openapi.json"):
            assert http(p.port, "GET", path)[0] == 200, path
        assert http(p.admin_port, "GET", "/metrics")[0] == 200
        assert call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)[0] == 200
        status, _, text = http(p.admin_port, "GET", "/metrics")
        assert status == 200
        yield parse_scrape(text.decode())
    finally:
        stop_proxy(p)


def check_selector(where, name, matchers, fn, types, samples, recorded):
    problems = []
    if ":" in name:
        if name not in recorded:
            problems.append("%s: %s is no recording rule of deploy/prometheus" % (where, name))
        return problems
    if name in SYNTHETIC:
        return problems
    kind = kind_of(name, types)
    if name not in samples:
        hint = " (a histogram: read %s_bucket, _sum or _count)" % name if kind == "histogram" else ""
        return ["%s: %s is not in the proxy's /metrics%s" % (where, name, hint)]
    if fn in RATE_FUNCTIONS and kind != "counter":
        problems.append("%s: %s() over %s, a %s" % (where, fn, name, kind))
    if kind == "counter" and fn not in COUNTER_FUNCTIONS:
        problems.append("%s: the counter %s is read without rate()/increase() (inside %s)" % (where, name, fn))
    for label, op, value in matchers:
        if label in TARGET_LABELS:
            continue
        values = {s[label] for s in samples[name] if label in s}
        if not values:
            problems.append("%s: %s has no label %r" % (where, name, label))
        elif "$" in value:
            continue  # a Grafana variable
        elif op in ("=", "!="):
            if value not in values:
                problems.append("%s: %s{%s%s%r}: no such value (seen: %s)" % (
                    where, name, label, op, value, sorted(values)))
        else:
            for alt in value.split("|"):
                if not any(re.fullmatch(alt, v) for v in values):
                    problems.append("%s: %s{%s%s...}: %r matches no value (seen: %s)" % (
                        where, name, label, op, alt, sorted(values)))
    return problems


def test_every_metric_the_rules_and_the_dashboard_read_is_in_a_real_scrape(scrape):
    types, samples = scrape
    recorded = {r["record"] for r in all_rules() if "record" in r}
    problems, seen = [], set()
    for where, expr in list(rule_exprs()) + list(dashboard_exprs()):
        for name, matchers, fn in selectors(expr):
            seen.add(name)
            problems += check_selector(where, name, matchers, fn, types, samples, recorded)
    assert not problems, "\n".join(problems)
    # The check ran over what matters: the SLO figures' inputs are among the names read.
    assert {"zonegate_http_requests_total", "zonegate_http_request_duration_seconds_bucket",
            "zonegate_cache_hits_total", "zonegate_invalidation_lag_seconds_bucket",
            "zonegate_breaker_state", "zonegate_pool_connections",
            "zonegate_rate_limit_decisions_total", "up"} <= seen, seen


def test_the_scrape_check_catches_what_would_rot(scrape):
    """The checker itself: a renamed metric, a histogram read without _bucket, a wrong label,
    an impossible value, rate() over a gauge and a bare counter are all reported."""
    types, samples = scrape
    recorded = {"job:x:rate5m"}
    bad = [
        'rate(zonegate_http_request_total[5m])',
        'rate(zonegate_http_request_duration_seconds[5m])',
        'rate(zonegate_http_requests_total{status=~"5.."}[5m])',
        'zonegate_breaker_state{state="opened"}',
        'rate(zonegate_http_requests_total{route!~"metrics|heath"}[5m])',
        'rate(zonegate_pool_waiting[5m])',
        'zonegate_pool_jobs_total',
        'job:y:rate5m',
    ]
    for expr in bad:
        problems = [p for name, m, fn in selectors(expr)
                    for p in check_selector("t", name, m, fn, types, samples, recorded)]
        assert problems, expr
    good = 'sum(rate(zonegate_http_requests_total{route!~"metrics|health",code=~"5.."}[5m])) / job:x:rate5m'
    assert not [p for name, m, fn in selectors(good)
                for p in check_selector("t", name, m, fn, types, samples, recorded)]
