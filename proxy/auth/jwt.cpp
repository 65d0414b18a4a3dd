// JWT verification; see jwt.hpp.
#include "auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>

#include "common/base64.hpp"
#include "common/json.hpp"

namespace zonegate::auth {

namespace {

std::string hmac_sha256(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool verify_digest(EVP_PKEY* pkey, std::string_view data, const std::string& sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// JWS ES256 signatures are raw r||s (64 bytes); OpenSSL verifies DER.
bool es256_raw_to_der(const std::string& raw, std::string& der) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return false;
  }
  int len = i2d_ECDSA_SIG(sig, nullptr);
  bool ok = len > 0;
  if (ok) {
    der.resize(static_cast<size_t>(len));
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    ok = i2d_ECDSA_SIG(sig, &p) == len;
  }
  ECDSA_SIG_free(sig);
  return ok;
}

// A NumericDate claim: absent is fine, present must be a number.
bool numeric_claim(const rapidjson::Value& obj, const char* name, bool& present, double& value) {
  auto it = obj.FindMember(name);
  present = it != obj.MemberEnd();
  if (!present) return true;
  if (!it->value.IsNumber()) return false;
  value = it->value.GetDouble();
  return std::isfinite(value);
}

// User input (an alg or a kid) made fit for an error description: printable ASCII without quotes
// or backslashes, at most 32 characters.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 32;
  std::string out;
  for (char c : s.substr(0, kMax))
    out.push_back(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '?');
  if (s.size() > kMax) out += "...";
  return out;
}

// Whether sig (DER for ES256) signs signing_input under key.
bool check_signature(const Key& key, std::string_view signing_input, const std::string& sig) {
  if (key.alg == Alg::kHS256) {
    std::string mac = hmac_sha256(key.secret, signing_input);
    return mac.size() == sig.size() && CRYPTO_memcmp(mac.data(), sig.data(), mac.size()) == 0;
  }
  return verify_digest(key.pkey.get(), signing_input, sig);
}

}  // namespace

std::unique_ptr<Verifier> Verifier::create(const JwtConfig& cfg, std::string& error) {
  std::unique_ptr<Verifier> v(new Verifier());
  v->cfg_ = cfg;
  if (cfg.role_claim_key.empty()) {
    v->role_path_ = member_path(cfg.role_claim);
  } else {
    std::string why = parse_claim_path(cfg.role_claim_key, v->role_path_);
    if (!why.empty()) {
      error = "auth.jwt.role_claim_key: " + why;
      return nullptr;
    }
  }
  for (const std::string& name : cfg.algorithms) {
    Alg alg = Alg::kHS256;
    if (!parse_alg(name, alg)) {
      error = "unsupported JWT algorithm \"" + name + "\" (allowed: HS256, RS256, ES256)";
      return nullptr;
    }
    v->allowed_[static_cast<size_t>(alg)] = true;
  }
  // The keys without a kid count only when their algorithm is allowed: a secret left in an
  // RS256-only configuration is ignored, as it always was.
  if (!cfg.secret.empty() && v->allowed(Alg::kHS256)) {
    Key k;
    secret_key("", cfg.secret, k, error);
    v->keys_.push_back(std::move(k));
  }
  if (!cfg.public_key_pem.empty() && (v->allowed(Alg::kRS256) || v->allowed(Alg::kES256))) {
    Key k;
    if (!pem_key("", cfg.public_key_pem, k, error)) {
      error = "auth.jwt.public_key: " + error;
      return nullptr;
    }
    if (!v->allowed(k.alg)) {
      error = k.alg == Alg::kRS256
                  ? "ES256 is allowed but auth.jwt.public_key is not an EC P-256 key"
                  : "RS256 is allowed but auth.jwt.public_key is not an RSA key";
      return nullptr;
    }
    v->keys_.push_back(std::move(k));
  }
  std::string why;
  for (size_t i = 0; i < cfg.keys.size(); ++i) {
    std::string name = "auth.jwt.keys[" + std::to_string(i) + "]";
    Key k;
    SpecPart part = SpecPart::kKey;
    if (!spec_key(cfg.keys[i], k, why, part)) {
      error = name + ": " + why;
      return nullptr;
    }
    if (!v->allowed(k.alg)) {
      error = name + ": alg " + alg_name(k.alg) + " is not in auth.jwt.algorithms";
      return nullptr;
    }
    v->keys_.push_back(std::move(k));
  }
  if (!cfg.jwks.empty()) {
    std::vector<Key> set;
    if (!parse_jwks(cfg.jwks, set, why)) {
      error = "auth.jwt.jwks_file: " + why;
      return nullptr;
    }
    for (size_t i = 0; i < set.size(); ++i) {
      if (!v->allowed(set[i].alg)) {
        error = "auth.jwt.jwks_file: keys[" + std::to_string(i) + "]: alg " + alg_name(set[i].alg) +
                " is not in auth.jwt.algorithms";
        return nullptr;
      }
      v->keys_.push_back(std::move(set[i]));
    }
  }
  for (size_t i = 0; i < v->keys_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!v->keys_[i].kid.empty() && v->keys_[i].kid == v->keys_[j].kid) {
        error = "two keys have the kid \"" + v->keys_[i].kid + "\"";
        return nullptr;
      }
    }
  }
  for (Alg alg : {Alg::kHS256, Alg::kRS256, Alg::kES256}) {
    if (!v->allowed(alg)) continue;
    bool any = false;
    for (const Key& k : v->keys_)
      any = any || k.alg == alg;
    if (!any) {
      error = std::string(alg_name(alg)) +
              " is allowed but no key is configured for it (auth.jwt." +
              (alg == Alg::kHS256 ? "secret" : "public_key") + ", keys or jwks_file)";
      return nullptr;
    }
  }
  return v;
}

bool Verifier::verify(std::string_view token, int64_t now_s, Claims& out,
                      std::string& error) const {
  // Before any decoding: a huge header costs nothing but this comparison.
  if (token.size() > cfg_.max_token_bytes) {
    error = "token too large";
    return false;
  }
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos ||
      token.find('.', d2 + 1) != std::string_view::npos) {
    error = "malformed token: expected header.payload.signature";
    return false;
  }
  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig) {
    error = "malformed token: invalid base64url";
    return false;
  }
  rapidjson::Document h;
  std::string why;
  if (!json::parse(*header, h, why) || !h.IsObject()) {
    error = "malformed token: header is not a JSON object";
    return false;
  }
  if (!json::check_unambiguous(h, why)) {
    error = why + " in the token header";
    return false;
  }
  // RFC 7515 §4.1.11: extensions listed in crit must be understood, and this verifier
  // understands none (b64:false would change what is signed); an empty crit is invalid anyway.
  if (h.HasMember("crit")) {
    error = "crit header refused: no JWS extension is supported";
    return false;
  }
  auto alg_it = h.FindMember("alg");
  if (alg_it == h.MemberEnd() || !alg_it->value.IsString()) {
    error = "malformed token: header has no alg";
    return false;
  }
  std::string_view alg_text(alg_it->value.GetString(), alg_it->value.GetStringLength());
  Alg alg = Alg::kHS256;
  if (!parse_alg(alg_text, alg) || !allowed(alg)) {
    error = "algorithm \"" + printable(alg_text) + "\" is not allowed";
    return false;
  }
  auto kid_it = h.FindMember("kid");
  bool has_kid = kid_it != h.MemberEnd();
  if (has_kid && !kid_it->value.IsString()) {
    error = "malformed token: kid is not a string";
    return false;
  }
  std::string_view kid =
      has_kid ? std::string_view(kid_it->value.GetString(), kid_it->value.GetStringLength())
              : std::string_view();
  std::string signature = std::move(*sig);
  if (alg == Alg::kES256) {
    std::string der;
    if (!es256_raw_to_der(signature, der)) {
      error = "signature verification failed";
      return false;
    }
    signature = std::move(der);
  }
  // A kid names the one key to use; without one, every key of the token's algorithm is tried
  // (a rotation where the issuer sends no kid). A key never verifies another algorithm.
  std::string_view signing_input = token.substr(0, d2);
  bool kid_known = false, alg_matched = false, valid = false;
  for (const Key& key : keys_) {
    if (has_kid && key.kid != kid) continue;
    kid_known = true;
    if (key.alg != alg) continue;
    alg_matched = true;
    if (check_signature(key, signing_input, signature)) {
      valid = true;
      break;
    }
  }
  if (has_kid && !kid_known) {
    error = "unknown key id \"" + printable(kid) + "\"";
    return false;
  }
  if (!alg_matched) {
    error = has_kid ? "key id \"" + printable(kid) + "\" is not an " + alg_name(alg) + " key"
                    : std::string("no key for algorithm ") + alg_name(alg);
    return false;
  }
  if (!valid) {
    error = "signature verification failed";
    return false;
  }

  rapidjson::Document p;
  if (!json::parse(*payload, p, why) || !p.IsObject()) {
    error = "malformed token: payload is not a JSON object";
    return false;
  }
  if (!json::check_unambiguous(p, why)) {
    error = why + " in the token payload";
    return false;
  }
  bool has_exp = false, has_nbf = false, has_iat = false;
  double exp = 0, nbf = 0, iat = 0;
  if (!numeric_claim(p, "exp", has_exp, exp)) {
    error = "exp claim is not a number";
    return false;
  }
  // Without exp a stolen token is valid forever; max_age bounds a lifetime, so it needs one too.
  if (!has_exp && (cfg_.require_exp || cfg_.max_age_s > 0)) {
    error = "token has no exp claim";
    return false;
  }
  // Clamped to year 9999 either way: the value is only compared and added to, never trusted.
  constexpr double kMaxTime = 253402300799.0;
  out.exp = has_exp ? static_cast<int64_t>(std::min(std::max(exp, -kMaxTime), kMaxTime)) : 0;
  const auto now = static_cast<double>(now_s);
  const auto leeway = static_cast<double>(cfg_.leeway_s);
  if (has_exp && now >= exp + leeway) {
    error = "token expired";
    return false;
  }
  if (!numeric_claim(p, "nbf", has_nbf, nbf)) {
    error = "nbf claim is not a number";
    return false;
  }
  if (has_nbf && now + leeway < nbf) {
    error = "token not valid yet (nbf)";
    return false;
  }
  if (!numeric_claim(p, "iat", has_iat, iat)) {
    error = "iat claim is not a number";
    return false;
  }
  if (has_iat && now + leeway < iat) {
    error = "token issued in the future (iat)";
    return false;
  }
  if (cfg_.max_age_s > 0) {
    // With iat both ends come from the issuer's clock; without it, now stands in for iat and
    // the leeway covers the issuer's clock running ahead of ours.
    double lifetime = has_iat ? exp - iat : exp - now - leeway;
    if (lifetime > static_cast<double>(cfg_.max_age_s)) {
      error = "token lifetime exceeds max_age (" + std::to_string(cfg_.max_age_s) + "s)";
      return false;
    }
  }
  if (!cfg_.issuer.empty()) {
    auto it = p.FindMember("iss");
    if (it == p.MemberEnd() || !it->value.IsString() || cfg_.issuer != it->value.GetString()) {
      error = "issuer (iss) does not match";
      return false;
    }
  }
  if (!cfg_.audience.empty()) {
    auto it = p.FindMember("aud");
    bool match = false;
    auto accepts = [&](const rapidjson::Value& a) {
      if (!a.IsString()) return false;
      return std::any_of(cfg_.audience.begin(), cfg_.audience.end(),
                         [&](const std::string& want) { return want == a.GetString(); });
    };
    if (it != p.MemberEnd()) {
      if (it->value.IsArray()) {
        for (const auto& a : it->value.GetArray())
          match = match || accepts(a);
      } else {
        match = accepts(it->value);
      }
    }
    if (!match) {
      error = "audience (aud) does not match";
      return false;
    }
  }
  // No subject (or an empty one) is an anonymous token; a subject of another kind is refused:
  // the token would name somebody, and nobody can say whom.
  auto sub = p.FindMember(cfg_.subject_claim.c_str());
  out.subject.clear();
  if (sub != p.MemberEnd() && !sub->value.IsNull()) {
    if (!sub->value.IsString() && !sub->value.IsInt64()) {
      error = cfg_.subject_claim + " claim is not a string or an integer";
      return false;
    }
    out.subject = sub->value.IsString()
                      ? std::string(sub->value.GetString(), sub->value.GetStringLength())
                      : std::to_string(sub->value.GetInt64());
  }
  const rapidjson::Value* role = walk_claim_path(p, role_path_);
  out.has_role = role != nullptr;
  out.role_at_top = role != nullptr && role->IsString() && role_path_.size() == 1 &&
                    !role_path_[0].is_index && role_path_[0].key == "role";
  out.role.clear();
  if (role != nullptr && role->IsString()) {
    out.role.assign(role->GetString(), role->GetStringLength());
  } else if (role != nullptr) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    role->Accept(w);
    out.role.assign(buf.GetString(), buf.GetSize());
  }
  out.json.assign(payload->data(), payload->size());
  return true;
}

std::string sign_hs256(const std::string& secret, const std::string& payload_json,
                       const std::string& kid) {
  json::Writer header;
  header.start_object();
  header.field("alg", "HS256");
  header.field("typ", "JWT");
  if (!kid.empty()) header.field("kid", kid);
  header.end_object();
  std::string input = base64url_encode(header.take()) + "." + base64url_encode(payload_json);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

}  // namespace zonegate::auth
