// Application assembly; see app.hpp.
#include "api/app.hpp"

#include "api/control.hpp"
#include "api/errors.hpp"

#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::api {

namespace {

// Ties a pool's connect attempts to its upstream's circuit breaker.
void watch_with_breaker(pg::Pool& pool, resilience::CircuitBreaker& breaker,
                        int64_t probe_interval_ms) {
  pg::PoolHealth health;
  health.connect_failed = [&breaker](const std::string& why) {
    breaker.record_connect_failure(why);
  };
  health.connected = [&breaker] { breaker.reachable(); };
  health.recovering = [&breaker] { return breaker.state() != resilience::BreakerState::kClosed; };
  health.recovery_interval_ms = probe_interval_ms;
  pool.set_health(std::move(health));
}

// A failure of the replica itself (not of the request): the primary can answer instead.
bool replica_failure(const pg::Result& r) {
  switch (r.failure) {
    case pg::Failure::kConnection:
    case pg::Failure::kPoolTimeout:
    case pg::Failure::kPoolFull:
    case pg::Failure::kBreakerOpen:
    case pg::Failure::kShed:
      return true;
    case pg::Failure::kSql:
      // Class 08 (connection), 57P0x (shut down), 53 (resources): the replica is going away
      // or overloaded. Recovery conflicts (40001 on a standby) are retried by its own stages.
      return r.sqlstate.rfind("08", 0) == 0 || r.sqlstate.rfind("57P0", 0) == 0 ||
             r.sqlstate.rfind("53", 0) == 0;
    default:
      return false;
  }
}

}  // namespace

ReplicaPath::ReplicaPath(uv_loop_t* loop, const config::DatabaseConfig& db,
                         const config::ResilienceConfig& resilience, resilience::CircuitBreaker& b)
    : pool(loop, db), path(loop, pool, resilience, b, &stats), breaker(b) {
  watch_with_breaker(pool, breaker, resilience.probe_interval_ms);
  pool.start();
}

WorkerState::WorkerState(http::Worker& worker, const config::Config& cfg,
                         std::shared_ptr<const auth::Verifier> verifier,
                         cache::ResponseCache* cache, metrics::Registry* registry,
                         resilience::CircuitBreaker& breaker, PathStats* path_stats,
                         RateLimiter* rate_limiter, Upstreams* upstreams, const App* app)
    : pool(worker.loop(), cfg.database),
      path(worker.loop(), pool, cfg.resilience, breaker, path_stats),
      auth(std::move(verifier)),
      app_(app),
      generation_(app != nullptr ? app->generation() : 0),
      upstreams_(upstreams),
      worker_(worker),
      cache_(cache),
      registry_(registry) {
  watch_with_breaker(pool, breaker, cfg.resilience.probe_interval_ms);
  pool.start();
  for (size_t i = 0; upstreams_ != nullptr && i < upstreams_->dbs.size(); ++i) {
    replicas_.push_back(std::make_unique<ReplicaPath>(worker.loop(), upstreams_->dbs[i],
                                                      cfg.resilience, *upstreams_->breakers[i]));
  }
  if (rate_limiter != nullptr && rate_limiter->uses_redis()) {
    redis = std::make_unique<redis::GcraClient>(worker.loop(), cfg.rate_limit.redis);
    redis->set_state_listener([rate_limiter](bool ready) { rate_limiter->redis_state(ready); });
    redis->start();
  }
  uv_timer_init(worker.loop(), &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, on_tick, 25, 25);
}

void WorkerState::on_tick(uv_timer_t* t) {
  auto* ws = static_cast<WorkerState*>(t->data);
  if (ws->app_ != nullptr && ws->app_->generation() != ws->generation_) ws->follow_reload();
  ws->cache_->expire_waiters(&ws->worker_);
  ws->path.tick();
  for (auto& r : ws->replicas_)
    r->path.tick();
  if (ws->redis) ws->redis->expire(uv_now(ws->worker_.loop()));
  if (ws->registry_ != nullptr && ++ws->ticks_ % 4 == 0) {
    pg::PoolStats p = ws->pool.stats();
    metrics::PoolSnapshot snap;
    snap.ready = p.ready;
    snap.busy = p.busy;
    snap.connecting = p.connecting;
    snap.in_flight = p.in_flight;
    snap.waiting = p.waiting;
    snap.max_wait_ms = p.max_wait_ms;
    snap.timeouts = p.timeouts;
    snap.rejected = p.rejected;
    snap.reconnects = p.reconnects;
    snap.jobs = p.jobs;
    snap.syncs = p.syncs;
    snap.resent = p.resent;
    snap.cancels = p.cancels;
    snap.last_error = p.last_error;
    ws->registry_->worker(ws->worker_.index())
        .set_pool(snap, static_cast<int64_t>(ws->worker_.connection_count()));
  }
}

void WorkerState::follow_reload() {
  generation_ = app_->generation();
  const std::shared_ptr<const config::Config> live = app_->live();
  pool.resize(live->database.pool);
  for (size_t i = 0; i < replicas_.size(); ++i) {
    for (const config::ReplicaConfig& rc : live->database.replicas) {
      if (rc.name == upstreams_->names[i]) replicas_[i]->pool.resize(rc.pool);
    }
  }
  auth.set_verifier(app_->verifier());
}

void WorkerState::submit(const http::ExchangePtr& ex, pg::Job job) {
  if (!replicas_.empty()) {
    if (job.read_only) {
      const int i = choose_replica(ex->user);
      if (i >= 0) {
        submit_to_replica(static_cast<size_t>(i), ex, std::move(job));
        return;
      }
    } else {
      track_write(ex->user, job);
    }
  }
  path.submit(ex->route, std::move(job));
}

int WorkerState::choose_replica(const std::string& subject) {
  // Before the monitor has a position of the primary, lag is unknown: every check fails and
  // the primary answers.
  const upstream::Lsn required = upstreams_->ryw->required(subject);
  std::vector<upstream::Candidate> candidates;
  candidates.reserve(replicas_.size());
  for (size_t i = 0; i < replicas_.size(); ++i) {
    upstream::Candidate c;
    if (upstreams_->monitor) c.status = upstreams_->monitor->replica(i).status();
    c.breaker_closed = replicas_[i]->breaker.state() == resilience::BreakerState::kClosed;
    c.pool_ready = replicas_[i]->pool.has_ready();
    c.outstanding = replicas_[i]->outstanding;
    candidates.push_back(c);
  }
  return upstream::choose_replica(candidates, required, upstreams_->limits, cache_->now_ms());
}

void WorkerState::submit_to_replica(size_t i, const http::ExchangePtr& ex, pg::Job job) {
  ReplicaPath& r = *replicas_[i];
  ReplicaMonitor::Replica& status = upstreams_->monitor->replica(i);
  ++r.outstanding;
  status.reads.fetch_add(1, std::memory_order_relaxed);
  // The replay position now is a lower bound of what the query will see: what the cache
  // compares with the latest invalidation before it stores the answer.
  const upstream::Lsn seen = std::max<upstream::Lsn>(1, status.replay_lsn.load());
  auto again = std::make_shared<pg::Job>(job);  // for the primary, should the replica fail it
  again->done = std::move(job.done);
  job.done = [this, &r, &status, seen, again, route = ex->route](pg::Result res) {
    --r.outstanding;
    if (replica_failure(res)) {
      status.fallbacks.fetch_add(1, std::memory_order_relaxed);
      path.submit(route, std::move(*again));  // a read: running it again is safe
      return;
    }
    res.replica_lsn = seen;
    again->done(std::move(res));
  };
  r.path.submit(ex->route, std::move(job));
}

void WorkerState::track_write(const std::string& subject, pg::Job& job) {
  if (subject.empty()) return;  // no identity: no reads of its own to keep consistent
  upstreams_->ryw->writing(subject);
  auto done = std::move(job.done);
  job.done = [this, subject, done = std::move(done)](pg::Result res) {
    done(std::move(res));  // the client's answer first; its next read waits for the position
    // The primary's insert position now is past the commit (or the rollback) of that write.
    static const pg::Statement st =
        pg::make_statement("SELECT pg_catalog.pg_current_wal_insert_lsn()::text", {});
    pg::Job lsn;
    lsn.statements.push_back(st);
    lsn.read_only = true;
    lsn.share_sync = true;
    lsn.done = [this, subject](const pg::Result& r) {
      const std::optional<std::string>* v = r.scalar();
      upstream::Lsn pos = 0;
      // Not known (the primary went away): the subject stays on the primary until its entry
      // expires (routing.read_your_writes_ttl).
      if (r.ok() && v != nullptr && *v && upstream::parse_lsn(**v, pos)) {
        upstreams_->ryw->written(subject, pos);
      }
    };
    path.submit("read_your_writes", std::move(lsn));
  };
}

void WorkerState::shutdown() {
  if (redis) redis->stop();
  for (auto& r : replicas_) {
    r->path.shutdown();
    r->pool.shutdown();
  }
  path.shutdown();
  pool.shutdown();
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
}

namespace {

std::vector<std::string> cache_route_names(const config::Config& cfg) {
  std::vector<std::string> names = {"me_context", "user_context", "me_zones", "me_zones_filter",
                                    "zones_at"};
  for (const std::string& fn : cfg.rpc.names())
    names.push_back(cache::rpc_route(fn));
  return names;
}

int64_t steady_ms() {
  return static_cast<int64_t>(uv_hrtime() / 1'000'000);
}

}  // namespace

App::App(config::Config cfg)
    : cfg_(std::move(cfg)),
      live_(std::make_shared<const config::Config>(cfg_)),
      catalog_(std::make_shared<Catalog>()),
      cache_(
          std::make_unique<cache::ResponseCache>(cfg_.cache, cache_route_names(cfg_), steady_ms)) {
  std::const_pointer_cast<Catalog>(catalog_)->cfg = live_;  // nothing loaded yet: its allow-list
  on_change([this](const std::string& payload) { cache_->on_change(payload); });
  breaker_ =
      std::make_unique<resilience::CircuitBreaker>("primary", cfg_.resilience.breaker, steady_ms);
  breaker_->set_listener([](resilience::BreakerState from, resilience::BreakerState to,
                            const std::string& reason) {
    auto level = to == resilience::BreakerState::kClosed ? log::Level::kInfo : log::Level::kWarn;
    log::write(level, std::string("circuit breaker ") + resilience::breaker_state_name(to),
               {{"upstream", "primary"},
                {"from", resilience::breaker_state_name(from)},
                {"reason", reason}});
  });
  rate_limiter_ = std::make_unique<RateLimiter>(cfg_.rate_limit,
                                                [] { return static_cast<int64_t>(uv_hrtime()); });
  cache_->set_lag_observer([this](double seconds) {
    if (registry_) registry_->record_invalidation_lag(seconds);
  });
  admin_auth_ = std::make_unique<AdminAuth>(
      cfg_.auth, cfg_.admin, [] { return json::now_unix_ms() / 1000; },
      [] { return static_cast<int64_t>(uv_hrtime()); });
  for (const config::ReplicaConfig& rc : cfg_.database.replicas) {
    config::DatabaseConfig db = cfg_.database;
    db.conninfo = rc.conninfo;
    db.pool = rc.pool;
    db.replicas.clear();
    upstreams_.dbs.push_back(std::move(db));
    upstreams_.names.push_back(rc.name);
    auto b =
        std::make_unique<resilience::CircuitBreaker>(rc.name, cfg_.resilience.breaker, steady_ms);
    b->set_listener([name = rc.name](resilience::BreakerState from, resilience::BreakerState to,
                                     const std::string& reason) {
      log::write(
          to == resilience::BreakerState::kClosed ? log::Level::kInfo : log::Level::kWarn,
          std::string("circuit breaker ") + resilience::breaker_state_name(to),
          {{"upstream", name}, {"from", resilience::breaker_state_name(from)}, {"reason", reason}});
    });
    upstreams_.breakers.push_back(std::move(b));
  }
  if (upstreams_.enabled()) {
    const config::RoutingConfig& rt = cfg_.database.routing;
    upstreams_.ryw = std::make_unique<upstream::ReadYourWrites>(
        static_cast<size_t>(rt.read_your_writes_subjects), rt.read_your_writes_ttl_ms, steady_ms);
    upstreams_.limits.max_bytes = rt.max_lag_bytes;
    upstreams_.limits.max_ms = rt.max_lag_ms;
    // A status older than a few checks (the monitor cannot reach it) is not trusted.
    upstreams_.limits.stale_ms = std::max<int64_t>(3 * rt.check_interval_ms, 2'000);
    // Made before the workers (they read it), started on the main loop by start_control().
    cache::ResponseCache* cache = cache_.get();
    upstreams_.monitor = std::make_unique<ReplicaMonitor>(
        cfg_.database, upstreams_.dbs, upstreams_.names, rt, [cache] { return cache->now_ms(); },
        [cache](upstream::Lsn lsn, int64_t sampled_ms) {
          cache->note_primary_lsn(lsn, sampled_ms);
        });
  }
  started_ms_ = json::now_unix_ms();
}

void App::create_registry(int workers) {
  registry_ = std::make_unique<metrics::Registry>(workers);
  resilience_metrics_ = std::make_unique<ResilienceMetrics>(*breaker_, workers);
  registry_->add_source(cache_.get());
  registry_->add_source(resilience_metrics_.get());
  registry_->add_source(rate_limiter_.get());
  registry_->add_source(this);
}

DbHealth App::db_health() const {
  std::lock_guard<std::mutex> lock(health_mu_);
  return db_health_;
}

void App::set_db_health(DbHealth h) {
  std::lock_guard<std::mutex> lock(health_mu_);
  db_health_ = std::move(h);
}

const config::CachePolicy& App::route_policy(const std::string& route) const {
  static const config::CachePolicy off = [] {
    config::CachePolicy p;
    p.enabled = false;
    return p;
  }();
  auto it = cfg_.cache.routes.find(route);
  return it != cfg_.cache.routes.end() ? it->second : off;
}

cache::Answer to_answer(http::Response r) {
  cache::Answer a;
  a.status = r.status;
  a.content_type = std::move(r.content_type);
  a.body = std::move(r.body);
  a.shared_body = std::move(r.shared_body);
  a.headers = std::move(r.headers);
  return a;
}

http::Response to_response(cache::Answer a) {
  http::Response r;
  r.status = a.status;
  r.content_type = std::move(a.content_type);
  r.body = std::move(a.body);
  r.shared_body = std::move(a.shared_body);
  r.headers = std::move(a.headers);
  return r;
}

void App::serve_cached(const http::ExchangePtr& ex, const config::CachePolicy& policy,
                       const cache::CacheKey& key, cache::Upstream upstream) {
  cache::Asker asker;
  asker.executor = &ex->worker();
  if (const std::string* inm = ex->req.header("if-none-match")) asker.if_none_match = *inm;
  asker.reply = [ex](cache::Answer a) {
    ex->cache_status = a.outcome;
    ex->respond(to_response(std::move(a)));
  };
  cache_->serve(std::move(asker), policy, key, std::move(upstream));
}

cache::Upstream database_upstream(const http::ExchangePtr& ex, pg::Job job, Shape shape) {
  return [ex, job = std::move(job), shape = std::move(shape)](cache::Reply done) {
    pg::Job j = job;
    j.done = [ex, shape, done = std::move(done)](const pg::Result& r) {
      ex->upstream_ns += r.upstream_ns;
      cache::Answer a = to_answer(r.ok() ? shape(r) : error_from_result(r, !ex->anonymous));
      a.replica_lsn = r.replica_lsn;
      done(std::move(a));
    };
    worker_state(ex).submit(ex, std::move(j));
  };
}

App::~App() = default;

bool App::init(std::string& error) {
  const config::JwtSettings& j = cfg_.auth.jwt;
  if (!make_verifier(j, verifier_, error)) return false;
  if (!verifier_) {
    // Allowed in the dev profile only (the loader refuses it in prod): every token is refused.
    log::warn("no JWT secret or public key configured: authenticated routes answer 401");
  }
  return true;
}

bool make_verifier(const config::JwtSettings& j, std::shared_ptr<const auth::Verifier>& out,
                   std::string& error) {
  out.reset();
  bool has_keys = !j.secret.empty() || !j.public_key.empty() || !j.keys.empty() || !j.jwks.empty();
  if (!has_keys) return true;
  auth::JwtConfig jc;
  jc.algorithms = j.algorithms;
  jc.secret = j.secret;
  jc.public_key_pem = j.public_key;
  for (const config::JwtKeySettings& k : j.keys)
    jc.keys.push_back({k.kid, k.alg, k.secret, k.public_key});
  jc.jwks = j.jwks;
  jc.issuer = j.issuer;
  jc.audience = j.audience;
  jc.leeway_s = j.leeway_ms / 1000;
  jc.require_exp = j.require_exp;
  jc.max_age_s = j.max_age_ms / 1000;
  jc.max_token_bytes = static_cast<size_t>(j.max_token_bytes);
  jc.subject_claim = j.subject_claim;
  jc.role_claim = j.role_claim;
  jc.role_claim_key = j.role_claim_key;
  std::unique_ptr<auth::Verifier> v = auth::Verifier::create(jc, error);
  if (!v) return false;
  out = std::move(v);
  return true;
}

std::unique_ptr<http::WorkerContext> App::make_worker(http::Worker& w) {
  return std::make_unique<WorkerState>(w, cfg_, verifier(), cache_.get(), registry_.get(),
                                       *breaker_, &resilience_metrics_->worker(w.index()),
                                       rate_limiter_.get(), &upstreams_, this);
}

void App::start_control(uv_loop_t* main_loop) {
  control_ = std::make_unique<Control>(main_loop, *this);
  control_->start();
  if (upstreams_.monitor) upstreams_.monitor->start(main_loop);
}

void App::stop_control() {
  if (control_) control_->stop();
  if (upstreams_.monitor) upstreams_.monitor->stop();
}

const char* notify_auth_state_name(NotifyAuthState s) {
  switch (s) {
    case NotifyAuthState::kPending:
      return "pending";
    case NotifyAuthState::kAuthenticated:
      return "authenticated";
    case NotifyAuthState::kUnauthenticated:
      return "unauthenticated";
    case NotifyAuthState::kRefused:
      return "refused";
  }
  return "unknown";
}

void App::set_listening(bool v) {
  listening_.store(v);
  update_channel();
}

void App::set_notify_auth(NotifyAuthState s, std::string error) {
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    notify_auth_error_ = std::move(error);
  }
  notify_auth_state_.store(static_cast<int>(s));
  update_channel();
}

void App::update_channel() {
  NotifyAuthState s = notify_auth_state();
  bool trusted = s == NotifyAuthState::kAuthenticated || s == NotifyAuthState::kUnauthenticated;
  bool up = listening_.load() && trusted;
  if (up == channel_up_) return;  // an "up" again would make every entry not fresh for nothing
  channel_up_ = up;
  cache_->set_channel_up(up);
}

std::string App::notify_auth_error() const {
  std::lock_guard<std::mutex> lock(health_mu_);
  return notify_auth_error_;
}

void App::count_notify_rejected(cache::NotifyReject r) {
  notify_rejected_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
}

int64_t App::notify_rejected(cache::NotifyReject r) const {
  return notify_rejected_[static_cast<int>(r)].load(std::memory_order_relaxed);
}

void App::notify_change(const std::string& payload) {
  for (auto& fn : change_subscribers_)
    fn(payload);
}

WorkerState& worker_state(const http::ExchangePtr& ex) {
  return ex->worker().context_as<WorkerState>();
}

bool App::rate_limit_step(const http::ExchangePtr& ex) {
  if (!rate_limiter_->enabled()) return true;
  WorkerState& ws = worker_state(ex);
  return rate_limiter_->admit(ex, ws.auth, ws.redis.get()) == RateLimiter::Admission::kContinue;
}

bool authenticate(const http::ExchangePtr& ex, auth::Claims& claims) {
  http::Response err;
  if (!worker_state(ex).auth.authenticate(ex->req, claims, err)) {
    ex->respond(std::move(err));
    return false;
  }
  ex->user = claims.subject;
  return true;
}

void App::add_routes(http::Router& router) {
  add_v1_routes(*this, router);
  add_rpc_routes(*this, router);
  add_rpc_openapi_route(*this, router);
  add_admin_routes(*this, router);
  add_observability_routes(*this, router);
  add_dashboard_routes(*this, router);
}

}  // namespace zonegate::api
