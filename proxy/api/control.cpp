// Control connection; see control.hpp.
#include "api/control.hpp"

#include <algorithm>

#include "api/app.hpp"
#include "api/catalog.hpp"
#include "common/log.hpp"

namespace zonegate::api {

Control::Control(uv_loop_t* loop, App& app) : loop_(loop), app_(app), db_cfg_(app.cfg().database) {
  db_cfg_.pool.statement_timeout_ms = 60'000;  // catalog queries are small; never cut them short
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
}

Control::~Control() = default;

void Control::start() {
  connect();
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
      attempt_ = 0;
      app_.set_listening(true);
      log::info("listening for changes", {{"channel", "zonegate_changes"}});
      // Anything may have changed while we were not listening: tell the subscribers.
      app_.notify_change("{\"table\":\"*\",\"op\":\"RECONNECT\",\"users\":\"*\"}");
      load_catalog();
    };
    c->send(std::move(job));
  };
  ev.on_broken = [this](pg::Connection*, const std::string& why) {
    app_.set_listening(false);
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

void Control::load_catalog() {
  if (conn_ == nullptr || conn_->state() != pg::Connection::State::kReady) return;
  const config::RpcConfig& rpc = app_.cfg().rpc;
  pg::Job job;
  job.statements.push_back(catalog_statement(rpc.schema, rpc.functions));
  job.done = [this](pg::Result r) {
    auto cat = std::make_shared<Catalog>();
    if (!r.ok()) {
      cat->error = r.message;
      log::error("loading the /rpc catalog failed", {{"error", r.message}});
      auto old = app_.catalog();
      if (old) return;  // keep serving what we had
    } else {
      try {
        *cat = catalog_from_rows(app_.cfg().rpc.schema, r.rows);
      } catch (const std::exception& e) {
        cat->error = e.what();
        log::error("the /rpc catalog could not be read", {{"error", cat->error}});
      }
    }
    for (const std::string& name : app_.cfg().rpc.functions) {
      if (cat->error.empty() && cat->functions.find(name) == cat->functions.end()) {
        log::warn("allow-listed function not found",
                  {{"function", app_.cfg().rpc.schema + "." + name}});
      }
    }
    log::info("/rpc catalog loaded", {{"functions", static_cast<int64_t>(cat->functions.size())},
                                      {"zone_at", cat->zone_at}});
    app_.set_catalog(std::move(cat));
  };
  conn_->send(std::move(job));
}

void Control::schedule_reconnect() {
  uint64_t cap = static_cast<uint64_t>(db_cfg_.pool.reconnect_min_ms) << std::min(attempt_, 20);
  cap = std::min<uint64_t>(cap, static_cast<uint64_t>(db_cfg_.pool.reconnect_max_ms));
  ++attempt_;
  uv_timer_start(&retry_, on_retry, cap == 0 ? 0 : rng_() % (cap + 1), 0);
}

void Control::on_retry(uv_timer_t* t) {
  auto* c = static_cast<Control*>(t->data);
  if (!c->stopping_ && c->conn_ == nullptr) c->connect();
}

void Control::stop() {
  stopping_ = true;
  uv_timer_stop(&retry_);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_), nullptr);
  if (conn_ != nullptr) conn_->close(pg::Failure::kShutdown);
}

}  // namespace zonegate::api
