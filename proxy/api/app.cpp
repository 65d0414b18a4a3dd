// Application assembly; see app.hpp.
#include "api/app.hpp"

#include "api/control.hpp"
#include "common/log.hpp"

namespace zonegate::api {

WorkerState::WorkerState(uv_loop_t* loop, const config::Config& cfg,
                         std::shared_ptr<const auth::Verifier> verifier)
    : pool(loop, cfg.database), auth(std::move(verifier), cfg.auth.admin_token) {
  pool.start();
}

App::App(config::Config cfg) : cfg_(std::move(cfg)), catalog_(std::make_shared<Catalog>()) {}

App::~App() = default;

bool App::init(std::string& error) {
  const config::JwtSettings& j = cfg_.auth.jwt;
  bool has_keys = !j.secret.empty() || !j.public_key.empty();
  if (!has_keys) {
    // Allowed in the dev profile only (the loader refuses it in prod): every token is refused.
    log::warn("no JWT secret or public key configured: authenticated routes answer 401");
    return true;
  }
  auth::JwtConfig jc;
  jc.algorithms = j.algorithms;
  jc.secret = j.secret;
  jc.public_key_pem = j.public_key;
  jc.issuer = j.issuer;
  jc.audience = j.audience;
  jc.leeway_s = j.leeway_ms / 1000;
  jc.subject_claim = j.subject_claim;
  jc.role_claim = j.role_claim;
  std::unique_ptr<auth::Verifier> v = auth::Verifier::create(jc, error);
  if (!v) return false;
  verifier_ = std::move(v);
  return true;
}

std::unique_ptr<http::WorkerContext> App::make_worker(http::Worker& w) {
  return std::make_unique<WorkerState>(w.loop(), cfg_, verifier_);
}

void App::start_control(uv_loop_t* main_loop) {
  control_ = std::make_unique<Control>(main_loop, *this);
  control_->start();
}

void App::stop_control() {
  if (control_) control_->stop();
}

void App::notify_change(const std::string& payload) {
  for (auto& fn : change_subscribers_)
    fn(payload);
}

WorkerState& worker_state(const http::ExchangePtr& ex) {
  return ex->worker().context_as<WorkerState>();
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
}

}  // namespace zonegate::api
