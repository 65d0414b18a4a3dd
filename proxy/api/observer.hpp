// What happens once per response: metrics, the access log line and the slow-query warning.
#pragma once

#include "admin/metrics.hpp"
#include "config/config.hpp"
#include "http/server.hpp"

namespace zonegate::api {

// The server's response observer for this config (empty when nothing is to be recorded).
http::ResponseObserver make_response_observer(const config::Config& cfg,
                                              metrics::Registry* registry);

}  // namespace zonegate::api
