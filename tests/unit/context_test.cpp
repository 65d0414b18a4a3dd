// The user context document and the JWT "sub" fallback.
#include <gtest/gtest.h>

#include "core/context.hpp"
#include "core/error.hpp"

using namespace zonegate::core;
using zonegate::Error;

namespace {

std::shared_ptr<const ZoneTree> small_tree() {
  std::vector<ZoneInput> in = {
      {1, 0, false, "11", "Aceh", "province"},
      {2, 0, false, "12", "Sumatera \"Utara\"", "province"},
      {101, 1, true, "11.01", "Kabupaten Aceh Selatan", "regency"},
      {102, 1, true, "11.02", "Kabupaten Aceh Tenggara", "regency"},
      {10101, 101, true, "11.01.01", "Bakongan", "district"},
  };
  return ZoneTree::build(in);
}

}  // namespace

TEST(Context, DocumentForAScopedUser) {
  auto t = small_tree();
  UserRecord u;
  u.user_id = "u-1";
  u.email = "a@example.org";
  u.role = "regency_supervisor";
  u.permissions = {"read", "write"};
  u.attributes_json = R"({"team": "north"})";
  u.grants = {102, 101, 101};
  Scope s = scope_for(*t, u);
  EXPECT_EQ(build_context_json(*t, u, s, 42),
            R"({"user_id":"u-1","email":"a@example.org","display_name":null,)"
            R"("role":"regency_supervisor","permissions":["read","write"],"sees_all":false,)"
            R"("attributes":{"team": "north"},"grants":[)"
            R"({"id":101,"code":"11.01","name":"Kabupaten Aceh Selatan","level":"regency"},)"
            R"({"id":102,"code":"11.02","name":"Kabupaten Aceh Tenggara","level":"regency"}],)"
            R"("regions":[{"id":1,"code":"11","name":"Aceh","level":"province"}],)"
            R"("visible_zone_count":3,"cache_version":42})");
}

TEST(Context, SeesAllReachesEveryRegionWithoutGrants) {
  auto t = small_tree();
  UserRecord u;
  u.user_id = "admin";
  u.role = "admin";
  u.sees_all = true;
  Scope s = scope_for(*t, u);
  std::string doc = build_context_json(*t, u, s, 1);
  EXPECT_NE(doc.find(R"("grants":[])"), std::string::npos);
  EXPECT_NE(doc.find(R"("name":"Sumatera \"Utara\"")"), std::string::npos);  // escaped
  EXPECT_NE(doc.find(R"("visible_zone_count":5)"), std::string::npos);
  EXPECT_NE(doc.find(R"({"id":1,)"), std::string::npos);
  EXPECT_NE(doc.find(R"({"id":2,)"), std::string::npos);
}

TEST(Context, TokensRenderEveryKindOfValue) {
  Document doc = {{DocToken::kBeginObject, {}, 0},  {DocToken::kKey, "s", 0},
                  {DocToken::kString, "a\"b\n", 0}, {DocToken::kKey, "n", 0},
                  {DocToken::kNull, {}, 0},         {DocToken::kKey, "b", 0},
                  {DocToken::kBool, {}, 1},         {DocToken::kKey, "i", 0},
                  {DocToken::kInt, {}, INT64_MIN},  {DocToken::kKey, "a", 0},
                  {DocToken::kBeginArray, {}, 0},   {DocToken::kAttributes, {}, 0},
                  {DocToken::kBool, {}, 0},         {DocToken::kEndArray, {}, 0},
                  {DocToken::kEndObject, {}, 0}};
  EXPECT_EQ(render_json(doc, ""),
            R"({"s":"a\"b\n","n":null,"b":true,"i":-9223372036854775808,"a":[{},false]})");
  EXPECT_EQ(render_json(doc, R"({"x": [1]})"),
            R"({"s":"a\"b\n","n":null,"b":true,"i":-9223372036854775808,"a":[{"x": [1]},false]})");
}

TEST(Context, DocumentIsBalancedWithKeysOnlyInObjects) {
  auto t = small_tree();
  UserRecord u;
  u.user_id = "u-2";
  u.role = "staff";
  u.permissions = {"a", "b", "c"};
  u.grants = {10101, 2};
  Document doc = context_document(*t, u, scope_for(*t, u), 7);
  std::vector<bool> in_object;  // per open container
  bool expect_value = false;    // after a key
  for (const DocToken& tok : doc) {
    bool in_obj = !in_object.empty() && in_object.back();
    if (in_obj && !expect_value) {  // an object's member starts with its key
      ASSERT_TRUE(tok.kind == DocToken::kKey || tok.kind == DocToken::kEndObject);
    }
    if (tok.kind == DocToken::kKey) {
      ASSERT_TRUE(in_obj);
      ASSERT_FALSE(expect_value);
      expect_value = true;
      continue;
    }
    expect_value = false;
    if (tok.kind == DocToken::kBeginObject || tok.kind == DocToken::kBeginArray) {
      in_object.push_back(tok.kind == DocToken::kBeginObject);
    } else if (tok.kind == DocToken::kEndObject || tok.kind == DocToken::kEndArray) {
      ASSERT_FALSE(in_object.empty());
      ASSERT_EQ(in_object.back(), tok.kind == DocToken::kEndObject);
      in_object.pop_back();
    }
  }
  EXPECT_TRUE(in_object.empty());
  // Against the document written out by hand, not against build_context_json (which is
  // render_json of context_document by definition).
  EXPECT_EQ(render_json(doc, ""),
            R"({"user_id":"u-2","email":null,"display_name":null,"role":"staff",)"
            R"("permissions":["a","b","c"],"sees_all":false,"attributes":{},"grants":[)"
            R"({"id":2,"code":"12","name":"Sumatera \"Utara\"","level":"province"},)"
            R"({"id":10101,"code":"11.01.01","name":"Bakongan","level":"district"}],)"
            R"("regions":[{"id":1,"code":"11","name":"Aceh","level":"province"},)"
            R"({"id":2,"code":"12","name":"Sumatera \"Utara\"","level":"province"}],)"
            R"("visible_zone_count":2,"cache_version":7})");
  EXPECT_NE(render_json(doc, "").find(R"("regions":[{"id":1,)"), std::string::npos);
  EXPECT_NE(render_json(doc, "").find(R"({"id":2,)"), std::string::npos);
}

TEST(Claims, SubjectFallback) {
  EXPECT_EQ(claims_subject(R"({"sub":"abc","role":"authenticated"})"), "abc");
  EXPECT_EQ(claims_subject(R"({"role":"anon"})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":""})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":42})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":null,"role":"anon"})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":"a\u00e9"})"), "a\xc3\xa9");
}

// Claims that name nobody unambiguously are errors, never a guess: a reader taking the first
// "sub" and jsonb (the last) would disagree, and a C string stops at a NUL.
TEST(Claims, AmbiguousClaimsAreRefused) {
  for (const char* bad :
       {"not json", "", "[]", "\"abc\"", R"({"sub":"a","sub":"b"})", R"({"sub":"a","sub":"a"})",
        R"({"sub":"adm\u0000in"})", "{\"sub\":\"a\"} x"}) {
    EXPECT_THROW(claims_subject(bad), Error) << bad;
  }
  try {
    claims_subject(R"({"sub":"a","role":"x","sub":"b"})");
    FAIL() << "duplicate sub accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("more than one"), std::string::npos);
  }
}
