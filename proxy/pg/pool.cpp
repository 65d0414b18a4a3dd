// The per-worker pool; see pool.hpp.
#include "pg/pool.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace zonegate::pg {

namespace {
constexpr uint64_t kTickMs = 50;

// A job's result when the pool, not the server, fails it.
Result pool_failure(Failure failure, const char* sqlstate, const char* message) {
  Result r;
  r.failure = failure;
  r.sqlstate = sqlstate;
  r.message = message;
  return r;
}

Result shutdown_result() {
  return pool_failure(Failure::kShutdown, "57P01", "the proxy is shutting down");
}
}  // namespace

Pool::Pool(uv_loop_t* loop, const config::DatabaseConfig& cfg)
    : loop_(loop),
      cfg_(cfg),
      limits_(cfg.pool),
      reconnect_backoff_(cfg.pool.reconnect_min_ms, cfg.pool.reconnect_max_ms) {
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  uv_timer_init(loop_, &reconnect_timer_);
  reconnect_timer_.data = this;
  uv_idle_init(loop_, &next_turn_);
  next_turn_.data = this;
}

Pool::~Pool() = default;

void Pool::start() {
  uv_timer_start(&tick_, on_tick, kTickMs, kTickMs);
  for (int i = 0; i < limits_.min; ++i)
    open_connection();
}

int Pool::live_connections() const {
  int live = 0;
  for (const auto& c : conns_)
    live += c->state() != Connection::State::kClosing;
  return live;
}

void Pool::resize(const config::PoolConfig& p) {
  limits_.min = p.min;
  limits_.max = p.max;
  limits_.pipeline_depth = p.pipeline_depth;
  limits_.max_waiting = p.max_waiting;
  limits_.max_lifetime_ms = p.max_lifetime_ms;
  if (shutting_down_) return;
  int live = live_connections();
  // Fewer: idle connections close now, busy ones when their last job is done (on_job_done).
  for (auto& c : conns_) {
    if (live <= limits_.max) break;
    if (c->state() == Connection::State::kClosing || c->in_flight() != 0) continue;
    if (c->state() == Connection::State::kConnecting) continue;
    c->close(Failure::kShutdown);
    --live;
  }
  // More: up to the new minimum at once; beyond it, on demand as before.
  for (; live < limits_.min; ++live)
    open_connection();
  dispatch();
}

void Pool::open_connection() {
  Connection::Events ev;
  // A backend's first zonegate call compiles the zone tree (about 50 ms of CPU for 91,600
  // zones); done while connecting, no request waits behind it. Under load the first calls of
  // fresh connections took 1-4 s, with every request pipelined behind them waiting as long.
  static const Statement warm = make_statement("SELECT zonegate.zone_path(0)", {});
  ev.warmup = {warm};
  ev.on_ready = [this](Connection*) {
    reconnect_backoff_.reset();
    connect_failed_ = false;
    if (health_.connected) health_.connected();
    dispatch();
  };
  ev.on_job_done = [this](Connection* c) {
    // Replace a connection past its lifetime once it is idle; close one beyond a reduced
    // pool.max once it is idle.
    if (c->in_flight() == 0 &&
        (c->age_ms(uv_now(loop_)) > static_cast<uint64_t>(limits_.max_lifetime_ms) ||
         live_connections() > limits_.max)) {
      c->close(Failure::kShutdown);
      return;
    }
    dispatch();
  };
  ev.on_batch_open = [this](Connection*) { uv_idle_start(&next_turn_, on_next_turn); };
  ev.on_broken = [this](Connection* c, const std::string& why) {
    counters_.last_error = why;
    log::warn("database connection failed", {{"error", why}});
    if (!c->ever_ready()) {
      connect_failed_ = true;
      connect_error_ = why;
      if (health_.connect_failed) health_.connect_failed(why);
      if (!has_ready()) fail_waiting_fast();
      schedule_reconnect();
    } else {
      // A working connection was lost: its replacement is tried at once (the jobs it carried
      // are being retried); only failed attempts back off. Without this a retried request
      // waited up to pool.reconnect_min for a connection attempt to tell it anything.
      schedule_reconnect(!has_ready());
    }
  };
  ev.on_closed = [this](Connection* c) {
    counters_.syncs += static_cast<int64_t>(c->syncs());
    counters_.resent += static_cast<int64_t>(c->resent());
    counters_.cancels += static_cast<int64_t>(c->cancels());
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                [c](const std::unique_ptr<Connection>& p) { return p.get() == c; }),
                 conns_.end());
    if (!shutting_down_) {
      int live = 0;
      for (auto& p : conns_)
        live += p->state() != Connection::State::kClosing;
      bool want_one = !waiting_.empty() || recovering();
      if (live < limits_.min || (want_one && live == 0)) schedule_reconnect();
    }
  };
  conns_.push_back(std::make_unique<Connection>(loop_, cfg_, std::move(ev)));
  conns_.back()->start();
}

void Pool::schedule_reconnect(bool now) {
  if (shutting_down_) return;
  if (reconnect_pending_) {
    if (now) uv_timer_start(&reconnect_timer_, on_reconnect, 0, 0);
    return;
  }
  reconnect_pending_ = true;
  if (now) {
    uv_timer_start(&reconnect_timer_, on_reconnect, 0, 0);
    return;
  }
  // Full jitter, so proxies do not reconnect in lockstep after an outage. While the upstream
  // is known to be down, every recovery interval: recovery is seen within one.
  auto delay = static_cast<uint64_t>(recovering() ? recovery_backoff_.next_ms()
                                                  : reconnect_backoff_.next_ms());
  uv_timer_start(&reconnect_timer_, on_reconnect, delay, 0);
}

void Pool::hurry_reconnect() {
  bool recovering_now = recovering();
  bool recovered = was_recovering_ && !recovering_now;
  was_recovering_ = recovering_now;
  if (!reconnect_pending_) return;
  if (recovered) {
    // The database is back (a connect succeeded elsewhere): the backoff this pool grew during
    // the outage could otherwise keep it without a connection for up to reconnect_max.
    reconnect_backoff_.reset();
    schedule_reconnect(true);
    return;
  }
  if (!recovering_now) return;
  auto limit = static_cast<uint64_t>(health_.recovery_interval_ms);
  if (uv_timer_get_due_in(&reconnect_timer_) > limit) {
    uv_timer_start(&reconnect_timer_, on_reconnect,
                   static_cast<uint64_t>(recovery_backoff_.next_ms()), 0);
  }
}

Result Pool::fail_fast_result() const {
  Result r = pool_failure(Failure::kConnection, "08001", "cannot connect to the database");
  r.detail = connect_error_;
  r.fail_fast = true;
  return r;
}

void Pool::fail_waiting_fast() {
  std::deque<Job> waiting = std::move(waiting_);
  waiting_.clear();
  for (Job& job : waiting) {
    ++counters_.fail_fast;
    complete_later(std::move(job), fail_fast_result());
  }
}

void Pool::on_reconnect(uv_timer_t* t) {
  auto* pool = static_cast<Pool*>(t->data);
  pool->reconnect_pending_ = false;
  if (pool->shutting_down_) return;
  ++pool->counters_.reconnects;
  int live = 0;
  for (auto& p : pool->conns_)
    live += p->state() != Connection::State::kClosing;
  bool want_one = !pool->waiting_.empty() || pool->recovering();
  if (live < std::max(pool->limits_.min, want_one ? 1 : 0)) pool->open_connection();
}

Connection* Pool::pick() {
  Connection* best = nullptr;
  for (auto& c : conns_) {
    if (c->state() != Connection::State::kReady) continue;
    if (c->in_flight() >= static_cast<size_t>(limits_.pipeline_depth)) continue;
    if (best == nullptr || c->in_flight() < best->in_flight()) best = c.get();
  }
  return best;
}

void Pool::submit(Job job) {
  job.enqueued_ns = uv_hrtime();
  ++counters_.jobs;
  if (shutting_down_) {
    complete_later(std::move(job), shutdown_result());
    return;
  }
  if (connect_failed_ && !has_ready()) {
    // Nothing would answer: the last connect attempt failed. Fail now instead of waiting
    // for pool.acquire_timeout (PgBouncer's server_login_retry idea); keep reconnecting.
    ++counters_.fail_fast;
    complete_later(std::move(job), fail_fast_result());
    int live = 0;
    for (auto& p : conns_)
      live += p->state() != Connection::State::kClosing;
    if (live == 0) schedule_reconnect();
    return;
  }
  Connection* c = waiting_.empty() ? pick() : nullptr;
  // Grow while every connection is busy: pipelining shares one backend, more connections use
  // more of the server's cores.
  if (c == nullptr || c->in_flight() > 0) {
    int live = 0;
    bool idle_exists = false;
    for (auto& p : conns_) {
      if (p->state() == Connection::State::kClosing) continue;
      ++live;
      idle_exists = idle_exists ||
                    (p->state() == Connection::State::kReady && p->in_flight() == 0) ||
                    p->state() == Connection::State::kConnecting;
    }
    if (!idle_exists && live < limits_.max && !reconnect_pending_) open_connection();
  }
  if (c != nullptr) {
    c->send(std::move(job));
    return;
  }
  if (static_cast<int64_t>(waiting_.size()) >= limits_.max_waiting) {
    ++counters_.rejected;
    complete_later(std::move(job),
                   pool_failure(Failure::kPoolFull, "53300",
                                "too many requests are waiting for a database connection"));
    return;
  }
  waiting_.push_back(std::move(job));
}

void Pool::dispatch() {
  while (!waiting_.empty()) {
    Connection* c = pick();
    if (c == nullptr) return;
    Job job = std::move(waiting_.front());
    waiting_.pop_front();
    c->send(std::move(job));
  }
}

void Pool::complete_later(Job job, Result r) {
  // Callbacks never run inside submit(): the caller may hold state it is still building.
  deferred_.emplace_back(std::move(job), std::move(r));
  uv_idle_start(&next_turn_, on_next_turn);
}

void Pool::on_next_turn(uv_idle_t* h) {
  auto* pool = static_cast<Pool*>(h->data);
  uv_idle_stop(h);
  auto items = std::move(pool->deferred_);
  pool->deferred_.clear();
  for (auto& [job, r] : items) {
    if (job.done) job.done(std::move(r));
  }
  // Then the batches of this turn (including any those callbacks opened) get their Sync.
  // sync() may fail a connection, whose callbacks may submit jobs and open connections.
  std::vector<Connection*> all;
  for (auto& c : pool->conns_)
    all.push_back(c.get());
  for (Connection* c : all)
    c->sync();
}

void Pool::expire_waiting(uint64_t now_ns) {
  uint64_t limit = static_cast<uint64_t>(cfg_.pool.acquire_timeout_ms) * 1'000'000ULL;
  // Deadlines differ per job, so the whole queue is scanned (it is bounded by max_waiting).
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    bool timed_out = now_ns - it->enqueued_ns > limit;
    bool past_deadline = it->deadline_ns != 0 && now_ns >= it->deadline_ns;
    if (!timed_out && !past_deadline) {
      ++it;
      continue;
    }
    Job job = std::move(*it);
    it = waiting_.erase(it);
    Result r;
    if (past_deadline) {
      ++counters_.deadlines;
      r = pool_failure(Failure::kDeadline, "57014",
                       "the request's deadline passed while it waited for a connection");
    } else {
      ++counters_.timeouts;
      r = pool_failure(Failure::kPoolTimeout, "08000",
                       "no database connection became available within pool.acquire_timeout");
    }
    if (!counters_.last_error.empty()) r.detail = counters_.last_error;
    r.queued_ns = now_ns - job.enqueued_ns;
    complete_later(std::move(job), std::move(r));
  }
}

void Pool::on_tick(uv_timer_t* t) {
  auto* pool = static_cast<Pool*>(t->data);
  uint64_t now = uv_hrtime();
  pool->expire_waiting(now);
  std::vector<Connection*> all;
  for (auto& c : pool->conns_)
    all.push_back(c.get());
  for (Connection* c : all)
    c->expire(now);
  pool->hurry_reconnect();
  pool->dispatch();
}

bool Pool::has_ready() const {
  for (const auto& c : conns_) {
    if (c->state() == Connection::State::kReady) return true;
  }
  return false;
}

PoolStats Pool::stats() const {
  PoolStats s = counters_;
  for (const auto& c : conns_) {
    if (c->state() == Connection::State::kReady) {
      ++s.ready;
      if (c->in_flight() > 0) ++s.busy;
    } else if (c->state() == Connection::State::kConnecting) {
      ++s.connecting;
    }
    s.in_flight += static_cast<int>(c->in_flight());
    s.syncs += static_cast<int64_t>(c->syncs());
    s.resent += static_cast<int64_t>(c->resent());
    s.cancels += static_cast<int64_t>(c->cancels());
  }
  s.waiting = static_cast<int>(waiting_.size());
  if (!waiting_.empty())
    s.max_wait_ms = static_cast<double>(uv_hrtime() - waiting_.front().enqueued_ns) / 1e6;
  return s;
}

void Pool::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  std::deque<Job> waiting = std::move(waiting_);
  waiting_.clear();
  for (Job& job : waiting) {
    if (job.done) job.done(shutdown_result());
  }
  for (auto& [job, r] : deferred_) {
    if (job.done) job.done(std::move(r));
  }
  deferred_.clear();
  std::vector<Connection*> all;
  for (auto& c : conns_)
    all.push_back(c.get());
  for (Connection* c : all)
    c->close(Failure::kShutdown);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reconnect_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&next_turn_), nullptr);
}

}  // namespace zonegate::pg
