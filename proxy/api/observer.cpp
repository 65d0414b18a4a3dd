// The per-response observer; see observer.hpp.
#include "api/observer.hpp"

#include "common/log.hpp"

namespace zonegate::api {

namespace {

// Logs one access line per response (formatted later, off this loop: log::write_access).
void log_access(const http::Worker& w, const http::Exchange& ex, uint64_t bytes, uint64_t now_ns) {
  if (!log::enabled(log::Level::kInfo)) return;
  const http::Request& req = ex.req;
  log::AccessRecord r;
  r.unix_ms = log::unix_ms_at(now_ns);
  r.worker = static_cast<int64_t>(w.index());
  r.status = ex.response().status;
  r.bytes = bytes;
  r.latency_ns = now_ns - req.start_ns;
  r.upstream_ns = ex.upstream_ns;
  // Only the path and the user come from the client unchecked; the other strings are the
  // proxy's own (request ids are checked against [A-Za-z0-9._:-] before they are echoed).
  r.request_id = req.request_id;
  r.client = req.client_addr;
  r.method = req.method;
  r.path = req.path;
  r.route = ex.route;
  r.cache = ex.cache_status;
  r.user = ex.user;
  log::write_access(r);
}

}  // namespace

http::ResponseObserver make_response_observer(const config::Config& cfg,
                                              metrics::Registry* registry) {
  bool access_log = cfg.log.access_log;
  uint64_t slow_ns = static_cast<uint64_t>(cfg.log.slow_query_ms) * 1'000'000ULL;
  if (!access_log && registry == nullptr && slow_ns == 0) return {};
  return [registry, access_log, slow_ns](const http::Worker& w, const http::Exchange& ex,
                                         uint64_t bytes, uint64_t now_ns) {
    if (registry != nullptr) {
      metrics::WorkerMetrics& m = registry->worker(w.index());
      m.record_request(ex.route, ex.req.method.empty() ? std::string_view("-") : ex.req.method,
                       ex.response().status, now_ns - ex.req.start_ns);
      if (ex.upstream_ns > 0) m.record_query(ex.route, ex.upstream_ns);
    }
    if (access_log) log_access(w, ex, bytes, now_ns);
    if (slow_ns > 0 && ex.upstream_ns > slow_ns) {
      log::warn("slow query", {{"request_id", ex.req.request_id},
                               {"route", ex.route},
                               {"upstream_ms", static_cast<double>(ex.upstream_ns) / 1e6},
                               {"user", ex.user},
                               {"status", static_cast<int64_t>(ex.response().status)}});
    }
  };
}

}  // namespace zonegate::api
