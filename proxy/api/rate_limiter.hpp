// The rate-limit step of the request path: which policies a request falls under, whose key it
// counts against, and the answer (429 with Retry-After, RateLimit-Policy and RateLimit fields
// on every response of a limited route). The arithmetic is resilience::KeyTable (GCRA, exact
// across workers); this is the glue to HTTP, config, metrics and /health.
#pragma once

#include <atomic>
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

namespace zonegate::api {

class RateLimiter : public metrics::Source {
 public:
  RateLimiter(const config::RateLimitConfig& cfg, resilience::NanoClock clock);
  bool enabled() const { return !policies_.empty(); }
  // The step. False when it answered the request (429); true to go on. Adds the RateLimit
  // fields the eventual response carries to ex->extra_headers.
  bool admit(const http::ExchangePtr& ex, auth::Authenticator& auth);
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
    std::unique_ptr<resilience::KeyTable> table;
    std::string policy_field;  // "name";q=..;w=..
    std::atomic<int64_t> allowed{0}, limited{0}, dry_run_limited{0};
    std::atomic<int64_t> last_log_ns{0};
  };

 private:
  std::string key_of(const Policy& p, const http::ExchangePtr& ex, auth::Authenticator& auth) const;

  std::vector<std::unique_ptr<Policy>> policies_;
  std::vector<net::Cidr> trusted_;
  resilience::NanoClock clock_;
};

}  // namespace zonegate::api
