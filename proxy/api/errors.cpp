// SQLSTATE -> HTTP; see errors.hpp. The table follows PostgREST's documentation
// (docs.postgrest.org, "Errors"): specific codes first, then classes, then 400.
#include "api/errors.hpp"

#include <cstring>

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

http::Response error_from_result(const pg::Result& r) {
  switch (r.failure) {
    case pg::Failure::kPoolTimeout:
    case pg::Failure::kPoolFull:
    case pg::Failure::kConnection:
    case pg::Failure::kShutdown: {
      http::Response resp = http::error_response(503, r.sqlstate, r.message, r.detail,
                                                 "retry after the delay in Retry-After");
      resp.add_header("Retry-After", "1");
      return resp;
    }
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
