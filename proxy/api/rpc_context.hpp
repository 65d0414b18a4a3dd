// What runs around a /rpc call, as PostgREST 12 runs it (docs/API.md, "/rpc semantics"): who
// the request runs as (the token's role claim, or auth.anon_role; checked against the roles the
// catalog loaded before anything is sent), the request's context for the transaction
// (request.jwt.claims, request.method, request.path, request.headers, request.cookies,
// zonegate.user_id, the role, READ ONLY for GET and HEAD), rpc.pre_request, and after the call
// the response.headers and response.status a function set, then the transaction's end
// (rpc.tx_end, Prefer: tx=). The call's own SQL and the shaping of its answer are rpc.cpp's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "api/app.hpp"
#include "api/catalog.hpp"
#include "auth/jwt.hpp"
#include "config/config.hpp"
#include "http/message.hpp"
#include "pg/job.hpp"

namespace zonegate::api::rpc {

// Who a /rpc request runs as.
struct Identity {
  auth::Claims claims;      // the token's; empty without a token
  std::string role;         // the role switched to for the call; "" : the login role itself
  std::string claims_json;  // request.jwt.claims: the payload, "role" the role it runs as
};

// How the call's transaction runs and ends.
struct Transaction {
  bool read_only = false;  // GET and HEAD: SET TRANSACTION READ ONLY
  bool rollback = false;   // rolled back after the call (rpc.tx_end or Prefer: tx=rollback)
  std::string applied;     // Preference-Applied's value ("tx=rollback"), "" when none applied
};

// Everything the statements around one call need.
struct CallContext {
  Identity who;
  Transaction tx;
  bool shared = false;  // cache scope shared: the identity (claims, zonegate.user_id) is not set
  std::string method, path, headers_json, cookies_json;
  std::string pre_request_sql;  // "SELECT schema.fn()" or ""
};

// Authenticates a /rpc request and chooses the role it runs as. On a refusal (a bad token, no
// token without auth.anon_role, a role the login may not switch to, the roles not loaded yet)
// it answers the request and returns false: nothing has reached the database.
bool identify(const App& app, const http::ExchangePtr& ex, const Catalog& cat, Identity& out);

// The context of a call by `who`; false when it answered (rpc.pre_request names no function).
bool prepare(const App& app, const http::ExchangePtr& ex, const Catalog& cat, Identity who,
             bool shared, CallContext& out);

// A cached answer is keyed by the role it was computed as (prefixed: the rest of the key is
// rpc::cache_key's), and an answer that carries Preference-Applied is not cached at all.
void cache_terms(const CallContext& ctx, std::string& key, config::CachePolicy& policy);

// The statements before the call: the request's context, then rpc.pre_request.
void open_call(const CallContext& ctx, pg::Job& job);
// After the call (the job's last statement so far, whose rows answer): reads back
// response.headers and response.status, then rolls back when the context says so.
void close_call(const CallContext& ctx, pg::Job& job);
// Whether the job may run again after it was sent (pg::Job::read_only): a function that does
// not write (not VOLATILE), unless rpc.pre_request may write in a read-write transaction.
bool retryable(const CallContext& ctx, char volatility);
// The answer of a call: `inner`'s, with the status and headers the function set (500 for ones
// that cannot be sent) and Preference-Applied.
Shape answer(const CallContext& ctx, Shape inner);

// ---- the parts, without App or the event loop (unit-tested)

// request.headers: the request's header fields as a JSON object, names in lower case, a field
// sent twice joined with ", ", Cookie left out (request.cookies has it).
std::string headers_json(const http::Request& req);
// request.cookies: the Cookie header's pairs as a JSON object (the last of a name wins).
std::string cookies_json(const http::Request& req);
// The transaction of a request by `method` under rpc.tx_end, with its Prefer header.
Transaction transaction_for(std::string_view method, const std::string& tx_end,
                            const http::Request& req);
// request.jwt.claims for `who`: the payload with "role" set to the role it runs as (PostgREST
// does the same), or {"role": ...} without a token.
std::string effective_claims(const auth::Claims& claims, bool has_token, const std::string& role);
// Applies what a function set: `status` (response.status: 200..599) and `headers`
// (response.headers: a JSON array of one-member objects with a string value, each name a token,
// no control byte in a value, no framing or hop-by-hop field). SQL NULL or "" is unset. False
// with the 500 to send instead when either cannot be sent.
bool apply_response_gucs(const std::optional<std::string>& headers,
                         const std::optional<std::string>& status, http::Response& resp,
                         http::Response& error);
// `s` with each byte sequence that is not UTF-8 replaced by U+FFFD: header bytes become JSON
// text Postgres accepts.
std::string valid_utf8(std::string_view s);

// The statement the catalog load runs for the roles (see Catalog::roles) and whether
// rpc.pre_request exists; `pre_request` is the function's regprocedure text or "".
pg::Statement roles_statement(const std::string& pre_request);
// Reads roles_statement's row into the catalog (throws std::runtime_error on a malformed one).
void roles_from_rows(const std::vector<std::vector<std::optional<std::string>>>& rows,
                     Catalog& cat);
// rpc.pre_request as a regprocedure ("schema"."fn"()), unqualified names in rpc.schema; "".
std::string pre_request_regproc(const config::RpcConfig& rpc);
// Logs what a catalog load found about roles: auth.anon_role the login may not switch to, an
// rpc.pre_request that names no function.
void report_roles(const config::Config& cfg, const Catalog& cat);

}  // namespace zonegate::api::rpc
