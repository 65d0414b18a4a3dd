// SQLSTATE -> HTTP; see errors.hpp. The table follows PostgREST's documentation
// (docs.postgrest.org, "Errors"): specific codes first, then classes, then 400.
#include "api/errors.hpp"

#include <cstring>
#include <string>

namespace zonegate::api {

int status_for_sqlstate(std::string_view s) {
  struct Exact {
    const char* code;
    int status;
  };
  static const Exact exact[] = {
      {"23503", 409}, {"23505", 409}, {"25006", 405}, {"42883", 404}, {"42P01", 404},
      {"42P17", 500}, {"42501", 403}, {"P0001", 400}, {"57014", 500}, {"53400", 500},
  };
  for (const Exact& e : exact) {
    if (s == e.code) return e.status;
  }
  struct Class {
    const char* prefix;
    int status;
  };
  static const Class classes[] = {
      {"08", 503}, {"09", 500}, {"0L", 403}, {"0P", 403}, {"25", 500}, {"28", 403}, {"2D", 500},
      {"38", 500}, {"39", 500}, {"3B", 500}, {"40", 500}, {"53", 503}, {"54", 500}, {"55", 500},
      {"57", 500}, {"58", 500}, {"F0", 500}, {"HV", 500}, {"P0", 500}, {"XX", 500},
  };
  if (s.size() >= 2) {
    for (const Class& c : classes) {
      if (s.compare(0, 2, c.prefix) == 0) return c.status;
    }
  }
  return 400;
}

std::string retry_after(int64_t ms) {
  return std::to_string(ms <= 1000 ? 1 : ms / 1000 + (ms % 1000 != 0));  // no overflow near max
}

namespace {

// RFC 9209 Proxy-Status for an answer the proxy gave itself.
void add_proxy_status(http::Response& resp, const char* error, const std::string& details) {
  std::string v = std::string("zonegate; error=") + error;
  if (!details.empty()) {
    v += "; details=\"";
    for (char c : details.substr(0, 200)) {
      if (c == '"' || c == '\\') v += '\\';
      if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) v += c;
    }
    v += '"';
  }
  resp.add_header("Proxy-Status", std::move(v));
}

// The proxy's own answer when it did not get one from the database.
http::Response unavailable(const pg::Result& r, int status, const char* proxy_error,
                           const char* hint) {
  http::Response resp = http::error_response(status, r.sqlstate, r.message, r.detail, hint);
  if (status == 503) resp.add_header("Retry-After", retry_after(r.retry_after_ms));
  add_proxy_status(resp, proxy_error, r.detail.empty() ? r.message : r.detail);
  return resp;
}

}  // namespace

http::Response error_from_result(const pg::Result& r) {
  const char* retry_hint = "retry after the delay in Retry-After";
  switch (r.failure) {
    case pg::Failure::kBreakerOpen:
      return unavailable(r, 503, "destination_unavailable", retry_hint);
    case pg::Failure::kConnection:
      return unavailable(r, 503, r.sent ? "connection_terminated" : "destination_unavailable",
                         retry_hint);
    case pg::Failure::kPoolTimeout:
      return unavailable(r, 503, "connection_timeout", retry_hint);
    case pg::Failure::kPoolFull:
    case pg::Failure::kShed:
      return unavailable(r, 503, "connection_limit_reached", retry_hint);
    case pg::Failure::kShutdown:
      return unavailable(r, 503, "destination_unavailable", retry_hint);
    case pg::Failure::kDeadline:
      return unavailable(r, 504, "http_response_timeout",
                         "the deadline is resilience.deadline (docs/CONFIG.md)");
    case pg::Failure::kSql:
    case pg::Failure::kNone:
      break;
  }
  http::Response resp = http::error_response(status_for_sqlstate(r.sqlstate), r.sqlstate, r.message,
                                             r.detail, r.hint);
  if (resp.status == 503) resp.add_header("Retry-After", "1");
  return resp;
}

}  // namespace zonegate::api
