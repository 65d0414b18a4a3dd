// Signed change notifications (docs/SECURITY.md, "The change channel"): the key's random bytes,
// the key as last committed, HMAC-SHA256 through PostgreSQL's own common/hmac.h (no crypto of
// ours), and the once-per-transaction check the row triggers use. zonegate._notify() (SQL) puts
// them together.
#include <cstdint>
#include <string>
#include <unordered_map>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/notify.hpp"

namespace {

using namespace zonegate;

constexpr int kKeyBytes = 32;

// Bodies sent in the current transaction, each with the subtransaction that sent it (moved to
// the parent when that one commits, forgotten when it aborts: its NOTIFY is discarded too).
// Heap-allocated once and never freed: nothing runs in static constructors or destructors.
std::unordered_map<std::string, SubTransactionId>* g_sent = nullptr;

// Forgets every body at the end of the top-level transaction.
void xact_callback(XactEvent event, void*) {
  if (g_sent == nullptr || g_sent->empty()) return;
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    pg::invoke_cpp_callback(
        "forgetting sent notifications", [](void*) { g_sent->clear(); }, nullptr);
  }
}

struct SubXactChange {
  SubXactEvent event;
  SubTransactionId mine;
  SubTransactionId parent;
};

// A committed subtransaction's bodies belong to its parent now; an aborted one's were not sent.
void subxact_callback(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
  if (g_sent == nullptr || g_sent->empty()) return;
  if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB) return;
  SubXactChange change{event, mine, parent};
  pg::invoke_cpp_callback(
      "tracking sent notifications",
      [](void* arg) {
        const auto& c = *static_cast<const SubXactChange*>(arg);
        for (auto it = g_sent->begin(); it != g_sent->end();) {
          if (it->second != c.mine) {
            ++it;
          } else if (c.event == SUBXACT_EVENT_ABORT_SUB) {
            it = g_sent->erase(it);
          } else {
            it->second = c.parent;
            ++it;
          }
        }
      },
      &change);
}

// zonegate._notify_random_key() → bytea: 32 bytes from pg_strong_random() (the OS CSPRNG or
// OpenSSL, as Postgres was built), the key that signs notifications.
Datum notify_random_key_body(FunctionCallInfo) {
  return pg::pg_call([] {
    auto* out = static_cast<bytea*>(palloc(VARHDRSZ + kKeyBytes));
    SET_VARSIZE(out, VARHDRSZ + kKeyBytes);
    if (!pg_strong_random(VARDATA(out), kKeyBytes)) {
      ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                      errmsg("could not generate a random key for zonegate notifications")));
    }
    return PointerGetDatum(out);
  });
}

// zonegate._notify_current_key() → bytea: the key row as last committed, NULL when there is none.
// Read under the latest snapshot once ACCESS SHARE on the table is held (held to the end of the
// transaction, which is what rotate_notify_key() waits for), not under the transaction's
// snapshot: a REPEATABLE READ transaction that began before a rotation committed must still sign
// with the new key, or proxies, which have moved to it, would refuse its notification.
Datum notify_current_key_body(FunctionCallInfo fcinfo) {
  auto* key = pg::pg_call([] {
    RangeVar* rv = makeRangeVar(pstrdup("zonegate"), pstrdup("_notify_key"), -1);
    Oid relid = RangeVarGetRelid(rv, AccessShareLock, false);
    // The scan below checks no privilege itself.
    if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK) {
      aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
    }
    AttrNumber attnum = get_attnum(relid, "key");
    if (attnum == InvalidAttrNumber) elog(ERROR, "zonegate._notify_key has no column key");
    Relation rel = table_open(relid, NoLock);
    Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
    TableScanDesc scan = table_beginscan(rel, snap, 0, nullptr);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    bytea* found = nullptr;
    if (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
      bool isnull = false;
      Datum d = slot_getattr(slot, attnum, &isnull);
      if (!isnull) found = DatumGetByteaPCopy(d);
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    UnregisterSnapshot(snap);
    table_close(rel, NoLock);
    return found;
  });
  if (key == nullptr) {
    fcinfo->isnull = true;
    return 0;
  }
  return PointerGetDatum(key);
}

struct Bytes {
  const uint8* data;
  size_t len;
};

// Argument n (bytea or text) as bytes, detoasted.
Bytes bytes_arg(FunctionCallInfo fcinfo, int n) {
  return pg::pg_call([fcinfo, n] {
    struct varlena* v = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(n));
    return Bytes{reinterpret_cast<const uint8*>(VARDATA_ANY(v)), VARSIZE_ANY_EXHDR(v)};
  });
}

// zonegate._hmac_sha256(key bytea, message text) → text: the 64 lowercase hex digits of
// HMAC-SHA256(key, message), computed by Postgres' pg_hmac_*.
Datum hmac_sha256_body(FunctionCallInfo fcinfo) {
  Bytes key = bytes_arg(fcinfo, 0);
  Bytes msg = bytes_arg(fcinfo, 1);
  uint8 mac[PG_SHA256_DIGEST_LENGTH];
  pg::pg_call([&key, &msg, &mac] {
    pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
    if (ctx == nullptr) {
      ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
    }
    if (pg_hmac_init(ctx, key.data, key.len) < 0 || pg_hmac_update(ctx, msg.data, msg.len) < 0 ||
        pg_hmac_final(ctx, mac, sizeof mac) < 0) {
      char* why = pstrdup(pg_hmac_error(ctx));
      pg_hmac_free(ctx);
      ereport(ERROR,
              (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not compute HMAC-SHA256: %s", why)));
    }
    pg_hmac_free(ctx);
  });
  static const char kHex[] = "0123456789abcdef";
  std::string hex(2 * sizeof mac, '0');
  for (size_t i = 0; i < sizeof mac; ++i) {
    hex[2 * i] = kHex[mac[i] >> 4];
    hex[2 * i + 1] = kHex[mac[i] & 0xf];
  }
  return pg::text_datum(hex);
}

// zonegate._notify_first_in_xact(body text) → true the first time this transaction asks about
// body (and remembers it), false after that.
Datum notify_first_in_xact_body(FunctionCallInfo fcinfo) {
  std::string body = pg::text_arg(fcinfo, 0);
  if (g_sent == nullptr) g_sent = new std::unordered_map<std::string, SubTransactionId>();
  SubTransactionId sub = pg::pg_call([] { return GetCurrentSubTransactionId(); });
  bool inserted = g_sent->emplace(std::move(body), sub).second;
  return BoolGetDatum(inserted);
}

}  // namespace

namespace zonegate::pg {

void notify_init() {
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

}  // namespace zonegate::pg

ZONEGATE_SQL_FUNCTION(zonegate_notify_random_key, notify_random_key_body)
ZONEGATE_SQL_FUNCTION(zonegate_notify_current_key, notify_current_key_body)
ZONEGATE_SQL_FUNCTION(zonegate_hmac_sha256, hmac_sha256_body)
ZONEGATE_SQL_FUNCTION(zonegate_notify_first_in_xact, notify_first_in_xact_body)
