// The per-upstream circuit breaker; see circuit_breaker.hpp.
#include "resilience/circuit_breaker.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace zonegate::resilience {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

int64_t sat_add(int64_t a, int64_t b) {
  return b > 0 && a > kMax - b ? kMax : a + b;
}

// Clamps values the loader should have rejected, so the breaker never divides by zero, indexes
// an empty ring or waits a negative time.
BreakerConfig sanitized(BreakerConfig c) {
  c.window = std::max(c.window, 1);
  c.minimum_calls = std::clamp(c.minimum_calls, 1, c.window);
  c.consecutive_failures = std::max(c.consecutive_failures, 1);
  c.open_ms = std::max<int64_t>(c.open_ms, 0);
  c.open_max_ms = std::max(c.open_max_ms, c.open_ms);
  c.probe_timeout_ms = std::max<int64_t>(c.probe_timeout_ms, 0);
  return c;
}

}  // namespace

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(std::string name, BreakerConfig cfg, Clock clock)
    : name_(std::move(name)), cfg_(sanitized(cfg)), clock_(std::move(clock)) {
  ring_.assign(static_cast<size_t>(cfg_.window), false);
  open_wait_ms_ = cfg_.open_ms;
  state_since_ms_ = clock_();
}

bool CircuitBreaker::allow() {
  if (!cfg_.enabled || state() == BreakerState::kClosed) return true;
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void CircuitBreaker::record_success() {
  if (!cfg_.enabled) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_locked() == BreakerState::kClosed) record_locked(false);
}

void CircuitBreaker::record_failure(const std::string& error) {
  if (!cfg_.enabled) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_locked() != BreakerState::kClosed) return;
  last_error_ = error;
  record_locked(true);
}

void CircuitBreaker::record_connect_failure(const std::string& error) {
  if (!cfg_.enabled) return;
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = error;
  if (state_locked() == BreakerState::kClosed) record_locked(true);
}

// Adds one outcome to the ring and trips the breaker when either rule says so. A success can
// trip it too: it may bring the window up to minimum_calls with the rate already too high.
void CircuitBreaker::record_locked(bool failure) {
  const auto slot = static_cast<size_t>(ring_next_);
  if (ring_calls_ == cfg_.window) {
    if (ring_[slot]) --ring_failures_;  // the oldest outcome leaves the window
  } else {
    ++ring_calls_;
  }
  ring_[slot] = failure;
  if (failure) ++ring_failures_;
  ring_next_ = (ring_next_ + 1) % cfg_.window;
  consecutive_ = failure ? consecutive_ + 1 : 0;

  if (consecutive_ >= cfg_.consecutive_failures) {
    open_locked(std::to_string(consecutive_) + " consecutive failures");
    return;
  }
  if (ring_calls_ >= cfg_.minimum_calls && ring_failures_ > 0 &&
      static_cast<double>(ring_failures_) / ring_calls_ >= cfg_.failure_rate) {
    int percent = ring_failures_ * 100 / ring_calls_;
    open_locked("failure rate " + std::to_string(percent) + "% over " +
                std::to_string(ring_calls_) + " calls");
  }
}

// Enters OPEN: the first wait from CLOSED, a doubled one when a probe failed (HALF_OPEN).
void CircuitBreaker::open_locked(const std::string& reason) {
  open_wait_ms_ = state_locked() == BreakerState::kHalfOpen ? doubled_wait() : cfg_.open_ms;
  transition(BreakerState::kOpen, reason);
  open_until_ms_ = sat_add(state_since_ms_, open_wait_ms_);
}

// Enters CLOSED with a clean slate: old failures must not count against the recovered upstream.
void CircuitBreaker::close_locked(const std::string& reason) {
  clear_window();
  open_wait_ms_ = cfg_.open_ms;
  transition(BreakerState::kClosed, reason);
}

// The wait after one more failed probe: twice the current one, at most open_max_ms.
int64_t CircuitBreaker::doubled_wait() const {
  return open_wait_ms_ > cfg_.open_max_ms / 2 ? cfg_.open_max_ms : open_wait_ms_ * 2;
}

void CircuitBreaker::clear_window() {
  std::fill(ring_.begin(), ring_.end(), false);
  ring_next_ = 0;
  ring_calls_ = 0;
  ring_failures_ = 0;
  consecutive_ = 0;
}

void CircuitBreaker::transition(BreakerState to, const std::string& reason) {
  BreakerState from = state_locked();
  state_since_ms_ = clock_();
  state_.store(static_cast<int>(to));
  if (to == BreakerState::kOpen) ++opened_;
  if (to == BreakerState::kHalfOpen) ++half_opened_;
  if (to == BreakerState::kClosed) ++closed_;
  if (listener_) listener_(from, to, reason);
}

bool CircuitBreaker::probe_due() {
  if (state() == BreakerState::kClosed) return false;  // the common case, without the lock
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_();
  BreakerState s = state_locked();
  if (s == BreakerState::kOpen && now >= open_until_ms_) {
    transition(BreakerState::kHalfOpen, "open wait over");
    probe_started_ms_ = state_since_ms_;
    return true;
  }
  if (s == BreakerState::kHalfOpen && now >= sat_add(probe_started_ms_, cfg_.probe_timeout_ms))
    open_locked("probe timed out");
  return false;
}

void CircuitBreaker::probe_result(bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_locked() != BreakerState::kHalfOpen) return;
  if (ok) {
    close_locked("probe succeeded");
    return;
  }
  if (!error.empty()) last_error_ = error;
  open_locked("probe failed");
}

void CircuitBreaker::reachable() {
  if (state() == BreakerState::kClosed) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (state_locked() != BreakerState::kClosed) close_locked("upstream reachable");
}

int64_t CircuitBreaker::retry_after_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_();
  switch (state_locked()) {
    case BreakerState::kOpen:
      return std::max<int64_t>(open_until_ms_ - now, 0);
    case BreakerState::kHalfOpen:
      return std::max<int64_t>(sat_add(probe_started_ms_, cfg_.probe_timeout_ms) - now, 0);
    case BreakerState::kClosed:
      break;
  }
  return 0;
}

CircuitBreaker::Stats CircuitBreaker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats st;
  st.state = state_locked();
  st.opened = opened_;
  st.half_opened = half_opened_;
  st.closed = closed_;
  st.rejected = rejected_.load(std::memory_order_relaxed);
  st.window_calls = ring_calls_;
  st.window_failures = ring_failures_;
  st.consecutive_failures = consecutive_;
  st.open_wait_ms = open_wait_ms_;
  if (st.state == BreakerState::kHalfOpen) st.open_wait_ms = doubled_wait();  // if the probe fails
  st.last_error = last_error_;
  st.state_since_ms = state_since_ms_;
  return st;
}

void CircuitBreaker::set_listener(Listener l) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(l);
}

}  // namespace zonegate::resilience
