// Table OID lookups; see catalog.hpp.
#include "pg/catalog.hpp"

#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
}

#include "pg/guard.hpp"

namespace zonegate::pg {

namespace {

Relations g_rel;
bool g_valid = false;
uint64_t g_generation = 1;

}  // namespace

const Relations& relations() {
  if (g_valid) return g_rel;
  Relations r = pg_call([] {
    Relations out;
    out.schema = get_namespace_oid("zonegate", true);
    if (out.schema == InvalidOid) return out;
    out.zones = get_relname_relid("zones", out.schema);
    out.roles = get_relname_relid("roles", out.schema);
    out.users = get_relname_relid("users", out.schema);
    out.user_zones = get_relname_relid("user_zones", out.schema);
    out.change_seq = get_relname_relid("change_seq", out.schema);
    return out;
  });
  if (r.schema == InvalidOid || r.zones == InvalidOid || r.roles == InvalidOid ||
      r.users == InvalidOid || r.user_zones == InvalidOid || r.change_seq == InvalidOid) {
    throw Error(
        "55000",
        "the zonegate extension is not installed in this database, or its tables are missing", {},
        "run CREATE EXTENSION zonegate (or ALTER EXTENSION zonegate UPDATE)");
  }
  g_rel = r;
  g_valid = true;
  return g_rel;
}

void forget_relations() {
  g_valid = false;
  ++g_generation;
}

uint64_t relations_generation() {
  return g_generation;
}

char which_relation(Oid relid) {
  // Compared against the last OIDs looked up, valid or not: after one of our tables is
  // invalidated the others' messages must still be recognised (DROP EXTENSION sends several).
  if (relid == InvalidOid) return 0;
  if (relid == g_rel.zones) return 'z';
  if (relid == g_rel.roles) return 'r';
  if (relid == g_rel.users) return 'u';
  if (relid == g_rel.user_zones) return 'g';
  return 0;
}

}  // namespace zonegate::pg
