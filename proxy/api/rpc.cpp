// PostgREST-compatible /rpc/{fn}: named arguments from a JSON body (POST) or the query string
// (GET, STABLE/IMMUTABLE functions only), only for functions on the allow-list. SQL is built from
// the catalog's identifiers and types only; request values are always bound parameters.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "api/app.hpp"
#include "api/errors.hpp"
#include "common/json.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

using Args = std::vector<std::pair<std::string, std::optional<std::string>>>;

const pg::Statement& claims_stmt() {
  static const pg::Statement s = pg::make_statement(
      "SELECT pg_catalog.set_config('zonegate.user_id', $1, true), "
      "pg_catalog.set_config('request.jwt.claims', $2, true)",
      {});
  return s;
}

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

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// A JSON value as the text a Postgres parameter of `type` accepts.
std::optional<std::string> json_to_param(const rapidjson::Value& v, const std::string& type) {
  if (v.IsNull()) return std::nullopt;
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsArray() && type.size() > 2 && type.compare(type.size() - 2, 2, "[]") == 0) {
    // A JSON array for an array parameter becomes an array literal, as PostgREST does.
    std::string out = "{";
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (i > 0) out += ',';
      const auto& e = v[i];
      if (e.IsNull()) {
        out += "NULL";
        continue;
      }
      std::string text;
      if (e.IsString()) {
        text.assign(e.GetString(), e.GetStringLength());
      } else {
        text = json_text(e);
      }
      out += '"';
      for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
    return out + "}";
  }
  return json_text(v);
}

http::Response not_found(const std::string& schema, const std::string& fn, const Args& args) {
  std::string names;
  for (const auto& a : args)
    names += (names.empty() ? "" : ", ") + a.first;
  return http::error_response(
      404, "PGRST202",
      "Could not find the function " + schema + "." + fn + "(" + names + ") in the schema cache",
      "", "the function must exist and be listed in rpc.functions, with these argument names");
}

// The overload whose input names cover the given arguments and whose other inputs have defaults.
const RpcFunction* resolve(const std::vector<RpcFunction>& overloads, const Args& args,
                           std::vector<size_t>& used) {
  const RpcFunction* best = nullptr;
  for (const RpcFunction& f : overloads) {
    std::vector<size_t> idx;
    bool ok = true;
    for (const auto& a : args) {
      auto it = std::find_if(f.args.begin(), f.args.end(),
                             [&](const RpcArg& x) { return x.name == a.first; });
      if (it == f.args.end()) {
        ok = false;
        break;
      }
      idx.push_back(static_cast<size_t>(it - f.args.begin()));
    }
    for (size_t i = 0; ok && i < f.args.size(); ++i) {
      if (!f.args[i].has_default && std::find(idx.begin(), idx.end(), i) == idx.end()) ok = false;
    }
    if (ok && (best == nullptr || f.args.size() < best->args.size())) {
      best = &f;
      used = idx;
    }
  }
  return best;
}

void handle(App& app, const ExchangePtr& ex, const std::string& fn) {
  auth::Claims claims;
  if (!authenticate(ex, claims)) return;
  const config::RpcConfig& rpc = app.cfg().rpc;
  Args args;
  bool is_get = ex->req.method == "GET" || ex->req.method == "HEAD";
  std::optional<rapidjson::Document> body;
  if (is_get) {
    std::vector<std::pair<std::string, std::string>> q;
    if (!http::parse_query(ex->req.query, q)) {
      ex->respond(http::error_response(400, "PGRST100", "malformed query string"));
      return;
    }
    for (auto& [k, v] : q)
      args.emplace_back(k, v);
  } else if (!ex->req.body.empty()) {
    const std::string* ct = ex->req.header("content-type");
    if (ct != nullptr && ct->rfind("application/x-www-form-urlencoded", 0) == 0) {
      std::vector<std::pair<std::string, std::string>> q;
      if (!http::parse_query(ex->req.body, q)) {
        ex->respond(http::error_response(400, "PGRST100", "malformed form body"));
        return;
      }
      for (auto& [k, v] : q)
        args.emplace_back(k, v);
    } else if (ct == nullptr || ct->rfind("application/json", 0) == 0) {
      body.emplace();
      std::string err;
      if (!json::parse(ex->req.body, *body, err) || !body->IsObject()) {
        ex->respond(http::error_response(400, "PGRST102",
                                         "the body must be a JSON object of named arguments", err));
        return;
      }
      for (auto it = body->MemberBegin(); it != body->MemberEnd(); ++it) {
        args.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()),
                          std::nullopt);
      }
    } else {
      ex->respond(http::error_response(415, "PGRST107",
                                       "unsupported Content-Type " + ct->substr(0, 64), "",
                                       "send application/json"));
      return;
    }
  }
  std::set<std::string> seen;
  for (const auto& a : args) {
    if (!seen.insert(a.first).second) {
      ex->respond(
          http::error_response(400, "PGRST100", "argument \"" + a.first + "\" given twice"));
      return;
    }
  }

  auto allowed = std::find(rpc.functions.begin(), rpc.functions.end(), fn) != rpc.functions.end();
  std::shared_ptr<const Catalog> cat = app.catalog();
  auto found = allowed ? cat->functions.find(fn) : cat->functions.end();
  if (found == cat->functions.end()) {
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  std::vector<size_t> used;
  const RpcFunction* f = resolve(found->second, args, used);
  if (f == nullptr) {
    ex->respond(not_found(rpc.schema, fn, args));
    return;
  }
  if (is_get && f->volatility == 'v') {
    http::Response r = http::error_response(
        405, "PGRST101", "function " + rpc.schema + "." + fn + " is VOLATILE: call it with POST",
        "", "GET is only for STABLE and IMMUTABLE functions");
    r.add_header("Allow", "POST");
    ex->respond(std::move(r));
    return;
  }
  // Parameters in the order of `used`.
  std::vector<std::optional<std::string>> params;
  for (size_t i = 0; i < used.size(); ++i) {
    const RpcArg& a = f->args[used[i]];
    if (body) {
      params.push_back(json_to_param((*body)[a.name.c_str()], a.type));
    } else {
      params.push_back(args[i].second);
    }
  }
  // Cache key: the function, its canonical arguments (sorted by name), and the caller unless
  // the policy says the answer is the same for everybody. VOLATILE functions are never cached.
  std::vector<std::pair<std::string, const std::optional<std::string>*>> canon;
  for (size_t i = 0; i < used.size(); ++i)
    canon.emplace_back(f->args[used[i]].name, &params[i]);
  std::sort(canon.begin(), canon.end());
  std::string key = "rpc|" + fn + "|" + std::to_string(f->oid);
  for (const auto& [name, value] : canon) {
    key += '\x1e' + name + '\x1f' + (*value ? "v" + **value : std::string("n"));
  }
  static const config::CachePolicy off = [] {
    config::CachePolicy p;
    p.enabled = false;
    return p;
  }();
  auto pit = app.cfg().cache.rpc.find(fn);
  const config::CachePolicy& policy =
      (pit == app.cfg().cache.rpc.end() || f->volatility == 'v') ? off : pit->second;
  std::string tag;
  if (!policy.shared) {
    key += "\x1eu=" + claims.subject;
    tag = claims.subject;
  }

  pg::Statement who = claims_stmt();
  who.params = {claims.subject, claims.json};
  pg::Statement call = pg::make_statement(call_sql(*f, used), std::move(params));
  bool void_fn = f->returns_void;
  pg::Job job;
  job.statements = {std::move(who), std::move(call)};
  job.read_only = f->volatility != 'v';  // STABLE and IMMUTABLE functions may be retried
  cache::Upstream upstream = database_upstream(ex, std::move(job), [void_fn](const pg::Result& r) {
    if (void_fn) return http::Response(204, "");
    const std::optional<std::string>* v = r.scalar();
    return http::Response(200, (v != nullptr && *v) ? **v : std::string("null"));
  });
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
