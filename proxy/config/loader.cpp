// zonegate.yaml → Config: the one config loader. Every key read here is documented in
// docs/CONFIG.md with its default.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "auth/claim_path.hpp"
#include "auth/keys.hpp"
#include "config/config.hpp"
#include "config/reader.hpp"
#include "common/cidr.hpp"
#include "common/errno_text.hpp"

namespace zonegate::config {

namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
// The admin token opens the dashboard and the cache API from the network: long enough that
// guessing it is hopeless even without the sign-in throttle.
constexpr size_t kMinAdminToken = 32;

void read_server(Section s, ServerConfig& c) {
  s.non_empty_string("host", c.host);
  s.integer("port", c.port, 0, 65535);
  s.integer("workers", c.workers, 0, 256);
  s.integer("max_connections", c.max_connections, 1, 10'000'000);
  s.integer("max_connections_per_address", c.max_connections_per_address, 0, 10'000'000);
  s.duration_ms("header_timeout", c.header_timeout_ms, 100, kHour);
  s.duration_ms("body_timeout", c.body_timeout_ms, 100, kHour);
  s.duration_ms("write_timeout", c.write_timeout_ms, 100, kHour);
  s.bytes("send_buffer", c.send_buffer_bytes, 0, 1LL << 30);
  s.duration_ms("idle_timeout", c.idle_timeout_ms, 100, 24 * kHour);
  s.duration_ms("drain_timeout", c.drain_timeout_ms, 0, kHour);
  s.bytes("max_url_bytes", c.max_url_bytes, 64, 1 << 20);
  s.bytes("max_header_bytes", c.max_header_bytes, 256, 1 << 20);
  s.integer("max_headers", c.max_headers, 1, 1000);
  s.bytes("max_body_bytes", c.max_body_bytes, 0, 1LL << 30);
  s.integer("max_pipelined", c.max_pipelined, 1, 1024);
  s.bytes("max_output_bytes", c.max_output_bytes, 4096, 1LL << 30);
  s.finish();
}

bool parse_rate(const std::string& text, int64_t& quota, int64_t& window_s);

void read_admin(Section s, AdminConfig& c, const ServerConfig& server) {
  s.boolean("enabled", c.enabled);
  s.non_empty_string("host", c.host);
  s.integer("port", c.port, 0, 65535);
  s.integer("max_connections", c.max_connections, 1, 100'000);
  s.boolean("secure_cookie", c.secure_cookie);
  s.duration_ms("session_ttl", c.session_ttl_ms, 60'000, 30 * kDay);
  std::string rate;
  s.string("login_rate", rate);
  if (!rate.empty() && !parse_rate(rate, c.login_quota, c.login_window_s)) {
    s.error("login_rate", "\"" + rate +
                              "\" is not a rate: a whole number above 0 per s, min or h, like "
                              "5/min");
  }
  if (c.enabled && c.port != 0 && c.port == server.port && c.host == server.host) {
    s.error("port", "must differ from server.port: the admin listener is a listener of its own");
  }
  s.finish();
}

void read_pool(Section s, PoolConfig& c) {
  s.integer("min", c.min, 0, 64);
  s.integer("max", c.max, 1, 64);
  s.integer("pipeline_depth", c.pipeline_depth, 1, 1024);
  s.integer("max_waiting", c.max_waiting, 0, 1'000'000);
  s.duration_ms("acquire_timeout", c.acquire_timeout_ms, 1, kHour);
  s.duration_ms("statement_timeout", c.statement_timeout_ms, 0, kHour);
  s.duration_ms("connect_timeout", c.connect_timeout_ms, 100, kHour);
  s.duration_ms("max_lifetime", c.max_lifetime_ms, 1000, 7 * kDay);
  s.duration_ms("reconnect_min", c.reconnect_min_ms, 1, kHour);
  s.duration_ms("reconnect_max", c.reconnect_max_ms, 1, kHour);
  if (c.min > c.max) s.error("min", "must not exceed pool.max (" + std::to_string(c.max) + ")");
  if (c.reconnect_min_ms > c.reconnect_max_ms) {
    s.error("reconnect_min", "must not exceed pool.reconnect_max");
  }
  s.finish();
}

void read_database(Section s, DatabaseConfig& c) {
  s.secret("conninfo", c.conninfo);
  read_pool(s.section("pool"), c.pool);
  s.each_item("replicas", [&](size_t i, Section& r) {
    ReplicaConfig rc;
    rc.name = "replica" + std::to_string(i + 1);
    r.non_empty_string("name", rc.name);
    r.secret("conninfo", rc.conninfo);
    if (rc.conninfo.empty()) r.error("conninfo", "is required: the replica's connection string");
    rc.pool = c.pool;
    if (r.has("pool")) read_pool(r.section("pool"), rc.pool);
    for (const ReplicaConfig& other : c.replicas) {
      if (other.name == rc.name) r.error("name", "\"" + rc.name + "\" names two replicas");
    }
    if (rc.name == "primary") r.error("name", "\"primary\" is the primary's name");
    c.replicas.push_back(std::move(rc));
  });
  Section g = s.section("routing");
  g.bytes("max_lag", c.routing.max_lag_bytes, 0, 1LL << 40);
  g.duration_ms("max_lag_time", c.routing.max_lag_ms, 0, kHour);
  g.duration_ms("check_interval", c.routing.check_interval_ms, 50, 60'000);
  g.duration_ms("read_your_writes_ttl", c.routing.read_your_writes_ttl_ms, 1'000, kDay);
  g.integer("read_your_writes_subjects", c.routing.read_your_writes_subjects, 16, 100'000'000);
  g.finish();
  s.finish();
}

bool allows(const JwtSettings& j, auth::Alg alg) {
  return std::find(j.algorithms.begin(), j.algorithms.end(), auth::alg_name(alg)) !=
         j.algorithms.end();
}

// A kid already used by an earlier key: that key's name, else empty.
std::string kid_owner(const std::vector<std::pair<std::string, std::string>>& kids,
                      const std::string& kid) {
  if (kid.empty()) return {};
  for (const auto& [k, owner] : kids)
    if (k == kid) return owner;
  return {};
}

// auth.jwt's keys (secret, public_key, keys, jwks_file), each checked with the verifier's own
// rules (auth/keys.hpp), so that a bad key is an error at its line rather than a failed start.
void read_jwt_keys(Section& jwt, JwtSettings& c) {
  const size_t errors_before = jwt.error_count();
  std::vector<auth::Alg> algs;  // of every usable key, for the "allowed but no key" check
  std::vector<std::pair<std::string, std::string>> kids;  // kid, the key that has it
  std::string why;
  jwt.secret("secret", c.secret);
  if (!c.secret.empty() && allows(c, auth::Alg::kHS256)) algs.push_back(auth::Alg::kHS256);
  jwt.secret("public_key", c.public_key);
  if (!c.public_key.empty()) {
    const char* where = jwt.has("public_key_file") ? "public_key_file" : "public_key";
    auth::Key k;
    if (!auth::pem_key("", c.public_key, k, why)) {
      jwt.error(where, why);
    } else if (allows(c, k.alg)) {
      algs.push_back(k.alg);
    } else if (allows(c, auth::Alg::kRS256) || allows(c, auth::Alg::kES256)) {
      jwt.error(where, std::string("a key for ") + auth::alg_name(k.alg) +
                           ", which auth.jwt.algorithms does not allow");
    }
  }
  jwt.each_item("keys", [&](size_t i, Section& item) {
    size_t errors = item.error_count();
    JwtKeySettings ks;
    item.string("kid", ks.kid);
    item.string("alg", ks.alg);
    item.secret("secret", ks.secret);
    item.secret("public_key", ks.public_key);
    if (item.error_count() != errors) return;
    auth::KeySpec spec{ks.kid, ks.alg, ks.secret, ks.public_key};
    auth::Key k;
    auth::SpecPart part = auth::SpecPart::kKey;
    const char* material = item.has("secret_file")       ? "secret_file"
                           : item.has("secret")          ? "secret"
                           : item.has("public_key_file") ? "public_key_file"
                                                         : "public_key";
    std::string name = "auth.jwt.keys[" + std::to_string(i) + "]";
    if (!auth::spec_key(spec, k, why, part)) {
      item.error(part == auth::SpecPart::kAlg   ? "alg"
                 : part == auth::SpecPart::kKey ? ""
                                                : material,
                 why);
    } else if (!allows(c, k.alg)) {
      item.error("alg", ks.alg + " is not in auth.jwt.algorithms");
    } else if (std::string owner = kid_owner(kids, ks.kid); !owner.empty()) {
      item.error("kid", "\"" + ks.kid + "\" is already the kid of " + owner);
    } else {
      algs.push_back(k.alg);
      kids.emplace_back(ks.kid, name);
    }
    c.keys.push_back(std::move(ks));
  });
  jwt.string("jwks_file", c.jwks_file);
  if (!c.jwks_file.empty()) {
    std::ifstream in(c.jwks_file, std::ios::binary);
    std::vector<auth::Key> set;
    if (!in) {
      jwt.error("jwks_file", "cannot read " + c.jwks_file + ": " + errno_text(errno));
    } else {
      std::ostringstream ss;
      ss << in.rdbuf();
      c.jwks = ss.str();
      if (!auth::parse_jwks(c.jwks, set, why)) jwt.error("jwks_file", why);
    }
    for (size_t i = 0; i < set.size(); ++i) {
      std::string name = "keys[" + std::to_string(i) + "]";
      if (!allows(c, set[i].alg)) {
        jwt.error("jwks_file",
                  name + ": alg " + auth::alg_name(set[i].alg) + " is not in auth.jwt.algorithms");
      } else if (std::string owner = kid_owner(kids, set[i].kid); !owner.empty()) {
        jwt.error("jwks_file", name + ": \"" + set[i].kid + "\" is already the kid of " + owner);
      } else {
        algs.push_back(set[i].alg);
        kids.emplace_back(set[i].kid, "jwks_file " + name);
      }
    }
  }
  // No key at all is allowed in dev (every token is refused); some keys but none for an allowed
  // algorithm is a mistake, unless a key already failed (its error says more).
  if (jwt.error_count() != errors_before) return;
  bool any = !c.secret.empty() || !c.public_key.empty() || !c.keys.empty() || !c.jwks.empty();
  for (auth::Alg alg : {auth::Alg::kHS256, auth::Alg::kRS256, auth::Alg::kES256}) {
    if (any && allows(c, alg) && std::find(algs.begin(), algs.end(), alg) == algs.end()) {
      jwt.error("algorithms",
                std::string(auth::alg_name(alg)) + " is allowed but no key is configured for it (" +
                    (alg == auth::Alg::kHS256 ? "secret" : "public_key") + ", keys or jwks_file)");
    }
  }
}

void read_auth(Section s, AuthConfig& c) {
  Section jwt = s.section("jwt");
  jwt.string_list("algorithms", c.jwt.algorithms);
  for (const std::string& a : c.jwt.algorithms) {
    if (a != "HS256" && a != "RS256" && a != "ES256") {
      jwt.error("algorithms", "\"" + a + "\" is not one of HS256, RS256, ES256" +
                                  (a == "none" ? " (unsigned tokens are never accepted)" : ""));
    }
  }
  read_jwt_keys(jwt, c.jwt);
  jwt.string("issuer", c.jwt.issuer);
  jwt.string_list("audience", c.jwt.audience);
  jwt.duration_ms("leeway", c.jwt.leeway_ms, 0, kHour);
  jwt.boolean("require_exp", c.jwt.require_exp);
  jwt.duration_ms("max_age", c.jwt.max_age_ms, 1000, 366 * kDay);
  jwt.bytes("max_token_bytes", c.jwt.max_token_bytes, 256, 1 << 20);
  jwt.non_empty_string("subject_claim", c.jwt.subject_claim);
  bool alias = jwt.has("role_claim");
  jwt.non_empty_string("role_claim", c.jwt.role_claim);
  jwt.string("role_claim_key", c.jwt.role_claim_key);
  if (jwt.has("role_claim_key")) {
    auth::ClaimPath path;
    std::string why = auth::parse_claim_path(c.jwt.role_claim_key, path);
    if (!why.empty()) {
      jwt.error("role_claim_key", "\"" + c.jwt.role_claim_key + "\" is not a JSPath: " + why);
    } else if (alias) {
      jwt.error("role_claim_key",
                "role_claim and role_claim_key name the same thing: keep role_claim_key");
    }
  }
  jwt.finish();
  s.non_empty_string("service_role", c.service_role);
  s.string("anon_role", c.anon_role);
  s.secret("admin_token", c.admin_token);
  if (!c.admin_token.empty() && c.admin_token.size() < kMinAdminToken) {
    s.error("admin_token", "must be at least " + std::to_string(kMinAdminToken) +
                               " bytes long (every profile): generate one with "
                               "`head -c 32 /dev/urandom | base64`");
  }
  s.finish();
}

// The characters of a plain function name (and of most type names).
bool is_name_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_';
}

// The argument types of a signature entry, "(int4, text[])": split at the commas outside
// parentheses and quotes and trimmed into `types`. Only the characters type names are made of
// are accepted, balanced, so what reaches to_regprocedure is a type list or a name it does not
// know, never SQL. Returns "" or what is wrong.
std::string split_types(const std::string& args, std::vector<std::string>& types) {
  if (args.size() < 2 || args.front() != '(' || args.back() != ')') {
    return "the argument types must be in parentheses after the name";
  }
  std::string cur;
  int depth = 0;
  bool quoted = false;
  auto flush = [&]() {
    size_t b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
    types.push_back(b == std::string::npos ? std::string() : cur.substr(b, e - b + 1));
    cur.clear();
  };
  for (size_t i = 1; i + 1 < args.size(); ++i) {
    char ch = args[i];
    if (ch == '"') {
      quoted = !quoted;
    } else if (!quoted && ch == '(') {
      ++depth;
    } else if (!quoted && ch == ')') {
      if (--depth < 0) return "unbalanced parentheses";
    } else if (!quoted && ch == ',' && depth == 0) {
      flush();
      continue;
    } else if (!is_name_char(ch) && ch != ' ' && ch != '.' && ch != '[' && ch != ']' && ch != ',') {
      return std::string("'") + ch + "' cannot be part of a type name";
    }
    cur += ch;
  }
  if (quoted) return "unbalanced quotes";
  if (depth != 0) return "unbalanced parentheses";
  flush();
  if (types.size() == 1 && types[0].empty()) types.clear();  // "()": no arguments
  for (const std::string& t : types) {
    if (t.empty()) return "an argument type is missing between commas";
  }
  return "";
}

// One rpc.functions entry: `name` or `name(type, ...)`. Returns "" or what is wrong.
std::string parse_rpc_entry(const std::string& text, RpcEntry& e) {
  size_t n = 0;
  while (n < text.size() && is_name_char(text[n]))
    ++n;
  if (n == 0) return "a function name comes first";
  e.text = text;
  e.name = text.substr(0, n);
  size_t open = text.find_first_not_of(' ', n);
  if (open == std::string::npos) return "";
  if (text[open] != '(') return "only argument types in parentheses may follow the name";
  std::vector<std::string> types;
  std::string err = split_types(text.substr(open), types);
  if (!err.empty()) return err;
  e.args = "(";
  for (size_t i = 0; i < types.size(); ++i)
    e.args += (i > 0 ? "," : "") + types[i];
  e.args += ")";
  return "";
}

// rpc.pre_request: `name` or `schema.name`, each plain (letters, digits, _): it is quoted into
// the SQL, and a plain name is what an operator means (no case folding surprises). Returns ""
// or what is wrong.
std::string check_pre_request(const std::string& text) {
  size_t dot = text.find('.');
  auto plain = [](const std::string& part) {
    return !part.empty() && std::isdigit(static_cast<unsigned char>(part[0])) == 0 &&
           std::all_of(part.begin(), part.end(), is_name_char);
  };
  if (dot == std::string::npos) return plain(text) ? "" : "letters, digits and _ only";
  if (!plain(text.substr(0, dot)) || !plain(text.substr(dot + 1))) {
    return "write name or schema.name, each of letters, digits and _";
  }
  return "";
}

void read_rpc(Section s, RpcConfig& c) {
  s.non_empty_string("schema", c.schema);
  std::vector<std::string> entries;
  std::vector<YAML::Mark> marks;
  s.string_list("functions", entries, marks);
  c.functions.clear();
  for (size_t i = 0; i < entries.size(); ++i) {
    RpcEntry e;
    std::string err = parse_rpc_entry(entries[i], e);
    if (!err.empty()) {
      s.error_at(marks[i], "functions",
                 "\"" + entries[i] + "\" is not a function name or name(type, ...): " + err);
      continue;
    }
    c.functions.push_back(std::move(e));
  }
  s.string_list("trusted_owners", c.trusted_owners);
  for (const std::string& r : c.trusted_owners) {
    if (r.empty()) s.error("trusted_owners", "a role name must not be empty");
  }
  s.string("pre_request", c.pre_request);
  if (!c.pre_request.empty()) {
    std::string err = check_pre_request(c.pre_request);
    if (!err.empty()) {
      s.error("pre_request", "\"" + c.pre_request + "\" is not a function name: " + err);
    }
  }
  s.choice("tx_end", c.tx_end,
           {"commit", "commit-allow-override", "rollback", "rollback-allow-override"});
  s.finish();
}

void read_policy(const std::string& word, Section& s, CachePolicy& p) {
  if (!word.empty()) {
    if (word == "off") {
      p.enabled = false;
    } else if (word != "on") {
      s.error("", "\"" + word + "\" is not on, off or a mapping of cache settings");
    }
    return;
  }
  s.boolean("enabled", p.enabled);
  s.duration_ms("ttl", p.ttl_ms, 0, 7 * kDay);
  s.duration_ms("stale_while_revalidate", p.stale_while_revalidate_ms, 0, 7 * kDay);
  s.duration_ms("stale_if_error", p.stale_if_error_ms, 0, 30 * kDay);
  std::string scope = p.shared ? "shared" : "user";
  s.choice("scope", scope, {"user", "shared"});
  p.shared = scope == "shared";
}

// One depends_on entry, `schema.table`: each part an identifier PostgreSQL would read the same
// way (unquoted: folded to lower case; "quoted": as written, "" for a quote). Returns "" or what
// is wrong.
std::string parse_table_ref(const std::string& text, TableRef& out) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    std::string part;
    if (i < text.size() && text[i] == '"') {
      for (++i;; ++i) {
        if (i >= text.size()) return "unbalanced quotes";
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            part += '"';
            ++i;
            continue;
          }
          ++i;
          break;
        }
        part += text[i];
      }
      if (part.empty()) return "a quoted name must not be empty";
    } else {
      for (; i < text.size() && text[i] != '.'; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        bool ok = std::isalpha(c) != 0 || c == '_' || c >= 0x80 ||
                  (!part.empty() && (std::isdigit(c) != 0 || c == '$'));
        if (!ok) {
          return std::string("'") + text[i] +
                 "' cannot be part of an unquoted name (quote it: \"Name\")";
        }
        part += static_cast<char>(std::tolower(c));
      }
      if (part.empty()) return "a name is missing";
    }
    if (part.size() > 63) return "a name is longer than PostgreSQL's 63 bytes";
    parts.push_back(std::move(part));
    if (i == text.size()) break;
    if (text[i] != '.') return "names are separated by a dot";
    ++i;
  }
  if (parts.size() != 2) return "name the table with its schema: schema.table";
  out.schema = parts[0];
  out.name = parts[1];
  out.text = text;
  return "";
}

// cache.rpc.<fn>.depends_on: `zonegate` and application tables.
void read_depends_on(Section& s, CachePolicy& p) {
  std::vector<std::string> items;
  std::vector<YAML::Mark> marks;
  p.depends_on_declared = s.has("depends_on");
  s.string_list("depends_on", items, marks);
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i] == "zonegate") {
      p.depends_on_zonegate = true;
      continue;
    }
    TableRef t;
    std::string err = parse_table_ref(items[i], t);
    if (!err.empty()) {
      s.error_at(marks[i], "depends_on",
                 "\"" + items[i] + "\" is not zonegate or schema.table: " + err);
    } else if (std::find(p.depends_on.begin(), p.depends_on.end(), t) == p.depends_on.end()) {
      p.depends_on.push_back(std::move(t));
    }
  }
}

const char* const kCachedRoutes[] = {"me_context", "user_context", "me_zones", "me_zones_filter",
                                     "zones_at"};

void read_cache(Section s, CacheConfig& c, const RpcConfig& rpc) {
  s.boolean("enabled", c.enabled);
  s.bytes("max_bytes", c.max_bytes, 0, 1LL << 40);
  s.integer("shards", c.shards, 1, 1024);
  s.duration_ms("lock_timeout", c.lock_timeout_ms, 1, kHour);
  s.choice("notify_auth", c.notify_auth, {"required", "optional"});
  s.integer("max_flushes_per_second", c.max_flushes_per_second, 1, 10'000);
  // Defaults: every /v1 route cached (push invalidation keeps them coherent); zones_at is the
  // same for every user and depends on zones only.
  for (const char* r : kCachedRoutes)
    c.routes[r] = CachePolicy();
  c.routes["zones_at"].shared = true;
  c.routes["zones_at"].ttl_ms = 3'600'000;
  s.each_entry_or_word("routes", [&](const std::string& name, const std::string& word, Section& p) {
    auto it = c.routes.find(name);
    if (it == c.routes.end()) {
      std::string known;
      for (const char* r : kCachedRoutes)
        known += (known.empty() ? "" : ", ") + std::string(r);
      p.error("", "unknown route \"" + name + "\" (cached routes: " + known + ")");
      return;
    }
    read_policy(word, p, it->second);
    if (name != "zones_at" && it->second.shared) {
      p.error("scope", "user-specific routes cannot be shared");
    }
  });
  s.each_entry_or_word("rpc", [&](const std::string& name, const std::string& word, Section& p) {
    if (!rpc.allows(name)) {
      p.error("", "\"" + name + "\" is not in rpc.functions");
      return;
    }
    CachePolicy pol;
    read_policy(word, p, pol);
    const size_t errors = p.error_count();
    if (word.empty()) {
      p.boolean("identity_free", pol.identity_free);
      read_depends_on(p, pol);
    }
    // An answer is correct only as long as what it was computed from: a function whose inputs
    // nobody declared could serve stale application data for its whole TTL.
    if (pol.enabled && pol.ttl_ms > 0 && !pol.depends_on_declared && p.error_count() == errors) {
      p.error("",
              "declare what the function reads: depends_on: [schema.table, ...] (application "
              "tables, watched with zonegate.watch_table) and/or zonegate (zonegate's own "
              "tables), [] for none; docs/CONFIG.md, \"cache\"");
    }
    c.rpc[name] = pol;
  });
  s.finish();
}

const char* const kRoutes[] = {"me_context",      "user_context", "me_zones",
                               "me_zones_filter", "zones_at",     "rpc"};

void read_resilience(Section s, ResilienceConfig& c, const PoolConfig& pool) {
  s.duration_ms("deadline", c.deadline_ms, 1, kHour);
  s.each_entry_or_word(
      "deadlines", [&](const std::string& name, const std::string& word, Section& p) {
        bool known = false;
        for (const char* r : kRoutes)
          known = known || name == r;
        if (!known) {
          p.error("", "unknown route \"" + name +
                          "\" (routes: me_context, user_context, me_zones, me_zones_filter, "
                          "zones_at, rpc)");
          return;
        }
        int64_t ms = 0;
        if (word.empty() || !parse_duration_ms(word, ms) || ms < 1 || ms > kHour) {
          p.error("", "must be a duration between 1ms and 1h, like 2s or 500ms");
          return;
        }
        c.deadlines[name] = ms;
      });
  if (c.deadline_ms == 0) {
    c.deadline_ms =
        resilience::default_deadline_ms(pool.acquire_timeout_ms, pool.statement_timeout_ms);
  }
  Section r = s.section("retries");
  r.integer("max_retries", c.retries.max_retries, 0, 10);
  r.duration_ms("base", c.retries.base_ms, 0, 60'000);
  r.duration_ms("cap", c.retries.cap_ms, 0, 60'000);
  r.number("budget_ratio", c.retries.budget_ratio, 0, 1);
  r.integer("budget_min", c.retries.budget_min, 0, 10'000);
  if (c.retries.base_ms > c.retries.cap_ms) r.error("base", "must not exceed retries.cap");
  r.finish();
  Section b = s.section("breaker");
  resilience::BreakerConfig& bc = c.breaker;
  b.boolean("enabled", bc.enabled);
  b.integer("consecutive_failures", bc.consecutive_failures, 1, 10'000);
  b.integer("window", bc.window, 1, 10'000);
  b.integer("minimum_calls", bc.minimum_calls, 1, 10'000);
  b.number("failure_rate", bc.failure_rate, 0.01, 1);
  b.duration_ms("open", bc.open_ms, 10, kHour);
  b.duration_ms("open_max", bc.open_max_ms, 10, kHour);
  b.duration_ms("probe_timeout", bc.probe_timeout_ms, 10, kHour);
  b.duration_ms("probe_interval", c.probe_interval_ms, 10, 60'000);
  if (bc.minimum_calls > bc.window) {
    b.error("minimum_calls", "must not exceed breaker.window (" + std::to_string(bc.window) + ")");
  }
  if (bc.open_ms > bc.open_max_ms) b.error("open", "must not exceed breaker.open_max");
  b.finish();
  Section l = s.section("concurrency");
  resilience::LimitConfig& lc = c.concurrency;
  l.boolean("enabled", lc.enabled);
  l.integer("initial", lc.initial, 1, 1'000'000);
  l.integer("min", lc.min_limit, 1, 1'000'000);
  l.integer("max", lc.max_limit, 1, 1'000'000);
  l.number("tolerance", lc.tolerance, 1, 100);
  if (lc.min_limit > lc.max_limit) l.error("min", "must not exceed concurrency.max");
  if (lc.initial < lc.min_limit || lc.initial > lc.max_limit) {
    l.error("initial", "must be between concurrency.min and concurrency.max");
  }
  l.finish();
  s.finish();
}

// "20/s", "600/min", "1000/h": a quota and its window in seconds.
bool parse_rate(const std::string& text, int64_t& quota, int64_t& window_s) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0) return false;
  int64_t q = 0;
  for (size_t i = 0; i < slash; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i])) || q > 1'000'000'000) return false;
    q = q * 10 + (text[i] - '0');
  }
  std::string unit = text.substr(slash + 1);
  if (unit == "s" || unit == "sec" || unit == "second")
    window_s = 1;
  else if (unit == "min" || unit == "m" || unit == "minute")
    window_s = 60;
  else if (unit == "h" || unit == "hour")
    window_s = 3600;
  else
    return false;
  quota = q;
  return q >= 1;
}

// Route classes one policy applies to, checked so that each request matches a policy at most once.
void check_route_classes(Section& p, const std::vector<std::string>& routes) {
  if (routes.empty()) {
    p.error("routes",
            "must list at least one route class (\"/v1/me/*\", \"/rpc/*\", "
            "\"/rpc/<function>\" or \"admin\")");
    return;
  }
  auto prefix_of = [](const std::string& r) {
    return r == "admin" ? std::string("/admin/") : r.substr(0, r.size() - 1);
  };
  for (size_t i = 0; i < routes.size(); ++i) {
    const std::string& r = routes[i];
    bool prefix = r == "admin" || (r.size() >= 2 && r.compare(r.size() - 2, 2, "/*") == 0);
    if (r != "admin" &&
        (r.empty() || r[0] != '/' || r.find('*') != (prefix ? r.size() - 1 : std::string::npos))) {
      p.error("routes", "\"" + r +
                            "\" is not a route class: write an exact path (/rpc/add), "
                            "a prefix ending in /* (/rpc/*) or admin");
      return;
    }
    for (size_t j = 0; j < i; ++j) {
      const std::string& o = routes[j];
      bool o_prefix = o == "admin" || o.back() == '*';
      std::string a = prefix ? prefix_of(r) : r, b = o_prefix ? prefix_of(o) : o;
      bool overlap = (prefix && b.compare(0, a.size(), a) == 0) ||
                     (o_prefix && a.compare(0, b.size(), b) == 0);
      if (overlap) {
        p.error("routes", "\"" + r + "\" overlaps \"" + o +
                              "\" in the same policy, so a request would be counted twice: "
                              "keep the wider one, or put the narrower in a policy of its own");
        return;
      }
    }
  }
}

void read_rate_limit(Section s, RateLimitConfig& c) {
  s.string_list("trusted_proxies", c.trusted_proxies);
  for (const std::string& t : c.trusted_proxies) {
    net::Cidr cidr;
    std::string err;
    if (!net::Cidr::parse(t, cidr, err)) s.error("trusted_proxies", err);
  }
  int64_t default_max_keys = 100'000;
  s.integer("max_keys", default_max_keys, 1, 100'000'000);
  {
    Section r = s.section("redis");
    r.string("host", c.redis.host);
    r.integer("port", c.redis.port, 1, 65535);
    r.secret("password", c.redis.password);
    r.integer("db", c.redis.db, 0, 1'000'000);
    r.non_empty_string("prefix", c.redis.prefix);
    r.duration_ms("timeout", c.redis.timeout_ms, 1, 10'000);
    r.duration_ms("connect_timeout", c.redis.connect_timeout_ms, 10, 60'000);
    r.duration_ms("reconnect_max", c.redis.reconnect_max_ms, 10, 600'000);
    r.finish();
  }
  s.each_entry("policies", [&](const std::string& name, Section& p) {
    RateLimitPolicy rp;
    rp.name = name;
    rp.max_keys = default_max_keys;
    if (name.empty() || name.find_first_of("\"\\;,= ") != std::string::npos) {
      p.error("", "a policy name must be a plain word (it is sent in RateLimit-Policy)");
    }
    p.string_list("routes", rp.routes);
    check_route_classes(p, rp.routes);
    std::string key = "subject";
    p.string("key", key);
    if (key.rfind("header:", 0) == 0 && key.size() > 7) {
      rp.key = "header";
      rp.header = key.substr(7);
      std::transform(rp.header.begin(), rp.header.end(), rp.header.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    } else if (key == "subject" || key == "client_address") {
      rp.key = key;
    } else {
      p.error("key",
              "unknown key source \"" + key + "\" (subject, client_address or header:<name>)");
    }
    std::string rate;
    p.string("rate", rate);
    if (rate.empty()) {
      p.error("rate", "is required: requests per second, minute or hour, like 20/s or 600/min");
    } else if (!parse_rate(rate, rp.quota, rp.window_s)) {
      p.error("rate", "\"" + rate +
                          "\" is not a rate: a whole number above 0 per s, min or h, "
                          "like 20/s or 600/min");
    }
    rp.burst = rp.quota;
    p.integer("burst", rp.burst, 1, 1'000'000'000);
    std::string mode = "enforce";
    p.choice("mode", mode, {"enforce", "dry_run"});
    rp.dry_run = mode == "dry_run";
    std::string store = "local";
    p.choice("store", store, {"local", "redis"});
    rp.redis = store == "redis";
    if (rp.redis && c.redis.host.empty()) {
      p.error("store", "redis needs rate_limit.redis.host (the Redis that holds the budget)");
    }
    p.integer("max_keys", rp.max_keys, 1, 100'000'000);
    rp.line = p.mark().line + 1;
    rp.column = p.mark().column + 1;
    p.finish();
    c.policies.push_back(std::move(rp));
  });
  s.finish();
}

// The prod profile refuses settings that are only acceptable on a developer's machine.
void check_prod(const Config& c, Diagnostics& diag) {
  const JwtSettings& j = c.auth.jwt;
  constexpr size_t kMinSecret = 32;  // RFC 7518 §3.2: an HS256 key of at least 256 bits
  bool hs = allows(j, auth::Alg::kHS256);
  std::vector<auth::Key> set;
  std::string why;
  if (!j.jwks.empty()) auth::parse_jwks(j.jwks, set, why);
  bool other_hs = std::any_of(j.keys.begin(), j.keys.end(),
                              [](const JwtKeySettings& k) { return k.alg == "HS256"; }) ||
                  std::any_of(set.begin(), set.end(),
                              [](const auth::Key& k) { return k.alg == auth::Alg::kHS256; });
  if (hs && (!j.secret.empty() || !other_hs) && j.secret.size() < kMinSecret) {
    diag.global("profile prod: auth.jwt.secret must be set and at least 32 bytes long for HS256");
  }
  for (size_t i = 0; i < j.keys.size(); ++i) {
    if (j.keys[i].alg == "HS256" && j.keys[i].secret.size() < kMinSecret) {
      diag.global("profile prod: auth.jwt.keys[" + std::to_string(i) +
                  "].secret must be at least 32 bytes long");
    }
  }
  for (size_t i = 0; i < set.size(); ++i) {
    if (set[i].alg == auth::Alg::kHS256 && set[i].secret.size() < kMinSecret) {
      diag.global("profile prod: auth.jwt.jwks_file: keys[" + std::to_string(i) +
                  "].k must be at least 32 bytes long");
    }
  }
  if (!hs && j.public_key.empty() && j.keys.empty() && j.jwks.empty()) {
    diag.global("profile prod: auth.jwt.public_key must be set for RS256/ES256");
  }
  if (j.issuer.empty() && j.audience.empty()) {
    diag.global(
        "profile prod: auth.jwt.issuer or auth.jwt.audience must be set, so that tokens of "
        "another issuer, or for another service, signed with a shared key are refused");
  }
  if (c.auth.admin_token.empty() && c.admin.enabled) {
    diag.global("profile prod: auth.admin_token must be set (or admin.enabled: false)");
  }
}

void read_log(Section s, LogConfig& c) {
  s.choice("level", c.level, {"debug", "info", "warn", "error"});
  s.string("file", c.file);
  s.boolean("access_log", c.access_log);
  s.duration_ms("access_log_flush", c.access_log_flush_ms, 0, 10'000);
  s.duration_ms("slow_query", c.slow_query_ms, 0, kHour);
  s.finish();
}

LoadResult load_node(const YAML::Node& root, const std::string& name) {
  LoadResult r;
  r.config.source = name;
  Diagnostics diag(name, r.errors);
  Section top(diag, root, "", YAML::Mark());
  top.choice("profile", r.config.profile, {"dev", "prod"});
  read_server(top.section("server"), r.config.server);
  read_admin(top.section("admin"), r.config.admin, r.config.server);
  read_database(top.section("database"), r.config.database);
  read_auth(top.section("auth"), r.config.auth);
  read_rpc(top.section("rpc"), r.config.rpc);
  // Signed notifications are required in prod unless the file says otherwise (the profile is
  // read first).
  r.config.cache.notify_auth = r.config.profile == "prod" ? "required" : "optional";
  read_cache(top.section("cache"), r.config.cache, r.config.rpc);
  read_resilience(top.section("resilience"), r.config.resilience, r.config.database.pool);
  read_rate_limit(top.section("rate_limit"), r.config.rate_limit);
  {
    Section m = top.section("metrics");
    m.boolean("enabled", r.config.metrics.enabled);
    m.finish();
    Section h = top.section("health");
    h.duration_ms("check_interval", r.config.health.check_interval_ms, 50, kHour);
    h.finish();
  }
  read_log(top.section("log"), r.config.log);
  top.finish();
  if (r.errors.empty() && r.config.profile == "prod") check_prod(r.config, diag);
  return r;
}

LoadResult parse_error(const std::string& name, const YAML::Exception& e) {
  LoadResult r;
  Diagnostics diag(name, r.errors);
  diag.at(e.mark, "invalid YAML: " + e.msg);
  return r;
}

}  // namespace

LoadResult load_string(const std::string& yaml, const std::string& name) {
  try {
    return load_node(YAML::Load(yaml), name);
  } catch (const YAML::Exception& e) {
    return parse_error(name, e);
  }
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    Diagnostics(path, r.errors).global("cannot read config file: " + errno_text(errno));
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path);
}

}  // namespace zonegate::config
