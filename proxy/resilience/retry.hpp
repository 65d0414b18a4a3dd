// The retry stage: whether and when a failed upstream attempt runs again, bounded by a deadline,
// a retry count and a per-worker retry budget (so retries cannot snowball into a storm).
#pragma once

#include <cstdint>

#include "resilience/classify.hpp"

namespace zonegate::resilience {

struct RetryConfig {
  int max_retries = 2;
  int64_t base_ms = 25;
  int64_t cap_ms = 250;
  double budget_ratio = 0.2;
  int budget_min = 3;
};

// Envoy's retry budget: retries in flight at most max(budget_min, budget_ratio * active
// requests). One per worker thread: not thread-safe.
class RetryBudget {
 public:
  explicit RetryBudget(double ratio = 0.2, int min_concurrent = 3);
  // An upstream request became active / ended.
  void request_started();
  void request_finished();
  // Takes a retry slot and returns true, or returns false (budget exhausted, counted).
  bool try_start_retry();
  // Gives back a slot taken by try_start_retry.
  void retry_finished();
  int active() const { return active_; }
  int retries_in_flight() const { return retries_; }
  // max(min, floor(ratio * active)).
  int allowed() const;
  int64_t exhausted() const { return exhausted_; }

 private:
  double ratio_;
  int min_;
  int active_ = 0;
  int retries_ = 0;
  int64_t exhausted_ = 0;
};

// Deadline arithmetic. A deadline is an absolute time on the Clock.
struct Deadline {
  int64_t at_ms = INT64_MAX;
  // now + timeout, saturating (a negative timeout is an already expired deadline).
  static Deadline after(int64_t now_ms, int64_t timeout_ms);
  // Time left, never negative.
  int64_t remaining_ms(int64_t now_ms) const;
  // now >= at: a deadline is over at exactly its instant.
  bool expired(int64_t now_ms) const { return now_ms >= at_ms; }
};

// The default deadline of a route: pool.acquire_timeout + pool.statement_timeout (a request may
// wait for a connection, then run one statement), at least 1 ms.
int64_t default_deadline_ms(int64_t acquire_timeout_ms, int64_t statement_timeout_ms);

// delay_ms is the wait before the retry; why_not names the refusal ("" when retry).
struct RetryDecision {
  bool retry = false;
  int64_t delay_ms = 0;
  const char* why_not = "";
};

// Decides whether and when to try again. `retries_done` is how many retries already ran (0 after
// the first attempt failed); `random` a 64-bit random value for the jitter. Refusals in order:
// "not_retryable", "not_idempotent", "max_retries", "deadline", "budget". The budget is asked
// last, so a retry refused for any other reason never takes a slot; on retry the caller owns one
// slot and must call budget.retry_finished() when the retry ends.
RetryDecision decide_retry(const RetryConfig& cfg, const AttemptOutcome& outcome, bool idempotent,
                           int retries_done, const Deadline& deadline, int64_t now_ms,
                           uint64_t random, RetryBudget& budget);

}  // namespace zonegate::resilience
