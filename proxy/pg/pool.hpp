// A worker's Postgres pool: up to pool.max pipelined connections, jobs sent to the least busy
// ready one (up to pool.pipeline_depth in flight each), a bounded wait queue with an acquisition
// timeout, reconnects with capped exponential backoff and full jitter, and connections replaced
// after pool.max_lifetime. Jobs that may share a Sync submitted in one loop turn share a Sync per
// connection, sent before the loop waits for events again. Everything runs on the worker's loop
// thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/backoff.hpp"
#include "config/config.hpp"
#include "pg/connection.hpp"
#include "pg/job.hpp"

namespace zonegate::pg {

struct PoolStats {
  int ready = 0;  // connections ready to take jobs
  int connecting = 0;
  int busy = 0;            // ready connections with jobs in flight
  int in_flight = 0;       // jobs sent, not finished
  int waiting = 0;         // jobs queued for a connection
  double max_wait_ms = 0;  // longest current wait in the queue
  int64_t timeouts = 0;    // jobs failed by pool.acquire_timeout
  int64_t rejected = 0;    // jobs refused because the queue was full
  int64_t reconnects = 0;
  int64_t jobs = 0;
  int64_t syncs = 0;      // Syncs sent to the server: jobs / syncs is the mean batch size
  int64_t resent = 0;     // batched jobs sent again because another job of their batch failed
  int64_t fail_fast = 0;  // jobs refused at once because the last connect attempt failed
  int64_t deadlines = 0;  // jobs failed by their deadline (queued or running)
  int64_t cancels = 0;    // cancel requests sent for running jobs past their deadline
  std::string last_error;
};

// What the pool tells its owner about the upstream's health (the circuit breaker listens).
struct PoolHealth {
  std::function<void(const std::string& error)> connect_failed;  // a connect attempt failed
  std::function<void()> connected;  // a connection completed its session setup
  // True while the upstream is known to be down (breaker open): reconnect every
  // recovery_interval_ms (jittered) instead of the capped exponential backoff.
  std::function<bool()> recovering;
  int64_t recovery_interval_ms = 250;
};

class Pool {
 public:
  Pool(uv_loop_t* loop, const config::DatabaseConfig& cfg);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Opens pool.min connections.
  void start();
  // Runs a job; its callback always runs exactly once, on this loop, never inside submit().
  void submit(Job job);
  // Fails queued and in-flight jobs, closes every connection and the timers.
  void shutdown();
  bool has_ready() const;
  // A reload changed the pool's sizes (min, max, pipeline_depth, max_waiting, max_lifetime):
  // connections are opened up to the new min at once; past a lower max, idle ones close now and
  // busy ones when their jobs are done. Queued and in-flight jobs are kept.
  void resize(const config::PoolConfig& p);
  const config::PoolConfig& limits() const { return limits_; }
  void set_health(PoolHealth h) {
    recovery_backoff_.set_limits(h.recovery_interval_ms, h.recovery_interval_ms);
    health_ = std::move(h);
  }
  PoolStats stats() const;

 private:
  static void on_tick(uv_timer_t* t);
  static void on_reconnect(uv_timer_t* t);
  // Runs deferred callbacks, then closes the batches opened during the turn.
  static void on_next_turn(uv_idle_t* h);
  void open_connection();
  void dispatch();
  void expire_waiting(uint64_t now_ns);
  void complete_later(Job job, Result r);
  // A reconnect after the backoff's delay, or on the next loop iteration when `now`.
  void schedule_reconnect(bool now = false);
  Connection* pick();
  // Fails every queued job at once with the last connect error (nothing to wait for).
  void fail_waiting_fast();
  Result fail_fast_result() const;
  bool recovering() const { return health_.recovering && health_.recovering(); }
  // While recovering, a reconnect scheduled far ahead by the backoff is brought forward; when
  // recovery ends (another pool's connect closed the breaker), a pending one is made at once.
  void hurry_reconnect();

  uv_loop_t* loop_;
  const config::DatabaseConfig& cfg_;
  config::PoolConfig limits_;  // cfg_.pool, with the sizes a reload changed
  int live_connections() const;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::deque<Job> waiting_;
  std::vector<std::pair<Job, Result>> deferred_;  // callbacks to run on the next loop turn
  uv_timer_t tick_{};
  uv_timer_t reconnect_timer_{};
  uv_idle_t next_turn_{};  // an idle handle: the loop does not wait for events while it is active
  bool shutting_down_ = false;
  bool reconnect_pending_ = false;
  bool was_recovering_ = false;  // recovering() at the last tick
  Backoff reconnect_backoff_;
  Backoff recovery_backoff_{250, 250};
  PoolHealth health_;
  bool connect_failed_ = false;  // the last connect attempt failed and none succeeded since
  std::string connect_error_;
  PoolStats counters_;  // pool-level counters, and those of closed connections
};

}  // namespace zonegate::pg
