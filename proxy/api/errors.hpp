// One mapping from database outcomes to HTTP responses: PostgREST's SQLSTATE -> status table,
// its {"code","message","details","hint"} body, and 503 + Retry-After for an unavailable pool.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "pg/job.hpp"

namespace zonegate::api {

// HTTP status PostgREST gives a SQLSTATE (authenticated requests).
int status_for_sqlstate(std::string_view sqlstate);
// Retry-After in whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3 allows no fractions).
std::string retry_after(int64_t ms);
// The error response for a failed job.
http::Response error_from_result(const pg::Result& r);

}  // namespace zonegate::api
