// The reload plan; see reload.hpp.
#include "config/reload.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace zonegate::config {

namespace {

// A secret's stand-in: changes show, the value does not (an 8-hex-digit SHA-256 prefix).
std::string secret_text(const std::string& s) {
  if (s.empty()) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
  return std::string("<secret sha256:") + hex + ">";
}

std::string text(const std::string& s) {
  return s;
}
std::string text(bool b) {
  return b ? "true" : "false";
}
std::string text(int v) {
  return std::to_string(v);
}
std::string text(int64_t v) {
  return std::to_string(v);
}
std::string text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
std::string text(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + v[i];
  return out + "]";
}

// Writes into a map under a prefix: put("max", 4) -> "database.pool.max" = "4".
struct Out {
  std::map<std::string, std::string>& m;
  std::string prefix;
  template <typename T>
  void put(const std::string& key, const T& v) const {
    m[prefix + key] = text(v);
  }
  void secret(const std::string& key, const std::string& v) const {
    m[prefix + key] = secret_text(v);
  }
  Out sub(const std::string& key) const { return Out{m, prefix + key + "."}; }
};

void flatten_pool(const Out& o, const PoolConfig& p) {
  o.put("min", p.min);
  o.put("max", p.max);
  o.put("pipeline_depth", p.pipeline_depth);
  o.put("max_waiting", p.max_waiting);
  o.put("acquire_timeout", p.acquire_timeout_ms);
  o.put("statement_timeout", p.statement_timeout_ms);
  o.put("connect_timeout", p.connect_timeout_ms);
  o.put("max_lifetime", p.max_lifetime_ms);
  o.put("reconnect_min", p.reconnect_min_ms);
  o.put("reconnect_max", p.reconnect_max_ms);
}

void flatten_policy(const Out& o, const CachePolicy& p) {
  o.put("enabled", p.enabled);
  o.put("ttl", p.ttl_ms);
  o.put("stale_while_revalidate", p.stale_while_revalidate_ms);
  o.put("stale_if_error", p.stale_if_error_ms);
  o.put("shared", p.shared);
  o.put("identity_free", p.identity_free);
  std::vector<std::string> deps;
  if (p.depends_on_zonegate) deps.emplace_back("zonegate");
  for (const TableRef& t : p.depends_on)
    deps.push_back(t.text);
  o.put("depends_on", p.depends_on_declared ? text(deps) : std::string("(not declared)"));
}

// The conninfo with any password's value replaced (it is logged).
std::string conninfo_text(const std::string& c) {
  std::string out = c;
  for (const char* key : {"password=", "password ="}) {
    size_t at = out.find(key);
    if (at == std::string::npos) continue;
    size_t start = at + std::char_traits<char>::length(key);
    while (start < out.size() && out[start] == ' ')
      ++start;
    size_t end = start;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      while (end < out.size() && out[end] != ' ')
        ++end;
    }
    out.replace(start, end - start, secret_text(c.substr(start, end - start)));
  }
  return out;
}

}  // namespace

bool ReloadPlan::changed(const std::string& prefix) const {
  return std::any_of(changes.begin(), changes.end(), [&](const ConfigChange& c) {
    return c.live && c.key.compare(0, prefix.size(), prefix) == 0;
  });
}

size_t ReloadPlan::live_count() const {
  return static_cast<size_t>(
      std::count_if(changes.begin(), changes.end(), [](const ConfigChange& c) { return c.live; }));
}

std::map<std::string, std::string> flatten(const Config& c) {
  std::map<std::string, std::string> m;
  const Out root{m, ""};
  root.put("profile", c.profile);

  const Out s = root.sub("server");
  s.put("host", c.server.host);
  s.put("port", c.server.port);
  s.put("workers", c.server.workers);
  s.put("max_connections", c.server.max_connections);
  s.put("max_connections_per_address", c.server.max_connections_per_address);
  s.put("header_timeout", c.server.header_timeout_ms);
  s.put("body_timeout", c.server.body_timeout_ms);
  s.put("write_timeout", c.server.write_timeout_ms);
  s.put("send_buffer", c.server.send_buffer_bytes);
  s.put("idle_timeout", c.server.idle_timeout_ms);
  s.put("drain_timeout", c.server.drain_timeout_ms);
  s.put("max_url_bytes", c.server.max_url_bytes);
  s.put("max_header_bytes", c.server.max_header_bytes);
  s.put("max_headers", c.server.max_headers);
  s.put("max_body_bytes", c.server.max_body_bytes);
  s.put("max_pipelined", c.server.max_pipelined);
  s.put("max_output_bytes", c.server.max_output_bytes);

  const Out a = root.sub("admin");
  a.put("enabled", c.admin.enabled);
  a.put("host", c.admin.host);
  a.put("port", c.admin.port);
  a.put("max_connections", c.admin.max_connections);
  a.put("secure_cookie", c.admin.secure_cookie);
  a.put("session_ttl", c.admin.session_ttl_ms);
  a.put("login_rate",
        std::to_string(c.admin.login_quota) + "/" + std::to_string(c.admin.login_window_s) + "s");

  const Out d = root.sub("database");
  d.put("conninfo", conninfo_text(c.database.conninfo));
  flatten_pool(d.sub("pool"), c.database.pool);
  std::vector<std::string> names;
  for (const ReplicaConfig& r : c.database.replicas) {
    names.push_back(r.name);
    const Out ro = d.sub("replicas[" + r.name + "]");
    ro.put("conninfo", conninfo_text(r.conninfo));
    flatten_pool(ro.sub("pool"), r.pool);
  }
  d.put("replicas", names);
  const Out rt = d.sub("routing");
  rt.put("max_lag_bytes", c.database.routing.max_lag_bytes);
  rt.put("max_lag", c.database.routing.max_lag_ms);
  rt.put("check_interval", c.database.routing.check_interval_ms);
  rt.put("read_your_writes_ttl", c.database.routing.read_your_writes_ttl_ms);
  rt.put("read_your_writes_subjects", c.database.routing.read_your_writes_subjects);

  const Out au = root.sub("auth");
  au.put("service_role", c.auth.service_role);
  au.secret("admin_token", c.auth.admin_token);
  au.put("anon_role", c.auth.anon_role);
  const Out j = au.sub("jwt");
  const JwtSettings& jw = c.auth.jwt;
  j.put("algorithms", jw.algorithms);
  j.secret("secret", jw.secret);
  j.secret("public_key", jw.public_key);
  for (const JwtKeySettings& k : jw.keys) {
    const Out ko = j.sub("keys[" + k.kid + "]");
    ko.put("alg", k.alg);
    ko.secret("key", k.secret.empty() ? k.public_key : k.secret);
  }
  j.put("jwks_file", jw.jwks_file);
  j.secret("jwks", jw.jwks);
  j.put("issuer", jw.issuer);
  j.put("audience", jw.audience);
  j.put("leeway", jw.leeway_ms);
  j.put("require_exp", jw.require_exp);
  j.put("max_age", jw.max_age_ms);
  j.put("max_token_bytes", jw.max_token_bytes);
  j.put("subject_claim", jw.subject_claim);
  j.put("role_claim", jw.role_claim);
  j.put("role_claim_key", jw.role_claim_key);

  const Out r = root.sub("rpc");
  r.put("schema", c.rpc.schema);
  std::vector<std::string> fns;
  for (const RpcEntry& e : c.rpc.functions)
    fns.push_back(e.text);
  r.put("functions", fns);
  r.put("trusted_owners", c.rpc.trusted_owners);
  r.put("pre_request", c.rpc.pre_request);
  r.put("tx_end", c.rpc.tx_end);

  const Out ca = root.sub("cache");
  ca.put("enabled", c.cache.enabled);
  ca.put("max_bytes", c.cache.max_bytes);
  ca.put("shards", c.cache.shards);
  ca.put("lock_timeout", c.cache.lock_timeout_ms);
  ca.put("notify_auth", c.cache.notify_auth);
  ca.put("max_flushes_per_second", c.cache.max_flushes_per_second);
  for (const auto& [name, p] : c.cache.routes)
    flatten_policy(ca.sub("routes." + name), p);
  for (const auto& [name, p] : c.cache.rpc)
    flatten_policy(ca.sub("rpc." + name), p);

  const Out re = root.sub("resilience");
  re.put("deadline", c.resilience.deadline_ms);
  for (const auto& [route, ms] : c.resilience.deadlines)
    re.put("deadlines." + route, ms);
  const Out rr = re.sub("retries");
  rr.put("max_retries", c.resilience.retries.max_retries);
  rr.put("base", c.resilience.retries.base_ms);
  rr.put("cap", c.resilience.retries.cap_ms);
  rr.put("budget_ratio", c.resilience.retries.budget_ratio);
  rr.put("budget_min", c.resilience.retries.budget_min);
  const Out rb = re.sub("breaker");
  const resilience::BreakerConfig& b = c.resilience.breaker;
  rb.put("enabled", b.enabled);
  rb.put("consecutive_failures", b.consecutive_failures);
  rb.put("window", b.window);
  rb.put("minimum_calls", b.minimum_calls);
  rb.put("failure_rate", b.failure_rate);
  rb.put("open", b.open_ms);
  rb.put("open_max", b.open_max_ms);
  rb.put("probe_timeout", b.probe_timeout_ms);
  re.put("probe_interval", c.resilience.probe_interval_ms);
  const Out rc = re.sub("concurrency");
  const resilience::LimitConfig& l = c.resilience.concurrency;
  rc.put("enabled", l.enabled);
  rc.put("initial", l.initial);
  rc.put("min_limit", l.min_limit);
  rc.put("max_limit", l.max_limit);
  rc.put("tolerance", l.tolerance);
  rc.put("smoothing", l.smoothing);
  rc.put("long_window", l.long_window);

  const Out rl = root.sub("rate_limit");
  rl.put("trusted_proxies", c.rate_limit.trusted_proxies);
  const Out rd = rl.sub("redis");
  const RedisConfig& rcfg = c.rate_limit.redis;
  rd.put("host", rcfg.host);
  rd.put("port", rcfg.port);
  rd.secret("password", rcfg.password);
  rd.put("db", rcfg.db);
  rd.put("prefix", rcfg.prefix);
  rd.put("timeout", rcfg.timeout_ms);
  rd.put("connect_timeout", rcfg.connect_timeout_ms);
  rd.put("reconnect_max", rcfg.reconnect_max_ms);
  for (const RateLimitPolicy& p : c.rate_limit.policies) {
    // One line per policy: its whole definition (a policy changes as a unit).
    std::string def = "routes " + text(p.routes) + ", key " + p.key +
                      (p.header.empty() ? "" : ":" + p.header) + ", " + std::to_string(p.quota) +
                      "/" + std::to_string(p.window_s) + "s, burst " + std::to_string(p.burst) +
                      (p.dry_run ? ", dry_run" : "") + (p.redis ? ", store redis" : "") +
                      ", max_keys " + std::to_string(p.max_keys);
    rl.put("policies[" + p.name + "]", def);
  }

  root.put("metrics.enabled", c.metrics.enabled);
  root.put("health.check_interval", c.health.check_interval_ms);
  const Out lg = root.sub("log");
  lg.put("level", c.log.level);
  lg.put("file", c.log.file);
  lg.put("access_log", c.log.access_log);
  lg.put("access_log_flush", c.log.access_log_flush_ms);
  lg.put("slow_query", c.log.slow_query_ms);
  return m;
}

bool live_key(const std::string& key) {
  auto starts = [&key](const char* p) { return key.rfind(p, 0) == 0; };
  if (starts("auth.") || starts("rate_limit.policies[") || key == "log.level") return true;
  if (key == "rpc.functions" || key == "rpc.trusted_owners" || key == "rpc.pre_request" ||
      key == "rpc.tx_end") {
    return true;
  }
  // A pool's sizes, of the primary or of a replica (whose name and conninfo stay).
  if (starts("database.pool.") || starts("database.replicas[")) {
    for (const char* k : {".pool.min", ".pool.max", ".pool.pipeline_depth", ".pool.max_waiting",
                          ".pool.max_lifetime"}) {
      const size_t n = std::char_traits<char>::length(k);
      if (key.size() >= n && key.compare(key.size() - n, n, k) == 0) return true;
    }
  }
  return false;
}

namespace {

void copy_pool_sizes(PoolConfig& to, const PoolConfig& from) {
  to.min = from.min;
  to.max = from.max;
  to.pipeline_depth = from.pipeline_depth;
  to.max_waiting = from.max_waiting;
  to.max_lifetime_ms = from.max_lifetime_ms;
}

}  // namespace

ReloadPlan plan_reload(const Config& running, const Config& next, bool redis_running) {
  ReloadPlan plan;
  const std::map<std::string, std::string> before = flatten(running);
  const std::map<std::string, std::string> after = flatten(next);
  std::set<std::string> keys;
  for (const auto& [k, v] : before)
    keys.insert(k);
  for (const auto& [k, v] : after)
    keys.insert(k);
  // A replica whose conninfo changed, or that was added or removed, is a restart: so are its
  // pool's sizes (there is no such pool to resize).
  std::set<std::string> replaced;
  for (const std::string& k : keys) {
    auto b = before.find(k);
    auto a = after.find(k);
    const bool in_b = b != before.end(), in_a = a != after.end();
    if (k.rfind("database.replicas[", 0) == 0 && (!in_b || !in_a)) {
      replaced.insert(k.substr(0, k.find(']') + 1));
    }
    if (in_b && in_a && b->second == a->second) continue;
    if (k.rfind("database.replicas[", 0) == 0 && k.size() > 9 &&
        k.compare(k.size() - 9, 9, ".conninfo") == 0) {
      replaced.insert(k.substr(0, k.find(']') + 1));
    }
    ConfigChange ch;
    ch.key = k;
    ch.before = in_b ? b->second : "";
    ch.after = in_a ? a->second : "";
    ch.live = live_key(k);
    plan.changes.push_back(std::move(ch));
  }
  for (ConfigChange& ch : plan.changes) {
    for (const std::string& r : replaced) {
      if (ch.key.rfind(r, 0) == 0) ch.live = false;
    }
  }

  plan.effective = running;
  Config& e = plan.effective;
  copy_pool_sizes(e.database.pool, next.database.pool);
  for (ReplicaConfig& r : e.database.replicas) {
    if (replaced.count("database.replicas[" + r.name + "]") != 0) continue;
    for (const ReplicaConfig& n : next.database.replicas) {
      if (n.name == r.name) copy_pool_sizes(r.pool, n.pool);
    }
  }
  e.auth = next.auth;
  e.rpc.functions = next.rpc.functions;
  e.rpc.trusted_owners = next.rpc.trusted_owners;
  e.rpc.pre_request = next.rpc.pre_request;
  e.rpc.tx_end = next.rpc.tx_end;
  e.rate_limit.policies = next.rate_limit.policies;
  e.log.level = next.log.level;

  const bool redis_wanted =
      std::any_of(next.rate_limit.policies.begin(), next.rate_limit.policies.end(),
                  [](const RateLimitPolicy& p) { return p.redis; });
  if (redis_wanted && !redis_running) {
    plan.refusals.emplace_back(
        "a rate_limit policy with store: redis needs a restart: no policy used Redis at start, so "
        "no Redis connection is open");
  }
  return plan;
}

}  // namespace zonegate::config
