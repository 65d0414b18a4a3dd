// The control connection on the main thread: LISTEN zonegate_changes, fetch the key that signs
// its notifications (zonegate.notify_key()), verify each one and hand it to the cache, load the
// /rpc catalog at start and on a signed RELOAD_SCHEMA (zonegate.reload_schema()), reconnect with
// backoff when it drops (and then reload, since notifications may have been missed). See
// docs/SECURITY.md, "The change channel".
#pragma once

#include <uv.h>

#include <deque>
#include <memory>
#include <string>

#include "cache/notify_verifier.hpp"
#include "common/backoff.hpp"
#include "config/config.hpp"
#include "pg/connection.hpp"

namespace zonegate::api {

class App;
struct Catalog;
struct CatalogLoad;

class Control {
 public:
  Control(uv_loop_t* loop, App& app);
  ~Control();
  void start();
  void stop();
  // Loads the /rpc catalog again, for App::live()'s allow-list (a reload changed it); when the
  // connection is down, its reconnect loads it.
  void reload_catalog() { load_catalog(); }

 private:
  void connect();
  void load_catalog();
  void read_catalog(const std::shared_ptr<CatalogLoad>& load);
  // Whether the application tables cached functions read are watched (after each load).
  void check_dependencies();
  static void report(const Catalog& cat);
  // Warns once per connection when the login role may not set identities (docs/SECURITY.md).
  static void check_trust(pg::Connection* c);
  void schedule_reconnect();
  static void on_retry(uv_timer_t* t);
  static void on_check(uv_timer_t* t);
  void check();

  uv_loop_t* loop_;
  App& app_;
  config::DatabaseConfig db_cfg_;
  pg::Connection* conn_ = nullptr;  // owned; deleted in its on_closed
  uv_timer_t retry_{};
  uv_timer_t check_{};  // health.check_interval: a round trip to the database
  bool check_in_flight_ = false;
  std::string last_error_;
  bool stopping_ = false;
  Backoff backoff_;
  Backoff recovery_;  // while the breaker is open
  uint64_t check_started_ns_ = 0;
  uint64_t check_timeout_ns() const;

  // The key phase after LISTEN, and the re-fetches after a failed verification.
  void fetch_key(bool after_listen);
  // False when it closed the connection (an unexpected error right after LISTEN).
  bool on_key(const pg::Result& r, bool after_listen);
  // The key cannot be read (an extension before 0.6, or a login outside
  // zonegate_authenticator): cache.notify_auth decides, and the log says what to do.
  void key_unavailable(const pg::Result& r);
  // LISTEN and the key phase are done: the channel is up (if trusted), the catalog reloads.
  void listening_ready(pg::Connection* c);
  // A notification's way: held while the key is fetched, then verified (or, unauthenticated,
  // taken as is), then applied or rejected. `retried`: it failed once and a re-fetch followed.
  void process(std::string payload, bool retried);
  void apply(const cache::NotifyMessage& m);
  void apply_unverified(const std::string& payload);
  void reject(cache::NotifyReject why);
  void drain_held();
  // Starts the timer of a coalesced flush's purge, if one is pending.
  void arm_purge();
  static void on_purge_timer(uv_timer_t* t);
  static void on_refetch_timer(uv_timer_t* t);

  struct Held {
    std::string payload;
    bool retried = false;
    cache::NotifyReject why = cache::NotifyReject::kNone;  // deferred: what it failed with
  };
  cache::NotifyVerifier verifier_;
  cache::Cooldown refetch_cooldown_;  // key re-fetches after failures: at most one per 3 s
  cache::Cooldown warn_cooldown_;     // the warning about rejected notifications: one per 10 s
  cache::Cooldown retry_cooldown_;    // fetching an unavailable key again: every 10 s
  bool fetching_ = false;
  std::deque<Held> held_;      // arrived while the key was being fetched
  std::deque<Held> deferred_;  // failed while re-fetches were cooling down
  int64_t rejected_since_warn_ = 0;
  uv_timer_t purge_timer_{};
  uv_timer_t refetch_timer_{};
};

}  // namespace zonegate::api
