// Admin routes behind auth.admin_token: cache statistics and purge.
#include <string>

#include "api/app.hpp"
#include "common/json.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

double rate(int64_t served, int64_t total) {
  return total == 0 ? 0.0 : static_cast<double>(served) / static_cast<double>(total);
}

// Requests answered without their own query (hits, stale, coalesced) over all cacheable ones.
double hit_rate(int64_t hits, int64_t stale, int64_t coalesced, int64_t misses) {
  return rate(hits + stale + coalesced, hits + stale + coalesced + misses);
}

std::string stats_json(const cache::CacheStats& s) {
  json::Writer w;
  w.start_object();
  w.field("entries", s.store.entries);
  w.field("bytes", s.store.bytes);
  w.field("max_bytes", s.store.max_bytes);
  w.field("hits", s.hits);
  w.field("misses", s.misses);
  w.field("stale", s.stale);
  w.field("coalesced", s.coalesced);
  w.field("not_modified", s.not_modified);
  w.field("bypass", s.bypass);
  w.field("evictions", s.store.evictions);
  w.field("invalidated", s.store.invalidated);
  w.field("revalidations", s.revalidations);
  w.field("stale_if_error", s.stale_if_error);
  w.field("lock_timeouts", s.lock_timeouts);
  w.field("notifications", s.notifications);
  w.field("flushes", s.flushes);
  w.field("flushes_coalesced", s.flushes_coalesced);
  w.key("hit_rate");
  w.number(hit_rate(s.hits, s.stale, s.coalesced, s.misses));
  w.key("last_invalidation_lag_ms");
  if (s.last_invalidation_lag_ms < 0)
    w.null();
  else
    w.number(s.last_invalidation_lag_ms);
  w.key("max_invalidation_lag_ms");
  if (s.max_invalidation_lag_ms < 0)
    w.null();
  else
    w.number(s.max_invalidation_lag_ms);
  w.key("routes");
  w.start_object();
  for (const auto& [name, c] : s.routes) {
    w.key(name);
    w.start_object();
    for (const auto& [k, v] : c)
      w.field(k, v);
    w.key("hit_rate");
    w.number(hit_rate(c.at("hits"), c.at("stale"), c.at("coalesced"), c.at("misses")));
    w.end_object();
  }
  w.end_object();
  w.end_object();
  return w.take();
}

}  // namespace

bool require_admin(App& app, const ExchangePtr& ex) {
  if (!app.admin_auth().enabled()) {
    ex->respond(http::error_response(403, "admin_disabled", "the admin API is disabled", "",
                                     "set auth.admin_token"));
    return false;
  }
  if (!app.admin_auth().bearer_matches(ex->req)) {
    ex->respond(
        auth::unauthorized("the admin token is required", !auth::bearer_token(ex->req).empty()));
    return false;
  }
  return true;
}

void add_admin_routes(App& app, http::Router& router) {
  router.add(
      "GET", "/admin/cache/stats", "admin_cache_stats",
      [&app](const ExchangePtr& ex, const Params&) {
        if (!require_admin(app, ex)) return;
        ex->respond(http::Response(200, stats_json(app.cache().stats())));
      },
      http::Exposure::kAdmin);
  router.add(
      "POST", "/admin/cache/purge", "admin_cache_purge",
      [&app](const ExchangePtr& ex, const Params&) {
        if (!require_admin(app, ex)) return;
        std::string user, route;
        if (!ex->req.body.empty()) {
          rapidjson::Document d;
          std::string err;
          if (!json::parse(ex->req.body, d, err) || !d.IsObject()) {
            ex->respond(http::error_response(
                400, "invalid_body", "purge takes {}, {\"user\": id} or {\"route\": name}", err));
            return;
          }
          for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
            std::string k = it->name.GetString();
            if ((k != "user" && k != "route") || !it->value.IsString()) {
              ex->respond(http::error_response(
                  400, "invalid_body", "unknown or non-string member \"" + k + "\"", "",
                  "purge takes {}, {\"user\": id} or {\"route\": name}"));
              return;
            }
            (k == "user" ? user : route) = it->value.GetString();
          }
        }
        size_t n = !user.empty()    ? app.cache().purge_user(user)
                   : !route.empty() ? app.cache().purge_route(route)
                                    : app.cache().purge_all();
        json::Writer w;
        w.start_object();
        w.field("purged", static_cast<int64_t>(n));
        w.field("scope", !user.empty() ? "user" : !route.empty() ? "route" : "all");
        w.end_object();
        ex->respond(http::Response(200, w.take()));
      },
      http::Exposure::kAdmin);
}

}  // namespace zonegate::api
