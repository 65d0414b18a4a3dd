// Path routing; see router.hpp.
#include "http/router.hpp"

namespace zonegate::http {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = path.empty() || path[0] != '/' ? 0 : 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return parts;
}

}  // namespace

void Router::add(std::string method, std::string_view pattern, std::string name, RouteFn fn,
                 Exposure exposure) {
  Route r;
  r.exposure = exposure;
  r.method = std::move(method);
  for (std::string_view seg : split_path(pattern)) {
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      r.segments.emplace_back("{}");
    } else {
      r.segments.emplace_back(seg);
    }
  }
  r.name = std::move(name);
  r.fn = std::move(fn);
  routes_.push_back(std::move(r));
}

bool Router::match(const Route& r, const std::vector<std::string_view>& parts, Params& params,
                   bool& bad_escape) {
  params.clear();
  for (size_t i = 0; i < r.segments.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg == "*") {
      std::string rest;
      for (size_t j = i; j < parts.size(); ++j) {
        if (j > i) rest += '/';
        rest += parts[j];
      }
      params.push_back(std::move(rest));
      return true;
    }
    if (i >= parts.size()) return false;
    if (seg == "{}") {
      std::string decoded;
      if (parts[i].empty()) return false;
      if (!percent_decode(parts[i], decoded, false)) {
        bad_escape = true;
        return false;
      }
      params.push_back(std::move(decoded));
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return parts.size() == r.segments.size();
}

void Router::handle(const ExchangePtr& ex) const {
  const Request& req = ex->req;
  std::vector<std::string_view> parts = split_path(req.path);
  Params params;
  std::string allow;
  bool rpc = false;  // the path is a /rpc function's, which has a PostgREST code for this
  bool bad_escape = false;
  const Exposure here = req.admin ? Exposure::kAdmin : Exposure::kPublic;
  for (const Route& r : routes_) {
    if (r.exposure != Exposure::kBoth && r.exposure != here) continue;
    if (!match(r, parts, params, bad_escape)) continue;
    if (r.method == req.method || (r.method == "GET" && req.method == "HEAD")) {
      ex->route = r.name;
      r.fn(ex, params);
      return;
    }
    rpc = rpc || r.name == "rpc";
    if (allow.find(r.method) == std::string::npos) {
      allow += allow.empty() ? "" : ", ";
      allow += r.method;
      if (r.method == "GET") allow += ", HEAD";
    }
  }
  if (bad_escape) {
    ex->respond(error_response(400, "malformed_request", "malformed percent-escape in the path"));
  } else if (!allow.empty()) {
    Response resp =
        rpc ? error_response(405, "PGRST101", "Cannot use the " + req.method + " method on RPC")
            : error_response(405, "method_not_allowed",
                             "method " + req.method + " is not allowed on " + req.path);
    resp.add_header("Allow", allow);
    ex->respond(std::move(resp));
  } else {
    ex->respond(error_response(404, "not_found", "no route for " + req.path));
  }
}

}  // namespace zonegate::http
