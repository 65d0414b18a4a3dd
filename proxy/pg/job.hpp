// A unit of work for a pooled Postgres connection: a few statements sent back to back in
// pipeline mode and closed by one Sync, so they run as one implicit transaction in a single
// round trip. Its callback gets the last statement's rows, or the first error. Jobs that may share
// a Sync (reads that set no state) sent in the same loop turn share one Sync instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zonegate::pg {

// A prepared statement: `name` is prepared from `sql` on first use on each connection.
struct Statement {
  std::shared_ptr<const std::string> name;
  std::shared_ptr<const std::string> sql;
  std::vector<std::optional<std::string>> params;  // text format; nullopt is SQL NULL
};

// Why a job failed without a SQL error from the server.
enum class Failure {
  kNone,
  kSql,          // the server reported an error (sqlstate etc. are set)
  kConnection,   // the connection broke while the job was in flight (08006)
  kPoolTimeout,  // no connection could take it within pool.acquire_timeout
  kPoolFull,     // more than pool.max_waiting jobs were queued (load shedding)
  kShutdown,     // the proxy is stopping
  kDeadline,     // the request's deadline passed (waiting for a connection, or running)
  kBreakerOpen,  // refused at once: the upstream's circuit breaker is open
  kShed,         // refused at once: past the worker's adaptive concurrency limit
};

struct Result {
  Failure failure = Failure::kNone;
  // SQL error fields (PostgREST's error body shape).
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
  // Rows of the last statement (or of Job::result_statement): text values, nullopt for NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
  // With Job::result_statement: the rows of the last statement after it that returned rows
  // (what /rpc reads back after the call: response.headers and response.status).
  std::vector<std::vector<std::optional<std::string>>> trailing;
  bool sent = false;           // the statements were written to the server
  bool fail_fast = false;      // refused without trying: the last connect attempt failed
  bool interrupted = false;    // 57014 from a cancel the proxy sent for another job
  int64_t retry_after_ms = 0;  // when the proxy refused it: when to try again (0: unknown)
  // Set when a replica answered: its replay position when the job was sent (a lower bound of
  // what it had replayed when the query ran); 0 for the primary.
  uint64_t replica_lsn = 0;
  uint64_t queued_ns = 0;    // time waiting for a connection
  uint64_t upstream_ns = 0;  // from send to Sync
  bool ok() const { return failure == Failure::kNone; }
  // The single value of a one-row, one-column result, if any.
  const std::optional<std::string>* scalar() const {
    return rows.size() == 1 && rows[0].size() == 1 ? rows[0].data() : nullptr;
  }
};

struct Job {
  std::vector<Statement> statements;
  std::function<void(Result)> done;
  uint64_t enqueued_ns = 0;
  // uv_hrtime() past which nobody waits for the answer (0: none): a queued job is failed with
  // kDeadline, a running one too and its query cancelled.
  uint64_t deadline_ns = 0;
  // The job only reads: running it twice has the effect of running it once (GET routes,
  // STABLE/IMMUTABLE functions), so a transient failure may be retried after it was sent.
  bool read_only = false;
  // Reads only and sets no session or transaction state (no set_config): the job may share
  // one Sync, so one implicit transaction and one write each way, with the other such jobs a
  // connection gets in the same loop turn. Its callback runs as soon as its own results are in;
  // if an earlier job of the batch fails, the rest of the batch is skipped by the server and
  // sent again on its own. A job that writes or sets GUCs keeps its own Sync, so its commit is
  // never tied to another request's statements.
  bool share_sync = false;
  // The statement (an index into statements) whose rows are the Result's rows; the statements
  // after it put theirs in Result::trailing. kLastStatement: each statement's rows replace the
  // previous ones'.
  static constexpr size_t kLastStatement = static_cast<size_t>(-1);
  size_t result_statement = kLastStatement;
};

// Statement with a name derived from its SQL (stable per process).
Statement make_statement(const std::string& sql, std::vector<std::optional<std::string>> params);

}  // namespace zonegate::pg
