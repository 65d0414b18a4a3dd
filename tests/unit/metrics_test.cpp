// Per-worker request metrics: every request lands in its own (route, method, status) series and
// status-class histogram, also when consecutive requests alternate between series (the worker
// remembers the last series it used).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <tuple>

#include "admin/metrics.hpp"

namespace zonegate::metrics {
namespace {

TEST(WorkerMetrics, RequestsLandInTheirOwnSeries) {
  WorkerMetrics m;
  struct Req {
    const char* route;
    const char* method;
    int status;
  };
  const Req reqs[] = {{"a", "GET", 200},  {"a", "GET", 200}, {"a", "GET", 404}, {"b", "GET", 200},
                      {"a", "POST", 200}, {"a", "GET", 200}, {"a", "GET", 201}, {"b", "GET", 200}};
  std::string route;  // a fresh string per call: the series must not depend on the pointer
  for (const Req& r : reqs) {
    route = r.route;
    m.record_request(route, r.method, r.status, 1'000'000);
  }
  auto s = m.snapshot();
  using K = std::tuple<std::string, std::string, int>;
  EXPECT_EQ(s.requests.size(), 5u);
  EXPECT_EQ(s.requests.at(K{"a", "GET", 200}), 3u);
  EXPECT_EQ(s.requests.at(K{"a", "GET", 404}), 1u);
  EXPECT_EQ(s.requests.at(K{"a", "GET", 201}), 1u);
  EXPECT_EQ(s.requests.at(K{"a", "POST", 200}), 1u);
  EXPECT_EQ(s.requests.at(K{"b", "GET", 200}), 2u);
  // Latency by status class: 200 and 201 share the 2xx histogram.
  EXPECT_EQ(s.latency.at(K{"a", "GET", 2}).count, 4u);
  EXPECT_EQ(s.latency.at(K{"a", "GET", 4}).count, 1u);
  EXPECT_EQ(s.latency.at(K{"b", "GET", 2}).count, 2u);
  EXPECT_EQ(s.latency.at(K{"a", "POST", 2}).count, 1u);
}

// A sample equal to a bound lands in that bound's bucket (Prometheus' le), one past it in the
// next, past the last bound in +Inf; the count is the buckets' sum and the sum is in seconds.
TEST(LiveHistogram, BucketsAreInclusiveUpperBounds) {
  LiveHistogram h;
  h.observe_ns(0);
  h.observe_ns(100'000);  // 0.0001 s: the first bound
  h.observe_ns(100'001);
  h.observe_ns(10'000'000'000);  // 10 s: the last bound
  h.observe_ns(10'000'000'001);
  const Histogram r = h.read();
  EXPECT_EQ(r.counts[0], 2u);
  EXPECT_EQ(r.counts[1], 1u);
  EXPECT_EQ(r.counts[kBuckets.size() - 1], 1u);
  EXPECT_EQ(r.counts[kBuckets.size()], 1u);
  EXPECT_EQ(r.count, 5u);
  EXPECT_DOUBLE_EQ(r.sum, 20.000200002);
  for (size_t i = 0; i < kBuckets.size(); ++i)
    EXPECT_EQ(kBucketsNs[i], static_cast<uint64_t>(std::llround(kBuckets[i] * 1e9))) << i;
}

// The worker's thread counts without a lock while another thread reads: counts seen by the reader
// only grow, new series appear while it walks the maps (inserted under the lock), and once the
// worker is done nothing is lost, in the counters, the buckets or the sums.
TEST(WorkerMetrics, SnapshotsWhileTheWorkerCounts) {
  WorkerMetrics m;
  constexpr int kRequests = 200'000, kRoutes = 64;
  std::atomic<bool> done{false};
  std::thread worker([&] {
    std::string route;
    for (int i = 0; i < kRequests; ++i) {
      // A new route every 3,125 requests: series are inserted while the reader walks the maps.
      route = "r" + std::to_string((i / 3125) % kRoutes);
      m.record_request(route, "GET", 200, static_cast<uint64_t>(i % 1000) * 1000);
      if (i % 7 == 0) m.record_query("user_context", 50'000);
    }
    done = true;
  });
  using K = std::tuple<std::string, std::string, int>;
  uint64_t last_total = 0, last_hist = 0;
  int reads = 0;
  while (!done || reads == 0) {
    auto s = m.snapshot();
    uint64_t total = 0, hist = 0;
    for (const auto& [k, v] : s.requests)
      total += v;
    for (const auto& [k, h] : s.latency)
      hist += h.count;
    EXPECT_GE(total, last_total);
    EXPECT_GE(hist, last_hist);
    last_total = total;
    last_hist = hist;
    ++reads;
  }
  worker.join();
  auto s = m.snapshot();
  uint64_t total = 0;
  for (const auto& [k, v] : s.requests)
    total += v;
  EXPECT_EQ(total, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(s.requests.size(), static_cast<size_t>(kRoutes));
  EXPECT_EQ(s.requests.at(K{"r0", "GET", 200}), 3125u);
  // Route r0: requests 0..3124, latencies (i % 1000) µs: 3 x (0+..+999) + (0+..+124) µs.
  const Histogram& r0 = s.latency.at(K{"r0", "GET", 2});
  EXPECT_EQ(r0.count, 3125u);
  EXPECT_DOUBLE_EQ(r0.sum, (3 * 499'500 + 7'750) * 1e-6);
  EXPECT_EQ(r0.counts[0], 3u * 101 + 101);  // up to 100 µs: 0..100 in each of the 4 runs
  const Histogram& q = s.upstream.at("user_context");
  EXPECT_EQ(q.count, static_cast<uint64_t>((kRequests + 6) / 7));
  EXPECT_DOUBLE_EQ(q.sum, static_cast<double>(q.count) * 50e-6);
  EXPECT_GT(reads, 0);
}

}  // namespace
}  // namespace zonegate::metrics
