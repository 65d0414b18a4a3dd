// Method + path routing with {param} segments and a trailing * wildcard. Unknown paths get 404,
// known paths with another method 405 with an Allow header.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"

namespace zonegate::http {

// Captured path parameters, percent-decoded, in pattern order.
using Params = std::vector<std::string>;
using RouteFn = std::function<void(const ExchangePtr&, const Params&)>;

// Which listener serves a route: the public one (apps), the admin one (operators: /admin*,
// /metrics), or both (liveness, readiness, /health, the OpenAPI document). A request for a
// route of the other listener gets 404, as if the route did not exist.
enum class Exposure { kPublic, kAdmin, kBoth };

class Router {
 public:
  // pattern: "/v1/users/{id}/context", "/rpc/{fn}", "/admin/*". `name` labels logs and metrics.
  // A GET route also answers HEAD.
  void add(std::string method, std::string_view pattern, std::string name, RouteFn fn,
           Exposure exposure = Exposure::kPublic);
  void handle(const ExchangePtr& ex) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" for a parameter, "*" for the rest
    std::string name;
    RouteFn fn;
    Exposure exposure = Exposure::kPublic;
  };
  static bool match(const Route& r, const std::vector<std::string_view>& parts, Params& params,
                    bool& bad_escape);
  std::vector<Route> routes_;
};

}  // namespace zonegate::http
