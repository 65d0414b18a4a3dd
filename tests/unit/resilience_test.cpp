// The resilience stages with an injected clock: failure classification, retry decisions and
// budget, deadlines, the circuit breaker's state machine and the adaptive concurrency limit.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "resilience/circuit_breaker.hpp"
#include "resilience/classify.hpp"
#include "resilience/concurrency_limit.hpp"
#include "resilience/retry.hpp"

using namespace zonegate::resilience;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

AttemptOutcome failed(std::string_view sqlstate, bool sent = true, bool lost = false) {
  AttemptOutcome o;
  o.sqlstate = sqlstate;
  o.sent = sent;
  o.connection_lost = lost;
  return o;
}

AttemptOutcome lost_connection(bool sent) {
  return failed("", sent, true);
}

// A breaker on a hand-driven clock that records every transition its listener sees.
struct BreakerFixture {
  int64_t now = 1000;
  std::vector<std::tuple<BreakerState, BreakerState, std::string>> seen;
  CircuitBreaker breaker;

  explicit BreakerFixture(BreakerConfig cfg = {}) : breaker("db", cfg, [this] { return now; }) {
    breaker.set_listener([this](BreakerState from, BreakerState to, const std::string& why) {
      seen.emplace_back(from, to, why);
    });
  }
  void fail(int n, const std::string& error = "boom") {
    for (int i = 0; i < n; ++i)
      breaker.record_failure(error);
  }
  void succeed(int n) {
    for (int i = 0; i < n; ++i)
      breaker.record_success();
  }
  std::string last_reason() const { return seen.empty() ? "" : std::get<2>(seen.back()); }
};

// Keeps the limiter saturated: admits until it refuses, so in_flight == limit when possible.
void fill(ConcurrencyLimit& l) {
  while (l.try_acquire()) {
  }
}

// One finished request at full usage: release one with rtt, then refill.
void sample_full(ConcurrencyLimit& l, int64_t rtt_us, int n) {
  for (int i = 0; i < n; ++i) {
    fill(l);
    l.release(rtt_us, false);
  }
}

}  // namespace

// ---- classification ----

TEST(ResilienceClassify, TransientAndInfrastructureTable) {
  struct Row {
    const char* state;
    bool transient;
    bool infra;
  };
  const Row rows[] = {
      {"08000", true, true},   {"08001", true, true},   {"08003", true, true},
      {"08004", true, true},   {"08006", true, true},   {"08P01", true, true},
      {"57P01", true, true},   {"57P02", true, true},   {"57P03", true, true},
      {"53300", true, true},   {"40001", true, false},  {"40P01", true, false},
      {"53000", false, true},  {"53100", false, true},  {"53200", false, true},
      {"53400", false, true},  {"58000", false, true},  {"58030", false, true},
      {"XX001", false, true},  {"XX002", false, true},  {"XX000", false, false},
      {"57014", false, false}, {"57000", false, false}, {"22P02", false, false},
      {"P0001", false, false}, {"42501", false, false}, {"23505", false, false},
      {"42883", false, false}, {"42P01", false, false}, {"", false, false},
      {"08", false, false},    {"57P04", false, false},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(is_transient_sqlstate(r.state), r.transient) << r.state;
    EXPECT_EQ(is_infrastructure_sqlstate(r.state), r.infra) << r.state;
  }
}

TEST(ResilienceClassify, OutcomesCombineOkConnectionAndSqlstate) {
  EXPECT_TRUE(is_transient(lost_connection(true)));
  EXPECT_TRUE(is_infrastructure(lost_connection(false)));
  EXPECT_TRUE(is_transient(failed("40001")));
  EXPECT_FALSE(is_infrastructure(failed("40001")));
  EXPECT_FALSE(is_transient(failed("53100")));
  EXPECT_TRUE(is_infrastructure(failed("53100")));
  EXPECT_FALSE(is_transient(failed("23505")));
  EXPECT_FALSE(is_infrastructure(failed("23505")));
  AttemptOutcome ok;
  ok.ok = true;
  ok.sent = true;
  ok.sqlstate = "08006";  // a result wins over any leftover error code
  EXPECT_FALSE(is_transient(ok));
  EXPECT_FALSE(is_infrastructure(ok));
}

TEST(ResilienceClassify, MayRetryRespectsIdempotency) {
  EXPECT_TRUE(may_retry(lost_connection(/*sent*/ true), /*idempotent*/ true));
  EXPECT_FALSE(may_retry(lost_connection(true), false));
  EXPECT_FALSE(may_retry(failed("40001", true), false));
  // Never left the proxy (no connection): safe to try again even for a volatile call.
  EXPECT_TRUE(may_retry(lost_connection(false), false));
  EXPECT_TRUE(may_retry(failed("57P03", false), false));
  EXPECT_FALSE(may_retry(failed("P0001", true), true));
  EXPECT_FALSE(may_retry(failed("22P02", false), false));
}

TEST(ResilienceClassify, RetryReasonsAndLabels) {
  EXPECT_EQ(retry_reason(lost_connection(true)), RetryReason::kConnection);
  EXPECT_EQ(retry_reason(failed("08P01")), RetryReason::kConnection);
  EXPECT_EQ(retry_reason(failed("57P02")), RetryReason::kShutdown);
  EXPECT_EQ(retry_reason(failed("53300")), RetryReason::kTooManyConnections);
  EXPECT_EQ(retry_reason(failed("40001")), RetryReason::kSerialization);
  EXPECT_EQ(retry_reason(failed("40P01")), RetryReason::kDeadlock);
  EXPECT_STREQ(retry_reason_label(RetryReason::kConnection), "connection");
  EXPECT_STREQ(retry_reason_label(RetryReason::kShutdown), "shutdown");
  EXPECT_STREQ(retry_reason_label(RetryReason::kTooManyConnections), "too_many_connections");
  EXPECT_STREQ(retry_reason_label(RetryReason::kSerialization), "serialization");
  EXPECT_STREQ(retry_reason_label(RetryReason::kDeadlock), "deadlock");
}

// ---- retry budget, deadlines, decisions ----

TEST(ResilienceRetry, BudgetMinimumRatioAndRelease) {
  RetryBudget b;  // 20%, at least 3
  EXPECT_EQ(b.allowed(), 3);
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_FALSE(b.try_start_retry());
  EXPECT_EQ(b.exhausted(), 1);
  EXPECT_EQ(b.retries_in_flight(), 3);
  for (int i = 0; i < 100; ++i)
    b.request_started();
  EXPECT_EQ(b.active(), 100);
  EXPECT_EQ(b.allowed(), 20);
  for (int i = 0; i < 17; ++i)
    EXPECT_TRUE(b.try_start_retry());
  EXPECT_FALSE(b.try_start_retry());
  EXPECT_EQ(b.exhausted(), 2);
  b.retry_finished();
  EXPECT_EQ(b.retries_in_flight(), 19);
  EXPECT_TRUE(b.try_start_retry());
  for (int i = 0; i < 50; ++i)
    b.request_finished();
  EXPECT_EQ(b.allowed(), 10);
  // Rounding must not lose a slot: 0.29 * 100 is 28.999... in binary.
  RetryBudget r(0.29, 0);
  for (int i = 0; i < 100; ++i)
    r.request_started();
  EXPECT_EQ(r.allowed(), 29);
  // Unbalanced finishes never go negative.
  RetryBudget z;
  z.request_finished();
  z.retry_finished();
  EXPECT_EQ(z.active(), 0);
  EXPECT_EQ(z.retries_in_flight(), 0);
}

TEST(ResilienceRetry, DeadlineArithmetic) {
  Deadline d = Deadline::after(100, 50);
  EXPECT_EQ(d.at_ms, 150);
  EXPECT_EQ(d.remaining_ms(120), 30);
  EXPECT_EQ(d.remaining_ms(150), 0);
  EXPECT_EQ(d.remaining_ms(400), 0);
  EXPECT_FALSE(d.expired(149));
  EXPECT_TRUE(d.expired(150));
  EXPECT_EQ(Deadline::after(kMax - 10, 100).at_ms, kMax);
  EXPECT_EQ(Deadline::after(100, -5).at_ms, 100);
  EXPECT_TRUE(Deadline::after(100, -5).expired(100));
  Deadline none;
  EXPECT_EQ(none.at_ms, kMax);
  EXPECT_FALSE(none.expired(kMax - 1));
  EXPECT_EQ(none.remaining_ms(0), kMax);
  EXPECT_EQ(none.remaining_ms(-5), kMax);  // saturates instead of wrapping
  EXPECT_EQ(default_deadline_ms(5000, 30000), 35000);
  EXPECT_EQ(default_deadline_ms(0, 0), 1);
  EXPECT_EQ(default_deadline_ms(-5, 0), 1);
  EXPECT_EQ(default_deadline_ms(kMax, 10), kMax);
}

TEST(ResilienceRetry, DecideRefusalsInOrder) {
  RetryConfig cfg;
  RetryBudget budget;
  Deadline far = Deadline::after(0, 10'000);
  RetryDecision d = decide_retry(cfg, failed("23505"), true, 0, far, 0, 7, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_STREQ(d.why_not, "not_retryable");
  AttemptOutcome ok;
  ok.ok = true;
  EXPECT_STREQ(decide_retry(cfg, ok, true, 0, far, 0, 7, budget).why_not, "not_retryable");
  d = decide_retry(cfg, lost_connection(true), false, 0, far, 0, 7, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_STREQ(d.why_not, "not_idempotent");
  d = decide_retry(cfg, failed("40001"), true, 2, far, 0, 7, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_STREQ(d.why_not, "max_retries");
  // None of the refusals above touched the budget.
  EXPECT_EQ(budget.retries_in_flight(), 0);
  EXPECT_EQ(budget.exhausted(), 0);

  d = decide_retry(cfg, lost_connection(false), false, 0, far, 0, 7, budget);
  EXPECT_TRUE(d.retry);
  EXPECT_STREQ(d.why_not, "");
  EXPECT_EQ(d.delay_ms, 7);  // 7 % (25 + 1)
  EXPECT_EQ(budget.retries_in_flight(), 1);
}

TEST(ResilienceRetry, DelayStaysWithinTheBackoffCeiling) {
  RetryConfig cfg;
  cfg.max_retries = 10;
  RetryBudget budget;
  const int64_t ceiling[] = {25, 50, 100, 200, 250, 250};
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int n = 0; n < 6; ++n) {
    for (int i = 0; i < 200; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      RetryDecision d = decide_retry(cfg, failed("40P01"), true, n, Deadline{}, 0, x, budget);
      ASSERT_TRUE(d.retry);
      EXPECT_GE(d.delay_ms, 0);
      EXPECT_LE(d.delay_ms, ceiling[n]);
      budget.retry_finished();
    }
    // random == ceiling picks the ceiling itself: the range is inclusive.
    RetryDecision top = decide_retry(cfg, failed("40P01"), true, n, Deadline{}, 0,
                                     static_cast<uint64_t>(ceiling[n]), budget);
    EXPECT_EQ(top.delay_ms, ceiling[n]);
    budget.retry_finished();
  }
}

TEST(ResilienceRetry, DeadlineTooCloseAndBudgetRefusals) {
  RetryConfig cfg;
  RetryBudget budget;
  // random 25 → delay 25 on the first retry.
  RetryDecision d = decide_retry(cfg, failed("57P01"), true, 0, Deadline{1030}, 1000, 25, budget);
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay_ms, 25);
  budget.retry_finished();
  d = decide_retry(cfg, failed("57P01"), true, 0, Deadline{1025}, 1000, 25, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_STREQ(d.why_not, "deadline");
  EXPECT_EQ(budget.retries_in_flight(), 0);
  EXPECT_EQ(budget.exhausted(), 0);

  RetryBudget none(0.0, 0);
  d = decide_retry(cfg, failed("53300"), true, 0, Deadline{}, 0, 3, none);
  EXPECT_FALSE(d.retry);
  EXPECT_STREQ(d.why_not, "budget");
  EXPECT_EQ(none.exhausted(), 1);
  // A deadline refusal does not reach the budget, so it is not counted as exhausted.
  decide_retry(cfg, failed("53300"), true, 0, Deadline{5}, 5, 3, none);
  EXPECT_EQ(none.exhausted(), 1);
}

// ---- circuit breaker ----

TEST(ResilienceBreaker, StateNames) {
  EXPECT_STREQ(breaker_state_name(BreakerState::kClosed), "closed");
  EXPECT_STREQ(breaker_state_name(BreakerState::kOpen), "open");
  EXPECT_STREQ(breaker_state_name(BreakerState::kHalfOpen), "half_open");
}

TEST(ResilienceBreaker, OpensAfterConsecutiveFailures) {
  BreakerFixture f;
  EXPECT_EQ(f.breaker.name(), "db");
  f.fail(4);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(f.breaker.allow());
  EXPECT_EQ(f.breaker.stats().consecutive_failures, 4);
  f.fail(1, "connection refused");
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.last_reason(), "5 consecutive failures");
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.opened, 1);
  EXPECT_EQ(st.last_error, "connection refused");
  EXPECT_EQ(st.open_wait_ms, 1000);
}

TEST(ResilienceBreaker, SuccessResetsTheConsecutiveCount) {
  BreakerConfig cfg;
  cfg.window = 100;
  cfg.minimum_calls = 100;  // keep the rate rule out of this test
  BreakerFixture f(cfg);
  f.fail(4);
  f.succeed(1);
  f.fail(4);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.consecutive_failures, 4);
  EXPECT_EQ(st.window_calls, 9);
  EXPECT_EQ(st.window_failures, 8);
  f.fail(1);
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
}

TEST(ResilienceBreaker, FailureRateOnlyAfterMinimumCalls) {
  BreakerConfig cfg;
  cfg.consecutive_failures = 1000;  // only the rate rule
  BreakerFixture f(cfg);
  for (int i = 0; i < 9; ++i)  // F S F S F S F S F: 5 of 9, but fewer than 10 calls
    i % 2 == 0 ? f.fail(1) : f.succeed(1);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  f.fail(1);  // 6 of 10
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.last_reason(), "failure rate 60% over 10 calls");
}

TEST(ResilienceBreaker, WindowSlidesAndALowRateStaysClosed) {
  BreakerConfig cfg;
  cfg.consecutive_failures = 1000;
  BreakerFixture f(cfg);
  for (int i = 0; i < 60; ++i)  // S S F: a third of the calls fail
    i % 3 == 2 ? f.fail(1) : f.succeed(1);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.window_calls, 20);
  EXPECT_EQ(st.window_failures, 7);  // calls 40..59 hold failures at 41, 44, ..., 59
  f.fail(3);                         // the window now has 9 failures of 20: 45%
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  f.fail(1);  // 10 of 20 (call 43 left, a success): 50%
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.last_reason(), "failure rate 50% over 20 calls");
}

TEST(ResilienceBreaker, UserErrorsNeverOpenIt) {
  BreakerFixture f;
  f.succeed(1000);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.opened, 0);
  EXPECT_EQ(st.window_calls, 20);
  EXPECT_EQ(st.window_failures, 0);
  EXPECT_TRUE(f.seen.empty());
}

TEST(ResilienceBreaker, OpenRefusesAndCountsDown) {
  BreakerFixture f;
  EXPECT_EQ(f.breaker.retry_after_ms(), 0);
  f.fail(5);
  EXPECT_FALSE(f.breaker.allow());
  EXPECT_FALSE(f.breaker.allow());
  EXPECT_FALSE(f.breaker.allow());
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.rejected, 3);
  EXPECT_EQ(st.state_since_ms, 1000);
  EXPECT_EQ(f.breaker.retry_after_ms(), 1000);
  f.now = 1400;
  EXPECT_EQ(f.breaker.retry_after_ms(), 600);
  f.now = 2000;
  EXPECT_EQ(f.breaker.retry_after_ms(), 0);
  f.now = 2500;
  EXPECT_EQ(f.breaker.retry_after_ms(), 0);
}

TEST(ResilienceBreaker, ProbeDueOnceThenSuccessCloses) {
  BreakerFixture f;
  EXPECT_FALSE(f.breaker.probe_due());  // closed: nothing to probe
  f.fail(5);
  f.now = 1999;
  EXPECT_FALSE(f.breaker.probe_due());
  f.now = 2000;
  EXPECT_TRUE(f.breaker.probe_due());
  EXPECT_FALSE(f.breaker.probe_due());  // exactly once
  EXPECT_EQ(f.breaker.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(f.breaker.allow());  // the probe is a health query, not a user's request
  EXPECT_EQ(f.breaker.retry_after_ms(), 1000);
  f.now = 2300;
  EXPECT_EQ(f.breaker.retry_after_ms(), 700);
  EXPECT_EQ(f.breaker.stats().open_wait_ms, 2000);  // what a failed probe would wait
  f.breaker.probe_result(true);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(f.breaker.allow());
  EXPECT_EQ(f.last_reason(), "probe succeeded");
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.closed, 1);
  EXPECT_EQ(st.half_opened, 1);
  EXPECT_EQ(st.window_calls, 0);
  EXPECT_EQ(st.consecutive_failures, 0);
  EXPECT_EQ(st.open_wait_ms, 1000);
  EXPECT_EQ(st.state_since_ms, 2300);
  // A fresh start: four more failures do not reopen it.
  f.fail(4);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
}

TEST(ResilienceBreaker, FailedProbesDoubleTheWaitUpToTheCap) {
  BreakerConfig cfg;
  cfg.open_max_ms = 5000;
  BreakerFixture f(cfg);
  f.fail(5);
  int64_t wait = 1000;
  for (int64_t next : {2000, 4000, 5000, 5000}) {
    f.now += wait - 1;
    EXPECT_FALSE(f.breaker.probe_due());
    f.now += 1;
    ASSERT_TRUE(f.breaker.probe_due());
    f.breaker.probe_result(false, "still down");
    EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
    EXPECT_EQ(f.last_reason(), "probe failed");
    EXPECT_EQ(f.breaker.stats().open_wait_ms, next);
    EXPECT_EQ(f.breaker.retry_after_ms(), next);
    wait = next;
  }
  EXPECT_EQ(f.breaker.stats().last_error, "still down");
  EXPECT_EQ(f.breaker.stats().opened, 5);
  f.now += wait;
  ASSERT_TRUE(f.breaker.probe_due());
  f.breaker.probe_result(true);
  f.fail(5);  // a new trip starts from open_ms again
  EXPECT_EQ(f.breaker.stats().open_wait_ms, 1000);
}

TEST(ResilienceBreaker, UnansweredProbeTimesOutBackToOpen) {
  BreakerFixture f;
  f.fail(5);
  f.now = 2000;
  ASSERT_TRUE(f.breaker.probe_due());
  f.now = 2999;
  EXPECT_FALSE(f.breaker.probe_due());
  EXPECT_EQ(f.breaker.state(), BreakerState::kHalfOpen);
  f.now = 3000;
  EXPECT_FALSE(f.breaker.probe_due());
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.last_reason(), "probe timed out");
  EXPECT_EQ(f.breaker.stats().open_wait_ms, 2000);
  f.breaker.probe_result(true);  // the late answer is ignored
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  f.now = 4999;
  EXPECT_FALSE(f.breaker.probe_due());
  f.now = 5000;
  EXPECT_TRUE(f.breaker.probe_due());
}

TEST(ResilienceBreaker, ReachableClosesFromOpenAndHalfOpen) {
  BreakerFixture f;
  f.breaker.reachable();
  EXPECT_TRUE(f.seen.empty());  // nothing to do in CLOSED
  f.fail(5);
  f.breaker.reachable();
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(f.last_reason(), "upstream reachable");
  f.fail(5);
  f.now += 1000;
  ASSERT_TRUE(f.breaker.probe_due());
  f.breaker.reachable();
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  f.breaker.probe_result(false, "late");  // ignored: no longer half-open
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(f.breaker.stats().closed, 2);
}

TEST(ResilienceBreaker, RecordsWhileOpenAreIgnored) {
  BreakerFixture f;
  f.fail(5);
  f.succeed(100);
  f.fail(100, "late failure");
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.opened, 1);
  EXPECT_EQ(st.window_calls, 5);
  EXPECT_EQ(st.last_error, "boom");
  f.breaker.record_connect_failure("connection refused");  // only the error text
  st = f.breaker.stats();
  EXPECT_EQ(st.last_error, "connection refused");
  EXPECT_EQ(st.window_calls, 5);
  EXPECT_EQ(f.seen.size(), 1u);
}

TEST(ResilienceBreaker, ConnectFailuresCountWhenClosed) {
  BreakerFixture f;
  for (int i = 0; i < 5; ++i)
    f.breaker.record_connect_failure("connection refused");
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.breaker.stats().last_error, "connection refused");
}

TEST(ResilienceBreaker, ListenerSeesEveryTransition) {
  BreakerFixture f;
  f.fail(5);  // closed → open
  f.now += 1000;
  f.breaker.probe_due();          // open → half_open
  f.breaker.probe_result(false);  // half_open → open
  f.now += 2000;
  f.breaker.probe_due();  // open → half_open
  f.now += 1000;
  f.breaker.probe_due();  // half_open → open (timed out)
  f.now += 4000;
  f.breaker.probe_due();         // open → half_open
  f.breaker.probe_result(true);  // half_open → closed
  f.fail(5);                     // closed → open
  f.breaker.reachable();         // open → closed
  using S = BreakerState;
  const std::vector<std::pair<S, S>> want = {
      {S::kClosed, S::kOpen},     {S::kOpen, S::kHalfOpen}, {S::kHalfOpen, S::kOpen},
      {S::kOpen, S::kHalfOpen},   {S::kHalfOpen, S::kOpen}, {S::kOpen, S::kHalfOpen},
      {S::kHalfOpen, S::kClosed}, {S::kClosed, S::kOpen},   {S::kOpen, S::kClosed},
  };
  ASSERT_EQ(f.seen.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(std::get<0>(f.seen[i]), want[i].first) << i;
    EXPECT_EQ(std::get<1>(f.seen[i]), want[i].second) << i;
  }
  EXPECT_EQ(std::get<2>(f.seen[4]), "probe timed out");
  CircuitBreaker::Stats st = f.breaker.stats();
  EXPECT_EQ(st.opened, 4);
  EXPECT_EQ(st.half_opened, 3);
  EXPECT_EQ(st.closed, 2);
}

TEST(ResilienceBreaker, DisabledAlwaysAllows) {
  BreakerConfig cfg;
  cfg.enabled = false;
  BreakerFixture f(cfg);
  f.fail(100);
  for (int i = 0; i < 5; ++i)
    f.breaker.record_connect_failure("refused");
  EXPECT_TRUE(f.breaker.allow());
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_FALSE(f.breaker.probe_due());
  EXPECT_EQ(f.breaker.stats().rejected, 0);
  EXPECT_TRUE(f.seen.empty());
}

TEST(ResilienceBreaker, OddConfigIsClamped) {
  BreakerConfig cfg;
  cfg.window = 0;
  cfg.minimum_calls = 50;
  cfg.consecutive_failures = 0;
  cfg.open_ms = -5;
  cfg.open_max_ms = -10;
  BreakerFixture f(cfg);
  f.succeed(10);
  EXPECT_EQ(f.breaker.stats().window_calls, 1);
  f.fail(1);  // one failure is enough once the threshold is clamped to 1
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.breaker.retry_after_ms(), 0);
  EXPECT_TRUE(f.breaker.probe_due());
}

// Several workers allowing and recording while a timer thread probes: the sanitizers must stay
// quiet and the counters must agree with what the threads observed.
TEST(ResilienceBreaker, ThreadSafetySmoke) {
  std::atomic<int64_t> now{0};
  CircuitBreaker b("db", BreakerConfig{}, [&now] { return now.load(); });
  std::mutex seen_mu;
  std::vector<std::pair<BreakerState, BreakerState>> seen;
  b.set_listener([&](BreakerState from, BreakerState to, const std::string&) {
    std::lock_guard<std::mutex> lock(seen_mu);
    seen.emplace_back(from, to);
  });
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> ticks{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  workers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      // At least 5000 calls, and on until the timer has driven some open/probe cycles.
      for (int i = 0; i < 5000 || ticks.load() < 2000; ++i) {
        if (!b.allow()) {
          ++refused;
          continue;
        }
        if ((i + t) % 4 == 0)
          b.record_success();
        else
          b.record_failure("boom " + std::to_string(t));
        if (i % 500 == 0) b.stats();
      }
    });
  }
  std::thread timer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ticks.fetch_add(1);
      now.fetch_add(50);
      if (b.probe_due()) b.probe_result(i % 2 == 0, "probe failed");
      if (i % 97 == 0) b.reachable();
      b.retry_after_ms();
    }
  });
  for (auto& w : workers)
    w.join();
  stop = true;
  timer.join();

  CircuitBreaker::Stats st = b.stats();
  EXPECT_EQ(st.rejected, refused.load());
  EXPECT_GE(st.opened, 1);
  EXPECT_LE(st.half_opened, st.opened);
  EXPECT_LE(st.window_calls, 20);
  EXPECT_LE(st.window_failures, st.window_calls);
  std::lock_guard<std::mutex> lock(seen_mu);
  ASSERT_EQ(static_cast<int64_t>(seen.size()), st.opened + st.half_opened + st.closed);
  BreakerState at = BreakerState::kClosed;
  for (const auto& [from, to] : seen) {
    EXPECT_EQ(from, at);
    at = to;
  }
  EXPECT_EQ(at, st.state);
}

// ---- adaptive concurrency limit ----

TEST(ResilienceLimit, AdmitsUpToTheLimitThenSheds) {
  LimitConfig cfg;
  cfg.initial = 10;
  cfg.min_limit = 2;
  ConcurrencyLimit l(cfg);
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(l.try_acquire());
  EXPECT_FALSE(l.try_acquire());
  EXPECT_FALSE(l.try_acquire());
  EXPECT_EQ(l.in_flight(), 10);
  EXPECT_EQ(l.shed(), 2);
  l.release(1000, false);
  EXPECT_EQ(l.in_flight(), 9);
  EXPECT_TRUE(l.try_acquire());
}

TEST(ResilienceLimit, DisabledAlwaysAdmits) {
  LimitConfig cfg;
  cfg.enabled = false;
  cfg.initial = 8;
  ConcurrencyLimit l(cfg);
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(l.try_acquire());
  EXPECT_EQ(l.shed(), 0);
  EXPECT_EQ(l.in_flight(), 100);
  l.release(1000, true);
  EXPECT_EQ(l.limit(), 8);
}

TEST(ResilienceLimit, StableLatencyAtFullUseGrowsToTheMax) {
  LimitConfig cfg;
  cfg.initial = 16;
  cfg.max_limit = 200;
  ConcurrencyLimit l(cfg);
  sample_full(l, 1000, 1);
  EXPECT_DOUBLE_EQ(l.short_rtt_us(), 1000);  // the first sample sets both
  EXPECT_DOUBLE_EQ(l.long_rtt_us(), 1000);
  // 16 + 0.2 * sqrt(16) = 16.8: the sqrt(limit) queue allowance at full smoothing weight.
  EXPECT_EQ(l.limit(), 16);
  sample_full(l, 1000, 1);
  EXPECT_EQ(l.limit(), 17);
  int last = l.limit();
  for (int i = 0; i < 2000; ++i) {
    sample_full(l, 1000, 1);
    ASSERT_GE(l.limit(), last);
    ASSERT_LE(l.limit(), 200);
    last = l.limit();
  }
  EXPECT_EQ(l.limit(), 200);
}

TEST(ResilienceLimit, RisingLatencyShrinksButNotBelowMin) {
  LimitConfig cfg;
  cfg.initial = 100;
  cfg.max_limit = 100;
  ConcurrencyLimit l(cfg);
  sample_full(l, 1000, 50);
  EXPECT_EQ(l.limit(), 100);
  sample_full(l, 4000, 100);  // 4x slower: the database is queueing
  int shrunk = l.limit();
  EXPECT_LT(shrunk, 50);
  EXPECT_GE(shrunk, 8);
  // Latency that keeps climbing drives it to the floor, never below.
  int64_t rtt = 4000;
  for (int i = 0; i < 500; ++i) {
    rtt += rtt / 50;
    sample_full(l, rtt, 1);
    ASSERT_GE(l.limit(), 8);
  }
  EXPECT_EQ(l.limit(), 8);
}

TEST(ResilienceLimit, UnusedLimitDoesNotGrow) {
  ConcurrencyLimit l(LimitConfig{});  // 64
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(l.try_acquire());
    l.release(1000, false);  // one in flight of 64
  }
  EXPECT_EQ(l.limit(), 64);
  EXPECT_EQ(l.in_flight(), 0);
}

TEST(ResilienceLimit, DroppedReleasesShrinkByTenPercent) {
  LimitConfig cfg;
  cfg.initial = 100;
  ConcurrencyLimit l(cfg);
  ASSERT_TRUE(l.try_acquire());
  l.release(5000, true);
  EXPECT_EQ(l.limit(), 90);
  ASSERT_TRUE(l.try_acquire());
  l.release(5000, true);
  EXPECT_EQ(l.limit(), 81);
  EXPECT_DOUBLE_EQ(l.short_rtt_us(), 0);  // a drop is not a latency sample
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(l.try_acquire());
    l.release(5000, true);
  }
  EXPECT_EQ(l.limit(), 8);
}

TEST(ResilienceLimit, RecoveryLetsItGrowAgain) {
  LimitConfig cfg;
  cfg.initial = 100;
  cfg.max_limit = 100;
  ConcurrencyLimit l(cfg);
  sample_full(l, 1000, 50);
  sample_full(l, 4000, 80);
  int bottom = l.limit();
  double long_before = l.long_rtt_us();
  EXPECT_LT(bottom, 20);
  // Latency back down: the gradient is 1 again and the limit climbs fast (left at 4x it would
  // creep up by about 2 over the same 30 samples as the long-term average catches up).
  sample_full(l, 1000, 30);
  EXPECT_LT(l.long_rtt_us(), long_before);
  EXPECT_GE(l.limit(), bottom + 10);
  sample_full(l, 1000, 1000);
  EXPECT_EQ(l.limit(), 100);
}

// When latency falls a lot (long/short > 2) the long-term average is cut by 5% a sample instead
// of waiting for its 1/600 smoothing, until it is back within 2x of the short-term one.
TEST(ResilienceLimit, LongRttFollowsAFasterUpstream) {
  ConcurrencyLimit l(LimitConfig{});
  ASSERT_TRUE(l.try_acquire());
  l.release(4000, false);
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(l.try_acquire());
    l.release(1000, false);
  }
  EXPECT_NEAR(l.short_rtt_us(), 1000, 10);
  EXPECT_LT(l.long_rtt_us(), 2100);  // plain smoothing alone would still be near 3700
  EXPECT_GT(l.long_rtt_us(), 1800);  // the cut stops at about 2x the short-term latency
}
