// Admin token, sessions and the sign-in throttle; see admin_auth.hpp.
#include "api/admin_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "auth/authenticator.hpp"

namespace zonegate::api {

namespace {

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

// Parses the decimal digits of s (no sign); false for anything else or an overflow.
bool parse_int(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

AdminAuth::AdminAuth(const config::AuthConfig& auth, const config::AdminConfig& admin,
                     std::function<int64_t()> now_s, resilience::NanoClock clock)
    : enabled_(!auth.admin_token.empty()),
      token_digest_(sha256(auth.admin_token)),
      session_ttl_s_(admin.session_ttl_ms / 1000),
      secure_cookie_(admin.secure_cookie),
      now_s_(std::move(now_s)),
      clock_(std::move(clock)),
      logins_(resilience::GcraParams{static_cast<double>(admin.login_quota) /
                                         static_cast<double>(admin.login_window_s),
                                     admin.login_quota},
              resilience::KeyTableConfig{10'000, 4}) {
  // The sessions' key is this process's alone: a restart ends every session.
  if (RAND_bytes(session_key_.data(), static_cast<int>(session_key_.size())) != 1) {
    throw std::runtime_error("no random bytes for the admin session key");
  }
}

bool AdminAuth::token_matches(std::string_view given) const {
  // Digests of equal length compared in constant time: the time says nothing of the token's
  // bytes nor of its length (a plain compare of unequal lengths returns at once).
  const std::array<unsigned char, 32> d = sha256(given);
  std::lock_guard<std::mutex> lock(token_mu_);
  if (!enabled_) return false;
  return CRYPTO_memcmp(d.data(), token_digest_.data(), d.size()) == 0;
}

void AdminAuth::set_token(const std::string& token) {
  {
    std::lock_guard<std::mutex> lock(token_mu_);
    enabled_ = !token.empty();
    token_digest_ = sha256(token);
  }
  revoke_sessions();  // a session was the old token's: signing in again takes the new one
}

bool AdminAuth::bearer_matches(const http::Request& req) const {
  const std::string token = auth::bearer_token(req);
  return !token.empty() && token_matches(token);
}

std::string AdminAuth::session_mac(int64_t expires, int64_t epoch) const {
  const std::string msg =
      "zonegate-admin-session:" + std::to_string(expires) + "." + std::to_string(epoch);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), session_key_.data(), static_cast<int>(session_key_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

std::string AdminAuth::new_session() const {
  const int64_t expires = now_s_() + session_ttl_s_;
  const int64_t epoch = epoch_.load(std::memory_order_relaxed);
  return std::to_string(expires) + "." + std::to_string(epoch) + "." + session_mac(expires, epoch);
}

bool AdminAuth::valid_session(std::string_view value) const {
  if (!enabled()) return false;
  const size_t a = value.find('.');
  const size_t b = a == std::string_view::npos ? a : value.find('.', a + 1);
  int64_t expires = 0, epoch = 0;
  if (b == std::string_view::npos || !parse_int(value.substr(0, a), expires) ||
      !parse_int(value.substr(a + 1, b - a - 1), epoch)) {
    return false;
  }
  if (expires < now_s_() || epoch != epoch_.load(std::memory_order_relaxed)) return false;
  const std::string want = session_mac(expires, epoch);
  const std::string_view got = value.substr(b + 1);
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

void AdminAuth::revoke_sessions() {
  epoch_.fetch_add(1, std::memory_order_relaxed);
}

std::string AdminAuth::cookie_attributes(bool expire_now) const {
  std::string a = "; Path=/admin; HttpOnly; SameSite=Strict";
  if (secure_cookie_) a += "; Secure";
  a += "; Max-Age=" + std::to_string(expire_now ? 0 : session_ttl_s_);
  return a;
}

resilience::RateDecision AdminAuth::admit_login(const std::string& client) {
  resilience::RateDecision d = logins_.admit(client, clock_());
  if (!d.allowed) throttled_.fetch_add(1, std::memory_order_relaxed);
  return d;
}

}  // namespace zonegate::api

namespace zonegate::api {

void AdminAuth::describe_metrics(metrics::Text& out) const {
  out.family("zonegate_admin_logins_total", "counter",
             "Dashboard sign-ins: ok, refused (wrong token), throttled (past admin.login_rate, "
             "the token not looked at).");
  out.sample("zonegate_admin_logins_total", R"(outcome="ok")", logins_ok_.load());
  out.sample("zonegate_admin_logins_total", R"(outcome="refused")", logins_refused_.load());
  out.sample("zonegate_admin_logins_total", R"(outcome="throttled")", logins_throttled());
  out.single("zonegate_admin_session_revocations_total", "counter",
             "Sign-outs that ended every dashboard session.", revocations());
}

}  // namespace zonegate::api
