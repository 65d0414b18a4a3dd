// JWT (JWS compact) verification to RFC 7515/7519 and the RFC 8725 best practices, with
// OpenSSL: HS256, RS256 and ES256 behind an algorithm allow-list, several keys chosen by kid
// (rotation without downtime), each key bound to one algorithm (an HS256 token "signed" with a
// public key is refused), no JWS extension (`crit` is refused), no member name twice and no NUL
// in any string (parsers would disagree on what the token says), a size cap checked before any
// decoding, and exp required by default. docs/API.md ("Authentication") lists every refusal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/claim_path.hpp"
#include "auth/keys.hpp"

namespace zonegate::auth {

struct JwtConfig {
  std::vector<std::string> algorithms = {"HS256"};
  std::string secret;                 // HS256 shared secret, a key without a kid
  std::string public_key_pem;         // RS256 (RSA) or ES256 (EC P-256) public key without a kid
  std::vector<KeySpec> keys;          // auth.jwt.keys
  std::string jwks;                   // a JWK Set's JSON text (auth.jwt.jwks_file)
  std::string issuer;                 // required "iss" when set
  std::vector<std::string> audience;  // one of these must be in "aud" when set
  int64_t leeway_s = 30;
  bool require_exp = true;
  int64_t max_age_s = 0;  // longest lifetime a token may claim; 0: no limit
  size_t max_token_bytes = 8192;
  std::string subject_claim = "sub";
  std::string role_claim = "role";  // a top-level member: the alias of role_claim_key ".role"
  std::string role_claim_key;       // a JSPath (claim_path.hpp); when set, role_claim is unused
};

struct Claims {
  std::string subject;  // empty when the token has none (an anonymous token, e.g. an anon key)
  // The value at the role claim's path: a string as it is, any other JSON value as its JSON
  // text (as PostgREST reads it); has_role is false when the path leads nowhere.
  std::string role;
  bool has_role = false;
  bool role_at_top = false;  // the role is the payload's top-level "role" member, a string
  std::string json;          // the payload as sent (for request.jwt.claims)
  int64_t exp = 0;           // 0 when the token has none
};

class Verifier {
 public:
  // Loads the keys; nullptr with a message when the configuration cannot verify anything.
  static std::unique_ptr<Verifier> create(const JwtConfig& cfg, std::string& error);

  // Verifies a compact JWS and its registered claims at time now_s. On failure returns false
  // and a reason fit for WWW-Authenticate's error_description (never raw token bytes). A token
  // without a subject is valid (Claims::subject is empty): whether a route needs one is the
  // route's business (Authenticator::authenticate does).
  bool verify(std::string_view token, int64_t now_s, Claims& out, std::string& error) const;
  const JwtConfig& config() const { return cfg_; }
  // Where the role claim is read (role_claim_key, or the role_claim member).
  const ClaimPath& role_path() const { return role_path_; }

 private:
  Verifier() = default;
  bool allowed(Alg alg) const { return allowed_[static_cast<size_t>(alg)]; }
  JwtConfig cfg_;
  ClaimPath role_path_;
  std::vector<Key> keys_;
  bool allowed_[3] = {false, false, false};
};

// Signs a payload (JSON object text) with HS256, with a kid header when kid is not empty:
// zonegate-proxy token and the tests.
std::string sign_hs256(const std::string& secret, const std::string& payload_json,
                       const std::string& kid = "");

}  // namespace zonegate::auth
