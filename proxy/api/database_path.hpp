// A request's way to the database, as a list of named stages (docs/ARCHITECTURE.md, "Failure
// behaviour"): deadline → breaker → shed → pool → retry. The stages' logic is the pure classes
// of resilience/; this is the glue on a worker's loop (timers, the pool, the shared breaker).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>

#include "common/metrics_text.hpp"
#include "config/config.hpp"
#include "pg/pool.hpp"
#include "resilience/circuit_breaker.hpp"
#include "resilience/concurrency_limit.hpp"
#include "resilience/retry.hpp"

namespace zonegate::api {

// One worker's resilience figures: written on its loop thread, read by /metrics and /health.
struct PathStats {
  std::atomic<int64_t> retries{0}, budget_exhausted{0}, deadline_expired{0}, breaker_rejected{0};
  std::atomic<int64_t> shed{0}, fail_fast{0};
  std::atomic<int64_t> limit{0}, in_flight{0};
  mutable std::mutex mu;  // for the labelled maps (touched on retries and expiries only)
  std::map<std::pair<std::string, std::string>, int64_t> retries_by;  // route, reason
  std::map<std::string, int64_t> deadlines_by;                        // route
};

// Every worker's PathStats and the breaker, described for /metrics.
class ResilienceMetrics : public metrics::Source {
 public:
  ResilienceMetrics(const resilience::CircuitBreaker& breaker, int workers);
  PathStats& worker(int i) { return *workers_[static_cast<size_t>(i)]; }
  void describe_metrics(metrics::Text& out) const override;
  // Summed over workers.
  struct Totals {
    int64_t retries = 0, budget_exhausted = 0, deadline_expired = 0, breaker_rejected = 0;
    int64_t shed = 0, fail_fast = 0, limit = 0, in_flight = 0;
  };
  Totals totals() const;

 private:
  const resilience::CircuitBreaker& breaker_;
  std::vector<std::unique_ptr<PathStats>> workers_;
};

class DatabasePath {
 public:
  DatabasePath(uv_loop_t* loop, pg::Pool& pool, const config::ResilienceConfig& cfg,
               resilience::CircuitBreaker& breaker, PathStats* stats);
  // Runs `job` for a request of `route`; job.done runs exactly once, on this loop.
  void submit(const std::string& route, pg::Job job);
  // Every few milliseconds: a probe when the breaker wants one, the limiter's figures.
  void tick();
  // Fails the calls waiting for a retry and closes their timers.
  void shutdown();

 private:
  struct Call;
  struct RetryTimer;
  void attempt(const std::shared_ptr<Call>& call);  // the stages, in order
  void on_result(const std::shared_ptr<Call>& call, pg::Result r);
  void record_breaker(const pg::Result& r);
  bool retry_later(const std::shared_ptr<Call>& call, const pg::Result& r);
  void finish(const std::shared_ptr<Call>& call, pg::Result r);
  void send_probe();
  static int64_t now_ms();

  uv_loop_t* loop_;
  pg::Pool& pool_;
  const config::ResilienceConfig& cfg_;
  resilience::CircuitBreaker& breaker_;
  resilience::RetryBudget budget_;
  resilience::ConcurrencyLimit limit_;
  PathStats* stats_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::unordered_set<RetryTimer*> timers_;
  bool shutting_down_ = false;
};

}  // namespace zonegate::api
