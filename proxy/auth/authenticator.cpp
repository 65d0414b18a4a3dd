// Bearer authentication; see authenticator.hpp.
#include "auth/authenticator.hpp"

#include <openssl/crypto.h>
#include <strings.h>

#include <ctime>

namespace zonegate::auth {

namespace {
constexpr size_t kCacheEntries = 4096;
}

std::string bearer_token(const http::Request& req) {
  const std::string* h = req.header("authorization");
  if (h == nullptr || h->size() < 7 || strncasecmp(h->c_str(), "Bearer ", 7) != 0) return {};
  size_t start = 7;
  while (start < h->size() && (*h)[start] == ' ')
    ++start;
  size_t end = h->size();
  while (end > start && ((*h)[end - 1] == ' ' || (*h)[end - 1] == '\t'))
    --end;
  return h->substr(start, end - start);
}

http::Response unauthorized(const std::string& description, bool token_present) {
  http::Response r =
      http::error_response(401, token_present ? "invalid_token" : "missing_token", description);
  std::string safe;
  for (char c : description)
    safe.push_back(c == '"' || c == '\\' ? '\'' : c);
  r.add_header("WWW-Authenticate",
               token_present ? "Bearer error=\"invalid_token\", error_description=\"" + safe + "\""
                             : "Bearer");
  return r;
}

Authenticator::Authenticator(std::shared_ptr<const Verifier> verifier, Clock clock)
    : verifier_(std::move(verifier)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return static_cast<int64_t>(std::time(nullptr)); };
}

int64_t Authenticator::cached_until(const std::string& token) const {
  auto it = cache_.find(token);
  return it == cache_.end() ? 0 : it->second.expires_s;
}

bool Authenticator::subject(const http::Request& req, std::string& out) {
  std::string token = bearer_token(req);
  if (token.empty() || verifier_ == nullptr) return false;
  auto it = cache_.find(token);
  if (it != cache_.end() && clock_() < it->second.expires_s) {
    out = it->second.claims.subject;
    return !out.empty();
  }
  Claims claims;
  http::Response ignored;
  if (!verify(req, claims, ignored)) return false;
  out = std::move(claims.subject);
  return !out.empty();
}

bool Authenticator::authenticate(const http::Request& req, Claims& out, http::Response& error) {
  if (!verify(req, out, error)) return false;
  if (out.subject.empty()) {
    std::string claim = verifier_->config().subject_claim;
    error = unauthorized("token has no " + claim + " claim", true);
    return false;
  }
  return true;
}

bool Authenticator::verify(const http::Request& req, Claims& out, http::Response& error) {
  std::string token = bearer_token(req);
  if (token.empty()) {
    error = unauthorized("an Authorization: Bearer token is required", false);
    return false;
  }
  if (verifier_ == nullptr) {
    error = unauthorized("JWT verification is not configured (auth.jwt)", true);
    return false;
  }
  const int64_t now = clock_();
  auto it = cache_.find(token);
  if (it != cache_.end()) {
    if (now < it->second.expires_s) {
      out = it->second.claims;
      return true;
    }
    cache_.erase(it);
  }
  std::string why;
  if (!verifier_->verify(token, now, out, why)) {
    error = unauthorized(why, true);
    return false;
  }
  if (cache_.size() >= kCacheEntries) cache_.clear();  // cheap bound; re-verification is correct
  // The verification holds as long as the token does; a token without exp (only accepted when
  // require_exp is off) is checked again every kNoExpCacheS, never cached for good.
  int64_t expires = out.exp == 0 ? now + kNoExpCacheS : out.exp + verifier_->config().leeway_s;
  cache_.emplace(std::move(token), Cached{out, expires});
  return true;
}

}  // namespace zonegate::auth
