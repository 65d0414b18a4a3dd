// Failure classification for the resilience stages: which failures are worth another attempt
// (transient) and which say the database itself is in trouble (infrastructure, for the breaker).
#pragma once

#include <string_view>

namespace zonegate::resilience {

// SQLSTATE class 08 (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown,
// 57P03 cannot_connect_now, 53300 too_many_connections, 40001 serialization_failure,
// 40P01 deadlock_detected: the same statement may well succeed a moment later.
bool is_transient_sqlstate(std::string_view sqlstate);

// 08*, 57P01-57P03, 53* (insufficient resources), 58* (system errors), XX001/XX002 (corruption):
// the server, not the query, is failing. Not 40001/40P01 (transaction conflicts), not 57014
// (query_canceled: our own deadline cancels and statement timeouts are the query's fault), not
// XX000 and not user errors.
bool is_infrastructure_sqlstate(std::string_view sqlstate);

// What happened to one attempt, as the retry layer sees it.
struct AttemptOutcome {
  bool ok = false;               // a result (rows or a clean empty answer)
  bool connection_lost = false;  // the connection failed or was lost before a result
  bool sent = false;          // the query was written to the server (false: never left the proxy)
  std::string_view sqlstate;  // "" when no SQL error
};

// A failed attempt whose failure may go away by itself.
bool is_transient(const AttemptOutcome& o);
// A failed attempt that counts against the upstream's health.
bool is_infrastructure(const AttemptOutcome& o);
// Transient AND (idempotent OR never sent): a volatile call that reached the server may have
// taken effect, so it is never repeated, whatever the failure.
bool may_retry(const AttemptOutcome& o, bool idempotent);

enum class RetryReason {
  kConnection,
  kShutdown,            // 57P0x
  kTooManyConnections,  // 53300
  kSerialization,       // 40001
  kDeadlock,            // 40P01
};

// A stable label for metrics: "connection", "shutdown", "too_many_connections",
// "serialization", "deadlock".
const char* retry_reason_label(RetryReason r);
// Why a transient attempt is retried; only meaningful when is_transient(o). A lost connection
// and class 08 are kConnection.
RetryReason retry_reason(const AttemptOutcome& o);

}  // namespace zonegate::resilience
