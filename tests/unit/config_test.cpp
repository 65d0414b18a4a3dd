// Config loader: values, defaults, ${ENV} expansion, secrets from files, JWT keys and JWK Sets,
// and the exact file:line:col diagnostics a bad file gets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "test_keys.hpp"

using zonegate::config::load_file;
using zonegate::config::load_string;
using zonegate::config::LoadResult;
using zonegate::testkeys::KeyPair;

namespace {

std::string first_error(const std::string& yaml) {
  auto r = load_string(yaml, "test.yaml");
  return r.errors.empty() ? std::string("<no error>") : r.errors.front().to_string();
}

std::vector<std::string> all_errors(const std::string& yaml) {
  std::vector<std::string> got;
  for (const auto& e : load_string(yaml, "k.yaml").errors)
    got.push_back(e.to_string());
  return got;
}

// A file in the test's temporary directory, removed with the object.
struct TempFile {
  std::string path;
  TempFile(const std::string& name, const std::string& content)
      : path(::testing::TempDir() + name) {
    std::ofstream(path) << content;
  }
  ~TempFile() { std::remove(path.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace

TEST(Config, DefaultsFromEmptyDocument) {
  auto r = load_string("", "empty.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.profile, "dev");
  EXPECT_EQ(r.config.server.port, 8080);
  EXPECT_EQ(r.config.server.host, "127.0.0.1");
  EXPECT_EQ(r.config.server.idle_timeout_ms, 60000);
}

TEST(Config, ReadsValuesWithUnits) {
  auto r = load_string(
      "profile: prod\n"
      "auth:\n"
      "  jwt:\n"
      "    secret: 0123456789abcdef0123456789abcdef\n"
      "    issuer: https://issuer.example\n"
      "  admin_token: admin-0123456789abcdef0123456789abcdef\n"
      "server:\n"
      "  host: 0.0.0.0\n"
      "  port: 9090\n"
      "  workers: 3\n"
      "  header_timeout: 1500ms\n"
      "  idle_timeout: 2m\n"
      "  max_body_bytes: 64KiB\n"
      "log:\n"
      "  level: debug\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.profile, "prod");
  EXPECT_EQ(r.config.server.host, "0.0.0.0");
  EXPECT_EQ(r.config.server.port, 9090);
  EXPECT_EQ(r.config.server.workers, 3);
  EXPECT_EQ(r.config.server.header_timeout_ms, 1500);
  EXPECT_EQ(r.config.server.idle_timeout_ms, 120000);
  EXPECT_EQ(r.config.server.max_body_bytes, 65536);
  EXPECT_EQ(r.config.log.level, "debug");
}

// The table of bad files and the exact error each one gives.
struct BadCase {
  const char* yaml;
  const char* error;
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, GivesExactError) {
  EXPECT_EQ(first_error(GetParam().yaml), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfig,
    ::testing::Values(
        BadCase{"server:\n  port: [1, 2\n",
                "test.yaml:3:1: invalid YAML: end of sequence flow not found"},
        BadCase{"server:\n  port: eighty\n",
                "test.yaml:2:9: server.port: expected an integer, got \"eighty\""},
        BadCase{"server:\n  port: 70000\n",
                "test.yaml:2:9: server.port: 70000 is out of range [0, 65535]"},
        BadCase{"server:\n  portt: 80\n",
                "test.yaml:2:3: unknown key \"portt\" in server (did you mean \"port\"?)"},
        BadCase{"servr:\n  port: 80\n",
                "test.yaml:1:1: unknown key \"servr\" (did you mean \"server\"?)"},
        BadCase{"profile: staging\n",
                "test.yaml:1:10: profile: \"staging\" is not one of dev, prod"},
        BadCase{
            "server:\n  idle_timeout: 10\n",
            "test.yaml:2:17: server.idle_timeout: expected a duration such as 250ms, 10s, 5m or "
            "1h, got \"10\""},
        BadCase{"server:\n  max_body_bytes: lots\n",
                "test.yaml:2:19: server.max_body_bytes: expected a size such as 65536, 64KiB or "
                "256MiB, got \"lots\""},
        BadCase{"server: 8080\n", "test.yaml:1:9: server must be a mapping of key: value"},
        BadCase{"server:\n  host: [a]\n",
                "test.yaml:2:9: server.host: expected a single value, got a list"},
        BadCase{"log:\n  access_log: maybe\n",
                "test.yaml:2:15: log.access_log: expected true or false, got \"maybe\""},
        BadCase{"log:\n  access_log_flush: 1m\n",
                "test.yaml:2:21: log.access_log_flush: 1m is out of range [0ms, 10000ms]"},
        BadCase{
            "database:\n  conninfo: ${ZONEGATE_TEST_SURELY_UNSET}\n",
            "test.yaml:2:13: database.conninfo: environment variable ZONEGATE_TEST_SURELY_UNSET "
            "is not set (write ${ZONEGATE_TEST_SURELY_UNSET:-default} to give a default)"},
        BadCase{
            "database:\n  conninfo: x\n  conninfo_file: /nonexistent\n",
            "test.yaml:3:18: database.conninfo: give either conninfo or conninfo_file, not both"},
        BadCase{"database:\n  conninfo_file: /nonexistent/zonegate-secret\n",
                "test.yaml:2:18: database.conninfo_file: cannot read /nonexistent/zonegate-secret: "
                "No such file or directory"},
        BadCase{"server:\n  port: 1\n  port: 2\n",
                "test.yaml:3:3: duplicate key \"port\" in server"},
        BadCase{"- a\n- b\n", "test.yaml:1:1: the document must be a mapping of key: value"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/v1/me/*]\n      rate: 0/s\n",
                "test.yaml:5:13: rate_limit.policies.me.rate: \"0/s\" is not a rate: a whole "
                "number above 0 per s, min or h, like 20/s or 600/min"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/v1/me/*]\n      rate: -5/s\n",
                "test.yaml:5:13: rate_limit.policies.me.rate: \"-5/s\" is not a rate: a whole "
                "number above 0 per s, min or h, like 20/s or 600/min"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/v1/me/*]\n      rate: 5/s\n"
                "      burst: 0\n",
                "test.yaml:6:14: rate_limit.policies.me.burst: 0 is out of range [1, 1000000000]"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/v1/me/*]\n      rate: 5/s\n"
                "      key: cookie\n",
                "test.yaml:6:12: rate_limit.policies.me.key: unknown key source \"cookie\" "
                "(subject, client_address or header:<name>)"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/rpc/*, /rpc/add]\n"
                "      rate: 5/s\n",
                "test.yaml:4:15: rate_limit.policies.me.routes: \"/rpc/add\" overlaps \"/rpc/*\" "
                "in the same policy, so a request would be counted twice: keep the wider one, or "
                "put the narrower in a policy of its own"},
        BadCase{"rate_limit:\n  policies:\n    me:\n      routes: [/rpc/*/x]\n      rate: 5/s\n",
                "test.yaml:4:15: rate_limit.policies.me.routes: \"/rpc/*/x\" is not a route "
                "class: write an exact path (/rpc/add), a prefix ending in /* (/rpc/*) or admin"},
        BadCase{"rate_limit:\n  trusted_proxies: [10.0.0.0/33]\n",
                "test.yaml:2:20: rate_limit.trusted_proxies: \"10.0.0.0/33\": the prefix length "
                "must be 0..32"},
        BadCase{"rate_limit:\n  trusted_proxies: [10.0.0/8]\n",
                "test.yaml:2:20: rate_limit.trusted_proxies: \"10.0.0/8\" is not an IPv4 or IPv6 "
                "address range (like 10.0.0.0/8)"}));

TEST(Config, RateLimitPolicies) {
  LoadResult r = load_string(
      "rate_limit:\n  trusted_proxies: [10.0.0.0/8, \"::1\"]\n  policies:\n"
      "    me:\n      routes: [/v1/me/*]\n      rate: 600/min\n      burst: 20\n"
      "    keys:\n      routes: [/rpc/*, admin]\n      key: header:X-API-Key\n      rate: 5/s\n"
      "      mode: dry_run\n      max_keys: 1000\n",
      "test.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().to_string();
  const auto& p = r.config.rate_limit.policies;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "me");
  EXPECT_EQ(p[0].quota, 600);
  EXPECT_EQ(p[0].window_s, 60);
  EXPECT_EQ(p[0].burst, 20);
  EXPECT_DOUBLE_EQ(p[0].rate_per_s(), 10.0);
  EXPECT_EQ(p[0].key, "subject");
  EXPECT_FALSE(p[0].dry_run);
  EXPECT_EQ(p[1].key, "header");
  EXPECT_EQ(p[1].header, "x-api-key");
  EXPECT_EQ(p[1].burst, 5);  // the quota, when not given
  EXPECT_TRUE(p[1].dry_run);
  EXPECT_EQ(p[1].max_keys, 1000);
  EXPECT_EQ(r.config.rate_limit.trusted_proxies.size(), 2u);
}

TEST(Config, ProdProfileRefusesUnsafeSettings) {
  auto r = load_string("profile: prod\nauth:\n  jwt:\n    secret: short\n", "p.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(
      r.errors[0].to_string(),
      "p.yaml: profile prod: auth.jwt.secret must be set and at least 32 bytes long for HS256");
  EXPECT_EQ(r.errors[1].to_string(),
            "p.yaml: profile prod: auth.jwt.issuer or auth.jwt.audience must be set, so that "
            "tokens of another issuer, or for another service, signed with a shared key are "
            "refused");
  EXPECT_EQ(r.errors[2].to_string(),
            "p.yaml: profile prod: auth.admin_token must be set (or admin.enabled: false)");
  auto rs = load_string(
      "profile: prod\nauth:\n  jwt:\n    algorithms: [RS256]\n    audience: [zonegate]\n"
      "  admin_token: 0123456789abcdef0123456789abcdef\n",
      "p.yaml");
  ASSERT_EQ(rs.errors.size(), 1u);
  EXPECT_EQ(rs.errors[0].message, "profile prod: auth.jwt.public_key must be set for RS256/ES256");
  auto dev = load_string("auth:\n  jwt:\n    secret: short\n", "d.yaml");
  EXPECT_TRUE(dev.ok());
  // Either issuer or audience is enough; named HS256 keys must be long enough too.
  const std::string ok_prod =
      "profile: prod\nauth:\n  admin_token: 0123456789abcdef0123456789abcdef\n  jwt:\n"
      "    audience: [zonegate]\n    keys:\n"
      "      - {kid: a, alg: HS256, secret: 0123456789abcdef0123456789abcdef}\n";
  auto good = load_string(ok_prod, "p.yaml");
  EXPECT_TRUE(good.ok()) << good.errors.front().to_string();
  auto short_key = load_string(ok_prod + "      - {kid: b, alg: HS256, secret: short}\n", "p.yaml");
  ASSERT_EQ(short_key.errors.size(), 1u);
  EXPECT_EQ(short_key.errors[0].message,
            "profile prod: auth.jwt.keys[1].secret must be at least 32 bytes long");
}

TEST(Config, JwtKeysJwksAndLimits) {
  KeyPair rsa = KeyPair::rsa(), ec = KeyPair::ec();
  TempFile pem("zonegate-rsa.pem", rsa.public_pem());
  TempFile secret("zonegate-hs-secret", "rotated-secret-0123456789abcdef01\n");
  TempFile jwks("zonegate-jwks.json", R"({"keys":[)" + ec.jwk("ec-1") + "]}");
  auto r = load_string(
      "auth:\n  jwt:\n    algorithms: [HS256, RS256, ES256]\n"
      "    secret: legacy-secret\n"
      "    keys:\n"
      "      - kid: hs-1\n        alg: HS256\n        secret_file: " +
          secret.path +
          "\n"
          "      - {kid: rsa-1, alg: RS256, public_key_file: " +
          pem.path +
          "}\n"
          "    jwks_file: " +
          jwks.path +
          "\n"
          "    require_exp: false\n    max_age: 1h\n    max_token_bytes: 4KiB\n",
      "k.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& j = r.config.auth.jwt;
  ASSERT_EQ(j.keys.size(), 2u);
  EXPECT_EQ(j.keys[0].kid, "hs-1");
  EXPECT_EQ(j.keys[0].secret, "rotated-secret-0123456789abcdef01");
  EXPECT_EQ(j.keys[1].alg, "RS256");
  EXPECT_EQ(j.keys[1].public_key, rsa.public_pem().substr(0, rsa.public_pem().size() - 1));
  EXPECT_EQ(j.jwks_file, jwks.path);
  EXPECT_NE(j.jwks.find("ec-1"), std::string::npos);
  EXPECT_FALSE(j.require_exp);
  EXPECT_EQ(j.max_age_ms, 3'600'000);
  EXPECT_EQ(j.max_token_bytes, 4096);
  // The defaults.
  auto d = load_string("", "d.yaml");
  EXPECT_TRUE(d.config.auth.jwt.require_exp);
  EXPECT_EQ(d.config.auth.jwt.max_age_ms, 0);
  EXPECT_EQ(d.config.auth.jwt.max_token_bytes, 8192);
}

// Every key problem is a diagnostic at the line of the key (or of jwks_file), not a failed start.
TEST(Config, JwtKeyErrorsPointAtTheirLine) {
  const std::string head = "auth:\n  jwt:\n    algorithms: [HS256, RS256]\n    keys:\n";
  EXPECT_EQ(all_errors(head + "      - kid: a\n        alg: HS256\n"),
            (std::vector<std::string>{
                "k.yaml:5:9: auth.jwt.keys[0]: has no key material: give secret, secret_file, "
                "public_key or public_key_file"}));
  EXPECT_EQ(all_errors(head + "      - {kid: a, alg: HS256, secret: s}\n"),
            (std::vector<std::string>{
                "k.yaml:3:17: auth.jwt.algorithms: RS256 is allowed but no key is configured for "
                "it (public_key, keys or jwks_file)"}));
  const std::string hs = "      - {kid: a, alg: HS256, secret: s}\n";
  EXPECT_EQ(
      all_errors("auth:\n  jwt:\n    keys:\n" + hs + hs),
      (std::vector<std::string>{
          "k.yaml:5:15: auth.jwt.keys[1].kid: \"a\" is already the kid of auth.jwt.keys[0]"}));
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    keys:\n      - {kid: a, alg: PS256, secret: s}\n"),
            (std::vector<std::string>{
                "k.yaml:4:23: auth.jwt.keys[0].alg: \"PS256\" is not one of HS256, RS256, ES256"}));
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    keys:\n      - {kid: a, secret: s}\n")[0],
            "k.yaml:4:9: auth.jwt.keys[0]: alg is required (HS256, RS256 or ES256)");
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    algorithms: [RS256]\n    keys:\n"
                       "      - {kid: a, alg: HS256, secret: s}\n")[0],
            "k.yaml:5:23: auth.jwt.keys[0].alg: HS256 is not in auth.jwt.algorithms");
  EXPECT_EQ(all_errors(head + "      - {kid: a, alg: RS256, secret: s}\n")[0],
            "k.yaml:5:38: auth.jwt.keys[0].secret: alg RS256 needs public_key or "
            "public_key_file, not a secret");
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    keys: {kid: a}\n")[0],
            "k.yaml:3:11: auth.jwt.keys must be a list of mappings");
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    keys:\n      - {kid: a, alg: HS256, secret: s, "
                       "colour: red}\n")[0],
            "k.yaml:4:41: unknown key \"colour\" in auth.jwt.keys[0]");

  TempFile rsa1024("zonegate-rsa1024.pem", KeyPair::rsa(1024).public_pem());
  TempFile p384("zonegate-p384.pem", KeyPair::ec("P-384").public_pem());
  EXPECT_EQ(all_errors(head + "      - kid: old\n        alg: RS256\n        public_key_file: " +
                       rsa1024.path + "\n")[0],
            "k.yaml:7:26: auth.jwt.keys[0].public_key_file: RSA key of 1024 bits (RSA >= 2048 "
            "bits is required)");
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    algorithms: [ES256]\n    public_key_file: " + p384.path +
                       "\n")[0],
            "k.yaml:4:22: auth.jwt.public_key_file: EC key on curve secp384r1, not P-256 (ES256 "
            "needs P-256)");

  TempFile bad_json("zonegate-bad.jwks", "{\"keys\": [");
  TempFile weak("zonegate-weak.jwks", R"({"keys":[)" + KeyPair::rsa(1024).jwk("w") + "]}");
  TempFile other_curve("zonegate-p384.jwks", R"({"keys":[)" + KeyPair::ec("P-384").jwk("c") + "]}");
  TempFile dup_kid("zonegate-dup.jwks", R"({"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]})");
  const std::string jhead = "auth:\n  jwt:\n    algorithms: [HS256, RS256]\n    jwks_file: ";
  EXPECT_EQ(all_errors(jhead + bad_json.path + "\n")[0],
            "k.yaml:4:16: auth.jwt.jwks_file: not JSON: Invalid value. at byte 10");
  EXPECT_EQ(all_errors(jhead + weak.path + "\n")[0],
            "k.yaml:4:16: auth.jwt.jwks_file: keys[0] (kid \"w\"): RSA key of 1024 bits (RSA >= "
            "2048 bits is required)");
  EXPECT_EQ(all_errors(jhead + other_curve.path + "\n")[0],
            "k.yaml:4:16: auth.jwt.jwks_file: keys[0] (kid \"c\"): EC key not on curve P-256 "
            "(crv must be \"P-256\": ES256 needs P-256)");
  EXPECT_EQ(all_errors(jhead + dup_kid.path + "\n    keys:\n" + hs)[0],
            "k.yaml:4:16: auth.jwt.jwks_file: keys[0]: \"a\" is already the kid of "
            "auth.jwt.keys[0]");
  EXPECT_EQ(all_errors(jhead + "/nonexistent/zonegate.jwks\n")[0],
            "k.yaml:4:16: auth.jwt.jwks_file: cannot read /nonexistent/zonegate.jwks: No such "
            "file or directory");
  EXPECT_EQ(all_errors("auth:\n  jwt:\n    max_age: 0s\n    max_token_bytes: 100\n"),
            (std::vector<std::string>{
                "k.yaml:3:14: auth.jwt.max_age: 0s is out of range [1000ms, 31622400000ms]",
                "k.yaml:4:22: auth.jwt.max_token_bytes: 100 is out of range [256, 1048576] "
                "bytes"}));
}

TEST(Config, AdminListenerAndTokenLength) {
  auto r = load_string(
      "admin:\n  host: 10.0.0.1\n  port: 9100\n  secure_cookie: true\n  session_ttl: 1h\n"
      "  login_rate: 3/min\n  max_connections: 8\n",
      "a.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.admin.host, "10.0.0.1");
  EXPECT_EQ(r.config.admin.port, 9100);
  EXPECT_TRUE(r.config.admin.secure_cookie);
  EXPECT_EQ(r.config.admin.session_ttl_ms, 3'600'000);
  EXPECT_EQ(r.config.admin.login_quota, 3);
  EXPECT_EQ(r.config.admin.login_window_s, 60);
  EXPECT_EQ(r.config.admin.max_connections, 8);
  auto d = load_string("", "d.yaml");
  EXPECT_TRUE(d.config.admin.enabled);
  EXPECT_EQ(d.config.admin.host, "127.0.0.1");
  EXPECT_EQ(d.config.admin.port, 8081);
  EXPECT_EQ(d.config.server.max_connections_per_address, 256);
  EXPECT_EQ(d.config.server.write_timeout_ms, 30'000);

  // A short admin token is refused in every profile, dev included.
  auto s = load_string("auth:\n  admin_token: short-token\n", "s.yaml");
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_NE(s.errors[0].message.find("at least 32 bytes"), std::string::npos)
      << s.errors[0].to_string();
  // The admin listener cannot be the public one.
  auto same = load_string("server:\n  port: 9000\nadmin:\n  port: 9000\n", "x.yaml");
  ASSERT_EQ(same.errors.size(), 1u);
  EXPECT_NE(same.errors[0].message.find("must differ from server.port"), std::string::npos);
  auto bad = load_string("admin:\n  login_rate: often\n", "b.yaml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].line, 2);
}

TEST(Config, PoolAndRpcValidation) {
  auto r = load_string(
      "database:\n  pool:\n    min: 5\n    max: 2\n    acquire_timeout: 0ms\n"
      "rpc:\n  functions: [ok_name, \"bad; drop\"]\n"
      "auth:\n  jwt:\n    algorithms: [HS256, none]\n",
      "v.yaml");
  std::vector<std::string> got;
  for (const auto& e : r.errors)
    got.push_back(e.to_string());
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "v.yaml:5:22: database.pool.acquire_timeout: 0ms is out of range [1ms, 3600000ms]",
                "v.yaml:3:10: database.pool.min: must not exceed pool.max (2)",
                "v.yaml:10:17: auth.jwt.algorithms: \"none\" is not one of HS256, RS256, ES256 "
                "(unsigned tokens are never accepted)",
                "v.yaml:7:24: rpc.functions: \"bad; drop\" is not a function name or "
                "name(type, ...): only argument types in parentheses may follow the name"}));
}

TEST(Config, RpcDefaultsToTheApiSchema) {
  auto r = load_string("", "d.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.rpc.schema, "api");
  EXPECT_TRUE(r.config.rpc.functions.empty());
  EXPECT_TRUE(r.config.rpc.trusted_owners.empty());
}

TEST(Config, RpcEntriesByNameAndBySignature) {
  auto r = load_string(
      "rpc:\n"
      "  functions:\n"
      "    - add\n"
      "    - add(int4, int4)\n"
      "    - \"over ( integer ,text[] )\"\n"
      "    - none()\n"
      "    - money(numeric(10,2), \"My Type\", public.thing, double precision)\n"
      "  trusted_owners: [api_owner, deployer]\n"
      "cache:\n"
      "  rpc:\n"
      "    add: {scope: shared, identity_free: true, depends_on: [zonegate]}\n"
      "    over: {scope: shared, depends_on: [app.items]}\n",
      "s.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& f = r.config.rpc.functions;
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0].name, "add");
  EXPECT_FALSE(f[0].has_signature());
  EXPECT_EQ(f[1].name, "add");
  EXPECT_EQ(f[1].args, "(int4,int4)");
  EXPECT_EQ(f[1].text, "add(int4, int4)");
  EXPECT_EQ(f[2].name, "over");
  EXPECT_EQ(f[2].args, "(integer,text[])");
  EXPECT_EQ(f[3].args, "()");
  EXPECT_TRUE(f[3].has_signature());
  EXPECT_EQ(f[4].args, "(numeric(10,2),\"My Type\",public.thing,double precision)");
  EXPECT_EQ(r.config.rpc.names(), (std::vector<std::string>{"add", "over", "none", "money"}));
  EXPECT_TRUE(r.config.rpc.allows("over"));
  EXPECT_FALSE(r.config.rpc.allows("under"));
  EXPECT_EQ(r.config.rpc.trusted_owners, (std::vector<std::string>{"api_owner", "deployer"}));
  EXPECT_TRUE(r.config.cache.rpc.at("add").shared);
  EXPECT_TRUE(r.config.cache.rpc.at("add").identity_free);
  EXPECT_FALSE(r.config.cache.rpc.at("over").identity_free);
}

TEST(Config, MalformedRpcEntriesAreErrorsWhereTheyAreWritten) {
  auto r = load_string(
      "rpc:\n"
      "  functions:\n"
      "    - ok\n"
      "    - add(int4\n"
      "    - add(int4,)\n"
      "    - add(int4; drop table x)\n"
      "    - (int4)\n"
      "    - add(int4) x\n"
      "    - add(\"int4)\n"
      "    - add(int4))\n"
      "cache:\n"
      "  routes:\n"
      "    me_zones: {identity_free: true}\n",
      "m.yaml");
  std::vector<std::string> got;
  for (const auto& e : r.errors)
    got.push_back(e.to_string());
  const std::string pre = "rpc.functions: \"";
  const std::string mid = " is not a function name or name(type, ...): ";
  EXPECT_EQ(got, (std::vector<std::string>{
                     "m.yaml:4:7: " + pre + "add(int4\"" + mid +
                         "the argument types must be in parentheses after the name",
                     "m.yaml:5:7: " + pre + "add(int4,)\"" + mid +
                         "an argument type is missing between commas",
                     "m.yaml:6:7: " + pre + "add(int4; drop table x)\"" + mid +
                         "';' cannot be part of a type name",
                     "m.yaml:7:7: " + pre + "(int4)\"" + mid + "a function name comes first",
                     "m.yaml:8:7: " + pre + "add(int4) x\"" + mid +
                         "the argument types must be in parentheses after the name",
                     "m.yaml:9:7: " + pre + "add(\"int4)\"" + mid + "unbalanced quotes",
                     "m.yaml:10:7: " + pre + "add(int4))\"" + mid + "unbalanced parentheses",
                     "m.yaml:13:16: unknown key \"identity_free\" in cache.routes.me_zones"}))
      << ::testing::PrintToString(got);
}

TEST(Config, ReportsEveryProblemNotJustTheFirst) {
  auto r = load_string("server:\n  port: x\n  workers: -1\nbogus: 1\n", "t.yaml");
  ASSERT_EQ(r.errors.size(), 3u);
}

TEST(Config, MissingFileIsAnErrorWithoutPosition) {
  auto r = load_file("/nonexistent/zonegate.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "/nonexistent/zonegate.yaml: cannot read config file: No such file or directory");
}

TEST(Config, ExpandsEnvironmentWithDefaults) {
  // setenv while no other thread runs (each test is a process of its own under ctest).
  setenv("ZG_TEST_PORT", "7001", 1);  // NOLINT(concurrency-mt-unsafe): no other thread
  unsetenv("ZG_TEST_HOST");           // NOLINT(concurrency-mt-unsafe): no other thread
  auto r = load_string("server:\n  port: ${ZG_TEST_PORT}\n  host: ${ZG_TEST_HOST:-127.0.0.2}\n",
                       "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.server.port, 7001);
  EXPECT_EQ(r.config.server.host, "127.0.0.2");
}

TEST(Config, SecretFromFileDropsTrailingNewline) {
  std::string path = ::testing::TempDir() + "zonegate-conninfo";
  std::ofstream(path) << "host=/tmp dbname=x\n";
  auto r = load_string("database:\n  conninfo_file: " + path + "\n", "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.database.conninfo, "host=/tmp dbname=x");
  std::remove(path.c_str());
}

TEST(EnvExpansion, Cases) {
  using zonegate::config::expand_env;
  std::string out, err;
  setenv("ZG_A", "alpha", 1);  // NOLINT(concurrency-mt-unsafe): no other thread
  setenv("ZG_EMPTY", "", 1);   // NOLINT(concurrency-mt-unsafe): no other thread
  EXPECT_TRUE(expand_env("x${ZG_A}y", out, err));
  EXPECT_EQ(out, "xalphay");
  EXPECT_TRUE(expand_env("$${ZG_A}", out, err));
  EXPECT_EQ(out, "${ZG_A}");
  EXPECT_TRUE(expand_env("${ZG_EMPTY:-d}", out, err));
  EXPECT_EQ(out, "d");
  EXPECT_TRUE(expand_env("${ZG_EMPTY}", out, err));
  EXPECT_EQ(out, "");
  EXPECT_TRUE(expand_env("cost $5", out, err));
  EXPECT_EQ(out, "cost $5");
  EXPECT_FALSE(expand_env("${ZG_A", out, err));
  EXPECT_EQ(err, "unterminated ${...} reference");
  EXPECT_FALSE(expand_env("${1BAD}", out, err));
}

TEST(Units, DurationsAndSizes) {
  using zonegate::config::parse_bytes;
  using zonegate::config::parse_duration_ms;
  int64_t v = 0;
  EXPECT_TRUE(parse_duration_ms("250ms", v));
  EXPECT_EQ(v, 250);
  EXPECT_TRUE(parse_duration_ms("1.5s", v));
  EXPECT_EQ(v, 1500);
  EXPECT_TRUE(parse_duration_ms("2h", v));
  EXPECT_EQ(v, 7200000);
  EXPECT_FALSE(parse_duration_ms("10", v));
  EXPECT_FALSE(parse_duration_ms("-1s", v));
  EXPECT_FALSE(parse_duration_ms("s", v));
  EXPECT_TRUE(parse_bytes("1MiB", v));
  EXPECT_EQ(v, 1048576);
  EXPECT_TRUE(parse_bytes("5MB", v));
  EXPECT_EQ(v, 5000000);
  EXPECT_TRUE(parse_bytes("4096", v));
  EXPECT_EQ(v, 4096);
  EXPECT_FALSE(parse_bytes("9999999999999GiB", v));
  EXPECT_FALSE(parse_bytes("-5", v));
}

TEST(Config, ResilienceDefaultsAndValues) {
  auto d = load_string("database:\n  pool:\n    acquire_timeout: 1s\n    statement_timeout: 3s\n",
                       "d.yaml");
  ASSERT_TRUE(d.ok());
  // The default deadline: a request may wait for a connection, then run one statement.
  EXPECT_EQ(d.config.resilience.deadline_ms, 4000);
  EXPECT_EQ(d.config.resilience.retries.max_retries, 2);
  EXPECT_EQ(d.config.resilience.breaker.consecutive_failures, 5);
  EXPECT_EQ(d.config.resilience.probe_interval_ms, 250);
  auto r = load_string(
      "resilience:\n  deadline: 2s\n  deadlines: {rpc: 500ms, me_context: 1s}\n"
      "  retries: {max_retries: 1, base: 10ms, cap: 100ms, budget_ratio: 0.5, budget_min: 1}\n"
      "  breaker: {enabled: false, window: 30, minimum_calls: 15, open: 2s, open_max: 1m,\n"
      "            failure_rate: 0.25, probe_interval: 100ms}\n"
      "  concurrency: {initial: 10, min: 2, max: 20, tolerance: 1.5}\n",
      "r.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& c = r.config.resilience;
  EXPECT_EQ(c.deadline_ms, 2000);
  EXPECT_EQ(c.deadlines.at("rpc"), 500);
  EXPECT_EQ(c.deadlines.at("me_context"), 1000);
  EXPECT_EQ(c.retries.cap_ms, 100);
  EXPECT_DOUBLE_EQ(c.retries.budget_ratio, 0.5);
  EXPECT_FALSE(c.breaker.enabled);
  EXPECT_EQ(c.breaker.open_max_ms, 60000);
  EXPECT_DOUBLE_EQ(c.breaker.failure_rate, 0.25);
  EXPECT_EQ(c.probe_interval_ms, 100);
  EXPECT_EQ(c.concurrency.max_limit, 20);
  EXPECT_DOUBLE_EQ(c.concurrency.tolerance, 1.5);
}

TEST(Config, ResilienceValidation) {
  auto r = load_string(
      "resilience:\n"
      "  retries:\n    base: -5ms\n    cap: 100ms\n"
      "  breaker:\n    window: 5\n    minimum_calls: 10\n    bogus: 1\n"
      "  deadlines:\n    nowhere: 1s\n    rpc: soon\n"
      "  concurrency:\n    min: 50\n    max: 10\n",
      "b.yaml");
  std::vector<std::string> got;
  for (const auto& e : r.errors)
    got.push_back(e.to_string());
  ASSERT_EQ(got.size(), 7u) << ::testing::PrintToString(got);
  auto has = [&](const std::string& s) {
    return std::any_of(got.begin(), got.end(),
                       [&](const std::string& g) { return g.find(s) != std::string::npos; });
  };
  EXPECT_TRUE(has("b.yaml:3:11: resilience.retries.base:")) << ::testing::PrintToString(got);
  EXPECT_TRUE(
      has("b.yaml:7:20: resilience.breaker.minimum_calls: must not exceed breaker.window (5)"))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has("b.yaml:8:5: unknown key \"bogus\" in resilience.breaker"))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has("resilience.concurrency.initial: must be between concurrency.min and"))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has("resilience.deadlines.nowhere: unknown route \"nowhere\""))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has("resilience.deadlines.rpc: must be a duration")) << ::testing::PrintToString(got);
  EXPECT_TRUE(has("b.yaml:13:10: resilience.concurrency.min: must not exceed concurrency.max"))
      << ::testing::PrintToString(got);
}
