// The /rpc catalog from the rows of its statement (api/catalog.hpp): overloads of untrusted owners
// and every function of a schema PUBLIC may CREATE in are refused; a shared cache scope is refused
// for a function whose body reads the caller's identity, or whose language cannot be read.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "api/catalog.hpp"

using zonegate::api::Catalog;
using zonegate::api::catalog_from_rows;
using zonegate::api::identity_dependence;

namespace {

using Row = std::vector<std::optional<std::string>>;

// One function row as the catalog statement returns it.
Row function_row(const std::string& oid, const std::string& name, const std::string& types,
                 const std::string& owner, bool trusted, const std::string& language = "sql",
                 std::optional<std::string> body = std::nullopt) {
  Row r(21);
  r[0] = oid;
  r[1] = name;
  r[2] = "s";
  r[3] = "f";
  r[4] = "f";
  r[5] = "f";
  r[6] = "0";
  r[7] = "[\"a\",\"b\"]";
  r[8] = "null";
  r[9] = types;
  r[11] = name + "(integer, integer)";
  r[12] = owner;
  r[13] = trusted ? "t" : "f";
  r[14] = language;
  r[15] = std::move(body);
  return r;
}

// The trailing row: zone_at and the schema's state.
Row schema_row(bool public_create, std::optional<std::string> creators = std::nullopt) {
  Row r(21);
  r[10] = "t";
  r[16] = "t";
  r[17] = public_create ? "t" : "f";
  r[18] = std::move(creators);
  r[19] = "api_owner";
  return r;
}

const std::string kTwoInts = "[\"integer\",\"integer\"]";

}  // namespace

TEST(Catalog, UntrustedOwnersAreRefused) {
  Catalog c = catalog_from_rows("api", {},
                                {function_row("10", "add", kTwoInts, "postgres", true),
                                 function_row("11", "add", kTwoInts, "mallory", false),
                                 schema_row(false, std::string("[\"mallory\"]"))});
  ASSERT_EQ(c.functions.at("add").size(), 1u);
  EXPECT_EQ(c.functions.at("add")[0].oid, 10u);
  EXPECT_EQ(c.functions.at("add")[0].owner, "postgres");
  EXPECT_EQ(c.functions.at("add")[0].signature, "add(integer, integer)");
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_EQ(c.refused[0].function, "api.add(integer, integer)");
  EXPECT_EQ(c.refused[0].owner, "mallory");
  EXPECT_NE(c.refused[0].reason.find("not trusted"), std::string::npos);
  EXPECT_TRUE(c.zone_at);
  EXPECT_TRUE(c.schema_exists);
  EXPECT_FALSE(c.public_create);
  EXPECT_EQ(c.other_creators, std::vector<std::string>{"mallory"});
  EXPECT_EQ(c.schema_owner, "api_owner");
}

TEST(Catalog, ASchemaPublicMayCreateInRefusesEverything) {
  Catalog c = catalog_from_rows("api", {},
                                {function_row("10", "add", kTwoInts, "postgres", true),
                                 function_row("12", "echo", kTwoInts, "api_owner", true),
                                 schema_row(true, std::string("[\"PUBLIC\"]"))});
  EXPECT_TRUE(c.functions.empty());
  ASSERT_EQ(c.refused.size(), 2u);
  EXPECT_NE(c.refused[0].reason.find("PUBLIC may CREATE in schema api"), std::string::npos);
  EXPECT_NE(c.refused[1].reason.find("REVOKE CREATE ON SCHEMA \"api\" FROM PUBLIC"),
            std::string::npos);
}

TEST(Catalog, SharedScopeIsRefusedForBodiesThatReadTheCaller) {
  Catalog c = catalog_from_rows(
      "api", {"who", "pure", "native"},
      {function_row("20", "who", kTwoInts, "postgres", true, "plpgsql",
                    std::string("BEGIN RETURN Current_Setting('zonegate.user_id', true); END")),
       function_row("21", "pure", kTwoInts, "postgres", true, "sql", std::string("SELECT a + b")),
       function_row("22", "native", kTwoInts, "postgres", true, "c", std::string("add_ints")),
       // Not in `shared`: its body is not read (the statement sends NULL), nothing refused.
       function_row("23", "mine", kTwoInts, "postgres", true, "sql"), schema_row(false)});
  EXPECT_EQ(c.functions.size(), 4u);
  ASSERT_EQ(c.shared_refused.size(), 2u);
  ASSERT_NE(c.shared_refusal("who"), nullptr);
  EXPECT_EQ(c.shared_refusal("who")->reason,
            "who(integer, integer): its body reads current_setting");
  ASSERT_NE(c.shared_refusal("native"), nullptr);
  EXPECT_EQ(c.shared_refusal("native")->reason,
            "native(integer, integer): its language, c, cannot be checked");
  EXPECT_EQ(c.shared_refusal("pure"), nullptr);
  EXPECT_EQ(c.shared_refusal("mine"), nullptr);
}

TEST(Catalog, OneOverloadThatReadsTheCallerRefusesSharedForTheName) {
  Catalog c = catalog_from_rows(
      "api", {"f"},
      {function_row("30", "f", kTwoInts, "postgres", true, "sql", std::string("SELECT 1")),
       function_row("31", "f", kTwoInts, "postgres", true, "sql",
                    std::string("SELECT zonegate.current_zones()")),
       schema_row(false)});
  ASSERT_EQ(c.shared_refused.size(), 1u);
  EXPECT_EQ(c.shared_refused[0].function, "f");
}

TEST(Catalog, IdentityMarkers) {
  for (const char* body :
       {"select current_setting('request.jwt.claims', true)", "SELECT CURRENT_USER",
        "select session_user", "SELECT current_role", "x := request.jwt.claims", "zonegate.user_id",
        "SELECT zonegate.current_user_id()", "SELECT zonegate.can_access_current(1)",
        "SELECT auth.uid()"}) {
    EXPECT_NE(identity_dependence("sql", body), "") << body;
    EXPECT_NE(identity_dependence("plpgsql", body), "") << body;
  }
  EXPECT_EQ(identity_dependence("sql", "SELECT a + b"), "");
  EXPECT_EQ(identity_dependence("plpgsql", "BEGIN RETURN zonegate.zone_path(z); END"), "");
  EXPECT_EQ(identity_dependence("plpython3u", "return 1"),
            "its language, plpython3u, cannot be checked");
  EXPECT_EQ(identity_dependence("internal", "int4pl"), "its language, internal, cannot be checked");
}

TEST(Catalog, MalformedRowsThrow) {
  EXPECT_THROW(catalog_from_rows("api", {}, {Row(11)}), std::runtime_error);
  Row bad = function_row("10", "add", "not json", "postgres", true);
  EXPECT_THROW(catalog_from_rows("api", {}, {bad}), std::runtime_error);
}

TEST(Catalog, ResultColumnsInOrder) {
  Row table = function_row("40", "rows", kTwoInts, "postgres", true);
  table[20] = R"j([["id","integer"],["label","text"],["ünï code","numeric(10,2)"]])j";
  Row scalar = function_row("41", "add", kTwoInts, "postgres", true);
  scalar[20] = R"([["add","integer"]])";
  Row record = function_row("42", "untyped", kTwoInts, "postgres", true);  // bare record: NULL
  Catalog c = catalog_from_rows("api", {}, {table, scalar, record, schema_row(false)});
  const auto& cols = c.functions.at("rows")[0].columns;
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(cols[0].name, "id");
  EXPECT_EQ(cols[1].type, "text");
  EXPECT_EQ(cols[2].name, "ünï code");
  EXPECT_EQ(cols[2].type, "numeric(10,2)");
  EXPECT_NE(c.functions.at("rows")[0].column("label"), nullptr);
  EXPECT_EQ(c.functions.at("rows")[0].column("Label"), nullptr);
  ASSERT_EQ(c.functions.at("add")[0].columns.size(), 1u);
  EXPECT_EQ(c.functions.at("add")[0].columns[0].name, "add");
  EXPECT_TRUE(c.functions.at("untyped")[0].columns.empty());

  Row bad = function_row("43", "bad", kTwoInts, "postgres", true);
  bad[20] = R"([["id"]])";
  EXPECT_THROW(catalog_from_rows("api", {}, {bad}), std::runtime_error);
}
