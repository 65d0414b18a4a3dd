// The user context document and the JWT "sub" fallback.
#include <gtest/gtest.h>

#include "core/context.hpp"

using namespace zonegate::core;

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

TEST(Claims, SubjectFallback) {
  EXPECT_EQ(claims_subject(R"({"sub":"abc","role":"authenticated"})"), "abc");
  EXPECT_EQ(claims_subject(R"({"role":"anon"})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":""})"), std::nullopt);
  EXPECT_EQ(claims_subject(R"({"sub":42})"), std::nullopt);
  EXPECT_EQ(claims_subject("not json"), std::nullopt);
  EXPECT_EQ(claims_subject(""), std::nullopt);
  EXPECT_EQ(claims_subject("[]"), std::nullopt);
}
