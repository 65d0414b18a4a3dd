// The rate-limit step; see rate_limiter.hpp and docs/ARCHITECTURE.md ("Rate limiting").
#include "api/rate_limiter.hpp"

#include <algorithm>

#include "api/errors.hpp"
#include "auth/authenticator.hpp"
#include "common/log.hpp"

namespace zonegate::api {

namespace {

constexpr int64_t kNsPerS = 1'000'000'000;

int64_t ceil_seconds(int64_t ns) {
  return ns <= 0 ? 0 : (ns + kNsPerS - 1) / kNsPerS;
}

bool matches(const RateLimiter::Route& r, const std::string& path) {
  if (!r.prefix) return path == r.match;
  return path.compare(0, r.match.size(), r.match) == 0;
}

}  // namespace

RateLimiter::RateLimiter(const config::RateLimitConfig& cfg, resilience::NanoClock clock)
    : clock_(std::move(clock)) {
  for (const std::string& t : cfg.trusted_proxies) {
    net::Cidr c;
    std::string err;
    if (net::Cidr::parse(t, c, err)) trusted_.push_back(c);  // the loader has checked them
  }
  for (const config::RateLimitPolicy& pc : cfg.policies) {
    auto p = std::make_unique<Policy>();
    p->cfg = pc;
    for (const std::string& r : pc.routes) {
      Route route;
      route.text = r;
      if (r == "admin") {
        route.match = "/admin/";
        route.prefix = true;
      } else if (r.size() >= 2 && r.compare(r.size() - 2, 2, "/*") == 0) {
        route.match = r.substr(0, r.size() - 1);
        route.prefix = true;
      } else {
        route.match = r;
      }
      p->routes.push_back(std::move(route));
    }
    resilience::GcraParams gp;
    gp.rate_per_s = pc.rate_per_s();
    gp.burst = pc.burst;
    resilience::KeyTableConfig kc;
    kc.max_keys = pc.max_keys;
    p->table = std::make_unique<resilience::KeyTable>(gp, kc);
    // RFC 9651 list member: a string item with integer parameters.
    p->policy_field =
        "\"" + pc.name + "\";q=" + std::to_string(pc.quota) + ";w=" + std::to_string(pc.window_s);
    policies_.push_back(std::move(p));
  }
}

std::string RateLimiter::key_of(const Policy& p, const http::ExchangePtr& ex,
                                auth::Authenticator& auth) const {
  if (p.cfg.key == "subject") {
    // The worker's authenticator caches verified tokens, so the handler's own check is free.
    std::string sub;
    if (auth.subject(ex->req, sub)) return "s:" + sub;
  } else if (p.cfg.key == "header") {
    const std::string* v = ex->req.header(p.cfg.header);
    if (v != nullptr && !v->empty()) return "h:" + *v;
  }
  // client_address, and the fallback of anonymous requests. Resolved only here: a subject key
  // (the common case) needs no header walk or address parsing.
  const std::string* xff = ex->req.header("x-forwarded-for");
  const std::string* fwd = ex->req.header("forwarded");
  return "a:" + net::client_address(ex->req.client_addr, xff ? *xff : std::string_view(),
                                    fwd ? *fwd : std::string_view(), trusted_);
}

bool RateLimiter::admit(const http::ExchangePtr& ex, auth::Authenticator& auth) {
  const std::string& path = ex->req.path;
  std::string policy_field, limit_field;
  const Policy* refused_by = nullptr;
  resilience::RateDecision refusal;
  std::string refused_key;
  int64_t now = 0;
  for (const auto& pp : policies_) {
    Policy& p = *pp;
    bool hit = false;
    for (const Route& r : p.routes)
      hit = hit || matches(r, path);
    if (!hit) continue;
    if (now == 0) now = clock_();
    std::string key = key_of(p, ex, auth);
    resilience::RateDecision d = p.table->admit(key, now);
    if (d.allowed) {
      p.allowed.fetch_add(1, std::memory_order_relaxed);
    } else if (p.cfg.dry_run) {
      p.dry_run_limited.fetch_add(1, std::memory_order_relaxed);
      // At most one line a second per policy: shadow mode must not flood the log.
      int64_t last = p.last_log_ns.load(std::memory_order_relaxed);
      if (now - last >= kNsPerS && p.last_log_ns.compare_exchange_strong(last, now)) {
        log::warn("rate limit would refuse (dry run)",
                  {{"policy", p.cfg.name}, {"key", key}, {"route", path}});
      }
    } else {
      p.limited.fetch_add(1, std::memory_order_relaxed);
      if (refused_by == nullptr || d.retry_after_ns > refusal.retry_after_ns) {
        refused_by = &p;
        refusal = d;
        refused_key = key;
      }
    }
    if (p.cfg.dry_run) continue;  // shadow mode leaves responses as they were
    if (!policy_field.empty()) {
      policy_field += ", ";
      limit_field += ", ";
    }
    policy_field += p.policy_field;
    limit_field += "\"" + p.cfg.name + "\";r=" + std::to_string(d.remaining) +
                   ";t=" + std::to_string(ceil_seconds(d.reset_ns));
  }
  if (!policy_field.empty()) {
    ex->extra_headers.push_back({"RateLimit-Policy", std::move(policy_field)});
    ex->extra_headers.push_back({"RateLimit", std::move(limit_field)});
  }
  if (refused_by == nullptr) return true;
  const char* whose = refused_key.rfind("s:", 0) == 0   ? "subject"
                      : refused_key.rfind("h:", 0) == 0 ? "API key"
                                                        : "client address";
  http::Response resp = http::error_response(
      429, "rate_limited", "rate limit \"" + refused_by->cfg.name + "\" exceeded for this " + whose,
      std::to_string(refused_by->cfg.quota) + " requests per " +
          std::to_string(refused_by->cfg.window_s) + " s, burst " +
          std::to_string(refused_by->cfg.burst),
      "retry after the delay in Retry-After");
  // ns to ms rounded up, then errors.cpp's rounding up to seconds: the same as ⌈ns / 1e9⌉.
  int64_t wait_ns = refusal.retry_after_ns;
  resp.add_header("Retry-After", retry_after(wait_ns / 1'000'000 + (wait_ns % 1'000'000 != 0)));
  resp.add_header("Cache-Control", "no-store");
  add_proxy_status(resp, "http_request_denied", "rate limit " + refused_by->cfg.name);
  ex->route = "rate_limited";
  ex->respond(std::move(resp));
  return false;
}

void RateLimiter::sweep() {
  int64_t now = clock_();
  for (const auto& p : policies_)
    p->table->sweep(now);
}

void RateLimiter::describe_metrics(metrics::Text& out) const {
  if (policies_.empty()) return;
  out.family("zonegate_rate_limit_decisions_total", "counter",
             "Rate-limit decisions by policy: allowed, limited (429), dry_run_limited (would "
             "have been refused; passed).");
  for (const auto& p : policies_) {
    std::string l = "policy=\"" + p->cfg.name + "\",decision=";
    out.sample("zonegate_rate_limit_decisions_total", l + "\"allowed\"", p->allowed.load());
    out.sample("zonegate_rate_limit_decisions_total", l + "\"limited\"", p->limited.load());
    out.sample("zonegate_rate_limit_decisions_total", l + "\"dry_run_limited\"",
               p->dry_run_limited.load());
  }
  out.family("zonegate_rate_limit_keys", "gauge", "Keys a policy tracks now (of max_keys).");
  for (const auto& p : policies_)
    out.sample("zonegate_rate_limit_keys", "policy=\"" + p->cfg.name + "\"",
               p->table->stats().keys);
  out.family("zonegate_rate_limit_evictions_total", "counter",
             "Keys dropped: full (their bucket had refilled: no accuracy lost) or lru (the "
             "table was at max_keys).");
  for (const auto& p : policies_) {
    resilience::KeyTableStats s = p->table->stats();
    std::string l = "policy=\"" + p->cfg.name + "\",reason=";
    out.sample("zonegate_rate_limit_evictions_total", l + "\"full\"", s.evicted_full);
    out.sample("zonegate_rate_limit_evictions_total", l + "\"lru\"", s.evicted_lru);
  }
}

void RateLimiter::write_health(json::Writer& w) const {
  w.key("rate_limit");
  w.start_object();
  w.field("enabled", enabled());
  w.key("policies");
  w.start_array();
  for (const auto& p : policies_) {
    resilience::KeyTableStats s = p->table->stats();
    w.start_object();
    w.field("name", p->cfg.name);
    w.field("mode", p->cfg.dry_run ? "dry_run" : "enforce");
    w.key("routes");
    w.start_array();
    for (const Route& r : p->routes)
      w.string(r.text);
    w.end_array();
    w.field("key", p->cfg.key == "header" ? "header:" + p->cfg.header : p->cfg.key);
    w.field("quota", p->cfg.quota);
    w.field("window_s", p->cfg.window_s);
    w.field("burst", p->cfg.burst);
    w.field("max_keys", p->cfg.max_keys);
    w.field("keys", s.keys);
    w.field("bytes_per_key", static_cast<int64_t>(resilience::KeyTable::bytes_per_key()));
    w.field("allowed", p->allowed.load());
    w.field("limited", p->limited.load());
    w.field("dry_run_limited", p->dry_run_limited.load());
    w.field("evicted_full", s.evicted_full);
    w.field("evicted_lru", s.evicted_lru);
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

}  // namespace zonegate::api
