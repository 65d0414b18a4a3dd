// The Gradient2-style adaptive concurrency limit; see concurrency_limit.hpp.
#include "resilience/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace zonegate::resilience {

namespace {

constexpr double kShortAlpha = 0.1;  // the short-term latency follows the last ~10 samples
constexpr double kDropFactor = 0.9;  // a timeout/overload shrinks the limit by 10%

LimitConfig sanitized(LimitConfig c) {
  c.min_limit = std::max(c.min_limit, 1);
  c.max_limit = std::max(c.max_limit, c.min_limit);
  c.initial = std::clamp(c.initial, c.min_limit, c.max_limit);
  c.smoothing = std::isfinite(c.smoothing) ? std::clamp(c.smoothing, 0.0, 1.0) : 0.2;
  c.tolerance = std::isfinite(c.tolerance) && c.tolerance > 0 ? c.tolerance : 2.0;
  c.long_window = std::max(c.long_window, 1);
  return c;
}

}  // namespace

ConcurrencyLimit::ConcurrencyLimit(LimitConfig cfg)
    : cfg_(sanitized(cfg)), limit_(static_cast<double>(cfg_.initial)) {}

bool ConcurrencyLimit::try_acquire() {
  if (cfg_.enabled && in_flight_ >= limit()) {
    ++shed_;
    return false;
  }
  ++in_flight_;
  return true;
}

void ConcurrencyLimit::release(int64_t rtt_us, bool dropped) {
  int before = in_flight_;
  if (in_flight_ > 0) --in_flight_;
  if (!cfg_.enabled) return;
  if (dropped) {
    limit_ = std::max(limit_ * kDropFactor, static_cast<double>(cfg_.min_limit));
    return;
  }
  // A zero RTT (clock granularity) would divide by zero in the gradient.
  update(static_cast<double>(std::max<int64_t>(rtt_us, 1)), before);
}

// Gradient2 (Netflix concurrency-limits):
//   short_rtt = EWMA(alpha 0.1), long_rtt = EWMA(alpha 1/long_window), the first sample sets both;
//   if long_rtt / short_rtt > 2 (latency fell a lot: recovering) long_rtt *= 0.95, so the
//     baseline follows a faster upstream instead of waiting for the slow average;
//   gradient = clamp(tolerance * long_rtt / short_rtt, 0.5, 1.0)  (1: no queueing, grow);
//   new_limit = limit * gradient + sqrt(limit)  (sqrt(limit): the queue we allow to build);
//   an unused limit (in flight < limit / 2) never grows: it would carry no information;
//   limit = limit * (1 - smoothing) + new_limit * smoothing, clamped to [min_limit, max_limit].
void ConcurrencyLimit::update(double rtt, int in_flight_before) {
  if (short_rtt_ == 0) {
    short_rtt_ = rtt;
    long_rtt_ = rtt;
  } else {
    short_rtt_ += kShortAlpha * (rtt - short_rtt_);
    long_rtt_ += (rtt - long_rtt_) / cfg_.long_window;
  }
  if (long_rtt_ / short_rtt_ > 2) long_rtt_ *= 0.95;

  double gradient = std::clamp(cfg_.tolerance * long_rtt_ / short_rtt_, 0.5, 1.0);
  double new_limit = limit_ * gradient + std::sqrt(limit_);
  if (in_flight_before < limit_ / 2) new_limit = std::min(new_limit, limit_);
  limit_ = limit_ * (1 - cfg_.smoothing) + new_limit * cfg_.smoothing;
  limit_ =
      std::clamp(limit_, static_cast<double>(cfg_.min_limit), static_cast<double>(cfg_.max_limit));
}

int ConcurrencyLimit::limit() const {
  return std::max(static_cast<int>(std::floor(limit_)), cfg_.min_limit);
}

}  // namespace zonegate::resilience
