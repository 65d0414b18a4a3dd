"""PostgREST's read side on /rpc over real HTTP against a real Postgres (postgrest_query_fixture.sql):
select= with renames, every horizontal filter operator, order= with nulls, limit/offset, Range and
Content-Range with Prefer: count, the media types (JSON array, single object with 406 PGRST116,
CSV, nulls=stripped), the Content-Types of a POST, JSON byte for byte as PostgREST's SQL writes it
(compared with what psql returns for the same SQL), the cache keeping answers apart, hostile
select/filter strings refused before any SQL, and @supabase/postgrest-js driving all of it."""
import json
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from test_api import call, start_proxy, stop_proxy, token
from zg import ROOT, http, wait_for

FUNCTIONS = ["items", "one_pair", "pairs", "split", "twice", "numbers", "maybe_null", "nothing",
             "search", "echo", "body_json", "body_text", "body_bytes", "single", "make_rows"]


@pytest.fixture(scope="module")
def pq(cluster):
    cluster.psql(Path(__file__).with_name("postgrest_query_fixture.sql").read_text())
    p = start_proxy(cluster, "pq", rpc={"schema": "pq", "functions": FUNCTIONS},
                    server={"workers": 1})
    yield p
    stop_proxy(p)


@pytest.fixture(scope="module")
def cached(cluster, pq):
    # A cached function declares what it reads; an application table is watched.
    cluster.psql("SELECT zonegate.watch_table('pq.items')")
    p = start_proxy(cluster, "pq-cache", rpc={"schema": "pq", "functions": FUNCTIONS},
                    server={"workers": 1},
                    cache={"rpc": {"items": {"ttl": "60s", "scope": "shared",
                                             "depends_on": ["pq.items"]},
                                   "numbers": {"ttl": "60s", "scope": "shared",
                                               "depends_on": []}}})
    # The depends_on check runs after the catalog load: until it has, nothing is cached.
    wait_for(lambda: json.loads(http(p.admin_port, "GET", "/health")[2])["rpc"]["cache_refused"] == [],
             what="the depends_on check")
    yield p
    stop_proxy(p)


def get(p, path, headers=None, method="GET", body=None):
    """(status, headers, raw body text) of a call as alice."""
    h = {"Authorization": "Bearer " + token("alice")}
    h.update(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    status, hdrs, data = http(p.port, method, path, h, body)
    return status, hdrs, data.decode()


def ok_json(p, path, headers=None, method="GET", body=None):
    status, hdrs, text = get(p, path, headers, method, body)
    assert status == 200, (path, status, text)
    return json.loads(text)


def psql(cluster, sql):
    return cluster.psql(sql)


def ids(p, query):
    return [r["id"] for r in ok_json(p, "/rpc/items?select=id&" + query)]


def psql_ids(cluster, where):
    out = psql(cluster, "SELECT coalesce(json_agg(id ORDER BY id), '[]') FROM pq.items() i WHERE " + where)
    return json.loads(out)


def jobs(p):
    """zonegate_pool_jobs_total once it has settled: workers publish their pool figures every
    100 ms, so a job of an earlier request may show up late; read until two reads a few
    publications apart agree."""
    def read():
        text = http(p.admin_port, "GET", "/metrics")[2].decode()
        for line in text.splitlines():
            if line.startswith("zonegate_pool_jobs_total "):
                return int(float(line.split()[1]))
        raise AssertionError("no zonegate_pool_jobs_total")
    last = read()
    while True:
        time.sleep(0.3)
        now = read()
        if now == last:
            return now
        last = now


# ---------------------------------------------------------------- JSON as PostgREST

def test_json_is_byte_for_byte_what_postgrest_sql_gives(pq, cluster):
    # PostgREST aggregates with json_agg: column order kept, numbers as Postgres writes them
    # (1.50 stays 1.50), jsonb values as jsonb prints them, nulls as null.
    status, h, text = get(pq, "/rpc/items")
    assert status == 200 and h["content-type"] == "application/json; charset=utf-8"
    assert text == psql(cluster, "SELECT coalesce(json_agg(_r), '[]') FROM pq.items() _r")
    rows = json.loads(text)
    assert list(rows[0]) == ["id", "name", "price", "tags", "born", "active", "score", "meta", "ünï",
                             "Mixed Case"]
    assert '"price":1.50' in text and '"score":-1e+300' in text and '"meta":null' in text
    # A renamed selection is written the same way: "key":value, rows separated as json_agg does.
    status, _, text = get(pq, "/rpc/items?select=b:name,a:id,price&id=lte.2")
    assert text == psql(cluster, "SELECT json_agg(_s) FROM (SELECT name AS b, id AS a, price "
                                 "FROM pq.items() WHERE id <= 2) _s")


def test_result_shapes(pq, cluster):
    assert get(pq, "/rpc/twice?n=21")[2] == "42"                       # a scalar: the bare value
    assert ok_json(pq, "/rpc/numbers?n=3") == [1, 2, 3]                 # a set of scalars: values
    assert ok_json(pq, "/rpc/one_pair") == {"k": "one", "v": 1}         # a row type: an object
    assert get(pq, "/rpc/split?a=3")[2] == psql(cluster, "SELECT to_json(s) FROM pq.split(3) s")
    assert get(pq, "/rpc/maybe_null")[2] == "null"
    status, h, text = get(pq, "/rpc/nothing")
    assert status == 204 and text == ""
    assert ok_json(pq, "/rpc/pairs?n=2") == [{"k": "k1", "v": 1}, {"k": "k2", "v": 2}]
    # A scalar result's one column is named after the function (as PostgREST names it).
    assert ok_json(pq, "/rpc/numbers?n=5&numbers=gt.3") == [4, 5]
    assert ok_json(pq, "/rpc/numbers?n=5&order=numbers.desc&limit=2") == [5, 4]
    assert ok_json(pq, "/rpc/twice?n=2&twice=eq.4") == 4
    assert ok_json(pq, "/rpc/twice?n=2&twice=eq.5") is None       # filtered out: null, as PostgREST


# ---------------------------------------------------------------- filters

OPERATORS = [
    ("id=eq.2", "id = 2"),
    ("id=neq.2", "id <> 2"),
    ("id=gt.3", "id > 3"),
    ("id=gte.3", "id >= 3"),
    ("id=lt.2", "id < 2"),
    ("id=lte.2", "id <= 2"),
    ("name=like.*an*", "name LIKE '%an%'"),
    ("name=ilike.D*", "name ILIKE 'D%'"),
    ("name=match.^[a-c]", "name ~ '^[a-c]'"),
    ("name=imatch.^d", "name ~* '^d'"),
    ("id=in.(1,3,5)", "id IN (1, 3, 5)"),
    ("name=in.(apple,%22egg,%20%5C%22large%5C%22%22)", "name IN ('apple', 'egg, \"large\"')"),
    ("id=in.()", "false"),
    ("price=is.null", "price IS NULL"),
    ("active=is.true", "active IS TRUE"),
    ("active=is.FALSE", "active IS FALSE"),
    ("active=is.unknown", "active IS UNKNOWN"),
    ("price=not.is.null", "price IS NOT NULL"),
    ("active=isdistinct.true", "active IS DISTINCT FROM true"),
    ("tags=cs.%7Bfruit%7D", "tags @> '{fruit}'"),
    ("tags=cd.%7Bfruit,red,yellow%7D", "tags <@ '{fruit,red,yellow}'"),
    ("tags=ov.%7Bred,vegetable%7D", "tags && '{red,vegetable}'"),
    ("id=eq(any).%7B1,4%7D", "id = ANY ('{1,4}')"),
    ("name=like(any).%7Ba*,b*%7D", "name LIKE ANY ('{a%,b%}')"),
    ("id=gt(all).%7B1,2%7D", "id > ALL ('{1,2}')"),
    ("id=not.eq.2", "NOT id = 2"),
    ("id=not.in.(1,2)", "id NOT IN (1, 2)"),
    ("born=gt.2023-12-31", "born > '2023-12-31'"),
    ("price=gte.1.5&price=lt.12", "price >= 1.5 AND price < 12"),
    ("%C3%BCn%C3%AF=eq.%CE%B4", "\"ünï\" = 'δ'"),
    ("%22Mixed%20Case%22=gte.30", "\"Mixed Case\" >= 30"),
    ("Mixed%20Case=gte.30", "\"Mixed Case\" >= 30"),
]


@pytest.mark.parametrize("query,where", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_every_operator_as_psql(pq, cluster, query, where):
    assert ids(pq, query) == psql_ids(cluster, where)


def test_filter_values_are_typed_by_the_column(pq):
    # Bound untyped: Postgres reads the value as the column's type, as PostgREST's literals.
    status, _, text = get(pq, "/rpc/items?id=eq.notanumber")
    assert status == 400 and json.loads(text)["code"] == "22P02"
    status, _, text = get(pq, "/rpc/items?id=like.1*")  # LIKE on an integer: Postgres says no
    assert status == 404 and json.loads(text)["code"] == "42883"


def test_post_filters_and_arguments(pq):
    # A POST's query parameters filter the result; its arguments are in the body.
    got = ok_json(pq, "/rpc/items?select=id&id=gt.3", method="POST", body={"min_id": 2})
    assert got == [{"id": 4}, {"id": 5}]
    status, _, text = get(pq, "/rpc/items?min_id=2", method="POST", body={})
    assert status == 400 and json.loads(text)["code"] == "PGRST100"


def test_arguments_versus_filters_on_get(pq):
    # PostgREST's rule: a value with an operator is a filter, any other value an argument.
    assert ok_json(pq, "/rpc/search?category=vegetable") == [{"category": "vegetable", "n": 1}]
    assert ok_json(pq, "/rpc/search?category=eq.fruit") == [{"category": "fruit", "n": 2}]
    assert ok_json(pq, "/rpc/search?category=fruit&category=eq.fruit") == [{"category": "fruit", "n": 2}]
    # An operator-looking value for an argument that is no column stays the argument.
    assert ok_json(pq, "/rpc/echo?msg=eq.hi") == "eq.hi"
    # Neither an argument nor a filter: no such function, as before.
    status, _, text = get(pq, "/rpc/echo?msg=hi&other=1")
    assert status == 404 and json.loads(text)["code"] == "PGRST202"


# ---------------------------------------------------------------- order, paging, counts

def test_order_with_nulls(pq, cluster):
    def order(q, sql):
        assert ids(pq, "order=" + q) == json.loads(psql(
            cluster, "SELECT json_agg(id ORDER BY %s) FROM pq.items() i" % sql)), q
    order("price.desc", "price DESC")
    order("price.desc.nullslast", "price DESC NULLS LAST")
    order("price.asc.nullsfirst", "price ASC NULLS FIRST")
    order("price.nullsfirst", "price NULLS FIRST")
    order("active.desc,id.desc", "active DESC, id DESC")
    order("born", "born")


def test_limit_offset(pq):
    assert ids(pq, "order=id&limit=2") == [1, 2]
    assert ids(pq, "order=id&limit=2&offset=3") == [4, 5]
    assert ids(pq, "order=id&offset=4") == [5]
    assert ids(pq, "limit=0") == []
    status, h, text = get(pq, "/rpc/items?select=id&order=id&limit=2&offset=1")
    assert status == 200 and h["content-range"] == "1-2/*"
    for q in ("limit=x", "offset=-1", "limit=1.5", "limit=1&limit=2"):
        status, _, text = get(pq, "/rpc/items?" + q)
        assert status == 400 and json.loads(text)["code"] == "PGRST100", q
    status, _, text = get(pq, "/rpc/items?limit=-1")
    assert status == 416 and json.loads(text)["code"] == "PGRST103"


def test_range_and_content_range(pq):
    status, h, text = get(pq, "/rpc/items?select=id&order=id", {"Range": "0-1"})
    assert status == 200 and h["content-range"] == "0-1/*" and json.loads(text) == [{"id": 1}, {"id": 2}]
    status, h, text = get(pq, "/rpc/items?select=id&order=id", {"Range": "1-2", "Prefer": "count=exact"})
    assert status == 206 and h["content-range"] == "1-2/5" and h["preference-applied"] == "count=exact"
    assert json.loads(text) == [{"id": 2}, {"id": 3}]
    status, h, _ = get(pq, "/rpc/items?select=id", {"Range": "0-9", "Prefer": "count=exact"})
    assert status == 200 and h["content-range"] == "0-4/5"
    status, h, _ = get(pq, "/rpc/items?select=id", {"Range": "3-"})
    assert status == 200 and h["content-range"] == "3-4/*"
    status, h, _ = get(pq, "/rpc/items?select=id&id=gt.10", {"Prefer": "count=exact"})
    assert status == 200 and h["content-range"] == "*/0"
    # planned and estimated are answered exactly: a function's estimate is its ROWS.
    for pref in ("count=planned", "count=estimated"):
        status, h, _ = get(pq, "/rpc/items?select=id&limit=1", {"Prefer": pref})
        assert status == 206 and h["content-range"] == "0-0/5" and h["preference-applied"] == "count=exact"
    # Past the end, with a count: 416 PGRST103, as PostgREST.
    status, h, text = get(pq, "/rpc/items?select=id&offset=7", {"Prefer": "count=exact"})
    assert status == 416 and h["content-range"] == "*/5"
    assert json.loads(text) == {"code": "PGRST103", "message": "Requested range not satisfiable",
                                "details": "An offset of 7 was requested, but there are only 5 rows.",
                                "hint": None}
    status, _, text = get(pq, "/rpc/items", {"Range": "5-2"})
    assert status == 416 and json.loads(text)["code"] == "PGRST103"
    # A Range on a POST is ignored (RFC 9110), a malformed one too.
    status, h, _ = get(pq, "/rpc/items?select=id", {"Range": "0-0"}, method="POST", body={})
    assert status == 200 and h["content-range"] == "0-4/*"
    status, h, _ = get(pq, "/rpc/items?select=id", {"Range": "items=0-0"})
    assert status == 200 and h["content-range"] == "0-4/*"
    # A scalar is one row.
    status, h, _ = get(pq, "/rpc/twice?n=1", {"Prefer": "count=exact"})
    assert status == 200 and h["content-range"] == "0-0/1"


# ---------------------------------------------------------------- media types

OBJECT = {"Accept": "application/vnd.pgrst.object+json"}


def test_single_object(pq, cluster):
    status, h, text = get(pq, "/rpc/items?id=eq.2", OBJECT)
    assert status == 200 and h["content-type"] == "application/vnd.pgrst.object+json; charset=utf-8"
    assert text == psql(cluster, "SELECT json_agg(_r) -> 0 FROM pq.items() _r WHERE id = 2")
    for query, n in (("id=gt.10", 0), ("id=lt.3", 2)):
        status, _, text = get(pq, "/rpc/items?" + query, OBJECT)
        assert status == 406, query
        assert json.loads(text) == {"code": "PGRST116",
                                    "message": "JSON object requested, multiple (or no) rows returned",
                                    "details": "The result contains %d rows" % n, "hint": None}
    # A scalar or a single row is one row whatever it holds.
    status, _, text = get(pq, "/rpc/twice?n=4", OBJECT)
    assert status == 200 and text == "8"
    assert ok_json(pq, "/rpc/one_pair", OBJECT) == {"k": "one", "v": 1}
    assert ok_json(pq, "/rpc/numbers?n=3&numbers=eq.2", OBJECT) == 2
    status, h, text = get(pq, "/rpc/items?id=eq.3&select=id,meta",
                          {"Accept": "application/vnd.pgrst.object+json;nulls=stripped"})
    assert status == 200 and json.loads(text) == {"id": 3, "meta": {}}


def test_single_object_rolls_back_a_volatile_call(pq, cluster):
    before = psql(cluster, "SELECT count(*) FROM pq.log")
    status, _, text = get(pq, "/rpc/make_rows", OBJECT, method="POST", body={"n": 2})
    assert status == 406 and json.loads(text)["details"] == "The result contains 2 rows"
    assert psql(cluster, "SELECT count(*) FROM pq.log") == before  # rolled back, as PostgREST
    status, _, text = get(pq, "/rpc/make_rows", OBJECT, method="POST", body={"n": 1})
    assert status == 200 and json.loads(text) == {"k": "made1", "v": 1}
    assert int(psql(cluster, "SELECT count(*) FROM pq.log")) == int(before) + 1


def csv_sql(where="true", cols="*"):
    # PostgREST's CSV: the column names, then each row as Postgres writes a record, without its
    # parentheses.
    return ("SELECT string_agg(substr(_s::text, 2, length(_s::text) - 2), E'\\n') "
            "FROM (SELECT %s FROM pq.items() WHERE %s) _s" % (cols, where))


def test_csv(pq, cluster):
    status, h, text = get(pq, "/rpc/items", {"Accept": "text/csv"})
    assert status == 200 and h["content-type"] == "text/csv; charset=utf-8"
    header, _, rows = text.partition("\n")
    assert header == "id,name,price,tags,born,active,score,meta,ünï,Mixed Case"
    assert rows == psql(cluster, csv_sql())
    assert '5,"egg, ""large""",3.00' in rows
    status, _, text = get(pq, "/rpc/items?select=n:name,id&id=lte.2&order=id.desc", {"Accept": "text/csv"})
    assert text == "n,id\n" + psql(cluster, csv_sql("id <= 2 ORDER BY id DESC", "name, id"))
    assert get(pq, "/rpc/items?id=gt.9", {"Accept": "text/csv"})[2] == \
        "id,name,price,tags,born,active,score,meta,ünï,Mixed Case\n"
    assert get(pq, "/rpc/numbers?n=3", {"Accept": "text/csv"})[2] == "numbers\n1\n2\n3"
    assert get(pq, "/rpc/one_pair", {"Accept": "text/csv"})[2] == "k,v\none,1"


def test_accept_negotiation(pq):
    for accept in ("application/json", "*/*", "application/json; charset=utf-8",
                   "text/html, application/xhtml+xml, */*;q=0.8", "application/vnd.pgrst.array+json"):
        status, h, _ = get(pq, "/rpc/numbers?n=1", {"Accept": accept})
        assert status == 200 and h["content-type"] == "application/json; charset=utf-8", accept
    status, h, _ = get(pq, "/rpc/numbers?n=1", {"Accept": "application/json;q=0.5, text/csv"})
    assert h["content-type"] == "text/csv; charset=utf-8"
    status, h, _ = get(pq, "/rpc/numbers?n=1", {"Accept": "text/csv;q=0, application/json"})
    assert h["content-type"] == "application/json; charset=utf-8"
    for accept in ("application/xml", "text/plain", "application/octet-stream", "text/csv;q=0"):
        status, _, text = get(pq, "/rpc/numbers?n=1", {"Accept": accept})
        assert status == 406 and json.loads(text)["code"] == "PGRST107", accept
    status, h, text = get(pq, "/rpc/items?select=id,meta&id=lte.3",
                          {"Accept": "application/vnd.pgrst.array+json;nulls=stripped"})
    assert h["content-type"] == "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
    assert json.loads(text) == [{"id": 1, "meta": {"a": [1, 2], "b": 1}}, {"id": 2}, {"id": 3, "meta": {}}]


def test_post_content_types(pq):
    # One unnamed json/jsonb, text or bytea input takes the whole body, as PostgREST.
    assert ok_json(pq, "/rpc/body_json", method="POST", body=[1, {"a": 2}]) == [1, {"a": 2}]
    assert ok_json(pq, "/rpc/body_json", method="POST", body={"x": 1}) == {"x": 1}
    assert ok_json(pq, "/rpc/body_text", {"Content-Type": "text/plain"}, "POST",
                   "héllo".encode()) == "HÉLLO"
    assert ok_json(pq, "/rpc/body_bytes", {"Content-Type": "application/octet-stream"}, "POST",
                   b"\x00\x01\xff") == 3
    # Prefer: params=single-object sends the body to the one json/jsonb input, named or not.
    status, h, text = get(pq, "/rpc/single", {"Prefer": "params=single-object"}, "POST", {"a": [1]})
    assert status == 200 and json.loads(text) == {"got": {"a": [1]}}
    assert h["preference-applied"] == "params=single-object"
    assert ok_json(pq, "/rpc/twice", {"Content-Type": "application/x-www-form-urlencoded"}, "POST",
                   "n=5") == 10
    status, _, text = get(pq, "/rpc/twice", {"Content-Type": "application/xml"}, "POST", "<n>1</n>")
    assert status == 415 and json.loads(text)["code"] == "PGRST102"
    status, _, text = get(pq, "/rpc/twice", {}, "POST", [1])
    assert status == 400 and json.loads(text)["code"] == "PGRST102"
    status, _, text = get(pq, "/rpc/twice", {"Content-Type": "text/plain"}, "POST", "5")
    assert status == 404 and json.loads(text)["code"] == "PGRST202"


def test_prefer_handling_strict(pq):
    status, _, text = get(pq, "/rpc/numbers?n=1", {"Prefer": "handling=strict, bogus=1"})
    assert status == 400 and json.loads(text)["code"] == "PGRST122"
    status, h, _ = get(pq, "/rpc/numbers?n=1", {"Prefer": "bogus=1"})  # lenient: ignored
    assert status == 200
    status, h, _ = get(pq, "/rpc/numbers?n=1", {"Prefer": "handling=strict, return=representation"})
    assert status == 200 and h["preference-applied"] == "handling=strict"


# ---------------------------------------------------------------- unsupported: clear 400s

UNSUPPORTED = [
    ("or=(id.eq.1,id.eq.2)", "PGRST100"),
    ("and=(id.eq.1)", "PGRST100"),
    ("not.or=(id.eq.1)", "PGRST100"),
    ("select=id,client(*)", "PGRST200"),
    ("select=id,...client(name)", "PGRST200"),
    ("select=id,client!inner(*)", "PGRST200"),
    ("select=count()", "PGRST123"),
    ("select=id.sum()", "PGRST123"),
    ("select=meta->a", "PGRST100"),
    ("select=id::text", "PGRST100"),
    ("meta->>a=eq.1", "PGRST100"),
    ("order=meta->a", "PGRST100"),
    ("name=fts.apple", "PGRST100"),
    ("name=plfts(english).apple", "PGRST100"),
    ("client.id=eq.1", "PGRST108"),
    ("client.order=id", "PGRST108"),
    ("order=client(id)", "PGRST108"),
    ("columns=id", "PGRST100"),
    ("id=in.(1,2", "PGRST100"),
    ("active=is.maybe", "PGRST100"),
    ("id=not.bogus", "PGRST100"),
    ("select=id&select=name", "PGRST100"),
    ("order=id.sideways", "PGRST100"),
]


@pytest.mark.parametrize("query,code", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_is_a_clear_400(pq, query, code):
    before = jobs(pq)
    status, _, text = get(pq, "/rpc/items?" + urllib.parse.quote(query, safe="=&()*,.!:>-{}"))
    body = json.loads(text)
    assert status == 400 and body["code"] == code, (query, status, body)
    assert set(body) == {"code", "message", "details", "hint"}
    assert jobs(pq) == before, "a query reached Postgres"


# ---------------------------------------------------------------- hostile

# Raw query strings (percent-encoded as sent): each refused before any SQL.
HOSTILE = [
    ("select=id);drop%20table%20pq.victim;--", "PGRST100"),
    ("select=%22id);drop%20table%20pq.victim;--%22", "42703"),
    ("select=x:%22id%22%22,(select%201)--%22", "PGRST100"),
    ("select=x:%22id%5C%22,(select%201)--%22", "42703"),
    ("select=id,name%20from%20pq.victim--", "PGRST100"),
    ("select=id,name%20from%20victim", "42703"),
    ("select=*,(select%201)", "PGRST100"),
    ("order=id;drop%20table%20pq.victim", "PGRST100"),
    ("order=id%20desc,%20(select%201)", "PGRST100"),
    ("id%22;drop%20table%20pq.victim;--=eq.1", "PGRST100"),
    ("id)%20or%20(1%3D1=eq.1", "PGRST100"),
    ("%22id%5C%22%20%3D%201%20or%20%5C%22%22=eq.1", "42703"),
    ("nosuch=eq.1", "42703"),
    ("ID=eq.1", "42703"),
    ("select=%C3%BCnknown", "42703"),
    ("select=%00id", "PGRST100"),
    ("id=eq." + "1" * 5000, "PGRST100"),
    ("select=" + ",".join(["id"] * 101), "PGRST100"),
    ("&".join("id=gt.%d" % i for i in range(500)), "PGRST100"),
    ("order=" + ",".join(["id"] * 17), "PGRST100"),
    ("id=in.(" + ",".join(["1"] * 1001) + ")", "PGRST100"),
]


@pytest.mark.parametrize("query,code", HOSTILE, ids=[h[0][:60] for h in HOSTILE])
def test_hostile_query_strings_refused_before_sql(pq, cluster, query, code):
    before = jobs(pq)
    status, _, text = get(pq, "/rpc/items?" + query)
    assert status == 400 and json.loads(text)["code"] == code, (query[:80], status, text[:300])
    assert jobs(pq) == before, "a query reached Postgres"
    assert psql(cluster, "SELECT count(*) FROM pq.victim") == "1"


def test_hostile_values_are_bound(pq, cluster):
    # Values reach Postgres only as parameters: they match nothing, or the type refuses them.
    for q in ("name=eq.x'%3Bdrop%20table%20pq.victim%3B--", "name=in.(%22a')%3Bdrop%20table%20pq.victim--%22)",
              "name=like.%25'%20or%201=1--"):
        status, _, text = get(pq, "/rpc/items?" + q)
        assert status == 200 and json.loads(text) == [], (q, text)
    # Renamed columns' names are parameters too.
    assert ok_json(pq, "/rpc/items?select=%22a%5C%22b':%22:id,%E2%9C%93:name&id=eq.1") == \
        [{"a\"b':": 1, "✓": "apple"}]
    status, _, text = get(pq, "/rpc/items?id=eq.1%3Bdrop%20table%20pq.victim")
    assert status == 400 and json.loads(text)["code"] == "22P02"
    assert psql(cluster, "SELECT count(*) FROM pq.victim") == "1"


def test_a_10k_filter_is_refused_by_the_url_limit(pq):
    before = jobs(pq)
    status, _, _ = get(pq, "/rpc/items?name=eq." + "x" * 10000)
    assert status == 414
    assert jobs(pq) == before


# ---------------------------------------------------------------- the cache

def test_cache_keeps_query_answers_apart(cached):
    a = get(cached, "/rpc/items?select=id&order=id.desc&limit=2")
    b = get(cached, "/rpc/items?select=name&order=id.desc&limit=2")
    c = get(cached, "/rpc/items?select=id&order=id.desc&limit=2")
    d = get(cached, "/rpc/items?select=id&order=id.desc&limit=2", {"Accept": "text/csv"})
    assert json.loads(a[2]) == [{"id": 5}, {"id": 4}] and json.loads(b[2])[0] == {"name": 'egg, "large"'}
    assert a[1]["x-cache"] == "MISS" and b[1]["x-cache"] == "MISS" and c[1]["x-cache"] == "HIT"
    assert c[2] == a[2] and a[1]["content-range"] == c[1]["content-range"] == "0-1/*"
    assert d[1]["x-cache"] == "MISS" and d[2] == "id\n5\n4"
    one = get(cached, "/rpc/numbers?n=2", OBJECT)
    arr = get(cached, "/rpc/numbers?n=2")
    assert one[0] == 406 and arr[0] == 200 and json.loads(arr[2]) == [1, 2]
    # The plain call keeps the key it always had: an explicit application/json shares it.
    assert get(cached, "/rpc/numbers?n=2", {"Accept": "application/json"})[1]["x-cache"] == "HIT"


# ---------------------------------------------------------------- @supabase/postgrest-js

def node(script, *args):
    out = subprocess.run(["node", str(ROOT / "tests" / "integration" / "node" / script), *map(str, args)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_postgrest_js_gets_what_psql_gets(pq, cluster):
    got = node("postgrest_query_client.mjs", "http://127.0.0.1:%d" % pq.port, token("alice"))
    q = lambda sql: json.loads(psql(cluster, sql))
    assert got["twice_post"] == {"status": 200, "data": 8, "count": None, "error": None}
    assert got["twice_get"]["data"] == 8
    assert got["chain_post"]["data"] == q(
        "SELECT json_agg(_s) FROM (SELECT id, name FROM pq.items() WHERE active = true "
        "ORDER BY id DESC LIMIT 2) _s")
    assert got["chain_get"]["data"] == got["chain_post"]["data"]
    assert got["count_exact"]["count"] == 5 and got["count_exact"]["status"] == 206
    assert got["count_exact"]["data"] == [{"id": 2}, {"id": 3}]
    assert got["single"]["data"] == q("SELECT json_agg(_r) -> 0 FROM pq.items() _r WHERE id = 1")
    assert got["single_many"]["status"] == 406 and got["single_many"]["error"]["code"] == "PGRST116"
    assert got["single_none"]["status"] == 406 and got["single_none"]["error"]["details"] == \
        "The result contains 0 rows"
    assert got["maybe_single_one"]["data"] == {"id": 2}
    assert got["maybe_single_none"] == {"status": 200, "data": None, "count": None, "error": None}
    assert got["maybe_single_many"]["status"] == 406
    assert got["maybe_single_many"]["error"]["code"] == "PGRST116"
    assert got["csv"]["data"] == "id,name\n1,apple\n2,banana"
    assert got["one_pair_single"]["data"] == {"k": "one", "v": 1}
    assert got["numbers_gte"]["data"] == [2, 3]
    assert got["in_quoted"]["data"] == [{"id": 1}, {"id": 2}]
    assert got["is_null"]["data"] == [{"id": 3}]
    assert got["not_is_null"]["data"] == q("SELECT json_agg(json_build_object('id', id) ORDER BY id) "
                                           "FROM pq.items() WHERE price IS NOT NULL")
    assert got["like"]["data"] == [{"id": 2}] and got["ilike"]["data"] == [{"id": 4}]
    assert got["or_refused"]["status"] == 400 and got["or_refused"]["error"]["code"] == "PGRST100"
    assert got["head_count"]["count"] == 5 and got["head_count"]["data"] is None
    assert got["get_args_and_filters"]["data"] == [{"id": 4}, {"id": 5}]
    assert got["get_args_and_filters"]["count"] == 2
    assert got["strip_nulls"]["data"] == [{"id": 2, "name": "banana"}]
    assert got["range"]["data"] == [{"id": 3}, {"id": 4}]
