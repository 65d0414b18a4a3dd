// GET /health (JSON detail for people and dashboards) and GET /metrics (Prometheus text).
#include <string>

#include "api/app.hpp"
#include "common/json.hpp"
#include "core/version.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

// An error text of /health: in full on the admin listener; on the public one only whether there
// is one, since libpq's messages name hosts, ports and roles.
void error_field(json::Writer& w, const char* key, const std::string& error, bool full) {
  w.key(key);
  if (error.empty()) {
    w.null();
  } else {
    w.string(full ? error : std::string("(details on the admin listener)"));
  }
}

// The /rpc catalog: how many functions are callable, and what it refused and why
// (docs/SECURITY.md, "/rpc"), so operators see it without reading the log. The public listener
// gets the counts only: the refused functions' names and owners are the operators' business.
void write_rpc_health(App& app, json::Writer& w, bool full) {
  std::shared_ptr<const Catalog> cat = app.catalog();
  // cache.rpc functions not cached: a table they read is not watched (docs/CONFIG.md, "cache").
  std::shared_ptr<const cache::DependencyIndex> deps = app.cache().dependencies();
  w.key("rpc");
  w.start_object();
  w.field("schema", app.cfg().rpc.schema);
  int64_t overloads = 0;
  for (const auto& [name, fns] : cat->functions)
    overloads += static_cast<int64_t>(fns.size());
  w.field("functions", overloads);
  w.field("public_create", cat->public_create);
  if (!full) {
    w.field("refused", static_cast<int64_t>(cat->refused.size()));
    w.field("shared_refused", static_cast<int64_t>(cat->shared_refused.size()));
    w.field("cache_refused", static_cast<int64_t>(deps->refused.size()));
    error_field(w, "error", cat->error, full);
    w.end_object();
    return;
  }
  w.key("refused");
  w.start_array();
  for (const RefusedFunction& f : cat->refused) {
    w.start_object();
    w.field("function", f.function);
    w.field("owner", f.owner);
    w.field("reason", f.reason);
    w.end_object();
  }
  w.end_array();
  w.key("shared_refused");
  w.start_array();
  for (const SharedRefusal& s : cat->shared_refused) {
    w.start_object();
    w.field("function", s.function);
    w.field("key", "cache.rpc." + s.function + ".scope");
    w.field("reason", s.reason);
    w.end_object();
  }
  w.end_array();
  w.key("cache_refused");
  w.start_array();
  for (const cache::CacheRefusal& r : deps->refused) {
    w.start_object();
    w.field("function", r.function);
    w.field("key", "cache.rpc." + r.function + ".depends_on");
    w.field("table", r.table);
    w.field("reason", r.reason);
    w.field("hint", r.hint);
    w.end_object();
  }
  w.end_array();
  error_field(w, "error", cat->error, full);
  w.end_object();
}

}  // namespace

namespace {

// The replicas as the lag monitor last saw them (docs/API.md, "Health").
void write_replicas(App& app, json::Writer& w, bool full) {
  const Upstreams& ups = app.upstreams();
  if (!ups.monitor) return;
  const upstream::Lsn primary = ups.monitor->primary_lsn();
  for (size_t i = 0; i < ups.monitor->size(); ++i) {
    const ReplicaMonitor::Replica& r = ups.monitor->replica(i);
    const upstream::ReplicaStatus s = r.status();
    upstream::Candidate c;
    c.status = s;
    c.breaker_closed = ups.breakers[i]->state() == resilience::BreakerState::kClosed;
    const upstream::Ineligible why =
        upstream::check_replica(c, 0, ups.limits, app.cache().now_ms());
    w.start_object();
    w.field("upstream", r.name);
    w.field("role", "replica");
    w.field("connected", s.reachable);
    w.field("replay_lsn", upstream::lsn_text(s.replay_lsn));
    w.field("primary_lsn", upstream::lsn_text(primary));
    w.field("lag_bytes", s.lag_bytes);
    w.field("lag_ms", s.lag_ms);
    w.field("eligible", why == upstream::Ineligible::kEligible);
    w.field("reason", upstream::ineligible_name(why));
    w.field("breaker", resilience::breaker_state_name(ups.breakers[i]->state()));
    w.field("reads", r.reads.load());
    w.field("fallbacks", r.fallbacks.load());
    std::string error;
    {
      std::lock_guard<std::mutex> lock(r.mu);
      if (!s.reachable) error = r.error;
    }
    error_field(w, "error", error, full);
    w.end_object();
  }
}

}  // namespace

std::string health_json(App& app, bool full) {
  const DbHealth db = app.db_health();
  metrics::Registry::Totals t;
  if (app.registry() != nullptr) t = app.registry()->totals();
  cache::CacheStats c = app.cache().stats();
  bool db_ok = db.connected;
  bool listen_ok = app.listening();
  bool breaker_ok = app.breaker().state() == resilience::BreakerState::kClosed;
  // Notifications that cannot be authenticated while notify_auth is required: correct answers,
  // but every one from the database (docs/TROUBLESHOOTING.md).
  NotifyAuthState auth = app.notify_auth_state();
  bool auth_ok = auth != NotifyAuthState::kRefused;
  bool ok = db_ok && listen_ok && t.pool.ready > 0 && breaker_ok && auth_ok;

  json::Writer w;
  w.start_object();
  w.field("status", ok ? "ok" : (db_ok || t.pool.ready > 0) ? "degraded" : "unavailable");
  w.field("version", ZONEGATE_VERSION);
  w.field("build", ZONEGATE_BUILD);
  w.key("uptime_seconds");
  w.number(static_cast<double>(json::now_unix_ms() - app.started_ms()) / 1000.0);
  w.field("workers", static_cast<int64_t>(app.registry() ? app.registry()->worker_count() : 0));
  w.field("profile", app.cfg().profile);

  w.key("postgres");
  w.start_array();
  w.start_object();
  w.field("upstream", "primary");
  w.field("connected", db.connected);
  w.key("latency_ms");
  if (db.latency_ms < 0)
    w.null();
  else
    w.number(db.latency_ms);
  if (full) w.field("server_version", db.server_version);
  w.field("in_recovery", db.in_recovery);
  w.key("checked_at");
  if (db.checked_at_ms == 0)
    w.null();
  else
    w.int64(db.checked_at_ms);
  error_field(w, "error", db.error, full);
  w.end_object();
  write_replicas(app, w, full);
  w.end_array();

  w.key("pool");
  w.start_object();
  w.field("ready", static_cast<int64_t>(t.pool.ready));
  w.field("active", static_cast<int64_t>(t.pool.busy));
  w.field("idle", static_cast<int64_t>(t.pool.ready - t.pool.busy));
  w.field("connecting", static_cast<int64_t>(t.pool.connecting));
  w.field("in_flight", static_cast<int64_t>(t.pool.in_flight));
  w.field("waiting", static_cast<int64_t>(t.pool.waiting));
  w.key("max_wait_ms");
  w.number(t.pool.max_wait_ms);
  w.field("acquire_timeouts", t.pool.timeouts);
  w.field("rejected", t.pool.rejected);
  w.field("reconnects", t.pool.reconnects);
  w.field("jobs", t.pool.jobs);
  w.field("syncs", t.pool.syncs);
  w.field("batch_resends", t.pool.resent);
  error_field(w, "last_error", t.pool.last_error, full);
  w.end_object();

  w.key("listen");
  w.start_object();
  w.field("up", listen_ok);
  w.field("channel", "zonegate_changes");
  w.field("notifications", c.notifications);
  w.field("flushes", c.flushes);
  w.field("flushes_coalesced", c.flushes_coalesced);
  w.field("reconnects", app.listen_reconnects());
  w.field("notify_auth", app.cfg().cache.notify_auth);
  w.field("authenticated", auth == NotifyAuthState::kAuthenticated);
  w.field("auth_state", notify_auth_state_name(auth));
  std::string auth_error = app.notify_auth_error();
  w.key("auth_error");
  if (auth_error.empty())
    w.null();
  else
    w.string(auth_error);
  w.key("rejected");
  w.start_object();
  for (cache::NotifyReject r : cache::kNotifyRejects)
    w.field(cache::notify_reject_name(r), app.notify_rejected(r));
  w.end_object();
  w.end_object();

  w.key("cache");
  w.start_object();
  w.field("enabled", app.cfg().cache.enabled);
  w.field("entries", c.store.entries);
  w.field("bytes", c.store.bytes);
  w.field("max_bytes", c.store.max_bytes);
  int64_t served = c.hits + c.stale + c.coalesced, total = served + c.misses;
  w.key("hit_rate");
  w.number(total == 0 ? 0.0 : static_cast<double>(served) / static_cast<double>(total));
  w.key("last_invalidation_lag_ms");
  if (c.last_invalidation_lag_ms < 0)
    w.null();
  else
    w.number(c.last_invalidation_lag_ms);
  w.end_object();

  resilience::CircuitBreaker::Stats b = app.breaker().stats();
  w.key("breakers");
  w.start_array();
  w.start_object();
  w.field("upstream", app.breaker().name());
  w.field("enabled", app.cfg().resilience.breaker.enabled);
  w.field("state", resilience::breaker_state_name(b.state));
  w.field("retry_after_ms", app.breaker().retry_after_ms());
  w.field("open_wait_ms", b.open_wait_ms);
  w.field("consecutive_failures", static_cast<int64_t>(b.consecutive_failures));
  w.field("window_calls", static_cast<int64_t>(b.window_calls));
  w.field("window_failures", static_cast<int64_t>(b.window_failures));
  w.field("opened", b.opened);
  w.field("rejected", b.rejected);
  error_field(w, "last_error", b.last_error, full);
  w.end_object();
  w.end_array();
  app.rate_limiter().write_health(w);
  write_rpc_health(app, w, full);
  // SIGHUP reloads (docs/CONFIG.md, "Reloading"): what runs, and what waits for a restart.
  const ReloadStatus rs = app.reload_status();
  w.key("config");
  w.start_object();
  w.field("generation", static_cast<int64_t>(app.generation()));
  w.field("reloads_applied", rs.applied);
  w.field("reloads_refused", rs.refused);
  w.field("last_reload", rs.last_result.empty() ? "none" : rs.last_result);
  if (rs.last_ms > 0) w.field("last_reload_at", std::string(json::iso8601_ms_view(rs.last_ms)));
  error_field(w, "last_error", rs.last_error, full);
  w.key("restart_pending");
  w.start_array();
  for (const std::string& k : rs.restart_pending)
    w.string(k);
  w.end_array();
  w.end_object();
  ResilienceMetrics::Totals rt;
  if (app.resilience_metrics() != nullptr) rt = app.resilience_metrics()->totals();
  w.key("resilience");
  w.start_object();
  w.field("retries", rt.retries);
  w.field("retry_budget_exhausted", rt.budget_exhausted);
  w.field("deadline_expired", rt.deadline_expired);
  w.field("fail_fast", rt.fail_fast);
  w.field("shed", rt.shed);
  w.field("concurrency_limit", rt.limit);
  w.field("in_flight", rt.in_flight);
  w.field("deadline_ms", app.cfg().resilience.deadline_ms);
  w.end_object();
  w.end_object();
  return w.take();
}

// The proxy-wide figures: the LISTEN connection, the database check, the process and build.
void App::describe_metrics(metrics::Text& out) const {
  out.single("zonegate_listen_up", "gauge", "1 while the LISTEN connection is up.",
             listening() ? 1 : 0);
  out.single("zonegate_listen_reconnects_total", "counter",
             "Times the LISTEN connection came back after a loss (each flushed the cache).",
             listen_reconnects());
  out.single("zonegate_notify_authenticated", "gauge",
             "1 while zonegate_changes notifications are verified with the database's key.",
             notify_auth_state() == NotifyAuthState::kAuthenticated ? 1 : 0);
  out.family("zonegate_notify_rejected_total", "counter",
             "zonegate_changes notifications ignored: unsigned, bad_mac, replay, malformed.");
  for (cache::NotifyReject r : cache::kNotifyRejects) {
    out.sample("zonegate_notify_rejected_total",
               std::string("reason=\"") + cache::notify_reject_name(r) + "\"", notify_rejected(r));
  }
  out.single("zonegate_notify_key_fetches_total", "counter",
             "Reads of zonegate.notify_key(): one per LISTEN, and re-reads after a failed "
             "verification or while the key is unavailable.",
             notify_key_fetches_.load());
  DbHealth db = db_health();
  out.single("zonegate_database_up", "gauge", "1 when the last database check succeeded.",
             db.connected ? 1 : 0);
  out.single_double("zonegate_database_check_latency_seconds", "gauge",
                    "Round trip of the last database check.",
                    db.latency_ms < 0 ? 0 : db.latency_ms / 1000.0);
  out.single("process_resident_memory_bytes", "gauge", "Resident memory of the proxy.",
             metrics::resident_bytes());
  out.single_double("process_start_time_seconds", "gauge", "Start time of the proxy, unix seconds.",
                    static_cast<double>(started_ms()) / 1000.0);
  admin_auth_->describe_metrics(out);
  if (upstreams_.monitor) {
    const ReplicaMonitor& m = *upstreams_.monitor;
    out.family("zonegate_replica_up", "gauge", "1 while the lag monitor reaches the replica.");
    for (size_t i = 0; i < m.size(); ++i)
      out.sample("zonegate_replica_up",
                 "upstream=\"" + metrics::label_value(m.replica(i).name) + "\"",
                 int64_t{m.replica(i).reachable.load() ? 1 : 0});
    out.family("zonegate_replica_lag_bytes", "gauge",
               "The primary's WAL position minus the replica's replay position (-1: unknown).");
    for (size_t i = 0; i < m.size(); ++i)
      out.sample("zonegate_replica_lag_bytes",
                 "upstream=\"" + metrics::label_value(m.replica(i).name) + "\"",
                 m.replica(i).lag_bytes.load());
    out.family("zonegate_replica_lag_seconds", "gauge",
               "Time since the replica's last replayed commit, 0 when it has replayed "
               "everything (-1: unknown).");
    for (size_t i = 0; i < m.size(); ++i) {
      const int64_t ms = m.replica(i).lag_ms.load();
      out.sample_double("zonegate_replica_lag_seconds",
                        "upstream=\"" + metrics::label_value(m.replica(i).name) + "\"",
                        ms < 0 ? -1.0 : static_cast<double>(ms) / 1000.0);
    }
    out.family("zonegate_replica_reads_total", "counter", "Reads a replica served.");
    for (size_t i = 0; i < m.size(); ++i)
      out.sample("zonegate_replica_reads_total",
                 "upstream=\"" + metrics::label_value(m.replica(i).name) + "\"",
                 m.replica(i).reads.load());
    out.family("zonegate_replica_fallbacks_total", "counter",
               "Reads a replica failed (connection, overload) that the primary then answered.");
    for (size_t i = 0; i < m.size(); ++i)
      out.sample("zonegate_replica_fallbacks_total",
                 "upstream=\"" + metrics::label_value(m.replica(i).name) + "\"",
                 m.replica(i).fallbacks.load());
  }
  const ReloadStatus rs = reload_status();
  out.family("zonegate_config_reloads_total", "counter",
             "SIGHUP reloads: applied (live keys swapped in), unchanged (no live key changed) or "
             "refused (the file did not load or could not apply; the running config stays).");
  out.sample("zonegate_config_reloads_total", R"(result="applied")", rs.applied);
  out.sample("zonegate_config_reloads_total", R"(result="unchanged")", rs.unchanged);
  out.sample("zonegate_config_reloads_total", R"(result="refused")", rs.refused);
  out.single("zonegate_config_generation", "gauge",
             "Reloads applied since the start (0: the configuration read at start).",
             static_cast<int64_t>(generation()));
  out.single("zonegate_config_restart_pending", "gauge",
             "Keys changed in the file that only a restart applies.",
             static_cast<int64_t>(rs.restart_pending.size()));
  out.family("zonegate_build_info", "gauge", "Version and build of the running proxy.");
  out.sample("zonegate_build_info",
             std::string("version=\"") + ZONEGATE_VERSION + "\",build=\"" + ZONEGATE_BUILD + "\"",
             int64_t{1});
}

void add_observability_routes(App& app, http::Router& router) {
  router.add(
      "GET", "/health", "health",
      [&app](const ExchangePtr& ex, const Params&) {
        ex->respond(http::Response(200, health_json(app, ex->req.admin)));
      },
      http::Exposure::kBoth);
  router.add(
      "GET", "/metrics", "metrics",
      [&app](const ExchangePtr& ex, const Params&) {
        if (app.registry() == nullptr || !app.cfg().metrics.enabled) {
          ex->respond(http::error_response(404, "metrics_disabled",
                                           "metrics are disabled (metrics.enabled)"));
          return;
        }
        http::Response r(200, app.registry()->render());
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        ex->respond(std::move(r));
      },
      http::Exposure::kAdmin);
}

}  // namespace zonegate::api
