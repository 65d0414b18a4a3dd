// Metrics registry; see metrics.hpp.
#include "admin/metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace zonegate::metrics {

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < counts.size(); ++i)
    counts[i] += o.counts[i];
  sum += o.sum;
  count += o.count;
}

Histogram Histogram::minus(const Histogram& e) const {
  Histogram d;
  for (size_t i = 0; i < counts.size(); ++i)
    d.counts[i] = counts[i] - std::min(counts[i], e.counts[i]);
  d.sum = sum - e.sum;
  d.count = count - std::min(count, e.count);
  return d;
}

double Histogram::quantile(double q) const {
  if (count == 0) return 0;
  double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(seen + counts[i]) >= rank) {
      double lo = i == 0 ? 0 : kBuckets[i - 1];
      double hi = i < kBuckets.size() ? kBuckets[i] : kBuckets.back() * 2;
      double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return lo + (hi - lo) * std::clamp(within, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return kBuckets.back();
}

void LiveHistogram::observe_ns(uint64_t ns) {
  size_t i = 0;
  while (i < kBucketsNs.size() && ns > kBucketsNs[i])
    ++i;
  counts_[i].store(counts_[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_ns_.store(sum_ns_.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
}

Histogram LiveHistogram::read() const {
  Histogram h;
  for (size_t i = 0; i < counts_.size(); ++i) {
    h.counts[i] = counts_[i].load(std::memory_order_relaxed);
    h.count += h.counts[i];
  }
  h.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return h;
}

namespace {

// The value of a (route, method, n) series, created on first use under `mu` (readers walk the
// map under it); no string copies when it exists. Called by the map's writing thread only, so
// the lookup itself needs no lock.
template <typename Map>
typename Map::mapped_type& series(std::mutex& mu, Map& m, std::string_view route,
                                  std::string_view method, int n) {
  auto it = m.find(std::make_tuple(route, method, n));
  if (it == m.end()) {
    std::lock_guard<std::mutex> lock(mu);
    it = m.try_emplace(std::make_tuple(std::string(route), std::string(method), n)).first;
  }
  return it->second;
}

}  // namespace

void WorkerMetrics::record_request(std::string_view route, std::string_view method, int status,
                                   uint64_t latency_ns) {
  if (status != last_.status || route != last_.route || method != last_.method) {
    last_.count = &series(mu_, requests_, route, method, status);
    last_.latency = &series(mu_, latency_, route, method, status / 100);
    last_.route = route;
    last_.method = method;
    last_.status = status;
  }
  last_.count->store(last_.count->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  last_.latency->observe_ns(latency_ns);
}

void WorkerMetrics::record_query(const std::string& kind, uint64_t ns) {
  auto it = upstream_.find(std::string_view(kind));
  if (it == upstream_.end()) {
    std::lock_guard<std::mutex> lock(mu_);
    it = upstream_.try_emplace(kind).first;
  }
  it->second.observe_ns(ns);
}

void WorkerMetrics::set_pool(const PoolSnapshot& p, int64_t open_connections) {
  std::lock_guard<std::mutex> lock(mu_);
  pool_ = p;
  open_connections_ = open_connections;
}

WorkerMetrics::Snapshot WorkerMetrics::snapshot() const {
  Snapshot s;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, v] : requests_)
    s.requests.emplace(k, v.load(std::memory_order_relaxed));
  for (const auto& [k, h] : latency_)
    s.latency.emplace(k, h.read());
  for (const auto& [k, h] : upstream_)
    s.upstream.emplace(k, h.read());
  s.pool = pool_;
  s.open_connections = open_connections_;
  return s;
}

Registry::Registry(int workers) {
  for (int i = 0; i < workers; ++i)
    workers_.push_back(std::make_unique<WorkerMetrics>());
}

void Registry::record_invalidation_lag(double seconds) {
  std::lock_guard<std::mutex> lock(lag_mu_);
  lag_.observe_ns(seconds > 0 ? static_cast<uint64_t>(std::llround(seconds * 1e9)) : 0);
}

Registry::Totals Registry::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    WorkerMetrics::Snapshot s = w->snapshot();
    for (const auto& [k, v] : s.requests)
      t.requests[k] += v;
    for (const auto& [k, h] : s.latency) {
      t.latency[k].merge(h);
      t.all_latency.merge(h);
    }
    for (const auto& [k, h] : s.upstream)
      t.upstream[k].merge(h);
    t.pool.ready += s.pool.ready;
    t.pool.busy += s.pool.busy;
    t.pool.connecting += s.pool.connecting;
    t.pool.in_flight += s.pool.in_flight;
    t.pool.waiting += s.pool.waiting;
    t.pool.max_wait_ms = std::max(t.pool.max_wait_ms, s.pool.max_wait_ms);
    t.pool.timeouts += s.pool.timeouts;
    t.pool.rejected += s.pool.rejected;
    t.pool.reconnects += s.pool.reconnects;
    t.pool.jobs += s.pool.jobs;
    t.pool.syncs += s.pool.syncs;
    t.pool.resent += s.pool.resent;
    t.pool.cancels += s.pool.cancels;
    if (!s.pool.last_error.empty()) t.pool.last_error = s.pool.last_error;
    t.open_connections += s.open_connections;
  }
  t.invalidation_lag = lag_.read();
  return t;
}

namespace {

// Prometheus label values escape backslash, quote and newline.
std::string label(const std::string& v) {
  return label_value(v);
}

}  // namespace

void append_sample(std::string& out, const char* name, const char* type, const char* help,
                   const std::string& value, const std::string& labels) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += std::string(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + value + "\n";
}

namespace {

std::string num(double v) {
  return number_text(v);
}

void histogram(std::string& out, const std::string& name, const std::string& labels,
               const Histogram& h) {
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    std::string le = i < kBuckets.size() ? num(kBuckets[i]) : "+Inf";
    out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + num(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string Registry::render() const {
  Totals t = totals();
  std::string out;
  out +=
      "# HELP zonegate_http_requests_total HTTP requests answered, by route, method and status "
      "code.\n";
  out += "# TYPE zonegate_http_requests_total counter\n";
  for (const auto& [k, v] : t.requests) {
    const auto& [route, method, code] = k;
    out += "zonegate_http_requests_total{route=\"" + label(route) + "\",method=\"" + label(method) +
           "\",code=\"" + std::to_string(code) + "\"} " + std::to_string(v) + "\n";
  }
  out +=
      "# HELP zonegate_http_request_duration_seconds Time from the first byte of a request to its "
      "response being queued, by route, method and status class.\n";
  out += "# TYPE zonegate_http_request_duration_seconds histogram\n";
  for (const auto& [k, h] : t.latency) {
    const auto& [route, method, cls] = k;
    histogram(out, "zonegate_http_request_duration_seconds",
              "route=\"" + label(route) + "\",method=\"" + label(method) + "\",class=\"" +
                  std::to_string(cls) + "xx\"",
              h);
  }
  out +=
      "# HELP zonegate_upstream_query_duration_seconds Database round trip of a request's "
      "statements (send to Sync), by kind.\n";
  out += "# TYPE zonegate_upstream_query_duration_seconds histogram\n";
  for (const auto& [kind, h] : t.upstream) {
    histogram(out, "zonegate_upstream_query_duration_seconds", "kind=\"" + label(kind) + "\"", h);
  }
  out += "# HELP zonegate_pool_connections Database connections by state, all workers.\n";
  out += "# TYPE zonegate_pool_connections gauge\n";
  out += "zonegate_pool_connections{state=\"ready\"} " + std::to_string(t.pool.ready) + "\n";
  out += "zonegate_pool_connections{state=\"busy\"} " + std::to_string(t.pool.busy) + "\n";
  out +=
      "zonegate_pool_connections{state=\"connecting\"} " + std::to_string(t.pool.connecting) + "\n";
  append_sample(out, "zonegate_pool_in_flight", "gauge",
                "Requests sent to the database and not answered yet.",
                std::to_string(t.pool.in_flight));
  append_sample(out, "zonegate_pool_waiting", "gauge", "Requests queued for a database connection.",
                std::to_string(t.pool.waiting));
  append_sample(out, "zonegate_pool_max_wait_seconds", "gauge",
                "Longest current wait for a database connection.", num(t.pool.max_wait_ms / 1000));
  append_sample(out, "zonegate_pool_acquire_timeouts_total", "counter",
                "Requests failed by database.pool.acquire_timeout.",
                std::to_string(t.pool.timeouts));
  append_sample(out, "zonegate_pool_rejected_total", "counter",
                "Requests shed because database.pool.max_waiting were queued.",
                std::to_string(t.pool.rejected));
  append_sample(out, "zonegate_pool_reconnects_total", "counter",
                "Reconnection attempts after a database connection failed.",
                std::to_string(t.pool.reconnects));
  append_sample(out, "zonegate_pool_jobs_total", "counter", "Jobs submitted to the database pools.",
                std::to_string(t.pool.jobs));
  append_sample(out, "zonegate_pool_syncs_total", "counter",
                "Syncs sent to Postgres: one per batch of reads sent in one loop turn, one per job "
                "sent on its own.",
                std::to_string(t.pool.syncs));
  append_sample(out, "zonegate_pool_batch_resends_total", "counter",
                "Batched jobs sent again because another job of their batch failed.",
                std::to_string(t.pool.resent));
  append_sample(out, "zonegate_pool_cancels_total", "counter",
                "Cancel requests sent for queries whose request's deadline passed.",
                std::to_string(t.pool.cancels));
  out +=
      "# HELP zonegate_invalidation_lag_seconds Time from a change's statement end to its cache "
      "entries being dropped.\n";
  out += "# TYPE zonegate_invalidation_lag_seconds histogram\n";
  histogram(out, "zonegate_invalidation_lag_seconds", "", t.invalidation_lag);
  out += "# HELP zonegate_open_connections Client connections open.\n";
  out += "# TYPE zonegate_open_connections gauge\nzonegate_open_connections " +
         std::to_string(t.open_connections) + "\n";
  Text text;
  for (const Source* src : sources_)
    src->describe_metrics(text);
  out += text.out();
  return out;
}

void Registry::sample(double cache_served, double cache_total, double now_s) {
  Totals t = totals();
  Sample s;
  s.t = now_s;
  if (have_last_) {
    Histogram d = t.all_latency.minus(last_.all_latency);
    uint64_t errors = 0, total = 0;
    for (const auto& [k, v] : t.requests) {
      auto it = last_.requests.find(k);
      uint64_t delta = v - (it == last_.requests.end() ? 0 : std::min(v, it->second));
      total += delta;
      if (std::get<2>(k) >= 500) errors += delta;
    }
    s.rps = static_cast<double>(total);
    s.error_rate = total == 0 ? 0 : static_cast<double>(errors) / static_cast<double>(total);
    s.p50_ms = d.quantile(0.5) * 1000;
    s.p95_ms = d.quantile(0.95) * 1000;
    s.p99_ms = d.quantile(0.99) * 1000;
    double served = cache_served - last_cache_served_, all = cache_total - last_cache_total_;
    s.hit_rate = all <= 0 ? 0 : served / all;
    Histogram lag = t.invalidation_lag.minus(last_.invalidation_lag);
    s.invalidation_lag_ms = lag.count == 0 ? 0 : lag.sum / static_cast<double>(lag.count) * 1000;
  }
  s.pool_busy = t.pool.busy;
  s.pool_ready = t.pool.ready;
  s.pool_waiting = t.pool.waiting;
  s.open_connections = static_cast<double>(t.open_connections);
  last_cache_served_ = cache_served;
  last_cache_total_ = cache_total;
  last_ = std::move(t);
  have_last_ = true;
  std::lock_guard<std::mutex> lock(series_mu_);
  series_.push_back(s);
  while (series_.size() > 300)
    series_.pop_front();
}

std::vector<Sample> Registry::series() const {
  std::lock_guard<std::mutex> lock(series_mu_);
  return std::vector<Sample>(series_.begin(), series_.end());
}

int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  long long pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return 0;
  return static_cast<int64_t>(resident) * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace zonegate::metrics
