// Control connection; see control.hpp.
#include "api/control.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <utility>

#include "api/app.hpp"
#include "api/catalog.hpp"
#include "api/rpc_context.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::api {

namespace {

int64_t steady_ms() {
  return static_cast<int64_t>(uv_hrtime() / 1'000'000);
}

// Notifications held while the key is fetched (one round trip): past this many, they are
// dropped and every entry is made not fresh instead, which is always correct.
constexpr size_t kMaxHeld = 10'000;
// Notifications that failed while key re-fetches were cooling down, kept for the next one.
constexpr size_t kMaxDeferred = 64;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// notify_key()'s 64 hex digits as the key's 32 bytes; false for anything else.
bool decode_key(const std::string& hex, std::string& out) {
  if (hex.size() != 64) return false;
  out.assign(32, '\0');
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// The "op" of a payload taken unverified ("" if it has none).
std::string payload_op(const std::string& payload) {
  rapidjson::Document d;
  std::string err;
  if (!json::parse(payload, d, err) || !d.IsObject()) return "";
  auto op = d.FindMember("op");
  if (op == d.MemberEnd() || !op->value.IsString()) return "";
  return std::string(op->value.GetString(), op->value.GetStringLength());
}

}  // namespace

Control::Control(uv_loop_t* loop, App& app)
    : loop_(loop),
      app_(app),
      db_cfg_(app.cfg().database),
      backoff_(db_cfg_.pool.reconnect_min_ms, db_cfg_.pool.reconnect_max_ms),
      recovery_(app.cfg().resilience.probe_interval_ms, app.cfg().resilience.probe_interval_ms),
      refetch_cooldown_(3'000, steady_ms),
      warn_cooldown_(10'000, steady_ms),
      retry_cooldown_(10'000, steady_ms) {
  db_cfg_.pool.statement_timeout_ms = 60'000;  // catalog queries are small; never cut them short
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
  uv_timer_init(loop_, &check_);
  check_.data = this;
  uv_timer_init(loop_, &purge_timer_);
  purge_timer_.data = this;
  uv_timer_init(loop_, &refetch_timer_);
  refetch_timer_.data = this;
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
  NotifyAuthState auth = app_.notify_auth_state();
  if (!fetching_ &&
      (auth == NotifyAuthState::kRefused || auth == NotifyAuthState::kUnauthenticated) &&
      retry_cooldown_.try_acquire()) {
    fetch_key(false);  // granted meanwhile, or the extension updated: authenticate from now on
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
      // Notifications arriving from now on wait for the key (fetching_), then are verified.
      fetch_key(true);
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
    process(payload, false);
  };
  conn_ = new pg::Connection(loop_, db_cfg_, std::move(ev), "zonegate-proxy-listen");
  conn_->start();
}

void Control::listening_ready(pg::Connection* c) {
  app_.set_listening(true);
  app_.count_listen_up();
  check();
  log::info("listening for changes",
            {{"channel", "zonegate_changes"},
             {"notify_auth", notify_auth_state_name(app_.notify_auth_state())}});
  // Anything may have changed while we were not listening: tell the subscribers.
  app_.notify_change("{\"table\":\"*\",\"op\":\"RECONNECT\",\"users\":\"*\"}");
  load_catalog();
  check_trust(c);
}

void Control::fetch_key(bool after_listen) {
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) return;
  // With the key, change_seq's last value: versions below the replay window are refused, so a
  // payload captured long ago does not pass even right after the proxy starts.
  static const pg::Statement st = pg::make_statement(
      "SELECT zonegate.notify_key(), (SELECT last_value FROM zonegate.change_seq)", {});
  fetching_ = true;
  app_.count_notify_key_fetch();
  pg::Connection* c = conn_;
  pg::Job job;
  job.statements.push_back(st);
  job.done = [this, c, after_listen](const pg::Result& r) {
    fetching_ = false;
    if (!r.ok() && r.failure != pg::Failure::kSql) {
      // The connection went away: a reconnect fetches again, and makes every entry not fresh,
      // which covers what was held.
      held_.clear();
      deferred_.clear();
      return;
    }
    if (!on_key(r, after_listen)) return;  // closed the connection: a reconnect starts over
    if (after_listen) listening_ready(c);
    drain_held();
  };
  conn_->send(std::move(job));
}

bool Control::on_key(const pg::Result& r, bool after_listen) {
  const std::optional<std::string>* key_hex = nullptr;
  const std::optional<std::string>* last = nullptr;
  if (r.ok() && r.rows.size() == 1 && r.rows[0].size() == 2) {
    key_hex = r.rows[0].data();
    last = key_hex + 1;
  }
  std::string key;
  if (r.ok() && key_hex != nullptr && key_hex->has_value() && decode_key(**key_hex, key)) {
    int64_t last_version = 0;
    if (last->has_value()) last_version = std::strtoll((*last)->c_str(), nullptr, 10);
    bool was = app_.notify_auth_state() == NotifyAuthState::kAuthenticated;
    verifier_.set_key(std::move(key), last_version);
    app_.set_notify_auth(NotifyAuthState::kAuthenticated, "");
    if (!was) log::info("zonegate_changes notifications are authenticated");
    return true;
  }
  if (r.ok() || r.sqlstate == "42883" || r.sqlstate == "42501" || r.sqlstate == "3F000" ||
      r.sqlstate == "42P01") {
    key_unavailable(r);
    return true;
  }
  // Another error (a statement timeout, the server shutting down): try the connection again.
  log::warn("fetching the notification key failed", {{"error", r.message}});
  if (!after_listen) return true;  // keep the state we had; the next failure fetches again
  held_.clear();                   // the reconnect makes every entry not fresh
  if (conn_ != nullptr) conn_->close(pg::Failure::kConnection);
  return false;
}

void Control::key_unavailable(const pg::Result& r) {
  verifier_.clear_key();
  bool required = app_.cfg().cache.notify_auth == "required";
  std::string why = !r.ok() ? r.message : "zonegate.notify_key() returned no key";
  std::string hint = r.sqlstate == "42501"
                         ? "GRANT zonegate_authenticator TO the proxy's login role"
                         : "ALTER EXTENSION zonegate UPDATE (notify_key() came with 0.6)";
  NotifyAuthState next = required ? NotifyAuthState::kRefused : NotifyAuthState::kUnauthenticated;
  bool changed = app_.notify_auth_state() != next;
  app_.set_notify_auth(next, why);
  retry_cooldown_.try_acquire();  // check() tries again once the interval has passed
  if (!changed) return;           // said already
  if (required) {
    log::error(
        "zonegate_changes notifications cannot be authenticated: the cache treats the "
        "channel as down (no entry is fresh, every request goes to the database)",
        {{"error", why}, {"notify_auth", "required"}, {"hint", hint}});
  } else {
    log::warn(
        "zonegate_changes notifications are not authenticated: any database role can "
        "flush the cache or reload the /rpc catalog",
        {{"error", why}, {"notify_auth", "optional"}, {"hint", hint}});
  }
}

void Control::process(std::string payload, bool retried) {
  if (fetching_) {
    held_.push_back({std::move(payload), retried});
    if (held_.size() > kMaxHeld) {
      // Dropped: what they said is made up for by making every entry stale and reloading the
      // catalog (a RELOAD_SCHEMA may have been among them).
      held_.clear();
      app_.cache().mark_all_not_fresh();
      load_catalog();
      log::warn("too many notifications while fetching the key: every cache entry is now stale",
                {{"held", static_cast<int64_t>(kMaxHeld)}});
    }
    return;
  }
  switch (app_.notify_auth_state()) {
    case NotifyAuthState::kPending:
    case NotifyAuthState::kRefused:
      return;  // the channel is down for the cache: nothing it says is used
    case NotifyAuthState::kUnauthenticated:
      apply_unverified(payload);
      return;
    case NotifyAuthState::kAuthenticated:
      break;
  }
  cache::NotifyMessage m;
  cache::NotifyVerdict v = verifier_.verify(payload, &m);
  if (v.reject == cache::NotifyReject::kNone) {
    apply(m);
    return;
  }
  // A bad MAC may mean a new key (rotate_notify_key()); a version below the window, that
  // change_seq went back. Fetch both again (at most once per few seconds) and retry once.
  bool may_recover = v.reject == cache::NotifyReject::kBadMac || v.too_old;
  if (may_recover && !retried) {
    if (refetch_cooldown_.try_acquire()) {
      held_.push_back({std::move(payload), true});
      fetch_key(false);
      return;
    }
    deferred_.push_back({std::move(payload), true, v.reject});
    if (deferred_.size() > kMaxDeferred) {
      reject(deferred_.front().why);
      deferred_.pop_front();
    }
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&refetch_timer_)) == 0) {
      uv_timer_start(&refetch_timer_, on_refetch_timer,
                     static_cast<uint64_t>(std::max<int64_t>(1, refetch_cooldown_.remaining_ms())),
                     0);
    }
    return;
  }
  reject(v.reject);
}

void Control::apply(const cache::NotifyMessage& m) {
  if (m.op == "RELOAD_SCHEMA") {
    log::info("reloading the /rpc catalog", {{"reason", "zonegate.reload_schema()"}});
    load_catalog();
    return;
  }
  app_.notify_change(m.json);
  arm_purge();
  if (m.op == "WATCH") {
    // What is watched changed (watch_table, unwatch_table, DDL on a watched table): check the
    // cached functions' tables again; the cache dropped what depends on them meanwhile.
    log::info("reloading the /rpc catalog", {{"reason", "a watched table changed"}});
    load_catalog();
  }
}

void Control::apply_unverified(const std::string& payload) {
  // cache.notify_auth optional without a key: what every proxy did before 0.6.
  if (payload == "reload schema" || payload_op(payload) == "RELOAD_SCHEMA") {
    log::info("reloading the /rpc catalog", {{"reason", "NOTIFY (unauthenticated)"}});
    load_catalog();
    return;
  }
  app_.notify_change(payload);
  arm_purge();
  if (payload_op(payload) == "WATCH") load_catalog();
}

void Control::reject(cache::NotifyReject why) {
  app_.count_notify_rejected(why);
  ++rejected_since_warn_;
  if (!warn_cooldown_.try_acquire()) return;
  log::warn("zonegate_changes notification ignored",
            {{"reason", cache::notify_reject_name(why)},
             {"ignored_since_last_warning", rejected_since_warn_},
             {"hint", why == cache::NotifyReject::kUnsigned
                          ? "notifications must come from the extension (signed); "
                            "reload the catalog with SELECT zonegate.reload_schema()"
                          : "see zonegate_notify_rejected_total and docs/TROUBLESHOOTING.md"}});
  rejected_since_warn_ = 0;
}

void Control::drain_held() {
  std::deque<Held> held = std::move(held_);
  held_.clear();
  while (!held.empty()) {
    if (fetching_) {
      // Another fetch started (a retried failure): what is left waits for it, in order.
      held_.insert(held_.end(), std::make_move_iterator(held.begin()),
                   std::make_move_iterator(held.end()));
      return;
    }
    Held h = std::move(held.front());
    held.pop_front();
    process(std::move(h.payload), h.retried);
  }
}

void Control::arm_purge() {
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&purge_timer_)) != 0) return;
  int64_t purged = -1;
  int64_t wait = app_.cache().run_pending_purge(&purged);
  if (purged >= 0) log::debug("coalesced flushes purged", {{"entries", purged}});
  if (wait >= 0) uv_timer_start(&purge_timer_, on_purge_timer, static_cast<uint64_t>(wait), 0);
}

void Control::on_purge_timer(uv_timer_t* t) {
  static_cast<Control*>(t->data)->arm_purge();
}

void Control::on_refetch_timer(uv_timer_t* t) {
  auto* c = static_cast<Control*>(t->data);
  std::deque<Held> deferred = std::move(c->deferred_);
  c->deferred_.clear();
  if (c->conn_ == nullptr || c->conn_->state() != pg::Connection::State::kReady) return;
  if (!c->fetching_ && !c->refetch_cooldown_.try_acquire()) {
    // Not yet (the timer fired early): keep them for the next round.
    c->deferred_ = std::move(deferred);
    uv_timer_start(t, on_refetch_timer,
                   static_cast<uint64_t>(std::max<int64_t>(1, c->refetch_cooldown_.remaining_ms())),
                   0);
    return;
  }
  // Older than anything arriving during the fetch: first in line.
  c->held_.insert(c->held_.begin(), std::make_move_iterator(deferred.begin()),
                  std::make_move_iterator(deferred.end()));
  if (!c->fetching_) c->fetch_key(false);
}

// One catalog load in flight: the signature entries resolved so far.
struct CatalogLoad {
  std::shared_ptr<const config::Config> cfg;  // the allow-list loaded (a reload's, or the start's)
  size_t pending = 0;
  bool broken = false;            // the connection failed under it: the reconnect loads again
  std::vector<std::string> oids;  // of the overloads signature entries resolved to
  std::optional<Catalog> roles;   // the roles and rpc.pre_request (api/rpc_context.hpp)
};

// Resolves the signature entries (one statement each: an unknown type is an error in
// PostgreSQL 15, and it must cost that entry only), then reads the catalog.
void Control::load_catalog() {
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) return;
  auto load = std::make_shared<CatalogLoad>();
  load->cfg = app_.live();
  const config::RpcConfig& rpc = load->cfg->rpc;
  for (const config::RpcEntry& e : rpc.functions) {
    if (!e.has_signature()) continue;
    ++load->pending;
    pg::Job job;
    job.statements.push_back(signature_statement(rpc.schema, e.name, e.args));
    job.done = [this, load, text = e.text](pg::Result r) {
      const std::string where = load->cfg->rpc.schema + "." + text;
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
  const config::Config& cfg = *load->cfg;
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
  // The roles a request may switch to, read just before (same connection, in order).
  pg::Job roles;
  roles.statements.push_back(rpc::roles_statement(rpc::pre_request_regproc(cfg.rpc)));
  roles.done = [load](pg::Result r) {
    if (!r.ok()) {
      log::error("loading the roles /rpc may switch to failed: no role is switched to",
                 {{"error", r.message}});
      return;
    }
    try {
      load->roles.emplace();
      rpc::roles_from_rows(r.rows, *load->roles);
    } catch (const std::exception& e) {
      load->roles.reset();
      log::error("the roles /rpc may switch to could not be read", {{"error", e.what()}});
    }
  };
  conn_->send(std::move(roles));
  pg::Job job;
  job.statements.push_back(catalog_statement(q));
  job.done = [this, load, shared = q.shared](pg::Result r) {
    auto cat = std::make_shared<Catalog>();
    const std::string& schema = load->cfg->rpc.schema;
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
    if (load->roles) {
      cat->roles = std::move(load->roles->roles);
      cat->roles_loaded = load->roles->roles_loaded;
      cat->pre_request_found = load->roles->pre_request_found;
    }
    cat->cfg = load->cfg;
    if (cat->error.empty()) report(*cat);
    if (cat->error.empty()) rpc::report_roles(*load->cfg, *cat);
    const auto n = static_cast<int64_t>(cat->functions.size());
    const auto refused = static_cast<int64_t>(cat->refused.size());
    bool zone_at = cat->zone_at;
    app_.set_catalog(std::move(cat));  // before the log line: readers may act on it at once
    log::info("/rpc catalog loaded",
              {{"functions", n}, {"refused", refused}, {"zone_at", zone_at}});
  };
  conn_->send(std::move(job));
  check_dependencies();
}

// Reads, for every application table a cache.rpc policy depends on, whether it exists and is
// watched (zonegate.watched_tables(), extension 0.7), and gives the cache the index it
// invalidates by: a function that reads a table that is not watched is not cached, and the
// log says what to run (docs/CONFIG.md, "cache").
void Control::check_dependencies() {
  const config::CacheConfig& cc = app_.cfg().cache;
  std::vector<config::TableRef> tables = cache::depends_on_tables(cc);
  if (tables.empty()) {
    app_.cache().set_dependencies(cache::build_dependency_index(cc, {}, true, ""));
    return;
  }
  std::vector<std::string> schemas, names;
  for (const config::TableRef& t : tables) {
    schemas.push_back(t.schema);
    names.push_back(t.name);
  }
  static const char* const kSql =
      "SELECT d.i, c.oid, pg_catalog.quote_ident(n.nspname) || '.' || "
      "       pg_catalog.quote_ident(c.relname), coalesce(w.watched, false), w.problem "
      "FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) WITH ORDINALITY AS d(s, t, i) "
      "LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = d.s "
      "LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = d.t "
      "LEFT JOIN zonegate.watched_tables() w ON w.relid = c.oid "
      "ORDER BY d.i";
  pg::Job job;
  job.statements.push_back(
      pg::make_statement(kSql, {pg_text_array(schemas), pg_text_array(names)}));
  job.done = [this, tables](const pg::Result& r) {
    const config::CacheConfig& cc = app_.cfg().cache;
    if (!r.ok() && r.failure != pg::Failure::kSql) return;  // the reconnect checks again
    std::vector<cache::TableState> states;
    std::string why;
    if (!r.ok()) {
      why = r.sqlstate == "42883" || r.sqlstate == "3F000"
                ? "the zonegate extension cannot watch tables before 0.7 (ALTER EXTENSION "
                  "zonegate UPDATE)"
                : "checking the tables failed: " + r.message;
      log::error("checking the tables cached /rpc functions depend on failed",
                 {{"error", r.message}, {"effect", "functions that read them are not cached"}});
    }
    for (const auto& row : r.rows) {
      if (row.size() != 5 || !row[0]) continue;
      size_t i = std::strtoul(row[0]->c_str(), nullptr, 10);
      if (i == 0 || i > tables.size()) continue;
      cache::TableState st;
      st.ref = tables[i - 1];
      if (row[1]) st.oid = static_cast<uint32_t>(std::strtoul(row[1]->c_str(), nullptr, 10));
      st.canonical = row[2].value_or(st.ref.text);
      st.watched = row[3].value_or("f") == "t";
      st.problem = row[4].value_or("");
      states.push_back(std::move(st));
    }
    cache::DependencyIndex idx = cache::build_dependency_index(cc, states, r.ok(), why);
    for (const cache::CacheRefusal& f : idx.refused) {
      log::error(
          "cached /rpc function not cached: a table it reads is not watched",
          {{"function", f.function}, {"table", f.table}, {"reason", f.reason}, {"hint", f.hint}});
    }
    app_.cache().set_dependencies(std::move(idx));
  };
  conn_->send(std::move(job));
}

// Logs what a load found wrong: the schema, refused overloads, refused shared scopes, names
// that match nothing. Operators read these; /health lists the refusals too.
void Control::report(const Catalog& cat) {
  const config::Config& cfg = *cat.cfg;
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
  uv_timer_stop(&purge_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&purge_timer_), nullptr);
  uv_timer_stop(&refetch_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&refetch_timer_), nullptr);
  if (conn_ != nullptr) conn_->close(pg::Failure::kShutdown);
}

}  // namespace zonegate::api
