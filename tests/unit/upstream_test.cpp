// Replicas as pure parts: the read-your-writes bookkeeping and the choice of an upstream.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "upstream/read_your_writes.hpp"
#include "upstream/replica_choice.hpp"

namespace zonegate::upstream {
namespace {

TEST(Lsn, ParsesAndPrintsPgLsn) {
  Lsn v = 0;
  ASSERT_TRUE(parse_lsn("16/B374D848", v));
  EXPECT_EQ(v, 0x16B374D848ULL);
  EXPECT_EQ(lsn_text(v), "16/B374D848");
  ASSERT_TRUE(parse_lsn("0/0", v));
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(parse_lsn("FFFFFFFF/FFFFFFFF", v));
  EXPECT_EQ(v, UINT64_MAX);
  for (const char* bad : {"", "/", "1/", "/1", "1/2/3", "G/1", "123456789/0", "1 /2", "0x1/2"})
    EXPECT_FALSE(parse_lsn(bad, v)) << bad;
}

TEST(ReadYourWrites, AWriteSendsItsSubjectToThePrimaryThenToCaughtUpReplicas) {
  int64_t now = 1000;
  ReadYourWrites ryw(1000, 30'000, [&now] { return now; });
  EXPECT_EQ(ryw.required("alice"), 0u);  // never wrote: any replica
  ryw.writing("alice");
  EXPECT_EQ(ryw.required("alice"), kPrimaryOnly);  // its position is not known yet
  EXPECT_EQ(ryw.required("bob"), 0u);              // others are not affected
  ryw.written("alice", 500);
  EXPECT_EQ(ryw.required("alice"), 500u);
  // Two writes in flight: primary until both are known, then the higher position.
  ryw.writing("alice");
  ryw.writing("alice");
  ryw.written("alice", 700);
  EXPECT_EQ(ryw.required("alice"), kPrimaryOnly);
  ryw.written("alice", 650);
  EXPECT_EQ(ryw.required("alice"), 700u);
  // The entry expires: any replica again.
  now += 30'001;
  EXPECT_EQ(ryw.required("alice"), 0u);
  EXPECT_EQ(ryw.size(), 0u);
  EXPECT_EQ(ryw.required(""), 0u);  // anonymous requests have no writes of their own
}

TEST(ReadYourWrites, ForgettingUnderPressureNeverWeakensTheGuarantee) {
  int64_t now = 0;
  ReadYourWrites ryw(size_t{16} * 8, 1'000'000, [&now] { return now; });  // 8 per shard
  for (int i = 0; i < 2000; ++i) {
    ++now;
    ryw.written("user" + std::to_string(i), 100 + static_cast<Lsn>(i));
  }
  EXPECT_LE(ryw.size(), 16u * 8u);
  // Subjects that were dropped now need the floor: at least what any dropped one needed.
  EXPECT_GT(ryw.floor(), 100u);
  for (int i = 0; i < 2000; ++i) {
    const Lsn need = ryw.required("user" + std::to_string(i));
    EXPECT_GE(need, std::min<Lsn>(ryw.floor(), 100 + static_cast<Lsn>(i))) << i;
  }
  // The last subjects are still there with their own position.
  EXPECT_EQ(ryw.required("user1999"), std::max<Lsn>(ryw.floor(), 2099));
}

Candidate replica(Lsn replay, int64_t outstanding, int64_t lag_bytes = 0, int64_t lag_ms = 0) {
  Candidate c;
  c.status.reachable = true;
  c.status.replay_lsn = replay;
  c.status.lag_bytes = lag_bytes;
  c.status.lag_ms = lag_ms;
  c.status.checked_at_ms = 10'000;
  c.outstanding = outstanding;
  return c;
}

TEST(ReplicaChoice, LeastOutstandingAmongEligible) {
  LagLimits lim;
  std::vector<Candidate> r = {replica(100, 5), replica(100, 2), replica(100, 3)};
  EXPECT_EQ(choose_replica(r, 0, lim, 10'000), 1);
  r[1].breaker_closed = false;
  EXPECT_EQ(choose_replica(r, 0, lim, 10'000), 2);
  r[2].pool_ready = false;
  EXPECT_EQ(choose_replica(r, 0, lim, 10'000), 0);
  r[0].status.reachable = false;
  EXPECT_EQ(choose_replica(r, 0, lim, 10'000), -1);  // nobody: the primary
  EXPECT_EQ(choose_replica({}, 0, lim, 10'000), -1);
}

TEST(ReplicaChoice, LagAndStalenessAndWrites) {
  LagLimits lim;
  lim.max_bytes = 1000;
  lim.max_ms = 2000;
  lim.stale_ms = 3000;
  std::vector<Candidate> r = {replica(100, 0, 1001, 0), replica(100, 0, 0, 2001),
                              replica(100, 0, -1, 0), replica(90, 0)};
  EXPECT_EQ(check_replica(r[0], 0, lim, 10'000), Ineligible::kLagging);
  EXPECT_EQ(check_replica(r[1], 0, lim, 10'000), Ineligible::kLagging);
  EXPECT_EQ(check_replica(r[2], 0, lim, 10'000), Ineligible::kLagging);  // unknown lag
  EXPECT_EQ(choose_replica(r, 0, lim, 10'000), 3);
  EXPECT_EQ(check_replica(r[3], 95, lim, 10'000), Ineligible::kBehindWrites);
  EXPECT_EQ(choose_replica(r, 95, lim, 10'000), -1);
  EXPECT_EQ(choose_replica(r, 90, lim, 10'000), 3);
  EXPECT_EQ(choose_replica(r, kPrimaryOnly, lim, 10'000), -1);
  EXPECT_EQ(check_replica(r[3], 0, lim, 13'001), Ineligible::kStale);
}

}  // namespace
}  // namespace zonegate::upstream
