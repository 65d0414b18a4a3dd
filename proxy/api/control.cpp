// Control connection; see control.hpp.
#include "api/control.hpp"

#include <algorithm>

#include "api/app.hpp"
#include "api/catalog.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::api {

Control::Control(uv_loop_t* loop, App& app)
    : loop_(loop),
      app_(app),
      db_cfg_(app.cfg().database),
      backoff_(db_cfg_.pool.reconnect_min_ms, db_cfg_.pool.reconnect_max_ms),
      recovery_(app.cfg().resilience.probe_interval_ms, app.cfg().resilience.probe_interval_ms) {
  db_cfg_.pool.statement_timeout_ms = 60'000;  // catalog queries are small; never cut them short
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
  uv_timer_init(loop_, &check_);
  check_.data = this;
}

Control::~Control() = default;

void Control::start() {
  connect();
  auto interval = static_cast<uint64_t>(app_.cfg().health.check_interval_ms);
  uv_timer_start(&check_, on_check, interval, interval);
}

void Control::on_check(uv_timer_t* t) {
  static_cast<Control*>(t->data)->check();
}

// Times a small query on the control connection; /health and /metrics report the result.
void Control::check() {
  bool recovering = app_.breaker().state() != resilience::BreakerState::kClosed;
  if (conn_ == nullptr && recovering &&
      uv_timer_get_due_in(&retry_) >
          static_cast<uint64_t>(app_.cfg().resilience.probe_interval_ms)) {
    schedule_reconnect();  // the pools see the database again soon: so should LISTEN
  }
  if (check_in_flight_ && conn_ != nullptr &&
      uv_hrtime() - check_started_ns_ > check_timeout_ns()) {
    // A check that never returns: the server or the network hangs. Don't trust the
    // connection (nor LISTEN on it) forever; reconnecting also tells us what is wrong.
    log::warn("database check timed out: reconnecting the control connection",
              {{"timeout_ms", static_cast<int64_t>(check_timeout_ns() / 1'000'000)}});
    conn_->close(pg::Failure::kConnection);
    return;
  }
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) {
    DbHealth h = app_.db_health();
    h.connected = false;
    h.error = last_error_.empty() ? "no database connection" : last_error_;
    app_.set_db_health(std::move(h));
    return;
  }
  if (check_in_flight_) return;  // the previous one has not come back: it will be reported
  check_in_flight_ = true;
  check_started_ns_ = uv_hrtime();
  static const pg::Statement st = pg::make_statement(
      "SELECT pg_catalog.current_setting('server_version'), pg_catalog.pg_is_in_recovery()", {});
  pg::Job job;
  job.statements.push_back(st);
  uint64_t t0 = uv_hrtime();
  job.done = [this, t0](pg::Result r) {
    check_in_flight_ = false;
    DbHealth h;
    h.checked_at_ms = json::now_unix_ms();
    if (r.ok() && r.rows.size() == 1 && r.rows[0].size() == 2) {
      h.connected = true;
      h.latency_ms = static_cast<double>(uv_hrtime() - t0) / 1e6;
      h.server_version = r.rows[0][0].value_or("");
      h.in_recovery = r.rows[0][1].value_or("f") == "t";
    } else {
      h.connected = false;
      h.error = r.message;
    }
    app_.set_db_health(std::move(h));
  };
  conn_->send(std::move(job));
}

void Control::check_trust(pg::Connection* c) {
  // The extension honours zonegate.user_id only from superusers and members of
  // zonegate_authenticator; from any other login every RLS check that reads it fails.
  static const pg::Statement st = pg::make_statement(
      "SELECT session_user, coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r "
      "WHERE r.rolname = session_user), false) OR coalesce((SELECT pg_catalog.pg_has_role("
      "session_user, a.oid, 'MEMBER') FROM pg_catalog.pg_roles a "
      "WHERE a.rolname = 'zonegate_authenticator'), false)",
      {});
  pg::Job job;
  job.statements.push_back(st);
  job.done = [](pg::Result r) {
    if (!r.ok() || r.rows.size() != 1 || r.rows[0].size() != 2) return;
    if (r.rows[0][1].value_or("f") == "t") return;
    std::string role = r.rows[0][0].value_or("?");
    log::warn("the proxy's login role may not set identities",
              {{"role", role},
               {"effect", "requests whose SQL reads zonegate.user_id fail with 42501"},
               {"hint", "GRANT zonegate_authenticator TO " + role + " (docs/SECURITY.md)"}});
  };
  c->send(std::move(job));
}

void Control::connect() {
  pg::Connection::Events ev;
  ev.on_ready = [this](pg::Connection* c) {
    static const pg::Statement listen = pg::make_statement("LISTEN zonegate_changes", {});
    pg::Job job;
    job.statements.push_back(listen);
    job.done = [this, c](pg::Result r) {
      if (!r.ok()) {
        log::error("LISTEN zonegate_changes failed", {{"error", r.message}});
        c->close(pg::Failure::kConnection);
        return;
      }
      backoff_.reset();
      last_error_.clear();
      app_.set_listening(true);
      app_.count_listen_up();
      check();
      log::info("listening for changes", {{"channel", "zonegate_changes"}});
      // Anything may have changed while we were not listening: tell the subscribers.
      app_.notify_change("{\"table\":\"*\",\"op\":\"RECONNECT\",\"users\":\"*\"}");
      load_catalog();
      check_trust(c);
    };
    c->send(std::move(job));
  };
  ev.on_broken = [this](pg::Connection*, const std::string& why) {
    app_.set_listening(false);
    last_error_ = why;
    check_in_flight_ = false;
    DbHealth h = app_.db_health();
    h.connected = false;
    h.error = why;
    app_.set_db_health(std::move(h));
    log::warn("control connection failed", {{"error", why}});
  };
  ev.on_closed = [this](pg::Connection* c) {
    app_.set_listening(false);
    delete c;
    if (conn_ == c) conn_ = nullptr;
    if (!stopping_) schedule_reconnect();
  };
  ev.on_notify = [this](const std::string& channel, const std::string& payload) {
    if (channel != "zonegate_changes") return;
    if (payload == "reload schema") {
      log::info("reloading the /rpc catalog", {{"reason", "NOTIFY"}});
      load_catalog();
      return;
    }
    app_.notify_change(payload);
  };
  conn_ = new pg::Connection(loop_, db_cfg_, std::move(ev), "zonegate-proxy-listen");
  conn_->start();
}

// One catalog load in flight: the signature entries resolved so far.
struct CatalogLoad {
  size_t pending = 0;
  bool broken = false;            // the connection failed under it: the reconnect loads again
  std::vector<std::string> oids;  // of the overloads signature entries resolved to
};

// Resolves the signature entries (one statement each: an unknown type is an error in
// PostgreSQL 15, and it must cost that entry only), then reads the catalog.
void Control::load_catalog() {
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) return;
  const config::RpcConfig& rpc = app_.cfg().rpc;
  auto load = std::make_shared<CatalogLoad>();
  for (const config::RpcEntry& e : rpc.functions) {
    if (!e.has_signature()) continue;
    ++load->pending;
    pg::Job job;
    job.statements.push_back(signature_statement(rpc.schema, e.name, e.args));
    job.done = [this, load, text = e.text](pg::Result r) {
      const std::string where = app_.cfg().rpc.schema + "." + text;
      if (r.ok()) {
        const std::optional<std::string>* oid = r.scalar();
        if (oid != nullptr && *oid) {
          load->oids.push_back(**oid);
        } else {
          log::warn("allow-listed function not found", {{"function", where}});
        }
      } else if (r.failure == pg::Failure::kSql) {
        log::error("an rpc.functions entry could not be resolved: it allows nothing",
                   {{"entry", text}, {"error", r.message}});
      } else {
        load->broken = true;
      }
      if (--load->pending == 0 && !load->broken) read_catalog(load);
    };
    conn_->send(std::move(job));
  }
  if (load->pending == 0) read_catalog(load);
}

// Reads the allowed overloads, their owners' trust and the shared scopes' bodies; swaps the
// catalog in.
void Control::read_catalog(const std::shared_ptr<CatalogLoad>& load) {
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) return;
  const config::Config& cfg = app_.cfg();
  CatalogQuery q;
  q.schema = cfg.rpc.schema;
  for (const config::RpcEntry& e : cfg.rpc.functions) {
    if (!e.has_signature()) q.names.push_back(e.name);
  }
  q.signature_oids = load->oids;
  q.trusted_owners = cfg.rpc.trusted_owners;
  for (const auto& [name, policy] : cfg.cache.rpc) {
    if (policy.enabled && policy.shared && !policy.identity_free) q.shared.push_back(name);
  }
  pg::Job job;
  job.statements.push_back(catalog_statement(q));
  job.done = [this, shared = q.shared](pg::Result r) {
    auto cat = std::make_shared<Catalog>();
    const std::string& schema = app_.cfg().rpc.schema;
    if (!r.ok()) {
      cat->error = r.message;
      log::error("loading the /rpc catalog failed", {{"error", r.message}});
      auto old = app_.catalog();
      if (old) return;  // keep serving what we had
    } else {
      try {
        *cat = catalog_from_rows(schema, shared, r.rows);
      } catch (const std::exception& e) {
        cat->error = e.what();
        log::error("the /rpc catalog could not be read", {{"error", cat->error}});
      }
    }
    if (cat->error.empty()) report(*cat);
    const auto n = static_cast<int64_t>(cat->functions.size());
    const auto refused = static_cast<int64_t>(cat->refused.size());
    bool zone_at = cat->zone_at;
    app_.set_catalog(std::move(cat));  // before the log line: readers may act on it at once
    log::info("/rpc catalog loaded",
              {{"functions", n}, {"refused", refused}, {"zone_at", zone_at}});
  };
  conn_->send(std::move(job));
}

// Logs what a load found wrong: the schema, refused overloads, refused shared scopes, names
// that match nothing. Operators read these; /health lists the refusals too.
void Control::report(const Catalog& cat) {
  const config::Config& cfg = app_.cfg();
  const std::string& schema = cfg.rpc.schema;
  if (!cfg.rpc.functions.empty() && !cat.schema_exists) {
    log::warn("the /rpc schema does not exist: no function is callable",
              {{"schema", schema}, {"hint", "set rpc.schema (its default is api)"}});
  }
  if (cat.public_create) {
    log::error("PUBLIC may CREATE in the /rpc schema: every function in it is refused",
               {{"schema", schema},
                {"hint", "REVOKE CREATE ON SCHEMA " + quote_ident(schema) + " FROM PUBLIC"}});
  }
  std::string others;
  for (const std::string& r : cat.other_creators) {
    if (r != "PUBLIC") others += (others.empty() ? "" : ", ") + r;
  }
  if (!others.empty()) {
    log::warn("roles besides the schema's owner may CREATE in the /rpc schema",
              {{"schema", schema},
               {"roles", others},
               {"effect", "overloads they own are refused unless listed in rpc.trusted_owners"}});
  }
  for (const RefusedFunction& f : cat.refused) {
    log::error("allow-listed function refused",
               {{"function", f.function}, {"owner", f.owner}, {"reason", f.reason}});
  }
  for (const SharedRefusal& s : cat.shared_refused) {
    log::error("cache scope shared refused: cached per user",
               {{"key", "cache.rpc." + s.function + ".scope"},
                {"reason", s.reason},
                {"hint", "if the answer is the same for every caller, set cache.rpc." + s.function +
                             ".identity_free: true"}});
  }
  for (const config::RpcEntry& e : cfg.rpc.functions) {
    if (e.has_signature()) continue;  // reported when resolved
    bool refused = std::any_of(cat.refused.begin(), cat.refused.end(), [&](const auto& f) {
      return f.function.compare(0, schema.size() + e.name.size() + 2,
                                schema + "." + e.name + "(") == 0;
    });
    if (cat.functions.find(e.name) == cat.functions.end() && !refused) {
      log::warn("allow-listed function not found", {{"function", schema + "." + e.name}});
    }
  }
}

void Control::schedule_reconnect() {
  // While the breaker is open the database is probed at resilience.breaker.probe_interval, and
  // LISTEN comes back at the same pace (else up to pool.reconnect_max after a long outage).
  bool recovering = app_.breaker().state() != resilience::BreakerState::kClosed;
  int64_t delay = recovering ? recovery_.next_ms() : backoff_.next_ms();
  uv_timer_start(&retry_, on_retry, static_cast<uint64_t>(delay), 0);
}

uint64_t Control::check_timeout_ns() const {
  int64_t ms = std::max<int64_t>(2 * app_.cfg().health.check_interval_ms, 2000);
  return static_cast<uint64_t>(ms) * 1'000'000ULL;
}

void Control::on_retry(uv_timer_t* t) {
  auto* c = static_cast<Control*>(t->data);
  if (!c->stopping_ && c->conn_ == nullptr) c->connect();
}

void Control::stop() {
  stopping_ = true;
  uv_timer_stop(&retry_);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_), nullptr);
  uv_timer_stop(&check_);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  if (conn_ != nullptr) conn_->close(pg::Failure::kShutdown);
}

}  // namespace zonegate::api
