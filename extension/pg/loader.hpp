// Reads zonegate's tables into the core's structures. Every read uses the latest snapshot (taken
// after pending invalidations were accepted), so a cache built from it is never older than the
// invalidations this backend has seen; see docs/ARCHITECTURE.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/context.hpp"
#include "core/spatial_index.hpp"
#include "core/zone_tree.hpp"

namespace zonegate::pg {

struct LoadedTree {
  std::shared_ptr<const core::ZoneTree> tree;
  int64_t version = 0;      // zonegate.change_seq when read
  bool statement_snapshot;  // read with the statement's snapshot (parallel mode): transaction-local
};

// Scans zonegate.zones and compiles the tree.
LoadedTree load_tree();

struct LoadedBoundaries {
  std::vector<geo::IndexEntry> entries;  // zones with a boundary, depth from `tree`
  size_t positions = 0;
  bool statement_snapshot = false;
};

// Scans zonegate.zones for boundaries and parses them; depths come from the compiled tree.
LoadedBoundaries load_boundaries(const core::ZoneTree& tree);

// A role as a user read needs it.
struct RoleInfo {
  std::string name;
  std::vector<std::string> permissions;
  bool sees_all = false;
};

// Reads one user with role and grants; nullopt when there is no such user. *statement_snapshot
// is set when the read had to use the statement's snapshot (parallel mode): such a result is
// good for this transaction only. `known_roles` (may be null) are roles read since the last
// change to zonegate.roles: a user whose role is among them needs no roles lookup (a third of
// a miss's index work); a role read here is appended to it (up to kKnownRolesMax).
std::optional<core::UserRecord> load_user(const std::string& user_id, bool* statement_snapshot,
                                          std::vector<RoleInfo>* known_roles);
constexpr size_t kKnownRolesMax = 256;

// zonegate.change_seq's last value (0 before any change).
int64_t load_version();

}  // namespace zonegate::pg
