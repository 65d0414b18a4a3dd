// Liveness and readiness routes; see health.hpp.
#include "admin/health.hpp"

namespace zonegate::admin {

void add_health_routes(http::Router& router) {
  router.add("GET", "/healthz", "healthz", [](const http::ExchangePtr& ex, const http::Params&) {
    ex->respond(http::Response(200, R"({"status":"ok"})"));
  });
}

}  // namespace zonegate::admin
