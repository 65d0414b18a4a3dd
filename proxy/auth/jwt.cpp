// JWT verification; see jwt.hpp.
#include "auth/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

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

}  // namespace

std::unique_ptr<Verifier> Verifier::create(const JwtConfig& cfg, std::string& error) {
  std::unique_ptr<Verifier> v(new Verifier());
  v->cfg_ = cfg;
  for (const std::string& alg : cfg.algorithms) {
    if (alg == "HS256") {
      v->allow_hs256_ = true;
    } else if (alg == "RS256") {
      v->allow_rs256_ = true;
    } else if (alg == "ES256") {
      v->allow_es256_ = true;
    } else {
      error = "unsupported JWT algorithm \"" + alg + "\" (allowed: HS256, RS256, ES256)";
      return nullptr;
    }
  }
  if (v->allow_hs256_ && cfg.secret.empty()) {
    error = "HS256 is allowed but auth.jwt.secret is empty";
    return nullptr;
  }
  if (v->allow_rs256_ || v->allow_es256_) {
    if (cfg.public_key_pem.empty()) {
      error = "RS256/ES256 are allowed but auth.jwt.public_key is empty";
      return nullptr;
    }
    BIO* bio =
        BIO_new_mem_buf(cfg.public_key_pem.data(), static_cast<int>(cfg.public_key_pem.size()));
    EVP_PKEY* pkey = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (pkey == nullptr) {
      error = "auth.jwt.public_key is not a PEM public key";
      return nullptr;
    }
    v->pkey_ = pkey;
    int type = EVP_PKEY_get_base_id(pkey);
    if (v->allow_rs256_ && type != EVP_PKEY_RSA) {
      error = "RS256 is allowed but auth.jwt.public_key is not an RSA key";
      return nullptr;
    }
    if (v->allow_es256_) {
      char curve[64] = {0};
      size_t len = 0;
      if (type != EVP_PKEY_EC ||
          EVP_PKEY_get_utf8_string_param(pkey, "group", curve, sizeof curve, &len) != 1 ||
          std::string(curve) != "prime256v1") {
        error = "ES256 is allowed but auth.jwt.public_key is not an EC P-256 key";
        return nullptr;
      }
    }
  }
  return v;
}

Verifier::~Verifier() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
}

bool Verifier::verify(std::string_view token, int64_t now_s, Claims& out,
                      std::string& error) const {
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
  std::string perr;
  if (!json::parse(*header, h, perr) || !h.IsObject()) {
    error = "malformed token: header is not a JSON object";
    return false;
  }
  auto alg_it = h.FindMember("alg");
  if (alg_it == h.MemberEnd() || !alg_it->value.IsString()) {
    error = "malformed token: header has no alg";
    return false;
  }
  std::string alg = alg_it->value.GetString();
  std::string_view signing_input = token.substr(0, d2);
  bool valid = false;
  if (alg == "HS256" && allow_hs256_) {
    std::string mac = hmac_sha256(cfg_.secret, signing_input);
    valid = mac.size() == sig->size() && CRYPTO_memcmp(mac.data(), sig->data(), mac.size()) == 0;
  } else if (alg == "RS256" && allow_rs256_) {
    valid = verify_digest(static_cast<EVP_PKEY*>(pkey_), signing_input, *sig);
  } else if (alg == "ES256" && allow_es256_) {
    std::string der;
    valid = es256_raw_to_der(*sig, der) &&
            verify_digest(static_cast<EVP_PKEY*>(pkey_), signing_input, der);
  } else {
    error = "algorithm \"" + alg.substr(0, 16) + "\" is not allowed";
    return false;
  }
  if (!valid) {
    error = "signature verification failed";
    return false;
  }

  rapidjson::Document p;
  if (!json::parse(*payload, p, perr) || !p.IsObject()) {
    error = "malformed token: payload is not a JSON object";
    return false;
  }
  bool has = false;
  double v = 0;
  if (!numeric_claim(p, "exp", has, v)) {
    error = "exp claim is not a number";
    return false;
  }
  // Clamped to year 9999 either way: the value is only compared and added to, never trusted.
  constexpr double kMaxTime = 253402300799.0;
  out.exp = has ? static_cast<int64_t>(std::min(std::max(v, -kMaxTime), kMaxTime)) : 0;
  if (has && static_cast<double>(now_s) >= v + static_cast<double>(cfg_.leeway_s)) {
    error = "token expired";
    return false;
  }
  if (!numeric_claim(p, "nbf", has, v)) {
    error = "nbf claim is not a number";
    return false;
  }
  if (has && static_cast<double>(now_s) + static_cast<double>(cfg_.leeway_s) < v) {
    error = "token not valid yet (nbf)";
    return false;
  }
  if (!numeric_claim(p, "iat", has, v)) {
    error = "iat claim is not a number";
    return false;
  }
  if (has && static_cast<double>(now_s) + static_cast<double>(cfg_.leeway_s) < v) {
    error = "token issued in the future (iat)";
    return false;
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
  auto sub = p.FindMember(cfg_.subject_claim.c_str());
  if (sub == p.MemberEnd() || !(sub->value.IsString() || sub->value.IsInt64()) ||
      (sub->value.IsString() && sub->value.GetStringLength() == 0)) {
    error = "token has no " + cfg_.subject_claim + " claim";
    return false;
  }
  out.subject = sub->value.IsString()
                    ? std::string(sub->value.GetString(), sub->value.GetStringLength())
                    : std::to_string(sub->value.GetInt64());
  auto role = p.FindMember(cfg_.role_claim.c_str());
  out.role = (role != p.MemberEnd() && role->value.IsString()) ? role->value.GetString() : "";
  out.json.assign(payload->data(), payload->size());
  return true;
}

std::string sign_hs256(const std::string& secret, const std::string& payload_json) {
  std::string input =
      base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(payload_json);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

}  // namespace zonegate::auth
