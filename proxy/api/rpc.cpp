// PostgREST-compatible /rpc/{fn}: named arguments from a JSON body (POST) or the query string
// (GET, STABLE/IMMUTABLE functions only), only for allow-listed overloads with a trusted owner
// (api/catalog.hpp). The arguments are decoded by api/rpc_args.cpp; what the request asks of the
// result (select=, filters, order=, paging, Accept, Prefer) and the one statement around the
// call by api/rpc_query.cpp; SQL is built from the catalog's identifiers and fixed text only;
// request values are always bound parameters.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/app.hpp"
#include "api/errors.hpp"
#include "api/rpc_args.hpp"
#include "api/rpc_query.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

// Sets the caller for the transaction: RLS policies and the current_* functions read it.
const pg::Statement& claims_stmt() {
  static const pg::Statement s = pg::make_statement(
      "SELECT pg_catalog.set_config('zonegate.user_id', $1, true), "
      "pg_catalog.set_config('request.jwt.claims', $2, true)",
      {});
  return s;
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

// Turns a database answer into the response: a success through the plan's shaping, the error a
// single-object request raises when the result is not one row as 406 PGRST116, any other
// failure through the one error mapping (api/errors.hpp). Like database_upstream, with that one
// error read, and the job made only when the cache has no answer (a hit builds no SQL).
cache::Upstream rpc_upstream(const ExchangePtr& ex, std::function<pg::Job()> make_job,
                             std::shared_ptr<const rpc::Plan> plan) {
  return [ex, make_job = std::move(make_job), plan = std::move(plan)](cache::Reply done) {
    pg::Job j = make_job();
    j.done = [ex, plan, done = std::move(done)](const pg::Result& r) {
      ex->upstream_ns += r.upstream_ns;
      http::Response resp;
      if (r.ok()) {
        resp = rpc::shape(*plan, r);
      } else if (!rpc::singular_failure(r, resp)) {
        resp = error_from_result(r);
      }
      cache::Answer a;
      a.status = resp.status;
      a.content_type = std::move(resp.content_type);
      a.body = std::move(resp.body);
      a.shared_body = std::move(resp.shared_body);
      a.headers = std::move(resp.headers);
      done(std::move(a));
    };
    worker_state(ex).submit(ex, std::move(j));
  };
}

// One /rpc call: decode, resolve among the reachable overloads, plan the statement around the
// call (api/rpc_query.hpp), then serve through the cache.
void handle(App& app, const ExchangePtr& ex, const std::string& fn) {
  auth::Claims claims;
  if (!authenticate(ex, claims)) return;
  const config::RpcConfig& rpc = app.cfg().rpc;
  rpc::DecodedArgs args;
  http::Response refusal;
  if (!rpc::decode_args(call_input(ex->req, fn), args, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }

  // The catalog holds allow-listed overloads whose owner is trusted, and nothing else.
  std::shared_ptr<const Catalog> cat = app.catalog();
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
  if (args.is_get && f->volatility == 'v') {
    http::Response r = http::error_response(
        405, "PGRST101", "function " + rpc.schema + "." + fn + " is VOLATILE: call it with POST",
        "", "GET is only for STABLE and IMMUTABLE functions");
    r.add_header("Allow", "POST");
    ex->respond(std::move(r));
    return;
  }
  std::vector<std::optional<std::string>> params =
      whole_body ? std::vector<std::optional<std::string>>{rpc::whole_body_param(args)}
                 : rpc::bind_params(*f, used, args);
  auto plan = std::make_shared<rpc::Plan>();
  if (!rpc::plan_call(*f, params.size(), args.query, *plan, refusal)) {
    ex->respond(std::move(refusal));
    return;
  }
  const config::CachePolicy policy = call_policy(app, *cat, fn, *f);
  // A shared answer is computed without the caller's identity, so it cannot depend on who
  // asked whatever the function reads (docs/CONFIG.md, "cache"); per-user calls run as the
  // caller, keyed and tagged by the caller.
  const bool shared = policy.enabled && policy.shared;
  std::string key =
      rpc::cache_key(fn, *f, used, params, shared ? nullptr : &claims.subject, plan->cache_part);
  std::string tag = shared ? std::string() : claims.subject;

  // The job, made when the cache has no answer. `f` lives as long as `cat`, which it holds.
  auto make_job = [cat, f, used = std::move(used), whole_body, params = std::move(params), plan,
                   shared, subject = std::move(claims.subject),
                   claims_json = std::move(claims.json)]() {
    pg::Job job;
    if (!shared) {
      pg::Statement who = claims_stmt();
      who.params = {subject, claims_json};
      job.statements.push_back(std::move(who));
    }
    // The call is one statement whose first column, `body`, is the answer (page_total and
    // total follow): statements may be added before or after it.
    std::vector<std::optional<std::string>> values = params;
    values.insert(values.end(), plan->params.begin(), plan->params.end());
    job.statements.push_back(pg::make_statement(
        plan->statement(rpc::call_sql(*f, used, whole_body)), std::move(values)));
    job.read_only = f->volatility != 'v';  // STABLE and IMMUTABLE functions may be retried
    return job;
  };
  app.serve_cached(ex, policy, cache::CacheKey{"rpc:" + fn, std::move(key), std::move(tag)},
                   rpc_upstream(ex, std::move(make_job), std::move(plan)));
}

}  // namespace

void add_rpc_routes(App& app, http::Router& router) {
  auto h = [&app](const ExchangePtr& ex, const Params& p) { handle(app, ex, p[0]); };
  router.add("GET", "/rpc/{fn}", "rpc", h);
  router.add("POST", "/rpc/{fn}", "rpc", h);
}

}  // namespace zonegate::api
