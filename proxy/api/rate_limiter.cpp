// The rate-limit step; see rate_limiter.hpp and docs/ARCHITECTURE.md ("Rate limiting").
#include "api/rate_limiter.hpp"

#include <algorithm>

#include <openssl/evp.h>

#include "api/errors.hpp"
#include "auth/authenticator.hpp"
#include "common/log.hpp"
#include "redis/gcra_client.hpp"

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

namespace {

bool same_policy(const config::RateLimitPolicy& a, const config::RateLimitPolicy& b) {
  return a.name == b.name && a.routes == b.routes && a.key == b.key && a.header == b.header &&
         a.quota == b.quota && a.window_s == b.window_s && a.burst == b.burst &&
         a.dry_run == b.dry_run && a.redis == b.redis && a.max_keys == b.max_keys;
}

std::shared_ptr<RateLimiter::Policy> make_policy(const config::RateLimitPolicy& pc) {
  auto p = std::make_shared<RateLimiter::Policy>();
  p->cfg = pc;
  for (const std::string& r : pc.routes) {
    RateLimiter::Route route;
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
  p->interval_us = std::max<int64_t>(1, p->table->gcra().interval_ns() / 1000);
  p->tolerance_us = p->table->gcra().tolerance_ns() / 1000;
  // RFC 9651 list member: a string item with integer parameters.
  p->policy_field =
      "\"" + pc.name + "\";q=" + std::to_string(pc.quota) + ";w=" + std::to_string(pc.window_s);
  return p;
}

}  // namespace

RateLimiter::RateLimiter(const config::RateLimitConfig& cfg, resilience::NanoClock clock)
    : redis_prefix_(cfg.redis.prefix), clock_(std::move(clock)) {
  for (const std::string& t : cfg.trusted_proxies) {
    net::Cidr c;
    std::string err;
    if (net::Cidr::parse(t, c, err)) trusted_.push_back(c);  // the loader has checked them
  }
  for (const config::RateLimitPolicy& pc : cfg.policies)
    uses_redis_ = uses_redis_ || pc.redis;
  reconfigure(cfg.policies);
}

void RateLimiter::reconfigure(const std::vector<config::RateLimitPolicy>& policies) {
  std::shared_ptr<const Policies> old = snapshot();
  auto next = std::make_shared<Policies>();
  for (const config::RateLimitPolicy& pc : policies) {
    std::shared_ptr<Policy> kept;
    for (const auto& p : old ? *old : Policies{}) {
      if (same_policy(p->cfg, pc)) kept = p;
    }
    next->push_back(kept ? kept : make_policy(pc));
  }
  enabled_.store(!next->empty());
  std::atomic_store(&policies_, std::shared_ptr<const Policies>(std::move(next)));
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

// A request waiting for its Redis decisions; the last reply concludes it.
struct RateLimiter::Pending {
  http::ExchangePtr ex;
  std::shared_ptr<const Policies> set;  // keeps the decisions' policies alive
  std::vector<Decision> decisions;
  int outstanding = 1;  // one for the issuing loop itself, so a reply within it cannot conclude
  bool async = false;   // admit() returned kPending: the last reply goes on through next_
};

std::string RateLimiter::redis_key(const Policy& p, const std::string& key) const {
  std::string k = redis_prefix_ + p.cfg.name + ":";
  if (key.size() <= 200) return k + key;
  // A long key (a header value) is hashed: Redis keys stay small whatever a client sends.
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  k += "#";
  for (unsigned int i = 0; i < len; ++i) {
    k += hex[md[i] >> 4];
    k += hex[md[i] & 15];
  }
  return k;
}

RateLimiter::Admission RateLimiter::admit(const http::ExchangePtr& ex, auth::Authenticator& auth,
                                          redis::GcraClient* redis) {
  const std::string& path = ex->req.path;
  std::vector<Decision> decisions;
  std::vector<size_t> remote;  // indexes of decisions Redis makes
  int64_t now = 0;
  // The policies of this request: a reload swaps the set, never the one a request holds.
  std::shared_ptr<const Policies> set = snapshot();
  for (const auto& pp : *set) {
    Policy& p = *pp;
    bool hit = false;
    for (const Route& r : p.routes)
      hit = hit || matches(r, path);
    if (!hit) continue;
    Decision dec;
    dec.policy = &p;
    dec.key = key_of(p, ex, auth);
    if (p.cfg.redis && redis != nullptr && redis->ready()) {
      remote.push_back(decisions.size());
    } else {
      if (now == 0) now = clock_();
      if (p.cfg.redis) fallback_down_.fetch_add(1, std::memory_order_relaxed);
      dec.d = p.table->admit(dec.key, now);
    }
    decisions.push_back(std::move(dec));
  }
  if (remote.empty()) {
    return conclude(ex, decisions) ? Admission::kContinue : Admission::kAnswered;
  }
  auto pending = std::make_shared<Pending>();
  pending->ex = ex;
  pending->set = set;
  pending->decisions = std::move(decisions);
  for (size_t i : remote) {
    ++pending->outstanding;
    Decision& dec = pending->decisions[i];
    redis->decide(
        redis_key(*dec.policy, dec.key), dec.policy->interval_us, dec.policy->tolerance_us,
        [this, pending, i](redis::GcraClient::Outcome o, const resilience::RateDecision& d) {
          Decision& dd = pending->decisions[i];
          if (o == redis::GcraClient::Outcome::kOk) {
            redis_ok_.fetch_add(1, std::memory_order_relaxed);
            dd.d = d;
          } else {
            // Fail open with the local budget (per proxy): counted, never a 5xx.
            (o == redis::GcraClient::Outcome::kTimeout ? fallback_timeout_
             : o == redis::GcraClient::Outcome::kError ? fallback_error_
                                                       : fallback_down_)
                .fetch_add(1, std::memory_order_relaxed);
            dd.d = dd.policy->table->admit(dd.key, clock_());
          }
          if (--pending->outstanding == 0 && pending->async) {
            if (conclude(pending->ex, pending->decisions) && next_) next_(pending->ex);
          }
        });
  }
  if (--pending->outstanding == 0) {  // every reply came at once (Redis down meanwhile)
    return conclude(ex, pending->decisions) ? Admission::kContinue : Admission::kAnswered;
  }
  pending->async = true;
  return Admission::kPending;
}

bool RateLimiter::conclude(const http::ExchangePtr& ex, const std::vector<Decision>& decisions) {
  std::string policy_field, limit_field;
  const Decision* refused = nullptr;
  int64_t now = 0;
  for (const Decision& dec : decisions) {
    Policy& p = *dec.policy;
    const resilience::RateDecision& d = dec.d;
    if (d.allowed) {
      p.allowed.fetch_add(1, std::memory_order_relaxed);
    } else if (p.cfg.dry_run) {
      p.dry_run_limited.fetch_add(1, std::memory_order_relaxed);
      // At most one line a second per policy: shadow mode must not flood the log.
      if (now == 0) now = clock_();
      int64_t last = p.last_log_ns.load(std::memory_order_relaxed);
      if (now - last >= kNsPerS && p.last_log_ns.compare_exchange_strong(last, now)) {
        log::warn("rate limit would refuse (dry run)",
                  {{"policy", p.cfg.name}, {"key", dec.key}, {"route", ex->req.path}});
      }
    } else {
      p.limited.fetch_add(1, std::memory_order_relaxed);
      if (refused == nullptr || d.retry_after_ns > refused->d.retry_after_ns) refused = &dec;
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
  if (refused == nullptr) return true;
  const Policy& rp = *refused->policy;
  const char* whose = refused->key.rfind("s:", 0) == 0   ? "subject"
                      : refused->key.rfind("h:", 0) == 0 ? "API key"
                                                         : "client address";
  http::Response resp = http::error_response(
      429, "rate_limited", "rate limit \"" + rp.cfg.name + "\" exceeded for this " + whose,
      std::to_string(rp.cfg.quota) + " requests per " + std::to_string(rp.cfg.window_s) +
          " s, burst " + std::to_string(rp.cfg.burst),
      "retry after the delay in Retry-After");
  // ns to ms rounded up, then errors.cpp's rounding up to seconds: the same as ⌈ns / 1e9⌉.
  int64_t wait_ns = refused->d.retry_after_ns;
  resp.add_header("Retry-After", retry_after(wait_ns / 1'000'000 + (wait_ns % 1'000'000 != 0)));
  resp.add_header("Cache-Control", "no-store");
  add_proxy_status(resp, "http_request_denied", "rate limit " + rp.cfg.name);
  ex->route = "rate_limited";
  ex->respond(std::move(resp));
  return false;
}

void RateLimiter::sweep() {
  int64_t now = clock_();
  for (const auto& p : *snapshot())
    p->table->sweep(now);
}

void RateLimiter::describe_metrics(metrics::Text& out) const {
  std::shared_ptr<const Policies> set = snapshot();
  if (set->empty() && !uses_redis_) return;
  out.family("zonegate_rate_limit_decisions_total", "counter",
             "Rate-limit decisions by policy: allowed, limited (429), dry_run_limited (would "
             "have been refused; passed).");
  for (const auto& p : *set) {
    std::string l = "policy=\"" + p->cfg.name + "\",decision=";
    out.sample("zonegate_rate_limit_decisions_total", l + "\"allowed\"", p->allowed.load());
    out.sample("zonegate_rate_limit_decisions_total", l + "\"limited\"", p->limited.load());
    out.sample("zonegate_rate_limit_decisions_total", l + "\"dry_run_limited\"",
               p->dry_run_limited.load());
  }
  if (uses_redis_) {
    out.family("zonegate_rate_limit_redis_decisions_total", "counter",
               "Decisions of store: redis policies: made in Redis (ok), or locally because Redis "
               "was unreachable (down), answered an error (error) or was late (timeout).");
    out.sample("zonegate_rate_limit_redis_decisions_total", R"(outcome="ok")", redis_ok_.load());
    out.sample("zonegate_rate_limit_redis_decisions_total", R"(outcome="down")",
               fallback_down_.load());
    out.sample("zonegate_rate_limit_redis_decisions_total", R"(outcome="error")",
               fallback_error_.load());
    out.sample("zonegate_rate_limit_redis_decisions_total", R"(outcome="timeout")",
               fallback_timeout_.load());
    out.single("zonegate_rate_limit_redis_connections", "gauge",
               "Workers whose Redis connection is up (of server.workers).", redis_ready_.load());
  }
  out.family("zonegate_rate_limit_keys", "gauge", "Keys a policy tracks now (of max_keys).");
  for (const auto& p : *set)
    out.sample("zonegate_rate_limit_keys", "policy=\"" + p->cfg.name + "\"",
               p->table->stats().keys);
  out.family("zonegate_rate_limit_evictions_total", "counter",
             "Keys dropped: full (their bucket had refilled: no accuracy lost) or lru (the "
             "table was at max_keys).");
  for (const auto& p : *set) {
    resilience::KeyTableStats s = p->table->stats();
    std::string l = "policy=\"" + p->cfg.name + "\",reason=";
    out.sample("zonegate_rate_limit_evictions_total", l + "\"full\"", s.evicted_full);
    out.sample("zonegate_rate_limit_evictions_total", l + "\"lru\"", s.evicted_lru);
  }
}

void RateLimiter::write_health(json::Writer& w) const {
  w.key("rate_limit");
  w.start_object();
  std::shared_ptr<const Policies> set = snapshot();
  w.field("enabled", !set->empty());
  if (uses_redis_) {
    w.key("redis");
    w.start_object();
    w.field("connections", static_cast<int64_t>(redis_ready_.load()));
    w.field("decisions", redis_ok_.load());
    w.field("fallbacks", fallback_down_.load() + fallback_error_.load() + fallback_timeout_.load());
    w.end_object();
  }
  w.key("policies");
  w.start_array();
  for (const auto& p : *set) {
    resilience::KeyTableStats s = p->table->stats();
    w.start_object();
    w.field("name", p->cfg.name);
    w.field("mode", p->cfg.dry_run ? "dry_run" : "enforce");
    w.field("store", p->cfg.redis ? "redis" : "local");
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
