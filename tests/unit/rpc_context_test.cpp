// /rpc's roles and request context (api/rpc_context.hpp, auth/claim_path.hpp): role claim paths
// and how a token's role is read, subject-less tokens, the request.* JSON, Prefer: tx= under
// rpc.tx_end, request.jwt.claims, the response.headers and response.status a function sets,
// the roles the catalog load reads, and the config keys that drive them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/rpc_context.hpp"
#include "auth/authenticator.hpp"
#include "auth/claim_path.hpp"
#include "auth/jwt.hpp"
#include "common/json.hpp"
#include "config/config.hpp"

namespace zonegate {

namespace {

const std::string kSecret = "unit-test-secret-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;

auth::Claims verified(const std::string& payload, const std::string& role_claim_key = "") {
  auth::JwtConfig cfg;
  cfg.secret = kSecret;
  cfg.role_claim_key = role_claim_key;
  cfg.require_exp = false;
  std::string err;
  auto v = auth::Verifier::create(cfg, err);
  EXPECT_TRUE(v) << err;
  auth::Claims c;
  EXPECT_TRUE(v->verify(auth::sign_hs256(kSecret, payload), kNow, c, err)) << err;
  return c;
}

std::string path_error(const std::string& text) {
  auth::ClaimPath p;
  std::string err = auth::parse_claim_path(text, p);
  return err.empty() ? "ok" : err;
}

http::Request request(std::vector<http::Header> headers) {
  http::Request r;
  r.headers = std::move(headers);
  return r;
}

std::string header(const http::Response& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return "<none>";
}

std::string error_code(const http::Response& r) {
  rapidjson::Document d;
  std::string err;
  if (!json::parse(r.body, d, err) || !d.IsObject() || !d.HasMember("code")) return "<none>";
  return d["code"].GetString();
}

}  // namespace

TEST(ClaimPath, ParsesPostgrestJsPaths) {
  auth::ClaimPath p;
  ASSERT_EQ(auth::parse_claim_path(".app_metadata.role", p), "");
  ASSERT_EQ(p.size(), 2U);
  EXPECT_EQ(p[0].key, "app_metadata");
  EXPECT_EQ(p[1].key, "role");
  ASSERT_EQ(auth::parse_claim_path(R"(."https://x.io/claims"[2].x-role)", p), "");
  ASSERT_EQ(p.size(), 3U);
  EXPECT_EQ(p[0].key, "https://x.io/claims");
  EXPECT_TRUE(p[1].is_index);
  EXPECT_EQ(p[1].index, 2U);
  EXPECT_EQ(p[2].key, "x-role");
  EXPECT_EQ(auth::claim_path_text(p), R"(."https://x.io/claims"[2].x-role)");
  ASSERT_EQ(auth::parse_claim_path(R"(."a\"b\\c")", p), "");
  EXPECT_EQ(p[0].key, "a\"b\\c");
  EXPECT_EQ(auth::claim_path_text(p), R"(."a\"b\\c")");

  EXPECT_EQ(path_error(""), "the path is empty: write it as .role or .app_metadata.role");
  EXPECT_EQ(path_error("role"), "unexpected 'r' at byte 0: each step is .name, .\"name\" or [n]");
  EXPECT_EQ(path_error(".role."), "a name is missing after '.' at byte 6");
  EXPECT_EQ(path_error(".a b"), "unexpected ' ' at byte 2: each step is .name, .\"name\" or [n]");
  EXPECT_EQ(path_error(".\"open"), "a quoted name is not closed");
  EXPECT_EQ(path_error(".a[x]"), "an index must be [n] with n a number of at most 6 digits");
  EXPECT_EQ(path_error(".a[1234567]"), "an index must be [n] with n a number of at most 6 digits");
  EXPECT_EQ(path_error(".a[1"), "an index must be [n] with n a number of at most 6 digits");
}

TEST(ClaimPath, WalksObjectsAndArrays) {
  rapidjson::Document d;
  std::string err;
  ASSERT_TRUE(json::parse(R"({"a":{"b":["x",{"c":"deep"}]},"n":null})", d, err));
  auth::ClaimPath p;
  auth::parse_claim_path(".a.b[1].c", p);
  const rapidjson::Value* v = auth::walk_claim_path(d, p);
  ASSERT_NE(v, nullptr);
  EXPECT_STREQ(v->GetString(), "deep");
  for (const char* missing : {".a.b[2]", ".a.c", ".a.b.c", ".n.x", ".a[0]"}) {
    auth::parse_claim_path(missing, p);
    EXPECT_EQ(auth::walk_claim_path(d, p), nullptr) << missing;
  }
}

TEST(RoleClaim, ReadFromTheConfiguredPath) {
  // The default: the top-level "role", a string.
  auth::Claims c = verified(R"({"sub":"a","role":"staff"})");
  EXPECT_TRUE(c.has_role);
  EXPECT_TRUE(c.role_at_top);
  EXPECT_EQ(c.role, "staff");
  // None at all.
  c = verified(R"({"sub":"a"})");
  EXPECT_FALSE(c.has_role);
  EXPECT_EQ(c.role, "");
  // Supabase's app_metadata, whatever the top-level role says.
  c = verified(R"({"sub":"a","role":"authenticated","app_metadata":{"role":"editor"}})",
               ".app_metadata.role");
  EXPECT_TRUE(c.has_role);
  EXPECT_FALSE(c.role_at_top);
  EXPECT_EQ(c.role, "editor");
  c = verified(R"({"sub":"a","roles":["first","second"]})", ".roles[1]");
  EXPECT_EQ(c.role, "second");
  // A value that is not a string is its JSON text, as PostgREST reads it (and no role has
  // such a name, so it is refused later).
  c = verified(R"({"sub":"a","role":{"x":1}})");
  EXPECT_TRUE(c.has_role);
  EXPECT_FALSE(c.role_at_top);
  EXPECT_EQ(c.role, R"({"x":1})");
  c = verified(R"({"sub":"a","role":null})");
  EXPECT_TRUE(c.has_role);
  EXPECT_EQ(c.role, "null");
  // ".role" is the same as the role_claim alias.
  EXPECT_TRUE(verified(R"({"role":"r"})", ".role").role_at_top);
  // A malformed path is refused when the verifier is made.
  auth::JwtConfig cfg;
  cfg.secret = kSecret;
  cfg.role_claim_key = "app_metadata.role";
  std::string err;
  EXPECT_EQ(auth::Verifier::create(cfg, err), nullptr);
  EXPECT_EQ(err,
            "auth.jwt.role_claim_key: unexpected 'a' at byte 0: each step is .name, .\"name\" "
            "or [n]");
}

TEST(RoleClaim, TokensWithoutASubjectAreVerifiedButNotAuthenticated) {
  auth::JwtConfig cfg;
  cfg.secret = kSecret;
  cfg.require_exp = false;
  std::string err;
  std::shared_ptr<const auth::Verifier> v(auth::Verifier::create(cfg, err).release());
  auth::Authenticator a(v, [] { return kNow; });
  http::Request req =
      request({{"authorization", "Bearer " + auth::sign_hs256(kSecret, R"({"role":"anon"})")}});
  auth::Claims c;
  http::Response resp;
  ASSERT_TRUE(a.verify(req, c, resp));
  EXPECT_EQ(c.subject, "");
  EXPECT_EQ(c.role, "anon");
  ASSERT_FALSE(a.authenticate(req, c, resp));  // cached now: the subject check still applies
  EXPECT_EQ(resp.status, 401);
  EXPECT_EQ(header(resp, "WWW-Authenticate"),
            R"(Bearer error="invalid_token", error_description="token has no sub claim")");
  std::string subject;
  EXPECT_FALSE(a.subject(req, subject));
  // No token at all is still refused by verify.
  ASSERT_FALSE(a.verify(request({}), c, resp));
  EXPECT_EQ(header(resp, "WWW-Authenticate"), "Bearer");
}

TEST(RequestContext, HeadersAsPostgrestSetsThem) {
  http::Request req = request({{"accept", "application/json"},
                               {"x-custom", "one"},
                               {"cookie", "a=1"},
                               {"x-custom", "two"},
                               {"x-quote", "say \"hi\"\t\\"},
                               {"x-bytes", std::string("ok \xff\xfe \xc3\xa9")}});
  EXPECT_EQ(api::rpc::headers_json(req),
            "{\"accept\":\"application/json\",\"x-custom\":\"one, two\","
            "\"x-quote\":\"say \\\"hi\\\"\\t\\\\\",\"x-bytes\":\"ok \xEF\xBF\xBD\xEF\xBF\xBD "
            "\xC3\xA9\"}");
  EXPECT_EQ(api::rpc::headers_json(request({})), "{}");
}

TEST(RequestContext, CookiesParsed) {
  EXPECT_EQ(api::rpc::cookies_json(request({{"cookie", " a=1; b = two words ;c=; =x; d; a=3"}})),
            R"({"a":"3","b":"two words","c":"","d":""})");
  EXPECT_EQ(api::rpc::cookies_json(request({{"x", "y"}})), "{}");
  EXPECT_EQ(api::rpc::cookies_json(request({{"cookie", "s=\"quoted=\"; t=a=b"}})),
            R"({"s":"\"quoted=\"","t":"a=b"})");
}

TEST(RequestContext, Utf8IsRepairedNeverPassedThrough) {
  EXPECT_EQ(api::rpc::valid_utf8("plain"), "plain");
  EXPECT_EQ(api::rpc::valid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80"), "\xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(api::rpc::valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(api::rpc::valid_utf8("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                        // surrogate
  EXPECT_EQ(api::rpc::valid_utf8("\xF4\x90\x80\x80").size(), 12U);          // beyond U+10FFFF
  EXPECT_EQ(api::rpc::valid_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

TEST(RequestContext, TransactionsAsPostgrestRunsThem) {
  http::Request none = request({});
  http::Request rollback = request({{"prefer", "count=exact, tx=rollback"}});
  http::Request commit = request({{"prefer", "tx=commit"}, {"prefer", "tx=rollback"}});
  auto t = api::rpc::transaction_for("GET", "commit", none);
  EXPECT_TRUE(t.read_only);
  EXPECT_FALSE(t.rollback);
  EXPECT_EQ(t.applied, "");
  EXPECT_TRUE(api::rpc::transaction_for("HEAD", "commit", none).read_only);
  EXPECT_FALSE(api::rpc::transaction_for("POST", "commit", none).read_only);
  // Without -allow-override the preference is not honoured, and not said to be.
  t = api::rpc::transaction_for("POST", "commit", rollback);
  EXPECT_FALSE(t.rollback);
  EXPECT_EQ(t.applied, "");
  t = api::rpc::transaction_for("POST", "commit-allow-override", rollback);
  EXPECT_TRUE(t.rollback);
  EXPECT_EQ(t.applied, "tx=rollback");
  t = api::rpc::transaction_for("POST", "commit-allow-override", commit);  // the first wins
  EXPECT_FALSE(t.rollback);
  EXPECT_EQ(t.applied, "tx=commit");
  t = api::rpc::transaction_for("POST", "rollback", commit);
  EXPECT_TRUE(t.rollback);
  EXPECT_EQ(t.applied, "");
  t = api::rpc::transaction_for("POST", "rollback-allow-override", commit);
  EXPECT_FALSE(t.rollback);
  EXPECT_EQ(t.applied, "tx=commit");
  EXPECT_TRUE(api::rpc::transaction_for("POST", "rollback-allow-override", none).rollback);
}

TEST(RequestContext, ClaimsCarryTheRoleTheRequestRunsAs) {
  auth::Claims c = verified(R"({"sub":"a","role":"staff","n":1.5})");
  EXPECT_EQ(api::rpc::effective_claims(c, true, "staff"), c.json);  // as sent
  EXPECT_EQ(api::rpc::effective_claims(c, true, ""), c.json);       // the login role
  c = verified(R"({"sub":"a"})");
  EXPECT_EQ(api::rpc::effective_claims(c, true, "anon"), R"({"sub":"a","role":"anon"})");
  c = verified(R"({"role":"authenticated","app_metadata":{"role":"editor"}})",
               ".app_metadata.role");
  EXPECT_EQ(api::rpc::effective_claims(c, true, "editor"),
            R"({"app_metadata":{"role":"editor"},"role":"editor"})");
  EXPECT_EQ(api::rpc::effective_claims({}, false, "web \"anon\""), R"({"role":"web \"anon\""})");
}

TEST(ResponseGucs, StatusAndHeadersAFunctionSets) {
  http::Response r(200, "[]");
  r.add_header("Preference-Applied", "x");
  http::Response err;
  ASSERT_TRUE(api::rpc::apply_response_gucs(
      std::string(R"([{"Set-Cookie":"a=1"},{"set-cookie":"b=2"},{"preference-applied":"y"},)"
                  R"({"Content-Type":"text/plain"},{"X-Obs":"caf\u00e9\tok"}])"),
      std::string("201"), r, err));
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.content_type, "text/plain");
  std::vector<std::string> got;
  for (const auto& h : r.headers)
    got.push_back(h.name + ": " + h.value);
  EXPECT_EQ(got, (std::vector<std::string>{"Set-Cookie: a=1", "set-cookie: b=2",
                                           "preference-applied: y", "X-Obs: caf\xC3\xA9\tok"}));
  // Unset: SQL NULL or "" (a setting once set on the connection reads "" afterwards).
  http::Response plain(204, "");
  ASSERT_TRUE(api::rpc::apply_response_gucs(std::nullopt, std::string(), plain, err));
  EXPECT_EQ(plain.status, 204);
  EXPECT_TRUE(plain.headers.empty());
}

TEST(ResponseGucs, WhatCannotBeSentIsA500) {
  auto status_of = [](const std::string& s) {
    http::Response r(200, "1"), err;
    return api::rpc::apply_response_gucs(std::nullopt, s, r, err) ? std::to_string(r.status)
                                                                  : error_code(err);
  };
  EXPECT_EQ(status_of("404"), "404");
  EXPECT_EQ(status_of("599"), "599");
  for (const char* bad :
       {"600", "199", "100", "99", "20", "2000", "abc", " 200", "200 ", "-200", "+20"}) {
    EXPECT_EQ(status_of(bad), "PGRST112") << bad;
  }
  auto headers_of = [](const std::string& h) {
    http::Response r(200, "1"), err;
    if (api::rpc::apply_response_gucs(h, std::nullopt, r, err)) return std::string("ok");
    EXPECT_EQ(err.status, 500);
    rapidjson::Document d;
    std::string e;
    json::parse(err.body, d, e);
    return error_code(err) + ": " + d["details"].GetString();
  };
  EXPECT_EQ(headers_of("[]"), "ok");
  EXPECT_EQ(headers_of("{\"a\":\"b\"}"), "PGRST111: not an array");
  EXPECT_EQ(headers_of("[1"),
            "PGRST111: not JSON: Missing a comma or ']' after an array "
            "element. at byte 2");
  EXPECT_EQ(headers_of(R"([{"a":"b","c":"d"}])"),
            "PGRST111: each item must be an object with one member, a string");
  EXPECT_EQ(headers_of(R"([{"a":1}])"),
            "PGRST111: each item must be an object with one member, a string");
  EXPECT_EQ(headers_of(R"([{"bad name":"x"}])"),
            "PGRST111: \"bad name\" is not a header name (an RFC 9110 token)");
  EXPECT_EQ(headers_of(R"([{"":"x"}])"), "PGRST111: \"\" is not a header name (an RFC 9110 token)");
  EXPECT_EQ(headers_of(R"([{"X-A":"v\r\nSet-Cookie: evil=1"}])"),
            "PGRST111: the value of X-A has a control character");
  EXPECT_EQ(headers_of(R"([{"X-A":"nul\u0000"}])"),
            "PGRST111: the value of X-A has a control character");
  EXPECT_EQ(headers_of(R"([{"Content-Length":"0"}])"),
            "PGRST111: Content-Length is the proxy's to write: it frames the answer");
  EXPECT_EQ(headers_of(R"([{"transfer-encoding":"chunked"}])"),
            "PGRST111: transfer-encoding is the proxy's to write: it frames the answer");
  EXPECT_EQ(headers_of(R"([{"Connection":"close"}])"),
            "PGRST111: Connection is the proxy's to write: it frames the answer");
}

TEST(ResponseGucs, AnswerWrapsTheShape) {
  api::rpc::CallContext ctx;
  ctx.tx.applied = "tx=rollback";
  api::Shape shape = api::rpc::answer(ctx, [](const pg::Result& r) {
    return http::Response(200, r.rows.empty() ? "none" : *r.rows[0][0]);
  });
  pg::Result r;
  r.rows = {{std::string("42")}};
  r.trailing = {{std::string(R"([{"X-Fn":"yes"}])"), std::string("202")}};
  http::Response resp = shape(r);
  EXPECT_EQ(resp.status, 202);
  EXPECT_EQ(resp.body, "42");
  EXPECT_EQ(header(resp, "X-Fn"), "yes");
  EXPECT_EQ(header(resp, "Preference-Applied"), "tx=rollback");
  r.trailing = {{std::string("[x"), std::nullopt}};
  EXPECT_EQ(error_code(shape(r)), "PGRST111");
  r.trailing.clear();  // nothing read back (a job without the read-back statement)
  EXPECT_EQ(shape(r).status, 200);
}

TEST(ResponseGucs, StatementsAroundTheCall) {
  api::rpc::CallContext ctx;
  ctx.who.role = "web_anon";
  ctx.who.claims_json = R"({"role":"web_anon"})";
  ctx.tx.read_only = true;
  ctx.method = "GET";
  ctx.path = "/rpc/f";
  ctx.headers_json = "{}";
  ctx.cookies_json = "{}";
  ctx.pre_request_sql = "SELECT \"api\".\"pre\"()";
  pg::Job job;
  api::rpc::open_call(ctx, job);
  job.statements.push_back(pg::make_statement("SELECT 1", {}));
  api::rpc::close_call(ctx, job);
  ASSERT_EQ(job.statements.size(), 4U);
  const std::string& set = *job.statements[0].sql;
  EXPECT_NE(set.find("set_config('role', $7, true)"), std::string::npos) << set;
  EXPECT_NE(set.find("set_config('transaction_read_only', 'on', true)"), std::string::npos);
  EXPECT_EQ(job.statements[0].params.size(), 7U);
  EXPECT_EQ(*job.statements[0].params[4], "");  // anonymous: no zonegate.user_id
  EXPECT_EQ(*job.statements[0].params[6], "web_anon");
  EXPECT_EQ(*job.statements[1].sql, "SELECT \"api\".\"pre\"()");
  EXPECT_EQ(job.result_statement, 2U);
  EXPECT_EQ(job.statements[3].sql->find("SELECT pg_catalog.current_setting('response.headers'"),
            0U);
  EXPECT_TRUE(api::rpc::retryable(ctx, 's'));
  EXPECT_FALSE(api::rpc::retryable(ctx, 'v'));
  // Each role plans the pre-request and the call on its own (Postgres checks EXECUTE on an
  // inlined SQL function when planning): same text, a name per role; the rest is shared.
  const pg::Statement plain = pg::make_statement("SELECT 1", {});
  EXPECT_EQ(job.statements[2].name->rfind(*plain.name + "_", 0), 0U);
  EXPECT_EQ(*job.statements[2].sql, *plain.sql);
  api::rpc::CallContext other = ctx;
  other.who.role = "web_user";
  pg::Job job2;
  api::rpc::open_call(other, job2);
  job2.statements.push_back(plain);
  api::rpc::close_call(other, job2);
  EXPECT_EQ(*job2.statements[0].name, *job.statements[0].name);
  EXPECT_NE(*job2.statements[1].name, *job.statements[1].name);
  EXPECT_NE(*job2.statements[2].name, *job.statements[2].name);
  EXPECT_EQ(*job2.statements[3].name, *job.statements[3].name);
  EXPECT_LT(job2.statements[2].name->size(), 64U);  // a Postgres name: NAMEDATALEN - 1

  // A shared scope's call: no identity; a POST that rolls back; no role switch.
  ctx.shared = true;
  ctx.who.role.clear();
  ctx.tx = {false, true, "tx=rollback"};
  ctx.pre_request_sql.clear();
  pg::Job shared;
  api::rpc::open_call(ctx, shared);
  shared.statements.push_back(pg::make_statement("SELECT 1", {}));
  api::rpc::close_call(ctx, shared);
  ASSERT_EQ(shared.statements.size(), 5U);
  EXPECT_EQ(shared.statements[0].sql->find("zonegate.user_id"), std::string::npos);
  EXPECT_EQ(shared.statements[0].sql->find("'role'"), std::string::npos);
  EXPECT_EQ(shared.statements[0].params.size(), 4U);
  EXPECT_EQ(*shared.statements[3].sql, "SET CONSTRAINTS ALL IMMEDIATE");
  EXPECT_EQ(*shared.statements[4].sql, "ROLLBACK");
  EXPECT_EQ(shared.result_statement, 1U);

  // A pre-request function in a transaction that commits writes: no retry once sent.
  ctx.tx = {false, false, ""};
  ctx.pre_request_sql = "SELECT \"api\".\"pre\"()";
  EXPECT_FALSE(api::rpc::retryable(ctx, 's'));
  ctx.pre_request_sql.clear();
  EXPECT_TRUE(api::rpc::retryable(ctx, 'i'));
}

TEST(ResponseGucs, CacheKeyTellsRolesApart) {
  api::rpc::CallContext a, b;
  a.who.role = "x";
  b.who.role = "";
  std::string ka = "K", kb = "K";
  config::CachePolicy pa, pb;
  api::rpc::cache_terms(a, ka, pa);
  api::rpc::cache_terms(b, kb, pb);
  EXPECT_EQ(ka, "2:as1:xK");
  EXPECT_EQ(kb, "2:as0:K");
  EXPECT_TRUE(pa.enabled);
  a.tx.applied = "tx=commit";
  api::rpc::cache_terms(a, ka, pa);
  EXPECT_FALSE(pa.enabled);
}

TEST(Roles, ReadFromTheCatalogLoad) {
  api::Catalog cat;
  api::rpc::roles_from_rows({{std::string(R"(["anon","web user","\u00e9"])"), std::string("t")}},
                            cat);
  EXPECT_TRUE(cat.roles_loaded);
  EXPECT_TRUE(cat.pre_request_found);
  EXPECT_EQ(cat.roles.size(), 3U);
  EXPECT_EQ(cat.roles.count("web user"), 1U);
  EXPECT_EQ(cat.roles.count("\xC3\xA9"), 1U);
  api::rpc::roles_from_rows({{std::nullopt, std::string("f")}}, cat);  // no role at all
  EXPECT_TRUE(cat.roles.empty());
  EXPECT_FALSE(cat.pre_request_found);
  EXPECT_THROW(api::rpc::roles_from_rows({}, cat), std::runtime_error);
  EXPECT_THROW(api::rpc::roles_from_rows({{std::string("{"), std::string("f")}}, cat),
               std::runtime_error);
  config::RpcConfig rpc;
  EXPECT_EQ(api::rpc::pre_request_regproc(rpc), "");
  rpc.pre_request = "check_request";
  EXPECT_EQ(api::rpc::pre_request_regproc(rpc), "\"api\".\"check_request\"()");
  rpc.pre_request = "hooks.Check";
  EXPECT_EQ(api::rpc::pre_request_regproc(rpc), "\"hooks\".\"Check\"()");
  EXPECT_FALSE(api::rpc::roles_statement("").params[0].has_value());
}

namespace {

std::string config_error(const std::string& yaml) {
  auto r = config::load_string(yaml, "t.yaml");
  return r.errors.empty() ? "ok" : r.errors.front().to_string();
}

}  // namespace

TEST(Roles, ConfigKeys) {
  auto r = config::load_string("", "t.yaml");
  EXPECT_EQ(r.config.auth.anon_role, "");
  EXPECT_EQ(r.config.auth.jwt.role_claim_key, "");
  EXPECT_EQ(r.config.rpc.pre_request, "");
  EXPECT_EQ(r.config.rpc.tx_end, "commit");
  r = config::load_string(
      "auth:\n  anon_role: web_anon\n  jwt:\n    role_claim_key: .app_metadata.role\n"
      "rpc:\n  pre_request: hooks.check\n  tx_end: rollback-allow-override\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.auth.anon_role, "web_anon");
  EXPECT_EQ(r.config.auth.jwt.role_claim_key, ".app_metadata.role");
  EXPECT_EQ(r.config.rpc.pre_request, "hooks.check");
  EXPECT_EQ(r.config.rpc.tx_end, "rollback-allow-override");
  EXPECT_EQ(config_error("auth:\n  jwt:\n    role_claim_key: app_metadata.role\n"),
            "t.yaml:3:21: auth.jwt.role_claim_key: \"app_metadata.role\" is not a JSPath: "
            "unexpected 'a' at byte 0: each step is .name, .\"name\" or [n]");
  EXPECT_EQ(config_error("auth:\n  jwt:\n    role_claim: r\n    role_claim_key: .r\n"),
            "t.yaml:4:21: auth.jwt.role_claim_key: role_claim and role_claim_key name the same "
            "thing: keep role_claim_key");
  EXPECT_EQ(config_error("rpc:\n  pre_request: \"a;drop\"\n"),
            "t.yaml:2:16: rpc.pre_request: \"a;drop\" is not a function name: letters, digits and "
            "_ only");
  EXPECT_EQ(config_error("rpc:\n  pre_request: a.b.c\n"),
            "t.yaml:2:16: rpc.pre_request: \"a.b.c\" is not a function name: write name or "
            "schema.name, each of letters, digits and _");
  EXPECT_NE(config_error("rpc:\n  tx_end: sometimes\n").find("rpc.tx_end"), std::string::npos);
}

}  // namespace zonegate
