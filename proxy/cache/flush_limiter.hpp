// How often the response cache physically purges everything (docs/CONFIG.md,
// cache.max_flushes_per_second). A full flush ("*" changes, flush_caches()) must take effect at
// once for correctness, and does, in O(1) (the cache's freshness watermark); only the purge that
// frees the entries is limited, so a burst of flushes (a bulk job changing zones statement by
// statement, or anyone who can trigger flushes) cannot keep the cache walking its shards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace zonegate::cache {

class FlushLimiter {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds, monotonic
  // At most per_second purges in any 1000 ms (per_second >= 1).
  FlushLimiter(int per_second, Clock clock);
  // A purge is due: true (and counted) when it may run now; false when it must wait.
  bool admit();
  // Milliseconds until admit() can succeed (0: now).
  int64_t wait_ms() const;

 private:
  std::vector<int64_t> times_;  // when the last admitted purges ran, a ring
  size_t next_ = 0;             // the oldest slot once the ring is full
  size_t used_ = 0;
  Clock clock_;
};

}  // namespace zonegate::cache
