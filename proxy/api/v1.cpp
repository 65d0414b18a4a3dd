// The /v1 routes (docs/API.md, "Routes"): user context, visible zones, the effective filter, zone
// at a point. Each is one prepared statement sent through the worker's pool.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "api/app.hpp"
#include "api/errors.hpp"
#include "cache/key.hpp"
#include "common/json.hpp"

namespace zonegate::api {

namespace {

using http::ExchangePtr;
using http::Params;

const pg::Statement& ctx_stmt() {
  static const pg::Statement s =
      pg::make_statement("SELECT zonegate.user_context_json($1)::text", {});
  return s;
}
const pg::Statement& zones_stmt() {
  static const pg::Statement s = pg::make_statement(
      "SELECT pg_catalog.jsonb_build_object('user_id', $1::text, 'zones', "
      "zonegate.visible_zones($1))::text WHERE zonegate.user_context($1) IS NOT NULL",
      {});
  return s;
}
const pg::Statement& filter_stmt() {
  static const pg::Statement s = pg::make_statement(
      "SELECT pg_catalog.jsonb_build_object('user_id', $1::text, 'requested', $2::bigint[], "
      "'zones', zonegate.filter_zones($1, $2::bigint[]))::text "
      "WHERE zonegate.user_context($1) IS NOT NULL",
      {});
  return s;
}
const pg::Statement& zone_at_stmt() {
  static const pg::Statement s = pg::make_statement(
      "WITH hit AS (SELECT zonegate.zone_at($1::float8, $2::float8) AS id) "
      "SELECT pg_catalog.jsonb_build_object("
      "  'lon', $1::float8, 'lat', $2::float8, 'id', z.id, 'code', z.code, 'name', z.name, "
      "  'level', z.level, 'path', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
      "      'id', p.id, 'code', p.code, 'name', p.name, 'level', p.level) ORDER BY u.ord) "
      "    FROM unnest(zonegate.zone_path(z.id)) WITH ORDINALITY AS u(pid, ord) "
      "    JOIN zonegate.zones p ON p.id = u.pid))::text "
      "FROM hit JOIN zonegate.zones z ON z.id = hit.id",
      {});
  return s;
}

// The upstream for one statement: its single text value becomes a 200 response, no row or
// NULL becomes `missing()`.
cache::Upstream statement_upstream(const ExchangePtr& ex, pg::Statement st,
                                   std::function<http::Response()> missing) {
  pg::Job job;
  job.statements.push_back(std::move(st));
  job.read_only = true;   // the /v1 statements only read...
  job.share_sync = true;  // ...and set nothing
  return database_upstream(ex, std::move(job), [missing = std::move(missing)](const pg::Result& r) {
    const std::optional<std::string>* v = r.scalar();
    if (v == nullptr || !*v) return missing();
    return http::Response(200, **v);
  });
}

// Runs one statement through the route's cache policy.
void run(App& app, const ExchangePtr& ex, const std::string& route, std::string key,
         std::string tag, pg::Statement st, std::function<http::Response()> missing) {
  app.serve_cached(ex, app.route_policy(route),
                   cache::CacheKey{route, std::move(key), std::move(tag)},
                   statement_upstream(ex, std::move(st), std::move(missing)));
}

http::Response no_user(const std::string& uid) {
  return http::error_response(404, "user_not_found", "no active user \"" + uid + "\"", "",
                              "the user does not exist or is inactive");
}

// Both context routes share one entry per user: the document does not depend on who asks.
void context_of(App& app, const ExchangePtr& ex, const std::string& uid) {
  pg::Statement st = ctx_stmt();
  st.params = {uid};
  run(app, ex, ex->route, cache::make_key({"ctx", uid}), uid, std::move(st),
      [uid] { return no_user(uid); });
}

// Parses {"zones": [ids...]} (zones may be absent or null: everything visible).
bool parse_filter_body(const std::string& body, std::optional<std::string>& array,
                       std::string& err) {
  if (body.empty()) {
    array.reset();
    return true;
  }
  rapidjson::Document d;
  if (!json::parse(body, d, err)) return false;
  if (!d.IsObject()) {
    err = "the body must be a JSON object like {\"zones\": [1, 2]}";
    return false;
  }
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    if (std::string(it->name.GetString()) != "zones") {
      err = std::string("unknown member \"") + it->name.GetString() +
            "\"; only \"zones\" is accepted";
      return false;
    }
  }
  auto z = d.FindMember("zones");
  if (z == d.MemberEnd() || z->value.IsNull()) {
    array.reset();
    return true;
  }
  if (!z->value.IsArray()) {
    err = "\"zones\" must be an array of zone ids";
    return false;
  }
  std::string a = "{";
  for (rapidjson::SizeType i = 0; i < z->value.Size(); ++i) {
    const auto& v = z->value[i];
    if (!v.IsInt64()) {
      err = "\"zones\"[" + std::to_string(i) + "] is not an integer zone id";
      return false;
    }
    if (i > 0) a += ',';
    a += std::to_string(v.GetInt64());
  }
  array = a + "}";
  return true;
}

bool parse_coordinate(const std::string& s, double lo, double hi, double& out) {
  if (s.empty() || s.size() > 64) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && *end == '\0' && std::isfinite(out) && out >= lo && out <= hi;
}

}  // namespace

void add_v1_routes(App& app, http::Router& router) {
  router.add("GET", "/v1/me/context", "me_context", [&app](const ExchangePtr& ex, const Params&) {
    auth::Claims c;
    if (!authenticate(ex, c)) return;
    context_of(app, ex, c.subject);
  });

  router.add("GET", "/v1/users/{id}/context", "user_context",
             [&app](const ExchangePtr& ex, const Params& p) {
               auth::Claims c;
               if (!authenticate(ex, c)) return;
               const std::string service = app.live()->auth.service_role;  // reloadable
               if (c.role != service) {
                 ex->respond(http::error_response(
                     403, "forbidden", "reading another user's context needs the service role",
                     "token role is \"" + c.role + "\"",
                     "use a token whose role claim is \"" + service + "\""));
                 return;
               }
               context_of(app, ex, p[0]);
             });

  router.add("GET", "/v1/me/zones", "me_zones", [&app](const ExchangePtr& ex, const Params&) {
    auth::Claims c;
    if (!authenticate(ex, c)) return;
    pg::Statement st = zones_stmt();
    st.params = {c.subject};
    std::string uid = c.subject;
    run(app, ex, "me_zones", cache::make_key({"zones", uid}), uid, std::move(st),
        [uid] { return no_user(uid); });
  });

  router.add(
      "POST", "/v1/me/zones/filter", "me_zones_filter",
      [&app](const ExchangePtr& ex, const Params&) {
        auth::Claims c;
        if (!authenticate(ex, c)) return;
        const std::string* ct = ex->req.header("content-type");
        if (!ex->req.body.empty() && (ct == nullptr || ct->rfind("application/json", 0) != 0)) {
          ex->respond(http::error_response(415, "unsupported_media_type",
                                           "send the filter as application/json"));
          return;
        }
        std::optional<std::string> zones;
        std::string err;
        if (!parse_filter_body(ex->req.body, zones, err)) {
          ex->respond(http::error_response(400, "invalid_body", "invalid filter request", err,
                                           "send {\"zones\": [zone ids]}"));
          return;
        }
        pg::Statement st = filter_stmt();
        st.params = {c.subject, zones};
        std::string uid = c.subject;
        std::string key = cache::make_key({"filter", uid});
        cache::append_key_value(key, zones);  // NULL: everything visible
        run(app, ex, "me_zones_filter", std::move(key), uid, std::move(st),
            [uid] { return no_user(uid); });
      });

  router.add("GET", "/v1/zones/at", "zones_at", [&app](const ExchangePtr& ex, const Params&) {
    auth::Claims c;
    if (!authenticate(ex, c)) return;
    std::vector<std::pair<std::string, std::string>> q;
    if (!http::parse_query(ex->req.query, q)) {
      ex->respond(http::error_response(400, "invalid_parameter", "malformed query string"));
      return;
    }
    std::string lon_s, lat_s;
    for (auto& [k, v] : q) {
      if (k == "lon") lon_s = v;
      if (k == "lat") lat_s = v;
    }
    double lon = 0, lat = 0;
    if (!parse_coordinate(lon_s, -180, 180, lon) || !parse_coordinate(lat_s, -90, 90, lat)) {
      ex->respond(http::error_response(
          400, "invalid_parameter", "lon and lat must be numbers within [-180, 180] and [-90, 90]",
          "got lon=" + lon_s.substr(0, 32) + " lat=" + lat_s.substr(0, 32)));
      return;
    }
    if (!app.catalog()->zone_at) {
      ex->respond(http::error_response(
          501, "not_implemented", "zonegate.zone_at is not available in this database", "",
          "update the zonegate extension (ALTER EXTENSION zonegate UPDATE)"));
      return;
    }
    pg::Statement st = zone_at_stmt();
    char canon[64];
    std::snprintf(canon, sizeof canon, "%.17g,%.17g", lon, lat);
    st.params = {lon_s, lat_s};
    run(app, ex, "zones_at", cache::make_key({"at", canon}), "", std::move(st),
        [] { return http::error_response(404, "no_zone", "no zone contains this point"); });
  });
}

}  // namespace zonegate::api
