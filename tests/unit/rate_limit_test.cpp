// GCRA rate limiting with injected clock values: the arithmetic against an exact token-bucket
// model, burst edges, backwards clocks, overflow corners, exactness under concurrent CAS, and the
// sharded key table's eviction rules.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "resilience/rate_limit.hpp"

using namespace zonegate::resilience;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kSec = 1000000000;

// The straightforward model: a token bucket kept in exact integer "ns of credit" (one token = T
// ns of credit), capacity burst * T, refilled by 1 per elapsed ns, each request costing T.
// Starts full. Times must not go backwards.
struct TokenBucket {
  __int128 T, cap, credit;
  int64_t last;
  TokenBucket(int64_t t, int64_t burst, int64_t start)
      : T(t), cap(static_cast<__int128>(t) * burst), credit(cap), last(start) {}
  RateDecision admit(int64_t now) {
    credit += now - last;
    if (credit > cap) credit = cap;
    last = now;
    RateDecision d;
    if (credit >= T) {
      credit -= T;
      d.allowed = true;
    } else {
      d.retry_after_ns = static_cast<int64_t>(T - credit);
    }
    d.remaining = static_cast<int64_t>(credit / T);
    d.reset_ns = static_cast<int64_t>(cap - credit);
    return d;
  }
};

// Repeated admits on one plain TAT value.
struct Bucket {
  Gcra g;
  int64_t tat = 0;
  explicit Bucket(GcraParams p) : g(p) {}
  RateDecision admit(int64_t now) {
    int64_t next = 0;
    RateDecision d = g.decide(tat, now, next);
    tat = next;
    return d;
  }
};

void expect_sane(const RateDecision& d) {
  EXPECT_GE(d.remaining, 0);
  EXPECT_GE(d.reset_ns, 0);
  if (d.allowed) {
    EXPECT_EQ(d.retry_after_ns, 0);
  } else {
    EXPECT_GT(d.retry_after_ns, 0);
    EXPECT_EQ(d.remaining, 0);
  }
}

}  // namespace

// ---- Gcra arithmetic ----

TEST(Gcra, IntervalAndToleranceFromParams) {
  EXPECT_EQ(Gcra({10, 1}).interval_ns(), 100000000);
  EXPECT_EQ(Gcra({10, 1}).tolerance_ns(), 0);
  EXPECT_EQ(Gcra({10, 5}).tolerance_ns(), 400000000);
  EXPECT_EQ(Gcra({3, 1}).interval_ns(), 333333333);  // rounded to the nearest ns
  EXPECT_EQ(Gcra({2e9, 1}).interval_ns(), 1);        // above 1e9/s clamps to 1 ns
  EXPECT_EQ(Gcra({1e18, 1}).interval_ns(), 1);
  EXPECT_EQ(Gcra({1e-9, 1}).interval_ns(), 1000000000000000000);
  EXPECT_EQ(Gcra({1e-10, 1}).interval_ns(), kMax);  // T beyond int64 clamps
  EXPECT_EQ(Gcra({0, 1}).interval_ns(), kMax);      // invalid rates refuse, never admit all
  EXPECT_EQ(Gcra({-5, 1}).interval_ns(), kMax);
  EXPECT_EQ(Gcra({std::nan(""), 1}).interval_ns(), kMax);
  EXPECT_EQ(Gcra({10, 0}).tolerance_ns(), 0);          // burst < 1 counts as 1
  EXPECT_EQ(Gcra({1e-9, kMax}).tolerance_ns(), kMax);  // saturates
}

TEST(Gcra, MatchesExactTokenBucketOnRandomSequences) {
  std::mt19937_64 rng(12345);
  int sequences = 0;
  int64_t checked = 0, refused = 0;
  for (int seq = 0; seq < 4000; ++seq) {
    // T an integer ns so the model is exact; mostly small, sometimes seconds-scale.
    const int64_t T = seq % 4 == 0 ? static_cast<int64_t>(rng() % 2000000000) + 1
                                   : static_cast<int64_t>(rng() % 100000) + 1;
    const int64_t burst = static_cast<int64_t>(rng() % 40) + 1;
    const double rate = 1e9 / static_cast<double>(T);
    Gcra g({rate, burst});
    ASSERT_EQ(g.interval_ns(), T) << "rate " << rate;
    ASSERT_EQ(g.tolerance_ns(), T * (burst - 1));
    auto now = static_cast<int64_t>(rng() % 1000000000000LL);
    TokenBucket model(T, burst, now);
    int64_t tat = 0;
    const int steps = 50 + static_cast<int>(rng() % 100);
    for (int i = 0; i < steps; ++i) {
      // Gaps from 0 (bursts) to a few intervals, and now and then a long idle.
      const uint64_t kind = rng() % 10;
      if (kind < 3) {
        // same instant
      } else if (kind < 9) {
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * T + 1));
      } else {
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(T * (burst + 2) + 1));
      }
      const RateDecision want = model.admit(now);
      int64_t next = 0;
      const RateDecision got = g.decide(tat, now, next);
      ASSERT_EQ(got.allowed, want.allowed) << "seq " << seq << " step " << i;
      ASSERT_EQ(got.remaining, want.remaining) << "seq " << seq << " step " << i;
      ASSERT_EQ(got.reset_ns, want.reset_ns) << "seq " << seq << " step " << i;
      ASSERT_EQ(got.retry_after_ns, want.retry_after_ns) << "seq " << seq << " step " << i;
      if (!got.allowed) {
        ASSERT_EQ(next, tat);  // a refusal stores nothing new
        ++refused;
      }
      tat = next;
      ++checked;
    }
    ++sequences;
  }
  EXPECT_EQ(sequences, 4000);
  // The sequences exercised both branches substantially.
  EXPECT_GT(refused, checked / 20);
  EXPECT_LT(refused, checked - checked / 20);
}

TEST(Gcra, BurstEdgeAdmitsExactlyBurstThenWaitsOneInterval) {
  for (int64_t b : {1, 2, 7, 100}) {
    for (int64_t T : {1, 3, 1000, 100000000}) {
      Bucket bk({1e9 / static_cast<double>(T), b});
      ASSERT_EQ(bk.g.interval_ns(), T);
      for (int64_t i = 0; i < b; ++i) {
        const RateDecision d = bk.admit(0);
        ASSERT_TRUE(d.allowed) << "b " << b << " T " << T << " i " << i;
        EXPECT_EQ(d.remaining, b - 1 - i);
        EXPECT_EQ(d.reset_ns, (i + 1) * T);
        EXPECT_EQ(d.retry_after_ns, 0);
      }
      const RateDecision no = bk.admit(0);
      EXPECT_FALSE(no.allowed);
      EXPECT_EQ(no.retry_after_ns, T);
      EXPECT_EQ(no.remaining, 0);
      EXPECT_EQ(no.reset_ns, b * T);
      // One ns early is still refused; exactly retry_after later one more is admitted.
      if (T > 1) {
        const RateDecision early = bk.admit(no.retry_after_ns - 1);
        EXPECT_FALSE(early.allowed);
        EXPECT_EQ(early.retry_after_ns, 1);
      }
      const RateDecision yes = bk.admit(no.retry_after_ns);
      EXPECT_TRUE(yes.allowed);
      EXPECT_EQ(yes.remaining, 0);
      EXPECT_FALSE(bk.admit(no.retry_after_ns).allowed);
    }
  }
}

TEST(Gcra, FullBucketCarriesNoInformation) {
  Gcra g({100, 4});
  const int64_t T = g.interval_ns();
  int64_t tat = 0, next = 0;
  g.decide(tat, 5 * T, next);  // tat = 6T
  EXPECT_FALSE(Gcra::full(next, 5 * T));
  EXPECT_FALSE(Gcra::full(next, 6 * T - 1));
  EXPECT_TRUE(Gcra::full(next, 6 * T));
  // A full tat decides exactly like no state at all.
  for (int64_t now : {6 * T, 6 * T + 1, 50 * T}) {
    int64_t a = 0, b = 0;
    const RateDecision x = g.decide(next, now, a);
    const RateDecision y = g.decide(0, now, b);
    EXPECT_EQ(a, b);
    EXPECT_EQ(x.allowed, y.allowed);
    EXPECT_EQ(x.remaining, y.remaining);
    EXPECT_EQ(x.reset_ns, y.reset_ns);
  }
}

TEST(Gcra, BackwardsClockNeverAdmitsMoreThanTheBudget) {
  std::mt19937_64 rng(777);
  for (int seq = 0; seq < 2000; ++seq) {
    const int64_t T = static_cast<int64_t>(rng() % 10000) + 1;
    const int64_t burst = static_cast<int64_t>(rng() % 20) + 1;
    Bucket bk({1e9 / static_cast<double>(T), burst});
    ASSERT_EQ(bk.g.interval_ns(), T);
    const int64_t start = 1000000000 + static_cast<int64_t>(rng() % 1000000);
    int64_t now = start, max_now = start;
    // The first request at start (a fresh bucket): the budget is counted from there.
    ASSERT_TRUE(bk.admit(start).allowed);
    int64_t admitted = 1;
    for (int i = 0; i < 300; ++i) {
      const uint64_t kind = rng() % 10;
      if (kind < 4) {
        now += static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * T + 1));
      } else if (kind < 7) {
        // Jump back, possibly far behind the start.
        now -= static_cast<int64_t>(rng() % static_cast<uint64_t>(T * (burst + 5) + 1));
      }  // else: same instant
      max_now = std::max(max_now, now);
      const RateDecision d = bk.admit(now);
      expect_sane(d);
      if (d.allowed) ++admitted;
      // Over the max time observed, the budget is burst plus one per elapsed interval.
      ASSERT_LE(admitted, burst + (max_now - start) / T) << "seq " << seq << " step " << i;
    }
  }
}

TEST(Gcra, BackwardsClockOnlyMakesKeysWaitLonger) {
  Bucket bk({10, 2});  // T = 100 ms
  ASSERT_TRUE(bk.admit(10 * kSec).allowed);
  ASSERT_TRUE(bk.admit(10 * kSec).allowed);
  // The clock steps back 5 s: still empty, and the wait is counted from the earlier TAT.
  const RateDecision d = bk.admit(5 * kSec);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 5 * kSec + 100000000);
}

TEST(Gcra, ExtremeParametersStayDefinedAndSane) {
  const int64_t half = kMax / 2;
  struct Case {
    double rate;
    int64_t burst;
  };
  const Case cases[] = {{1e-9, 1},    {1e-9, 1000000000000000000},
                        {1e-9, half}, {1e-9, kMax},
                        {1e18, 1},    {1e18, half},
                        {1e18, kMax}, {1e-30, half},
                        {1e30, 3},    {0, 5},
                        {10, half},   {10, kMax},
                        {1e9, half}};
  const int64_t nows[] = {0, 1, half - 1, half, half + 1, kMax - 1, kMax};
  for (const Case& c : cases) {
    const Gcra g({c.rate, c.burst});
    EXPECT_GE(g.interval_ns(), 1);
    EXPECT_GE(g.tolerance_ns(), 0);
    for (int64_t start : nows) {
      // The first request on a fresh key is always admitted.
      int64_t tat = 0, next = 0;
      const RateDecision first = g.decide(tat, start, next);
      // (Unless its TAT would not fit in an int64, at the very end of the clock's range.)
      if (start <= kMax - g.interval_ns()) {
        EXPECT_TRUE(first.allowed) << c.rate << " " << c.burst << " " << start;
      }
      expect_sane(first);
      EXPECT_GE(next, tat);
      tat = next;
      // Then hammer it, with the clock creeping forward, up to the end of the int64 range.
      bool refused = false;
      for (int i = 0; i < 200; ++i) {
        const int64_t now = start > kMax - i ? kMax : start + i;
        const RateDecision d = g.decide(tat, now, next);
        expect_sane(d);
        EXPECT_GE(next, tat);  // the TAT never moves backwards (no wraparound)
        if (!d.allowed) {
          refused = true;
          EXPECT_EQ(next, tat);
        }
        tat = next;
      }
      // A slow rate with a small burst must refuse quickly.
      if (c.burst < 100 && g.interval_ns() > 1000) {
        EXPECT_TRUE(refused);
      }
    }
    // A stored TAT at the very top and a clock near it, or a clock before the epoch.
    for (int64_t tat : {kMax, kMax - 1, half}) {
      for (int64_t now : {int64_t{0}, half, kMax - 1, kMax, int64_t{-5}}) {
        int64_t next = 0;
        const RateDecision d = g.decide(tat, now, next);
        expect_sane(d);
        EXPECT_GE(next, tat);
      }
    }
  }
}

TEST(Gcra, SaturatedTatRefusesWithPositiveRetryAfter) {
  const Gcra g({1e-9, 2});  // T = 1e18, tau = 1e18
  int64_t tat = 0, next = 0;
  const int64_t now = kMax / 2;
  EXPECT_TRUE(g.decide(tat, now, next).allowed);
  tat = next;
  EXPECT_TRUE(g.decide(tat, now, next).allowed);
  tat = next;
  const RateDecision d = g.decide(tat, now, next);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ns, 1000000000000000000);
}

TEST(Gcra, HugeToleranceNeverFloodsOnceTheTatIsOutOfRange) {
  // T = INT64_MAX and tau saturated: one admission, then the next TAT would not fit. Clamping it
  // would have made allow_at 0 and admitted everything after.
  for (double rate : {0.0, 1e-30}) {
    Bucket bk({rate, 5});
    EXPECT_TRUE(bk.admit(0).allowed);
    for (int i = 0; i < 100; ++i) {
      const RateDecision d = bk.admit(i);
      EXPECT_FALSE(d.allowed);
      EXPECT_GT(d.retry_after_ns, 0);
    }
  }
  // burst INT64_MAX at T = 1e18: as many as fit before the TAT leaves the int64 range, no more.
  Bucket bk({1e-9, kMax});
  int admitted = 0;
  for (int i = 0; i < 100; ++i)
    admitted += bk.admit(kMax / 2).allowed ? 1 : 0;
  EXPECT_EQ(admitted, (kMax - kMax / 2) / 1000000000000000000);
}

// ---- concurrency ----

// 4 threads × 25,000 calls of admit() at one instant; returns how many were admitted.
template <typename Admit>
int64_t admitted_by_four_threads(Admit admit) {
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int64_t mine = 0;
      for (int i = 0; i < 25000; ++i)
        if (admit()) ++mine;
      admitted += mine;
    });
  }
  for (auto& th : threads)
    th.join();
  return admitted.load();
}

TEST(Gcra, ConcurrentCasAdmitsExactlyTheBurst) {
  const Gcra g({10, 1000});
  std::atomic<int64_t> tat{0};
  const int64_t now = 42 * kSec;
  EXPECT_EQ(admitted_by_four_threads([&] { return g.admit(tat, now).allowed; }), 1000);
  EXPECT_EQ(tat.load(), now + 1000 * g.interval_ns());
}

TEST(KeyTable, ConcurrentAdmitsOnOneKeyAdmitExactlyTheBurst) {
  KeyTable table({10, 1000}, {});
  const int64_t now = 42 * kSec;
  EXPECT_EQ(admitted_by_four_threads([&] { return table.admit("tenant-1", now).allowed; }), 1000);
  EXPECT_EQ(table.stats().keys, 1);
}

// ---- KeyTable ----

TEST(KeyTable, DistinctKeysAreIndependent) {
  KeyTable table({1, 2}, {});
  EXPECT_TRUE(table.admit("a", kSec).allowed);
  EXPECT_TRUE(table.admit("a", kSec).allowed);
  EXPECT_FALSE(table.admit("a", kSec).allowed);
  const RateDecision b = table.admit("b", kSec);
  EXPECT_TRUE(b.allowed);
  EXPECT_EQ(b.remaining, 1);
  EXPECT_FALSE(table.admit("a", kSec).allowed);
  // Keys differing only in length or a trailing byte are separate too.
  EXPECT_TRUE(table.admit(std::string_view("a\0", 2), kSec).allowed);
  EXPECT_TRUE(table.admit("ab", kSec).allowed);
  EXPECT_EQ(table.stats().keys, 4);
  EXPECT_EQ(table.gcra().interval_ns(), kSec);
}

TEST(KeyTable, FullBucketsAreEvictedBeforeAnyLruKey) {
  // One shard of 10: "hot" is the least recently used key but still owes tokens; the 9 others
  // were used later but are full again. A new key must evict the 9, not "hot".
  KeyTable table({1, 5}, {10, 1});  // T = 1 s, burst 5
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(table.admit("hot", 0).allowed);  // tat = 5 s
  for (int i = 1; i <= 9; ++i)
    ASSERT_TRUE(table.admit("k" + std::to_string(i), i).allowed);  // full from ~1 s on
  ASSERT_EQ(table.stats().keys, 10);
  ASSERT_EQ(table.stats().evicted_full, 0);

  const int64_t now = 2 * kSec;
  EXPECT_TRUE(table.admit("new", now).allowed);
  KeyTableStats st = table.stats();
  EXPECT_EQ(st.evicted_full, 9);
  EXPECT_EQ(st.evicted_lru, 0);
  EXPECT_EQ(st.keys, 2);
  // "hot" kept its state: 5 tokens spent at 0, 2 refilled by 2 s, so 1 left after this one (a
  // fresh key would have 4).
  const RateDecision hot = table.admit("hot", now);
  EXPECT_TRUE(hot.allowed);
  EXPECT_EQ(hot.remaining, 1);
}

TEST(KeyTable, PastMaxKeysTheLeastRecentlyUsedGo) {
  // Nothing ever refills (T = 1e18 ns), so only LRU can make room.
  KeyTable table({1e-9, 1}, {10, 1});
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(table.admit("k" + std::to_string(i), i + 1).allowed);
  EXPECT_FALSE(table.admit("k0", 11).allowed);  // k0 is now the most recently used
  EXPECT_TRUE(table.admit("k10", 12).allowed);  // evicts down to 9: k1 (the oldest) goes
  KeyTableStats st = table.stats();
  EXPECT_EQ(st.evicted_lru, 1);
  EXPECT_EQ(st.evicted_full, 0);
  EXPECT_EQ(st.keys, 10);
  EXPECT_FALSE(table.admit("k0", 13).allowed);  // kept: still empty
  EXPECT_FALSE(table.admit("k2", 14).allowed);  // kept
  EXPECT_TRUE(table.admit("k1", 15).allowed);   // forgotten: a fresh bucket again
  EXPECT_EQ(table.stats().evicted_lru, 2);

  for (int i = 0; i < 1000; ++i) {
    table.admit("more" + std::to_string(i), 100 + i);
    ASSERT_LE(table.stats().keys, 10);
  }
  EXPECT_GT(table.stats().evicted_lru, 900);
}

TEST(KeyTable, ManyShardsNeverHoldMoreThanMaxKeys) {
  // 100 keys over 16 shards does not divide evenly; more shards than keys is clamped.
  for (KeyTableConfig c : {KeyTableConfig{100, 16}, KeyTableConfig{5, 64}, KeyTableConfig{1, 3},
                           KeyTableConfig{0, 0}}) {
    KeyTable table({1e-9, 1}, c);
    const int64_t cap = std::max<int64_t>(c.max_keys, 1);
    for (int i = 0; i < 3000; ++i) {
      EXPECT_TRUE(table.admit("client-" + std::to_string(i), i).allowed);
      ASSERT_LE(table.stats().keys, cap) << c.max_keys << "/" << c.shards;
    }
    const KeyTableStats st = table.stats();
    EXPECT_EQ(st.keys + st.evicted_lru, 3000);
    EXPECT_GT(st.keys, 0);
  }
}

TEST(KeyTable, SweepDropsOnlyFullKeys) {
  KeyTable table({1, 3}, {});  // T = 1 s, burst 3
  table.admit("idle1", 0);     // full at 1 s
  table.admit("idle2", 0);     // full at 1 s
  for (int i = 0; i < 3; ++i)
    table.admit("busy", 0);  // full at 3 s
  table.sweep(kSec - 1);
  EXPECT_EQ(table.stats().keys, 3);
  EXPECT_EQ(table.stats().evicted_full, 0);
  table.sweep(2 * kSec);
  KeyTableStats st = table.stats();
  EXPECT_EQ(st.keys, 1);
  EXPECT_EQ(st.evicted_full, 2);
  // "busy" kept its debt: at 2 s it has 2 tokens, so 1 remains after this request.
  EXPECT_EQ(table.admit("busy", 2 * kSec).remaining, 1);
  table.sweep(10 * kSec);
  EXPECT_EQ(table.stats().keys, 0);
  EXPECT_EQ(table.stats().evicted_full, 3);
}

TEST(KeyTable, EvictingFullKeysLosesNoAccuracy) {
  // The same random traffic through a table that never evicts and one swept after every
  // request: identical decisions, because only full (information-free) keys are dropped.
  std::mt19937_64 rng(99);
  KeyTable keep({1000, 4}, {1000000, 4});  // T = 1 ms
  KeyTable swept({1000, 4}, {1000000, 4});
  int64_t now = kSec;
  int64_t drops_seen = 0;
  for (int i = 0; i < 20000; ++i) {
    now += static_cast<int64_t>(rng() % 600000);  // up to 0.6 ms
    const std::string key = "c" + std::to_string(rng() % 30);
    const RateDecision a = keep.admit(key, now);
    const RateDecision b = swept.admit(key, now);
    ASSERT_EQ(a.allowed, b.allowed) << i;
    ASSERT_EQ(a.remaining, b.remaining) << i;
    ASSERT_EQ(a.reset_ns, b.reset_ns) << i;
    ASSERT_EQ(a.retry_after_ns, b.retry_after_ns) << i;
    swept.sweep(now);
    drops_seen = swept.stats().evicted_full;
  }
  EXPECT_GT(drops_seen, 1000);  // the sweep really did drop keys along the way
  EXPECT_EQ(keep.stats().evicted_full, 0);
  EXPECT_EQ(keep.stats().keys, 30);
}

TEST(KeyTable, KeyEvictedWhileFullComesBackAsFresh) {
  KeyTable table({1, 3}, {2, 1});  // T = 1 s, burst 3; room for 2 keys
  for (int i = 0; i < 3; ++i)
    table.admit("x", 0);
  table.admit("y", 0);
  // At 5 s both are full; a third key evicts them as full, not by LRU.
  table.admit("z", 5 * kSec);
  EXPECT_EQ(table.stats().evicted_full, 2);
  EXPECT_EQ(table.stats().evicted_lru, 0);
  const RateDecision x = table.admit("x", 5 * kSec);
  EXPECT_TRUE(x.allowed);
  EXPECT_EQ(x.remaining, 2);  // exactly what the kept state (tat 3 s <= 5 s) would have given
  EXPECT_EQ(x.reset_ns, kSec);
}

TEST(KeyTable, BytesPerKeyCoversTheSlotAndNode) {
  EXPECT_GE(KeyTable::bytes_per_key(), 2 * sizeof(int64_t) + sizeof(uint64_t) + sizeof(void*));
  EXPECT_LE(KeyTable::bytes_per_key(), 256u);
}
