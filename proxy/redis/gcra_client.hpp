// One worker's connection to Redis for the rate-limit policies with `store: redis`: a GCRA
// decision made by one Lua script in Redis (the approach of redis-cell and Envoy's global rate
// limit service), so every proxy draws on one budget. hiredis' async API runs on the worker's own
// libuv loop (its libuv adapter); the client reconnects with backoff, and times commands out on its
// own clock (hiredis 0.14 has no command timeout): a decision not back in time is made locally by
// the caller (docs/ARCHITECTURE.md, "Global rate limits").
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "common/backoff.hpp"
#include "config/config.hpp"
#include "resilience/rate_limit.hpp"

struct redisAsyncContext;

namespace zonegate::redis {

// The Lua script: GCRA on one key with Redis' own clock (TIME), so proxies' clocks never
// disagree. ARGV: emission interval T and tolerance tau, in microseconds. Returns
// {allowed 0/1, remaining, retry_after_us, reset_us}; the TAT expires with the bucket.
extern const char* const kGcraScript;

class GcraClient {
 public:
  enum class Outcome { kOk, kError, kTimeout, kDown };
  // `decision` is meaningful for kOk only. Called exactly once per decide(), on the loop thread.
  using Done = std::function<void(Outcome, const resilience::RateDecision& decision)>;

  GcraClient(uv_loop_t* loop, const config::RedisConfig& cfg);
  ~GcraClient();
  GcraClient(const GcraClient&) = delete;
  GcraClient& operator=(const GcraClient&) = delete;

  // Told when the client becomes ready (true) and when it stops being ready (false).
  void set_state_listener(std::function<void(bool)> fn) { on_state_ = std::move(fn); }
  void start();
  // Closes the connection and fails what is in flight (kDown); the loop can then end.
  void stop();
  // Connected, authenticated and the script loaded.
  bool ready() const { return ready_; }
  // One admission of `key` (the policy name and the key, joined by the caller) at the rate and
  // burst given. Calls done(kDown) at once when not ready.
  void decide(const std::string& key, int64_t interval_us, int64_t tolerance_us, Done done);
  // Fails commands older than the timeout (kTimeout); the worker's tick calls it.
  void expire(uint64_t now_ms);

  struct Stats {
    int64_t ok = 0, errors = 0, timeouts = 0, down = 0, connects = 0, disconnects = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Pending {
    uint64_t id;
    uint64_t deadline_ms;
    Done done;
  };
  static void on_connect(const redisAsyncContext* c, int status);
  static void on_disconnect(const redisAsyncContext* c, int status);
  static void on_setup_reply(redisAsyncContext* c, void* reply, void* privdata);
  static void on_decide_reply(redisAsyncContext* c, void* reply, void* privdata);
  static void on_retry(uv_timer_t* t);
  void connect();
  void lost(const char* why);
  void schedule_reconnect();
  // Takes the pending command `id` out; false when it timed out already.
  bool take(uint64_t id, Done& done);
  void finish(uint64_t id, Outcome o, const resilience::RateDecision& d);

  uv_loop_t* loop_;
  config::RedisConfig cfg_;
  redisAsyncContext* ctx_ = nullptr;
  bool ready_ = false;
  bool stopping_ = false;
  int setup_left_ = 0;  // AUTH, SELECT, SCRIPT LOAD replies still to come
  uint64_t connect_started_ms_ = 0;
  std::string sha_;
  Backoff backoff_;
  uv_timer_t retry_{};
  uint64_t next_id_ = 1;
  std::deque<uint64_t> order_;  // ids by deadline (one timeout for all: FIFO)
  std::unordered_map<uint64_t, Pending> pending_;
  Stats stats_;
  std::function<void(bool)> on_state_;
};

}  // namespace zonegate::redis
