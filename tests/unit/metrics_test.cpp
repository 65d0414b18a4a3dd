// Per-worker request metrics: every request lands in its own (route, method, status) series and
// status-class histogram, also when consecutive requests alternate between series (the worker
// remembers the last series it used).
#include <gtest/gtest.h>

#include <string>
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
    m.record_request(route, r.method, r.status, 0.001);
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

}  // namespace
}  // namespace zonegate::metrics
