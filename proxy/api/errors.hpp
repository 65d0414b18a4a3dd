// One mapping from database outcomes to HTTP responses, PostgREST 12's (src/PostgREST/Error.hs,
// pgErrorStatus): the SQLSTATE -> status table, its {"code","message","details","hint"} body, the
// PTxyz custom statuses and RAISE SQLSTATE 'PGRST' full response control, PGRST codes for the
// pool's failures, and 503 + Retry-After + RFC 9209 Proxy-Status where the proxy answered itself.
// docs/API.md, "Errors", has the whole table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "pg/job.hpp"

namespace zonegate::api {

// The HTTP status PostgREST gives a database error. `authenticated` is false when the request
// runs as the anonymous role (no token, or a token whose role is auth.anon_role): 42501 is then
// 401 instead of 403. `message` decides the two codes whose status depends on it (21000 from
// pg-safeupdate, 42883 for xmlagg). PTxyz answers xyz.
int status_for_sqlstate(std::string_view sqlstate, bool authenticated = true,
                        std::string_view message = {});
// Retry-After in whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3 allows no fractions).
std::string retry_after(int64_t ms);
// The error response for a failed job; `authenticated` as for status_for_sqlstate.
http::Response error_from_result(const pg::Result& r, bool authenticated = true);
// Adds RFC 9209 Proxy-Status (`zonegate; error=<type>; details="..."`) to an answer the proxy
// gave itself rather than the database.
void add_proxy_status(http::Response& resp, std::string_view error, std::string_view details);
// Whether a function may set this response header (RAISE SQLSTATE 'PGRST' headers, the
// response.headers GUC): not the fields that frame the message or the connection, nor those the
// proxy sets itself (Content-Type, Date, X-Request-Id, Proxy-Status). Case-insensitive.
bool settable_response_header(std::string_view name);

}  // namespace zonegate::api
