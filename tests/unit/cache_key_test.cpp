// Cache keys from length-prefixed parts (cache/key.hpp) and /rpc's call keys (api/rpc_args.hpp):
// distinct parts or argument lists never make the same key, whatever bytes the values hold.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/rpc_args.hpp"
#include "cache/key.hpp"
#include "http/message.hpp"

using zonegate::api::RpcArg;
using zonegate::api::RpcFunction;
using zonegate::cache::append_key_value;
using zonegate::cache::make_key;

namespace {

using Value = std::optional<std::string>;
using ArgList = std::vector<std::pair<std::string, Value>>;

// A function whose inputs are exactly the names of `args`, all with defaults.
RpcFunction function_for(const ArgList& args) {
  RpcFunction f;
  f.oid = 42;
  f.name = "f";
  for (const auto& a : args)
    f.args.push_back(RpcArg{a.first, "text", true});
  return f;
}

// The /rpc cache key of a call with these arguments (in this order).
std::string rpc_key(const ArgList& args, const std::string* user = nullptr) {
  RpcFunction f = function_for(args);
  std::vector<size_t> used;
  std::vector<Value> params;
  for (size_t i = 0; i < args.size(); ++i) {
    used.push_back(i);
    params.push_back(args[i].second);
  }
  return zonegate::api::rpc::cache_key("f", f, used, params, user);
}

// The arguments a GET query string gives, decoded as /rpc decodes them.
ArgList query_args(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> q;
  EXPECT_TRUE(zonegate::http::parse_query(query, q));
  ArgList out;
  for (auto& [k, v] : q)
    out.emplace_back(k, v);
  return out;
}

}  // namespace

TEST(CacheKey, PartsAreLengthPrefixed) {
  EXPECT_EQ(make_key({"rpc", "", "a:b"}), "3:rpc0:3:a:b");
  std::string k;
  append_key_value(k, std::nullopt);
  append_key_value(k, std::string());
  append_key_value(k, std::string("n"));
  EXPECT_EQ(k, "1:n1:v2:vn");
}

TEST(CacheKey, PartListsThatJoinToTheSameBytesDiffer) {
  // Joined with any separator these would meet; as parts they cannot.
  EXPECT_NE(make_key({"ab", "c"}), make_key({"a", "bc"}));
  EXPECT_NE(make_key({"a|b", "c"}), make_key({"a", "b|c"}));
  EXPECT_NE(make_key({"1:a"}), make_key({"1", "a"}));
  EXPECT_NE(make_key({""}), make_key({}));
  EXPECT_NE(make_key({"", ""}), make_key({""}));
  EXPECT_NE(make_key({"a\036b"}), make_key({"a", "b"}));
}

TEST(CacheKey, NullAndTheTagLettersNeverMeet) {
  std::set<std::string> keys;
  for (const Value& v : {Value(), Value(""), Value("n"), Value("v"), Value("vn"), Value("nv"),
                         Value("1:n"), Value(std::string("\0", 1))}) {
    std::string k;
    append_key_value(k, v);
    EXPECT_TRUE(keys.insert(k).second) << k;
  }
}

TEST(CacheKey, SeparatorBytesInAQueryValueDoNotImitateAnotherArgument) {
  // ?a=1%1Eb%1Fv2 gave the same key as ?a=1&b=2 when parts were joined by \x1e and \x1f.
  std::string two = rpc_key(query_args("a=1&b=2"));
  std::string one = rpc_key(query_args("a=1%1Eb%1Fv2"));
  EXPECT_NE(one, two);
  EXPECT_NE(rpc_key(query_args("a=1%1Eb%1Fn")), rpc_key({{"a", Value("1")}, {"b", Value()}}));
  EXPECT_NE(rpc_key(query_args("a=1%1Eu=alice")), rpc_key(query_args("a=1")));
}

TEST(CacheKey, ArgumentOrderDoesNotMatterButEverythingElseDoes) {
  EXPECT_EQ(rpc_key({{"a", Value("1")}, {"b", Value("2")}}),
            rpc_key({{"b", Value("2")}, {"a", Value("1")}}));
  EXPECT_NE(rpc_key({{"a", Value("1")}, {"b", Value("2")}}),
            rpc_key({{"a", Value("2")}, {"b", Value("1")}}));
  EXPECT_NE(rpc_key({{"a", Value()}}), rpc_key({{"a", Value("n")}}));
  EXPECT_NE(rpc_key({{"a", Value()}}), rpc_key({{"a", Value("")}}));
  EXPECT_NE(rpc_key({{"a", Value("")}}), rpc_key({}));
}

TEST(CacheKey, SharedAndPerUserKeysNeverMeet) {
  const std::string alice = "alice", valice = "valice", empty;
  // A shared call with an argument named like the user part, valued like a subject.
  EXPECT_NE(rpc_key({{"user", Value("alice")}}), rpc_key({}, &alice));
  EXPECT_NE(rpc_key({{"u", Value("alice")}}), rpc_key({}, &valice));
  EXPECT_NE(rpc_key({}), rpc_key({}, &empty));
  EXPECT_NE(rpc_key({}, &alice), rpc_key({}, &valice));
}

TEST(CacheKey, DistinctArgumentListsNeverCollide) {
  // Every list of one or two arguments over names and values made of the bytes keys were once
  // joined with: all keys distinct, unless the lists are the same set of name/value pairs.
  const std::vector<std::string> names = {"a", "b", "a\x1f", "\036b", "ab"};
  const std::vector<Value> values = {Value(),         Value(""),       Value("n"), Value("v"),
                                     Value("1\036b"), Value("\037v2"), Value("2")};
  std::set<std::string> keys;
  size_t lists = 0;
  for (size_t n1 = 0; n1 < names.size(); ++n1) {
    for (size_t n2 = n1 + 1; n2 <= names.size(); ++n2) {
      for (const Value& v1 : values) {
        ArgList one = {{names[n1], v1}};
        if (n2 == names.size()) {
          ++lists;
          EXPECT_TRUE(keys.insert(rpc_key(one)).second);
          continue;
        }
        for (const Value& v2 : values) {
          ArgList two = {{names[n1], v1}, {names[n2], v2}};
          ++lists;
          EXPECT_TRUE(keys.insert(rpc_key(two)).second);
        }
      }
    }
  }
  EXPECT_EQ(keys.size(), lists);
}
