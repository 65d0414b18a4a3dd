// GET /'s Swagger 2.0 document of the /rpc functions (PostgREST 12's root): types as PostgREST
// maps them, overloads merged, GET query parameters and the POST body, and the Accept check.
#include <gtest/gtest.h>

#include <string>

#include "api/rpc_openapi.hpp"
#include "common/json.hpp"

namespace api = zonegate::api;

namespace {

api::RpcFunction fn(const std::string& name, const std::string& signature,
                    std::vector<api::RpcArg> args, bool set = false, bool void_fn = false) {
  api::RpcFunction f;
  f.schema = "api";
  f.name = name;
  f.signature = signature;
  f.args = std::move(args);
  f.returns_set = set;
  f.returns_void = void_fn;
  return f;
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  std::string err;
  EXPECT_TRUE(zonegate::json::parse(text, d, err)) << err;
  return d;
}

}  // namespace

TEST(RpcOpenApi, SwaggerTypesArePostgrestsOnes) {
  EXPECT_EQ(api::swagger_type("integer"), "integer");
  EXPECT_EQ(api::swagger_type("bigint"), "integer");
  EXPECT_EQ(api::swagger_type("smallint"), "integer");
  EXPECT_EQ(api::swagger_type("numeric"), "number");
  EXPECT_EQ(api::swagger_type("double precision"), "number");
  EXPECT_EQ(api::swagger_type("real"), "number");
  EXPECT_EQ(api::swagger_type("text"), "string");
  EXPECT_EQ(api::swagger_type("character varying"), "string");
  EXPECT_EQ(api::swagger_type("boolean"), "boolean");
  EXPECT_EQ(api::swagger_type("jsonb"), "");
  EXPECT_EQ(api::swagger_type("json"), "");
  EXPECT_EQ(api::swagger_type("bigint[]"), "array");
  EXPECT_EQ(api::swagger_type("uuid"), "string");
  EXPECT_EQ(api::swagger_type("timestamp with time zone"), "string");
}

TEST(RpcOpenApi, AcceptHeader) {
  std::string h;
  EXPECT_TRUE(api::accepts_openapi(nullptr));
  for (const char* ok : {"application/openapi+json", "application/json", "*/*", "application/*",
                         "text/html, application/json;q=0.5", "APPLICATION/JSON",
                         "text/csv, */*;q=0.1", " application/openapi+json ; q=1"}) {
    h = ok;
    EXPECT_TRUE(api::accepts_openapi(&h)) << ok;
  }
  for (const char* no : {"text/csv", "application/vnd.pgrst.object+json", "text/html",
                         "application/json;q=0", "*/*;q=0.0, text/plain", ""}) {
    h = no;
    EXPECT_FALSE(api::accepts_openapi(&h)) << no;
  }
}

TEST(RpcOpenApi, DescribesEachFunctionAsPostgrestsRootDoes) {
  api::Catalog cat;
  cat.functions["add"].push_back(
      fn("add", "add(integer, integer)", {{"a", "integer", false}, {"b", "integer", true}}));
  // Overloads: an argument is required only where every overload needs it.
  cat.functions["find"].push_back(fn("find", "find(text)", {{"q", "text", false}}, true));
  cat.functions["find"].push_back(
      fn("find", "find(text, bigint[])", {{"q", "text", false}, {"ids", "bigint[]", false}}, true));
  cat.functions["touch"].push_back(
      fn("touch", "touch(jsonb)", {{"doc", "jsonb", false}}, false, true));
  rapidjson::Document d = parse(api::rpc_swagger(cat, "api"));
  EXPECT_STREQ(d["swagger"].GetString(), "2.0");
  EXPECT_STREQ(d["externalDocs"]["url"].GetString(), "/openapi.json");
  const auto& paths = d["paths"];
  std::vector<std::string> names;
  for (const auto& m : paths.GetObject())
    names.emplace_back(m.name.GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"/", "/openapi.json", "/rpc/add", "/rpc/find",
                                             "/rpc/touch"}));
  EXPECT_STREQ(paths["/"]["get"]["produces"][0].GetString(), "application/openapi+json");

  const auto& get = paths["/rpc/add"]["get"];
  EXPECT_STREQ(get["tags"][0].GetString(), "(rpc) add");
  EXPECT_STREQ(get["summary"].GetString(), "api.add(integer, integer)");
  ASSERT_EQ(get["parameters"].Size(), 2u);
  EXPECT_STREQ(get["parameters"][0]["name"].GetString(), "a");
  EXPECT_STREQ(get["parameters"][0]["in"].GetString(), "query");
  EXPECT_TRUE(get["parameters"][0]["required"].GetBool());
  EXPECT_STREQ(get["parameters"][0]["type"].GetString(), "integer");
  EXPECT_STREQ(get["parameters"][0]["format"].GetString(), "integer");
  EXPECT_FALSE(get["parameters"][1]["required"].GetBool());  // has a default
  EXPECT_TRUE(get["responses"].HasMember("200"));

  const auto& post = paths["/rpc/add"]["post"];
  ASSERT_EQ(post["parameters"].Size(), 2u);
  const auto& args = post["parameters"][0];
  EXPECT_STREQ(args["name"].GetString(), "args");
  EXPECT_STREQ(args["in"].GetString(), "body");
  EXPECT_STREQ(args["schema"]["properties"]["b"]["type"].GetString(), "integer");
  ASSERT_EQ(args["schema"]["required"].Size(), 1u);
  EXPECT_STREQ(args["schema"]["required"][0].GetString(), "a");
  EXPECT_STREQ(post["parameters"][1]["$ref"].GetString(), "#/parameters/preferParams");

  const auto& find = paths["/rpc/find"]["get"];
  EXPECT_STREQ(find["summary"].GetString(), "api.find(text), api.find(text, bigint[])");
  ASSERT_EQ(find["parameters"].Size(), 2u);
  EXPECT_TRUE(find["parameters"][0]["required"].GetBool());           // q: in both
  EXPECT_FALSE(find["parameters"][1]["required"].GetBool());          // ids: in one
  EXPECT_STREQ(find["parameters"][1]["type"].GetString(), "string");  // {1,2} in a query
  EXPECT_STREQ(find["produces"][2].GetString(), "text/csv");          // a set: CSV too
  const auto& ids = paths["/rpc/find"]["post"]["parameters"][0]["schema"]["properties"]["ids"];
  EXPECT_STREQ(ids["type"].GetString(), "array");
  EXPECT_STREQ(ids["items"]["type"].GetString(), "integer");

  const auto& touch = paths["/rpc/touch"]["post"];
  EXPECT_FALSE(touch["parameters"][0]["schema"]["properties"]["doc"].HasMember("type"));  // any
  EXPECT_TRUE(touch["responses"].HasMember("204"));
}
