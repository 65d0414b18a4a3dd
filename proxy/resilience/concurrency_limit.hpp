// An adaptive limit on a worker's requests in flight to the database (Netflix Gradient2, Envoy's
// adaptive concurrency): it shrinks when latency rises, so overload is shed instead of queued.
#pragma once

#include <cstdint>

namespace zonegate::resilience {

struct LimitConfig {
  bool enabled = true;
  int initial = 64;
  int min_limit = 8;
  int max_limit = 1024;
  double tolerance = 2.0;  // how much slower than the long-term latency is still fine
  double smoothing = 0.2;  // weight of each new limit estimate
  int long_window = 600;   // samples the long-term latency averages over
};

class ConcurrencyLimit {
 public:
  // Odd values are clamped (1 <= min_limit <= initial <= max_limit, smoothing in [0, 1],
  // long_window >= 1), never fatal.
  explicit ConcurrencyLimit(LimitConfig cfg);
  // in_flight < limit: admits (in_flight++) and returns true; otherwise counts a shed request and
  // returns false. Always admits when disabled.
  bool try_acquire();
  // A request admitted by try_acquire ended. rtt_us: its time in the database stage; dropped: it
  // failed by timeout/overload, a signal to back off (the limit shrinks by 10%).
  void release(int64_t rtt_us, bool dropped);
  // floor of the internal limit, at least min_limit.
  int limit() const;
  int in_flight() const { return in_flight_; }
  int64_t shed() const { return shed_; }
  double short_rtt_us() const { return short_rtt_; }
  double long_rtt_us() const { return long_rtt_; }

 private:
  void update(double rtt, int in_flight_before);

  LimitConfig cfg_;
  double limit_;
  int in_flight_ = 0;
  int64_t shed_ = 0;
  double short_rtt_ = 0;  // 0: no sample yet
  double long_rtt_ = 0;
};

}  // namespace zonegate::resilience
