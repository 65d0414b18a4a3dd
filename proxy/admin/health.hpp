// Liveness, readiness and the OpenAPI description.
#pragma once

#include <functional>

#include "http/router.hpp"

namespace zonegate::admin {

struct Readiness {
  bool database = false;       // this worker's pool has a live connection
  bool listening = false;      // the control connection LISTENs on zonegate_changes
  bool breaker_closed = true;  // the primary's circuit breaker lets requests through
};

// GET /healthz: 200 while the process serves requests. GET /readyz: 200 when `ready` says the
// database and LISTEN are up and the breaker is closed, else 503 (docs/API.md). GET /openapi.json:
// docs/openapi.json, embedded at build.
void add_health_routes(http::Router& router,
                       std::function<Readiness(const http::ExchangePtr&)> ready);

// The embedded docs/openapi.json (generated source, see proxy/CMakeLists.txt).
extern const char* const kOpenApiJson;

}  // namespace zonegate::admin
