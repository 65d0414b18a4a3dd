// Which upstream serves a read (docs/ARCHITECTURE.md, "Replicas"): a replica that is reachable,
// whose breaker is closed and pool has a connection, whose lag is within max_lag (bytes and
// time) and was measured recently, and whose replay position has passed what the subject's own
// writes require (read-your-writes); among those, the one with the fewest requests in flight
// from this worker. Else the primary. Pure: the caller gathers the facts.
#pragma once

#include <cstdint>
#include <vector>

#include "upstream/read_your_writes.hpp"

namespace zonegate::upstream {

// A replica as its lag monitor last saw it.
struct ReplicaStatus {
  bool reachable = false;
  Lsn replay_lsn = 0;
  int64_t lag_bytes = -1;  // the primary's position minus the replay position; -1: unknown
  int64_t lag_ms = -1;     // since the last replayed commit, 0 when caught up; -1: unknown
  int64_t checked_at_ms = 0;
};

struct LagLimits {
  int64_t max_bytes = 16LL * 1024 * 1024;
  int64_t max_ms = 5'000;
  int64_t stale_ms = 5'000;  // a status older than this is not trusted
};

struct Candidate {
  ReplicaStatus status;
  bool breaker_closed = true;
  bool pool_ready = true;
  int64_t outstanding = 0;
};

// Why a replica is not eligible, or kEligible.
enum class Ineligible { kEligible, kUnreachable, kStale, kLagging, kBehindWrites, kBreaker, kPool };
// "eligible", "unreachable", "stale", "lagging", "behind_writes", "breaker", "pool".
const char* ineligible_name(Ineligible why);
Ineligible check_replica(const Candidate& c, Lsn required, const LagLimits& limits, int64_t now_ms);

// The index of the replica to use, or -1 for the primary.
int choose_replica(const std::vector<Candidate>& replicas, Lsn required, const LagLimits& limits,
                   int64_t now_ms);

}  // namespace zonegate::upstream
