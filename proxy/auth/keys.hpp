// JWS verification keys, each bound to one algorithm (RFC 8725 §3.1): an HS256 shared secret,
// or an RSA (RS256) or EC P-256 (ES256) public key read from PEM or built from a JWK (RFC 7517)
// with OpenSSL 3's EVP_PKEY_fromdata. Every public key passes the same checks wherever it comes
// from: RSA of at least 2048 bits (RFC 7518 §3.3), EC only on P-256.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zonegate::auth {

enum class Alg { kHS256, kRS256, kES256 };

// "HS256", "RS256" or "ES256"; false for anything else ("none" included).
bool parse_alg(std::string_view name, Alg& out);
const char* alg_name(Alg alg);

constexpr int kMinRsaBits = 2048;

struct Key {
  std::string kid;  // empty: the key has none
  Alg alg = Alg::kHS256;
  std::string secret;              // HS256
  std::shared_ptr<EVP_PKEY> pkey;  // RS256, ES256
};

// An HS256 key from a shared secret, which must not be empty.
bool secret_key(std::string kid, std::string secret, Key& out, std::string& error);

// A key from a PEM public key (SubjectPublicKeyInfo): RS256 for RSA, ES256 for EC P-256.
bool pem_key(std::string kid, std::string_view pem, Key& out, std::string& error);

// One configured key (auth.jwt.keys): its alg and the material that alg needs.
struct KeySpec {
  std::string kid;
  std::string alg;
  std::string secret;          // HS256
  std::string public_key_pem;  // RS256, ES256
};

// Which part of a KeySpec an error is about, so the config loader can point at it.
enum class SpecPart { kKey, kAlg, kMaterial };

// The key a KeySpec describes; false with the reason and the part it is about.
bool spec_key(const KeySpec& spec, Key& out, std::string& error, SpecPart& part);

// Every key of a JWK Set (RFC 7517 §5): kty oct (k), RSA (n, e) or EC P-256 (crv, x, y), with an
// optional kid, alg (must fit the kty; inferred when absent), use (only "sig") and key_ops (must
// allow "verify"). Private members (d) are refused: the file is for verification only. False with
// the first problem, naming the key ("keys[1] (kid \"a\"): ...").
bool parse_jwks(std::string_view json, std::vector<Key>& out, std::string& error);

}  // namespace zonegate::auth
