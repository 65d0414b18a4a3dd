// What cached /rpc functions read (cache.rpc.<fn>.depends_on) and what a change invalidates: the
// config's rules, the index built from the database's answer, and the response cache dropping
// exactly the dependents of a table, never serving an entry a change made stale, and not caching
// a function whose table is not watched.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cache/dependencies.hpp"
#include "cache/response_cache.hpp"
#include "config/config.hpp"

using zonegate::cache::Answer;
using zonegate::cache::Asker;
using zonegate::cache::CacheKey;
using zonegate::cache::DependencyIndex;
using zonegate::cache::Reply;
using zonegate::cache::ResponseCache;
using zonegate::cache::TableState;
using zonegate::config::load_string;

namespace {

std::vector<std::string> errors(const std::string& yaml) {
  std::vector<std::string> got;
  for (const auto& e : load_string(yaml, "d.yaml").errors)
    got.push_back(e.to_string());
  return got;
}

const char* kRpc = "rpc:\n  functions: [a, b, c, d]\n";

}  // namespace

TEST(CacheDependencies, ACachedFunctionMustDeclareWhatItReads) {
  EXPECT_EQ(
      errors(std::string(kRpc) + "cache:\n  rpc:\n    a: {ttl: 10s}\n    b: on\n"),
      (std::vector<std::string>{
          "d.yaml:5:8: cache.rpc.a: declare what the function reads: depends_on: "
          "[schema.table, ...] (application tables, watched with zonegate.watch_table) "
          "and/or zonegate (zonegate's own tables), [] for none; docs/CONFIG.md, \"cache\"",
          "d.yaml:6:5: cache.rpc.b: declare what the function reads: depends_on: "
          "[schema.table, ...] (application tables, watched with zonegate.watch_table) "
          "and/or zonegate (zonegate's own tables), [] for none; docs/CONFIG.md, \"cache\""}));
  // Not cached: nothing to declare; an empty list declares that it reads no table.
  EXPECT_TRUE(errors(std::string(kRpc) +
                     "cache:\n  rpc:\n    a: off\n    b: {enabled: false}\n    c: {ttl: 0ms}\n"
                     "    d: {depends_on: []}\n")
                  .empty());
  auto r = load_string(std::string(kRpc) +
                           "cache:\n  rpc:\n"
                           "    a: {depends_on: [zonegate]}\n"
                           "    b: {depends_on: [App.Items, 'public.\"My \"\"T\"\".x\"', zonegate, "
                           "app.items]}\n",
                       "ok.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& a = r.config.cache.rpc.at("a");
  EXPECT_TRUE(a.depends_on_zonegate);
  EXPECT_TRUE(a.depends_on.empty());
  const auto& b = r.config.cache.rpc.at("b");
  EXPECT_TRUE(b.depends_on_zonegate);
  ASSERT_EQ(b.depends_on.size(), 2u);  // app.items once: unquoted names fold to lower case
  EXPECT_EQ(b.depends_on[0].schema, "app");
  EXPECT_EQ(b.depends_on[0].name, "items");
  EXPECT_EQ(b.depends_on[0].text, "App.Items");
  EXPECT_EQ(b.depends_on[1].schema, "public");
  EXPECT_EQ(b.depends_on[1].name, "My \"T\".x");
}

TEST(CacheDependencies, MalformedTablesAreErrorsWhereTheyAreWritten) {
  auto bad = [](int line, const std::string& entry, const std::string& why) {
    return "d.yaml:" + std::to_string(line) + ":11: cache.rpc.a.depends_on: \"" + entry +
           "\" is not zonegate or schema.table: " + why;
  };
  const std::string schema_table = "name the table with its schema: schema.table";
  EXPECT_EQ(
      errors(std::string(kRpc) + "cache:\n  rpc:\n    a:\n      depends_on:\n        - items\n"
                                 "        - a.b.c\n        - \"app.\\\"x\"\n        - app.it-ems\n"
                                 "        - app.\"\"\n        - .items\n"),
      (std::vector<std::string>{
          bad(7, "items", schema_table), bad(8, "a.b.c", schema_table),
          bad(9, "app.\"x", "unbalanced quotes"),
          bad(10, "app.it-ems", "'-' cannot be part of an unquoted name (quote it: \"Name\")"),
          bad(11, "app.\"\"", "a quoted name must not be empty"),
          bad(12, ".items", "a name is missing")}));
}

TEST(CacheDependencies, IndexFromTheDatabasesAnswer) {
  auto r = load_string(std::string(kRpc) +
                           "cache:\n  rpc:\n"
                           "    a: {depends_on: [zonegate]}\n"
                           "    b: {depends_on: [app.items, zonegate]}\n"
                           "    c: {depends_on: [app.items, app.orders]}\n"
                           "    d: {depends_on: [app.gone]}\n",
                       "i.yaml");
  ASSERT_TRUE(r.ok());
  const auto& cc = r.config.cache;
  auto tables = zonegate::cache::depends_on_tables(cc);
  ASSERT_EQ(tables.size(), 3u);
  TableState items{tables[0], 100, "app.items", true, ""};
  TableState orders{tables[1], 200, "app.orders", false, "its statement trigger is missing"};
  TableState gone{tables[2], 0, "app.gone", false, ""};
  DependencyIndex idx =
      zonegate::cache::build_dependency_index(cc, {items, orders, gone}, true, "");
  EXPECT_EQ(idx.zonegate_routes, (std::vector<std::string>{"rpc:a", "rpc:b"}));
  EXPECT_EQ(idx.table_routes, (std::vector<std::string>{"rpc:b", "rpc:c", "rpc:d"}));
  EXPECT_TRUE(idx.cacheable("rpc:a"));
  EXPECT_TRUE(idx.cacheable("rpc:b"));
  EXPECT_FALSE(idx.cacheable("rpc:c"));  // app.orders is not watched
  EXPECT_FALSE(idx.cacheable("rpc:d"));  // app.gone does not exist
  ASSERT_EQ(idx.refused.size(), 2u);
  EXPECT_EQ(idx.refused[0].function, "c");
  EXPECT_EQ(idx.refused[0].table, "app.orders");
  EXPECT_EQ(idx.refused[0].reason,
            "table app.orders is not watched: its statement trigger is missing");
  EXPECT_EQ(idx.refused[0].hint, "SELECT zonegate.watch_table('app.orders')");
  EXPECT_EQ(idx.refused[1].reason, "table app.gone does not exist");
  EXPECT_EQ(idx.by_oid.at(100), (std::vector<std::string>{"rpc:b", "rpc:c"}));
  // Not checked (the check failed, or has not run): nothing that reads a table is cached.
  DependencyIndex none = zonegate::cache::build_dependency_index(cc, {}, false, "not checked yet");
  EXPECT_TRUE(none.cacheable("rpc:a"));
  EXPECT_FALSE(none.cacheable("rpc:b"));
  EXPECT_EQ(none.refused[0].reason, "not checked yet");
  EXPECT_EQ(zonegate::cache::sql_literal("app.\"it's\""), "'app.\"it''s\"'");
}

namespace {

// A response cache over the routes of kRpc, on an injected clock.
struct Fixture {
  int64_t now = 1'000;
  zonegate::config::Config cfg;
  std::unique_ptr<ResponseCache> cache;
  int upstream_calls = 0;

  Fixture() {
    auto r = load_string(std::string(kRpc) +
                             "cache:\n  rpc:\n"
                             "    a: {depends_on: [zonegate], scope: shared, stale_if_error: 1h}\n"
                             "    b: {depends_on: [app.items], scope: shared, stale_if_error: 1h}\n"
                             "    c: {depends_on: [app.orders], scope: shared}\n",
                         "f.yaml");
    EXPECT_TRUE(r.ok());
    cfg = r.config;
    cache = std::make_unique<ResponseCache>(
        cfg.cache, std::vector<std::string>{"rpc:a", "rpc:b", "rpc:c", "rpc:d", "me_context"},
        [this] { return now; });
    cache->set_channel_up(true);
    now += 1;
  }
  void check(bool items_watched) const {
    auto tables = zonegate::cache::depends_on_tables(cfg.cache);
    std::vector<TableState> st;
    for (const auto& t : tables) {
      bool items = t.name == "items";
      st.push_back({t, items ? 100u : 200u, "app." + t.name, items ? items_watched : true, ""});
    }
    cache->set_dependencies(zonegate::cache::build_dependency_index(cfg.cache, st, true, ""));
  }
  // How the cache answered one call of `fn`; `status` is what the database answers.
  std::string get(const std::string& fn, int status = 200) {
    std::string outcome;
    Asker a;
    a.reply = [&outcome](const Answer& ans) { outcome = ans.outcome; };
    cache->serve(std::move(a), cfg.cache.rpc.at(fn), CacheKey{"rpc:" + fn, "k/" + fn, ""},
                 [this, status](const Reply& done) {
                   ++upstream_calls;
                   Answer ans;
                   ans.status = status;
                   ans.body = "{}";
                   done(std::move(ans));
                 });
    return outcome;
  }
};

}  // namespace

TEST(CacheDependencies, AnApplicationTableChangeDropsItsDependentsOnly) {
  Fixture f;
  // Before the first check, a function that reads a table is not cached at all.
  EXPECT_EQ(f.get("b"), "bypass");
  EXPECT_EQ(f.get("a"), "miss");
  f.check(true);
  EXPECT_EQ(f.get("b"), "miss");
  EXPECT_EQ(f.get("b"), "hit");
  EXPECT_EQ(f.get("a"), "hit");
  EXPECT_EQ(f.get("c"), "miss");
  // app.items (oid 100) changed: b's entry is gone (not even stale-if-error), a and c keep.
  f.cache->on_change(R"({"op":"UPDATE","table":"app.items","oid":100,"users":[],"version":1})");
  EXPECT_EQ(f.get("b", 500), "miss");  // the database fails: no stale answer from before
  EXPECT_EQ(f.get("a"), "hit");
  EXPECT_EQ(f.get("c"), "hit");
  EXPECT_EQ(f.get("b"), "miss");
  EXPECT_EQ(f.get("b"), "hit");
  // Another table's oid, or one nobody depends on: nothing dropped.
  f.cache->on_change(R"({"op":"INSERT","table":"app.other","oid":999,"users":[],"version":2})");
  EXPECT_EQ(f.get("b"), "hit");
  // b and c at construction and at the check, b at the change.
  EXPECT_EQ(f.cache->stats().dependency_invalidations, 5);
}

TEST(CacheDependencies, ACatalogCheckDuringAFetchKeepsOnlyTheAnswersItDoesNotGovern) {
  Fixture f;
  f.check(true);
  zonegate::config::CachePolicy v1;
  v1.ttl_ms = 60'000;
  std::vector<Reply> pending;
  auto start = [&](const std::string& route, const zonegate::config::CachePolicy& p) {
    Asker a;
    a.reply = [](const Answer&) {};
    f.cache->serve(std::move(a), p, CacheKey{route, "k/" + route, "u"},
                   [&pending](const Reply& done) { pending.push_back(done); });
  };
  start("rpc:a", f.cfg.cache.rpc.at("a"));
  start("me_context", v1);
  ASSERT_EQ(pending.size(), 2u);
  f.check(true);  // the catalog is checked again while both fetches are in flight
  for (const Reply& done : pending) {
    Answer ans;
    ans.body = "{}";
    done(std::move(ans));
  }
  // The /rpc answer may predate the new index: not kept. The /v1 one does not depend on it.
  EXPECT_EQ(f.cache->stats().store.entries, 1);
  pending.clear();
  start("me_context", v1);
  EXPECT_TRUE(pending.empty());  // answered from the cache
}

TEST(CacheDependencies, AZonegateChangeDropsWhatReadsZonegate) {
  Fixture f;
  f.check(true);
  EXPECT_EQ(f.get("a"), "miss");
  EXPECT_EQ(f.get("b"), "miss");
  // A grant change naming one user: a shared answer of a function that reads zonegate may have
  // read that user's rows, so it goes; b does not read zonegate.
  f.cache->on_change(R"({"op":"INSERT","table":"user_zones","users":["u1"],"version":1})");
  EXPECT_EQ(f.get("a"), "miss");
  EXPECT_EQ(f.get("b"), "hit");
  // A reload of the catalog is no change to any table.
  f.cache->on_change(R"({"op":"RELOAD_SCHEMA","users":[],"version":2})");
  EXPECT_EQ(f.get("a"), "hit");
}

TEST(CacheDependencies, AnUnwatchedTableMeansNotCachedAndWatchingAgainStartsFresh) {
  Fixture f;
  f.check(true);
  EXPECT_EQ(f.get("b"), "miss");
  EXPECT_EQ(f.get("b"), "hit");
  // What is watched changed (unwatch_table, DDL): every function that reads a table is dropped,
  // then the check finds app.items unwatched: b bypasses the cache.
  f.cache->on_change(R"({"op":"WATCH","table":"app.items","users":[],"version":1})");
  EXPECT_EQ(f.get("b"), "bypass");  // until the check says what is watched now
  EXPECT_EQ(f.get("a"), "miss");    // a reads no table: unaffected
  f.check(false);
  EXPECT_EQ(f.get("b"), "bypass");
  EXPECT_EQ(f.get("b"), "bypass");
  // Watched again: an entry from before is never served (changes were not notified meanwhile).
  f.check(true);
  EXPECT_EQ(f.get("b"), "miss");
  EXPECT_EQ(f.get("b"), "hit");
  auto deps = f.cache->dependencies();
  EXPECT_TRUE(deps->refused.empty());
}
