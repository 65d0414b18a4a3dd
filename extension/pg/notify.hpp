// Signed change notifications (docs/SECURITY.md, "The change channel"): the SQL-callable pieces
// zonegate._notify() is made of live in notify.cpp; this is their module's init.
#pragma once

namespace zonegate::pg {

// Registers the transaction callbacks of the once-per-transaction check; called from _PG_init.
void notify_init();

}  // namespace zonegate::pg
