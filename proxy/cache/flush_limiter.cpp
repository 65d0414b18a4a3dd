// The physical purge limiter; see flush_limiter.hpp.
#include "cache/flush_limiter.hpp"

#include <algorithm>
#include <utility>

namespace zonegate::cache {

FlushLimiter::FlushLimiter(int per_second, Clock clock)
    : times_(static_cast<size_t>(std::max(1, per_second)), 0), clock_(std::move(clock)) {}

bool FlushLimiter::admit() {
  int64_t now = clock_();
  if (used_ == times_.size() && now - times_[next_] < 1000) return false;
  times_[next_] = now;
  next_ = (next_ + 1) % times_.size();
  used_ = std::min(used_ + 1, times_.size());
  return true;
}

int64_t FlushLimiter::wait_ms() const {
  if (used_ < times_.size()) return 0;
  return std::max<int64_t>(0, times_[next_] + 1000 - clock_());
}

}  // namespace zonegate::cache
