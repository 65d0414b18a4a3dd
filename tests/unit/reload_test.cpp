// config::plan_reload: which keys a SIGHUP applies, which wait for a restart, what the running
// configuration becomes, secrets never shown, and the reloads refused as a whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.hpp"
#include "config/reload.hpp"

using zonegate::config::Config;
using zonegate::config::ConfigChange;
using zonegate::config::load_string;
using zonegate::config::plan_reload;
using zonegate::config::ReloadPlan;

namespace {

const char* kBase = R"(
server: {port: 8080}
database:
  conninfo: "host=db password=hunter2 dbname=app"
  pool: {min: 1, max: 2}
  replicas:
    - {name: r1, conninfo: "host=r1 dbname=app"}
auth:
  jwt: {secret: "0123456789abcdef0123456789abcdef"}
  admin_token: "admin-token-0123456789abcdef-0123456789"
rpc: {functions: [add, echo]}
rate_limit:
  policies:
    api: {routes: ["/rpc/*"], rate: "10/s"}
)";

Config load(const std::string& yaml) {
  auto r = load_string(yaml, "z.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.errors.front().to_string());
  return r.config;
}

Config edited(const std::string& from, const std::string& to) {
  std::string y = kBase;
  size_t at = y.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  y.replace(at, from.size(), to);
  return load(y);
}

const ConfigChange* find(const ReloadPlan& p, const std::string& key) {
  for (const ConfigChange& c : p.changes) {
    if (c.key == key) return &c;
  }
  return nullptr;
}

}  // namespace

TEST(Reload, SameFileChangesNothing) {
  Config a = load(kBase);
  ReloadPlan p = plan_reload(a, load(kBase), false);
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(p.changes.empty());
}

TEST(Reload, PoolSizesAreLiveAndTimeoutsWaitForARestart) {
  Config a = load(kBase);
  Config b = edited("pool: {min: 1, max: 2}", "pool: {min: 3, max: 5, statement_timeout: 1s}");
  ReloadPlan p = plan_reload(a, b, false);
  ASSERT_TRUE(p.ok());
  ASSERT_NE(find(p, "database.pool.max"), nullptr);
  EXPECT_TRUE(find(p, "database.pool.max")->live);
  EXPECT_EQ(find(p, "database.pool.max")->before, "2");
  EXPECT_EQ(find(p, "database.pool.max")->after, "5");
  ASSERT_NE(find(p, "database.pool.statement_timeout"), nullptr);
  EXPECT_FALSE(find(p, "database.pool.statement_timeout")->live);
  EXPECT_EQ(p.effective.database.pool.min, 3);
  EXPECT_EQ(p.effective.database.pool.max, 5);
  EXPECT_EQ(p.effective.database.pool.statement_timeout_ms, 5000);  // the running value
  // The replica's pool inherited the primary's settings: its sizes follow, live.
  ASSERT_NE(find(p, "database.replicas[r1].pool.max"), nullptr);
  EXPECT_TRUE(find(p, "database.replicas[r1].pool.max")->live);
  EXPECT_EQ(p.effective.database.replicas[0].pool.max, 5);
}

TEST(Reload, ListenAddressAndConninfoAreRestartOnly) {
  Config a = load(kBase);
  Config b = edited("server: {port: 8080}", "server: {port: 9090}");
  ReloadPlan p = plan_reload(a, b, false);
  ASSERT_NE(find(p, "server.port"), nullptr);
  EXPECT_FALSE(find(p, "server.port")->live);
  EXPECT_EQ(p.effective.server.port, 8080);
  EXPECT_EQ(p.live_count(), 0u);
  EXPECT_EQ(p.restart_count(), 1u);

  Config c = edited("host=r1 dbname=app", "host=r2 dbname=app");
  p = plan_reload(a, c, false);
  ASSERT_NE(find(p, "database.replicas[r1].conninfo"), nullptr);
  EXPECT_FALSE(find(p, "database.replicas[r1].conninfo")->live);
  EXPECT_EQ(p.effective.database.replicas[0].conninfo, "host=r1 dbname=app");
}

TEST(Reload, AReplacedReplicasPoolIsNotResized) {
  Config a = load(kBase);
  Config b = edited("{name: r1, conninfo: \"host=r1 dbname=app\"}",
                    "{name: r1, conninfo: \"host=r9 dbname=app\", pool: {max: 7}}");
  ReloadPlan p = plan_reload(a, b, false);
  ASSERT_NE(find(p, "database.replicas[r1].pool.max"), nullptr);
  EXPECT_FALSE(find(p, "database.replicas[r1].pool.max")->live);
  EXPECT_EQ(p.effective.database.replicas[0].pool.max, 2);
}

TEST(Reload, AllowListKeysLimitsAndLogLevelAreLive) {
  Config a = load(kBase);
  std::string y = kBase;
  y.replace(y.find("[add, echo]"), 11, "[add, echo, hidden]");
  y.replace(y.find("\"10/s\""), 6, "\"20/s\"");
  y += "log: {level: warn}\n";
  ReloadPlan p = plan_reload(a, load(y), false);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.changed("rpc."));
  EXPECT_TRUE(p.changed("rate_limit.policies"));
  EXPECT_TRUE(p.changed("log.level"));
  EXPECT_FALSE(p.changed("auth."));
  EXPECT_EQ(p.effective.rpc.functions.size(), 3u);
  EXPECT_EQ(p.effective.rate_limit.policies.at(0).quota, 20);
  EXPECT_EQ(p.effective.log.level, "warn");
  EXPECT_EQ(p.restart_count(), 0u);
}

TEST(Reload, SecretsAreComparedButNeverShown) {
  Config a = load(kBase);
  Config b = edited("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210");
  ReloadPlan p = plan_reload(a, b, false);
  const ConfigChange* c = find(p, "auth.jwt.secret");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->live);
  EXPECT_NE(c->before, c->after);
  EXPECT_EQ(c->before.find("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(c->after.find("fedcba98"), std::string::npos);
  EXPECT_EQ(c->after.rfind("<secret sha256:", 0), 0u);
  EXPECT_EQ(p.effective.auth.jwt.secret, "fedcba9876543210fedcba9876543210");
  // A conninfo's password is hashed where it is logged.
  Config d = edited("password=hunter2", "password=swordfish");
  p = plan_reload(a, d, false);
  c = find(p, "database.conninfo");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((c->before + c->after).find("hunter2"), std::string::npos);
  EXPECT_EQ((c->before + c->after).find("swordfish"), std::string::npos);
  EXPECT_NE(c->before.find("host=db"), std::string::npos);
}

TEST(Reload, ARedisPolicyWithoutRedisAtStartIsRefusedWhole) {
  Config a = load(kBase);
  std::string y = kBase;
  y.replace(y.find("rate: \"10/s\"}"), 13, "rate: \"10/s\", store: redis}");
  y.replace(y.find("rate_limit:\n"), 12, "rate_limit:\n  redis: {host: 127.0.0.1}\n");
  y.replace(y.find("[add, echo]"), 11, "[add]");
  ReloadPlan p = plan_reload(a, load(y), false);
  EXPECT_FALSE(p.ok());
  ASSERT_EQ(p.refusals.size(), 1u);
  EXPECT_NE(p.refusals[0].find("store: redis"), std::string::npos);
  // With Redis clients running, the same file applies (the host itself is restart-only).
  p = plan_reload(a, load(y), true);
  EXPECT_TRUE(p.ok());
}

TEST(Reload, FlattenNamesEveryPolicyAndKey) {
  Config a = load(kBase);
  auto m = zonegate::config::flatten(a);
  EXPECT_EQ(m.at("rpc.functions"), "[add, echo]");
  EXPECT_NE(m.at("rate_limit.policies[api]").find("10/1s"), std::string::npos);
  EXPECT_EQ(m.at("database.replicas"), "[r1]");
  EXPECT_TRUE(zonegate::config::live_key("auth.jwt.keys[k1].alg"));
  EXPECT_TRUE(zonegate::config::live_key("database.replicas[r1].pool.min"));
  EXPECT_FALSE(zonegate::config::live_key("database.replicas[r1].pool.connect_timeout"));
  EXPECT_FALSE(zonegate::config::live_key("rpc.schema"));
  EXPECT_FALSE(zonegate::config::live_key("cache.rpc.add.ttl"));
  EXPECT_FALSE(zonegate::config::live_key("admin.port"));
}
