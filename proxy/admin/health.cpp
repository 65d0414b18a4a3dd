// Liveness and readiness routes; see health.hpp.
#include "admin/health.hpp"

#include <utility>

#include "common/json.hpp"

namespace zonegate::admin {

void add_health_routes(http::Router& router,
                       std::function<Readiness(const http::ExchangePtr&)> ready) {
  router.add(
      "GET", "/healthz", "healthz",
      [](const http::ExchangePtr& ex, const http::Params&) {
        ex->respond(http::Response(200, R"({"status":"ok"})"));
      },
      http::Exposure::kBoth);
  router.add(
      "GET", "/readyz", "readyz",
      [ready = std::move(ready)](const http::ExchangePtr& ex, const http::Params&) {
        Readiness r = ready(ex);
        bool ok = r.database && r.listening && r.breaker_closed;
        json::Writer w;
        w.start_object();
        w.field("status", ok ? "ready" : "unavailable");
        w.field("database", r.database);
        w.field("listen", r.listening);
        w.field("breaker", r.breaker_closed ? "closed" : "open");
        w.end_object();
        http::Response resp(ok ? 200 : 503, w.take());
        if (!ok) resp.add_header("Retry-After", "1");
        ex->respond(std::move(resp));
      },
      http::Exposure::kBoth);
  router.add(
      "GET", "/openapi.json", "openapi",
      [](const http::ExchangePtr& ex, const http::Params&) {
        http::Response resp(200, kOpenApiJson);
        resp.content_type = "application/openapi+json";
        resp.add_header("Cache-Control", "public, max-age=300");
        ex->respond(std::move(resp));
      },
      http::Exposure::kBoth);
}

}  // namespace zonegate::admin
