// Table reads; see loader.hpp. Postgres work happens in C-style lambdas under pg_call that copy
// rows into palloc'd arrays; the C++ structures are built afterwards, outside any PG_TRY.
#include "pg/loader.hpp"

#include <cstring>
#include <string_view>
#include <vector>

extern "C" {
#include "postgres.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
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

void grow(RawZones* z) {
  int cap = z->cap == 0 ? 4096 : z->cap * 2;
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
                    errmsg("zonegate.zones has no column \"%s\"", name)));
  }
  return a;
}

void scan_zones(Oid relid, RawZones* out) {
  int a_id = attnum(relid, "id") - 1, a_parent = attnum(relid, "parent_id") - 1,
      a_code = attnum(relid, "code") - 1, a_name = attnum(relid, "name") - 1,
      a_level = attnum(relid, "level") - 1;
  int last = Max(Max(Max(a_id, a_parent), Max(a_code, a_name)), a_level) + 1;
  initStringInfo(&out->strings);
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

SPIPlanPtr g_user_plan = nullptr;

constexpr const char* kUserQuery =
    "SELECT u.email, u.display_name, u.role, u.active, u.attributes::pg_catalog.text, "
    "       r.permissions, r.sees_all, "
    "       ARRAY(SELECT g.zone_id FROM zonegate.user_zones g "
    "             WHERE g.user_id OPERATOR(pg_catalog.=) u.user_id) "
    "FROM zonegate.users u JOIN zonegate.roles r ON r.name OPERATOR(pg_catalog.=) u.role "
    "WHERE u.user_id OPERATOR(pg_catalog.=) $1";

struct RawUser {
  bool found = false;
  char* email = nullptr;  // nullptr for SQL NULL
  char* display_name = nullptr;
  char* role = nullptr;
  bool active = false;
  char* attributes = nullptr;
  int n_permissions = 0;
  char** permissions = nullptr;
  bool sees_all = false;
  int n_grants = 0;
  int64* grants = nullptr;
};

char* copy_text_col(HeapTuple tup, TupleDesc td, int col) {
  bool isnull = false;
  Datum d = SPI_getbinval(tup, td, col, &isnull);
  return isnull ? nullptr : TextDatumGetCString(d);
}

void query_user(const char* user_id, Oid owner, RawUser* out) {
  MemoryContext caller = CurrentMemoryContext;
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  // Internal reads run as the tables' owner, so callers need no SELECT privilege on them.
  SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
  bool statement_snapshot = false;
  Snapshot snap = nullptr;
  PG_TRY();
  {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "zonegate: SPI_connect failed");
    if (g_user_plan == nullptr) {
      Oid argtypes[1] = {TEXTOID};
      SPIPlanPtr plan = SPI_prepare(kUserQuery, 1, argtypes);
      if (plan == nullptr) elog(ERROR, "zonegate: cannot prepare the user query");
      SPI_keepplan(plan);
      g_user_plan = plan;
    }
    snap = cache_snapshot(&statement_snapshot);
    Datum args[1] = {CStringGetTextDatum(user_id)};
    int rc =
        SPI_execute_snapshot(g_user_plan, args, nullptr, snap, InvalidSnapshot, true, false, 1);
    if (rc != SPI_OK_SELECT)
      elog(ERROR, "zonegate: user query failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 1) {
      HeapTuple tup = SPI_tuptable->vals[0];
      TupleDesc td = SPI_tuptable->tupdesc;
      MemoryContext spi = MemoryContextSwitchTo(caller);  // results outlive SPI_finish
      out->found = true;
      out->email = copy_text_col(tup, td, 1);
      out->display_name = copy_text_col(tup, td, 2);
      out->role = copy_text_col(tup, td, 3);
      bool isnull = false;
      out->active = DatumGetBool(SPI_getbinval(tup, td, 4, &isnull));
      out->attributes = copy_text_col(tup, td, 5);
      Datum perms = SPI_getbinval(tup, td, 6, &isnull);
      if (!isnull) {
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(DatumGetArrayTypeP(perms), TEXTOID, -1, false, TYPALIGN_INT, &elems,
                          &nulls, &n);
        out->permissions = static_cast<char**>(palloc(sizeof(char*) * static_cast<size_t>(n + 1)));
        for (int i = 0; i < n; ++i) {
          if (!nulls[i]) out->permissions[out->n_permissions++] = TextDatumGetCString(elems[i]);
        }
      }
      out->sees_all = DatumGetBool(SPI_getbinval(tup, td, 7, &isnull));
      Datum grants = SPI_getbinval(tup, td, 8, &isnull);
      if (!isnull) {
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(DatumGetArrayTypeP(grants), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
                          &elems, &nulls, &n);
        out->grants = static_cast<int64*>(palloc(sizeof(int64) * static_cast<size_t>(n + 1)));
        for (int i = 0; i < n; ++i) {
          if (!nulls[i]) out->grants[out->n_grants++] = DatumGetInt64(elems[i]);
        }
      }
      MemoryContextSwitchTo(spi);
    }
    UnregisterSnapshot(snap);
    snap = nullptr;
    SPI_finish();
  }
  PG_FINALLY();
  { SetUserIdAndSecContext(save_user, save_sec); }
  PG_END_TRY();
}

}  // namespace

std::optional<core::UserRecord> load_user(const std::string& user_id) {
  Oid owner = relations().owner;
  const char* uid = user_id.c_str();
  RawUser raw;
  pg_call([uid, owner, &raw] { query_user(uid, owner, &raw); });
  if (!raw.found) return std::nullopt;
  core::UserRecord u;
  u.user_id = user_id;
  if (raw.email) u.email = raw.email;
  if (raw.display_name) u.display_name = raw.display_name;
  u.role = raw.role ? raw.role : "";
  u.active = raw.active;
  u.attributes_json = raw.attributes ? raw.attributes : "{}";
  for (int i = 0; i < raw.n_permissions; ++i)
    u.permissions.emplace_back(raw.permissions[i]);
  u.sees_all = raw.sees_all;
  u.grants.assign(raw.grants, raw.grants + raw.n_grants);
  return u;
}

}  // namespace zonegate::pg
