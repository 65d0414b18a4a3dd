// The per-backend cache; see cache.hpp. Invalidation callbacks only bump generation counters:
// they can run inside our own rebuild (any lock acquisition accepts invalidations), so freeing
// data there would pull it from under the code using it. Data is dropped at the next access.
#include "pg/cache.hpp"

#include <malloc.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/context.hpp"
#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/timestamp.h"
}

#include "pg/catalog.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/loader.hpp"

namespace zonegate::pg {

namespace {

// A cached user and the segment of the LRU that holds it.
struct UserNode {
  std::string key;
  UserEntry entry;
  bool is_protected = false;
};
using UserList = std::list<UserNode>;

// The user cache is a segmented LRU (SLRU): a new entry starts in the probation segment and moves
// to the protected one on its second use; the protected segment keeps at most this share of the
// bytes, demoting its least recent entries back to probation, and evictions take probation's
// least recent first. Users seen once (a uniform tail, a scan through many users) cannot push
// out the frequently used ones, as they do in a plain LRU.
constexpr double kProtectedShare = 0.8;

// Ids that name no user are remembered in a small set of their own, never as entries: a caller
// asking for many made-up ids cannot fill the cache or push real users out of it.
constexpr size_t kUnknownIdsMax = 256;
// Longer ids are not remembered at all: no user can have one (a btree key is under 2.7 kB).
constexpr size_t kUnknownIdBytesMax = 1024;
UserEntry g_no_user;  // what every unknown id answers: no context, no access; never written

struct State {
  // Invalidation generations: bumped by callbacks, compared at access.
  uint64_t zones_gen = 1;
  uint64_t users_gen = 1;
  uint64_t tree_gen = 0;        // zones_gen the tree was built at
  uint64_t user_list_gen = 0;   // users_gen + zones_gen the user entries belong to
  uint64_t roles_gen = 1;       // bumped by changes to zonegate.roles
  uint64_t roles_list_gen = 0;  // roles_gen the known roles were read at
  std::vector<RoleInfo> roles;  // roles read since the last roles change (load_user)
  bool txn_local = false;       // something was built from a statement snapshot
  std::shared_ptr<const core::ZoneTree> tree;
  int64_t version = 0;
  // zonegate.change_seq as documents built in this epoch show it: read once per epoch, since
  // every change that advances it also sends the invalidation that ends the epoch.
  int64_t document_version = 0;
  uint64_t document_version_gen = 0;
  std::unique_ptr<geo::SpatialIndex> spatial;
  uint64_t spatial_gen = 0;  // zones_gen the spatial index was built at
  CacheCounters sc;
  UserList probation, protected_users;  // most recent first
  // Keyed by views of the list nodes' keys (nodes never move, also when spliced between the
  // segments): one copy of each id.
  std::unordered_map<std::string_view, UserList::iterator> user_index;
  size_t user_bytes = 0;                        // both segments
  size_t protected_bytes = 0;                   // the protected segment
  std::unordered_set<std::string> unknown_ids;  // at most kUnknownIdsMax, oldest dropped first
  std::deque<const std::string*> unknown_order;
  CacheCounters zc, uc;
  // Once-per-statement invalidation check.
  TimestampTz last_statement = 0;
  LocalTransactionId last_lxid = InvalidLocalTransactionId;
  // The current user fast path.
  std::string current_uid;
  const UserEntry* current_entry = nullptr;
  uint64_t current_gen = 0;
  UserEntry scratch;  // an entry answered but not cached
};

State* g_state = nullptr;
int g_user_cache_kb = 4096;

State& state() {
  if (g_state == nullptr) g_state = new State();  // lives for the backend's lifetime
  return *g_state;
}

uint64_t epoch(const State& s) {
  return s.zones_gen * 1'000'003ULL + s.users_gen;
}

void relcache_callback(Datum, Oid relid) {
  if (g_state == nullptr) return;
  State& s = *g_state;
  if (relid == InvalidOid) {  // everything (e.g. sinval queue overflow)
    ++s.zones_gen;
    ++s.users_gen;
    ++s.roles_gen;
    ++s.zc.invalidations;
    ++s.uc.invalidations;
    forget_relations();
    return;
  }
  switch (which_relation(relid)) {
    case 'z':
      ++s.zones_gen;
      ++s.zc.invalidations;
      ++s.sc.invalidations;
      forget_relations();
      break;
    case 'r':
      ++s.roles_gen;
      [[fallthrough]];
    case 'u':
    case 'g':
      ++s.users_gen;
      ++s.uc.invalidations;
      forget_relations();
      break;
    default:
      break;
  }
}

void xact_callback(XactEvent event, void*) {
  // Caches built from a statement snapshot (parallel mode) are good for this transaction only.
  if (g_state == nullptr || !g_state->txn_local) return;
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    ++g_state->zones_gen;
    ++g_state->users_gen;
    ++g_state->roles_gen;
    g_state->txn_local = false;
  }
}

void drop_users(State& s) {
  s.probation.clear();
  s.protected_users.clear();
  s.user_index.clear();
  s.user_bytes = 0;
  s.protected_bytes = 0;
  s.unknown_ids.clear();
  s.unknown_order.clear();
  s.current_entry = nullptr;
  s.current_uid.clear();
}

// Remembers an id that names no user, dropping the oldest past kUnknownIdsMax.
void remember_unknown(State& s, const std::string& user_id) {
  if (user_id.size() > kUnknownIdBytesMax) return;
  auto [it, added] = s.unknown_ids.insert(user_id);
  if (!added) return;
  s.unknown_order.push_back(&*it);  // set nodes do not move on rehash
  if (s.unknown_order.size() > kUnknownIdsMax) {
    const std::string* oldest = s.unknown_order.front();
    s.unknown_order.pop_front();
    if (s.current_entry == &g_no_user && s.current_uid == *oldest) s.current_entry = nullptr;
    s.unknown_ids.erase(*oldest);
  }
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void ensure_tree(State& s) {
  if (s.tree && s.tree_gen == s.zones_gen) {
    ++s.zc.hits;
    return;
  }
  ++s.zc.misses;
  auto t0 = std::chrono::steady_clock::now();
  // An invalidation that arrives while we read (our own lock acquisitions accept them) makes the
  // result suspect: read again. Bounded; a result that stays suspect is used once, not kept.
  for (int attempt = 0;; ++attempt) {
    uint64_t gen = s.zones_gen;
    s.tree.reset();  // free the old tree before building the new one: peak memory stays at one
    LoadedTree loaded = load_tree();
    s.tree = std::move(loaded.tree);
    s.version = loaded.version;
    s.txn_local = s.txn_local || loaded.statement_snapshot;
    if (s.zones_gen == gen) {
      s.tree_gen = gen;
      break;
    }
    if (attempt == 2) {
      s.tree_gen = 0;
      break;
    }
  }
  ++s.zc.rebuilds;
  // The build's temporary arrays were freed; hand the memory back instead of letting the
  // backend's resident size carry it until exit.
  malloc_trim(0);
  s.zc.last_rebuild_ms = ms_since(t0);
  s.zc.last_rebuild_at = pg_call([] { return GetCurrentTimestamp(); });
}

void ensure_spatial(State& s) {
  if (s.spatial && s.spatial_gen == s.zones_gen) {
    ++s.sc.hits;
    return;
  }
  ++s.sc.misses;
  auto t0 = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    ensure_tree(s);
    uint64_t gen = s.zones_gen;
    s.spatial.reset();  // one index in memory at a time
    LoadedBoundaries loaded = load_boundaries(*s.tree);
    s.txn_local = s.txn_local || loaded.statement_snapshot;
    s.spatial = geo::SpatialIndex::build(std::move(loaded.entries));
    if (s.zones_gen == gen) {
      s.spatial_gen = gen;
      break;
    }
    if (attempt == 2) {
      s.spatial_gen = 0;
      break;
    }
  }
  ++s.sc.rebuilds;
  malloc_trim(0);
  s.sc.last_rebuild_ms = ms_since(t0);
  s.sc.last_rebuild_at = pg_call([] { return GetCurrentTimestamp(); });
}

void sync_users(State& s) {
  uint64_t gen = epoch(s);
  if (s.user_list_gen != gen) {
    drop_users(s);
    s.user_list_gen = gen;
  }
}

size_t entry_bytes(const std::string& key, const UserEntry& e) {
  return sizeof(UserList::value_type) + 64 /* index node */ + key.capacity() +
         e.context_jsonb.capacity() + e.context_json.capacity() + e.scope.memory_bytes();
}

size_t user_cache_limit() {
  return static_cast<size_t>(g_user_cache_kb) * 1024;
}

// Removes one entry from the cache (either segment).
void remove_entry(State& s, UserList::iterator pos) {
  UserNode& n = *pos;
  s.user_bytes -= n.entry.bytes;
  if (n.is_protected) s.protected_bytes -= n.entry.bytes;
  if (s.current_entry == &n.entry) s.current_entry = nullptr;
  s.user_index.erase(n.key);
  (n.is_protected ? s.protected_users : s.probation).erase(pos);
}

// Evicts least recent entries, probation's first, until the cache fits `limit`. Never evicts
// `keep`: the caller is about to use it.
void evict(State& s, size_t limit, const UserEntry* keep) {
  while (s.user_bytes > limit) {
    UserList* from = nullptr;
    if (!s.probation.empty() && &s.probation.back().entry != keep) {
      from = &s.probation;
    } else if (!s.protected_users.empty() && &s.protected_users.back().entry != keep) {
      from = &s.protected_users;
    } else {
      break;
    }
    remove_entry(s, std::prev(from->end()));
  }
}

// A hit: the entry becomes the most recent of the protected segment, which hands its least
// recent entries back to probation while it holds more than its share.
void touch(State& s, UserList::iterator pos) {
  UserNode& n = *pos;
  if (!n.is_protected) {
    s.protected_users.splice(s.protected_users.begin(), s.probation, pos);
    n.is_protected = true;
    s.protected_bytes += n.entry.bytes;
    size_t share = static_cast<size_t>(kProtectedShare * static_cast<double>(user_cache_limit()));
    while (s.protected_bytes > share && s.protected_users.size() > 1) {
      auto last = std::prev(s.protected_users.end());
      last->is_protected = false;
      s.protected_bytes -= last->entry.bytes;
      s.probation.splice(s.probation.begin(), s.protected_users, last);
    }
  } else if (pos != s.protected_users.begin()) {
    s.protected_users.splice(s.protected_users.begin(), s.protected_users, pos);
  }
}

// The cache_version of documents built now. Reading the sequence opens and locks it (4% of a
// user_context miss's instructions); a change advances it in the same transaction that sends
// the relcache invalidation, so the value read after an epoch began holds until the next one.
int64_t document_version(State& s) {
  uint64_t gen = epoch(s);  // taken before the read: an invalidation during it forces a re-read
  if (s.document_version_gen != gen) {
    s.document_version = load_version();
    s.document_version_gen = gen;
  }
  return s.document_version;
}

// Which documents a load builds.
struct Documents {
  bool json = false;
  bool jsonb = false;
};

Documents documents_for(UserNeed need) {
  return {need == UserNeed::kJson, need == UserNeed::kJsonb};
}

// Builds the documents asked for into a visible entry. The text form prints the attributes,
// which the loader keeps as jsonb.
void build_documents(State& s, core::UserRecord& rec, Documents docs, UserEntry& entry) {
  if (!docs.json && !docs.jsonb) return;
  core::Document doc = core::context_document(*s.tree, rec, entry.scope, document_version(s));
  if (docs.json) {
    if (!rec.attributes_jsonb.empty()) rec.attributes_json = jsonb_text(rec.attributes_jsonb);
    entry.context_json = core::render_json(doc, rec.attributes_json);
  }
  if (docs.jsonb) entry.context_jsonb = jsonb_document(doc, rec.attributes_jsonb);
}

UserEntry& load_entry(State& s, const std::string& user_id, Documents docs) {
  ++s.uc.misses;
  auto t0 = std::chrono::steady_clock::now();
  UserEntry entry;
  bool suspect = false, found = false;
  for (int attempt = 0;; ++attempt) {
    ensure_tree(s);
    uint64_t gen = epoch(s);
    bool statement_snapshot = false;
    if (s.roles_list_gen != s.roles_gen) {  // a role changed since they were read
      s.roles.clear();
      s.roles_list_gen = s.roles_gen;
    }
    std::optional<core::UserRecord> rec = load_user(user_id, &statement_snapshot, &s.roles);
    s.txn_local = s.txn_local || statement_snapshot;  // dropped when the transaction ends
    suspect = epoch(s) != gen;
    if (suspect && attempt < 2) continue;  // changed while we read: read again
    entry = UserEntry();
    found = rec.has_value();
    entry.visible = found && rec->active;
    if (entry.visible) {
      entry.tree = s.tree;
      entry.scope = core::scope_for(*s.tree, *rec);
      build_documents(s, *rec, docs, entry);
    }
    break;
  }
  sync_users(s);  // a rebuild above may have made the existing entries stale
  ++s.uc.rebuilds;
  s.uc.last_rebuild_ms = ms_since(t0);
  s.uc.last_rebuild_at = pg_call([] { return GetCurrentTimestamp(); });
  entry.bytes = entry_bytes(user_id, entry);
  if (suspect) {
    // Still changing under us after three reads: answer this call, cache nothing.
    s.scratch = std::move(entry);
    return s.scratch;
  }
  if (!found) {
    remember_unknown(s, user_id);
    return g_no_user;  // has() is true for any need: nothing is ever built into it
  }
  s.probation.push_front(UserNode{user_id, std::move(entry), false});
  UserNode& n = s.probation.front();
  s.user_index[n.key] = s.probation.begin();
  s.user_bytes += n.entry.bytes;
  evict(s, user_cache_limit(), &n.entry);
  return n.entry;
}

UserEntry& find_or_load(State& s, const std::string& user_id, UserNeed need) {
  ensure_tree(s);
  sync_users(s);
  auto it = s.user_index.find(user_id);
  if (it == s.user_index.end()) {
    if (s.unknown_ids.count(user_id) != 0) {
      ++s.uc.hits;
      return g_no_user;
    }
    return load_entry(s, user_id, documents_for(need));
  }
  UserList::iterator pos = it->second;
  UserEntry& e = pos->entry;
  if (e.has(need)) {
    ++s.uc.hits;
    touch(s, pos);
    return e;
  }
  // A document this entry was not built with: read the user again and build it together with
  // the ones the entry has (a backend serving both kinds of callers keeps both).
  Documents docs = documents_for(need);
  docs.json = docs.json || !e.context_json.empty();
  docs.jsonb = docs.jsonb || !e.context_jsonb.empty();
  remove_entry(s, pos);
  return load_entry(s, user_id, docs);
}

}  // namespace

void cache_init() {
  // Memory per backend is the DBA's decision: a role that could set it could make every
  // backend it opens hold up to 1 GiB.
  DefineCustomIntVariable("zonegate.user_cache_size", "Memory for cached user entries per backend.",
                          "Settable by superusers only (postgresql.conf, ALTER ROLE/DATABASE SET).",
                          &g_user_cache_kb, 4096, 0, 1024 * 1024, PGC_SUSET, GUC_UNIT_KB, nullptr,
                          nullptr, nullptr);
  MarkGUCPrefixReserved("zonegate");
  CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
  RegisterXactCallback(xact_callback, nullptr);
}

void cache_begin_call() {
  State& s = state();
  TimestampTz ts = GetCurrentStatementStartTimestamp();
  LocalTransactionId lxid = MyProc->lxid;
  if (ts == s.last_statement && lxid == s.last_lxid) return;
  s.last_statement = ts;
  s.last_lxid = lxid;
  pg_call([] { AcceptInvalidationMessages(); });
}

const core::ZoneTree& cache_tree() {
  State& s = state();
  ensure_tree(s);
  return *s.tree;
}

const geo::SpatialIndex& cache_spatial() {
  State& s = state();
  ensure_spatial(s);
  return *s.spatial;
}

int64_t cache_version() {
  State& s = state();
  ensure_tree(s);
  return s.version;
}

const UserEntry& cache_user(const std::string& user_id, UserNeed need) {
  return find_or_load(state(), user_id, need);
}

const UserEntry* cache_current_user() {
  State& s = state();
  std::string_view uid;
  if (!current_identity(&uid)) return nullptr;
  // Hot path (per-row RLS checks): same user, nothing invalidated since, no allocation.
  if (s.current_entry != nullptr && s.current_gen == epoch(s) && s.tree_gen == s.zones_gen &&
      s.current_uid == uid) {
    ++s.uc.hits;
    return s.current_entry;
  }
  std::string key(uid);  // uid views a setting; the load below may run code that changes it
  const UserEntry& e = find_or_load(s, key, UserNeed::kScope);
  s.current_uid = std::move(key);
  s.current_entry = &e;
  s.current_gen = epoch(s);
  return &e;
}

CacheStats cache_stats() {
  State& s = state();
  CacheStats st;
  st.zones = s.zc;
  st.users = s.uc;
  if (s.tree) {
    st.zone_count = static_cast<int64_t>(s.tree->size());
    st.zone_bytes = static_cast<int64_t>(s.tree->memory_bytes());
  }
  st.spatial = s.sc;
  if (s.spatial) {
    st.spatial_zones = static_cast<int64_t>(s.spatial->size());
    st.spatial_bytes = static_cast<int64_t>(s.spatial->memory_bytes());
  }
  st.user_entries = static_cast<int64_t>(s.probation.size() + s.protected_users.size());
  st.user_bytes = static_cast<int64_t>(s.user_bytes);
  return st;
}

void cache_reset() {
  State& s = state();
  ++s.zones_gen;
  ++s.users_gen;
  ++s.roles_gen;
  s.tree.reset();
  s.spatial.reset();
  drop_users(s);
}

}  // namespace zonegate::pg
