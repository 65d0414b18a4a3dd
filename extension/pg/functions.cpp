// The SQL functions (docs/API.md, "Functions"; zone_at excepted): thin bodies over the cache. Each
// body starts with cache_begin_call() so the statement sees every committed change.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/scope.hpp"
#include "core/spatial_index.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include "pg/cache.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"

namespace {

using namespace zonegate;
using namespace zonegate::pg;

Datum null_result(FunctionCallInfo fcinfo) {
  fcinfo->isnull = true;
  return 0;
}

// zonegate.user_context(user_id text) → jsonb, NULL for unknown or inactive users.
Datum user_context_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  const UserEntry& e = cache_user(text_arg(fcinfo, 0), UserNeed::kJsonb);
  if (!e.visible) return null_result(fcinfo);
  return varlena_copy(e.context_jsonb);
}

// zonegate.user_context_json(user_id text) → json: the same document as text, in a fixed key
// order, without jsonb's binary round trip (what zonegate-proxy serves).
Datum user_context_json_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  const UserEntry& e = cache_user(text_arg(fcinfo, 0), UserNeed::kJson);
  if (!e.visible) return null_result(fcinfo);
  return text_datum(e.context_json);
}

// zonegate.visible_zones(user_id text) → bigint[], sorted; empty for unknown/inactive users.
Datum visible_zones_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  const UserEntry& e = cache_user(text_arg(fcinfo, 0));
  if (!e.visible) return int8_array_datum({});
  return int8_array_datum(e.scope.sorted_ids(*e.tree));
}

// zonegate.can_access(user_id text, zone_id bigint) → boolean.
Datum can_access_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  int64_t zone = PG_GETARG_INT64(1);
  const UserEntry& e = cache_user(text_arg(fcinfo, 0));
  if (!e.visible) return BoolGetDatum(false);
  return BoolGetDatum(e.scope.contains(e.tree->find(zone)));
}

// zonegate.filter_zones(user_id text, requested bigint[]) → bigint[]: each requested zone's
// subtree intersected with the user's scope; a NULL or empty request means everything visible.
Datum filter_zones_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  if (arg_is_null(fcinfo, 0)) return int8_array_datum({});
  std::string uid = text_arg(fcinfo, 0);
  // NULL elements are dropped; a request with nothing left means "everything visible".
  std::vector<int64_t> requested;
  if (!arg_is_null(fcinfo, 1)) requested = int8_array_arg(fcinfo, 1);
  bool request_all = requested.empty();
  const UserEntry& e = cache_user(uid);
  if (!e.visible) return int8_array_datum({});
  return int8_array_datum(core::filter_zones(*e.tree, e.scope, requested, request_all));
}

// zonegate.zone_path(zone_id bigint) → bigint[] root..zone, NULL for an unknown zone.
Datum zone_path_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  const core::ZoneTree& tree = cache_tree();
  core::Pos p = tree.find(PG_GETARG_INT64(0));
  if (p == core::kNoPos) return null_result(fcinfo);
  return int8_array_datum(tree.path(p));
}

// Checks a coordinate: NaN and infinities are errors; out-of-range values are in no zone.
void check_coordinate(double v, const char* what) {
  if (std::isnan(v) || std::isinf(v)) {
    throw Error(sqlstate::kInvalidParameterValue, std::string(what) +
                                                      " must be a finite number, got " +
                                                      (std::isnan(v) ? "NaN" : "infinity"));
  }
}

// zonegate.zone_at(lon float8, lat float8) → bigint: the deepest zone whose boundary covers the
// point (boundary points count as inside), NULL outside every zone.
Datum zone_at_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  double lon = PG_GETARG_FLOAT8(0), lat = PG_GETARG_FLOAT8(1);
  check_coordinate(lon, "longitude");
  check_coordinate(lat, "latitude");
  std::optional<int64_t> z = cache_spatial().zone_at(lon, lat);
  if (!z) return null_result(fcinfo);
  return Int64GetDatum(*z);
}

// zonegate.zone_at(lons float8[], lats float8[]) → bigint[]: zone_at for each pair, NULL where
// no zone covers the point; one call for a batch of points.
Datum zone_at_many_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  std::vector<double> lons = float8_array_arg(fcinfo, 0), lats = float8_array_arg(fcinfo, 1);
  if (lons.size() != lats.size()) {
    throw Error(sqlstate::kInvalidParameterValue,
                "longitude and latitude arrays differ in length (" + std::to_string(lons.size()) +
                    " and " + std::to_string(lats.size()) + ")");
  }
  const geo::SpatialIndex& index = cache_spatial();
  std::vector<std::optional<int64_t>> out(lons.size());
  for (size_t i = 0; i < lons.size(); ++i) {
    if (std::isnan(lons[i]) || std::isnan(lats[i])) continue;  // NULL elements arrive as NaN
    out[i] = index.zone_at(lons[i], lats[i]);
  }
  return nullable_int8_array_datum(out);
}

// zonegate.current_user_id() → text: the identity of pg/identity.hpp (zonegate.user_id, else
// request.jwt.claims ->> 'sub', from a trusted session), NULL without one.
Datum current_user_id_body(FunctionCallInfo fcinfo) {
  std::string_view uid;
  if (!current_identity(&uid)) return null_result(fcinfo);
  return text_datum(uid);
}

// zonegate.current_zones() → bigint[]: visible_zones(current_user_id()), empty without a user.
Datum current_zones_body(FunctionCallInfo) {
  cache_begin_call();
  const UserEntry* e = cache_current_user();
  if (e == nullptr || !e->visible) return int8_array_datum({});
  return int8_array_datum(e->scope.sorted_ids(*e->tree));
}

// zonegate.can_access_current(zone_id bigint) → boolean; the per-row RLS check. No allocation
// when the current user's entry is cached.
Datum can_access_current_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  int64_t zone = PG_GETARG_INT64(0);
  const UserEntry* e = cache_current_user();
  if (e == nullptr || !e->visible) return BoolGetDatum(false);
  return BoolGetDatum(e->scope.contains(e->tree->find(zone)));
}

// zonegate.cache_stats() → one row per cache ('zones', 'users').
Datum cache_stats_body(FunctionCallInfo fcinfo) {
  cache_begin_call();
  CacheStats st = cache_stats();
  struct Row {
    const char* name;
    CacheCounters c;
    int64_t entries;
    int64_t bytes;
  };
  Row rows[3] = {{"zones", st.zones, st.zone_count, st.zone_bytes},
                 {"users", st.users, st.user_entries, st.user_bytes},
                 {"spatial", st.spatial, st.spatial_zones, st.spatial_bytes}};
  pg_call([fcinfo, &rows] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const Row& r : rows) {
      Datum values[9];
      bool nulls[9] = {false};
      values[0] = CStringGetTextDatum(r.name);
      values[1] = Int64GetDatum(r.c.hits);
      values[2] = Int64GetDatum(r.c.misses);
      values[3] = Int64GetDatum(r.c.invalidations);
      values[4] = Int64GetDatum(r.c.rebuilds);
      values[5] = Int64GetDatum(r.entries);
      values[6] = Int64GetDatum(r.bytes);
      values[7] = Float8GetDatum(r.c.last_rebuild_ms);
      values[8] = TimestampTzGetDatum(r.c.last_rebuild_at);
      nulls[8] = r.c.last_rebuild_at == 0;
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return 0;
}

// zonegate.cache_reset(): drops this backend's cache.
Datum cache_reset_body(FunctionCallInfo) {
  cache_reset();
  return 0;
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_user_context, user_context_body)
ZONEGATE_SQL_FUNCTION(zonegate_user_context_json, user_context_json_body)
ZONEGATE_SQL_FUNCTION(zonegate_visible_zones, visible_zones_body)
ZONEGATE_SQL_FUNCTION(zonegate_can_access, can_access_body)
ZONEGATE_SQL_FUNCTION_TAKING_NULLS(zonegate_filter_zones, filter_zones_body)
ZONEGATE_SQL_FUNCTION(zonegate_zone_path, zone_path_body)
ZONEGATE_SQL_FUNCTION(zonegate_zone_at, zone_at_body)
ZONEGATE_SQL_FUNCTION(zonegate_zone_at_many, zone_at_many_body)
ZONEGATE_SQL_FUNCTION(zonegate_current_user_id, current_user_id_body)
ZONEGATE_SQL_FUNCTION(zonegate_current_zones, current_zones_body)
ZONEGATE_SQL_FUNCTION(zonegate_can_access_current, can_access_current_body)
ZONEGATE_SQL_FUNCTION(zonegate_cache_stats, cache_stats_body)
ZONEGATE_SQL_FUNCTION(zonegate_cache_reset, cache_reset_body)
