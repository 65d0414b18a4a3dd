// Live reload (SIGHUP): App::reload and its status; see app.hpp and config/reload.hpp.
#include "api/app.hpp"
#include "api/control.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::api {

void App::reload(const config::LoadResult& loaded) {
  const int64_t now_ms = json::now_unix_ms();
  auto refuse = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(reload_mu_);
    ++reload_status_.refused;
    reload_status_.last_ms = now_ms;
    reload_status_.last_result = "refused";
    reload_status_.last_error = why;
  };
  if (!loaded.ok()) {
    // Every problem with its line:column; nothing of the file is applied.
    for (const config::Diagnostic& d : loaded.errors)
      log::error("config reload refused", {{"problem", d.to_string()}});
    refuse(loaded.errors.front().to_string() +
           (loaded.errors.size() > 1
                ? " (and " + std::to_string(loaded.errors.size() - 1) + " more)"
                : std::string()));
    log::warn("config reload refused: the running configuration stays",
              {{"file", cfg_.source}, {"problems", static_cast<int64_t>(loaded.errors.size())}});
    return;
  }
  const std::shared_ptr<const config::Config> running = live();
  config::ReloadPlan plan =
      config::plan_reload(*running, loaded.config, rate_limiter_->uses_redis());
  if (!plan.ok()) {
    for (const std::string& why : plan.refusals)
      log::error("config reload refused", {{"problem", why}});
    refuse(plan.refusals.front());
    log::warn("config reload refused: the running configuration stays", {{"file", cfg_.source}});
    return;
  }
  // The new verifier first: keys that do not load refuse the whole reload.
  std::shared_ptr<const auth::Verifier> verifier = this->verifier();
  if (plan.changed("auth.jwt.")) {
    std::string error;
    if (!make_verifier(plan.effective.auth.jwt, verifier, error)) {
      log::error("config reload refused", {{"problem", "auth.jwt: " + error}});
      refuse("auth.jwt: " + error);
      log::warn("config reload refused: the running configuration stays", {{"file", cfg_.source}});
      return;
    }
  }
  std::vector<std::string> pending;
  for (const config::ConfigChange& ch : plan.changes) {
    if (ch.live) {
      log::info("config changed", {{"key", ch.key}, {"from", ch.before}, {"to", ch.after}});
    } else {
      pending.push_back(ch.key);
      log::warn("config change needs a restart: the running value stays",
                {{"key", ch.key}, {"running", ch.before}, {"file", ch.after}});
    }
  }
  const size_t applied = plan.live_count();
  if (applied > 0) {
    auto effective = std::make_shared<const config::Config>(std::move(plan.effective));
    std::atomic_store(&verifier_, std::move(verifier));
    std::atomic_store(&live_, effective);
    if (plan.changed("rate_limit.policies"))
      rate_limiter_->reconfigure(effective->rate_limit.policies);
    if (plan.changed("auth.admin_token")) admin_auth_->set_token(effective->auth.admin_token);
    generation_.fetch_add(1, std::memory_order_acq_rel);  // the workers: pools, verifier
    if (plan.changed("rpc.") && control_) control_->reload_catalog();
  }
  {
    std::lock_guard<std::mutex> lock(reload_mu_);
    ++(applied > 0 ? reload_status_.applied : reload_status_.unchanged);
    reload_status_.last_ms = now_ms;
    reload_status_.last_result = applied > 0 ? "applied" : "unchanged";
    reload_status_.last_error.clear();
    reload_status_.restart_pending = pending;
  }
  log::info("config reloaded", {{"file", cfg_.source},
                                {"generation", static_cast<int64_t>(generation())},
                                {"applied", static_cast<int64_t>(applied)},
                                {"restart_needed", static_cast<int64_t>(pending.size())}});
  // Last, so the lines above are written at the level they were asked at.
  if (applied > 0) {
    log::Level level = log::Level::kInfo;
    log::parse_level(live()->log.level, level);
    log::set_level(level);
  }
}

ReloadStatus App::reload_status() const {
  std::lock_guard<std::mutex> lock(reload_mu_);
  return reload_status_;
}

}  // namespace zonegate::api
