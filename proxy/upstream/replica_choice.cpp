// Replica choice; see replica_choice.hpp.
#include "upstream/replica_choice.hpp"

namespace zonegate::upstream {

const char* ineligible_name(Ineligible why) {
  switch (why) {
    case Ineligible::kEligible:
      return "eligible";
    case Ineligible::kUnreachable:
      return "unreachable";
    case Ineligible::kStale:
      return "stale";
    case Ineligible::kLagging:
      return "lagging";
    case Ineligible::kBehindWrites:
      return "behind_writes";
    case Ineligible::kBreaker:
      return "breaker";
    case Ineligible::kPool:
      return "pool";
  }
  return "unknown";
}

Ineligible check_replica(const Candidate& c, Lsn required, const LagLimits& limits,
                         int64_t now_ms) {
  const ReplicaStatus& s = c.status;
  if (!s.reachable) return Ineligible::kUnreachable;
  if (now_ms - s.checked_at_ms > limits.stale_ms) return Ineligible::kStale;
  if (s.lag_bytes < 0 || s.lag_ms < 0 || s.lag_bytes > limits.max_bytes ||
      s.lag_ms > limits.max_ms) {
    return Ineligible::kLagging;
  }
  if (required == kPrimaryOnly || s.replay_lsn < required) return Ineligible::kBehindWrites;
  if (!c.breaker_closed) return Ineligible::kBreaker;
  if (!c.pool_ready) return Ineligible::kPool;
  return Ineligible::kEligible;
}

int choose_replica(const std::vector<Candidate>& replicas, Lsn required, const LagLimits& limits,
                   int64_t now_ms) {
  if (required == kPrimaryOnly) return -1;
  int best = -1;
  for (size_t i = 0; i < replicas.size(); ++i) {
    if (check_replica(replicas[i], required, limits, now_ms) != Ineligible::kEligible) continue;
    if (best < 0 || replicas[i].outstanding < replicas[static_cast<size_t>(best)].outstanding) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace zonegate::upstream
