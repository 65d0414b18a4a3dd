// GET /: the Swagger 2.0 document of the /rpc functions; see rpc_openapi.hpp. Its shape follows
// PostgREST 12's root (src/PostgREST/Response/OpenAPI.hs): the same paths, tags, parameter and
// property forms, so tools written against PostgREST read it alike.
#include "api/rpc_openapi.hpp"

#include <strings.h>

#include <algorithm>
#include <vector>

#include "api/app.hpp"
#include "common/json.hpp"
#include "core/version.hpp"

namespace zonegate::api {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_array(std::string_view pg_type) {
  return ends_with(pg_type, "[]");
}

// One argument as the document shows it: the union of a function's overloads, so an argument is
// required only when every overload needs it.
struct DocArg {
  std::string name;
  std::string type;
  bool required = true;
};

std::vector<DocArg> union_args(const std::vector<RpcFunction>& overloads) {
  std::vector<DocArg> out;
  for (const RpcFunction& f : overloads) {
    for (const RpcArg& a : f.args) {
      if (a.name.empty()) continue;  // unnamed inputs cannot be passed by name
      auto it =
          std::find_if(out.begin(), out.end(), [&](const DocArg& d) { return d.name == a.name; });
      if (it == out.end()) {
        out.push_back({a.name, a.type, !a.has_default});
      } else if (a.has_default) {
        it->required = false;
      }
    }
  }
  for (DocArg& d : out) {
    for (const RpcFunction& f : overloads) {
      bool has = std::any_of(f.args.begin(), f.args.end(),
                             [&](const RpcArg& a) { return a.name == d.name; });
      if (!has) d.required = false;
    }
  }
  return out;
}

// A schema's type, format and, for an array, the type of its items (PostgREST's property form).
void write_type(json::Writer& w, const std::string& pg_type) {
  std::string_view t = swagger_type(pg_type);
  if (!t.empty()) w.field("type", t);
  w.field("format", pg_type);
  if (t == "array") {
    w.key("items");
    w.start_object();
    std::string_view item = swagger_type(std::string_view(pg_type).substr(0, pg_type.size() - 2));
    w.field("type", item.empty() || item == "array" ? std::string_view("string") : item);
    w.end_object();
  }
}

void write_response_codes(json::Writer& w, bool returns_void) {
  w.key("responses");
  w.start_object();
  w.key(returns_void ? "204" : "200");
  w.start_object();
  w.field("description", returns_void ? "No Content" : "OK");
  w.end_object();
  w.end_object();
}

void write_strings(json::Writer& w, const char* key, std::initializer_list<const char*> items) {
  w.key(key);
  w.start_array();
  for (const char* s : items)
    w.string(s);
  w.end_array();
}

// GET and POST of one function, as PostgREST's makeProcPathItem writes them.
void write_function(json::Writer& w, const std::string& schema, const std::string& name,
                    const std::vector<RpcFunction>& overloads) {
  std::vector<DocArg> args = union_args(overloads);
  std::string summary;
  bool returns_set = false, returns_void = true;
  for (const RpcFunction& f : overloads) {
    summary += (summary.empty() ? "" : ", ") + schema + "." + f.signature;
    returns_set = returns_set || f.returns_set;
    returns_void = returns_void && f.returns_void;
  }
  w.key("/rpc/" + name);
  w.start_object();
  for (const char* method : {"get", "post"}) {
    const bool get = method[0] == 'g';
    w.key(method);
    w.start_object();
    w.field("summary", summary);
    w.key("tags");
    w.start_array();
    w.string("(rpc) " + name);
    w.end_array();
    if (returns_set) {
      write_strings(w, "produces",
                    {"application/json", "application/vnd.pgrst.object+json", "text/csv"});
    } else {
      write_strings(w, "produces", {"application/json", "application/vnd.pgrst.object+json"});
    }
    w.key("parameters");
    w.start_array();
    if (get) {
      for (const DocArg& a : args) {
        w.start_object();
        w.field("name", a.name);
        w.field("in", "query");
        w.field("required", a.required);
        // A query value is text: arrays are written as PostgreSQL array literals ({1,2}), JSON
        // as its text.
        std::string_view t = swagger_type(a.type);
        w.field("type", t.empty() || t == "array" ? std::string_view("string") : t);
        w.field("format", a.type);
        w.end_object();
      }
    } else {
      w.start_object();
      w.field("name", "args");
      w.field("in", "body");
      w.field("required", true);
      w.key("schema");
      w.start_object();
      w.field("type", "object");
      w.key("properties");
      w.start_object();
      for (const DocArg& a : args) {
        w.key(a.name);
        w.start_object();
        write_type(w, a.type);
        w.end_object();
      }
      w.end_object();
      // JSON Schema draft 4 (Swagger 2.0's) wants at least one name in a "required" list.
      if (std::any_of(args.begin(), args.end(), [](const DocArg& a) { return a.required; })) {
        w.key("required");
        w.start_array();
        for (const DocArg& a : args)
          if (a.required) w.string(a.name);
        w.end_array();
      }
      w.end_object();
      w.end_object();
      w.start_object();
      w.field("$ref", "#/parameters/preferParams");
      w.end_object();
    }
    w.end_array();
    write_response_codes(w, returns_void);
    w.end_object();
  }
  w.end_object();
}

}  // namespace

std::string_view swagger_type(std::string_view pg_type) {
  std::string_view t = pg_type;
  if (t == "character varying" || t == "character" || t == "text") return "string";
  if (t == "boolean") return "boolean";
  if (t == "smallint" || t == "integer" || t == "bigint") return "integer";
  if (t == "numeric" || t == "real" || t == "double precision") return "number";
  if (t == "json" || t == "jsonb") return "";
  if (is_array(t)) return "array";
  return "string";
}

bool accepts_openapi(const std::string* accept) {
  if (accept == nullptr) return true;
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
      v.remove_suffix(1);
    return v;
  };
  std::string_view rest(*accept);
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t semi = item.find(';');
    std::string_view type = trim(item.substr(0, semi));
    // q=0 (or 0.0, 0.000) means "not this one" (RFC 9110 §12.4.2); any other weight accepts.
    bool refused = false;
    for (size_t p = semi; p != std::string_view::npos && p < item.size();
         p = item.find(';', p + 1)) {
      std::string_view param = trim(item.substr(p + 1, item.find(';', p + 1) - p - 1));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        std::string_view q = param.substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    for (const char* ok :
         {"application/openapi+json", "application/json", "application/*", "*/*"}) {
      if (!refused && type.size() == std::char_traits<char>::length(ok) &&
          strncasecmp(type.data(), ok, type.size()) == 0) {
        return true;
      }
    }
    if (comma == std::string_view::npos) return false;
    rest.remove_prefix(comma + 1);
  }
}

std::string rpc_swagger(const Catalog& cat, const std::string& schema) {
  std::vector<const std::string*> names;
  for (const auto& entry : cat.functions)
    names.push_back(&entry.first);
  std::sort(names.begin(), names.end(), [](const auto* a, const auto* b) { return *a < *b; });

  json::Writer w;
  w.start_object();
  w.field("swagger", "2.0");
  w.key("info");
  w.start_object();
  w.field("title", "zonegate /rpc");
  w.field("description",
          "The /rpc functions of schema " + schema +
              ", as PostgREST describes its root. The whole API (OpenAPI 3) is at /openapi.json.");
  w.field("version", ZONEGATE_VERSION);
  w.end_object();
  w.key("externalDocs");
  w.start_object();
  w.field("description", "The whole zonegate API, OpenAPI 3");
  w.field("url", "/openapi.json");
  w.end_object();
  w.field("basePath", "/");
  write_strings(w, "consumes", {"application/json", "application/x-www-form-urlencoded"});
  write_strings(w, "produces", {"application/json", "application/vnd.pgrst.object+json"});
  w.key("securityDefinitions");
  w.start_object();
  w.key("JWT");
  w.start_object();
  w.field("type", "apiKey");
  w.field("in", "header");
  w.field("name", "Authorization");
  w.field("description", "Add the token prepending \"Bearer \" (without quotes) to it");
  w.end_object();
  w.end_object();
  w.key("security");
  w.start_array();
  w.start_object();
  w.key("JWT");
  w.start_array();
  w.end_array();
  w.end_object();
  w.end_array();
  w.key("parameters");
  w.start_object();
  w.key("preferParams");
  w.start_object();
  w.field("name", "Prefer");
  w.field("description", "Preference");
  w.field("required", false);
  w.field("in", "header");
  w.field("type", "string");
  write_strings(w, "enum", {"params=single-object"});
  w.end_object();
  w.end_object();
  w.key("paths");
  w.start_object();
  w.key("/");
  w.start_object();
  w.key("get");
  w.start_object();
  write_strings(w, "tags", {"Introspection"});
  w.field("summary", "OpenAPI description (this document)");
  write_strings(w, "produces", {"application/openapi+json", "application/json"});
  write_response_codes(w, false);
  w.end_object();
  w.end_object();
  w.key("/openapi.json");
  w.start_object();
  w.key("get");
  w.start_object();
  write_strings(w, "tags", {"Introspection"});
  w.field("summary", "The whole zonegate API as an OpenAPI 3 document");
  write_strings(w, "produces", {"application/openapi+json"});
  write_response_codes(w, false);
  w.end_object();
  w.end_object();
  for (const std::string* name : names)
    write_function(w, schema, *name, cat.functions.at(*name));
  w.end_object();
  w.end_object();
  return w.take();
}

void add_rpc_openapi_route(App& app, http::Router& router) {
  router.add("GET", "/", "openapi_root", [&app](const http::ExchangePtr& ex, const http::Params&) {
    // The document lists what a caller may call: it asks what /rpc asks (a token, or the
    // anonymous role).
    auth::Claims claims;
    if (!authenticate(ex, claims)) return;
    if (!accepts_openapi(ex->req.header("accept"))) {
      ex->respond(http::error_response(
          406, "PGRST107",
          "None of these media types are available: " + ex->req.header("accept")->substr(0, 200),
          "", "ask for application/openapi+json or application/json"));
      return;
    }
    http::Response resp(200, rpc_swagger(*app.catalog(), app.cfg().rpc.schema));
    resp.content_type = "application/openapi+json; charset=utf-8";
    ex->respond(std::move(resp));
  });
}

}  // namespace zonegate::api
