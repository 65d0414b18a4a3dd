// PostgREST-compatible /rpc/{fn}: named arguments from a JSON body (POST) or the query string
// (GET, run READ ONLY), only for allow-listed overloads with a trusted owner (api/catalog.hpp).
// The arguments are decoded by api/rpc_args.cpp; SQL is built from the catalog's identifiers and
// types only; request values are always bound parameters. Who the call runs as and the
// statements around it (role, request.* settings, pre-request, response.* read back, the
// transaction's end) are api/rpc_context.cpp's.
#include <optional>
#include <string>
#include <vector>

#include "api/app.hpp"
#include "api/errors.hpp"
#include "api/rpc_args.hpp"
#include "api/rpc_context.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

// The call of the chosen overload, schema-qualified, each argument named and cast to its type.
std::string call_sql(const RpcFunction& f, const std::vector<size_t>& used) {
  std::string call = quote_ident(f.schema) + "." + quote_ident(f.name) + "(";
  for (size_t i = 0; i < used.size(); ++i) {
    const RpcArg& a = f.args[used[i]];
    if (i > 0) call += ", ";
    call += quote_ident(a.name) + " => $" + std::to_string(i + 1) + "::" + a.type;
  }
  call += ")";
  if (f.returns_void) return "SELECT " + call;
  if (f.returns_set) {
    return "SELECT coalesce(pg_catalog.jsonb_agg(_r), '[]'::pg_catalog.jsonb)::text FROM " + call +
           " AS _r";
  }
  if (f.returns_composite) return "SELECT pg_catalog.to_jsonb(_r)::text FROM " + call + " AS _r";
  return "SELECT pg_catalog.to_jsonb(" + call + ")::text";
}

// PostgREST's answer for a function (or overload) that is not reachable.
http::Response not_found(const std::string& schema, const std::string& fn,
                         const rpc::DecodedArgs& args) {
  std::string names;
  for (const auto& a : args.args)
    names += (names.empty() ? "" : ", ") + a.first;
  return http::error_response(
      404, "PGRST202",
      "Could not find the function " + schema + "." + fn + "(" + names + ") in the schema cache",
      "", "the function must exist and be listed in rpc.functions, with these argument names");
}

// PostgREST's PGRST203 when another overload with as many inputs fits the arguments as well as
// the one chosen (fewer inputs win, docs/API.md; a tie has no answer): nullopt when none does.
std::optional<http::Response> ambiguous(const std::vector<RpcFunction>& overloads,
                                        const RpcFunction& chosen, const rpc::DecodedArgs& args) {
  std::string candidates;
  int fits = 0;
  for (const RpcFunction& g : overloads) {
    std::vector<size_t> unused;
    if (&g != &chosen && (g.args.size() != chosen.args.size() ||
                          rpc::resolve(std::vector<RpcFunction>{g}, args, unused) == nullptr)) {
      continue;
    }
    ++fits;
    std::string params;
    for (const RpcArg& a : g.args)
      params += (params.empty() ? "" : ", ") + a.name + " => " + a.type;
    candidates += (candidates.empty() ? "" : ", ") + g.schema + "." + g.name + "(" + params + ")";
  }
  if (fits < 2) return std::nullopt;
  return http::error_response(
      300, "PGRST203", "Could not choose the best candidate function between: " + candidates, "",
      "Try renaming the parameters or the function itself in the database so function "
      "overloading can be resolved");
}

// The cache policy of a call. VOLATILE functions and functions without a policy are never
// cached; a shared scope the catalog refused (the body reads the caller's identity) becomes
// per user.
config::CachePolicy call_policy(const App& app, const Catalog& cat, const std::string& fn,
                                const RpcFunction& f) {
  auto pit = app.cfg().cache.rpc.find(fn);
  if (pit == app.cfg().cache.rpc.end() || f.volatility == 'v') {
    config::CachePolicy off;
    off.enabled = false;
    return off;
  }
  config::CachePolicy p = pit->second;
  if (p.shared && cat.shared_refusal(fn) != nullptr) p.shared = false;
  return p;
}

// One /rpc call: decode, resolve among the reachable overloads, then serve through the cache.
void handle(App& app, const ExchangePtr& ex, const std::string& fn) {
  // The catalog holds allow-listed overloads whose owner is trusted, and nothing else; and the
  // roles a request may run as.
  std::shared_ptr<const Catalog> cat = app.catalog();
  rpc::Identity who;
  if (!rpc::identify(app, ex, *cat, who)) return;
  const config::RpcConfig& rpc = app.cfg().rpc;
  rpc::CallInput in;
  in.method = ex->req.method;
  in.content_type = ex->req.header("content-type");
  in.query = ex->req.query;
  in.body = ex->req.body;
  rpc::DecodedArgs args;
  http::Response refusal;
  if (!rpc::decode_args(in, args, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }

  auto found = rpc.allows(fn) ? cat->functions.find(fn) : cat->functions.end();
  if (found == cat->functions.end()) {
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  std::vector<size_t> used;
  const RpcFunction* f = rpc::resolve(found->second, args, used);
  if (f == nullptr) {
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  if (std::optional<http::Response> tie = ambiguous(found->second, *f, args)) {
    ex->respond(std::move(*tie));
    return;
  }
  // A VOLATILE function over GET runs too, READ ONLY: Postgres refuses its writes (25006).
  std::vector<std::optional<std::string>> params = rpc::bind_params(*f, used, args);
  config::CachePolicy policy = call_policy(app, *cat, fn, *f);
  // A shared answer is computed without the caller's identity, so it cannot depend on who
  // asked whatever the function reads (docs/CONFIG.md, "cache"); per-user calls run as the
  // caller, keyed and tagged by the caller. Both are keyed by the role they run as.
  const bool shared = policy.enabled && policy.shared;
  rpc::CallContext ctx;
  if (!rpc::prepare(app, ex, *cat, std::move(who), shared, ctx)) return;
  const std::string& subject = ctx.who.claims.subject;
  std::string key = rpc::cache_key(fn, *f, used, params, shared ? nullptr : &subject);
  std::string tag = shared ? std::string() : subject;
  rpc::cache_terms(ctx, key, policy);

  pg::Job job;
  rpc::open_call(ctx, job);
  job.statements.push_back(pg::make_statement(call_sql(*f, used), std::move(params)));
  rpc::close_call(ctx, job);
  job.read_only = rpc::retryable(ctx, f->volatility);
  bool void_fn = f->returns_void;
  cache::Upstream upstream = database_upstream(
      ex, std::move(job), rpc::answer(ctx, [void_fn](const pg::Result& r) {
        if (void_fn) return http::Response(204, "");
        const std::optional<std::string>* v = r.scalar();
        return http::Response(200, (v != nullptr && *v) ? **v : std::string("null"));
      }));
  app.serve_cached(ex, policy, cache::CacheKey{"rpc:" + fn, std::move(key), std::move(tag)},
                   std::move(upstream));
}

}  // namespace

void add_rpc_routes(App& app, http::Router& router) {
  auto h = [&app](const ExchangePtr& ex, const Params& p) { handle(app, ex, p[0]); };
  router.add("GET", "/rpc/{fn}", "rpc", h);
  router.add("POST", "/rpc/{fn}", "rpc", h);
}

}  // namespace zonegate::api
