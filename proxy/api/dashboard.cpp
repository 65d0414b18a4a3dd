// The live dashboard at /admin/: the page, its assets (embedded) and its data endpoint. The page
// and data need the admin token, as a bearer token or a session cookie that a small sign-in form
// sets. Everything is served under a strict Content-Security-Policy.
#include <string>

#include "admin/dashboard.hpp"
#include "api/app.hpp"
#include "api/errors.hpp"
#include "common/json.hpp"

namespace zonegate::api {

std::string health_json(App& app, bool full);  // api/observability.cpp

namespace {

using http::ExchangePtr;
using http::Params;

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
constexpr const char* kCookie = "zg_admin";

std::string cookie(const http::Request& req, const std::string& name) {
  const std::string* h = req.header("cookie");
  if (h == nullptr) return {};
  size_t pos = 0;
  while (pos < h->size()) {
    size_t end = h->find(';', pos);
    if (end == std::string::npos) end = h->size();
    std::string part = h->substr(pos, end - pos);
    size_t a = part.find_first_not_of(' ');
    if (a != std::string::npos) part = part.substr(a);
    if (part.compare(0, name.size() + 1, name + "=") == 0) return part.substr(name.size() + 1);
    pos = end + 1;
  }
  return {};
}

bool signed_in(App& app, const ExchangePtr& ex) {
  const AdminAuth& admin = app.admin_auth();
  return admin.bearer_matches(ex->req) || admin.valid_session(cookie(ex->req, kCookie));
}

void secure(http::Response& r) {
  r.add_header("Content-Security-Policy", kCsp);
  r.add_header("Cross-Origin-Opener-Policy", "same-origin");
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

http::Response login_page(int status, const std::string& error) {
  std::string body =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>zonegate-proxy: sign "
      "in"
      "</title><link rel=\"stylesheet\" href=\"/admin/assets/app.css\"></head><body>"
      "<form class=\"login\" method=\"post\" action=\"/admin/login\"><h1>zonegate-proxy</h1>"
      "<p>The dashboard needs the admin token (<code>auth.admin_token</code>).</p>";
  if (!error.empty()) body += "<p class=\"error\" id=\"error\">" + html_escape(error) + "</p>";
  body +=
      "<label for=\"token\">Admin token</label><input id=\"token\" name=\"token\" "
      "type=\"password\" "
      "autocomplete=\"current-password\" required><button type=\"submit\">Sign in</button></form>"
      "</body></html>";
  http::Response r(status, body);
  r.content_type = "text/html; charset=utf-8";
  if (status == 401) r.add_header("WWW-Authenticate", "Bearer");
  secure(r);
  return r;
}

// Every dashboard route is the admin listener's alone.
void add_admin_route(http::Router& router, const char* method, const char* pattern,
                     const char* name, http::RouteFn fn) {
  router.add(method, pattern, name, std::move(fn), http::Exposure::kAdmin);
}

http::Response asset_response(const admin::Asset& a) {
  http::Response r(200, std::string(reinterpret_cast<const char*>(a.data), a.size));
  r.content_type = a.content_type;
  r.add_header("Cache-Control", "private, max-age=300");
  secure(r);
  return r;
}

std::string series_json(App& app) {
  json::Writer w;
  w.start_object();
  w.key("samples");
  w.start_array();
  if (app.registry() != nullptr) {
    for (const metrics::Sample& s : app.registry()->series()) {
      w.start_object();
      w.key("t");
      w.number(s.t);
      w.key("rps");
      w.number(s.rps);
      w.key("error_rate");
      w.number(s.error_rate);
      w.key("p50_ms");
      w.number(s.p50_ms);
      w.key("p95_ms");
      w.number(s.p95_ms);
      w.key("p99_ms");
      w.number(s.p99_ms);
      w.key("hit_rate");
      w.number(s.hit_rate);
      w.key("pool_busy");
      w.number(s.pool_busy);
      w.key("pool_ready");
      w.number(s.pool_ready);
      w.key("pool_waiting");
      w.number(s.pool_waiting);
      w.key("invalidation_lag_ms");
      w.number(s.invalidation_lag_ms);
      w.key("open_connections");
      w.number(s.open_connections);
      w.end_object();
    }
  }
  w.end_array();
  w.key("health");
  w.raw(health_json(app, true));
  w.end_object();
  return w.take();
}

}  // namespace

void add_dashboard_routes(App& app, http::Router& router) {
  auto page = [&app](const ExchangePtr& ex, const Params&) {
    if (!app.admin_auth().enabled()) {
      ex->respond(login_page(403, "The admin API is disabled: set auth.admin_token."));
      return;
    }
    if (!signed_in(app, ex)) {
      ex->respond(login_page(401, ""));
      return;
    }
    ex->respond(asset_response(*admin::find_asset("index.html")));
  };
  add_admin_route(router, "GET", "/admin", "admin_page", page);
  add_admin_route(router, "GET", "/admin/", "admin_page", page);

  add_admin_route(router, "GET", "/admin/assets/{name}", "admin_asset",
                  [&app](const ExchangePtr& ex, const Params& p) {
                    const admin::Asset* a =
                        p[0] == "index.html" ? nullptr : admin::find_asset(p[0]);
                    if (a == nullptr) {
                      ex->respond(http::error_response(404, "not_found", "no asset " + p[0]));
                      return;
                    }
                    // The stylesheet is public: the sign-in form uses it. Scripts need a session.
                    if (p[0] != "app.css" && !signed_in(app, ex)) {
                      ex->respond(auth::unauthorized("the admin token is required", false));
                      return;
                    }
                    ex->respond(asset_response(*a));
                  });

  add_admin_route(
      router, "POST", "/admin/login", "admin_login", [&app](const ExchangePtr& ex, const Params&) {
        AdminAuth& admin = app.admin_auth();
        // Every attempt counts, before the token is looked at: a guesser learns
        // nothing past the throttle.
        resilience::RateDecision d = admin.admit_login(ex->req.client_addr);
        if (!d.allowed) {
          http::Response r = login_page(429, "Too many sign-in attempts: wait.");
          const int64_t ns = d.retry_after_ns;
          r.add_header("Retry-After", retry_after(ns / 1'000'000 + (ns % 1'000'000 != 0)));
          add_proxy_status(r, "http_request_denied", "admin.login_rate");
          ex->respond(std::move(r));
          return;
        }
        std::vector<std::pair<std::string, std::string>> form;
        std::string given;
        if (http::parse_query(ex->req.body, form)) {
          for (auto& [k, v] : form) {
            if (k == "token") given = v;
          }
        }
        const bool ok = admin.token_matches(given);
        admin.count_login(ok);
        if (!ok) {
          ex->respond(login_page(401, "That is not the admin token."));
          return;
        }
        http::Response r(303, "");
        r.add_header("Location", "/admin/");
        r.add_header("Set-Cookie", std::string(kCookie) + "=" + admin.new_session() +
                                       admin.cookie_attributes(false));
        secure(r);
        ex->respond(std::move(r));
      });

  // Signing out ends every session (the epoch moves): a leaked cookie dies with it.
  add_admin_route(router, "POST", "/admin/logout", "admin_logout",
                  [&app](const ExchangePtr& ex, const Params&) {
                    if (signed_in(app, ex)) app.admin_auth().revoke_sessions();
                    http::Response r(303, "");
                    r.add_header("Location", "/admin/");
                    r.add_header("Set-Cookie", std::string(kCookie) + "=" +
                                                   app.admin_auth().cookie_attributes(true));
                    secure(r);
                    ex->respond(std::move(r));
                  });

  add_admin_route(router, "GET", "/admin/api/series", "admin_series",
                  [&app](const ExchangePtr& ex, const Params&) {
                    if (!signed_in(app, ex)) {
                      ex->respond(auth::unauthorized("the admin token is required",
                                                     !auth::bearer_token(ex->req).empty()));
                      return;
                    }
                    http::Response r(200, series_json(app));
                    secure(r);
                    ex->respond(std::move(r));
                  });
}

}  // namespace zonegate::api
