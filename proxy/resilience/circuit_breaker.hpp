// The circuit breaker of one upstream: fails fast after repeated infrastructure failures and lets
// one health probe decide when to close again. Shared by the worker threads: thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "resilience/clock.hpp"

namespace zonegate::resilience {

struct BreakerConfig {
  bool enabled = true;
  int consecutive_failures = 5;  // OPEN after this many infrastructure failures in a row
  int window = 20;               // sliding window of the last N calls (count based)
  int minimum_calls = 10;        // the failure rate is judged only once the window holds this many
  double failure_rate = 0.5;     // OPEN when failures/calls in the window >= this
  int64_t open_ms = 1000;        // first wait in OPEN ...
  int64_t open_max_ms = 30000;   // ... doubling while probes keep failing, up to this
  int64_t probe_timeout_ms = 1000;  // an unanswered probe fails, so HALF_OPEN can never stick
};

enum class BreakerState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

// "closed", "open", "half_open".
const char* breaker_state_name(BreakerState s);

class CircuitBreaker {
 public:
  // Called on every state change, under the breaker's lock (so listeners see transitions in
  // order); it must not call back into the breaker.
  using Listener =
      std::function<void(BreakerState from, BreakerState to, const std::string& reason)>;

  // Odd config values are clamped (window >= 1, 1 <= minimum_calls <= window,
  // consecutive_failures >= 1, open_max_ms >= open_ms), never fatal.
  CircuitBreaker(std::string name, BreakerConfig cfg, Clock clock);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  const std::string& name() const { return name_; }
  // Whether a user request may go upstream now: only in CLOSED (always when disabled). The
  // CLOSED path reads an atomic and takes no lock.
  bool allow();
  // The outcome of a user request that went upstream: success or user error / infrastructure
  // failure. Ignored unless CLOSED, so calls started before a trip cannot re-trip or close it.
  void record_success();
  void record_failure(const std::string& error);
  // A connection attempt failed: a failure in CLOSED; otherwise it only updates last_error.
  void record_connect_failure(const std::string& error);
  // Polled by a timer. True exactly once per probe, to one caller, when OPEN and the wait is
  // over: the breaker is then HALF_OPEN and the caller sends one health query and reports
  // probe_result(). A probe unanswered for probe_timeout_ms reopens the breaker here.
  bool probe_due();
  // The probe's answer: CLOSED on ok, OPEN with the doubled wait otherwise. Ignored unless
  // HALF_OPEN (e.g. a late answer after a probe timeout).
  void probe_result(bool ok, const std::string& error = "");
  // The upstream proved reachable outside a probe (a fresh connection finished its setup).
  void reachable();
  BreakerState state() const { return static_cast<BreakerState>(state_.load()); }
  // Until the breaker next lets anything through: the rest of the open wait in OPEN, of the
  // probe timeout in HALF_OPEN, 0 in CLOSED.
  int64_t retry_after_ms() const;

  struct Stats {
    BreakerState state = BreakerState::kClosed;
    int64_t opened = 0, half_opened = 0, closed = 0;  // transitions into each state
    int64_t rejected = 0;                             // allow() answers false
    int window_calls = 0, window_failures = 0, consecutive_failures = 0;
    int64_t open_wait_ms = 0;    // the current (OPEN) or next (CLOSED, HALF_OPEN) open wait
    std::string last_error;      // last infrastructure failure
    int64_t state_since_ms = 0;  // clock time of the last transition
  };
  Stats stats() const;
  void set_listener(Listener l);

 private:
  // All private helpers expect mu_ held.
  void record_locked(bool failure);
  void transition(BreakerState to, const std::string& reason);
  void open_locked(const std::string& reason);
  void close_locked(const std::string& reason);
  void clear_window();
  int64_t doubled_wait() const;
  BreakerState state_locked() const { return static_cast<BreakerState>(state_.load()); }

  const std::string name_;
  BreakerConfig cfg_;
  Clock clock_;
  std::atomic<int> state_{static_cast<int>(BreakerState::kClosed)};
  std::atomic<int64_t> rejected_{0};

  mutable std::mutex mu_;
  std::vector<bool> ring_;  // the last cfg_.window outcomes, true = failure
  int ring_next_ = 0;
  int ring_calls_ = 0;
  int ring_failures_ = 0;
  int consecutive_ = 0;
  int64_t open_wait_ms_;
  int64_t open_until_ms_ = 0;
  int64_t probe_started_ms_ = 0;
  int64_t state_since_ms_;
  int64_t opened_ = 0, half_opened_ = 0, closed_ = 0;
  std::string last_error_;
  Listener listener_;
};

}  // namespace zonegate::resilience
