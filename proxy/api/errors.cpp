// SQLSTATE -> HTTP; see errors.hpp. The table is PostgREST 12's pgErrorStatus, in its order:
// specific codes before their classes, anything else 400.
#include "api/errors.hpp"

#include <strings.h>

#include <algorithm>
#include <iterator>
#include <string>

#include "common/json.hpp"

namespace zonegate::api {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PTxyz: the status xyz, when the three characters are digits of a final status (PostgREST reads
// any number; a 1xx or a 600 cannot be a final HTTP answer, so those are 500 here). 0 if none.
int custom_status(std::string_view s) {
  if (s.size() != 5 || !starts_with(s, "PT")) return 0;
  int n = 0;
  for (char c : s.substr(2)) {
    if (c < '0' || c > '9') return 500;
    n = n * 10 + (c - '0');
  }
  return n >= 200 && n <= 599 ? n : 500;
}

}  // namespace

int status_for_sqlstate(std::string_view s, bool authenticated, std::string_view message) {
  if (s.size() < 2) return 400;
  if (s == "23503" || s == "23505") return 409;
  if (s == "25006") return 405;
  if (s == "21000") return ends_with(message, "requires a WHERE clause") ? 400 : 500;
  if (s == "53400") return 500;
  if (s == "57P01") return 503;
  if (s == "P0001") return 400;
  if (s == "42883") return starts_with(message, "function xmlagg(") ? 406 : 404;
  if (s == "42P01") return 404;
  if (s == "42P17") return 500;
  if (s == "42501") return authenticated ? 403 : 401;
  if (int custom = custom_status(s)) return custom;
  struct Class {
    const char* prefix;
    int status;
  };
  static const Class classes[] = {
      {"08", 503}, {"09", 500}, {"0L", 403}, {"0P", 403}, {"25", 500}, {"28", 403}, {"2D", 500},
      {"38", 500}, {"39", 500}, {"3B", 500}, {"40", 500}, {"53", 503}, {"54", 500}, {"55", 500},
      {"57", 500}, {"58", 500}, {"F0", 500}, {"HV", 500}, {"P0", 500}, {"XX", 500},
  };
  for (const Class& c : classes) {
    if (s.compare(0, 2, c.prefix) == 0) return c.status;
  }
  return 400;
}

std::string retry_after(int64_t ms) {
  return std::to_string(ms <= 1000 ? 1 : ms / 1000 + (ms % 1000 != 0));  // no overflow near max
}

void add_proxy_status(http::Response& resp, std::string_view error, std::string_view details) {
  std::string v = "zonegate; error=";
  v += error;
  if (!details.empty()) {
    // An RFC 8941 string: quotes and backslashes escaped, only printable ASCII.
    v += "; details=\"";
    for (char c : details.substr(0, 200)) {
      if (c == '"' || c == '\\') v += '\\';
      if (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f) v += c;
    }
    v += '"';
  }
  resp.add_header("Proxy-Status", std::move(v));
}

bool settable_response_header(std::string_view name) {
  static const char* const kReserved[] = {
      "content-length", "transfer-encoding", "connection",
      "keep-alive",     "upgrade",           "te",
      "trailer",        "content-type",      "date",
      "x-request-id",   "proxy-status",      "proxy-connection"};
  return !name.empty() &&
         std::none_of(std::begin(kReserved), std::end(kReserved), [&](const char* r) {
           return name.size() == std::char_traits<char>::length(r) &&
                  strncasecmp(name.data(), r, name.size()) == 0;
         });
}

namespace {

// The proxy's own answer when it did not get one from the database.
http::Response unavailable(const pg::Result& r, int status, std::string_view code,
                           const char* proxy_error, const char* hint) {
  http::Response resp = http::error_response(status, code, r.message, r.detail, hint);
  if (status == 503 || r.failure == pg::Failure::kPoolTimeout) {
    resp.add_header("Retry-After", retry_after(r.retry_after_ms));
  }
  add_proxy_status(resp, proxy_error, r.detail.empty() ? r.message : r.detail);
  return resp;
}

// A string member of a JSON object, or nullptr when absent; `ok` turns false when it is there
// but neither a string nor (where `nullable`) null.
const rapidjson::Value* string_member(const rapidjson::Value& o, const char* name, bool nullable,
                                      bool& ok) {
  auto m = o.FindMember(name);
  if (m == o.MemberEnd() || (nullable && m->value.IsNull())) return nullptr;
  if (!m->value.IsString()) ok = false;
  return m->value.IsString() ? &m->value : nullptr;
}

std::string_view text(const rapidjson::Value* v) {
  return v == nullptr ? std::string_view() : std::string_view(v->GetString(), v->GetStringLength());
}

// PostgREST's PGRST121: the JSON of a RAISE SQLSTATE 'PGRST' could not be read.
http::Response raise_parse_error(std::string_view details, bool detail_part) {
  return http::error_response(
      500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error", details,
      detail_part ? "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and "
                    "optional key: 'status_text'."
                  : "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and "
                    "optional keys: 'details', 'hint'.");
}

// RAISE SQLSTATE 'PGRST' USING MESSAGE = '{"code","message","details","hint"}', DETAIL =
// '{"status","status_text","headers"}': the function writes the whole answer (PostgREST's
// "full response control"). Headers a function may not set are left out (settable_response_
// header); status_text is accepted and not sent (the reason phrase carries no meaning).
http::Response raise_pgrst(const pg::Result& r) {
  rapidjson::Document msg;
  std::string err;
  bool ok = json::parse(r.message, msg, err) && msg.IsObject();
  const rapidjson::Value *code = nullptr, *message = nullptr, *details = nullptr, *hint = nullptr;
  if (ok) {
    code = string_member(msg, "code", false, ok);
    message = string_member(msg, "message", false, ok);
    details = string_member(msg, "details", true, ok);
    hint = string_member(msg, "hint", true, ok);
    ok = ok && code != nullptr && message != nullptr;
  }
  if (!ok) return raise_parse_error("Invalid JSON value for MESSAGE: '" + r.message + "'", false);
  if (r.detail.empty()) return raise_parse_error("DETAIL is missing in the RAISE statement", true);
  rapidjson::Document det;
  ok = json::parse(r.detail, det, err) && det.IsObject();
  int status = 0;
  const rapidjson::Value* headers = nullptr;
  if (ok) {
    auto st = det.FindMember("status");
    ok = st != det.MemberEnd() && st->value.IsInt() && st->value.GetInt() >= 200 &&
         st->value.GetInt() <= 599;
    if (ok) status = st->value.GetInt();
    string_member(det, "status_text", true, ok);
    auto h = det.FindMember("headers");
    ok = ok && h != det.MemberEnd() && h->value.IsObject();
    if (ok) {
      headers = &h->value;
      for (auto m = headers->MemberBegin(); ok && m != headers->MemberEnd(); ++m)
        ok = m->value.IsString();
    }
  }
  if (!ok) return raise_parse_error("Invalid JSON value for DETAIL: '" + r.detail + "'", true);
  http::Response resp =
      http::error_response(status, text(code), text(message), text(details), text(hint));
  for (auto m = headers->MemberBegin(); m != headers->MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    if (!settable_response_header(name)) continue;
    // The serializer drops a name that is not a token or a value with a control byte.
    resp.add_header(std::string(name),
                    std::string(m->value.GetString(), m->value.GetStringLength()));
  }
  return resp;
}

}  // namespace

http::Response error_from_result(const pg::Result& r, bool authenticated) {
  const char* retry_hint = "retry after the delay in Retry-After";
  switch (r.failure) {
    // Where PostgREST has a code for the same situation, its code; else the proxy's own.
    case pg::Failure::kBreakerOpen:
      return unavailable(r, 503, "PGRST000", "destination_unavailable", retry_hint);
    case pg::Failure::kConnection:
      if (r.fail_fast)
        return unavailable(r, 503, "PGRST000", "destination_unavailable", retry_hint);
      // Postgres ended the backend (57P01..57P03, its FATAL's code); else the connection broke.
      return unavailable(r, 503, starts_with(r.sqlstate, "57P0") ? r.sqlstate : "PGRST001",
                         r.sent ? "connection_terminated" : "destination_unavailable", retry_hint);
    case pg::Failure::kPoolTimeout:
      return unavailable(r, 504, "PGRST003", "connection_timeout", retry_hint);
    case pg::Failure::kPoolFull:
    case pg::Failure::kShed:
      return unavailable(r, 503, r.sqlstate, "connection_limit_reached", retry_hint);
    case pg::Failure::kShutdown:
      return unavailable(r, 503, r.sqlstate, "destination_unavailable", retry_hint);
    case pg::Failure::kDeadline:
      return unavailable(r, 504, r.sqlstate, "http_response_timeout",
                         "the deadline is resilience.deadline (docs/CONFIG.md)");
    case pg::Failure::kSql:
    case pg::Failure::kNone:
      break;
  }
  if (r.sqlstate == "PGRST") return raise_pgrst(r);
  int status = status_for_sqlstate(r.sqlstate, authenticated, r.message);
  http::Response resp = http::error_response(status, r.sqlstate, r.message, r.detail, r.hint);
  if (status == 503) resp.add_header("Retry-After", "1");
  if (status == 401) resp.add_header("WWW-Authenticate", "Bearer");
  return resp;
}

}  // namespace zonegate::api
