// SQLSTATE tables of the resilience stages; see classify.hpp.
#include "resilience/classify.hpp"

namespace zonegate::resilience {

namespace {

// Whether a well-formed (5 character) SQLSTATE belongs to the given 2-character class.
bool in_class(std::string_view s, std::string_view cls) {
  return s.size() == 5 && s.substr(0, 2) == cls;
}

bool is_shutdown(std::string_view s) {
  return s == "57P01" || s == "57P02" || s == "57P03";
}

}  // namespace

bool is_transient_sqlstate(std::string_view s) {
  return in_class(s, "08") || is_shutdown(s) || s == "53300" || s == "40001" || s == "40P01";
}

bool is_infrastructure_sqlstate(std::string_view s) {
  return in_class(s, "08") || is_shutdown(s) || in_class(s, "53") || in_class(s, "58") ||
         s == "XX001" || s == "XX002";
}

bool is_transient(const AttemptOutcome& o) {
  return !o.ok && (o.connection_lost || is_transient_sqlstate(o.sqlstate));
}

bool is_infrastructure(const AttemptOutcome& o) {
  return !o.ok && (o.connection_lost || is_infrastructure_sqlstate(o.sqlstate));
}

bool may_retry(const AttemptOutcome& o, bool idempotent) {
  return is_transient(o) && (idempotent || !o.sent);
}

const char* retry_reason_label(RetryReason r) {
  switch (r) {
    case RetryReason::kConnection:
      return "connection";
    case RetryReason::kShutdown:
      return "shutdown";
    case RetryReason::kTooManyConnections:
      return "too_many_connections";
    case RetryReason::kSerialization:
      return "serialization";
    case RetryReason::kDeadlock:
      return "deadlock";
  }
  return "connection";
}

RetryReason retry_reason(const AttemptOutcome& o) {
  if (o.connection_lost || in_class(o.sqlstate, "08")) return RetryReason::kConnection;
  if (is_shutdown(o.sqlstate)) return RetryReason::kShutdown;
  if (o.sqlstate == "53300") return RetryReason::kTooManyConnections;
  if (o.sqlstate == "40001") return RetryReason::kSerialization;
  if (o.sqlstate == "40P01") return RetryReason::kDeadlock;
  return RetryReason::kConnection;  // not transient: the caller should not have asked
}

}  // namespace zonegate::resilience
