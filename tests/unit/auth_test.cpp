// JWT verification (HS256, RS256 and ES256 with keys made here by OpenSSL): kid selection and
// rotation, JWK Sets, the refusals of RFC 7515/7519/8725 (crit, duplicate members, NUL, size,
// exp, max_age, algorithm confusion), the Authenticator's cache lifetime, base64url, and the
// SQLSTATE -> HTTP mapping.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "api/errors.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "auth/keys.hpp"
#include "common/base64.hpp"
#include "test_keys.hpp"

using namespace zonegate;
using testkeys::KeyPair;

namespace {

const std::string kSecret = "unit-test-secret-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;
// A payload valid at kNow: an hour left.
const std::string kExp = R"("exp":1700003600)";

std::unique_ptr<auth::Verifier> make_verifier(const auth::JwtConfig& cfg) {
  std::string err;
  auto v = auth::Verifier::create(cfg, err);
  EXPECT_TRUE(v) << err;
  return v;
}

std::unique_ptr<auth::Verifier> hs_verifier(auth::JwtConfig cfg = {}) {
  cfg.secret = kSecret;
  return make_verifier(cfg);
}

std::string create_error(const auth::JwtConfig& cfg) {
  std::string err;
  return auth::Verifier::create(cfg, err) ? "ok" : err;
}

std::string verify_error(const auth::Verifier& v, const std::string& token, int64_t now = kNow) {
  auth::Claims c;
  std::string err;
  return v.verify(token, now, c, err) ? "ok" : err;
}

std::string jwks_error(const std::string& json) {
  std::vector<auth::Key> keys;
  std::string err;
  return auth::parse_jwks(json, keys, err) ? "ok" : err;
}

std::string hs(const std::string& payload) {
  return auth::sign_hs256(kSecret, payload);
}

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
  std::string t = hs(R"({"sub":"alice","role":"staff","exp":1700000100})");
  auth::Claims c;
  std::string err;
  ASSERT_TRUE(v->verify(t, kNow, c, err)) << err;
  EXPECT_EQ(c.subject, "alice");
  EXPECT_EQ(c.role, "staff");
  EXPECT_EQ(c.exp, 1700000100);
  EXPECT_EQ(c.json, R"({"sub":"alice","role":"staff","exp":1700000100})");
  // Numeric subjects are accepted as their decimal text.
  ASSERT_TRUE(v->verify(hs(R"({"sub":42,)" + kExp + "}"), kNow, c, err)) << err;
  EXPECT_EQ(c.subject, "42");
  // The same member name at different levels is not a duplicate.
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","x":{"sub":"b","x":[{"x":1}]},)" + kExp + "}")),
            "ok");
}

TEST(Jwt, Hs256Rejections) {
  auto v = hs_verifier();
  auto t = [](const std::string& members) { return hs("{" + members + "}"); };
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","exp":1699999900)")), "token expired");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","exp":1699999990)")), "ok");  // within leeway
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","nbf":1700000100,)" + kExp)),
            "token not valid yet (nbf)");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iat":1700000100,)" + kExp)),
            "token issued in the future (iat)");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","exp":"soon")")), "exp claim is not a number");
  // A token without a subject is valid (an anon key); Authenticator::authenticate refuses it
  // for the routes that need one. A subject that is neither a string nor an integer names
  // nobody anyone can tell: refused.
  EXPECT_EQ(verify_error(*v, t(R"("role":"x",)" + kExp)), "ok");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"",)" + kExp)), "ok");
  EXPECT_EQ(verify_error(*v, t(R"("sub":{"id":1},)" + kExp)),
            "sub claim is not a string or an integer");
  EXPECT_EQ(verify_error(*v, t(R"("sub":1.5,)" + kExp)), "sub claim is not a string or an integer");
  EXPECT_EQ(verify_error(*v, hs("[1]")), "malformed token: payload is not a JSON object");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256("wrong-secret", R"({"sub":"a"})")),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, "a.b"), "malformed token: expected header.payload.signature");
  EXPECT_EQ(verify_error(*v, "a.b.c.d"), "malformed token: expected header.payload.signature");
  EXPECT_EQ(verify_error(*v, "!!.b.c"), "malformed token: invalid base64url");
  std::string none =
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(R"({"sub":"a"})") + ".";
  EXPECT_EQ(verify_error(*v, none), "algorithm \"none\" is not allowed");
  // A valid token with one payload byte flipped.
  std::string good = t(R"("sub":"alice",)" + kExp);
  ASSERT_EQ(verify_error(*v, good), "ok");
  std::string bad = good;
  size_t dot = bad.find('.');
  bad[dot + 2] = bad[dot + 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_error(*v, bad), "signature verification failed");
}

TEST(Jwt, IssuerAndAudience) {
  auth::JwtConfig cfg;
  cfg.issuer = "https://issuer";
  cfg.audience = {"zonegate", "other"};
  auto v = hs_verifier(cfg);
  auto t = [](const std::string& members) { return hs("{" + members + "," + kExp + "}"); };
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iss":"https://issuer","aud":"zonegate")")), "ok");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iss":"https://issuer","aud":["x","other"])")), "ok");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iss":"https://issuer","aud":"x")")),
            "audience (aud) does not match");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iss":"https://issuer")")),
            "audience (aud) does not match");
  EXPECT_EQ(verify_error(*v, t(R"("sub":"a","iss":"evil","aud":"zonegate")")),
            "issuer (iss) does not match");
}

TEST(Jwt, Rs256AndEs256AndKeyBinding) {
  KeyPair rsa = KeyPair::rsa(), ec = KeyPair::ec();
  const std::string payload = R"({"sub":"r",)" + kExp + "}";
  auth::JwtConfig rcfg;
  rcfg.algorithms = {"RS256"};
  rcfg.public_key_pem = rsa.public_pem();
  auto rv = make_verifier(rcfg);
  EXPECT_EQ(verify_error(*rv, rsa.sign_with_kid("", payload)), "ok");
  // The public key used as an HMAC secret: refused, HS256 is not allowed here.
  EXPECT_EQ(verify_error(*rv, auth::sign_hs256(rsa.public_pem(), payload)),
            "algorithm \"HS256\" is not allowed");
  auth::JwtConfig ecfg;
  ecfg.algorithms = {"ES256"};
  ecfg.public_key_pem = ec.public_pem();
  auto ev = make_verifier(ecfg);
  EXPECT_EQ(verify_error(*ev, ec.sign_with_kid("", payload)), "ok");
  EXPECT_EQ(verify_error(*ev, KeyPair::ec().sign_with_kid("", payload)),
            "signature verification failed");
  // Both allowed at once, each checked with the one key of its kind.
  auth::JwtConfig both;
  both.algorithms = {"HS256", "RS256"};
  both.secret = kSecret;
  both.public_key_pem = rsa.public_pem();
  auto bv = make_verifier(both);
  EXPECT_EQ(verify_error(*bv, auth::sign_hs256(rsa.public_pem(), payload)),
            "signature verification failed");
  EXPECT_EQ(verify_error(*bv, hs(payload)), "ok");
  EXPECT_EQ(verify_error(*bv, rsa.sign_with_kid("", payload)), "ok");
}

TEST(Jwt, ConfigurationErrors) {
  auth::JwtConfig cfg;
  EXPECT_EQ(create_error(cfg),
            "HS256 is allowed but no key is configured for it (auth.jwt.secret, keys or "
            "jwks_file)");
  cfg.algorithms = {"RS256"};
  EXPECT_EQ(create_error(cfg),
            "RS256 is allowed but no key is configured for it (auth.jwt.public_key, keys or "
            "jwks_file)");
  cfg.public_key_pem = "not a key";
  EXPECT_EQ(create_error(cfg), "auth.jwt.public_key: not a PEM public key");
  cfg.public_key_pem = KeyPair::ec().public_pem();
  EXPECT_EQ(create_error(cfg), "RS256 is allowed but auth.jwt.public_key is not an RSA key");
  cfg.algorithms = {"ES256"};
  cfg.public_key_pem = KeyPair::rsa().public_pem();
  EXPECT_EQ(create_error(cfg), "ES256 is allowed but auth.jwt.public_key is not an EC P-256 key");
  cfg.algorithms = {"PS256"};
  EXPECT_EQ(create_error(cfg),
            "unsupported JWT algorithm \"PS256\" (allowed: HS256, RS256, ES256)");
}

// RFC 8725 §3.5 asks for a minimum key size: an RSA key under 2048 bits or an EC key off P-256
// is refused wherever it comes from (PEM, keys, JWKS).
TEST(Jwt, WeakOrForeignPublicKeysAreRefused) {
  const std::string rsa1024 = KeyPair::rsa(1024).public_pem();
  const std::string p384 = KeyPair::ec("P-384").public_pem();
  auth::Key k;
  std::string err;
  EXPECT_FALSE(auth::pem_key("", rsa1024, k, err));
  EXPECT_EQ(err, "RSA key of 1024 bits (RSA >= 2048 bits is required)");
  EXPECT_FALSE(auth::pem_key("", p384, k, err));
  EXPECT_EQ(err, "EC key on curve secp384r1, not P-256 (ES256 needs P-256)");
  ASSERT_TRUE(auth::pem_key("", KeyPair::rsa().public_pem(), k, err)) << err;
  EXPECT_EQ(k.alg, auth::Alg::kRS256);
  auth::JwtConfig cfg;
  cfg.algorithms = {"RS256"};
  cfg.public_key_pem = rsa1024;
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.public_key: RSA key of 1024 bits (RSA >= 2048 bits is required)");
  cfg.public_key_pem.clear();
  cfg.keys = {{"old", "RS256", "", rsa1024}};
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.keys[0]: RSA key of 1024 bits (RSA >= 2048 bits is required)");
  EXPECT_EQ(jwks_error(R"({"keys":[)" + KeyPair::rsa(1024).jwk("a") + "]}"),
            "keys[0] (kid \"a\"): RSA key of 1024 bits (RSA >= 2048 bits is required)");
  EXPECT_EQ(jwks_error(R"({"keys":[)" + KeyPair::ec("P-384").jwk("b") + "]}"),
            "keys[0] (kid \"b\"): EC key not on curve P-256 (crv must be \"P-256\": ES256 needs "
            "P-256)");
}

// RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand; this one
// understands none, and an empty crit is itself invalid.
TEST(Jwt, CritHeaderIsRefused) {
  auto v = hs_verifier();
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  const std::string refused = "crit header refused: no JWS extension is supported";
  for (const char* header :
       {R"({"alg":"HS256","b64":false,"crit":["b64"]})", R"({"alg":"HS256","crit":[]})",
        R"({"alg":"HS256","crit":["exp"],"exp":1})", R"({"alg":"HS256","crit":"b64"})",
        R"({"alg":"HS256","crit":null})"}) {
    EXPECT_EQ(verify_error(*v, testkeys::hs256(kSecret, header, payload)), refused) << header;
  }
  EXPECT_EQ(verify_error(*v, testkeys::hs256(kSecret, R"({"alg":"HS256","b64":false})", payload)),
            "ok");  // b64 without crit is an unknown header member, ignored (RFC 7797 §6)
}

TEST(Jwt, KidSelectsTheKeyForHs256Rotation) {
  const std::string old_secret = "old-secret-0123456789abcdef012345";
  const std::string new_secret = "new-secret-0123456789abcdef012345";
  auth::JwtConfig cfg;
  cfg.keys = {{"2024", "HS256", old_secret, ""}, {"2025", "HS256", new_secret, ""}};
  auto v = make_verifier(cfg);
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(old_secret, payload, "2024")), "ok");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(new_secret, payload, "2025")), "ok");
  // The kid names the one key: the other key's signature under it fails.
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(new_secret, payload, "2024")),
            "signature verification failed");
  // Without a kid every HS256 key is tried.
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(old_secret, payload)), "ok");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(new_secret, payload)), "ok");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256("x", payload)), "signature verification failed");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(old_secret, payload, "2023")),
            "unknown key id \"2023\"");
  EXPECT_EQ(verify_error(*v, testkeys::hs256(old_secret, R"({"alg":"HS256","kid":7})", payload)),
            "malformed token: kid is not a string");
  // A key without a kid (auth.jwt.secret) never verifies a token that names a kid.
  auto legacy = hs_verifier();
  EXPECT_EQ(verify_error(*legacy, auth::sign_hs256(kSecret, payload, "k")), "unknown key id \"k\"");
  EXPECT_EQ(verify_error(*legacy, auth::sign_hs256(kSecret, payload)), "ok");
  // Two keys with one kid: a configuration error.
  cfg.keys[1].kid = "2024";
  EXPECT_EQ(create_error(cfg), "two keys have the kid \"2024\"");
}

TEST(Jwt, KidSelectsTheKeyForRsaRotation) {
  KeyPair old_key = KeyPair::rsa(), new_key = KeyPair::rsa();
  auth::JwtConfig cfg;
  cfg.algorithms = {"RS256"};
  cfg.keys = {{"old", "RS256", "", old_key.public_pem()},
              {"new", "RS256", "", new_key.public_pem()}};
  auto v = make_verifier(cfg);
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  EXPECT_EQ(verify_error(*v, old_key.sign_with_kid("old", payload)), "ok");
  EXPECT_EQ(verify_error(*v, new_key.sign_with_kid("new", payload)), "ok");
  EXPECT_EQ(verify_error(*v, new_key.sign_with_kid("old", payload)),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, old_key.sign_with_kid("", payload)), "ok");
  EXPECT_EQ(verify_error(*v, new_key.sign_with_kid("", payload)), "ok");
  EXPECT_EQ(verify_error(*v, KeyPair::rsa().sign_with_kid("", payload)),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, old_key.sign_with_kid("older", payload)), "unknown key id \"older\"");
}

// RFC 8725 §2.1/§3.1: a key is bound to one algorithm, whatever the token's header says.
TEST(Jwt, AlgorithmConfusionIsRefusedWithKeys) {
  KeyPair rsa = KeyPair::rsa();
  auth::JwtConfig cfg;
  cfg.algorithms = {"HS256", "RS256"};
  cfg.keys = {{"h", "HS256", kSecret, ""}, {"r", "RS256", "", rsa.public_pem()}};
  auto v = make_verifier(cfg);
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  // The RSA public key (which anyone may have) as an HMAC secret, under the RSA key's kid.
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(rsa.public_pem(), payload, "r")),
            "key id \"r\" is not an HS256 key");
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(rsa.public_pem(), payload)),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, rsa.sign_with_kid("h", payload)), "key id \"h\" is not an RS256 key");
  EXPECT_EQ(verify_error(*v, rsa.sign_with_kid("r", payload)), "ok");
  // A key for an algorithm the allow-list does not name is a configuration error.
  cfg.algorithms = {"HS256"};
  EXPECT_EQ(create_error(cfg), "auth.jwt.keys[1]: alg RS256 is not in auth.jwt.algorithms");
  cfg.algorithms = {"HS256", "RS256"};
  cfg.keys[1].alg = "HS256";
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.keys[1]: alg HS256 needs secret or secret_file, not a public key");
  cfg.keys[1].alg = "ES256";
  cfg.algorithms = {"HS256", "ES256"};
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.keys[1]: alg ES256 does not fit the public key (an RSA key: RS256)");
  cfg.keys[1] = {"e", "PS256", "", rsa.public_pem()};
  EXPECT_EQ(create_error(cfg), "auth.jwt.keys[1]: \"PS256\" is not one of HS256, RS256, ES256");
  cfg.keys[1] = {"e", "ES256", "", ""};
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.keys[1]: has no key material: give secret, secret_file, public_key or "
            "public_key_file");
}

TEST(Jwks, OctRsaAndEcKeysVerifyTheirTokens) {
  KeyPair rsa = KeyPair::rsa(), ec = KeyPair::ec();
  const std::string oct_secret = "jwks-oct-secret-0123456789abcdef0";
  auth::JwtConfig cfg;
  cfg.algorithms = {"HS256", "RS256", "ES256"};
  cfg.jwks = R"({"keys":[{"kty":"oct","kid":"o","alg":"HS256","use":"sig","k":")" +
             base64url_encode(oct_secret) + R"("},)" + rsa.jwk("r", R"(,"alg":"RS256")") + "," +
             ec.jwk("e", R"(,"use":"sig","key_ops":["verify"])") + "]}";
  auto v = make_verifier(cfg);
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  EXPECT_EQ(verify_error(*v, auth::sign_hs256(oct_secret, payload, "o")), "ok");
  EXPECT_EQ(verify_error(*v, rsa.sign_with_kid("r", payload)), "ok");
  EXPECT_EQ(verify_error(*v, ec.sign_with_kid("e", payload)), "ok");
  EXPECT_EQ(verify_error(*v, ec.sign_with_kid("", payload)), "ok");
  EXPECT_EQ(verify_error(*v, KeyPair::ec().sign_with_kid("e", payload)),
            "signature verification failed");
  EXPECT_EQ(verify_error(*v, rsa.sign_with_kid("e", payload)), "key id \"e\" is not an RS256 key");
  EXPECT_EQ(verify_error(*v, rsa.sign_with_kid("x", payload)), "unknown key id \"x\"");
  // A JWKS key of an algorithm not allowed is a configuration error.
  cfg.algorithms = {"HS256", "RS256"};
  EXPECT_EQ(create_error(cfg),
            "auth.jwt.jwks_file: keys[2]: alg ES256 is not in auth.jwt.algorithms");
}

TEST(Jwks, Refusals) {
  const std::string rsa = KeyPair::rsa().jwk("r");
  EXPECT_EQ(jwks_error("{"), "not JSON: Missing a name for object member. at byte 1");
  EXPECT_EQ(jwks_error("[]"), "not a JWK Set: expected an object with a \"keys\" array");
  EXPECT_EQ(jwks_error(R"({"keys":[]})"), "the JWK Set has no keys");
  EXPECT_EQ(jwks_error(R"({"keys":[1]})"), "keys[0]: not a JSON object");
  EXPECT_EQ(jwks_error(R"({"keys":[],"keys":[]})"), "not a JWK Set: duplicate member name");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]})"),
            "keys[0]: kty \"OKP\" is not supported (oct, RSA, EC)");
  EXPECT_EQ(jwks_error(R"({"keys":[{"k":"AAAA"}]})"), "keys[0]: has no kty");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct"}]})"),
            "keys[0]: member \"k\" is missing or not a string");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct","k":"!!"}]})"),
            "keys[0]: member \"k\" is not base64url");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct","k":"AAAA","use":"enc"}]})"),
            "keys[0]: use \"enc\": only signature keys (use \"sig\") verify tokens");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct","k":"AAAA","key_ops":["sign"]}]})"),
            "keys[0]: key_ops does not include \"verify\"");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct","k":"AAAA","alg":"RS256"}]})"),
            "keys[0]: alg RS256 does not fit kty oct (HS256)");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"oct","k":"AAAA","alg":"HS512"}]})"),
            "keys[0]: alg \"HS512\" is not one of HS256, RS256, ES256");
  EXPECT_EQ(jwks_error(R"({"keys":[)" + rsa.substr(0, rsa.size() - 1) + R"(,"d":"AAAA"}]})"),
            "keys[0] (kid \"r\"): holds a private key (member \"d\"): publish only public keys "
            "here");
  // A point that is not on the curve (x = y = 1).
  const std::string one = base64url_encode(std::string(31, '\0') + "\x01");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + one + R"(","y":")" + one +
                       R"("}]})"),
            "keys[0]: x and y are not a point on P-256");
  EXPECT_EQ(jwks_error(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})"),
            "keys[0]: x and y must be 32 bytes each for P-256");
  std::vector<auth::Key> keys;
  std::string err;
  ASSERT_TRUE(auth::parse_jwks(R"({"keys":[)" + rsa + "]}", keys, err)) << err;
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].kid, "r");
  EXPECT_EQ(keys[0].alg, auth::Alg::kRS256);  // inferred from kty when alg is absent
}

// Parsers disagree on duplicate member names (RapidJSON reads the first, Postgres jsonb keeps
// the last) and on NUL (libpq cuts the string there): both would let the proxy and the database
// see different claims, so both are refused at every level.
TEST(Jwt, DuplicateMemberNamesAreRefused) {
  auto v = hs_verifier();
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","role":"user","role":"admin",)" + kExp + "}")),
            "duplicate member name in the token payload");
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","sub":"b",)" + kExp + "}")),
            "duplicate member name in the token payload");
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","app":{"org":{"id":1,"id":2}},)" + kExp + "}")),
            "duplicate member name in the token payload");
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","list":[1,{"k":1,"k":1}],)" + kExp + "}")),
            "duplicate member name in the token payload");
  EXPECT_EQ(verify_error(*v, testkeys::hs256(kSecret, R"({"alg":"HS256","alg":"HS256"})",
                                             R"({"sub":"a",)" + kExp + "}")),
            "duplicate member name in the token header");
  // Deep nesting is walked without recursion.
  std::string deep = R"({"sub":"a",)" + kExp + R"(,"d":)" + std::string(2000, '[') +
                     "{\"x\":1,\"x\":1}" + std::string(2000, ']') + "}";
  EXPECT_EQ(verify_error(*v, hs(deep)), "duplicate member name in the token payload");
}

TEST(Jwt, NulInAnyStringIsRefused) {
  auto v = hs_verifier();
  const std::string nul = "NUL character in a string in the token payload";
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"alice\u0000admin",)" + kExp + "}")), nul);
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","x":{"y":["ok","\u0000"]},)" + kExp + "}")), nul);
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","ro\u0000le":"admin",)" + kExp + "}")), nul);
  EXPECT_EQ(verify_error(*v, testkeys::hs256(kSecret, R"({"alg":"HS256","kid":"\u0000"})",
                                             R"({"sub":"a",)" + kExp + "}")),
            "NUL character in a string in the token header");
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"alice\u0001",)" + kExp + "}")), "ok");  // only NUL
}

TEST(Jwt, TokenSizeIsCappedBeforeDecoding) {
  auth::JwtConfig cfg;
  auto v = hs_verifier(cfg);
  EXPECT_EQ(v->config().max_token_bytes, 8192u);
  // Not even base64url: refused for its size alone.
  EXPECT_EQ(verify_error(*v, std::string(8193, '!')), "token too large");
  std::string pad = R"({"sub":"a",)" + kExp + R"(,"pad":")";
  std::string fits = hs(pad + std::string(5900, 'x') + "\"}");
  ASSERT_LE(fits.size(), 8192u);
  EXPECT_EQ(verify_error(*v, fits), "ok");
  std::string over = hs(pad + std::string(6200, 'x') + "\"}");
  ASSERT_GT(over.size(), 8192u);
  EXPECT_EQ(verify_error(*v, over), "token too large");
  cfg.max_token_bytes = 512;
  auto small = hs_verifier(cfg);
  EXPECT_EQ(verify_error(*small, fits), "token too large");
  EXPECT_EQ(verify_error(*small, hs(R"({"sub":"a",)" + kExp + "}")), "ok");
}

TEST(Jwt, ExpIsRequiredByDefault) {
  auth::JwtConfig cfg;
  EXPECT_TRUE(cfg.require_exp);
  auto v = hs_verifier(cfg);
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a"})")), "token has no exp claim");
  EXPECT_EQ(verify_error(*v, hs(R"({"sub":"a","iat":1700000000})")), "token has no exp claim");
  cfg.require_exp = false;
  auto lax = hs_verifier(cfg);
  auth::Claims c;
  std::string err;
  ASSERT_TRUE(lax->verify(hs(R"({"sub":"a"})"), kNow, c, err)) << err;
  EXPECT_EQ(c.exp, 0);
  // max_age bounds a lifetime, which a token without exp does not have.
  cfg.max_age_s = 3600;
  auto bounded = hs_verifier(cfg);
  EXPECT_EQ(verify_error(*bounded, hs(R"({"sub":"a"})")), "token has no exp claim");
}

TEST(Jwt, MaxAgeBoundsTheLifetimeATokenClaims) {
  auth::JwtConfig cfg;
  cfg.max_age_s = 3600;
  auto v = hs_verifier(cfg);
  auto t = [](int64_t iat, int64_t exp) {
    std::string members = R"("sub":"a","exp":)" + std::to_string(exp);
    if (iat != 0) members += R"(,"iat":)" + std::to_string(iat);
    return hs("{" + members + "}");
  };
  const std::string refused = "token lifetime exceeds max_age (3600s)";
  EXPECT_EQ(verify_error(*v, t(kNow, kNow + 3600)), "ok");
  EXPECT_EQ(verify_error(*v, t(kNow, kNow + 3601)), refused);
  // exp - iat counts, not exp - now: a day-long token issued 23 h ago is still too long.
  EXPECT_EQ(verify_error(*v, t(kNow - int64_t{23} * 3600, kNow + 3600)), refused);
  // Without iat, exp - now, with the leeway for the issuer's clock.
  EXPECT_EQ(verify_error(*v, t(0, kNow + 3600 + 30)), "ok");
  EXPECT_EQ(verify_error(*v, t(0, kNow + 3600 + 31)), refused);
}

TEST(Jwt, ErrorsNeverEchoRawTokenBytes) {
  auto v = hs_verifier();
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  std::string alg_err = verify_error(
      *v, testkeys::hs256(kSecret,
                          "{\"alg\":\"HS\\r\\nX-Evil: 1\\\"\\\\" + std::string(100, 'A') + "\"}",
                          payload));
  EXPECT_EQ(alg_err, "algorithm \"HS??X-Evil: 1??" + std::string(17, 'A') + "...\" is not allowed");
  std::string kid_err = verify_error(
      *v, auth::sign_hs256(kSecret, payload, "k\x7f\xc3\xa9\ty" + std::string(40, 'k')));
  EXPECT_EQ(kid_err, "unknown key id \"k????y" + std::string(26, 'k') + "...\"");
  for (const std::string& e : {alg_err, kid_err})
    for (char c : e)
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << e;
}

TEST(Jwt, SignHs256PutsTheKid) {
  std::string t = auth::sign_hs256(kSecret, "{}", "k1");
  EXPECT_EQ(*base64url_decode(t.substr(0, t.find('.'))),
            R"({"alg":"HS256","typ":"JWT","kid":"k1"})");
  t = auth::sign_hs256(kSecret, "{}");
  EXPECT_EQ(*base64url_decode(t.substr(0, t.find('.'))), R"({"alg":"HS256","typ":"JWT"})");
}

namespace {

http::Request bearer(const std::string& token) {
  http::Request req;
  req.headers.push_back({"authorization", "Bearer " + token});
  return req;
}

std::string www_authenticate(const http::Response& r) {
  for (const auto& h : r.headers)
    if (h.name == "WWW-Authenticate") return h.value;
  return "<none>";
}

}  // namespace

// The per-worker cache holds a verification only as long as the token is valid: exp + leeway,
// and kNoExpCacheS for a token without exp (require_exp off), never for good.
TEST(Authenticator, CacheExpiresWithTheToken) {
  int64_t now = kNow;
  auth::JwtConfig cfg;
  cfg.require_exp = false;
  auth::Authenticator a(hs_verifier(cfg), [&now] { return now; });
  const std::string t = hs(R"({"sub":"a","exp":1700000100})");
  auth::Claims c;
  http::Response err;
  ASSERT_TRUE(a.authenticate(bearer(t), c, err));
  EXPECT_EQ(a.cached_until(t), 1700000100 + 30);
  now = 1700000129;
  ASSERT_TRUE(a.authenticate(bearer(t), c, err));
  now = 1700000130;
  ASSERT_FALSE(a.authenticate(bearer(t), c, err));
  EXPECT_EQ(err.status, 401);
  EXPECT_EQ(www_authenticate(err),
            R"(Bearer error="invalid_token", error_description="token expired")");
  EXPECT_EQ(a.cached_until(t), 0);
  std::string subject;
  EXPECT_FALSE(a.subject(bearer(t), subject));

  const std::string no_exp = hs(R"({"sub":"b"})");
  ASSERT_TRUE(a.authenticate(bearer(no_exp), c, err));
  EXPECT_EQ(a.cached_until(no_exp), now + auth::Authenticator::kNoExpCacheS);
  now += auth::Authenticator::kNoExpCacheS;
  EXPECT_TRUE(a.subject(bearer(no_exp), subject));  // verified again, cached again
  EXPECT_EQ(subject, "b");
  EXPECT_EQ(a.cached_until(no_exp), now + auth::Authenticator::kNoExpCacheS);
}

TEST(Authenticator, RefusalsAre401WithTheReason) {
  auth::Authenticator a(hs_verifier(), [] { return kNow; });
  auth::Claims c;
  http::Response err;
  const std::string payload = R"({"sub":"a",)" + kExp + "}";
  ASSERT_FALSE(a.authenticate(
      bearer(testkeys::hs256(kSecret, R"({"alg":"HS256","crit":["b64"],"b64":false})", payload)), c,
      err));
  EXPECT_EQ(err.status, 401);
  EXPECT_EQ(www_authenticate(err),
            "Bearer error=\"invalid_token\", error_description=\"crit header refused: no JWS "
            "extension is supported\"");
  ASSERT_FALSE(a.authenticate(bearer(hs(R"({"sub":"a"})")), c, err));
  EXPECT_EQ(www_authenticate(err),
            R"(Bearer error="invalid_token", error_description="token has no exp claim")");
  ASSERT_FALSE(a.authenticate(bearer(std::string(9000, 'a')), c, err));
  EXPECT_EQ(www_authenticate(err),
            R"(Bearer error="invalid_token", error_description="token too large")");
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
  EXPECT_EQ(resp.status, 504);  // PostgREST's PGRST003 (errors_test.cpp has the whole table)
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
