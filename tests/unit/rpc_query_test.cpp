// /rpc's read side (api/rpc_query.hpp): PostgREST's filter, select and order grammar, the
// reserved parameters, Accept/Prefer/Range, the statement planned around the call (every request
// value bound, columns checked), and the shaping of its answer (Content-Range, 206, 416, 406).
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/rpc_query.hpp"
#include "common/json.hpp"

using zonegate::api::RpcFunction;
namespace rpc = zonegate::api::rpc;
using zonegate::http::Response;

namespace {

std::string code_of(const Response& r) {
  rapidjson::Document d;
  std::string err;
  if (!zonegate::json::parse(r.body, d, err) || !d.IsObject() || !d.HasMember("code")) return "";
  return d["code"].GetString();
}

std::string header(const Response& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

struct Split {
  bool ok = false;
  rpc::QueryRequest q;
  std::vector<std::pair<std::string, std::string>> args;
  Response error;
};

Split split(const std::string& query, bool is_get = true) {
  Split s;
  std::vector<std::pair<std::string, std::string>> pairs;
  EXPECT_TRUE(zonegate::http::parse_query(query, pairs));
  s.ok = rpc::split_query(pairs, is_get, "items", s.q, s.args, s.error);
  return s;
}

RpcFunction table() {
  RpcFunction f;
  f.schema = "api";
  f.name = "items";
  f.returns_set = true;
  f.returns_composite = true;
  f.columns = {{"id", "integer"}, {"name", "text"}, {"Mixed Case", "integer"}};
  return f;
}

RpcFunction scalar(bool set) {
  RpcFunction f;
  f.schema = "api";
  f.name = "add";
  f.returns_set = set;
  f.columns = {{"add", "integer"}};
  return f;
}

struct Planned {
  bool ok = false;
  rpc::Plan plan;
  std::string sql;  // the statement with the call put in
  Response error;
};

Planned plan(const RpcFunction& f, const std::string& query, const std::string* accept = nullptr,
             const std::string& prefer = "", const std::string* range = nullptr) {
  Planned p;
  Split s = split(query);
  EXPECT_TRUE(s.ok) << s.error.body;
  std::vector<std::string_view> prefs;
  if (!prefer.empty()) prefs.emplace_back(prefer);
  EXPECT_TRUE(rpc::read_headers(accept, prefs, range, true, s.q, p.error)) << p.error.body;
  p.ok = rpc::plan_call(f, 0, s.q, p.plan, p.error);
  p.sql = p.plan.statement("\"api\".\"" + f.name + "\"()");
  return p;
}

zonegate::pg::Result result(std::optional<std::string> body, std::string page,
                            std::optional<std::string> total) {
  zonegate::pg::Result r;
  r.rows.push_back({std::move(body), std::move(page), std::move(total)});
  return r;
}

}  // namespace

TEST(RpcQuery, FilterGrammar) {
  struct Case {
    const char* value;
    rpc::FilterParse parse;
    rpc::Op op;
    bool negate;
    const char* text;
  };
  const Case cases[] = {
      {"eq.3", rpc::FilterParse::kFilter, rpc::Op::kEq, false, "3"},
      {"neq.", rpc::FilterParse::kFilter, rpc::Op::kNeq, false, ""},
      {"gte.2024-01-01", rpc::FilterParse::kFilter, rpc::Op::kGte, false, "2024-01-01"},
      {"gt.a.b", rpc::FilterParse::kFilter, rpc::Op::kGt, false, "a.b"},
      {"lte.1", rpc::FilterParse::kFilter, rpc::Op::kLte, false, "1"},
      {"lt.1", rpc::FilterParse::kFilter, rpc::Op::kLt, false, "1"},
      {"like.*a*b", rpc::FilterParse::kFilter, rpc::Op::kLike, false, "%a%b"},
      {"ilike.A*", rpc::FilterParse::kFilter, rpc::Op::kIlike, false, "A%"},
      {"match.^a*", rpc::FilterParse::kFilter, rpc::Op::kMatch, false, "^a*"},
      {"imatch.x", rpc::FilterParse::kFilter, rpc::Op::kImatch, false, "x"},
      {"not.eq.3", rpc::FilterParse::kFilter, rpc::Op::kEq, true, "3"},
      {"isdistinct.x", rpc::FilterParse::kFilter, rpc::Op::kIsDistinct, false, "x"},
      {"cs.{a}", rpc::FilterParse::kFilter, rpc::Op::kCs, false, "{a}"},
      {"cd.{a}", rpc::FilterParse::kFilter, rpc::Op::kCd, false, "{a}"},
      {"ov.{a}", rpc::FilterParse::kFilter, rpc::Op::kOv, false, "{a}"},
      {"sl.[1,2)", rpc::FilterParse::kFilter, rpc::Op::kSl, false, "[1,2)"},
      {"adj.[1,2)", rpc::FilterParse::kFilter, rpc::Op::kAdj, false, "[1,2)"},
      // Not operator expressions: on GET these are arguments.
      {"3", rpc::FilterParse::kNotAFilter, rpc::Op::kEq, false, ""},
      {"eq", rpc::FilterParse::kNotAFilter, rpc::Op::kEq, false, ""},
      {"eqx.1", rpc::FilterParse::kNotAFilter, rpc::Op::kEq, false, ""},
      {"hello.world", rpc::FilterParse::kNotAFilter, rpc::Op::kEq, false, ""},
      {"ftsx.1", rpc::FilterParse::kNotAFilter, rpc::Op::kEq, false, ""},
      // Operator expressions that do not parse, or are not run here.
      {"not.x", rpc::FilterParse::kMalformed, rpc::Op::kEq, true, ""},
      {"in.(1,2", rpc::FilterParse::kMalformed, rpc::Op::kIn, false, ""},
      {"in.1,2", rpc::FilterParse::kMalformed, rpc::Op::kIn, false, ""},
      {"in.(1)x", rpc::FilterParse::kMalformed, rpc::Op::kIn, false, ""},
      {"is.maybe", rpc::FilterParse::kMalformed, rpc::Op::kIs, false, ""},
      {"fts.x", rpc::FilterParse::kUnsupported, rpc::Op::kEq, false, ""},
      {"wfts(english).x", rpc::FilterParse::kUnsupported, rpc::Op::kEq, false, ""},
  };
  for (const Case& c : cases) {
    rpc::Filter f;
    std::string why;
    EXPECT_EQ(rpc::parse_filter_value(c.value, f, why), c.parse) << c.value;
    if (c.parse != rpc::FilterParse::kFilter) {
      if (c.parse != rpc::FilterParse::kNotAFilter) {
        EXPECT_FALSE(why.empty()) << c.value;
      }
      continue;
    }
    EXPECT_EQ(f.op, c.op) << c.value;
    EXPECT_EQ(f.negate, c.negate) << c.value;
    EXPECT_EQ(f.value, c.text) << c.value;
  }
  rpc::Filter f;
  std::string why;
  ASSERT_EQ(rpc::parse_filter_value(R"(in.( 1,"a,b","q\"x",raw"x ))", f, why),
            rpc::FilterParse::kFilter);
  EXPECT_EQ(f.list, (std::vector<std::string>{"1", "a,b", "q\"x", "raw\"x "}));
  ASSERT_EQ(rpc::parse_filter_value("in.()", f, why), rpc::FilterParse::kFilter);
  EXPECT_EQ(f.list, std::vector<std::string>{""});
  ASSERT_EQ(rpc::parse_filter_value("is.NuLL", f, why), rpc::FilterParse::kFilter);
  EXPECT_STREQ(f.is, "NULL");
  ASSERT_EQ(rpc::parse_filter_value("not.is.true", f, why), rpc::FilterParse::kFilter);
  EXPECT_TRUE(f.negate);
  EXPECT_STREQ(f.is, "TRUE");
  ASSERT_EQ(rpc::parse_filter_value("like(any).{a*,b}", f, why), rpc::FilterParse::kFilter);
  EXPECT_EQ(f.quant, rpc::Quant::kAny);
  EXPECT_EQ(f.value, "{a%,b}");
  ASSERT_EQ(rpc::parse_filter_value("gt(all).{1}", f, why), rpc::FilterParse::kFilter);
  EXPECT_EQ(f.quant, rpc::Quant::kAll);
  EXPECT_EQ(rpc::parse_filter_value("neq(any).{1}", f, why), rpc::FilterParse::kNotAFilter);
}

TEST(RpcQuery, SplitsArgumentsFiltersAndReservedParameters) {
  Split get = split(
      "a=1&id=eq.2&select=x:id,name,*&order=id.desc.nullslast,name&limit=5&offset=2"
      "&on_conflict=id");
  ASSERT_TRUE(get.ok) << get.error.body;
  EXPECT_EQ(get.args, (std::vector<std::pair<std::string, std::string>>{{"a", "1"}}));
  ASSERT_EQ(get.q.filters.size(), 1u);
  EXPECT_EQ(get.q.filters[0].name, "id");
  ASSERT_EQ(get.q.select.size(), 3u);
  EXPECT_EQ(get.q.select[0].alias, "x");
  EXPECT_EQ(get.q.select[0].column, "id");
  EXPECT_EQ(get.q.select[2].column, "*");
  ASSERT_EQ(get.q.order.size(), 2u);
  EXPECT_EQ(get.q.order[0].dir, rpc::OrderTerm::Dir::kDesc);
  EXPECT_EQ(get.q.order[0].nulls, rpc::OrderTerm::Nulls::kLast);
  EXPECT_EQ(get.q.order[1].dir, rpc::OrderTerm::Dir::kDefault);
  EXPECT_EQ(*get.q.limit, 5);
  EXPECT_EQ(get.q.offset, 2);

  Split quoted = split("select=%22a,b%22,%20sp%20ace%20,%C3%BC-x");
  ASSERT_TRUE(quoted.ok) << quoted.error.body;
  EXPECT_EQ(quoted.q.select[0].column, "a,b");
  EXPECT_EQ(quoted.q.select[1].column, "sp ace");
  EXPECT_EQ(quoted.q.select[2].column, "\xc3\xbc-x");
  EXPECT_TRUE(split("select=").q.has_select);

  // A POST's query holds filters only.
  EXPECT_TRUE(split("id=eq.1", false).ok);
  Split post = split("a=1", false);
  EXPECT_FALSE(post.ok);
  EXPECT_EQ(code_of(post.error), "PGRST100");

  struct Refused {
    const char* query;
    int status;
    const char* code;
  };
  for (const Refused& r : std::vector<Refused>{
           {"select=id);drop table x;--", 400, "PGRST100"},
           {"select=id,rel(*)", 400, "PGRST200"},
           {"select=...rel(*)", 400, "PGRST200"},
           {"select=x:rel!inner(*)", 400, "PGRST200"},
           {"select=count()", 400, "PGRST123"},
           {"select=id.avg()", 400, "PGRST123"},
           {"select=data->a", 400, "PGRST100"},
           {"select=id::text", 400, "PGRST100"},
           {"select=a,", 400, "PGRST100"},
           {"order=rel(id)", 400, "PGRST108"},
           {"order=id.up", 400, "PGRST100"},
           {"order=", 400, "PGRST100"},
           {"order=data->a", 400, "PGRST100"},
           {"rel.order=id", 400, "PGRST108"},
           {"rel.limit=1", 400, "PGRST108"},
           {"or=(a.eq.1)", 400, "PGRST100"},
           {"not.and=(a.eq.1)", 400, "PGRST100"},
           {"columns=a", 400, "PGRST100"},
           {"limit=ten", 400, "PGRST100"},
           {"limit=1&limit=2", 400, "PGRST100"},
           {"offset=-1", 400, "PGRST100"},
           {"offset=9999999999999999999", 400, "PGRST100"},
       }) {
    Split s = split(r.query);
    EXPECT_FALSE(s.ok) << r.query;
    EXPECT_EQ(s.error.status, r.status) << r.query;
    EXPECT_EQ(code_of(s.error), r.code) << r.query << " " << s.error.body;
  }
  std::string many = "select=" + std::string(rpc::kMaxValueBytes + 1, 'a');
  EXPECT_EQ(code_of(split(many).error), "PGRST100");
}

TEST(RpcQuery, AcceptPreferAndRange) {
  auto read = [](const char* accept, const std::string& prefer, const char* range, bool get,
                 rpc::QueryRequest& q, Response& e) {
    std::string a = accept != nullptr ? accept : "";
    std::string r = range != nullptr ? range : "";
    std::vector<std::string_view> prefs;
    if (!prefer.empty()) prefs.emplace_back(prefer);
    return rpc::read_headers(accept != nullptr ? &a : nullptr, prefs,
                             range != nullptr ? &r : nullptr, get, q, e);
  };
  struct Case {
    const char* accept;
    rpc::Media media;
    bool strip;
  };
  for (const Case& c : std::vector<Case>{
           {nullptr, rpc::Media::kJson, false},
           {"", rpc::Media::kJson, false},
           {"*/*", rpc::Media::kJson, false},
           {"application/json; charset=utf-8", rpc::Media::kJson, false},
           {"APPLICATION/VND.PGRST.OBJECT+JSON", rpc::Media::kObject, false},
           {"application/vnd.pgrst.object+json;nulls=stripped", rpc::Media::kObject, true},
           {"application/vnd.pgrst.array+json;nulls=stripped", rpc::Media::kJson, true},
           {"application/vnd.pgrst.array+json", rpc::Media::kJson, false},
           {"text/csv", rpc::Media::kCsv, false},
           {"text/html, application/xhtml+xml, */*;q=0.8", rpc::Media::kJson, false},
           {"application/json;q=0.2, text/csv;q=0.9", rpc::Media::kCsv, false},
           {"text/csv;q=0, application/json", rpc::Media::kJson, false},
       }) {
    rpc::QueryRequest q;
    Response e;
    ASSERT_TRUE(read(c.accept, "", nullptr, true, q, e)) << (c.accept ? c.accept : "null");
    EXPECT_EQ(q.media, c.media) << (c.accept ? c.accept : "null");
    EXPECT_EQ(q.strip_nulls, c.strip) << (c.accept ? c.accept : "null");
  }
  for (const char* accept : {"application/xml", "text/plain", "application/*", "text/csv;q=0"}) {
    rpc::QueryRequest q;
    Response e;
    EXPECT_FALSE(read(accept, "", nullptr, true, q, e)) << accept;
    EXPECT_EQ(e.status, 406);
    EXPECT_EQ(code_of(e), "PGRST107");
  }

  rpc::QueryRequest q;
  Response e;
  ASSERT_TRUE(read(nullptr, "count=planned, return=representation,params=single-object", nullptr,
                   false, q, e));
  EXPECT_EQ(q.count, rpc::Count::kPlanned);
  EXPECT_TRUE(q.single_object);
  rpc::QueryRequest get;
  ASSERT_TRUE(read(nullptr, "params=single-object, tx=rollback, bogus", nullptr, true, get, e));
  EXPECT_FALSE(get.single_object);  // a GET has no body to send whole
  rpc::QueryRequest strict;
  EXPECT_FALSE(read(nullptr, "handling=strict, bogus=1", nullptr, true, strict, e));
  EXPECT_EQ(code_of(e), "PGRST122");

  struct Range {
    const char* header;
    bool get;
    bool has;
    int64_t lower;
    std::optional<int64_t> upper;
  };
  for (const Range& r : std::vector<Range>{{"0-9", true, true, 0, 9},
                                           {"5-", true, true, 5, std::nullopt},
                                           {"0-9", false, false, 0, std::nullopt},
                                           {"items=0-9", true, false, 0, std::nullopt},
                                           {"-5", true, false, 0, std::nullopt},
                                           {"a-b", true, false, 0, std::nullopt}}) {
    rpc::QueryRequest rq;
    ASSERT_TRUE(read(nullptr, "", r.header, r.get, rq, e)) << r.header;
    EXPECT_EQ(rq.has_range, r.has) << r.header;
    EXPECT_EQ(rq.range_lower, r.lower) << r.header;
    EXPECT_EQ(rq.range_upper, r.upper) << r.header;
  }
  rpc::QueryRequest backwards;
  EXPECT_FALSE(read(nullptr, "", "5-2", true, backwards, e));
  EXPECT_EQ(e.status, 416);
  EXPECT_EQ(code_of(e), "PGRST103");
}

TEST(RpcQuery, PlainCallsKeepTheirFastStatement) {
  Planned t = plan(table(), "");
  ASSERT_TRUE(t.ok);
  EXPECT_TRUE(t.plan.plain);
  EXPECT_TRUE(t.plan.cache_part.empty());
  EXPECT_EQ(t.sql,
            "SELECT coalesce(pg_catalog.json_agg(_r), '[]')::pg_catalog.text AS body, "
            "pg_catalog.count(*) AS page_total FROM \"api\".\"items\"() AS _r");
  EXPECT_TRUE(plan(table(), "select=*").plan.plain);
  Planned s = plan(scalar(false), "");
  EXPECT_EQ(s.sql, "SELECT pg_catalog.to_json(\"api\".\"add\"())::pg_catalog.text AS body");
  Planned u = plan(scalar(false), "");
  zonegate::pg::Result one_cell;
  one_cell.rows.push_back({std::string("5")});
  Response r = rpc::shape(u.plan, one_cell);
  EXPECT_EQ(r.body, "5");
  EXPECT_EQ(header(r, "Content-Range"), "0-0/*");
  Planned set = plan(scalar(true), "");
  EXPECT_NE(set.sql.find("json_agg(_r.\"add\")"), std::string::npos);
  EXPECT_NE(set.sql.find("AS _r(\"add\")"), std::string::npos);
  std::string json = "application/json";
  EXPECT_TRUE(plan(table(), "", &json).plan.plain);
  std::string object = "application/vnd.pgrst.object+json";
  EXPECT_FALSE(plan(scalar(false), "", &object).plan.plain);  // another Content-Type
}

TEST(RpcQuery, EveryRequestValueIsBound) {
  std::string csv = "text/csv";
  Planned p = plan(table(),
                   "select=%22k%27ey%22:id,%22Mixed%20Case%22&id=in.(1,%27x%27)&name=like.*%27;--"
                   "&order=%22Mixed%20Case%22.desc.nullsfirst&limit=3&offset=1");
  ASSERT_TRUE(p.ok) << p.error.body;
  const std::string& sql = p.sql;
  for (const char* request_text : {"k'ey", "'x'", "';--", "%'"}) {
    EXPECT_EQ(sql.find(request_text), std::string::npos) << request_text << "\n" << sql;
  }
  EXPECT_NE(sql.find("_r.\"id\" = ANY ($1)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("_r.\"name\" LIKE $2"), std::string::npos) << sql;
  EXPECT_NE(sql.find("ORDER BY _r.\"Mixed Case\" DESC NULLS FIRST LIMIT $3::pg_catalog.int8 "
                     "OFFSET $4::pg_catalog.int8"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find("to_json($5::pg_catalog.text)"), std::string::npos) << sql;
  EXPECT_EQ(p.plan.params,
            (std::vector<std::optional<std::string>>{
                std::string(R"({"1","'x'"})"), std::string("%';--"), std::string("3"),
                std::string("1"), std::string("k'ey"), std::string("Mixed Case")}));
  EXPECT_EQ(p.plan.lower, 1);
  EXPECT_FALSE(p.plan.plain);

  // Numbered after the call's own parameters.
  Split s = split("id=eq.1");
  rpc::Plan after;
  Response e;
  ASSERT_TRUE(rpc::plan_call(table(), 2, s.q, after, e));
  EXPECT_NE(after.after.find("_r.\"id\" = $3"), std::string::npos) << after.after;

  Planned c = plan(table(), "select=x:id", &csv);
  ASSERT_TRUE(c.ok);
  EXPECT_EQ(c.plan.params, (std::vector<std::optional<std::string>>{std::string("x")}));
}

TEST(RpcQuery, UnknownColumnsAndCaps) {
  for (const char* q :
       {"nosuch=eq.1", "select=nosuch", "order=nosuch", "ID=eq.1", "select=x:nosuch"}) {
    Planned p = plan(table(), q);
    EXPECT_FALSE(p.ok) << q;
    EXPECT_EQ(p.error.status, 400) << q;
    EXPECT_EQ(code_of(p.error), "42703") << q;
  }
  EXPECT_TRUE(plan(scalar(true), "add=gt.1&order=add&select=add").ok);
  EXPECT_EQ(code_of(plan(scalar(true), "select=other").error), "42703");
  EXPECT_EQ(code_of(plan(table(), "rel.id=eq.1").error), "PGRST108");
  EXPECT_EQ(code_of(plan(table(), "data->>a=eq.1").error), "PGRST100");
  EXPECT_EQ(code_of(plan(table(), "id=fts.x").error), "PGRST100");
  EXPECT_EQ(code_of(plan(table(), "id=not.x").error), "PGRST100");

  std::string filters;
  for (size_t i = 0; i <= rpc::kMaxFilters; ++i)
    filters += "id=gt." + std::to_string(i) + "&";
  EXPECT_EQ(code_of(plan(table(), filters).error), "PGRST100");
  EXPECT_EQ(code_of(plan(table(), "id=eq." + std::string(rpc::kMaxValueBytes + 1, '1')).error),
            "PGRST100");

  Planned negative = plan(table(), "limit=-1");
  EXPECT_EQ(negative.error.status, 416);
  RpcFunction untyped = table();
  untyped.columns.clear();
  EXPECT_EQ(code_of(plan(untyped, "select=id").error), "42703");
  EXPECT_EQ(code_of(plan(untyped, "select=").error), "PGRST100");
  EXPECT_TRUE(plan(untyped, "").ok);
}

TEST(RpcQuery, RangesAndCounts) {
  std::string r = "2-3";
  Planned p = plan(table(), "limit=10", nullptr, "count=exact", &r);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.plan.lower, 2);
  EXPECT_NE(p.sql.find("WITH _src AS MATERIALIZED"), std::string::npos);
  EXPECT_EQ(p.plan.params,
            (std::vector<std::optional<std::string>>{std::string("2"), std::string("2")}));
  Response partial = rpc::shape(p.plan, result(std::string("[1,2]"), "2", std::string("9")));
  EXPECT_EQ(partial.status, 206);
  EXPECT_EQ(header(partial, "Content-Range"), "2-3/9");
  EXPECT_EQ(header(partial, "Preference-Applied"), "count=exact");
  Response rest = rpc::shape(p.plan, result(std::string("[1,2]"), "2", std::string("4")));
  EXPECT_EQ(rest.status, 206);  // rows 2-3 of 0-3: still a part
  EXPECT_EQ(header(rest, "Content-Range"), "2-3/4");
  Planned all = plan(table(), "", nullptr, "count=exact");
  Response whole = rpc::shape(all.plan, result(std::string("[1,2,3,4]"), "4", std::string("4")));
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(header(whole, "Content-Range"), "0-3/4");
  Response past = rpc::shape(p.plan, result(std::string("[]"), "0", std::string("1")));
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(code_of(past), "PGRST103");
  EXPECT_EQ(header(past, "Content-Range"), "*/1");
  Response empty = rpc::shape(p.plan, result(std::string("[]"), "0", std::string("0")));
  EXPECT_EQ(empty.status, 416);  // offset 2 of none
  Planned none = plan(table(), "limit=0", nullptr, "count=exact");
  Response zero = rpc::shape(none.plan, result(std::string("[]"), "0", std::string("5")));
  EXPECT_EQ(zero.status, 206);
  EXPECT_EQ(header(zero, "Content-Range"), "*/5");
  Planned uncounted = plan(table(), "offset=3");
  Response u = rpc::shape(uncounted.plan, result(std::string("[1]"), "1", std::nullopt));
  EXPECT_EQ(u.status, 200);
  EXPECT_EQ(header(u, "Content-Range"), "3-3/*");
  EXPECT_EQ(header(u, "Preference-Applied"), "");

  std::string behind = "0-1";
  EXPECT_EQ(plan(table(), "offset=5", nullptr, "", &behind).error.status, 416);
}

TEST(RpcQuery, ShapesByMediaType) {
  std::string csv = "text/csv";
  Planned c = plan(table(), "select=id,name", &csv);
  ASSERT_TRUE(c.ok);
  EXPECT_NE(c.sql.find("string_agg"), std::string::npos);
  EXPECT_EQ(c.plan.params, (std::vector<std::optional<std::string>>{std::string("id,name")}));
  Response r = rpc::shape(c.plan, result(std::string("id,name\n1,a"), "1", std::nullopt));
  EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(r.body, "id,name\n1,a");
  Planned header_quoted = plan(table(), "select=%22a,b%22:id", &csv);
  EXPECT_EQ(header_quoted.plan.params[0], std::string("\"a,b\""));

  std::string object = "application/vnd.pgrst.object+json";
  Planned o = plan(table(), "id=eq.1", &object);
  EXPECT_NE(o.sql.find("'zonegate:PGRST116:'"), std::string::npos);
  Response obj = rpc::shape(o.plan, result(std::string("{\"id\":1}"), "1", std::nullopt));
  EXPECT_EQ(obj.content_type, "application/vnd.pgrst.object+json; charset=utf-8");
  Planned one = plan(scalar(false), "", &object);
  EXPECT_EQ(one.sql.find("PGRST116"), std::string::npos);  // one row whatever it holds

  Planned nulls = plan(scalar(false), "");
  EXPECT_EQ(rpc::shape(nulls.plan, result(std::nullopt, "1", std::nullopt)).body, "null");

  RpcFunction v = table();
  v.returns_void = true;
  v.returns_set = false;
  v.returns_composite = false;
  v.columns.clear();
  Planned vp = plan(v, "limit=3", &csv, "count=exact");
  ASSERT_TRUE(vp.ok);
  Response nothing = rpc::shape(vp.plan, result(std::nullopt, "1", std::nullopt));
  EXPECT_EQ(nothing.status, 204);
  EXPECT_EQ(nothing.body, "");
}

TEST(RpcQuery, SingularFailureIsReadOnlyFromItsMarker) {
  zonegate::pg::Result r;
  r.failure = zonegate::pg::Failure::kSql;
  r.sqlstate = "22P02";
  r.message = "invalid input syntax for type bigint: \"zonegate:PGRST116:2\"";
  Response out;
  ASSERT_TRUE(rpc::singular_failure(r, out));
  EXPECT_EQ(out.status, 406);
  EXPECT_EQ(code_of(out), "PGRST116");
  EXPECT_NE(out.body.find("The result contains 2 rows"), std::string::npos);
  r.message = "invalid input syntax for type integer: \"x\"";
  EXPECT_FALSE(rpc::singular_failure(r, out));
  r.message = "invalid input syntax for type bigint: \"zonegate:PGRST116:x\"";
  EXPECT_FALSE(rpc::singular_failure(r, out));
  r.sqlstate = "P0001";
  r.message = "\"zonegate:PGRST116:2\"";
  EXPECT_FALSE(rpc::singular_failure(r, out));
}

TEST(RpcQuery, CacheKeysTellQueriesApart) {
  std::set<std::string> parts;
  std::string csv = "text/csv";
  std::string object = "application/vnd.pgrst.object+json";
  for (const Planned& p :
       {plan(table(), "select=id"), plan(table(), "select=name"), plan(table(), "select=x:id"),
        plan(table(), "select=y:id"), plan(table(), "id=eq.1"), plan(table(), "id=eq.2"),
        plan(table(), "order=id"), plan(table(), "limit=1"), plan(table(), "offset=1"),
        plan(table(), "select=id", &csv), plan(scalar(false), "", &object),
        plan(table(), "", nullptr, "count=exact")}) {
    ASSERT_TRUE(p.ok);
    EXPECT_FALSE(p.plan.cache_part.empty());
    EXPECT_TRUE(parts.insert(p.plan.cache_part).second) << p.sql;
  }
}
