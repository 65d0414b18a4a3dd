// The control connection on the main thread: LISTEN zonegate_changes, load the /rpc catalog at
// start and on NOTIFY zonegate_changes, 'reload schema', reconnect with backoff when it drops
// (and then reload, since notifications may have been missed).
#pragma once

#include <uv.h>

#include <memory>

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

 private:
  void connect();
  void load_catalog();
  void read_catalog(const std::shared_ptr<CatalogLoad>& load);
  void report(const Catalog& cat);
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
};

}  // namespace zonegate::api
