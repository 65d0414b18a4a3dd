// The cache store with an injected clock: byte bound, SIEVE eviction order, replacement, tag and
// route invalidation, ETags.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cache/store.hpp"

using namespace zonegate::cache;

namespace {

std::shared_ptr<const Entry> entry(const std::string& body, const std::string& tag = "",
                                   const std::string& route = "r") {
  auto e = std::make_shared<Entry>();
  e->body = body;
  e->tag = tag;
  e->route = route;
  e->etag = make_etag(body);
  return e;
}

}  // namespace

TEST(CacheStore, GetPutReplace) {
  Store s(1 << 20, 4, [] { return int64_t{0}; });
  EXPECT_EQ(s.get("a"), nullptr);
  s.put("a", entry("one"));
  ASSERT_NE(s.get("a"), nullptr);
  EXPECT_EQ(s.get("a")->body, "one");
  s.put("a", entry("two"));
  EXPECT_EQ(s.get("a")->body, "two");
  EXPECT_EQ(s.stats().entries, 1);
}

TEST(CacheStore, ByteBoundAndSieveKeepsVisitedEntries) {
  size_t one = entry(std::string(100, 'x'))->bytes(2);
  // One shard with room for exactly four entries of this size.
  Store s(one * 4, 1, [] { return int64_t{0}; });
  for (const char* k : {"k1", "k2", "k3", "k4"})
    s.put(k, entry(std::string(100, 'x')));
  EXPECT_EQ(s.stats().entries, 4);
  s.get("k1");  // visited: survives the next eviction
  s.get("k3");
  s.put("k5", entry(std::string(100, 'x')));
  EXPECT_EQ(s.stats().entries, 4);
  EXPECT_NE(s.get("k1"), nullptr);
  EXPECT_EQ(s.get("k2"), nullptr);  // the oldest unvisited one went first
  EXPECT_NE(s.get("k3"), nullptr);
  EXPECT_LE(s.stats().bytes, static_cast<int64_t>(one * 4));
  EXPECT_EQ(s.stats().evictions, 1);
  // Everything visited: one sweep clears the bits and evicts the oldest.
  for (const char* k : {"k1", "k3", "k4", "k5"})
    s.get(k);
  s.put("k6", entry(std::string(100, 'x')));
  EXPECT_EQ(s.stats().entries, 4);
  EXPECT_EQ(s.stats().evictions, 2);
}

TEST(CacheStore, OversizedEntriesAreNotStored) {
  Store s(1000, 1, [] { return int64_t{0}; });
  s.put("big", entry(std::string(2000, 'x')));
  EXPECT_EQ(s.get("big"), nullptr);
  EXPECT_EQ(s.stats().entries, 0);
}

TEST(CacheStore, FloodStaysWithinBudget) {
  Store s(size_t{64} * 1024, 8, [] { return int64_t{0}; });
  for (int i = 0; i < 20000; ++i) {
    s.put("key-" + std::to_string(i), entry(std::string(static_cast<size_t>(i % 500), 'y')));
    ASSERT_LE(s.stats().bytes, 64 * 1024);
  }
  EXPECT_GT(s.stats().evictions, 0);
}

TEST(CacheStore, InvalidateByTagRouteAndAll) {
  Store s(1 << 20, 4, [] { return int64_t{0}; });
  s.put("ctx|alice", entry("a", "alice", "me_context"));
  s.put("zones|alice", entry("az", "alice", "me_zones"));
  s.put("ctx|bob", entry("b", "bob", "me_context"));
  s.put("at|1,2", entry("z", "", "zones_at"));
  EXPECT_EQ(s.invalidate_tag("alice"), 2u);
  EXPECT_EQ(s.get("ctx|alice"), nullptr);
  EXPECT_NE(s.get("ctx|bob"), nullptr);
  EXPECT_EQ(s.invalidate_tag("nobody"), 0u);
  EXPECT_EQ(s.invalidate_route("zones_at"), 1u);
  EXPECT_EQ(s.get("at|1,2"), nullptr);
  s.put("ctx|alice", entry("a2", "alice"));
  EXPECT_EQ(s.invalidate_all(), 2u);
  EXPECT_EQ(s.stats().entries, 0);
  EXPECT_EQ(s.stats().bytes, 0);
  EXPECT_EQ(s.stats().invalidated, 5);
  // A replaced entry leaves no stale tag index behind.
  s.put("k", entry("1", "t"));
  s.put("k", entry("2", "t"));
  EXPECT_EQ(s.invalidate_tag("t"), 1u);
}

TEST(CacheStore, Etags) {
  EXPECT_EQ(make_etag("abc"), make_etag("abc"));
  EXPECT_NE(make_etag("abc"), make_etag("abd"));
  EXPECT_EQ(make_etag("").size(), 21u);  // "zg-" + 16 hex digits, quoted
  EXPECT_EQ(make_etag("x").front(), '"');
}

TEST(CacheStore, PutIfChecksUnderTheLock) {
  Store s(1 << 20, 4, [] { return int64_t{0}; });
  EXPECT_FALSE(s.put_if("a", entry("one"), [] { return false; }));
  EXPECT_EQ(s.get("a"), nullptr);
  EXPECT_TRUE(s.put_if("a", entry("one"), [] { return true; }));
  EXPECT_EQ(s.get("a")->body, "one");
}

// The response cache's fill/invalidate race: a filler stores what it fetched only if no
// invalidation happened since it started (epoch), an invalidator bumps the epoch and then drops
// the tag. Once an invalidation has returned, no entry from before it may be in the store.
TEST(CacheStore, NoFillFromBeforeAnInvalidationSurvivesIt) {
  Store s(1 << 20, 4, [] { return int64_t{0}; });
  std::atomic<int64_t> epoch{0};
  std::atomic<bool> stop{false};
  std::thread filler([&] {
    while (!stop.load()) {
      int64_t started = epoch.load();
      s.put_if("k", entry(std::to_string(started), "u"),
               [&epoch, started] { return epoch.load() == started; });
    }
  });
  int stale = 0;
  for (int i = 0; i < 100000; ++i) {
    int64_t now = ++epoch;
    s.invalidate_tag("u");
    std::this_thread::yield();  // give a racing fill time to land
    auto e = s.get("k");
    if (e && std::stoll(e->body) < now) ++stale;
  }
  stop = true;
  filler.join();
  EXPECT_EQ(stale, 0);
}

// The RFC 5861 decisions, driven by the store's injected clock: fresh for the TTL, then served
// stale while a refresh runs, then a miss; stale-if-error covers failures for its own window,
// counted from the end of freshness as well. Each boundary is exclusive.
TEST(CacheStore, LifetimesFollowTheInjectedClock) {
  int64_t now = 1'000'000;
  Store s(1 << 20, 4, [&] { return now; });
  auto e = std::make_shared<Entry>();
  e->body = "v";
  set_lifetimes(*e, s.now_ms(), /*ttl*/ 2'000, /*swr*/ 5'000, /*sie*/ 60'000);
  s.put("k", e);
  auto at = [&](int64_t t) {
    now = t;
    return freshness(*s.get("k"), s.now_ms());
  };
  EXPECT_EQ(at(1'000'000), Freshness::kFresh);
  EXPECT_EQ(at(1'001'999), Freshness::kFresh);
  EXPECT_EQ(at(1'002'000), Freshness::kStaleWhileRevalidate);
  EXPECT_EQ(at(1'006'999), Freshness::kStaleWhileRevalidate);
  EXPECT_EQ(at(1'007'000), Freshness::kExpired);
  now = 1'061'999;
  EXPECT_TRUE(serves_if_error(*s.get("k"), s.now_ms()));
  now = 1'062'000;
  EXPECT_FALSE(serves_if_error(*s.get("k"), s.now_ms()));
  EXPECT_EQ(age_seconds(*s.get("k"), s.now_ms()), 62);
  now = 999'000;  // a clock that went back: the age never goes negative
  EXPECT_EQ(age_seconds(*s.get("k"), s.now_ms()), 0);
}

// Without stale windows an entry goes from fresh straight to expired, and a failure past the
// TTL is not answered from it.
TEST(CacheStore, NoStaleWindowsMeansExpiredAtTheTtl) {
  Entry e;
  set_lifetimes(e, 0, 500, 0, 0);
  EXPECT_EQ(freshness(e, 499), Freshness::kFresh);
  EXPECT_EQ(freshness(e, 500), Freshness::kExpired);
  EXPECT_TRUE(serves_if_error(e, 499));
  EXPECT_FALSE(serves_if_error(e, 500));
  EXPECT_EQ(e.stored_ms, 0);
}
