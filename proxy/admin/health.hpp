// Liveness and readiness routes.
#pragma once

#include "http/router.hpp"

namespace zonegate::admin {

// GET /healthz: 200 while the process serves requests.
void add_health_routes(http::Router& router);

}  // namespace zonegate::admin
