// The per-backend cache: the compiled zone tree and an LRU of user entries (scope + context
// document). It is invalidated through Postgres' relcache messages, which makes it transactional:
// a committed change reaches every backend's next statement, a rolled-back one never does. See
// docs/ARCHITECTURE.md, "The cache and its invalidation".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/scope.hpp"
#include "core/spatial_index.hpp"
#include "core/zone_tree.hpp"

namespace zonegate::pg {

// What a caller needs of a user's entry. The documents are built on first demand only: RLS and
// the zone functions need the scope alone, the proxy the JSON text, user_context() the jsonb.
enum class UserNeed : uint8_t { kScope, kJson, kJsonb };

// What the cache knows about one user id.
struct UserEntry {
  bool visible = false;  // exists and is active; false means NULL context and no access
  // The tree the scope's positions refer to, pinned: a caller reads positions against this one
  // even when the cache's tree is rebuilt during its call (set when visible).
  std::shared_ptr<const core::ZoneTree> tree;
  core::Scope scope;
  std::string context_json;   // the context document as JSON text (user_context_json())
  std::string context_jsonb;  // the same as jsonb varlena bytes (user_context())
  size_t bytes = 0;

  bool has(UserNeed need) const {
    if (!visible || need == UserNeed::kScope) return true;
    return need == UserNeed::kJson ? !context_json.empty() : !context_jsonb.empty();
  }
};

struct CacheCounters {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t invalidations = 0;
  int64_t rebuilds = 0;
  double last_rebuild_ms = 0;
  int64_t last_rebuild_at = 0;  // Postgres TimestampTz, 0 if never
};

struct CacheStats {
  CacheCounters zones, users, spatial;
  int64_t spatial_zones = 0;
  int64_t spatial_bytes = 0;
  int64_t zone_count = 0;
  int64_t zone_bytes = 0;
  int64_t user_entries = 0;
  int64_t user_bytes = 0;
};

// Registers the relcache callback; called from _PG_init.
void cache_init();
// Processes invalidations once per statement, so a change committed elsewhere is seen by this
// backend's next statement even inside a transaction block.
void cache_begin_call();
// The compiled tree (built on first use and after zones change).
const core::ZoneTree& cache_tree();
// The point-in-zone index over every zone with a boundary (built on first use and after zones
// change).
const geo::SpatialIndex& cache_spatial();
// The tree's data version (zonegate.change_seq when it was read).
int64_t cache_version();
// The cached entry for a user id with what `need` asks for (loaded on a miss; an entry without
// the document asked for is read again, keeping the documents it had). The reference is valid
// until the next cache call.
const UserEntry& cache_user(const std::string& user_id, UserNeed need = UserNeed::kScope);
// The entry for the current request's user (pg/identity.hpp: zonegate.user_id or the claims'
// sub, from a trusted session only), or nullptr when there is none. Fast path for per-row RLS
// checks: no allocation on a hit.
const UserEntry* cache_current_user();
CacheStats cache_stats();
// Drops everything (zonegate.cache_reset()).
void cache_reset();

}  // namespace zonegate::pg
