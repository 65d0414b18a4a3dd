// JWT verification (HS256, RS256, ES256 with keys made here by OpenSSL), base64url, and the
// SQLSTATE -> HTTP mapping.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "api/errors.hpp"
#include "auth/jwt.hpp"
#include "common/base64.hpp"

using namespace zonegate;

namespace {

const std::string kSecret = "unit-test-secret-0123456789abcdef";

std::unique_ptr<auth::Verifier> hs_verifier(auth::JwtConfig cfg = {}) {
  cfg.secret = kSecret;
  std::string err;
  auto v = auth::Verifier::create(cfg, err);
  EXPECT_TRUE(v) << err;
  return v;
}

std::string verify_error(const auth::Verifier& v, const std::string& token, int64_t now) {
  auth::Claims c;
  std::string err;
  return v.verify(token, now, c, err) ? "ok" : err;
}

// A key pair made with OpenSSL: the private key signs here, the PEM public key verifies.
struct KeyPair {
  EVP_PKEY* key = nullptr;
  std::string public_pem;
  explicit KeyPair(const char* type) {
    key = std::string(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    public_pem.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  ~KeyPair() { EVP_PKEY_free(key); }
  std::string sign(const std::string& alg, const std::string& payload) const {
    std::string input =
        base64url_encode("{\"alg\":\"" + alg + "\"}") + "." + base64url_encode(payload);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (alg == "ES256") {  // DER -> JWS raw r||s
      const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      unsigned char raw[64];
      BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
      ECDSA_SIG_free(es);
      sig.assign(reinterpret_cast<char*>(raw), 64);
    }
    return input + "." + base64url_encode(sig);
  }
};

}  // namespace

TEST(Base64Url, RoundTripsAndRejects) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba",
                                                       "foobar", std::string("\0\xff\x10", 3)}) {
    auto d = base64url_decode(base64url_encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("a").has_value());      // impossible length
  EXPECT_FALSE(base64url_decode("ab+c").has_value());   // standard alphabet, not url-safe
  EXPECT_FALSE(base64url_decode("Zm9v=").has_value());  // padding is not used in JWS
  EXPECT_FALSE(base64url_decode("Zh").has_value());     // non-zero leftover bits
}

TEST(Jwt, Hs256RoundTripAndClaims) {
  auto v = hs_verifier();
  int64_t now = 1'700'000'000;
  std::string t = auth::sign_hs256(kSecret, R"({"sub":"alice","role":"staff","exp":1700000100})");
  auth::Claims c;
  std::string err;
  ASSERT_TRUE(v->verify(t, now, c, err)) << err;
  EXPECT_EQ(c.subject, "alice");
  EXPECT_EQ(c.role, "staff");
  EXPECT_EQ(c.exp, 1700000100);
  EXPECT_EQ(c.json, R"({"sub":"alice","role":"staff","exp":1700000100})");
  // Numeric subjects are accepted as their decimal text.
  ASSERT_TRUE(v->verify(auth::sign_hs256(kSecret, R"({"sub":42})"), now, c, err));
  EXPECT_EQ(c.subject, "42");
}

TEST(Jwt, Hs256Rejections) {
  auto v = hs_verifier();
  int64_t now = 1'700'000'000;
  auto t = [](const std::string& payload) { return auth::sign_hs256(kSecret, payload); };
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","exp":1699999900})"), now), "token expired");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","exp":1699999990})"), now), "ok");  // within leeway
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","nbf":1700000100})"), now),
            "token not valid yet (nbf)");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iat":1700000100})"), now),
            "token issued in the future (iat)");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","exp":"soon"})"), now), "exp claim is not a number");
  EXPECT_EQ(verify_error(*v, t(R"({"role":"x"})"), now), "token has no sub claim");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":""})"), now), "token has no sub claim");
  EXPECT_EQ(verify_error(*v, t("[1]"), now), "malformed token: payload is not a JSON object");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256("wrong-secret", R"({"sub":"a"})"), now),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, "a.b", now), "malformed token: expected header.payload.signature");
  EXPECT_EQ(verify_error(*v, "a.b.c.d", now), "malformed token: expected header.payload.signature");
  EXPECT_EQ(verify_error(*v, "!!.b.c", now), "malformed token: invalid base64url");
  std::string none =
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(R"({"sub":"a"})") + ".";
  EXPECT_EQ(verify_error(*v, none, now), "algorithm \"none\" is not allowed");
  // A valid token with one payload byte flipped.
  std::string good = t(R"({"sub":"alice"})");
  std::string bad = good;
  size_t dot = bad.find('.');
  bad[dot + 2] = bad[dot + 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_error(*v, bad, now), "signature verification failed");
}

TEST(Jwt, IssuerAndAudience) {
  auth::JwtConfig cfg;
  cfg.issuer = "https://issuer";
  cfg.audience = {"zonegate", "other"};
  auto v = hs_verifier(cfg);
  auto t = [](const std::string& payload) { return auth::sign_hs256(kSecret, payload); };
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iss":"https://issuer","aud":"zonegate"})"), 0), "ok");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iss":"https://issuer","aud":["x","other"]})"), 0),
            "ok");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iss":"https://issuer","aud":"x"})"), 0),
            "audience (aud) does not match");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iss":"https://issuer"})"), 0),
            "audience (aud) does not match");
  EXPECT_EQ(verify_error(*v, t(R"({"sub":"a","iss":"evil","aud":"zonegate"})"), 0),
            "issuer (iss) does not match");
}

TEST(Jwt, Rs256AndEs256AndKeyBinding) {
  KeyPair rsa("RSA"), ec("EC");
  std::string err;
  auth::JwtConfig rcfg;
  rcfg.algorithms = {"RS256"};
  rcfg.public_key_pem = rsa.public_pem;
  auto rv = auth::Verifier::create(rcfg, err);
  ASSERT_TRUE(rv) << err;
  EXPECT_EQ(verify_error(*rv, rsa.sign("RS256", R"({"sub":"r"})"), 0), "ok");
  // The public key used as an HMAC secret: refused, HS256 is not allowed here.
  EXPECT_EQ(verify_error(*rv, auth::sign_hs256(rsa.public_pem, R"({"sub":"r"})"), 0),
            "algorithm \"HS256\" is not allowed");
  auth::JwtConfig ecfg;
  ecfg.algorithms = {"ES256"};
  ecfg.public_key_pem = ec.public_pem;
  auto ev = auth::Verifier::create(ecfg, err);
  ASSERT_TRUE(ev) << err;
  EXPECT_EQ(verify_error(*ev, ec.sign("ES256", R"({"sub":"e"})"), 0), "ok");
  EXPECT_EQ(verify_error(*ev, KeyPair("EC").sign("ES256", R"({"sub":"e"})"), 0),
            "signature verification failed");
  // Both allowed at once, each checked with the one key of its kind.
  auth::JwtConfig both;
  both.algorithms = {"HS256", "RS256"};
  both.secret = kSecret;
  both.public_key_pem = rsa.public_pem;
  auto bv = auth::Verifier::create(both, err);
  ASSERT_TRUE(bv) << err;
  EXPECT_EQ(verify_error(*bv, auth::sign_hs256(rsa.public_pem, R"({"sub":"r"})"), 0),
            "signature verification failed");
  EXPECT_EQ(verify_error(*bv, auth::sign_hs256(kSecret, R"({"sub":"r"})"), 0), "ok");
}

TEST(Jwt, ConfigurationErrors) {
  std::string err;
  auth::JwtConfig cfg;
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
  EXPECT_EQ(err, "HS256 is allowed but auth.jwt.secret is empty");
  cfg.algorithms = {"RS256"};
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
  EXPECT_EQ(err, "RS256/ES256 are allowed but auth.jwt.public_key is empty");
  cfg.public_key_pem = "not a key";
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
  EXPECT_EQ(err, "auth.jwt.public_key is not a PEM public key");
  cfg.public_key_pem = KeyPair("EC").public_pem;
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
  EXPECT_EQ(err, "RS256 is allowed but auth.jwt.public_key is not an RSA key");
  cfg.algorithms = {"ES256"};
  cfg.public_key_pem = KeyPair("RSA").public_pem;
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
  EXPECT_EQ(err, "ES256 is allowed but auth.jwt.public_key is not an EC P-256 key");
  cfg.algorithms = {"PS256"};
  EXPECT_FALSE(auth::Verifier::create(cfg, err));
}

TEST(Errors, PostgrestStatusTable) {
  EXPECT_EQ(api::status_for_sqlstate("23505"), 409);
  EXPECT_EQ(api::status_for_sqlstate("23503"), 409);
  EXPECT_EQ(api::status_for_sqlstate("23514"), 400);
  EXPECT_EQ(api::status_for_sqlstate("42501"), 403);
  EXPECT_EQ(api::status_for_sqlstate("42883"), 404);
  EXPECT_EQ(api::status_for_sqlstate("P0001"), 400);
  EXPECT_EQ(api::status_for_sqlstate("P0002"), 500);
  EXPECT_EQ(api::status_for_sqlstate("08006"), 503);
  EXPECT_EQ(api::status_for_sqlstate("53300"), 503);
  EXPECT_EQ(api::status_for_sqlstate("57014"), 500);
  EXPECT_EQ(api::status_for_sqlstate("25006"), 405);
  EXPECT_EQ(api::status_for_sqlstate("22P02"), 400);
  EXPECT_EQ(api::status_for_sqlstate("XX000"), 500);
  pg::Result r;
  r.failure = pg::Failure::kPoolTimeout;
  r.sqlstate = "08000";
  r.message = "m";
  http::Response resp = api::error_from_result(r);
  EXPECT_EQ(resp.status, 503);
  ASSERT_EQ(resp.headers.size(), 2u);
  EXPECT_EQ(resp.headers[0].name, "Retry-After");
  EXPECT_EQ(resp.headers[0].value, "1");
  EXPECT_EQ(resp.headers[1].name, "Proxy-Status");
  EXPECT_EQ(resp.headers[1].value, "zonegate; error=connection_timeout; details=\"m\"");
}

// The proxy's own refusals: status, Retry-After from the breaker's remaining open time (whole
// seconds, rounded up, never 0), RFC 9209 Proxy-Status with the reason.
TEST(Errors, ProxyRefusals) {
  auto header = [](const http::Response& r, const std::string& name) {
    for (const auto& h : r.headers)
      if (h.name == name) return h.value;
    return std::string("<none>");
  };
  pg::Result r;
  r.failure = pg::Failure::kBreakerOpen;
  r.sqlstate = "PGRST001";
  r.message = "the database is unavailable";
  r.detail = "connection refused";
  r.retry_after_ms = 2300;
  http::Response b = api::error_from_result(r);
  EXPECT_EQ(b.status, 503);
  EXPECT_EQ(header(b, "Retry-After"), "3");
  EXPECT_EQ(header(b, "Proxy-Status"),
            "zonegate; error=destination_unavailable; details=\"connection refused\"");
  r.retry_after_ms = 10;
  EXPECT_EQ(header(api::error_from_result(r), "Retry-After"), "1");
  r.retry_after_ms = 0;
  EXPECT_EQ(header(api::error_from_result(r), "Retry-After"), "1");

  pg::Result d;
  d.failure = pg::Failure::kDeadline;
  d.sqlstate = "57014";
  d.message = "deadline";
  http::Response dr = api::error_from_result(d);
  EXPECT_EQ(dr.status, 504);
  EXPECT_EQ(header(dr, "Retry-After"), "<none>");
  EXPECT_EQ(header(dr, "Proxy-Status"),
            "zonegate; error=http_response_timeout; details=\"deadline\"");

  pg::Result s;
  s.failure = pg::Failure::kShed;
  s.sqlstate = "53000";
  s.message = "shed";
  s.detail = "a \"quoted\" \n detail";
  http::Response sr = api::error_from_result(s);
  EXPECT_EQ(sr.status, 503);
  EXPECT_EQ(header(sr, "Proxy-Status"),
            "zonegate; error=connection_limit_reached; details=\"a \\\"quoted\\\"  detail\"");

  pg::Result lost;
  lost.failure = pg::Failure::kConnection;
  lost.sqlstate = "08006";
  lost.message = "lost";
  lost.sent = true;
  EXPECT_EQ(header(api::error_from_result(lost), "Proxy-Status"),
            "zonegate; error=connection_terminated; details=\"lost\"");
  lost.sent = false;
  EXPECT_EQ(header(api::error_from_result(lost), "Proxy-Status"),
            "zonegate; error=destination_unavailable; details=\"lost\"");
}
