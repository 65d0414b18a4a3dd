// Keys made by OpenSSL for the auth and config tests: the private half signs tokens here, the
// public half goes to the verifier as PEM or as a JWK (RFC 7517), and tokens are assembled with
// any header so that malformed ones can be built too.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "common/base64.hpp"

namespace zonegate::testkeys {

// header.payload.signature, the signature of header.payload made by sign.
template <typename Sign>
std::string assemble(const std::string& header_json, const std::string& payload, Sign sign) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(sign(input));
}

// An HS256 token with any header (crit, kid, duplicates...).
inline std::string hs256(const std::string& secret, const std::string& header_json,
                         const std::string& payload) {
  return assemble(header_json, payload, [&](const std::string& input) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  });
}

class KeyPair {
 public:
  static KeyPair rsa(size_t bits = 2048) {
    return KeyPair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits), "");
  }
  // curve: an OpenSSL name ("P-256", "P-384"), which is also the JWK crv.
  static KeyPair ec(const char* curve = "P-256") {
    return KeyPair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), curve);
  }

  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key_.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(n));
    BIO_free(bio);
    return pem;
  }

  // The public key as a JWK object; `extra` is spliced in as more members (",\"use\":\"enc\"").
  std::string jwk(const std::string& kid, const std::string& extra = "") const {
    std::string members;
    if (curve_.empty()) {
      members = R"("kty":"RSA","n":")" + bn_param(OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" +
                bn_param(OSSL_PKEY_PARAM_RSA_E) + "\"";
    } else {
      unsigned char point[256];
      size_t len = 0;
      EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                      &len);
      size_t half = (len - 1) / 2;  // 0x04 || x || y
      std::string xy(reinterpret_cast<char*>(point) + 1, len - 1);
      members = R"("kty":"EC","crv":")" + curve_ + R"(","x":")" +
                base64url_encode(xy.substr(0, half)) + R"(","y":")" +
                base64url_encode(xy.substr(half)) + "\"";
    }
    return "{" + members + (kid.empty() ? "" : R"(,"kid":")" + kid + "\"") + extra + "}";
  }

  // A token signed with this key (RS256 for RSA, ES256 for EC) under the given header.
  std::string sign(const std::string& header_json, const std::string& payload) const {
    return assemble(header_json, payload, [&](const std::string& input) {
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      size_t len = 0;
      EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_.get());
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size());
      std::string sig(len, '\0');
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size());
      sig.resize(len);
      EVP_MD_CTX_free(ctx);
      if (curve_.empty()) return sig;
      // DER -> JWS raw r||s
      const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      unsigned char raw[64];
      BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
      ECDSA_SIG_free(es);
      return std::string(reinterpret_cast<char*>(raw), 64);
    });
  }
  // The same with the usual header of this key's algorithm, with a kid when not empty.
  std::string sign_with_kid(const std::string& kid, const std::string& payload) const {
    std::string alg = curve_.empty() ? "RS256" : "ES256";
    return sign(R"({"alg":")" + alg + "\"" + (kid.empty() ? "" : R"(,"kid":")" + kid + "\"") + "}",
                payload);
  }

 private:
  KeyPair(EVP_PKEY* key, std::string curve) : key_(key, EVP_PKEY_free), curve_(std::move(curve)) {}

  std::string bn_param(const char* name) const {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key_.get(), name, &bn);
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(bn);
    return base64url_encode(bytes);
  }

  std::shared_ptr<EVP_PKEY> key_;
  std::string curve_;  // empty for RSA
};

}  // namespace zonegate::testkeys
