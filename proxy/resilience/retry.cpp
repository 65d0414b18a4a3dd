// Retry decisions, retry budget and deadline arithmetic; see retry.hpp.
#include "resilience/retry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/backoff.hpp"

namespace zonegate::resilience {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// a + b clamped to the int64 range, so "no deadline" (INT64_MAX) arithmetic cannot wrap.
int64_t sat_add(int64_t a, int64_t b) {
  if (b > 0 && a > kMax - b) return kMax;
  if (b < 0 && a < kMin - b) return kMin;
  return a + b;
}

}  // namespace

RetryBudget::RetryBudget(double ratio, int min_concurrent)
    : ratio_(std::max(ratio, 0.0)), min_(std::max(min_concurrent, 0)) {}

void RetryBudget::request_started() {
  ++active_;
}

void RetryBudget::request_finished() {
  if (active_ > 0) --active_;
}

int RetryBudget::allowed() const {
  // The epsilon keeps products like 0.29 * 100 = 28.999... from losing a slot to rounding.
  double share = std::floor(ratio_ * active_ + 1e-9);
  int by_ratio = share >= static_cast<double>(std::numeric_limits<int>::max())
                     ? std::numeric_limits<int>::max()
                     : static_cast<int>(share);
  return std::max(min_, by_ratio);
}

bool RetryBudget::try_start_retry() {
  if (retries_ >= allowed()) {
    ++exhausted_;
    return false;
  }
  ++retries_;
  return true;
}

void RetryBudget::retry_finished() {
  if (retries_ > 0) --retries_;
}

Deadline Deadline::after(int64_t now_ms, int64_t timeout_ms) {
  return Deadline{sat_add(now_ms, std::max<int64_t>(timeout_ms, 0))};
}

int64_t Deadline::remaining_ms(int64_t now_ms) const {
  if (now_ms >= at_ms) return 0;
  // at > now here; the difference can only overflow when now is negative.
  return now_ms < 0 && at_ms > kMax + now_ms ? kMax : at_ms - now_ms;
}

int64_t default_deadline_ms(int64_t acquire_timeout_ms, int64_t statement_timeout_ms) {
  int64_t sum =
      sat_add(std::max<int64_t>(acquire_timeout_ms, 0), std::max<int64_t>(statement_timeout_ms, 0));
  return std::max<int64_t>(sum, 1);
}

RetryDecision decide_retry(const RetryConfig& cfg, const AttemptOutcome& outcome, bool idempotent,
                           int retries_done, const Deadline& deadline, int64_t now_ms,
                           uint64_t random, RetryBudget& budget) {
  RetryDecision d;
  if (!is_transient(outcome)) {
    d.why_not = "not_retryable";
    return d;
  }
  if (!may_retry(outcome, idempotent)) {
    d.why_not = "not_idempotent";  // transient, but it reached the server and may have run
    return d;
  }
  if (retries_done >= cfg.max_retries) {
    d.why_not = "max_retries";
    return d;
  }
  int64_t delay = Backoff(cfg.base_ms, cfg.cap_ms).delay_ms(retries_done, random);
  // A retry that would start at or after the deadline could only fail late.
  if (sat_add(now_ms, delay) >= deadline.at_ms) {
    d.why_not = "deadline";
    return d;
  }
  if (!budget.try_start_retry()) {
    d.why_not = "budget";
    return d;
  }
  d.retry = true;
  d.delay_ms = delay;
  return d;
}

}  // namespace zonegate::resilience
