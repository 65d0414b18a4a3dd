// Error parity with PostgREST 12: the SQLSTATE -> HTTP table of src/PostgREST/Error.hs
// (pgErrorStatus) code by code, 42501 for anonymous and authenticated callers, PTxyz custom
// statuses, RAISE SQLSTATE 'PGRST' full response control and its PGRST121, the PGRST codes of
// the pool's failures, and which headers a function may set.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "api/errors.hpp"
#include "common/json.hpp"

namespace api = zonegate::api;
namespace http = zonegate::http;
namespace pg = zonegate::pg;

namespace {

std::string header(const http::Response& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return "<none>";
}

// The body's members as a flat map of strings ("<null>" for null).
std::map<std::string, std::string> body(const http::Response& r) {
  rapidjson::Document d;
  std::string err;
  EXPECT_TRUE(zonegate::json::parse(r.body, d, err)) << r.body;
  std::map<std::string, std::string> out;
  for (const auto& m : d.GetObject()) {
    out[m.name.GetString()] = m.value.IsString() ? m.value.GetString() : "<null>";
  }
  return out;
}

pg::Result sql_error(const std::string& code, const std::string& message,
                     const std::string& detail = "", const std::string& hint = "") {
  pg::Result r;
  r.failure = pg::Failure::kSql;
  r.sqlstate = code;
  r.message = message;
  r.detail = detail;
  r.hint = hint;
  return r;
}

struct Row {
  const char* sqlstate;
  int status;
};

}  // namespace

// Every line of pgErrorStatus, in its order, with a code of each class it names and the class's
// neighbours that fall through to 400.
TEST(ErrorParity, SqlstateTableMatchesPostgrest12) {
  const std::vector<Row> table = {
      {"08000", 503}, {"08003", 503}, {"08006", 503}, {"08P01", 503},  // connection exception
      {"09000", 500},                                                  // triggered action
      {"0L000", 403}, {"0LP01", 403},                                  // invalid grantor
      {"0P000", 403},                                                  // invalid role spec
      {"23503", 409}, {"23505", 409},                                  // fk, unique
      {"23502", 400}, {"23514", 400}, {"23P01", 400},                  // other integrity: 400
      {"25006", 405},                                                  // read-only transaction
      {"25000", 500}, {"25001", 500}, {"25P02", 500},                  // transaction state
      {"28000", 403}, {"28P01", 403},                                  // authorization
      {"2D000", 500}, {"38000", 500}, {"38001", 500}, {"39000", 500},
      {"39P01", 500}, {"3B000", 500}, {"40000", 500}, {"40001", 500},
      {"40P01", 500}, {"53400", 500},                                  // config limit
      {"53000", 503}, {"53100", 503}, {"53200", 503}, {"53300", 503},  // resources
      {"54000", 500}, {"54001", 500}, {"55000", 500}, {"55P03", 500},
      {"57P01", 503},                                                  // admin shutdown
      {"57000", 500}, {"57014", 500}, {"57P02", 500}, {"57P03", 500},  // operator intervention
      {"58000", 500}, {"58030", 500}, {"F0000", 500}, {"HV000", 500},
      {"HV00N", 500}, {"P0001", 400},                                  // RAISE's default
      {"P0000", 500}, {"P0002", 500}, {"P0003", 500}, {"P0004", 500},  // PL/pgSQL
      {"XX000", 500}, {"XX001", 500}, {"XX002", 500}, {"42883", 404},
      {"42P01", 404}, {"42P17", 500}, {"22P02", 400}, {"22003", 400},
      {"22023", 400}, {"42601", 400}, {"42703", 400}, {"42P02", 400},
      {"0A000", 400}, {"2F005", 400}, {"2200N", 400}, {"01000", 400},
  };
  for (const Row& row : table) {
    EXPECT_EQ(api::status_for_sqlstate(row.sqlstate), row.status) << row.sqlstate;
    EXPECT_EQ(api::error_from_result(sql_error(row.sqlstate, "m")).status, row.status)
        << row.sqlstate;
  }
}

TEST(ErrorParity, InsufficientPrivilegeIs401ForTheAnonymousRole) {
  EXPECT_EQ(api::status_for_sqlstate("42501", true), 403);
  EXPECT_EQ(api::status_for_sqlstate("42501", false), 401);
  http::Response anon = api::error_from_result(sql_error("42501", "permission denied"), false);
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(header(anon, "WWW-Authenticate"), "Bearer");  // PostgREST: every 401 says Bearer
  EXPECT_EQ(body(anon)["code"], "42501");
  http::Response authed = api::error_from_result(sql_error("42501", "permission denied"), true);
  EXPECT_EQ(authed.status, 403);
  EXPECT_EQ(header(authed, "WWW-Authenticate"), "<none>");
  // Only 42501 depends on who asks.
  EXPECT_EQ(api::status_for_sqlstate("28000", false), 403);
  EXPECT_EQ(api::status_for_sqlstate("P0001", false), 400);
}

TEST(ErrorParity, TheTwoCodesWhoseStatusDependsOnTheMessage) {
  // pg-safeupdate's refusal is the client's fault; any other cardinality violation the server's.
  EXPECT_EQ(api::status_for_sqlstate("21000", true, "DELETE requires a WHERE clause"), 400);
  EXPECT_EQ(api::status_for_sqlstate("21000", true,
                                     "more than one row returned by a subquery used as an "
                                     "expression"),
            500);
  EXPECT_EQ(api::status_for_sqlstate("42883", true, "function xmlagg(integer) does not exist"),
            406);
  EXPECT_EQ(api::status_for_sqlstate("42883", true, "function api.f(integer) does not exist"), 404);
}

TEST(ErrorParity, CustomStatusesFromPTxyz) {
  EXPECT_EQ(api::status_for_sqlstate("PT402"), 402);
  EXPECT_EQ(api::status_for_sqlstate("PT404"), 404);
  EXPECT_EQ(api::status_for_sqlstate("PT418"), 418);
  EXPECT_EQ(api::status_for_sqlstate("PT503"), 503);
  EXPECT_EQ(api::status_for_sqlstate("PT201"), 201);
  // Not a number (PostgREST: 500); not a final status (1xx, past 599): 500 rather than a reply
  // no client can read.
  EXPECT_EQ(api::status_for_sqlstate("PT4X2"), 500);
  EXPECT_EQ(api::status_for_sqlstate("PT100"), 500);
  EXPECT_EQ(api::status_for_sqlstate("PT600"), 500);
  // RAISE sqlstate 'PT402' using message, detail, hint: PostgREST's body, code PT402.
  http::Response r = api::error_from_result(
      sql_error("PT402", "Payment Required", "Quota exceeded", "Upgrade your plan"));
  EXPECT_EQ(r.status, 402);
  auto b = body(r);
  EXPECT_EQ(b["code"], "PT402");
  EXPECT_EQ(b["message"], "Payment Required");
  EXPECT_EQ(b["details"], "Quota exceeded");
  EXPECT_EQ(b["hint"], "Upgrade your plan");
}

TEST(ErrorParity, RaisePgrstControlsTheWholeAnswer) {
  http::Response r = api::error_from_result(sql_error(
      "PGRST",
      R"({"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade your plan"})",
      R"({"status":402,"headers":{"X-Powered-By":"Nerd Rage","Content-Length":"1","Transfer-Encoding":"chunked","Connection":"close","X-Request-Id":"forged","Content-Type":"text/html","Set-Cookie":"a=b"}})"));
  EXPECT_EQ(r.status, 402);
  auto b = body(r);
  EXPECT_EQ(b["code"], "123");
  EXPECT_EQ(b["message"], "Payment Required");
  EXPECT_EQ(b["details"], "Quota exceeded");
  EXPECT_EQ(b["hint"], "Upgrade your plan");
  EXPECT_EQ(header(r, "X-Powered-By"), "Nerd Rage");
  EXPECT_EQ(header(r, "Set-Cookie"), "a=b");
  // What frames the message or the connection, or what the proxy sets itself, is not the
  // function's to set.
  for (const char* h :
       {"Content-Length", "Transfer-Encoding", "Connection", "X-Request-Id", "Content-Type"}) {
    EXPECT_EQ(header(r, h), "<none>") << h;
  }
  // details and hint are optional; status_text is accepted.
  http::Response m = api::error_from_result(
      sql_error("PGRST", R"({"code":"X1","message":"Expired"})",
                R"({"status":419,"status_text":"Page Expired","headers":{}})"));
  EXPECT_EQ(m.status, 419);
  EXPECT_EQ(body(m)["details"], "<null>");
  EXPECT_EQ(body(m)["hint"], "<null>");
}

TEST(ErrorParity, UnreadableRaisePgrstIsPGRST121) {
  struct Case {
    const char* message;
    const char* detail;
    const char* details;  // PostgREST's details
    bool detail_hint;     // the hint about DETAIL (else about MESSAGE)
  };
  const Case cases[] = {
      {"not json", R"({"status":400,"headers":{}})", "Invalid JSON value for MESSAGE: 'not json'",
       false},
      {R"({"message":"no code"})", R"({"status":400,"headers":{}})",
       "Invalid JSON value for MESSAGE: '{\"message\":\"no code\"}'", false},
      {R"({"code":1,"message":"m"})", R"({"status":400,"headers":{}})",
       "Invalid JSON value for MESSAGE: '{\"code\":1,\"message\":\"m\"}'", false},
      {R"({"code":"c","message":"m"})", "", "DETAIL is missing in the RAISE statement", true},
      {R"({"code":"c","message":"m"})", R"({"headers":{}})",
       "Invalid JSON value for DETAIL: '{\"headers\":{}}'", true},
      {R"({"code":"c","message":"m"})", R"({"status":400})",
       "Invalid JSON value for DETAIL: '{\"status\":400}'", true},
      {R"({"code":"c","message":"m"})", R"({"status":400,"headers":{"X":1}})",
       "Invalid JSON value for DETAIL: '{\"status\":400,\"headers\":{\"X\":1}}'", true},
      {R"({"code":"c","message":"m"})", R"({"status":99,"headers":{}})",
       "Invalid JSON value for DETAIL: '{\"status\":99,\"headers\":{}}'", true},
  };
  for (const Case& c : cases) {
    http::Response r = api::error_from_result(sql_error("PGRST", c.message, c.detail));
    EXPECT_EQ(r.status, 500) << c.message << " / " << c.detail;
    auto b = body(r);
    EXPECT_EQ(b["code"], "PGRST121");
    EXPECT_EQ(b["message"], "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error");
    EXPECT_EQ(b["details"], c.details);
    EXPECT_EQ(b["hint"].rfind(c.detail_hint ? "DETAIL must be" : "MESSAGE must be", 0), 0u)
        << b["hint"];
  }
}

// The pool's failures: PostgREST's code where it has one for the same situation, the proxy's
// own otherwise; each with Retry-After where coming back later helps, and Proxy-Status.
TEST(ErrorParity, ProxyFailuresUsePostgrestCodes) {
  struct Case {
    pg::Failure failure;
    const char* sqlstate;  // what the pool or the path put in the result
    bool fail_fast, sent;
    int status;
    const char* code;
    const char* proxy_status;
    bool retry_after;
  };
  const Case cases[] = {
      {pg::Failure::kBreakerOpen, "PGRST001", false, false, 503, "PGRST000",
       "destination_unavailable", true},
      {pg::Failure::kConnection, "08001", true, false, 503, "PGRST000", "destination_unavailable",
       true},
      {pg::Failure::kConnection, "08006", false, true, 503, "PGRST001", "connection_terminated",
       true},
      {pg::Failure::kConnection, "08006", false, false, 503, "PGRST001", "destination_unavailable",
       true},
      {pg::Failure::kConnection, "57P01", false, true, 503, "57P01", "connection_terminated", true},
      {pg::Failure::kPoolTimeout, "08000", false, false, 504, "PGRST003", "connection_timeout",
       true},
      {pg::Failure::kPoolFull, "53300", false, false, 503, "53300", "connection_limit_reached",
       true},
      {pg::Failure::kShed, "53000", false, false, 503, "53000", "connection_limit_reached", true},
      {pg::Failure::kShutdown, "57P01", false, false, 503, "57P01", "destination_unavailable",
       true},
      {pg::Failure::kDeadline, "57014", false, false, 504, "57014", "http_response_timeout", false},
  };
  for (const Case& c : cases) {
    pg::Result r;
    r.failure = c.failure;
    r.sqlstate = c.sqlstate;
    r.fail_fast = c.fail_fast;
    r.sent = c.sent;
    r.message = "what happened";
    http::Response resp = api::error_from_result(r);
    EXPECT_EQ(resp.status, c.status) << c.code;
    EXPECT_EQ(body(resp)["code"], c.code);
    EXPECT_EQ(header(resp, "Proxy-Status"),
              std::string("zonegate; error=") + c.proxy_status + "; details=\"what happened\"")
        << c.code;
    EXPECT_EQ(header(resp, "Retry-After") != "<none>", c.retry_after) << c.code;
  }
  // A 503 the database gave (class 08, 53, 57P01) says when to come back too, without
  // Proxy-Status: the proxy did not answer for it.
  http::Response db = api::error_from_result(sql_error("53300", "too many clients"));
  EXPECT_EQ(db.status, 503);
  EXPECT_EQ(header(db, "Retry-After"), "1");
  EXPECT_EQ(header(db, "Proxy-Status"), "<none>");
}

TEST(ErrorParity, ProxyStatusDetailsAreAQuotedPrintableString) {
  http::Response r(503, "");
  api::add_proxy_status(r, "connection_limit_reached", "a \"quoted\"\\ \n d\xc3\xa9tail");
  EXPECT_EQ(header(r, "Proxy-Status"),
            "zonegate; error=connection_limit_reached; details=\"a \\\"quoted\\\"\\\\  dtail\"");
  http::Response bare(503, "");
  api::add_proxy_status(bare, "http_request_denied", "");
  EXPECT_EQ(header(bare, "Proxy-Status"), "zonegate; error=http_request_denied");
}

TEST(ErrorParity, SettableResponseHeaders) {
  for (const char* ok : {"X-Powered-By", "Set-Cookie", "Location", "Cache-Control", "ETag"})
    EXPECT_TRUE(api::settable_response_header(ok)) << ok;
  for (const char* no : {"Content-Length", "content-length", "TRANSFER-ENCODING", "Connection",
                         "Keep-Alive", "Upgrade", "TE", "Trailer", "Content-Type", "Date",
                         "X-Request-Id", "Proxy-Status", "Proxy-Connection", ""})
    EXPECT_FALSE(api::settable_response_header(no)) << no;
}
