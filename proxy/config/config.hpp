// zonegate.yaml as a typed struct, with its defaults. docs/CONFIG.md documents every field;
// config/loader.cpp is the one place YAML becomes this struct.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "resilience/circuit_breaker.hpp"
#include "resilience/concurrency_limit.hpp"
#include "resilience/retry.hpp"

namespace zonegate::config {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  int workers = 0;                  // 0: one per core
  int64_t max_connections = 10000;  // client connections of the public listener, all workers
  // Per client address (0: no cap); the addresses of rate_limit.trusted_proxies are exempt.
  int64_t max_connections_per_address = 256;
  int64_t header_timeout_ms = 10'000;  // also: a new connection's first byte
  int64_t body_timeout_ms = 15'000;
  // A connection with response bytes queued that the client has not taken for this long is
  // closed (a client that never reads).
  int64_t write_timeout_ms = 30'000;
  // SO_SNDBUF of client sockets (0: the kernel's autotuning, up to net.ipv4.tcp_wmem's 4 MiB):
  // what a client that does not read can park in kernel memory, per connection.
  int64_t send_buffer_bytes = int64_t{128} * 1024;
  int64_t idle_timeout_ms = 60'000;
  int64_t drain_timeout_ms = 10'000;
  int64_t max_url_bytes = int64_t{8} * 1024;
  int64_t max_header_bytes = int64_t{16} * 1024;
  int64_t max_headers = 64;
  int64_t max_body_bytes = int64_t{1024} * 1024;
  int64_t max_pipelined = 32;  // requests in flight per connection before reading pauses
  // Response bytes queued for a connection before reading pauses and further ready responses
  // wait unserialized: what one client that does not read can make the proxy hold.
  int64_t max_output_bytes = int64_t{256} * 1024;
};

// The admin listener (docs/CONFIG.md, "admin"): /admin* and /metrics are served only here, and
// /health in full (the public listener's /health leaves out error texts).
struct AdminConfig {
  bool enabled = true;
  std::string host = "127.0.0.1";
  int port = 8081;               // 0: a port the kernel picks (logged)
  int64_t max_connections = 64;  // apart from the public listener's, so a flood there leaves
                                 // the operator a way in
  bool secure_cookie = false;    // Secure on the session cookie: set it when served over TLS
  int64_t session_ttl_ms = 12 * 3'600'000LL;
  int64_t login_quota = 5;      // failed sign-ins per client address...
  int64_t login_window_s = 60;  // ...per this window ("5/min"), then 429
};

struct PoolConfig {
  int min = 1;                           // connections per worker kept open
  int max = 2;                           // connections per worker at most
  int pipeline_depth = 32;               // queries in flight on one connection
  int64_t max_waiting = 1024;            // requests queued per worker before 503
  int64_t acquire_timeout_ms = 2'000;    // a queued request waits at most this long
  int64_t statement_timeout_ms = 5'000;  // SET statement_timeout on every connection
  int64_t connect_timeout_ms = 5'000;
  int64_t max_lifetime_ms = 30 * 60'000LL;  // connections are replaced after this (when idle)
  int64_t reconnect_min_ms = 100;           // backoff after a failed connect: doubles...
  int64_t reconnect_max_ms = 10'000;        // ...up to this, with full jitter
};

// A streaming replica that serves reads (docs/CONFIG.md, "database.replicas").
struct ReplicaConfig {
  std::string name;
  std::string conninfo;
  PoolConfig pool;  // default: the primary's pool settings
};

// How reads are routed to replicas (docs/ARCHITECTURE.md, "Replicas").
struct RoutingConfig {
  int64_t max_lag_bytes = int64_t{16} * 1024 * 1024;  // replay behind the primary's position
  int64_t max_lag_ms = 5'000;                         // since the last replayed commit
  int64_t check_interval_ms = 500;                    // how often lag is measured
  int64_t read_your_writes_ttl_ms = 30'000;           // how long a subject's write is remembered
  int64_t read_your_writes_subjects = 100'000;
};

struct DatabaseConfig {
  std::string conninfo = "dbname=postgres";
  PoolConfig pool;
  std::vector<ReplicaConfig> replicas;
  RoutingConfig routing;
};

// One entry of auth.jwt.keys: a key with a kid, bound to one algorithm.
struct JwtKeySettings {
  std::string kid;
  std::string alg;
  std::string secret;      // HS256
  std::string public_key;  // PEM, RS256 or ES256
};

struct JwtSettings {
  std::vector<std::string> algorithms = {"HS256"};
  std::string secret;      // a key without a kid
  std::string public_key;  // PEM, a key without a kid
  std::vector<JwtKeySettings> keys;
  std::string jwks_file;  // a JWK Set (RFC 7517)...
  std::string jwks;       // ...and its content, read by the loader
  std::string issuer;
  std::vector<std::string> audience;
  int64_t leeway_ms = 30'000;
  bool require_exp = true;
  int64_t max_age_ms = 0;  // 0: no limit on exp - iat
  int64_t max_token_bytes = 8192;
  std::string subject_claim = "sub";
  std::string role_claim = "role";  // a top-level member; the alias of role_claim_key ".role"
  std::string role_claim_key;       // a JSPath (".app_metadata.role"); "" : role_claim
};

struct AuthConfig {
  JwtSettings jwt;
  std::string service_role = "service";  // role claim value allowed to read any user's context
  std::string admin_token;               // bearer token for /admin routes
  // PostgREST's db-anon-role: the role /rpc runs as without a token, or for a token without a
  // role claim; "" : no anonymous access (docs/CONFIG.md, "auth").
  std::string anon_role;
};

// One rpc.functions entry: `name` allows every overload of that name, `name(type, ...)` only the
// overload PostgreSQL resolves that signature to (docs/CONFIG.md, "rpc").
struct RpcEntry {
  std::string text;  // as written
  std::string name;
  std::string args;  // "(int4,int4)": the types as written, one comma between; "" for a name entry
  bool has_signature() const { return !args.empty(); }
};

struct RpcConfig {
  std::string schema = "api";               // where /rpc/{fn} functions live: a dedicated schema
  std::vector<RpcEntry> functions;          // the allow-list
  std::vector<std::string> trusted_owners;  // roles besides superusers and the schema's owner
  // PostgREST's db-pre-request: a function (`name` in `schema`, or `schema.name`) called before
  // every /rpc call, in its transaction; "" : none.
  std::string pre_request;
  // PostgREST's db-tx-end: commit | commit-allow-override | rollback | rollback-allow-override
  // (Prefer: tx=commit|rollback is honoured with the -allow-override ones).
  std::string tx_end = "commit";
  // The distinct function names the entries name, in the order written.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const RpcEntry& e : functions) {
      if (std::find(out.begin(), out.end(), e.name) == out.end()) out.push_back(e.name);
    }
    return out;
  }
  // Whether some entry names this function.
  bool allows(const std::string& name) const {
    return std::any_of(functions.begin(), functions.end(),
                       [&](const RpcEntry& e) { return e.name == name; });
  }
};

// An application table a cached /rpc function reads (cache.rpc.<fn>.depends_on): its schema
// and name as PostgreSQL stores them (unquoted parts folded to lower case, quoted ones as
// written), and the entry as written.
struct TableRef {
  std::string schema;
  std::string name;
  std::string text;
  bool operator==(const TableRef& o) const { return schema == o.schema && name == o.name; }
};

// How one route or /rpc function is cached (RFC 5861 meanings).
struct CachePolicy {
  bool enabled = true;
  int64_t ttl_ms = 60'000;                     // fresh for this long
  int64_t stale_while_revalidate_ms = 10'000;  // then served stale while one request refreshes it
  int64_t stale_if_error_ms = 300'000;         // and served stale if the database fails
  bool shared = false;                         // scope: shared (same answer for every user)
  // cache.rpc only: the operator asserts the function's answer does not depend on the caller,
  // so scope shared stands even where the catalog cannot check it (docs/CONFIG.md, "cache").
  bool identity_free = false;
  // cache.rpc only: what the function reads, so that a change to it drops the function's
  // entries: zonegate's own tables (`zonegate`) and application tables, which must be watched
  // (zonegate.watch_table()) for the function to be cached. Required for a cached function;
  // an empty list says it reads no table at all (IMMUTABLE arithmetic).
  bool depends_on_declared = false;
  bool depends_on_zonegate = false;
  std::vector<TableRef> depends_on;
};

struct CacheConfig {
  bool enabled = true;
  int64_t max_bytes = 64LL * 1024 * 1024;
  int shards = 16;
  int64_t lock_timeout_ms = 5'000;            // coalesced requests wait this long for the first one
  std::map<std::string, CachePolicy> routes;  // me_context, user_context, me_zones, ...
  std::map<std::string, CachePolicy> rpc;     // per /rpc function; functions not listed: off
  // Whether zonegate_changes notifications must be signed (docs/SECURITY.md, "The change
  // channel"): "required" or "optional"; the loader sets the profile's default (prod: required,
  // dev: optional) when the file does not say.
  std::string notify_auth = "optional";
  int max_flushes_per_second = 5;  // physical purges of everything; more flushes are coalesced
};

struct LogConfig {
  std::string level = "info";
  std::string file;  // empty: stderr
  bool access_log = true;
  int64_t access_log_flush_ms = 100;  // batched log lines wait at most this long (0: per loop turn)
  int64_t slow_query_ms = 500;        // a warn line for requests whose database time exceeds this
};

struct MetricsConfig {
  bool enabled = true;  // /metrics, the dashboard's series and per-request recording
};

struct HealthConfig {
  int64_t check_interval_ms = 1'000;  // how often the control connection pings the database
};

// What the proxy does when the database fails or is overloaded (docs/CONFIG.md, "resilience").
struct ResilienceConfig {
  int64_t deadline_ms = 0;                   // 0: pool.acquire_timeout + pool.statement_timeout
  std::map<std::string, int64_t> deadlines;  // per route name (me_context, rpc, ...)
  resilience::RetryConfig retries;
  resilience::BreakerConfig breaker;
  int64_t probe_interval_ms = 250;  // reconnect/probe pace while the breaker is open
  resilience::LimitConfig concurrency;
};

// One rate-limit policy (docs/CONFIG.md, "rate_limit").
struct RateLimitPolicy {
  std::string name;
  // Route classes: an exact path ("/rpc/add"), a prefix ("/rpc/*", "/v1/me/*") or "admin".
  std::vector<std::string> routes;
  std::string key = "subject";  // subject | client_address | header
  std::string header;           // the header's name (lower case) when key is "header:<name>"
  int64_t quota = 0;            // requests per window, as written ("20/s": 20 per 1 s)
  int64_t window_s = 1;
  int64_t burst = 0;  // the most admitted at once; default: the quota
  bool dry_run = false;
  bool redis = false;  // store: redis, one budget across every proxy (rate_limit.redis)
  int64_t max_keys = 100'000;
  int line = 0, column = 0;  // where it was written, for messages
  double rate_per_s() const { return static_cast<double>(quota) / static_cast<double>(window_s); }
};

// The Redis server that holds the policies with `store: redis` (docs/CONFIG.md, "rate_limit").
struct RedisConfig {
  std::string host;  // empty: no Redis (a policy with store: redis is then a config error)
  int port = 6379;
  std::string password;
  int db = 0;
  std::string prefix = "zonegate:rl:";
  int64_t timeout_ms = 25;  // a decision not back by then is made locally
  int64_t connect_timeout_ms = 1'000;
  int64_t reconnect_max_ms = 5'000;  // reconnects back off up to this
};

struct RateLimitConfig {
  std::vector<std::string> trusted_proxies;  // CIDRs whose X-Forwarded-For/Forwarded is believed
  RedisConfig redis;
  std::vector<RateLimitPolicy> policies;
};

struct Config {
  std::string source;  // file name it was read from
  std::string profile = "dev";
  ServerConfig server;
  AdminConfig admin;
  DatabaseConfig database;
  AuthConfig auth;
  RpcConfig rpc;
  CacheConfig cache;
  ResilienceConfig resilience;
  RateLimitConfig rate_limit;
  MetricsConfig metrics;
  HealthConfig health;
  LogConfig log;
};

// One problem found while loading: where it is and what is wrong.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (e.g. file missing)
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  Config config;
  std::vector<Diagnostic> errors;
  bool ok() const { return errors.empty(); }
};

// Reads and validates a config file. Never throws; every problem is in errors.
LoadResult load_file(const std::string& path);
// Same from a string (tests, embedded defaults); `name` is used in diagnostics.
LoadResult load_string(const std::string& yaml, const std::string& name);

}  // namespace zonegate::config
