// Bearer-token authentication for a worker: verifies JWTs with the shared Verifier and keeps
// verified tokens in a small per-worker cache (HMAC or RSA verification is done once per token,
// not per request) until the token expires. (The admin token is api/admin_auth.hpp's.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "auth/jwt.hpp"
#include "http/message.hpp"

namespace zonegate::auth {

class Authenticator {
 public:
  // Seconds since the Unix epoch; tests inject their own.
  using Clock = std::function<int64_t()>;
  // A verified token without exp (auth.jwt.require_exp: false) is re-verified this often.
  static constexpr int64_t kNoExpCacheS = 300;

  // verifier may be null: every token is then refused ("not configured"). clock defaults to
  // the system clock.
  explicit Authenticator(std::shared_ptr<const Verifier> verifier, Clock clock = nullptr);

  // Claims of the request's bearer token, which must name a subject (the /v1 routes), or false
  // with the 401 response to send.
  bool authenticate(const http::Request& req, Claims& out, http::Response& error);
  // The same for a token that may have no subject (/rpc: an anon key runs as its role or
  // auth.anon_role); a missing token is still refused here.
  bool verify(const http::Request& req, Claims& out, http::Response& error);
  // The subject of the request's bearer token, verifying it (and caching it) like authenticate
  // but copying only the subject: for the rate-limit step, which runs before the handler.
  bool subject(const http::Request& req, std::string& out);
  // Until when (seconds since the epoch) the cache holds token's verification; 0 when it does
  // not hold it. Lets tests check that the cache forgets a token when the token expires.
  int64_t cached_until(const std::string& token) const;
  // A reload's verifier (new keys, issuer, ...): tokens verified so far are verified again.
  void set_verifier(std::shared_ptr<const Verifier> verifier) {
    verifier_ = std::move(verifier);
    cache_.clear();
  }

 private:
  struct Cached {
    Claims claims;
    int64_t expires_s;  // exp + leeway, or kNoExpCacheS after verification without exp
  };
  std::shared_ptr<const Verifier> verifier_;
  Clock clock_;
  std::unordered_map<std::string, Cached> cache_;
};

// The token of an "Authorization: Bearer <token>" header, or empty.
std::string bearer_token(const http::Request& req);
// 401 with WWW-Authenticate: Bearer error="invalid_token", error_description="...".
http::Response unauthorized(const std::string& description, bool token_present);

}  // namespace zonegate::auth
