// PostgREST-compatible /rpc/{fn}: named arguments from a JSON body (POST) or the query string
// (GET, run READ ONLY), only for allow-listed overloads with a trusted owner (api/catalog.hpp).
// The arguments are decoded by api/rpc_args.cpp; what the request asks of the result (select=,
// filters, order=, paging, Accept, Prefer) and the one statement around the call by
// api/rpc_query.cpp; who the call runs as and the statements around it (role, request.*
// settings, pre-request, response.* read back, the transaction's end) by api/rpc_context.cpp.
// SQL is built from the catalog's identifiers and fixed text only; request values are always
// bound parameters.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/app.hpp"
#include "api/errors.hpp"
#include "api/rpc_args.hpp"
#include "api/rpc_context.hpp"
#include "api/rpc_query.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

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

// What the request says that /rpc reads: method, headers (every Prefer), query and body.
rpc::CallInput call_input(const http::Request& req, const std::string& fn) {
  rpc::CallInput in;
  in.method = req.method;
  in.function = fn;
  in.content_type = req.header("content-type");
  in.accept = req.header("accept");
  in.range = req.header("range");
  for (const http::Header& h : req.headers) {
    if (h.name == "prefer") in.prefer.emplace_back(h.value);
  }
  in.query = req.query;
  in.body = req.body;
  return in;
}

// Turns a database answer into the response: a success through the plan's shaping and then
// what the function set (response.status, response.headers: rpc_context's answer()), the error
// a single-object request raises when the result is not one row as 406 PGRST116, any other
// failure through the one error mapping (api/errors.hpp). Like database_upstream, with that one
// error read, and the job made only when the cache has no answer (a hit builds no SQL).
cache::Upstream rpc_upstream(const ExchangePtr& ex, std::function<pg::Job()> make_job,
                             Shape shape) {
  return [ex, make_job = std::move(make_job), shape = std::move(shape)](cache::Reply done) {
    pg::Job j = make_job();
    j.done = [ex, shape, done = std::move(done)](const pg::Result& r) {
      ex->upstream_ns += r.upstream_ns;
      http::Response resp;
      if (r.ok()) {
        resp = shape(r);
      } else if (!rpc::singular_failure(r, resp)) {
        resp = error_from_result(r, !ex->anonymous);
      }
      cache::Answer a;
      a.status = resp.status;
      a.content_type = std::move(resp.content_type);
      a.body = std::move(resp.body);
      a.shared_body = std::move(resp.shared_body);
      a.headers = std::move(resp.headers);
      a.replica_lsn = r.replica_lsn;
      done(std::move(a));
    };
    worker_state(ex).submit(ex, std::move(j));
  };
}

// One /rpc call: who it runs as, decode, resolve among the reachable overloads, plan the
// statement around the call (api/rpc_query.hpp), then serve through the cache.
void handle(App& app, const ExchangePtr& ex, const std::string& fn) {
  // The catalog holds allow-listed overloads whose owner is trusted, and nothing else; and the
  // roles a request may run as.
  std::shared_ptr<const Catalog> cat = app.catalog();
  rpc::Identity who;
  if (!rpc::identify(app, ex, *cat, who)) return;
  const config::RpcConfig& rpc = cat->cfg->rpc;
  rpc::DecodedArgs args;
  http::Response refusal;
  if (!rpc::decode_args(call_input(ex->req, fn), args, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }

  auto found = rpc.allows(fn) ? cat->functions.find(fn) : cat->functions.end();
  if (found == cat->functions.end()) {
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  if (!rpc::adopt_arguments(found->second, args, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }
  std::vector<size_t> used;
  bool whole_body = false;
  const RpcFunction* f = rpc::choose(found->second, args, used, whole_body);
  if (f == nullptr) {
    if (args.body && !args.body->IsObject() && !args.query.single_object) {
      ex->respond(http::error_response(400, "PGRST102",
                                       "the body must be a JSON object of named arguments", "",
                                       "or the function must take one unnamed json argument"));
      return;
    }
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  if (!whole_body) {
    if (std::optional<http::Response> tie = ambiguous(found->second, *f, args)) {
      ex->respond(std::move(*tie));
      return;
    }
  }
  // A VOLATILE function over GET runs too, READ ONLY: Postgres refuses its writes (25006).
  std::vector<std::optional<std::string>> params =
      whole_body ? std::vector<std::optional<std::string>>{rpc::whole_body_param(args)}
                 : rpc::bind_params(*f, used, args);
  auto plan = std::make_shared<rpc::Plan>();
  if (!rpc::plan_call(*f, params.size(), args.query, *plan, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }
  config::CachePolicy policy = call_policy(app, *cat, fn, *f);
  // A shared answer is computed without the caller's identity, so it cannot depend on who
  // asked whatever the function reads (docs/CONFIG.md, "cache"); per-user calls run as the
  // caller, keyed and tagged by the caller. Both are keyed by the role they run as.
  const bool shared = policy.enabled && policy.shared;
  auto ctx = std::make_shared<rpc::CallContext>();
  if (!rpc::prepare(app, ex, *cat, std::move(who), shared, *ctx)) return;
  const std::string& subject = ctx->who.claims.subject;
  std::string key =
      rpc::cache_key(fn, *f, used, params, shared ? nullptr : &subject, plan->cache_part);
  std::string tag = shared ? std::string() : subject;
  rpc::cache_terms(*ctx, key, policy);

  // The job, made when the cache has no answer. `f` lives as long as `cat`, which it holds.
  auto make_job = [cat, f, used = std::move(used), whole_body, params = std::move(params), plan,
                   ctx]() {
    pg::Job job;
    rpc::open_call(*ctx, job);
    // The call is one statement whose first column, `body`, is the answer (page_total and
    // total follow); close_call reads back what the function set after it.
    std::vector<std::optional<std::string>> values = params;
    values.insert(values.end(), plan->params.begin(), plan->params.end());
    job.statements.push_back(pg::make_statement(
        plan->statement(rpc::call_sql(*f, used, whole_body)), std::move(values)));
    rpc::close_call(*ctx, job);
    job.read_only = rpc::retryable(*ctx, f->volatility);
    return job;
  };
  Shape shape = rpc::answer(*ctx, [plan](const pg::Result& r) { return rpc::shape(*plan, r); });
  app.serve_cached(ex, policy,
                   cache::CacheKey{cache::rpc_route(fn), std::move(key), std::move(tag)},
                   rpc_upstream(ex, std::move(make_job), std::move(shape)));
}

}  // namespace

void add_rpc_routes(App& app, http::Router& router) {
  auto h = [&app](const ExchangePtr& ex, const Params& p) { handle(app, ex, p[0]); };
  router.add("GET", "/rpc/{fn}", "rpc", h);
  router.add("POST", "/rpc/{fn}", "rpc", h);
}

}  // namespace zonegate::api
