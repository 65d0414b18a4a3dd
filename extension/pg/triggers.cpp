// Functions the schema's triggers and constraints call: relcache invalidation of a changed table
// (the transactional part of cache coherence) and boundary validation.
#include <string>

#include "core/error.hpp"
#include "core/geojson.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
}

#include "pg/guard.hpp"

namespace {

using namespace zonegate;

// zonegate._invalidate(relid oid): queue a relcache invalidation for a changed zonegate table.
// Postgres delivers it to this backend at the end of the command and to every other backend at
// commit; an abort discards it (and replays it locally to drop what this transaction built).
Datum invalidate_body(FunctionCallInfo fcinfo) {
  Oid relid = PG_GETARG_OID(0);
  pg::pg_call([relid] { CacheInvalidateRelcacheByRelid(relid); });
  return 0;
}

// zonegate._check_boundary(zone_id bigint, boundary jsonb) → true, or an error naming the zone
// and what is wrong with its GeoJSON. Used by the zones_boundary_valid CHECK constraint.
Datum check_boundary_body(FunctionCallInfo fcinfo) {
  // STRICT in SQL; checked here too, since a NULL read as a pointer would take the cluster down.
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) {
    fcinfo->isnull = true;
    return 0;
  }
  int64_t zone = PG_GETARG_INT64(0);
  struct Text {
    const char* data;
  };
  Text text = pg::pg_call([fcinfo] {
    Jsonb* j = PG_GETARG_JSONB_P(1);
    return Text{JsonbToCString(nullptr, &j->root, static_cast<int>(VARSIZE(j)))};
  });
  try {
    geo::parse_boundary(text.data);
  } catch (const Error& e) {
    throw Error(e.sqlstate(), "invalid boundary for zone " + std::to_string(zone) + ": " + e.what(),
                {}, "boundary must be a GeoJSON Polygon or MultiPolygon (RFC 7946, lon/lat)");
  }
  return BoolGetDatum(true);
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_invalidate, invalidate_body)
ZONEGATE_SQL_FUNCTION(zonegate_check_boundary, check_boundary_body)
