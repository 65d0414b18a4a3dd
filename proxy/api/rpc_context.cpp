// The statements around a /rpc call; see rpc_context.hpp.
#include "api/rpc_context.hpp"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

#include "auth/authenticator.hpp"
#include "cache/key.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::api::rpc {

namespace {

// The request's context for the transaction, in one round of set_config (is_local true: it
// ends with the transaction, so nothing outlives the request on the pooled connection). One
// text per shape so that each is a prepared statement; every value is a bound parameter.
// `identity`: zonegate.user_id and request.jwt.claims (not for a shared scope's call, whose
// answer is everybody's); `role`: set_config('role', ...), which is SET LOCAL ROLE with the
// name as a parameter instead of an identifier in the text; `read_only`: the transaction may
// not write (going read-only is allowed at any point of a transaction, unlike going back).
const pg::Statement& context_statement(bool identity, bool role, bool read_only) {
  static const std::array<pg::Statement, 8> all = [] {
    std::array<pg::Statement, 8> out;
    for (int shape = 0; shape < 8; ++shape) {
      std::string sql =
          "SELECT pg_catalog.set_config('request.method', $1, true), "
          "pg_catalog.set_config('request.path', $2, true), "
          "pg_catalog.set_config('request.headers', $3, true), "
          "pg_catalog.set_config('request.cookies', $4, true)";
      int next = 5;
      if ((shape & 4) != 0) {
        sql += ", pg_catalog.set_config('zonegate.user_id', $5, true), ";
        sql += "pg_catalog.set_config('request.jwt.claims', $6, true)";
        next = 7;
      }
      if ((shape & 2) != 0)
        sql += ", pg_catalog.set_config('role', $" + std::to_string(next) + ", true)";
      if ((shape & 1) != 0) sql += ", pg_catalog.set_config('transaction_read_only', 'on', true)";
      out[static_cast<size_t>(shape)] = pg::make_statement(sql, {});
    }
    return out;
  }();
  return all[(identity ? 4U : 0U) | (role ? 2U : 0U) | (read_only ? 1U : 0U)];
}

// What a function set for the answer. When the transaction is rolled back, the warnings of
// SET CONSTRAINTS and ROLLBACK outside a transaction block (the pipeline's transaction is an
// implicit one) are not worth a line on the proxy's stderr each.
const pg::Statement& read_back_statement(bool rollback) {
  static const pg::Statement commit = pg::make_statement(
      "SELECT pg_catalog.current_setting('response.headers', true), "
      "pg_catalog.current_setting('response.status', true)",
      {});
  static const pg::Statement quiet = pg::make_statement(
      "SELECT pg_catalog.current_setting('response.headers', true), "
      "pg_catalog.current_setting('response.status', true), "
      "pg_catalog.set_config('client_min_messages', 'error', true)",
      {});
  return rollback ? quiet : commit;
}

// PostgREST's Prefer: tx=rollback. Deferred constraints are checked first, so that a call that
// would have failed at COMMIT fails here too; then ROLLBACK ends the implicit transaction the
// pipeline runs in (the statements before it are undone; the Sync commits nothing). An explicit
// BEGIN ... ROLLBACK would not do: after an error the Sync leaves an explicit block open and
// aborted, and the pooled connection with it.
const pg::Statement& constraints_statement() {
  static const pg::Statement s = pg::make_statement("SET CONSTRAINTS ALL IMMEDIATE", {});
  return s;
}

const pg::Statement& rollback_statement() {
  static const pg::Statement s = pg::make_statement("ROLLBACK", {});
  return s;
}

// `name` (a prepared statement's) made the name of the same statement for `role`.
std::shared_ptr<const std::string> role_statement_name(const std::string& name,
                                                       const std::string& role) {
  uint64_t h = 1099511628211ULL ^ 0x726f6c65ULL;  // FNV-1a, seeded apart from the SQL names
  for (unsigned char c : role) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "_%016llx", static_cast<unsigned long long>(h));
  return std::make_shared<const std::string>(name + suffix);
}

// The parts of a Prefer header, trimmed, in order.
std::vector<std::string_view> prefer_tokens(const http::Request& req) {
  std::vector<std::string_view> out;
  for (const http::Header& h : req.headers) {
    if (h.name != "prefer") continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view part = v.substr(0, comma);
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      while (!part.empty() && (part.front() == ' ' || part.front() == '\t'))
        part.remove_prefix(1);
      while (!part.empty() && (part.back() == ' ' || part.back() == '\t'))
        part.remove_suffix(1);
      if (!part.empty()) out.push_back(part);
    }
  }
  return out;
}

// RFC 9110 tchar.
bool tchar(unsigned char c) {
  if (std::isalnum(c) != 0) return true;
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return kExtra.find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return tchar(static_cast<unsigned char>(c)); });
}

// A field value: visible characters, spaces, tabs and obs-text, never a control byte.
bool field_value_ok(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// Fields that frame the message or belong to one hop: the proxy writes them itself, and a
// second Content-Length or Transfer-Encoding would let a client and a cache in between read
// two different answers out of one.
bool is_framing_field(std::string_view name) {
  static constexpr const char* kFraming[] = {"content-length", "transfer-encoding", "connection",
                                             "keep-alive",     "upgrade",           "te",
                                             "trailer",        "proxy-connection"};
  return std::any_of(std::begin(kFraming), std::end(kFraming), [&](const char* f) {
    return name.size() == std::strlen(f) && strncasecmp(name.data(), f, name.size()) == 0;
  });
}

http::Response headers_error(const std::string& why) {
  return http::error_response(500, "PGRST111",
                              "response.headers guc must be a JSON array composed of objects with "
                              "a single key and a string value",
                              why,
                              "set it with set_config('response.headers', '[{\"Name\": "
                              "\"value\"}]', true)");
}

http::Response status_error(const std::string& why) {
  return http::error_response(500, "PGRST112", "response.status guc must be a valid status code",
                              why, "a final status: 200 to 599");
}

// A role name for a message: clipped, and valid UTF-8.
std::string shown(const std::string& role) {
  return valid_utf8(role.size() > 80 ? role.substr(0, 80) + "..." : role);
}

// Who may become what, for the messages of a refused role.
constexpr const char* kRoleRule =
    "a request runs as a role the proxy's login role is a member of; never a superuser, a role "
    "that inherits a superuser's privileges, or a predefined pg_ role";

}  // namespace

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string headers_json(const http::Request& req) {
  std::vector<std::pair<std::string_view, std::string>> fields;
  for (const http::Header& h : req.headers) {
    if (h.name == "cookie") continue;
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&](const auto& f) { return f.first == h.name; });
    if (it == fields.end()) {
      fields.emplace_back(h.name, h.value);
    } else {
      it->second += ", " + h.value;  // RFC 9110 §5.3: one field, its values joined
    }
  }
  json::Writer w;
  w.start_object();
  for (const auto& [name, value] : fields)
    w.field(valid_utf8(name), valid_utf8(value));
  w.end_object();
  return w.take();
}

std::string cookies_json(const http::Request& req) {
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  for (const http::Header& h : req.headers) {
    if (h.name != "cookie") continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      size_t semi = v.find(';');
      std::string_view part = v.substr(0, semi);
      v = semi == std::string_view::npos ? std::string_view() : v.substr(semi + 1);
      size_t eq = part.find('=');
      std::string_view name = part.substr(0, eq);
      std::string_view value =
          eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      auto trim = [](std::string_view& t) {
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
          t.remove_prefix(1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
          t.remove_suffix(1);
      };
      trim(name);
      trim(value);
      if (name.empty()) continue;
      auto it =
          std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == name; });
      if (it != pairs.end()) {
        it->second = value;  // the last of a name wins, as in PostgREST
      } else {
        pairs.emplace_back(name, value);
      }
    }
  }
  json::Writer w;
  w.start_object();
  for (const auto& [name, value] : pairs)
    w.field(valid_utf8(name), valid_utf8(value));
  w.end_object();
  return w.take();
}

Transaction transaction_for(std::string_view method, const std::string& tx_end,
                            const http::Request& req) {
  Transaction t;
  t.read_only = method == "GET" || method == "HEAD";
  t.rollback = tx_end == "rollback" || tx_end == "rollback-allow-override";
  if (tx_end != "commit-allow-override" && tx_end != "rollback-allow-override") return t;
  for (std::string_view p : prefer_tokens(req)) {
    if (p == "tx=commit" || p == "tx=rollback") {
      t.rollback = p == "tx=rollback";
      t.applied = std::string(p);
      break;  // the first one wins, as in PostgREST
    }
  }
  return t;
}

std::string effective_claims(const auth::Claims& claims, bool has_token, const std::string& role) {
  if (!has_token) {
    json::Writer w;
    w.start_object();
    if (!role.empty()) w.field("role", valid_utf8(role));
    w.end_object();
    return w.take();
  }
  if (role.empty() || (claims.role_at_top && claims.role == role)) return claims.json;
  rapidjson::Document d;
  std::string err;
  if (!json::parse(claims.json, d, err) || !d.IsObject()) return claims.json;
  d.RemoveMember("role");
  rapidjson::Value v;
  v.SetString(role.data(), static_cast<rapidjson::SizeType>(role.size()), d.GetAllocator());
  d.AddMember("role", v, d.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

bool apply_response_gucs(const std::optional<std::string>& headers,
                         const std::optional<std::string>& status, http::Response& resp,
                         http::Response& error) {
  if (status && !status->empty()) {
    const std::string& s = *status;
    bool digits = s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) {
                    return std::isdigit(static_cast<unsigned char>(c)) != 0;
                  });
    int code = digits ? std::stoi(s) : 0;
    if (code < 200 || code > 599) {
      error = status_error("\"" + shown(s) + "\" is not a final HTTP status (200 to 599)");
      return false;
    }
    resp.status = code;
  }
  if (!headers || headers->empty()) return true;
  rapidjson::Document d;
  std::string why;
  if (!json::parse(*headers, d, why)) {
    error = headers_error("not JSON: " + why);
    return false;
  }
  if (!d.IsArray()) {
    error = headers_error("not an array");
    return false;
  }
  std::vector<http::Header> set;
  for (const auto& item : d.GetArray()) {
    if (!item.IsObject() || item.MemberCount() != 1 || !item.MemberBegin()->value.IsString()) {
      error = headers_error("each item must be an object with one member, a string");
      return false;
    }
    const auto& m = *item.MemberBegin();
    std::string name(m.name.GetString(), m.name.GetStringLength());
    std::string value(m.value.GetString(), m.value.GetStringLength());
    if (!is_token(name)) {
      error = headers_error("\"" + shown(name) + "\" is not a header name (an RFC 9110 token)");
      return false;
    }
    if (!field_value_ok(value)) {
      error = headers_error("the value of " + name + " has a control character");
      return false;
    }
    if (is_framing_field(name)) {
      error = headers_error(name + " is the proxy's to write: it frames the answer");
      return false;
    }
    set.push_back({std::move(name), std::move(value)});
  }
  // The function's fields replace the proxy's of the same name (PostgREST does the same).
  for (const http::Header& h : set) {
    resp.headers.erase(std::remove_if(resp.headers.begin(), resp.headers.end(),
                                      [&](const http::Header& o) {
                                        return strcasecmp(o.name.c_str(), h.name.c_str()) == 0;
                                      }),
                       resp.headers.end());
  }
  for (http::Header& h : set) {
    if (strcasecmp(h.name.c_str(), "content-type") == 0) {
      resp.content_type = std::move(h.value);
    } else {
      resp.headers.push_back(std::move(h));
    }
  }
  return true;
}

bool identify(const App& app, const http::ExchangePtr& ex, const Catalog& cat, Identity& out) {
  // The running auth settings (a reload may have changed anon_role): held for this request.
  const std::shared_ptr<const config::Config> live = app.live();
  const config::AuthConfig& ac = live->auth;
  auth::Authenticator& authn = worker_state(ex).auth;
  http::Response err;
  const bool has_token = !auth::bearer_token(ex->req).empty();
  // Without a token: auth.anon_role, or the 401 every authenticated route gives.
  if ((has_token || ac.anon_role.empty()) && !authn.verify(ex->req, out.claims, err)) {
    ex->respond(std::move(err));
    return false;
  }
  ex->user = out.claims.subject;
  // PostgREST: the role claim when there is one, else the anonymous role. Without an anonymous
  // role, a token with a subject runs as the login role (as /rpc always did) and a token with
  // neither is refused like before.
  bool switches = true;
  if (out.claims.has_role) {
    out.role = out.claims.role;  // "" included: no role has that name, so it is refused below
  } else if (!ac.anon_role.empty()) {
    out.role = ac.anon_role;
  } else if (out.claims.subject.empty()) {
    ex->respond(auth::unauthorized("token has no " + ac.jwt.subject_claim + " claim", true));
    return false;
  } else {
    switches = false;
  }
  if (switches) {
    if (!cat.roles_loaded) {
      http::Response r = http::error_response(
          503, "PGRST002", "Could not query the database for the schema cache. Retrying.",
          "the roles a request may run as are not loaded yet", "retry after Retry-After");
      r.add_header("Retry-After", "1");
      ex->respond(std::move(r));
      return false;
    }
    if (cat.roles.count(out.role) == 0) {
      const bool anon = !out.claims.has_role;
      http::Response r =
          anon ? http::error_response(401, "PGRST302", "Anonymous access is disabled",
                                      "auth.anon_role \"" + shown(out.role) +
                                          "\" is not a role the proxy may switch to: " + kRoleRule,
                                      "GRANT the role to the proxy's login role, then SELECT "
                                      "zonegate.reload_schema()")
               : http::error_response(
                     401, "PGRST303", "JWT role \"" + shown(out.role) + "\" cannot be used",
                     std::string("it is not a role the proxy may switch to: ") + kRoleRule,
                     "GRANT the role to the proxy's login role, then SELECT "
                     "zonegate.reload_schema()");
      // The description is fixed: the role's bytes never reach a header.
      r.add_header("WWW-Authenticate",
                   anon ? std::string("Bearer")
                        : "Bearer error=\"invalid_token\", error_description=\"the token's role "
                          "cannot be used\"");
      ex->respond(std::move(r));
      return false;
    }
  }
  // PostgREST: a request running as the anonymous role (no role claim, or one naming it) gets
  // 401 rather than 403 for a privilege error (errors.cpp).
  ex->anonymous = switches && out.role == ac.anon_role;
  out.claims_json = effective_claims(out.claims, has_token, out.role);
  return true;
}

std::string pre_request_regproc(const config::RpcConfig& rpc) {
  if (rpc.pre_request.empty()) return "";
  size_t dot = rpc.pre_request.find('.');
  std::string schema = dot == std::string::npos ? rpc.schema : rpc.pre_request.substr(0, dot);
  std::string name = dot == std::string::npos ? rpc.pre_request : rpc.pre_request.substr(dot + 1);
  return quote_ident(schema) + "." + quote_ident(name) + "()";
}

bool prepare(const App& /*app*/, const http::ExchangePtr& ex, const Catalog& cat, Identity who,
             bool shared, CallContext& out) {
  const config::RpcConfig& rpc = cat.cfg->rpc;
  if (!rpc.pre_request.empty() && !cat.pre_request_found) {
    const std::string fn = pre_request_regproc(rpc);
    http::Response r =
        cat.roles_loaded
            ? http::error_response(500, "PGRSTX00", "rpc.pre_request names no function: " + fn, "",
                                   "create it, or correct rpc.pre_request; then SELECT "
                                   "zonegate.reload_schema()")
            : http::error_response(503, "PGRST002",
                                   "Could not query the database for the schema cache. Retrying.",
                                   "rpc.pre_request is not checked yet", "retry after Retry-After");
    if (r.status == 503) r.add_header("Retry-After", "1");
    ex->respond(std::move(r));
    return false;
  }
  out.who = std::move(who);
  out.shared = shared;
  out.tx = transaction_for(ex->req.method, rpc.tx_end, ex->req);
  out.method = ex->req.method;
  out.path = valid_utf8(ex->req.path);
  out.headers_json = headers_json(ex->req);
  out.cookies_json = cookies_json(ex->req);
  if (!rpc.pre_request.empty()) out.pre_request_sql = "SELECT " + pre_request_regproc(rpc);
  return true;
}

void cache_terms(const CallContext& ctx, std::string& key, config::CachePolicy& policy) {
  // "" (the login role) is no role name: the prefix tells every role apart.
  key.insert(0, cache::make_key({"as", ctx.who.role}));
  if (!ctx.tx.applied.empty()) policy.enabled = false;
}

void open_call(const CallContext& ctx, pg::Job& job) {
  const bool identity = !ctx.shared;
  const bool role = !ctx.who.role.empty();
  pg::Statement st = context_statement(identity, role, ctx.tx.read_only);
  st.params = {ctx.method, ctx.path, ctx.headers_json, ctx.cookies_json};
  if (identity) {
    // An anonymous request sets no identity: zonegate.user_id is empty for the transaction,
    // which also hides anything a session left there.
    st.params.emplace_back(ctx.who.claims.subject);
    st.params.emplace_back(ctx.who.claims_json);
  }
  if (role) st.params.emplace_back(ctx.who.role);
  job.statements.push_back(std::move(st));
  if (!ctx.pre_request_sql.empty()) {
    // Per worker thread: one prepared statement's name and text, made once.
    thread_local std::string sql;
    thread_local pg::Statement pre;
    if (sql != ctx.pre_request_sql) {
      sql = ctx.pre_request_sql;
      pre = pg::make_statement(sql, {});
    }
    job.statements.push_back(pre);
  }
}

void close_call(const CallContext& ctx, pg::Job& job) {
  job.result_statement = job.statements.size() - 1;
  // Postgres checks EXECUTE on a SQL function it inlines when it plans the statement, not when
  // it runs it: a prepared statement planned for a role that may call the function would run
  // it for one that may not. So each role plans its own: the pre-request and the call get a
  // name of their own per role (the text is the same; only the role tells the names apart).
  if (!ctx.who.role.empty()) {
    for (size_t i = 1; i < job.statements.size(); ++i)
      job.statements[i].name = role_statement_name(*job.statements[i].name, ctx.who.role);
  }
  job.statements.push_back(read_back_statement(ctx.tx.rollback));
  if (ctx.tx.rollback) {
    job.statements.push_back(constraints_statement());
    job.statements.push_back(rollback_statement());
  }
}

bool retryable(const CallContext& ctx, char volatility) {
  // A pre-request function may write (a request log, a rate counter): in a transaction that
  // commits writes, running it twice is not running it once.
  bool pre_request_writes = !ctx.pre_request_sql.empty() && !ctx.tx.read_only && !ctx.tx.rollback;
  return volatility != 'v' && !pre_request_writes;
}

Shape answer(const CallContext& ctx, Shape inner) {
  return [applied = ctx.tx.applied, inner = std::move(inner)](const pg::Result& r) {
    std::optional<std::string> headers, status;
    if (r.trailing.size() == 1 && r.trailing[0].size() >= 2) {
      headers = r.trailing[0][0];
      status = r.trailing[0][1];
    }
    http::Response resp = inner(r);
    http::Response error;
    if (!apply_response_gucs(headers, status, resp, error)) return error;
    if (!applied.empty()) {
      // One Preference-Applied: the shaping may have applied count= already.
      for (http::Header& h : resp.headers) {
        if (strcasecmp(h.name.c_str(), "preference-applied") == 0) {
          h.value += ", " + applied;
          return resp;
        }
      }
      resp.add_header("Preference-Applied", applied);
    }
    return resp;
  };
}

pg::Statement roles_statement(const std::string& pre_request) {
  // Membership as SET ROLE checks it: of the session user, inherited or not. A role that
  // inherits a superuser's privileges is as good as one, and pg_ roles reach the server's files.
  static const std::string sql =
      "SELECT (SELECT pg_catalog.json_agg(r.rolname::text) FROM pg_catalog.pg_roles r "
      "         WHERE NOT r.rolsuper "
      "           AND NOT pg_catalog.starts_with(r.rolname::text, 'pg_') "
      "           AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') "
      "           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles s WHERE s.rolsuper "
      "                             AND pg_catalog.pg_has_role(r.oid, s.oid, 'USAGE')))::text, "
      "       pg_catalog.to_regprocedure($1) IS NOT NULL";
  std::optional<std::string> param;
  if (!pre_request.empty()) param = pre_request;
  return pg::make_statement(sql, {param});
}

void roles_from_rows(const std::vector<std::vector<std::optional<std::string>>>& rows,
                     Catalog& cat) {
  if (rows.size() != 1 || rows[0].size() != 2) throw std::runtime_error("roles row malformed");
  cat.roles.clear();
  if (rows[0][0]) {
    rapidjson::Document d;
    std::string err;
    if (!json::parse(*rows[0][0], d, err) || !d.IsArray()) {
      throw std::runtime_error("roles row malformed: " + err);
    }
    for (const auto& r : d.GetArray()) {
      if (r.IsString()) cat.roles.emplace(r.GetString(), r.GetStringLength());
    }
  }
  cat.pre_request_found = rows[0][1].value_or("f") == "t";
  cat.roles_loaded = true;
}

void report_roles(const config::Config& cfg, const Catalog& cat) {
  if (!cat.roles_loaded) return;
  const std::string& anon = cfg.auth.anon_role;
  if (!anon.empty() && cat.roles.count(anon) == 0) {
    log::error(
        "auth.anon_role cannot be used: requests without a role are refused (401)",
        {{"role", anon}, {"rule", kRoleRule}, {"hint", "GRANT " + anon + " TO <login role>"}});
  }
  if (!cfg.rpc.pre_request.empty() && !cat.pre_request_found) {
    log::error("rpc.pre_request names no function: every /rpc call is refused (500)",
               {{"function", pre_request_regproc(cfg.rpc)}});
  }
}

}  // namespace zonegate::api::rpc
