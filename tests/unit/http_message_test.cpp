// Pure HTTP helpers: percent-decoding, query strings, the error body shape.
#include <gtest/gtest.h>

#include "http/message.hpp"

using namespace zonegate::http;

TEST(PercentDecode, DecodesAndRejectsBadEscapes) {
  std::string out;
  EXPECT_TRUE(percent_decode("a%20b%2Fc", out, false));
  EXPECT_EQ(out, "a b/c");
  EXPECT_TRUE(percent_decode("a+b", out, false));
  EXPECT_EQ(out, "a+b");
  EXPECT_TRUE(percent_decode("a+b", out, true));
  EXPECT_EQ(out, "a b");
  EXPECT_FALSE(percent_decode("%", out, false));
  EXPECT_FALSE(percent_decode("%4", out, false));
  EXPECT_FALSE(percent_decode("%zz", out, false));
}

TEST(Query, ParsesPairs) {
  std::vector<std::pair<std::string, std::string>> q;
  ASSERT_TRUE(parse_query("lon=106.8&lat=-6.2&flag&name=a%26b&&", q));
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"lon", "106.8"}));
  EXPECT_EQ(q[1].second, "-6.2");
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(q[3].second, "a&b");
  EXPECT_FALSE(parse_query("a=%G0", q));
}

TEST(ErrorBody, PostgrestShape) {
  EXPECT_EQ(error_body("not_found", "no route"),
            R"({"code":"not_found","message":"no route","details":null,"hint":null})");
  EXPECT_EQ(
      error_body("23505", "dup \"x\"", "Key (id)=(1)", "try another"),
      R"json({"code":"23505","message":"dup \"x\"","details":"Key (id)=(1)","hint":"try another"})json");
}

TEST(ReasonPhrase, KnownAndUnknown) {
  EXPECT_STREQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(reason_phrase(299), "Unknown");
}
