// The replicas' lag, measured by the proxy (docs/ARCHITECTURE.md, "Replicas"): one connection to
// the primary and one to each replica, on the main loop, every routing.check_interval. The
// primary's WAL insert position against each replica's replay position gives the lag in bytes;
// the time since the replica's last replayed commit (0 once it has replayed everything it
// received and nothing is left) gives it in time. What it saw is published in atomics the
// workers read when they choose where a read goes; the primary's positions also feed the
// response cache, which caches a replica's answer only when the replica had replayed past the
// latest invalidation.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/backoff.hpp"
#include "config/config.hpp"
#include "pg/connection.hpp"
#include "upstream/replica_choice.hpp"

namespace zonegate::api {

class ReplicaMonitor {
 public:
  // One replica as the workers see it; counters are written by the workers.
  struct Replica {
    std::string name;
    std::atomic<bool> reachable{false};
    std::atomic<uint64_t> replay_lsn{0};
    std::atomic<int64_t> lag_bytes{-1}, lag_ms{-1}, checked_at_ms{0};
    std::atomic<int64_t> reads{0};      // reads it served
    std::atomic<int64_t> fallbacks{0};  // reads it failed that the primary then answered
    mutable std::mutex mu;
    std::string error;  // why it is not reachable (under mu)
    // A snapshot for upstream::choose_replica.
    upstream::ReplicaStatus status() const;
  };

  // `primary` and `replicas` must outlive the monitor; `now_ms` is a monotonic clock;
  // `primary_lsn` is told each position of the primary with the time its query was sent.
  ReplicaMonitor(const config::DatabaseConfig& primary,
                 const std::vector<config::DatabaseConfig>& replicas,
                 const std::vector<std::string>& names, const config::RoutingConfig& routing,
                 std::function<int64_t()> now_ms,
                 std::function<void(upstream::Lsn, int64_t sampled_ms)> primary_lsn);
  ~ReplicaMonitor();
  // Connects and measures on `loop` (the main loop) from now on.
  void start(uv_loop_t* loop);
  void stop();
  Replica& replica(size_t i) { return *replicas_[i]; }
  const Replica& replica(size_t i) const { return *replicas_[i]; }
  size_t size() const { return replicas_.size(); }
  upstream::Lsn primary_lsn() const { return primary_lsn_.load(std::memory_order_relaxed); }

 private:
  // A monitoring connection that reconnects with backoff.
  struct Link {
    const config::DatabaseConfig* db = nullptr;
    std::string app_name;
    pg::Connection* conn = nullptr;
    bool in_flight = false;
    int64_t sent_ms = 0;
    Backoff backoff{100, 2'000};
    uv_timer_t retry{};
    ReplicaMonitor* owner = nullptr;
    int index = -1;  // -1: the primary
  };
  static void on_tick(uv_timer_t* t);
  static void on_retry(uv_timer_t* t);
  void tick();
  void connect(Link& l);
  void probe_primary();
  void probe_replica(size_t i);
  void unreachable(size_t i, const std::string& why);

  uv_loop_t* loop_ = nullptr;
  config::RoutingConfig routing_;
  std::function<int64_t()> now_ms_;
  std::function<void(upstream::Lsn, int64_t)> on_primary_lsn_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::unique_ptr<Link>> links_;  // [0] the primary, then one per replica
  std::atomic<uint64_t> primary_lsn_{0};
  uv_timer_t tick_{};
  bool stopping_ = false;
};

}  // namespace zonegate::api
