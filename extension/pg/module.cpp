// Module entry: the magic block, _PG_init and zonegate.version().
#include "core/version.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
}

#include "pg/cache.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/notify.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

// Registers each module's GUCs and callbacks; no work happens in static constructors.
void _PG_init(void) {
  zonegate::pg::identity_init();  // first: cache_init reserves the zonegate.* prefix
  zonegate::pg::cache_init();
  zonegate::pg::notify_init();
}
}

namespace {

// zonegate.version(): the library version, which may run ahead of the installed SQL version.
Datum version_body(FunctionCallInfo) {
  return zonegate::pg::pg_call([] { return PointerGetDatum(cstring_to_text(ZONEGATE_VERSION)); });
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_version, version_body)
