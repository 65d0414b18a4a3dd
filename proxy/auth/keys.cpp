// Verification keys; see keys.hpp.
#include "auth/keys.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstring>

#include "common/base64.hpp"
#include "common/json.hpp"

namespace zonegate::auth {

namespace {

// unique_ptr deleter calling an OpenSSL free function.
template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using Bio = std::unique_ptr<BIO, Freer<BIO_free>>;
using Bn = std::unique_ptr<BIGNUM, Freer<BN_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Freer<OSSL_PARAM_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX_free>>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) {
  return {k, EVP_PKEY_free};
}

// The algorithm a public key is for, after the checks every key must pass (RSA size, EC curve).
bool classify(EVP_PKEY* pkey, Alg& alg, std::string& error) {
  int type = EVP_PKEY_get_base_id(pkey);
  if (type == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < kMinRsaBits) {
      error = "RSA key of " + std::to_string(bits) +
              " bits (RSA >= " + std::to_string(kMinRsaBits) + " bits is required)";
      return false;
    }
    alg = Alg::kRS256;
    return true;
  }
  if (type == EVP_PKEY_EC) {
    char curve[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                       &len) != 1) {
      error = "EC key without a named curve (ES256 needs P-256)";
      return false;
    }
    if (std::strcmp(curve, "prime256v1") != 0) {
      error = std::string("EC key on curve ") + curve + ", not P-256 (ES256 needs P-256)";
      return false;
    }
    alg = Alg::kES256;
    return true;
  }
  error = "neither an RSA nor an EC key";
  return false;
}

// A public key from OSSL_PARAMs (RSA n and e, or EC group and point), checked by OpenSSL.
EVP_PKEY* from_params(const char* type, OSSL_PARAM_BLD* bld) {
  Params params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  // fromdata takes the numbers as given: the public check refuses an EC point off the curve and
  // an RSA modulus or exponent that cannot be a key.
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return pkey;
}

// A base64url member of a JWK, decoded; false when absent, not a string or not base64url.
bool b64_member(const rapidjson::Value& jwk, const char* name, std::string& out,
                std::string& error) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd() || !it->value.IsString()) {
    error = std::string("member \"") + name + "\" is missing or not a string";
    return false;
  }
  auto bytes = base64url_decode({it->value.GetString(), it->value.GetStringLength()});
  if (!bytes || bytes->empty()) {
    error = std::string("member \"") + name + "\" is not base64url";
    return false;
  }
  out = std::move(*bytes);
  return true;
}

Bn bignum(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

bool rsa_jwk(const rapidjson::Value& jwk, std::shared_ptr<EVP_PKEY>& out, std::string& error) {
  std::string n, e;
  if (!b64_member(jwk, "n", n, error) || !b64_member(jwk, "e", e, error)) return false;
  Bn bn_n = bignum(n), bn_e = bignum(e);
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    error = "cannot build an RSA key";
    return false;
  }
  EVP_PKEY* pkey = from_params("RSA", bld.get());
  if (pkey == nullptr) {
    error = "n and e are not an RSA public key";
    return false;
  }
  out = own(pkey);
  return true;
}

bool ec_jwk(const rapidjson::Value& jwk, std::shared_ptr<EVP_PKEY>& out, std::string& error) {
  auto crv = jwk.FindMember("crv");
  if (crv == jwk.MemberEnd() || !crv->value.IsString() ||
      std::string_view(crv->value.GetString(), crv->value.GetStringLength()) != "P-256") {
    error = "EC key not on curve P-256 (crv must be \"P-256\": ES256 needs P-256)";
    return false;
  }
  std::string x, y;
  if (!b64_member(jwk, "x", x, error) || !b64_member(jwk, "y", y, error)) return false;
  // RFC 7518 §6.2.1.2: the coordinates are the full field size, 32 bytes for P-256.
  if (x.size() != 32 || y.size() != 32) {
    error = "x and y must be 32 bytes each for P-256";
    return false;
  }
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed point
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    error = "cannot build an EC key";
    return false;
  }
  EVP_PKEY* pkey = from_params("EC", bld.get());
  if (pkey == nullptr) {
    error = "x and y are not a point on P-256";
    return false;
  }
  out = own(pkey);
  return true;
}

// An optional string member: true when absent; false (with error) when present but not a string.
bool optional_string(const rapidjson::Value& jwk, const char* name, std::string& out,
                     std::string& error) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd()) return true;
  if (!it->value.IsString()) {
    error = std::string("member \"") + name + "\" is not a string";
    return false;
  }
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

// One JWK of a set.
bool jwk_key(const rapidjson::Value& jwk, Key& out, std::string& error) {
  if (!jwk.IsObject()) {
    error = "not a JSON object";
    return false;
  }
  std::string kty, alg, use;
  if (!optional_string(jwk, "kty", kty, error) || !optional_string(jwk, "kid", out.kid, error) ||
      !optional_string(jwk, "alg", alg, error) || !optional_string(jwk, "use", use, error)) {
    return false;
  }
  if (!use.empty() && use != "sig") {
    error = "use \"" + use + "\": only signature keys (use \"sig\") verify tokens";
    return false;
  }
  auto ops = jwk.FindMember("key_ops");
  if (ops != jwk.MemberEnd()) {
    bool verify = false;
    if (ops->value.IsArray()) {
      for (const auto& op : ops->value.GetArray())
        verify = verify || (op.IsString() && std::string_view(op.GetString()) == "verify");
    }
    if (!verify) {
      error = "key_ops does not include \"verify\"";
      return false;
    }
  }
  if (jwk.HasMember("d")) {
    error = "holds a private key (member \"d\"): publish only public keys here";
    return false;
  }
  Alg want = Alg::kHS256;
  if (kty == "oct") {
    if (!b64_member(jwk, "k", out.secret, error)) return false;
    want = Alg::kHS256;
  } else if (kty == "RSA") {
    if (!rsa_jwk(jwk, out.pkey, error)) return false;
  } else if (kty == "EC") {
    if (!ec_jwk(jwk, out.pkey, error)) return false;
  } else {
    error = kty.empty() ? "has no kty" : "kty \"" + kty + "\" is not supported (oct, RSA, EC)";
    return false;
  }
  if (out.pkey && !classify(out.pkey.get(), want, error)) return false;
  if (!alg.empty()) {
    Alg given = Alg::kHS256;
    if (!parse_alg(alg, given)) {
      error = "alg \"" + alg + "\" is not one of HS256, RS256, ES256";
      return false;
    }
    if (given != want) {
      error = "alg " + alg + " does not fit kty " + kty + " (" + alg_name(want) + ")";
      return false;
    }
  }
  out.alg = want;
  return true;
}

}  // namespace

bool parse_alg(std::string_view name, Alg& out) {
  for (Alg a : {Alg::kHS256, Alg::kRS256, Alg::kES256}) {
    if (name == alg_name(a)) {
      out = a;
      return true;
    }
  }
  return false;
}

const char* alg_name(Alg alg) {
  switch (alg) {
    case Alg::kHS256:
      return "HS256";
    case Alg::kRS256:
      return "RS256";
    case Alg::kES256:
      return "ES256";
  }
  return "?";
}

bool secret_key(std::string kid, std::string secret, Key& out, std::string& error) {
  if (secret.empty()) {
    error = "the HS256 secret is empty";
    return false;
  }
  out = Key{std::move(kid), Alg::kHS256, std::move(secret), nullptr};
  return true;
}

bool pem_key(std::string kid, std::string_view pem, Key& out, std::string& error) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (raw == nullptr) {
    error = "not a PEM public key";
    return false;
  }
  std::shared_ptr<EVP_PKEY> pkey = own(raw);
  Alg alg = Alg::kRS256;
  if (!classify(pkey.get(), alg, error)) return false;
  out = Key{std::move(kid), alg, {}, std::move(pkey)};
  return true;
}

bool spec_key(const KeySpec& spec, Key& out, std::string& error, SpecPart& part) {
  Alg alg = Alg::kHS256;
  part = SpecPart::kKey;
  if (spec.alg.empty()) {
    error = "alg is required (HS256, RS256 or ES256)";
    return false;
  }
  part = SpecPart::kAlg;
  if (!parse_alg(spec.alg, alg)) {
    error = "\"" + spec.alg + "\" is not one of HS256, RS256, ES256" +
            (spec.alg == "none" ? " (unsigned tokens are never accepted)" : "");
    return false;
  }
  part = SpecPart::kKey;
  if (spec.secret.empty() && spec.public_key_pem.empty()) {
    error = "has no key material: give secret, secret_file, public_key or public_key_file";
    return false;
  }
  if (!spec.secret.empty() && !spec.public_key_pem.empty()) {
    error = "give a secret or a public key, not both";
    return false;
  }
  part = SpecPart::kMaterial;
  if (alg == Alg::kHS256) {
    if (spec.secret.empty()) {
      error = "alg HS256 needs secret or secret_file, not a public key";
      return false;
    }
    return secret_key(spec.kid, spec.secret, out, error);
  }
  if (spec.public_key_pem.empty()) {
    error = "alg " + spec.alg + " needs public_key or public_key_file, not a secret";
    return false;
  }
  if (!pem_key(spec.kid, spec.public_key_pem, out, error)) return false;
  if (out.alg != alg) {
    error = "alg " + spec.alg + " does not fit the public key (an " +
            (out.alg == Alg::kRS256 ? "RSA key: RS256" : "EC P-256 key: ES256") + ")";
    return false;
  }
  return true;
}

bool parse_jwks(std::string_view json, std::vector<Key>& out, std::string& error) {
  rapidjson::Document doc;
  std::string why;
  if (!json::parse(json, doc, why)) {
    error = "not JSON: " + why;
    return false;
  }
  if (!json::check_unambiguous(doc, why)) {
    error = "not a JWK Set: " + why;
    return false;
  }
  const char* const shape = "not a JWK Set: expected an object with a \"keys\" array";
  if (!doc.IsObject()) {
    error = shape;
    return false;
  }
  auto keys = doc.FindMember("keys");
  if (keys == doc.MemberEnd() || !keys->value.IsArray()) {
    error = shape;
    return false;
  }
  if (keys->value.Empty()) {
    error = "the JWK Set has no keys";
    return false;
  }
  out.clear();
  size_t i = 0;
  for (const auto& jwk : keys->value.GetArray()) {
    Key k;
    if (!jwk_key(jwk, k, why)) {
      std::string name = "keys[" + std::to_string(i) + "]";
      if (!k.kid.empty()) name += " (kid \"" + k.kid.substr(0, 64) + "\")";
      error = name + ": " + why;
      return false;
    }
    out.push_back(std::move(k));
    ++i;
  }
  return true;
}

}  // namespace zonegate::auth
