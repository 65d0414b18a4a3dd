// What /rpc may call: the allow-listed functions as pg_proc describes them (argument names and
// types, defaults, volatility, return shape, owner), loaded at start and again on the signed
// RELOAD_SCHEMA notification zonegate.reload_schema() sends; which overloads are refused (an
// untrusted owner) and which shared cache scopes are (a body that reads the caller's identity).
// Shared read-only by all workers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/rpc_function.hpp"
#include "api/sql_text.hpp"
#include "config/config.hpp"
#include "pg/job.hpp"

namespace zonegate::api {

// An allow-listed overload that is not callable, and why: logged at every load and listed in
// /health (docs/SECURITY.md, "/rpc").
struct RefusedFunction {
  std::string function;  // schema.name(types)
  std::string owner;
  std::string reason;
};

// A cache.rpc policy with scope shared that is served per user instead, and why.
struct SharedRefusal {
  std::string function;  // the name, as in cache.rpc.<name>
  std::string reason;
};

struct Catalog {
  // The configuration this catalog was loaded for: its rpc section (allow-list, trusted
  // owners, pre_request, tx_end) is what requests served with this catalog use, so a reload's
  // allow-list and the functions it loaded change together.
  std::shared_ptr<const config::Config> cfg;
  std::unordered_map<std::string, std::vector<RpcFunction>> functions;  // by name (overloads)
  std::vector<RefusedFunction> refused;
  std::vector<SharedRefusal> shared_refused;
  // The schema's state: PUBLIC may CREATE in it (everything is refused then), and the other
  // roles besides its owner that may (their overloads are refused unless trusted).
  bool schema_exists = false;
  bool public_create = false;
  std::vector<std::string> other_creators;
  std::string schema_owner;
  bool zone_at = false;  // zonegate.zone_at(float8, float8) exists
  std::string error;     // why the last load failed, if it did
  // The roles a /rpc request may run as (api/rpc_context.hpp): those the login role is a
  // member of, never a superuser nor a predefined pg_ role. Loaded with the catalog; until
  // then (or when that failed) roles_loaded is false and no role is switched to.
  std::unordered_set<std::string> roles;
  bool roles_loaded = false;
  bool pre_request_found = false;  // rpc.pre_request names an existing function

  // Why scope shared was refused for this function, or nullptr when it was not.
  const SharedRefusal* shared_refusal(const std::string& fn) const {
    for (const SharedRefusal& r : shared_refused) {
      if (r.function == fn) return &r;
    }
    return nullptr;
  }
};

// What the catalog statement reads.
struct CatalogQuery {
  std::string schema;
  std::vector<std::string> names;           // name entries: every overload of these
  std::vector<std::string> signature_oids;  // resolved signature entries: these overloads
  std::vector<std::string> trusted_owners;  // rpc.trusted_owners
  std::vector<std::string> shared;          // scope shared without identity_free: bodies read
};

// The statement that reads the catalog.
pg::Statement catalog_statement(const CatalogQuery& q);
// The statement that resolves one `name(types)` entry in `schema`: one row, the overload's oid
// or NULL when there is none. PostgreSQL normalises the types (int4 and integer are one).
// An unknown type is an error in PostgreSQL 15, which is why each entry has a statement of its
// own: one bad entry cannot fail the whole catalog.
pg::Statement signature_statement(const std::string& schema, const std::string& name,
                                  const std::string& args);
// Builds a catalog from catalog_statement's rows (throws std::runtime_error on malformed rows).
// Functions whose owner is not trusted, or all when PUBLIC may CREATE in the schema, go to
// `refused`; functions named in `shared` whose body reads the caller's identity go to
// `shared_refused`.
Catalog catalog_from_rows(const std::string& schema, const std::vector<std::string>& shared,
                          const std::vector<std::vector<std::optional<std::string>>>& rows);

// Why a function's answer may depend on who calls it, from its language and body: the marker
// of the caller's identity it reads, or a language whose body cannot be read. "" when neither.
std::string identity_dependence(const std::string& language, const std::string& body);

}  // namespace zonegate::api
