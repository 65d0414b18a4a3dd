// Capped exponential backoff with full jitter (the AWS architecture blog's "full jitter": a
// random delay in [0, min(cap, base * 2^attempt)]), so many clients that failed together do not
// come back in lockstep. The one backoff of the proxy: reconnects and retries use it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace zonegate {

class Backoff {
 public:
  Backoff(int64_t base_ms, int64_t cap_ms) : base_ms_(base_ms), cap_ms_(cap_ms) {}
  // The ceiling of the delay for the given attempt (0-based): min(cap, base * 2^attempt).
  int64_t ceiling_ms(int attempt) const {
    if (base_ms_ <= 0) return 0;
    int shift = std::min(std::max(attempt, 0), 30);
    int64_t c = base_ms_ << shift;
    return std::min(c, cap_ms_);
  }
  // A jittered delay for the given attempt, from `random` (any 64-bit value).
  int64_t delay_ms(int attempt, uint64_t random) const {
    int64_t c = ceiling_ms(attempt);
    return c <= 0 ? 0 : static_cast<int64_t>(random % static_cast<uint64_t>(c + 1));
  }
  // The next delay of this backoff's own sequence; reset() starts it again.
  int64_t next_ms() { return delay_ms(attempt_++, rng_()); }
  void reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }
  void set_limits(int64_t base_ms, int64_t cap_ms) {
    base_ms_ = base_ms;
    cap_ms_ = cap_ms;
  }

 private:
  int64_t base_ms_;
  int64_t cap_ms_;
  int attempt_ = 0;
  // Seeded from the clock and the address, not std::random_device: a Backoff is made per
  // failed attempt, and jitter needs spread, not unpredictability.
  std::mt19937_64 rng_{
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      reinterpret_cast<uintptr_t>(this)};
};

}  // namespace zonegate
