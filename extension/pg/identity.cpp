// The identity of the current request and the trust boundary around it; see identity.hpp and
// docs/SECURITY.md. This runs on the per-row RLS path, so everything is read without allocation
// and without a catalog lookup once warm: the trust decision is cached per session user until a
// role or a membership changes, the two settings are read straight from their GUC records.
#include "pg/identity.hpp"

#include <optional>
#include <string>

#include "core/context.hpp"
#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "access/parallel.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

#include "pg/guard.hpp"

namespace zonegate::pg {

namespace {

constexpr const char* kUserIdGuc = "zonegate.user_id";
constexpr const char* kClaimsGuc = "request.jwt.claims";
constexpr const char* kAuthenticatorRole = "zonegate_authenticator";

char* g_user_id = nullptr;

// Where a GUC record was last found in Postgres' sorted array of them. The array moves when a
// setting is added and a placeholder record is freed when a library defines it for real, so the
// cached pointer is used only while the array, its length and the slot still match.
struct GucSlot {
  const char* name;
  config_generic** array = nullptr;
  int count = -1;
  int index = -1;
  config_generic* record = nullptr;
};
GucSlot g_user_id_slot{kUserIdGuc};
GucSlot g_claims_slot{kClaimsGuc};

// guc.c's guc_name_compare: ASCII case-insensitive, the order the array is sorted in.
int guc_name_compare(const char* a, const char* b) {
  for (;; ++a, ++b) {
    unsigned char ca = static_cast<unsigned char>(*a), cb = static_cast<unsigned char>(*b);
    if (ca >= 'A' && ca <= 'Z') ca += 'a' - 'A';
    if (cb >= 'A' && cb <= 'Z') cb += 'a' - 'A';
    if (ca != cb || ca == 0) return static_cast<int>(ca) - static_cast<int>(cb);
  }
}

// The GUC record named slot->name, or nullptr while no such setting exists. Plain memory reads:
// never errors.
config_generic* find_guc(GucSlot* slot) {
  config_generic** vars = get_guc_variables();
  int n = GetNumConfigOptions();
  if (vars == slot->array && n == slot->count &&
      (slot->record == nullptr || vars[slot->index] == slot->record)) {
    return slot->record;
  }
  slot->array = vars;
  slot->count = n;
  slot->index = -1;
  slot->record = nullptr;
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = guc_name_compare(vars[mid]->name, slot->name);
    if (c == 0) {
      slot->index = mid;
      slot->record = vars[mid];
      break;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return slot->record;
}

// A string setting's current value ("" when unset or not a string setting).
const char* guc_value(const config_generic* g) {
  if (g == nullptr || g->vartype != PGC_STRING) return "";
  const char* v = *reinterpret_cast<const config_string*>(g)->variable;
  return v == nullptr ? "" : v;
}

// Whether the current value was set for this transaction only: SET LOCAL, set_config(..., true)
// or a function's SET clause, which all end with the transaction (or the function).
bool set_locally(const config_generic* g) {
  if (g == nullptr || g->stack == nullptr) return false;
  GucStackState st = g->stack->state;
  return st == GUC_LOCAL || st == GUC_SET_LOCAL || st == GUC_SAVE;
}

// The trust decision, cached for one session user and one generation of roles.
uint64_t g_roles_generation = 1;
struct Trust {
  Oid session_user = InvalidOid;
  uint64_t generation = 0;
  bool trusted = false;
};
Trust g_trust;

void roles_changed(Datum, int, uint32) {
  ++g_roles_generation;
}

bool compute_trust(Oid session_user) {
  return pg_call([session_user] {
    if (superuser_arg(session_user)) return true;
    Oid role = get_role_oid(kAuthenticatorRole, true);
    return OidIsValid(role) && is_member_of_role(session_user, role);
  });
}

// The claims' subject, parsed once per distinct claims text.
struct ClaimsCache {
  std::string text;
  std::optional<std::string> sub;
  bool valid = false;
};
ClaimsCache g_claims_cache;

const std::optional<std::string>& claims_sub(const char* claims) {
  ClaimsCache& c = g_claims_cache;
  if (!c.valid || c.text != claims) {
    c.valid = false;
    c.text = claims;
    c.sub = core::claims_subject(c.text);  // throws for ambiguous claims; stays invalid then
    c.valid = true;
  }
  return c.sub;
}

[[noreturn]] void refuse(const char* setting) {
  const char* user = pg_call([] { return GetUserNameFromId(GetSessionUserId(), true); });
  throw Error(
      "42501",
      std::string(setting) + " is not honoured for session user \"" + (user ? user : "?") + "\"",
      "only superusers and members of zonegate_authenticator (the login role of "
      "zonegate-proxy or PostgREST) may choose the user a transaction runs for",
      "GRANT zonegate_authenticator TO the proxy's login role; see docs/SECURITY.md");
}

}  // namespace

void identity_init() {
  DefineCustomStringVariable(
      kUserIdGuc, "The user on whose behalf this transaction runs.",
      "Read by zonegate.current_user_id(), current_zones() and can_access_current(), and honoured "
      "only for superusers and members of zonegate_authenticator. A value set for the "
      "transaction (SET LOCAL, set_config(..., true)) hides any set for the session; when it is "
      "empty the \"sub\" claim of request.jwt.claims (PostgREST) is used.",
      &g_user_id, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
  CacheRegisterSyscacheCallback(AUTHOID, roles_changed, (Datum)0);
  CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, roles_changed, (Datum)0);
}

bool session_is_trusted() {
  Oid session_user = GetSessionUserId();
  if (g_trust.session_user != session_user || g_trust.generation != g_roles_generation) {
    uint64_t generation = g_roles_generation;  // a change during the lookup forces another
    bool trusted = compute_trust(session_user);
    g_trust = Trust{session_user, generation, trusted};
  }
  return g_trust.trusted;
}

bool current_identity(std::string_view* out) {
  // zonegate.user_id is our own setting: its record is defined once and never replaced, so it
  // is looked up once. The proxy's case (set for the transaction) needs nothing else: a local
  // value hides the claims and every session value.
  static const config_generic* uid_rec = nullptr;
  if (uid_rec == nullptr) uid_rec = find_guc(&g_user_id_slot);
  const char* uid = g_user_id != nullptr ? g_user_id : "";  // the variable behind uid_rec
  bool uid_local = set_locally(uid_rec);
  if (uid[0] != '\0' && uid_local && !IsParallelWorker()) {
    if (!session_is_trusted()) refuse(kUserIdGuc);
    *out = std::string_view(uid);
    return true;
  }
  const config_generic* claims_rec = find_guc(&g_claims_slot);
  const char* claims = guc_value(claims_rec);
  if (uid[0] == '\0' && claims[0] == '\0') return false;  // the common untrusted case: nothing

  // Transaction-local values first; anything set for the transaction, even empty, hides what was
  // set for the session (a session-level SET that outlived its client behind a pooler).
  bool claims_local = set_locally(claims_rec);
  const char* source = nullptr;  // the setting the identity comes from
  bool from_claims = false;
  if (uid_local && uid[0] != '\0') {
    source = kUserIdGuc;
  } else if (claims_local && claims[0] != '\0') {
    source = kClaimsGuc;
    from_claims = true;
  } else if (uid_local || claims_local) {
    return false;
  } else if (uid[0] != '\0') {
    source = kUserIdGuc;
  } else {
    source = kClaimsGuc;
    from_claims = true;
  }
  const std::optional<std::string>* sub = nullptr;
  if (from_claims || (IsParallelWorker() && claims[0] != '\0')) sub = &claims_sub(claims);
  // Claims without a subject (an anonymous request) choose nobody: nothing to refuse.
  if (from_claims && !*sub) return false;
  if (!session_is_trusted()) refuse(source);

  // A parallel worker receives the leader's settings without their levels, so it cannot tell a
  // local value from a session one: it refuses to choose between two that disagree.
  if (IsParallelWorker() && !from_claims && sub != nullptr && (!*sub || **sub != uid)) {
    throw Error("55000", "zonegate.user_id and request.jwt.claims name different users",
                "a parallel worker cannot tell which was set for the transaction",
                "set both for the transaction (set_config(..., true)), or SET "
                "max_parallel_workers_per_gather = 0");
  }
  if (!from_claims) {
    *out = std::string_view(uid);
    return true;
  }
  *out = **sub;
  return true;
}

}  // namespace zonegate::pg
