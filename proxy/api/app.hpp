// The application: configuration, the state the workers share (the JWT verifier, the /rpc
// catalog the control connection swaps in, the response cache, the circuit breaker, the rate
// limiter, the metrics registry, the database's health), the routes, each worker's state (its
// Postgres pool, the database path's stages in front of it, its token cache), and the control
// connection that LISTENs on zonegate_changes and reloads the catalog.
#pragma once

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admin/metrics.hpp"
#include "api/admin_auth.hpp"
#include "api/replica_monitor.hpp"
#include "redis/gcra_client.hpp"
#include "upstream/read_your_writes.hpp"
#include "upstream/replica_choice.hpp"
#include "api/catalog.hpp"
#include "api/database_path.hpp"
#include "api/rate_limiter.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "cache/notify_verifier.hpp"
#include "cache/response_cache.hpp"
#include "config/config.hpp"
#include "config/reload.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "pg/pool.hpp"

namespace zonegate::api {

// The database as the control connection's periodic check sees it.
struct DbHealth {
  bool connected = false;
  double latency_ms = -1;  // of the last check
  std::string server_version;
  bool in_recovery = false;
  std::string error;
  int64_t checked_at_ms = 0;  // unix milliseconds, 0 = never
};

// How zonegate_changes notifications are authenticated (docs/SECURITY.md, "The change
// channel"): the key is being fetched; notifications are verified; the key is unavailable and
// cache.notify_auth is optional (applied unverified, as before 0.6); the key is unavailable and
// it is required (the channel counts as down: no entry is fresh).
enum class NotifyAuthState { kPending, kAuthenticated, kUnauthenticated, kRefused };
const char* notify_auth_state_name(NotifyAuthState s);

// The replicas reads may go to, and what routing needs of them (docs/ARCHITECTURE.md,
// "Replicas"); shared by the workers, empty without database.replicas.
struct Upstreams {
  std::vector<config::DatabaseConfig> dbs;  // one per replica: its conninfo and pool
  std::vector<std::string> names;
  std::vector<std::unique_ptr<resilience::CircuitBreaker>> breakers;
  std::unique_ptr<ReplicaMonitor> monitor;  // made on the main loop (App::start_control)
  std::unique_ptr<upstream::ReadYourWrites> ryw;
  upstream::LagLimits limits;
  bool enabled() const { return !dbs.empty(); }
};

class App;

// One replica's pool and stages in a worker.
struct ReplicaPath {
  ReplicaPath(uv_loop_t* loop, const config::DatabaseConfig& db,
              const config::ResilienceConfig& resilience, resilience::CircuitBreaker& breaker);
  pg::Pool pool;
  PathStats stats;  // this path's own (the resilience metrics are the primary's)
  DatabasePath path;
  resilience::CircuitBreaker& breaker;
  int64_t outstanding = 0;  // this worker's requests in flight there
};

// What a worker owns.
class WorkerState : public http::WorkerContext {
 public:
  WorkerState(http::Worker& worker, const config::Config& cfg,
              std::shared_ptr<const auth::Verifier> verifier, cache::ResponseCache* cache,
              metrics::Registry* registry, resilience::CircuitBreaker& breaker,
              PathStats* path_stats, RateLimiter* rate_limiter, Upstreams* upstreams,
              const App* app);
  void shutdown() override;
  // The one way a request's job reaches the database: through the worker's stages to its pool.
  void submit(const http::ExchangePtr& ex, pg::Job job);
  pg::Pool pool;
  DatabasePath path;  // the stages between a request and the pool
  auth::Authenticator auth;
  // Rate-limit decisions of store: redis policies; null without such policies.
  std::unique_ptr<redis::GcraClient> redis;

 private:
  static void on_tick(uv_timer_t* t);
  // The replica a read of `subject` goes to now, or -1 for the primary.
  int choose_replica(const std::string& subject);
  // Sends a read to replica i; if the replica fails it (not a SQL error), the primary answers.
  void submit_to_replica(size_t i, const http::ExchangePtr& ex, pg::Job job);
  // A write of `subject` on the primary: its reads go to the primary until the primary's
  // position after it is known, then only to replicas past that position.
  void track_write(const std::string& subject, pg::Job& job);
  // A reload published a new generation: the pools' sizes and the verifier follow it.
  void follow_reload();
  const App* app_;
  uint64_t generation_ = 0;  // of the configuration this worker applied
  Upstreams* upstreams_;
  std::vector<std::unique_ptr<ReplicaPath>> replicas_;
  http::Worker& worker_;
  cache::ResponseCache* cache_;
  metrics::Registry* registry_;
  int ticks_ = 0;
  // Every 25 ms: cache waiter timeouts and path.tick(); publishes pool figures every 100 ms.
  uv_timer_t tick_{};
};

class Control;

// How the last reload went, for /health and the log (main thread writes, any reads).
struct ReloadStatus {
  int64_t applied = 0, refused = 0, unchanged = 0;
  int64_t last_ms = 0;                       // unix milliseconds of the last SIGHUP, 0 = none yet
  std::string last_result;                   // "applied", "unchanged" or "refused"
  std::string last_error;                    // why the last one was refused
  std::vector<std::string> restart_pending;  // keys whose change waits for a restart
};

class App : public metrics::Source {
 public:
  explicit App(config::Config cfg);
  ~App() override;
  // Builds the JWT verifier; false with a message when the auth settings are unusable.
  bool init(std::string& error);
  void add_routes(http::Router& router);
  std::unique_ptr<http::WorkerContext> make_worker(http::Worker& w);
  // Starts the control connection on the main loop.
  void start_control(uv_loop_t* main_loop);
  void stop_control();

  // The configuration the proxy started with: what restart-only keys are.
  const config::Config& cfg() const { return cfg_; }
  // The configuration running now: cfg() with the live keys of the last applied reload
  // (config/reload.hpp). Requests hold the snapshot they read.
  std::shared_ptr<const config::Config> live() const { return std::atomic_load(&live_); }
  // Bumped by every applied reload; workers compare it on their tick.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const auth::Verifier> verifier() const { return std::atomic_load(&verifier_); }
  // SIGHUP, on the main loop: `loaded` is the file read again. Valid and applicable: the live
  // keys are swapped in for new requests (pools resized by their workers within a tick, rate
  // limits, the allow-list through a catalog load, JWT keys, the admin token, log.level) and
  // every change is logged; otherwise the running configuration stays and the log says why
  // (with line:column for a file that does not load).
  void reload(const config::LoadResult& loaded);
  ReloadStatus reload_status() const;
  std::shared_ptr<const Catalog> catalog() const { return std::atomic_load(&catalog_); }
  void set_catalog(std::shared_ptr<const Catalog> c) { std::atomic_store(&catalog_, std::move(c)); }
  bool listening() const { return listening_.load(); }
  // LISTEN went up or down. The cache's invalidation channel is up while LISTEN is and its
  // notifications can be trusted (notify_auth_state); while it is down no entry is fresh.
  void set_listening(bool v);
  // The control connection's verdict on the key (main thread); `error` says why it is not
  // authenticated.
  void set_notify_auth(NotifyAuthState s, std::string error);
  NotifyAuthState notify_auth_state() const {
    return static_cast<NotifyAuthState>(notify_auth_state_.load());
  }
  std::string notify_auth_error() const;
  void count_notify_rejected(cache::NotifyReject r);
  int64_t notify_rejected(cache::NotifyReject r) const;
  void count_notify_key_fetch() { notify_key_fetches_.fetch_add(1); }
  // LISTEN came up; every time after the first is a reconnect (and a full cache flush).
  void count_listen_up() { listen_ups_.fetch_add(1); }
  int64_t listen_reconnects() const { return std::max<int64_t>(0, listen_ups_.load() - 1); }
  // Subscribers to zonegate_changes payloads (the response cache subscribes itself); main
  // thread.
  void on_change(std::function<void(const std::string&)> fn) {
    change_subscribers_.push_back(std::move(fn));
  }
  void notify_change(const std::string& payload);
  cache::ResponseCache& cache() { return *cache_; }
  // The metrics registry and the database path's per-worker figures, made once the number of
  // workers is known; the cache, the database path, the rate limiter and the app itself are its
  // metrics::Sources. Before make_worker().
  void create_registry(int workers);
  metrics::Registry* registry() { return registry_.get(); }
  DbHealth db_health() const;
  void set_db_health(DbHealth h);
  int64_t started_ms() const { return started_ms_; }
  resilience::CircuitBreaker& breaker() { return *breaker_; }
  RateLimiter& rate_limiter() { return *rate_limiter_; }
  const RateLimiter& rate_limiter() const { return *rate_limiter_; }
  // The admin token, dashboard sessions and the sign-in throttle (the admin listener's routes).
  AdminAuth& admin_auth() { return *admin_auth_; }
  // The rate-limit step of the request path: false when it answered (429).
  bool rate_limit_step(const http::ExchangePtr& ex);
  // Null until create_registry().
  const ResilienceMetrics* resilience_metrics() const { return resilience_metrics_.get(); }
  // The app's own families (LISTEN, database check, process, build); api/observability.cpp.
  void describe_metrics(metrics::Text& out) const override;
  // Serves a cacheable request: from the cache when the route's policy allows, else upstream.
  void serve_cached(const http::ExchangePtr& ex, const config::CachePolicy& policy,
                    const cache::CacheKey& key, cache::Upstream upstream);
  const config::CachePolicy& route_policy(const std::string& route) const;

 private:
  config::Config cfg_;
  std::shared_ptr<const config::Config> live_;
  std::atomic<uint64_t> generation_{0};
  mutable std::mutex reload_mu_;
  ReloadStatus reload_status_;  // under reload_mu_
  std::shared_ptr<const auth::Verifier> verifier_;
  std::shared_ptr<const Catalog> catalog_;
  std::atomic<bool> listening_{false};
  bool channel_up_ = false;  // what the cache was last told (main thread)
  void update_channel();
  std::atomic<int> notify_auth_state_{static_cast<int>(NotifyAuthState::kPending)};
  std::string notify_auth_error_;                 // under health_mu_
  std::atomic<int64_t> notify_rejected_[5] = {};  // by NotifyReject
  std::atomic<int64_t> notify_key_fetches_{0};
  std::atomic<int64_t> listen_ups_{0};
  std::unique_ptr<Control> control_;
  std::unique_ptr<cache::ResponseCache> cache_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<resilience::CircuitBreaker> breaker_;  // the primary's
  std::unique_ptr<ResilienceMetrics> resilience_metrics_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  mutable std::mutex health_mu_;
  DbHealth db_health_;
  int64_t started_ms_ = 0;
  std::vector<std::function<void(const std::string&)>> change_subscribers_;
  std::unique_ptr<AdminAuth> admin_auth_;
  Upstreams upstreams_;

 public:
  const Upstreams& upstreams() const { return upstreams_; }
};

// The JWT verifier of auth.jwt: null (every token refused) when no key is configured; false
// with a message when the settings are unusable.
bool make_verifier(const config::JwtSettings& j, std::shared_ptr<const auth::Verifier>& out,
                   std::string& error);

// Route handlers, each added by App::add_routes(): /v1 (api/v1.cpp), /rpc (api/rpc.cpp), the
// admin cache API (api/admin.cpp).
void add_v1_routes(App& app, http::Router& router);
void add_rpc_routes(App& app, http::Router& router);
// GET /: the /rpc functions as a Swagger 2.0 document, PostgREST's root (api/rpc_openapi.cpp).
void add_rpc_openapi_route(App& app, http::Router& router);
void add_admin_routes(App& app, http::Router& router);
// GET /health (JSON detail) and GET /metrics (Prometheus text); api/observability.cpp.
void add_observability_routes(App& app, http::Router& router);
// GET /admin/ (the live dashboard), its assets, sign-in and data endpoint; api/dashboard.cpp.
void add_dashboard_routes(App& app, http::Router& router);
// Answers 403 when no admin token is configured, 401 unless the request carries it, and then
// returns false (api/admin.cpp).
bool require_admin(App& app, const http::ExchangePtr& ex);

// Turns a successful result into the route's response.
using Shape = std::function<http::Response(const pg::Result&)>;
// The cache's upstream for a request: `job` through WorkerState::submit, a failure as the
// mapped error, a success through `shape`.
cache::Upstream database_upstream(const http::ExchangePtr& ex, pg::Job job, Shape shape);

// Authenticates the request with its worker's Authenticator (and sets ex->user); on failure
// responds with the Authenticator's error (401) and returns false.
bool authenticate(const http::ExchangePtr& ex, auth::Claims& claims);
// The WorkerState of the worker that owns the request.
WorkerState& worker_state(const http::ExchangePtr& ex);

}  // namespace zonegate::api
