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
  int64_t syncs = 0;   // Syncs sent to the server: jobs / syncs is the mean batch size
  int64_t resent = 0;  // batched jobs sent again because another job of their batch failed
  std::string last_error;
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
  void schedule_reconnect();
  Connection* pick();

  uv_loop_t* loop_;
  const config::DatabaseConfig& cfg_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::deque<Job> waiting_;
  std::vector<std::pair<Job, Result>> deferred_;  // callbacks to run on the next loop turn
  uv_timer_t tick_{};
  uv_timer_t reconnect_timer_{};
  uv_idle_t next_turn_{};  // an idle handle: the loop does not wait for events while it is active
  bool shutting_down_ = false;
  bool reconnect_pending_ = false;
  Backoff reconnect_backoff_;
  PoolStats counters_;  // pool-level counters, and those of closed connections
};

}  // namespace zonegate::pg
