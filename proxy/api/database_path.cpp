// The database path of a request; see database_path.hpp.
#include "api/database_path.hpp"

#include "common/log.hpp"
#include "resilience/classify.hpp"

namespace zonegate::api {

namespace {

pg::Result refused(pg::Failure failure, const char* code, std::string message, std::string detail,
                   int64_t retry_after_ms) {
  pg::Result r;
  r.failure = failure;
  r.sqlstate = code;
  r.message = std::move(message);
  r.detail = std::move(detail);
  r.retry_after_ms = retry_after_ms;
  return r;
}

// A per-request infrastructure failure the breaker counts. Connection-level failures (08*,
// 57P0x) are not counted per request: the pool reports failed connect attempts once each, and
// a lost connection whose replacement connects is no outage (pg_terminate_backend of every
// pool connection must not open the breaker while retries succeed on new ones).
bool counts_for_breaker(const pg::Result& r) {
  if (r.failure != pg::Failure::kSql) return false;
  const std::string& s = r.sqlstate;
  if (s.rfind("08", 0) == 0 || s.rfind("57P0", 0) == 0) return false;
  return resilience::is_infrastructure_sqlstate(s);
}

}  // namespace

struct DatabasePath::Call {
  std::string route;
  pg::Job job;  // the template every attempt copies (its done is moved out)
  std::function<void(pg::Result)> done;
  resilience::Deadline deadline;
  int retries = 0;
  bool holds_retry_slot = false;
};

struct DatabasePath::RetryTimer {
  uv_timer_t timer;
  DatabasePath* path;
  std::shared_ptr<Call> call;
};

DatabasePath::DatabasePath(uv_loop_t* loop, pg::Pool& pool, const config::ResilienceConfig& cfg,
                           resilience::CircuitBreaker& breaker, PathStats* stats)
    : loop_(loop),
      pool_(pool),
      cfg_(cfg),
      breaker_(breaker),
      budget_(cfg.retries.budget_ratio, cfg.retries.budget_min),
      limit_(cfg.concurrency),
      stats_(stats) {}

int64_t DatabasePath::now_ms() {
  return static_cast<int64_t>(uv_hrtime() / 1'000'000);
}

void DatabasePath::submit(const std::string& route, pg::Job job) {
  auto call = std::make_shared<Call>();
  call->route = route;
  call->done = std::move(job.done);
  job.done = nullptr;
  call->job = std::move(job);
  auto it = cfg_.deadlines.find(route);
  int64_t timeout = it != cfg_.deadlines.end() ? it->second : cfg_.deadline_ms;
  call->deadline = resilience::Deadline::after(now_ms(), timeout);
  budget_.request_started();
  attempt(call);
}

// The stages, in order. Each refusal answers at once; nothing queues past its deadline.
void DatabasePath::attempt(const std::shared_ptr<Call>& call) {
  int64_t now = now_ms();
  // 1. deadline: what is left of the route's deadline bounds the pool wait and the query.
  if (call->deadline.expired(now)) {
    ++stats_->deadline_expired;
    {
      std::lock_guard<std::mutex> lock(stats_->mu);
      ++stats_->deadlines_by[call->route];
    }
    finish(call, refused(pg::Failure::kDeadline, "57014",
                         "the request's deadline passed before the database answered", "", 0));
    return;
  }
  // 2. breaker: while the upstream is known to be down, refuse at once.
  if (!breaker_.allow()) {
    ++stats_->breaker_rejected;
    resilience::CircuitBreaker::Stats b = breaker_.stats();
    finish(call, refused(pg::Failure::kBreakerOpen, "PGRST001",
                         "the database is unavailable (circuit breaker " +
                             std::string(resilience::breaker_state_name(b.state)) + ")",
                         b.last_error, breaker_.retry_after_ms()));
    return;
  }
  // 3. shed: past the adaptive concurrency limit, refuse at once rather than queue.
  if (!limit_.try_acquire()) {
    ++stats_->shed;
    finish(call, refused(pg::Failure::kShed, "53000",
                         "the proxy is shedding load: too many requests in flight to the database",
                         "resilience.concurrency limit " + std::to_string(limit_.limit()), 1000));
    return;
  }
  // 4. pool: queued at most until the deadline, then sent.
  pg::Job job = call->job;
  job.deadline_ns =
      uv_hrtime() + static_cast<uint64_t>(call->deadline.remaining_ms(now)) * 1'000'000ULL;
  job.done = [this, call](pg::Result r) { on_result(call, std::move(r)); };
  pool_.submit(std::move(job));
}

void DatabasePath::on_result(const std::shared_ptr<Call>& call, pg::Result r) {
  bool dropped = r.failure == pg::Failure::kPoolTimeout || r.failure == pg::Failure::kPoolFull ||
                 r.failure == pg::Failure::kDeadline;
  limit_.release(static_cast<int64_t>((r.queued_ns + r.upstream_ns) / 1000), dropped);
  record_breaker(r);
  if (r.failure == pg::Failure::kDeadline) {
    ++stats_->deadline_expired;
    std::lock_guard<std::mutex> lock(stats_->mu);
    ++stats_->deadlines_by[call->route];
  }
  if (r.fail_fast) ++stats_->fail_fast;
  if (call->holds_retry_slot) {
    budget_.retry_finished();
    call->holds_retry_slot = false;
  }
  // 5. retry: a transient failure of idempotent (or never sent) work, within budget and deadline.
  if (!r.ok() && retry_later(call, r)) return;
  finish(call, std::move(r));
}

void DatabasePath::record_breaker(const pg::Result& r) {
  if (r.ok() || (r.failure == pg::Failure::kSql && !counts_for_breaker(r))) {
    breaker_.record_success();  // the database answered (a user error is an answer)
  } else if (counts_for_breaker(r)) {
    breaker_.record_failure(r.sqlstate + ": " + r.message);
  }
}

bool DatabasePath::retry_later(const std::shared_ptr<Call>& call, const pg::Result& r) {
  switch (r.failure) {
    case pg::Failure::kSql:
    case pg::Failure::kConnection:
      break;
    default:
      return false;  // the proxy's own refusals and timeouts: trying again would not help
  }
  // A refusal because the last connect failed: a retry within milliseconds would fail alike.
  if (shutting_down_ || r.fail_fast) return false;
  resilience::AttemptOutcome o;
  o.connection_lost = r.failure == pg::Failure::kConnection || r.interrupted;
  o.sent = r.sent;
  o.sqlstate = r.sqlstate;
  int64_t now = now_ms();
  resilience::RetryDecision d = resilience::decide_retry(
      cfg_.retries, o, call->job.read_only, call->retries, call->deadline, now, rng_(), budget_);
  if (!d.retry) {
    if (std::string_view(d.why_not) == "budget") ++stats_->budget_exhausted;
    return false;
  }
  ++call->retries;
  call->holds_retry_slot = true;
  ++stats_->retries;
  {
    std::lock_guard<std::mutex> lock(stats_->mu);
    ++stats_
          ->retries_by[{call->route, resilience::retry_reason_label(resilience::retry_reason(o))}];
  }
  auto* t = new RetryTimer{{}, this, call};
  uv_timer_init(loop_, &t->timer);
  t->timer.data = t;
  timers_.insert(t);
  uv_timer_start(
      &t->timer,
      [](uv_timer_t* h) {
        auto* rt = static_cast<RetryTimer*>(h->data);
        rt->path->timers_.erase(rt);
        std::shared_ptr<Call> c = std::move(rt->call);
        uv_close(reinterpret_cast<uv_handle_t*>(h),
                 [](uv_handle_t* x) { delete static_cast<RetryTimer*>(x->data); });
        rt->path->attempt(c);
      },
      static_cast<uint64_t>(d.delay_ms), 0);
  return true;
}

void DatabasePath::finish(const std::shared_ptr<Call>& call, pg::Result r) {
  if (call->holds_retry_slot) {
    budget_.retry_finished();
    call->holds_retry_slot = false;
  }
  budget_.request_finished();
  auto done = std::move(call->done);
  call->done = nullptr;
  if (done) done(std::move(r));
}

void DatabasePath::tick() {
  if (breaker_.probe_due()) send_probe();
  stats_->limit.store(limit_.limit(), std::memory_order_relaxed);
  stats_->in_flight.store(limit_.in_flight(), std::memory_order_relaxed);
}

// HALF_OPEN's probe: a health query, never a user's request, with its own timeout.
void DatabasePath::send_probe() {
  static const pg::Statement probe = pg::make_statement("SELECT 1", {});
  pg::Job job;
  job.statements.push_back(probe);
  job.read_only = true;
  job.deadline_ns =
      uv_hrtime() + static_cast<uint64_t>(cfg_.breaker.probe_timeout_ms) * 1'000'000ULL;
  job.done = [this](const pg::Result& r) {
    breaker_.probe_result(r.ok(), r.ok() ? "" : r.sqlstate + ": " + r.message);
  };
  pool_.submit(std::move(job));
}

void DatabasePath::shutdown() {
  shutting_down_ = true;
  std::unordered_set<RetryTimer*> timers = std::move(timers_);
  timers_.clear();
  for (RetryTimer* t : timers) {
    std::shared_ptr<Call> c = std::move(t->call);
    uv_timer_stop(&t->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->timer),
             [](uv_handle_t* x) { delete static_cast<RetryTimer*>(x->data); });
    finish(c, refused(pg::Failure::kShutdown, "57P01", "the proxy is shutting down", "", 0));
  }
}

ResilienceMetrics::ResilienceMetrics(const resilience::CircuitBreaker& breaker, int workers)
    : breaker_(breaker) {
  for (int i = 0; i < workers; ++i)
    workers_.push_back(std::make_unique<PathStats>());
}

ResilienceMetrics::Totals ResilienceMetrics::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    t.retries += w->retries.load();
    t.budget_exhausted += w->budget_exhausted.load();
    t.deadline_expired += w->deadline_expired.load();
    t.breaker_rejected += w->breaker_rejected.load();
    t.shed += w->shed.load();
    t.fail_fast += w->fail_fast.load();
    t.limit += w->limit.load();
    t.in_flight += w->in_flight.load();
  }
  return t;
}

void ResilienceMetrics::describe_metrics(metrics::Text& out) const {
  std::map<std::pair<std::string, std::string>, int64_t> retries;
  std::map<std::string, int64_t> deadlines;
  for (const auto& w : workers_) {
    std::lock_guard<std::mutex> lock(w->mu);
    for (const auto& [k, v] : w->retries_by)
      retries[k] += v;
    for (const auto& [k, v] : w->deadlines_by)
      deadlines[k] += v;
  }
  out.family("zonegate_retries_total", "counter",
             "Requests tried again after a transient failure, by route and reason.");
  for (const auto& [k, v] : retries) {
    out.sample("zonegate_retries_total",
               "route=\"" + metrics::label_value(k.first) + "\",reason=\"" + k.second + "\"", v);
  }
  out.family("zonegate_deadline_exceeded_total", "counter",
             "Requests answered 504 because their deadline passed, by route.");
  for (const auto& [k, v] : deadlines)
    out.sample("zonegate_deadline_exceeded_total", "route=\"" + metrics::label_value(k) + "\"", v);
  Totals t = totals();
  out.single("zonegate_retry_budget_exhausted_total", "counter",
             "Retries not made because the retry budget was used up.", t.budget_exhausted);
  out.family("zonegate_shed_total", "counter", "Requests refused at once to shed load.");
  out.sample("zonegate_shed_total", "reason=\"concurrency_limit\"", t.shed);
  out.single("zonegate_fail_fast_total", "counter",
             "Requests refused at once because the last connect attempt failed.", t.fail_fast);
  out.single("zonegate_concurrency_limit", "gauge",
             "Adaptive concurrency limit, summed over workers.", t.limit);
  out.single("zonegate_concurrency_in_flight", "gauge",
             "Requests in the database stage, summed over workers.", t.in_flight);
  resilience::CircuitBreaker::Stats b = breaker_.stats();
  std::string up = "upstream=\"" + metrics::label_value(breaker_.name()) + "\"";
  out.family("zonegate_breaker_state", "gauge", "Circuit breaker state (1 for the current one).");
  for (auto s : {resilience::BreakerState::kClosed, resilience::BreakerState::kOpen,
                 resilience::BreakerState::kHalfOpen}) {
    out.sample("zonegate_breaker_state",
               up + ",state=\"" + resilience::breaker_state_name(s) + "\"",
               int64_t{b.state == s ? 1 : 0});
  }
  out.family("zonegate_breaker_transitions_total", "counter",
             "Circuit breaker transitions, by the state entered.");
  out.sample("zonegate_breaker_transitions_total", up + ",to=\"open\"", b.opened);
  out.sample("zonegate_breaker_transitions_total", up + ",to=\"half_open\"", b.half_opened);
  out.sample("zonegate_breaker_transitions_total", up + ",to=\"closed\"", b.closed);
  out.family("zonegate_breaker_rejected_total", "counter",
             "Requests refused at once while the breaker was not closed.");
  out.sample("zonegate_breaker_rejected_total", up, b.rejected);
}

}  // namespace zonegate::api
