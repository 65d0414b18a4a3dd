// One metrics registry: per-worker request, latency, query and pool series, updated on the
// worker's own thread without a lock (each is written by that thread alone) and merged only when
// /metrics (or the dashboard sampler) reads them, plus the invalidation lag. Every other family
// is described by the component that owns the figures (a metrics::Source,
// common/metrics_text.hpp), which the registry renders after its own. Names follow Prometheus
// conventions and are stable API (docs/API.md, "Health, metrics and the dashboard").
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/metrics_text.hpp"

namespace zonegate::metrics {

// Latency buckets in seconds, from 100 µs to 10 s.
inline constexpr std::array<double, 16> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                    1,      2.5,     5,      10};

// The bucket bounds in nanoseconds, for the hot path's integer compares.
inline constexpr std::array<uint64_t, kBuckets.size()> kBucketsNs = [] {
  std::array<uint64_t, kBuckets.size()> ns{};
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    // std::llround is not constexpr in C++17; the bounds are positive, so + 0.5 rounds them.
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    ns[i] = static_cast<uint64_t>(kBuckets[i] * 1e9 + 0.5);
  }
  return ns;
}();

// A histogram as read (a snapshot, a merge of workers' snapshots, the invalidation lag).
struct Histogram {
  std::array<uint64_t, kBuckets.size() + 1> counts{};  // per bucket, last one is +Inf
  double sum = 0;
  uint64_t count = 0;
  void merge(const Histogram& o);
  // The q-quantile (0..1) by linear interpolation inside its bucket; 0 when empty.
  double quantile(double q) const;
  Histogram minus(const Histogram& earlier) const;
};

// Appends a family of one sample with its HELP and TYPE lines (Prometheus text format 0.0.4):
// the registry's single-sample pool families. Components write theirs with metrics::Text.
void append_sample(std::string& out, const char* name, const char* type, const char* help,
                   const std::string& value, const std::string& labels = "");

// Pool figures a worker publishes for /health, /metrics and the dashboard.
struct PoolSnapshot {
  int ready = 0, busy = 0, connecting = 0, in_flight = 0, waiting = 0;
  double max_wait_ms = 0;
  int64_t timeouts = 0, rejected = 0, reconnects = 0, jobs = 0, syncs = 0, resent = 0;
  int64_t cancels = 0;  // cancel requests for queries past their request's deadline
  std::string last_error;
};

// A histogram one thread writes while others read it, without a lock: every field is an atomic
// the writer updates with a relaxed load and store (no read-modify-write: there is one writer),
// which compiles to plain moves. A reader may see a sample's bucket before its sum; the count is
// the sum of the buckets, so the +Inf bucket and _count always agree.
class LiveHistogram {
 public:
  void observe_ns(uint64_t ns);  // the writing thread only
  Histogram read() const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets.size() + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// One worker's series. record_request() and record_query() run on the worker's thread and take
// no lock once a series exists (a new series is inserted under mu_, which snapshot() holds while
// it walks the maps; std::map nodes never move, so the remembered pointers stay valid).
class WorkerMetrics {
 public:
  void record_request(std::string_view route, std::string_view method, int status,
                      uint64_t latency_ns);
  void record_query(const std::string& kind, uint64_t ns);
  void set_pool(const PoolSnapshot& p, int64_t open_connections);

  struct Snapshot {
    // std::less<>: the hot path looks up with string_views and copies the strings only when a
    // series is new.
    std::map<std::tuple<std::string, std::string, int>, uint64_t, std::less<>> requests;
    std::map<std::tuple<std::string, std::string, int>, Histogram, std::less<>>
        latency;                                             // route, method, class
    std::map<std::string, Histogram, std::less<>> upstream;  // by statement kind
    PoolSnapshot pool;
    int64_t open_connections = 0;
  };
  Snapshot snapshot() const;

 private:
  using Key = std::tuple<std::string, std::string, int>;
  mutable std::mutex mu_;  // held to insert a series and to read the maps, never to count
  std::map<Key, std::atomic<uint64_t>, std::less<>> requests_;
  std::map<Key, LiveHistogram, std::less<>> latency_;  // route, method, status class
  std::map<std::string, LiveHistogram, std::less<>> upstream_;
  PoolSnapshot pool_;  // under mu_
  int64_t open_connections_ = 0;
  // The series of the last request: a worker's requests mostly repeat it, which saves the two
  // map lookups per request.
  struct LastSeries {
    std::string route, method;
    int status = -1;
    std::atomic<uint64_t>* count = nullptr;
    LiveHistogram* latency = nullptr;
  } last_;
};

// A one-second sample for the dashboard's charts.
struct Sample {
  double t = 0;  // unix seconds
  double rps = 0, error_rate = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, hit_rate = 0;
  double pool_busy = 0, pool_ready = 0, pool_waiting = 0, invalidation_lag_ms = 0;
  double open_connections = 0;
};

class Registry {
 public:
  explicit Registry(int workers);
  WorkerMetrics& worker(int i) { return *workers_[static_cast<size_t>(i)]; }
  int worker_count() const { return static_cast<int>(workers_.size()); }
  // A change's statement end to its cache entries being dropped; any thread.
  void record_invalidation_lag(double seconds);

  // Merged view of every worker, and the invalidation lag.
  struct Totals {
    std::map<std::tuple<std::string, std::string, int>, uint64_t> requests;
    std::map<std::tuple<std::string, std::string, int>, Histogram> latency;
    std::map<std::string, Histogram> upstream;
    Histogram all_latency;
    PoolSnapshot pool;
    int64_t open_connections = 0;
    Histogram invalidation_lag;
  };
  Totals totals() const;
  // A component that describes its own families for /metrics (it must outlive the registry's
  // readers); call before the server starts.
  void add_source(const Source* s) { sources_.push_back(s); }
  // Prometheus text format 0.0.4: the totals' families, then every source's, in the order added.
  std::string render() const;

  // Dashboard time series: `sample()` once a second adds a point computed from the change since
  // the previous call (plus the cache figures given).
  void sample(double cache_served, double cache_total, double now_s);
  std::vector<Sample> series() const;

 private:
  std::vector<std::unique_ptr<WorkerMetrics>> workers_;
  std::vector<const Source*> sources_;  // added before the server starts, read-only after
  std::mutex lag_mu_;
  LiveHistogram lag_;  // writers take lag_mu_ (one at a time, as LiveHistogram needs)
  mutable std::mutex series_mu_;
  std::deque<Sample> series_;
  Totals last_;
  double last_cache_served_ = 0, last_cache_total_ = 0;
  bool have_last_ = false;
};

// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
int64_t resident_bytes();

}  // namespace zonegate::metrics
