// Who may use the admin listener's routes (docs/SECURITY.md, "The admin listener"): the admin
// token, compared so that neither its bytes nor its length leak through timing; dashboard
// sessions, a cookie MAC'd with a random key of this process and a revocation epoch (signing
// out, or a restart, ends every session); and the sign-in throttle, GCRA per client address.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/metrics_text.hpp"
#include "config/config.hpp"
#include "http/message.hpp"
#include "resilience/rate_limit.hpp"

namespace zonegate::api {

class AdminAuth {
 public:
  // `now_s`: unix seconds (session expiry); `clock`: monotonic ns (the throttle).
  AdminAuth(const config::AuthConfig& auth, const config::AdminConfig& admin,
            std::function<int64_t()> now_s, resilience::NanoClock clock);

  // An admin token is configured (else the admin API answers 403).
  bool enabled() const {
    std::lock_guard<std::mutex> lock(token_mu_);
    return enabled_;
  }
  // A reload changed auth.admin_token: the new one is checked from now on, and every session
  // ends.
  void set_token(const std::string& token);
  // Whether `given` is the admin token.
  bool token_matches(std::string_view given) const;
  // Whether the request carries it as Authorization: Bearer.
  bool bearer_matches(const http::Request& req) const;

  // A new session's cookie value: "<expiry>.<epoch>.<HMAC>"; it never contains the token.
  std::string new_session() const;
  bool valid_session(std::string_view value) const;
  // Ends every session issued so far (sign-out).
  void revoke_sessions();
  int64_t revocations() const { return epoch_.load(std::memory_order_relaxed); }
  // The Set-Cookie attributes of a session cookie (Max-Age, and Secure when configured).
  std::string cookie_attributes(bool expire_now) const;

  // One sign-in attempt from `client`: refused (with retry_after_ns) past admin.login_rate.
  resilience::RateDecision admit_login(const std::string& client);
  int64_t logins_throttled() const { return throttled_.load(std::memory_order_relaxed); }
  // The outcome of a sign-in past the throttle, for zonegate_admin_logins_total.
  void count_login(bool ok) { (ok ? logins_ok_ : logins_refused_).fetch_add(1); }
  // zonegate_admin_logins_total{outcome} and zonegate_admin_session_revocations_total.
  void describe_metrics(metrics::Text& out) const;

 private:
  std::string session_mac(int64_t expires, int64_t epoch) const;

  mutable std::mutex token_mu_;  // the token's state (a reload replaces it)
  bool enabled_;
  std::array<unsigned char, 32> token_digest_{};
  std::array<unsigned char, 32> session_key_{};
  int64_t session_ttl_s_;
  bool secure_cookie_;
  std::function<int64_t()> now_s_;
  resilience::NanoClock clock_;
  std::atomic<int64_t> epoch_{0};
  resilience::KeyTable logins_;
  std::atomic<int64_t> throttled_{0}, logins_ok_{0}, logins_refused_{0};
};

}  // namespace zonegate::api
