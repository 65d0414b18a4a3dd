// Table reads; see loader.hpp. Postgres work happens in C-style lambdas under pg_call that copy
// rows into palloc'd arrays; the C++ structures are built afterwards, outside any PG_TRY.
#include "pg/loader.hpp"

#include <cstring>
#include <string_view>
#include <vector>

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
}

#include "pg/catalog.hpp"
#include "pg/guard.hpp"

namespace zonegate::pg {

namespace {

// The snapshot caches are built from: the latest one, except in parallel mode, where Postgres
// forbids taking a new snapshot and the statement's own is used.
Snapshot cache_snapshot(bool* statement_snapshot) {
  if (IsInParallelMode()) {
    *statement_snapshot = true;
    return RegisterSnapshot(GetActiveSnapshot());
  }
  *statement_snapshot = false;
  return RegisterSnapshot(GetLatestSnapshot());
}

struct RawZones {
  int n = 0;
  int cap = 0;
  int64* ids = nullptr;
  int64* parents = nullptr;
  bool* has_parent = nullptr;
  uint32* str_off = nullptr;  // per row: code, name and level lengths and bytes in `strings`
  StringInfoData strings;
  bool statement_snapshot = false;
};

// The size of the last zones scan. The next scan allocates that much (and a little more) up
// front instead of doubling its way there: the copies and the page faults of the doubling were a
// fifth of a rebuild of the 91,599-zone tree.
int g_last_zone_rows = 0;
int g_last_zone_string_bytes = 0;

void grow(RawZones* z, int at_least = 0) {
  int cap = Max(z->cap == 0 ? 4096 : z->cap * 2, at_least);
  auto resize = [&](void* p, size_t elem) {
    return p == nullptr ? palloc(elem * static_cast<size_t>(cap))
                        : repalloc(p, elem * static_cast<size_t>(cap));
  };
  z->ids = static_cast<int64*>(resize(z->ids, sizeof(int64)));
  z->parents = static_cast<int64*>(resize(z->parents, sizeof(int64)));
  z->has_parent = static_cast<bool*>(resize(z->has_parent, sizeof(bool)));
  z->str_off = static_cast<uint32*>(resize(z->str_off, sizeof(uint32)));
  z->cap = cap;
}

// Appends a text datum as <uint32 length><bytes> without a palloc per string.
void append_text(StringInfo buf, Datum d) {
  struct varlena* v = reinterpret_cast<struct varlena*>(DatumGetPointer(d));
  if (VARATT_IS_EXTENDED(v)) v = pg_detoast_datum_packed(v);
  uint32 len = VARSIZE_ANY_EXHDR(v);
  appendBinaryStringInfo(buf, reinterpret_cast<const char*>(&len), sizeof len);
  appendBinaryStringInfo(buf, VARDATA_ANY(v), static_cast<int>(len));
}

AttrNumber attnum(Oid rel, const char* name) {
  AttrNumber a = get_attnum(rel, name);
  if (a == InvalidAttrNumber) {
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("zonegate.%s has no column \"%s\"", get_rel_name(rel), name)));
  }
  return a;
}

void scan_zones(Oid relid, RawZones* out) {
  int a_id = attnum(relid, "id") - 1, a_parent = attnum(relid, "parent_id") - 1,
      a_code = attnum(relid, "code") - 1, a_name = attnum(relid, "name") - 1,
      a_level = attnum(relid, "level") - 1;
  int last = Max(Max(Max(a_id, a_parent), Max(a_code, a_name)), a_level) + 1;
  initStringInfo(&out->strings);
  if (g_last_zone_rows > 0) {
    grow(out, g_last_zone_rows + g_last_zone_rows / 16);
    enlargeStringInfo(&out->strings, g_last_zone_string_bytes + g_last_zone_string_bytes / 16);
  }
  Relation rel = table_open(relid, AccessShareLock);
  Snapshot snap = cache_snapshot(&out->statement_snapshot);
  TableScanDesc scan = table_beginscan(rel, snap, 0, nullptr);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
    if (out->n == out->cap) grow(out);
    slot_getsomeattrs(slot, last);
    int i = out->n++;
    out->ids[i] = DatumGetInt64(slot->tts_values[a_id]);
    out->has_parent[i] = !slot->tts_isnull[a_parent];
    out->parents[i] = out->has_parent[i] ? DatumGetInt64(slot->tts_values[a_parent]) : 0;
    if (out->strings.len > static_cast<int>(PG_UINT32_MAX / 2)) elog(ERROR, "zone names too large");
    out->str_off[i] = static_cast<uint32>(out->strings.len);
    append_text(&out->strings, slot->tts_values[a_code]);
    append_text(&out->strings, slot->tts_values[a_name]);
    append_text(&out->strings, slot->tts_values[a_level]);
  }
  ExecDropSingleTupleTableSlot(slot);
  table_endscan(scan);
  UnregisterSnapshot(snap);
  table_close(rel, NoLock);  // keep the lock until the transaction ends, as the executor does
  g_last_zone_rows = out->n;
  g_last_zone_string_bytes = out->strings.len;
}

// Reads the next <uint32 length><bytes> string written by append_text.
std::string_view next_string(const char*& p) {
  uint32_t len;
  memcpy(&len, p, sizeof len);
  p += sizeof len;
  std::string_view s(p, len);
  p += len;
  return s;
}

}  // namespace

int64_t load_version() {
  Oid seq = relations().change_seq;
  return pg_call([seq] {
    // pg_sequence_last_value returns NULL before the first nextval; treat that as 0.
    LOCAL_FCINFO(fcinfo, 1);
    InitFunctionCallInfoData(*fcinfo, nullptr, 1, InvalidOid, nullptr, nullptr);
    fcinfo->args[0].value = ObjectIdGetDatum(seq);
    fcinfo->args[0].isnull = false;
    Datum d = pg_sequence_last_value(fcinfo);
    return fcinfo->isnull ? int64{0} : static_cast<int64_t>(DatumGetInt64(d));
  });
}

LoadedTree load_tree() {
  const Relations& rel = relations();
  Oid relid = rel.zones;
  RawZones raw;
  pg_call([relid, &raw] { scan_zones(relid, &raw); });
  std::vector<core::ZoneInput> rows(static_cast<size_t>(raw.n));
  for (int i = 0; i < raw.n; ++i) {
    core::ZoneInput& z = rows[static_cast<size_t>(i)];
    z.id = raw.ids[i];
    z.parent_id = raw.parents[i];
    z.has_parent = raw.has_parent[i];
    const char* p = raw.strings.data + raw.str_off[i];
    z.code = next_string(p);
    z.name = next_string(p);
    z.level = next_string(p);
  }
  LoadedTree out;
  out.tree = core::ZoneTree::build(rows);
  out.version = load_version();
  out.statement_snapshot = raw.statement_snapshot;
  return out;
}

namespace {

struct RawBoundaries {
  int n = 0;
  int cap = 0;
  int64* ids = nullptr;
  char** texts = nullptr;  // GeoJSON text of each boundary
  bool statement_snapshot = false;
};

void scan_boundaries(Oid relid, RawBoundaries* out) {
  int a_id = attnum(relid, "id") - 1, a_boundary = attnum(relid, "boundary") - 1;
  int last = Max(a_id, a_boundary) + 1;
  Relation rel = table_open(relid, AccessShareLock);
  Snapshot snap = cache_snapshot(&out->statement_snapshot);
  TableScanDesc scan = table_beginscan(rel, snap, 0, nullptr);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
    slot_getsomeattrs(slot, last);
    if (slot->tts_isnull[a_boundary]) continue;
    if (out->n == out->cap) {
      out->cap = out->cap == 0 ? 256 : out->cap * 2;
      size_t cap = static_cast<size_t>(out->cap);
      out->ids = static_cast<int64*>(out->ids ? repalloc(out->ids, cap * sizeof(int64))
                                              : palloc(cap * sizeof(int64)));
      out->texts = static_cast<char**>(out->texts ? repalloc(out->texts, cap * sizeof(char*))
                                                  : palloc(cap * sizeof(char*)));
    }
    Jsonb* j = DatumGetJsonbP(slot->tts_values[a_boundary]);
    out->ids[out->n] = DatumGetInt64(slot->tts_values[a_id]);
    out->texts[out->n] = JsonbToCString(nullptr, &j->root, static_cast<int>(VARSIZE(j)));
    ++out->n;
  }
  ExecDropSingleTupleTableSlot(slot);
  table_endscan(scan);
  UnregisterSnapshot(snap);
  table_close(rel, NoLock);
}

}  // namespace

LoadedBoundaries load_boundaries(const core::ZoneTree& tree) {
  Oid relid = relations().zones;
  RawBoundaries raw;
  pg_call([relid, &raw] { scan_boundaries(relid, &raw); });
  LoadedBoundaries out;
  out.statement_snapshot = raw.statement_snapshot;
  out.entries.reserve(static_cast<size_t>(raw.n));
  for (int i = 0; i < raw.n; ++i) {
    core::Pos p = tree.find(raw.ids[i]);
    if (p == core::kNoPos) continue;  // read between two changes: the next rebuild has it
    geo::IndexEntry e;
    e.zone_id = raw.ids[i];
    e.depth = tree.depth(p);
    e.shape = geo::parse_boundary(raw.texts[i]);
    out.positions += geo::position_count(e.shape);
    out.entries.push_back(std::move(e));
  }
  return out;
}

namespace {

// One user's row, role and grants, read straight through the three primary-key indexes. A
// prepared SPI query did the same in 39% of a cache miss, most of it executor start-up and
// shutdown for a plan of three index lookups; these reads are what that plan's scans do.
struct RawUser {
  bool found = false;
  char* email = nullptr;  // nullptr for SQL NULL
  char* display_name = nullptr;
  char* role = nullptr;
  bool active = false;
  const char* attributes = nullptr;  // jsonb varlena, detoasted; nullptr for SQL NULL
  int n_permissions = 0;
  char** permissions = nullptr;
  bool sees_all = false;
  int n_grants = 0;
  int64* grants = nullptr;
  bool statement_snapshot = false;
  // In: the names of roles the caller already knows. Out: which of them is the user's, or -1
  // when the role was read (permissions, sees_all above).
  const char* const* known_roles = nullptr;
  int n_known_roles = 0;
  int known_role = -1;
};

// An equality lookup on the first column of a table's primary key.
struct KeyLookup {
  Relation rel = nullptr;
  Relation index = nullptr;
  IndexScanDesc scan = nullptr;
  TupleTableSlot* slot = nullptr;
};

// Opens relid and its primary key and starts a scan for rows whose key column `column` (number
// key_attnum) equals `key` (compared with `eq`, under the index's collation).
void lookup_begin(KeyLookup* l, Oid relid, const char* column, AttrNumber key_attnum,
                  RegProcedure eq, Datum key, Snapshot snap) {
  l->rel = table_open(relid, AccessShareLock);
  Oid index_oid = RelationGetPrimaryKeyIndex(l->rel);
  if (!OidIsValid(index_oid)) {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("zonegate.%s has no primary key", RelationGetRelationName(l->rel)),
                    errhint("run ALTER EXTENSION zonegate UPDATE, or recreate the extension")));
  }
  l->index = index_open(index_oid, AccessShareLock);
  if (l->index->rd_index->indkey.values[0] != key_attnum) {
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("the primary key of zonegate.%s does not start with \"%s\"",
                           RelationGetRelationName(l->rel), column)));
  }
  ScanKeyData sk;
  ScanKeyEntryInitialize(&sk, 0, 1, BTEqualStrategyNumber, InvalidOid, l->index->rd_indcollation[0],
                         eq, key);
  l->scan = index_beginscan(l->rel, l->index, snap, 1, 0);
  index_rescan(l->scan, &sk, 1, nullptr, 0);
  l->slot = table_slot_create(l->rel, nullptr);
}

bool lookup_next(KeyLookup* l) {
  return index_getnext_slot(l->scan, ForwardScanDirection, l->slot);
}

void lookup_end(KeyLookup* l) {
  ExecDropSingleTupleTableSlot(l->slot);
  index_endscan(l->scan);
  index_close(l->index, NoLock);
  table_close(l->rel, NoLock);  // locks are kept until the transaction ends, as the executor does
}

char* text_col(TupleTableSlot* slot, AttrNumber a) {
  bool isnull = false;
  Datum d = slot_getattr(slot, a, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}

// The column numbers a user read needs, looked up once per relations_generation() (a syscache
// lookup each: 11 of them were 2.5% of a miss).
struct UserColumns {
  uint64_t generation = 0;
  AttrNumber user_id, email, display_name, role, active, attributes;  // users
  AttrNumber name, permissions, sees_all;                             // roles
  AttrNumber grant_user_id, zone_id;                                  // user_zones
};
UserColumns g_user_columns;

const UserColumns& user_columns(const Relations& r) {
  UserColumns& c = g_user_columns;
  if (c.generation == relations_generation()) return c;
  c.generation = 0;  // stays invalid if a lookup below errors
  c.user_id = attnum(r.users, "user_id");
  c.email = attnum(r.users, "email");
  c.display_name = attnum(r.users, "display_name");
  c.role = attnum(r.users, "role");
  c.active = attnum(r.users, "active");
  c.attributes = attnum(r.users, "attributes");
  c.name = attnum(r.roles, "name");
  c.permissions = attnum(r.roles, "permissions");
  c.sees_all = attnum(r.roles, "sees_all");
  c.grant_user_id = attnum(r.user_zones, "user_id");
  c.zone_id = attnum(r.user_zones, "zone_id");
  c.generation = relations_generation();
  return c;
}

// Reads the user's row; false when there is none.
bool read_user_row(const Relations& r, const UserColumns& c, Datum uid, Snapshot snap,
                   RawUser* out) {
  KeyLookup l;
  lookup_begin(&l, r.users, "user_id", c.user_id, F_TEXTEQ, uid, snap);
  bool found = lookup_next(&l);
  if (found) {
    bool isnull = false;
    out->email = text_col(l.slot, c.email);
    out->display_name = text_col(l.slot, c.display_name);
    out->role = text_col(l.slot, c.role);
    Datum active = slot_getattr(l.slot, c.active, &isnull);
    out->active = !isnull && DatumGetBool(active);
    Datum attributes = slot_getattr(l.slot, c.attributes, &isnull);
    if (!isnull) {
      // A copy: the slot's buffer pin goes at lookup_end.
      out->attributes = reinterpret_cast<const char*>(DatumGetJsonbPCopy(attributes));
    }
  }
  lookup_end(&l);
  return found && out->role != nullptr;
}

// Reads the user's role; false when it is missing (what the inner join of SQL would drop).
bool read_role(const Relations& r, const UserColumns& c, Snapshot snap, RawUser* out) {
  KeyLookup l;
  lookup_begin(&l, r.roles, "name", c.name, F_TEXTEQ, CStringGetTextDatum(out->role), snap);
  bool found = lookup_next(&l);
  if (found) {
    bool isnull = false;
    Datum perms = slot_getattr(l.slot, c.permissions, &isnull);
    if (!isnull) {
      Datum* elems;
      bool* nulls;
      int n;
      deconstruct_array(DatumGetArrayTypeP(perms), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
                        &n);
      out->permissions = static_cast<char**>(palloc(sizeof(char*) * static_cast<size_t>(n + 1)));
      for (int i = 0; i < n; ++i) {
        if (!nulls[i]) out->permissions[out->n_permissions++] = TextDatumGetCString(elems[i]);
      }
    }
    Datum sees_all = slot_getattr(l.slot, c.sees_all, &isnull);
    out->sees_all = !isnull && DatumGetBool(sees_all);
  }
  lookup_end(&l);
  return found;
}

// Reads the zone ids granted to the user, in key order.
void read_grants(const Relations& r, const UserColumns& c, Datum uid, Snapshot snap, RawUser* out) {
  KeyLookup l;
  lookup_begin(&l, r.user_zones, "user_id", c.grant_user_id, F_TEXTEQ, uid, snap);
  int cap = 0;
  while (lookup_next(&l)) {
    bool isnull = false;
    Datum zone = slot_getattr(l.slot, c.zone_id, &isnull);
    if (isnull) continue;
    if (out->n_grants == cap) {
      cap = cap == 0 ? 16 : cap * 2;
      size_t bytes = sizeof(int64) * static_cast<size_t>(cap);
      out->grants = static_cast<int64*>(out->grants ? repalloc(out->grants, bytes) : palloc(bytes));
    }
    out->grants[out->n_grants++] = DatumGetInt64(zone);
  }
  lookup_end(&l);
}

void read_user(const Relations& r, const char* user_id, RawUser* out) {
  // Locks first, then the snapshot: taking the locks processes pending invalidations, so the
  // snapshot covers every commit this backend has been told of (docs/ARCHITECTURE.md).
  LockRelationOid(r.users, AccessShareLock);
  LockRelationOid(r.roles, AccessShareLock);
  LockRelationOid(r.user_zones, AccessShareLock);
  const UserColumns& c = user_columns(r);  // after the locks: a renamed column is seen
  Snapshot snap = cache_snapshot(&out->statement_snapshot);
  Datum uid = CStringGetTextDatum(user_id);
  out->found = read_user_row(r, c, uid, snap, out);
  if (out->found) {
    for (int i = 0; i < out->n_known_roles && out->known_role < 0; ++i) {
      if (strcmp(out->known_roles[i], out->role) == 0) out->known_role = i;
    }
    if (out->known_role < 0) out->found = read_role(r, c, snap, out);
  }
  if (out->found) read_grants(r, c, uid, snap, out);
  UnregisterSnapshot(snap);
}

}  // namespace

std::optional<core::UserRecord> load_user(const std::string& user_id, bool* statement_snapshot,
                                          std::vector<RoleInfo>* known_roles) {
  const Relations r = relations();  // a copy: invalidations during the read may refresh it
  const char* uid = user_id.c_str();
  std::vector<const char*> names;
  if (known_roles != nullptr) {
    names.reserve(known_roles->size());
    for (const RoleInfo& role : *known_roles)
      names.push_back(role.name.c_str());
  }
  RawUser raw;
  raw.known_roles = names.data();
  raw.n_known_roles = static_cast<int>(names.size());
  pg_call([&r, uid, &raw] { read_user(r, uid, &raw); });
  *statement_snapshot = raw.statement_snapshot;
  if (!raw.found) return std::nullopt;
  core::UserRecord u;
  u.user_id = user_id;
  if (raw.email) u.email = raw.email;
  if (raw.display_name) u.display_name = raw.display_name;
  u.role = raw.role ? raw.role : "";
  u.active = raw.active;
  // Kept as jsonb; the cache prints it only for a JSON text document.
  u.attributes_json.clear();
  if (raw.attributes) u.attributes_jsonb.assign(raw.attributes, VARSIZE(raw.attributes));
  if (raw.known_role >= 0) {
    const RoleInfo& role = (*known_roles)[static_cast<size_t>(raw.known_role)];
    u.permissions = role.permissions;
    u.sees_all = role.sees_all;
  } else {
    for (int i = 0; i < raw.n_permissions; ++i)
      u.permissions.emplace_back(raw.permissions[i]);
    u.sees_all = raw.sees_all;
    if (known_roles != nullptr && known_roles->size() < kKnownRolesMax) {
      known_roles->push_back(RoleInfo{u.role, u.permissions, u.sees_all});
    }
  }
  u.grants.assign(raw.grants, raw.grants + raw.n_grants);
  return u;
}

}  // namespace zonegate::pg
