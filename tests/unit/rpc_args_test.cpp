// /rpc's argument decoding (api/rpc_args.hpp): query strings, forms and JSON bodies become named
// arguments, a name given twice is refused, overloads are chosen by argument names, and each
// value becomes the parameter text PostgreSQL gets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/rpc_args.hpp"
#include "common/json.hpp"

using zonegate::api::RpcArg;
using zonegate::api::RpcFunction;
namespace rpc = zonegate::api::rpc;

namespace {

RpcFunction fn(uint32_t oid, std::vector<RpcArg> args) {
  RpcFunction f;
  f.oid = oid;
  f.name = "f";
  f.args = std::move(args);
  return f;
}

struct Call {
  bool ok = false;
  rpc::DecodedArgs args;
  zonegate::http::Response error;
};

Call decode(const std::string& method, const std::string& query, const std::string& body,
            const std::string* content_type) {
  Call c;
  rpc::CallInput in;
  in.method = method;
  in.query = query;
  in.body = body;
  in.content_type = content_type;
  c.ok = rpc::decode_args(in, c.args, c.error);
  return c;
}

std::string code_of(const zonegate::http::Response& r) {
  rapidjson::Document d;
  std::string err;
  if (!zonegate::json::parse(r.body, d, err) || !d.IsObject() || !d.HasMember("code")) return "";
  return d["code"].GetString();
}

const std::string kJson = "application/json";
const std::string kForm = "application/x-www-form-urlencoded; charset=utf-8";

}  // namespace

TEST(RpcArgs, QueryStringForGetAndHead) {
  for (const char* m : {"GET", "HEAD"}) {
    Call c = decode(m, "a=1&b=x%20y+z", "ignored", nullptr);
    ASSERT_TRUE(c.ok);
    EXPECT_TRUE(c.args.is_get);
    ASSERT_EQ(c.args.args.size(), 2u);
    EXPECT_EQ(c.args.args[0].first, "a");
    EXPECT_EQ(*c.args.args[0].second, "1");
    EXPECT_EQ(*c.args.args[1].second, "x y z");
    EXPECT_FALSE(c.args.body);
  }
  Call bad = decode("GET", "a=%zz", "", nullptr);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error.status, 400);
  EXPECT_EQ(code_of(bad.error), "PGRST100");
}

TEST(RpcArgs, PostBodiesByContentType) {
  Call form = decode("POST", "id=eq.1", "a=1&b=2", &kForm);
  ASSERT_TRUE(form.ok);
  // A POST's query parameters are filters on the result, never arguments.
  ASSERT_EQ(form.args.query.filters.size(), 1u);
  EXPECT_EQ(form.args.query.filters[0].name, "id");
  Call not_filter = decode("POST", "q=ignored", "a=1&b=2", &kForm);
  EXPECT_FALSE(not_filter.ok);
  EXPECT_EQ(not_filter.error.status, 400);
  EXPECT_EQ(code_of(not_filter.error), "PGRST100");
  EXPECT_FALSE(form.args.is_get);
  ASSERT_EQ(form.args.args.size(), 2u);
  EXPECT_EQ(*form.args.args[1].second, "2");

  for (const std::string* ct : {&kJson, static_cast<const std::string*>(nullptr)}) {
    Call json = decode("POST", "", R"({"a": 1, "b": "two"})", ct);
    ASSERT_TRUE(json.ok);
    ASSERT_EQ(json.args.args.size(), 2u);
    EXPECT_EQ(json.args.args[1].first, "b");
    EXPECT_FALSE(json.args.args[1].second);  // JSON values stay in the body
    EXPECT_TRUE(json.args.body);
  }
  Call empty = decode("POST", "a=eq.1", "", &kJson);
  ASSERT_TRUE(empty.ok);
  EXPECT_TRUE(empty.args.args.empty());

  const std::string xml = "application/xml";
  Call unsupported = decode("POST", "", "<a/>", &xml);
  EXPECT_FALSE(unsupported.ok);
  EXPECT_EQ(unsupported.error.status, 415);
  EXPECT_EQ(code_of(unsupported.error), "PGRST102");
  for (const char* body : {"{\"a\": 1,", "{} {}", "[1e400]"}) {
    Call bad = decode("POST", "", body, &kJson);
    EXPECT_FALSE(bad.ok) << body;
    EXPECT_EQ(code_of(bad.error), "PGRST102") << body;
  }
  // Another JSON value is kept whole, for a function that takes the body as its one argument.
  for (const char* body : {"[1]", "\"x\"", "5"}) {
    Call whole = decode("POST", "", body, &kJson);
    ASSERT_TRUE(whole.ok) << body;
    EXPECT_TRUE(whole.args.args.empty());
    EXPECT_EQ(rpc::whole_body_param(whole.args), body);
  }
  const std::string text = "text/plain; charset=utf-8";
  Call plain = decode("POST", "", "hello", &text);
  ASSERT_TRUE(plain.ok);
  EXPECT_EQ(plain.args.body_kind, rpc::BodyKind::kText);
  EXPECT_EQ(rpc::whole_body_param(plain.args), "hello");
  const std::string octets = "application/octet-stream";
  Call binary = decode("POST", "", std::string("\x01\xff\0", 3), &octets);
  ASSERT_TRUE(binary.ok);
  EXPECT_EQ(rpc::whole_body_param(binary.args), "\\x01ff00");
  Call nul = decode("POST", "", std::string("a\0b", 3), &text);
  EXPECT_FALSE(nul.ok);
  Call bad_form = decode("POST", "", "a=%", &kForm);
  EXPECT_FALSE(bad_form.ok);
  EXPECT_EQ(code_of(bad_form.error), "PGRST100");
}

TEST(RpcArgs, ANameGivenTwiceIsRefused) {
  for (const Call& c :
       {decode("GET", "a=1&b=2&a=3", "", nullptr), decode("POST", "", "a=1&a=1", &kForm),
        decode("POST", "", R"({"a": 1, "a": 2})", &kJson)}) {
    EXPECT_FALSE(c.ok);
    EXPECT_EQ(c.error.status, 400);
    EXPECT_NE(c.error.body.find("argument \\\"a\\\" given twice"), std::string::npos)
        << c.error.body;
  }
  // Names that differ only past a NUL are different names.
  Call nul = decode("GET", "a=1&a%00=2", "", nullptr);
  EXPECT_TRUE(nul.ok);
}

TEST(RpcArgs, ResolvesTheOverloadByNamesWithDefaults) {
  std::vector<RpcFunction> overloads = {
      fn(1, {{"a", "integer", false}}), fn(2, {{"a", "integer", false}, {"b", "integer", false}}),
      fn(3, {{"a", "integer", false}, {"b", "integer", false}, {"c", "text", true}}),
      fn(4, {{"x", "text", true}})};
  std::vector<size_t> used;
  auto pick = [&](const std::string& query) {
    Call c = decode("GET", query, "", nullptr);
    EXPECT_TRUE(c.ok);
    const RpcFunction* f = rpc::resolve(overloads, c.args, used);
    return f == nullptr ? 0u : f->oid;
  };
  EXPECT_EQ(pick("a=1"), 1u);
  EXPECT_EQ(pick("a=1&b=2"), 2u);  // fewest inputs wins over the one with a default left out
  EXPECT_EQ(pick("b=2&a=1"), 2u);
  EXPECT_EQ(used, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(pick("c=x&a=1&b=2"), 3u);
  EXPECT_EQ(used, (std::vector<size_t>{2, 0, 1}));
  EXPECT_EQ(pick(""), 4u);
  EXPECT_EQ(pick("x=1&a=1"), 0u);
  EXPECT_EQ(pick("b=2"), 0u);
  EXPECT_EQ(pick("zz=1"), 0u);
}

TEST(RpcArgs, BindsParametersInTheOrderOfTheRequest) {
  RpcFunction f = fn(1, {{"n", "integer", false},
                         {"tags", "text[]", true},
                         {"doc", "jsonb", true},
                         {"note", "text", true}});
  std::vector<RpcFunction> overloads = {f};
  std::vector<size_t> used;
  Call c =
      decode("POST", "",
             R"({"doc": {"a": [1, {"b": null}], "s": "x\"y"}, "tags": ["a", null, "b\"c", 5, [1]],
                      "n": 12, "note": null})",
             &kJson);
  ASSERT_TRUE(c.ok);
  ASSERT_EQ(rpc::resolve(overloads, c.args, used), overloads.data());
  std::vector<std::optional<std::string>> p = rpc::bind_params(overloads[0], used, c.args);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(*p[0], R"({"a":[1,{"b":null}],"s":"x\"y"})");
  EXPECT_EQ(*p[1], R"({"a",NULL,"b\"c","5","[1]"})");
  EXPECT_EQ(*p[2], "12");
  EXPECT_FALSE(p[3]);

  Call q = decode("GET", "note=&n=7", "", nullptr);
  ASSERT_TRUE(q.ok);
  ASSERT_NE(rpc::resolve(overloads, q.args, used), nullptr);
  p = rpc::bind_params(overloads[0], used, q.args);
  EXPECT_EQ(p, (std::vector<std::optional<std::string>>{std::string(), std::string("7")}));
}

TEST(RpcArgs, JsonValuesAsParameters) {
  auto param = [](const std::string& json, const std::string& type) {
    rapidjson::Document d;
    std::string err;
    EXPECT_TRUE(zonegate::json::parse(json, d, err)) << err;
    return rpc::json_to_param(d, type);
  };
  EXPECT_FALSE(param("null", "integer"));
  EXPECT_EQ(*param("\"x\"", "integer"), "x");
  EXPECT_EQ(*param("true", "boolean"), "true");
  EXPECT_EQ(*param("-5", "integer"), "-5");
  EXPECT_EQ(*param("18446744073709551615", "numeric"), "18446744073709551615");
  EXPECT_EQ(*param("0.5", "numeric"), "0.5");
  EXPECT_EQ(*param("[1,2]", "integer"), "[1,2]");  // not an array type: the JSON text
  EXPECT_EQ(*param("[]", "integer[]"), "{}");
  EXPECT_EQ(*param("[\"a\\\\b\"]", "text[]"), "{\"a\\\\b\"}");
  EXPECT_EQ(*param("{\"k\":{}}", "json"), "{\"k\":{}}");
}

TEST(RpcArgs, DeeplyNestedJsonIsWrittenWithoutRecursion) {
  // A million levels would overflow the stack of a recursive writer (the proxy crashed on this
  // before json_text was iterative).
  const size_t depth = 1'000'000;
  std::string body = "{\"doc\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
  Call c = decode("POST", "", body, &kJson);
  ASSERT_TRUE(c.ok);
  std::vector<RpcFunction> overloads = {fn(1, {{"doc", "jsonb", false}})};
  std::vector<size_t> used;
  ASSERT_NE(rpc::resolve(overloads, c.args, used), nullptr);
  auto p = rpc::bind_params(overloads[0], used, c.args);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(*p[0], std::string(depth, '[') + std::string(depth, ']'));
  // And inside an array argument.
  Call a = decode("POST", "",
                  "{\"xs\": [" + std::string(depth, '[') + std::string(depth, ']') + "]}", &kJson);
  ASSERT_TRUE(a.ok);
  overloads = {fn(2, {{"xs", "int[]", false}})};
  ASSERT_NE(rpc::resolve(overloads, a.args, used), nullptr);
  p = rpc::bind_params(overloads[0], used, a.args);
  EXPECT_EQ(p[0]->size(), 2 * depth + 4);
}

TEST(RpcArgs, JsonTextMatchesRapidjsonsWriter) {
  const char* const mixed = R"({"a":[1,-2,3.25,1e300,18446744073709551615,-9223372036854775808],)"
                            R"("b":{"c":[],"d":{}},"e":"\u00fc\n\"","f":[true,false,null]})";
  for (const char* text : {mixed, "[]", "{}", "\"\"", "0", "[[[{}]],[{}]]"}) {
    rapidjson::Document d;
    std::string err;
    ASSERT_TRUE(zonegate::json::parse(text, d, err)) << err;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    d.Accept(w);
    EXPECT_EQ(rpc::json_text(d), std::string(buf.GetString(), buf.GetSize())) << text;
  }
}

TEST(RpcArgs, OnGetAnOperatorExpressionIsAFilterUnlessItNamesOnlyAnInput) {
  RpcFunction search = fn(1, {{"category", "text", true}, {"msg", "text", true}});
  search.columns = {{"category", "text"}, {"n", "integer"}};
  std::vector<RpcFunction> overloads = {search};
  Call c =
      decode("GET", "category=eq.fruit&msg=eq.hi&n=gt.1&select=n&order=n&limit=1", "", nullptr);
  ASSERT_TRUE(c.ok);
  EXPECT_TRUE(c.args.args.empty());
  ASSERT_EQ(c.args.query.filters.size(), 3u);
  zonegate::http::Response error;
  ASSERT_TRUE(rpc::adopt_arguments(overloads, c.args, error));
  // msg is an input and no column: the argument "eq.hi"; category is both: a filter.
  ASSERT_EQ(c.args.args.size(), 1u);
  EXPECT_EQ(c.args.args[0].first, "msg");
  EXPECT_EQ(*c.args.args[0].second, "eq.hi");
  ASSERT_EQ(c.args.query.filters.size(), 2u);
  EXPECT_EQ(c.args.query.filters[0].name, "category");
  EXPECT_EQ(c.args.query.filters[1].name, "n");

  Call twice = decode("GET", "msg=hi&msg=eq.hi", "", nullptr);
  ASSERT_TRUE(twice.ok);
  EXPECT_FALSE(rpc::adopt_arguments(overloads, twice.args, error));
  EXPECT_EQ(code_of(error), "PGRST100");
}

TEST(RpcArgs, TheWholeBodyGoesToOneInput) {
  RpcFunction named = fn(1, {{"a", "integer", false}});
  RpcFunction json = fn(2, {{"", "jsonb", false}});
  RpcFunction text = fn(3, {{"", "text", false}});
  RpcFunction doc = fn(4, {{"doc", "json", false}});
  std::vector<RpcFunction> overloads = {named, json, text};
  std::vector<size_t> used;
  bool whole = false;
  auto pick = [&](const std::vector<RpcFunction>& o, const Call& c) {
    EXPECT_TRUE(c.ok) << c.error.body;
    const RpcFunction* f = rpc::choose(o, c.args, used, whole);
    return f == nullptr ? 0u : f->oid;
  };
  EXPECT_EQ(pick(overloads, decode("POST", "", R"({"a": 1})", &kJson)), 1u);
  EXPECT_FALSE(whole);
  EXPECT_EQ(pick(overloads, decode("POST", "", R"({"x": 1})", &kJson)), 2u);  // the fallback
  EXPECT_TRUE(whole);
  EXPECT_EQ(used, std::vector<size_t>{0});
  EXPECT_EQ(pick(overloads, decode("POST", "", "[1, 2]", &kJson)), 2u);
  EXPECT_EQ(pick(overloads, decode("POST", "", "", &kJson)), 2u);  // {}: no overload without inputs
  const std::string plain = "text/plain";
  EXPECT_EQ(pick(overloads, decode("POST", "", "hi", &plain)), 3u);
  EXPECT_EQ(pick(overloads, decode("GET", "x=1", "", nullptr)), 0u);
  // params=single-object: the one json or jsonb input, named or not, gets the body.
  Call single;
  rpc::CallInput in;
  in.method = "POST";
  in.content_type = &kJson;
  in.body = R"({"a": 1})";
  in.prefer = {"params=single-object"};
  single.ok = rpc::decode_args(in, single.args, single.error);
  EXPECT_TRUE(single.args.args.empty());
  EXPECT_EQ(pick({named, doc}, single), 4u);
  EXPECT_TRUE(whole);
  EXPECT_EQ(rpc::whole_body_param(single.args), R"({"a":1})");
  EXPECT_EQ(pick({named}, single), 0u);
}
