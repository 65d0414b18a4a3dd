// zonegate-proxy entry point: command line, config, signals, and the server's lifetime.
#include <csignal>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <memory>
#include <string>
#include <functional>
#include <vector>

#include "admin/health.hpp"
#include "admin/metrics.hpp"
#include "api/app.hpp"
#include "api/observer.hpp"
#include "auth/jwt.hpp"
#include "common/json.hpp"
#include "common/cidr.hpp"
#include "common/log.hpp"
#include "config/config.hpp"
#include "core/version.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

using namespace zonegate;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: zonegate-proxy [--config FILE] [--check-config]\n"
      "       zonegate-proxy --version\n"
      "\n"
      "  --config FILE    configuration file (default: $ZONEGATE_CONFIG or zonegate.yaml)\n"
      "  --check-config   validate the configuration, print problems, exit 0 or 1\n"
      "  --version        print the version and exit\n");
}

struct Options {
  std::string config_path;
  bool check_only = false;
  bool token = false;
  std::string token_sub;
  std::string token_role;
  int64_t token_ttl = 3600;
};

config::LoadResult load_or_report(const std::string& path) {
  config::LoadResult loaded = config::load_file(path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "zonegate-proxy: %zu problem%s in %s:\n", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s", path.c_str());
    for (const auto& d : loaded.errors)
      std::fprintf(stderr, "  %s\n", d.to_string().c_str());
  }
  return loaded;
}

// zonegate-proxy token: mints a JWT for development and tests.
int mint_token(const Options& opt) {
  config::LoadResult loaded = load_or_report(opt.config_path);
  if (!loaded.ok()) return 1;
  const config::Config& cfg = loaded.config;
  if (cfg.profile == "prod") {
    std::fprintf(stderr, "zonegate-proxy: token minting is refused in the prod profile\n");
    return 1;
  }
  // The key without a kid, else the first HS256 key of auth.jwt.keys (its kid in the header).
  const config::JwtSettings& jwt = cfg.auth.jwt;
  std::string secret = jwt.secret, kid;
  for (const config::JwtKeySettings& k : jwt.keys) {
    if (secret.empty() && k.alg == "HS256") {
      secret = k.secret;
      kid = k.kid;
    }
  }
  if (secret.empty()) {
    std::fprintf(stderr,
                 "zonegate-proxy: token needs an HS256 key (auth.jwt.secret or keys) in %s\n",
                 opt.config_path.c_str());
    return 1;
  }
  if (jwt.max_age_ms > 0 && opt.token_ttl * 1000 > jwt.max_age_ms) {
    std::fprintf(stderr, "zonegate-proxy: --ttl %lld exceeds auth.jwt.max_age (%llds)\n",
                 static_cast<long long>(opt.token_ttl),
                 static_cast<long long>(jwt.max_age_ms / 1000));
    return 1;
  }
  // The role goes where the proxy reads it: auth.jwt.role_claim_key's members, nested.
  auth::ClaimPath role_path = auth::member_path(jwt.role_claim);
  if (!jwt.role_claim_key.empty()) auth::parse_claim_path(jwt.role_claim_key, role_path);
  for (const auth::ClaimStep& step : role_path) {
    if (step.is_index && !opt.token_role.empty()) {
      std::fprintf(stderr, "zonegate-proxy: --role cannot follow auth.jwt.role_claim_key %s\n",
                   jwt.role_claim_key.c_str());
      return 1;
    }
  }
  const auto now = static_cast<int64_t>(std::time(nullptr));
  json::Writer w;
  w.start_object();
  w.field(cfg.auth.jwt.subject_claim, opt.token_sub);
  if (!opt.token_role.empty()) {
    for (size_t i = 0; i + 1 < role_path.size(); ++i) {
      w.key(role_path[i].key);
      w.start_object();
    }
    w.field(role_path.back().key, opt.token_role);
    for (size_t i = 0; i + 1 < role_path.size(); ++i)
      w.end_object();
  }
  w.field("iat", now);
  w.field("exp", now + opt.token_ttl);
  if (!cfg.auth.jwt.issuer.empty()) w.field("iss", cfg.auth.jwt.issuer);
  if (!cfg.auth.jwt.audience.empty()) w.field("aud", cfg.auth.jwt.audience.front());
  w.end_object();
  std::printf("%s\n", auth::sign_hs256(secret, w.take(), kid).c_str());
  return 0;
}

struct MainLoop {
  uv_loop_t* loop = uv_default_loop();
  uv_signal_t sigterm{}, sigint{}, sighup{};
  uv_timer_t drain_timer{};
  uv_timer_t sampler{};
  uv_timer_t rate_sweep{};
  uv_async_t worker_exit{};
  http::Server* server = nullptr;
  api::App* app = nullptr;
  int64_t drain_timeout_ms = 0;
  bool draining = false;
  std::string config_path;
};

MainLoop g_main;

void close_main_handles() {
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.sighup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.drain_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.sampler), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.rate_sweep), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&g_main.worker_exit), nullptr);
}

void on_stop_signal(uv_signal_t*, int signum) {
  if (g_main.draining) {
    log::warn("second stop signal: closing all connections now");
    g_main.server->force_close();
    return;
  }
  g_main.draining = true;
  log::info("draining", {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"},
                         {"drain_timeout_ms", g_main.drain_timeout_ms}});
  g_main.server->drain();
  uv_timer_start(
      &g_main.drain_timer,
      [](uv_timer_t*) {
        log::warn("drain timeout reached: closing remaining connections");
        g_main.server->force_close();
      },
      static_cast<uint64_t>(g_main.drain_timeout_ms), 0);
}

// SIGHUP: the log file is reopened (after rotation) and the configuration read again; the
// live keys of a valid file apply to new requests (docs/CONFIG.md, "Reloading").
void on_hup(uv_signal_t*, int) {
  log::reopen();
  log::info("SIGHUP: log file reopened; reloading the configuration",
            {{"file", g_main.config_path}});
  if (g_main.draining) {
    log::warn("config reload skipped: the proxy is draining");
    return;
  }
  g_main.app->reload(config::load_file(g_main.config_path));
}

void on_worker_exit(uv_async_t*) {
  if (g_main.server->workers_running() == 0) {
    if (g_main.app != nullptr) g_main.app->stop_control();
    close_main_handles();
  }
}

int run(const Options& opt) {
  config::LoadResult loaded = config::load_file(opt.config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "zonegate-proxy: %zu problem%s in %s:\n", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s", opt.config_path.c_str());
    for (const auto& d : loaded.errors)
      std::fprintf(stderr, "  %s\n", d.to_string().c_str());
    return 1;
  }
  const config::Config& cfg = loaded.config;
  if (opt.check_only) {
    std::printf("%s: configuration is valid (profile %s)\n", opt.config_path.c_str(),
                cfg.profile.c_str());
    return 0;
  }
  log::Level level = log::Level::kInfo;
  log::parse_level(cfg.log.level, level);
  std::string log_error;
  log::set_flush_interval_ms(cfg.log.access_log_flush_ms);
  if (!log::configure(level, cfg.log.file, &log_error)) {
    std::fprintf(stderr, "zonegate-proxy: %s\n", log_error.c_str());
    return 1;
  }
  // Worker batches are written off the event loops from here on; the rest is written when main
  // returns (after the workers flushed theirs).
  struct WriterThread {
    WriterThread() { log::start_writer(); }
    ~WriterThread() { log::stop_writer(); }
  } writer_thread;

  api::App app(cfg);
  std::string init_error;
  if (!app.init(init_error)) {
    std::fprintf(stderr, "zonegate-proxy: %s\n", init_error.c_str());
    return 1;
  }
  http::Router router;
  admin::add_health_routes(router, [&app](const http::ExchangePtr& ex) {
    return admin::Readiness{api::worker_state(ex).pool.has_ready(), app.listening(),
                            app.breaker().state() == resilience::BreakerState::kClosed};
  });
  app.add_routes(router);
  // The request path, step by step: each returns false when it has answered the request.
  using Step = std::function<bool(const http::ExchangePtr&)>;
  const std::vector<Step> steps = {
      [&app](const http::ExchangePtr& ex) { return app.rate_limit_step(ex); },
      [&router](const http::ExchangePtr& ex) {
        router.handle(ex);
        return false;
      },
  };
  // Load balancers (rate_limit.trusted_proxies) carry many clients: no per-address cap for them.
  std::vector<net::Cidr> exempt;
  for (const std::string& t : cfg.rate_limit.trusted_proxies) {
    net::Cidr c;
    std::string ignored;  // validated by the loader
    if (net::Cidr::parse(t, c, ignored)) exempt.push_back(c);
  }
  // A request whose rate-limit decision waited for Redis goes on from the step after it.
  app.rate_limiter().set_continuation([&steps](const http::ExchangePtr& ex) {
    for (size_t i = 1; i < steps.size(); ++i)
      if (!steps[i](ex)) return;
  });
  http::Server server(
      cfg.server,
      [&steps](const http::ExchangePtr& ex) {
        for (const Step& step : steps)
          if (!step(ex)) return;
      },
      std::move(exempt));
  server.set_admin_listener(cfg.admin);
  server.set_context_factory([&app](http::Worker& w) { return app.make_worker(w); });
  std::string err;
  if (!server.bind(err)) {
    log::error("startup failed", {{"error", err}});
    std::fprintf(stderr, "zonegate-proxy: %s\n", err.c_str());
    return 1;
  }
  app.create_registry(server.worker_count());
  app.registry()->add_source(&server);
  metrics::Registry* registry = cfg.metrics.enabled ? app.registry() : nullptr;
  if (http::ResponseObserver o = api::make_response_observer(cfg, registry)) {
    server.set_observer(std::move(o));
  }

  g_main.server = &server;
  g_main.app = &app;
  g_main.drain_timeout_ms = cfg.server.drain_timeout_ms;
  g_main.config_path = opt.config_path;
  uv_signal_init(g_main.loop, &g_main.sigterm);
  uv_signal_init(g_main.loop, &g_main.sigint);
  uv_signal_init(g_main.loop, &g_main.sighup);
  uv_signal_start(&g_main.sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&g_main.sigint, on_stop_signal, SIGINT);
  uv_signal_start(&g_main.sighup, on_hup, SIGHUP);
  uv_timer_init(g_main.loop, &g_main.drain_timer);
  // Once a second: a point of the dashboard's time series.
  uv_timer_init(g_main.loop, &g_main.sampler);
  g_main.sampler.data = &app;
  if (registry != nullptr) {
    uv_timer_start(
        &g_main.sampler,
        [](uv_timer_t* t) {
          auto* a = static_cast<api::App*>(t->data);
          cache::CacheStats c = a->cache().stats();
          const auto served = static_cast<double>(c.hits + c.stale + c.coalesced);
          auto now =
              std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
          a->registry()->sample(served, served + static_cast<double>(c.misses), now.count());
        },
        1000, 1000);
  }
  // Every 5 s: rate-limit keys whose bucket has refilled carry no state and are dropped (a
  // reload may add policies: the timer runs either way, a no-op without them).
  uv_timer_init(g_main.loop, &g_main.rate_sweep);
  g_main.rate_sweep.data = &app;
  uv_timer_start(
      &g_main.rate_sweep,
      [](uv_timer_t* t) { static_cast<api::App*>(t->data)->rate_limiter().sweep(); }, 5000, 5000);
  uv_async_init(g_main.loop, &g_main.worker_exit, on_worker_exit);
  server.set_on_worker_exit([] { uv_async_send(&g_main.worker_exit); });

  server.start();
  app.start_control(g_main.loop);
  if (cfg.admin.enabled) {
    log::info("admin listening", {{"host", cfg.admin.host}, {"port", server.admin_port()}});
  }
  log::info("listening", {{"host", cfg.server.host},
                          {"port", server.port()},
                          {"workers", server.worker_count()},
                          {"version", ZONEGATE_VERSION},
                          {"profile", cfg.profile}});
  uv_run(g_main.loop, UV_RUN_DEFAULT);
  server.join();
  uv_loop_close(g_main.loop);
  log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options opt;
  const char* env_config = std::getenv("ZONEGATE_CONFIG");
  opt.config_path = env_config != nullptr ? env_config : "zonegate.yaml";
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "token") {
    opt.token = true;
    args.erase(args.begin());
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (opt.token && (a == "--sub" || a == "--role" || a == "--ttl")) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "zonegate-proxy: %s needs a value\n", a.c_str());
        return 2;
      }
      const std::string& v = args[++i];
      if (a == "--sub") opt.token_sub = v;
      if (a == "--role") opt.token_role = v;
      if (a == "--ttl") {
        char* end = nullptr;
        long long ttl = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || ttl <= 0 || ttl > 10LL * 365 * 86400) {
          std::fprintf(stderr, "zonegate-proxy: --ttl must be a positive number of seconds\n");
          return 2;
        }
        opt.token_ttl = ttl;
      }
      continue;
    }
    if (a == "--version" || a == "-V") {
      std::printf("zonegate-proxy %s\n", ZONEGATE_VERSION);
      return 0;
    }
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "zonegate-proxy: --config needs a file name\n");
        return 2;
      }
      opt.config_path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      opt.config_path = a.substr(9);
    } else if (a == "--check-config") {
      opt.check_only = true;
    } else {
      std::fprintf(stderr, "zonegate-proxy: unknown argument \"%s\"\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (opt.token) {
    if (opt.token_sub.empty()) {
      std::fprintf(stderr, "zonegate-proxy: token needs --sub ID\n");
      return 2;
    }
    return mint_token(opt);
  }
  return run(opt);
}
