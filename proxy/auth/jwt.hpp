// JWT (JWS compact) verification with OpenSSL: HS256, RS256 and ES256 behind an algorithm
// allow-list. Each algorithm is bound to one key kind (HS256 only ever uses the shared secret,
// RS256/ES256 only the public key), so an HS256 token "signed" with the public key is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zonegate::auth {

struct JwtConfig {
  std::vector<std::string> algorithms = {"HS256"};
  std::string secret;                 // HS256 shared secret
  std::string public_key_pem;         // RS256 (RSA) or ES256 (EC P-256) public key
  std::string issuer;                 // required "iss" when set
  std::vector<std::string> audience;  // one of these must be in "aud" when set
  int64_t leeway_s = 30;
  std::string subject_claim = "sub";
  std::string role_claim = "role";
};

struct Claims {
  std::string subject;
  std::string role;
  std::string json;  // the payload as sent (for request.jwt.claims)
  int64_t exp = 0;   // 0 when the token has none
};

class Verifier {
 public:
  // Loads the keys; nullptr with a message when the configuration cannot verify anything.
  static std::unique_ptr<Verifier> create(const JwtConfig& cfg, std::string& error);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Verifies a compact JWS and its registered claims at time now_s. On failure returns false
  // and a reason fit for WWW-Authenticate's error_description.
  bool verify(std::string_view token, int64_t now_s, Claims& out, std::string& error) const;
  const JwtConfig& config() const { return cfg_; }

 private:
  Verifier() = default;
  JwtConfig cfg_;
  void* pkey_ = nullptr;  // EVP_PKEY*, kept opaque so OpenSSL headers stay out of this header
  bool allow_hs256_ = false, allow_rs256_ = false, allow_es256_ = false;
};

// Signs a payload (JSON object text) with HS256: zonegate-proxy token and the tests.
std::string sign_hs256(const std::string& secret, const std::string& payload_json);

}  // namespace zonegate::auth
