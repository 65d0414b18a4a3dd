// The rate-limit step of the request path: which policies a request falls under, whose key it
// counts against, and the answer (429 with Retry-After, RateLimit-Policy and RateLimit fields
// on every response of a limited route). The arithmetic is resilience::KeyTable (GCRA, exact
// across workers); this is the glue to HTTP, config, metrics and /health.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/cidr.hpp"
#include "common/json.hpp"
#include "common/metrics_text.hpp"
#include "config/config.hpp"
#include "http/exchange.hpp"
#include "resilience/rate_limit.hpp"

namespace zonegate::auth {
class Authenticator;
}
namespace zonegate::redis {
class GcraClient;
}

namespace zonegate::api {

class RateLimiter : public metrics::Source {
 public:
  RateLimiter(const config::RateLimitConfig& cfg, resilience::NanoClock clock);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // A reload's policies: for new requests; a policy whose definition is unchanged keeps its
  // keys and counters. (store: redis policies need a Redis client from the start:
  // config::plan_reload refuses them otherwise.)
  void reconfigure(const std::vector<config::RateLimitPolicy>& policies);
  // Whether a policy keeps its budget in Redis (each worker then has a redis::GcraClient).
  bool uses_redis() const { return uses_redis_; }
  enum class Admission { kContinue, kAnswered, kPending };
  // The step. kAnswered when it answered the request (429); kContinue to go on; kPending when
  // a Redis decision is awaited: the request then goes on through the continuation (or is
  // answered 429) once it is back. Adds the RateLimit fields the eventual response carries to
  // ex->extra_headers. `redis`: this worker's client (null without Redis policies).
  Admission admit(const http::ExchangePtr& ex, auth::Authenticator& auth, redis::GcraClient* redis);
  // What a pending admission that allows the request calls: the rest of the request path.
  void set_continuation(std::function<void(const http::ExchangePtr&)> next) {
    next_ = std::move(next);
  }
  // A worker's Redis client became ready (true) or lost its connection (false).
  void redis_state(bool ready) { redis_ready_.fetch_add(ready ? 1 : -1); }
  // Drops keys whose bucket is full again (they carry no state); from a timer.
  void sweep();
  void describe_metrics(metrics::Text& out) const override;
  // The "rate_limit" member of /health.
  void write_health(json::Writer& w) const;

  struct Route {
    std::string text;   // as configured
    std::string match;  // the exact path, or the prefix
    bool prefix = false;
  };
  struct Policy {
    config::RateLimitPolicy cfg;
    std::vector<Route> routes;
    // The local budget; for a Redis policy, the fallback while Redis does not answer.
    std::unique_ptr<resilience::KeyTable> table;
    int64_t interval_us = 1, tolerance_us = 0;  // GCRA's T and tau, for the Redis script
    std::string policy_field;                   // "name";q=..;w=..
    std::atomic<int64_t> allowed{0}, limited{0}, dry_run_limited{0};
    std::atomic<int64_t> last_log_ns{0};
  };

 private:
  // One matched policy's decision for one request.
  struct Decision {
    Policy* policy = nullptr;
    std::string key;
    resilience::RateDecision d;
  };
  struct Pending;
  std::string key_of(const Policy& p, const http::ExchangePtr& ex, auth::Authenticator& auth) const;
  // The Redis key of a policy's key: the prefix, the policy, and the key (hashed when long).
  std::string redis_key(const Policy& p, const std::string& key) const;
  // Counts the decisions, sets the RateLimit fields and answers 429 when one refused; false
  // then.
  bool conclude(const http::ExchangePtr& ex, const std::vector<Decision>& decisions);

  using Policies = std::vector<std::shared_ptr<Policy>>;
  std::shared_ptr<const Policies> snapshot() const { return std::atomic_load(&policies_); }
  std::shared_ptr<const Policies> policies_;
  std::atomic<bool> enabled_{false};
  bool uses_redis_ = false;
  std::string redis_prefix_;
  std::function<void(const http::ExchangePtr&)> next_;
  std::atomic<int> redis_ready_{0};
  // Redis decisions: made there, or made locally because Redis was down, erred or was late.
  std::atomic<int64_t> redis_ok_{0}, fallback_down_{0}, fallback_error_{0}, fallback_timeout_{0};
  std::vector<net::Cidr> trusted_;
  resilience::NanoClock clock_;
};

}  // namespace zonegate::api
