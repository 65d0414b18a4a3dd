// What a live reload (SIGHUP) may change, and what it changes: the running configuration and a
// newly loaded one, compared key by key (docs/CONFIG.md, "Reloading"). Pure: no I/O, no clock.
//
// A key is either live (applied to new requests without a restart) or restart-only (the running
// value stays until the next start, and the reload says so). The live keys:
//   database.pool.{min,max,pipeline_depth,max_waiting,max_lifetime}, the same of each replica
//     whose name and conninfo are unchanged;
//   auth.* (JWT keys, issuer, audience, claims, service_role, anon_role, admin_token);
//   rpc.functions, rpc.trusted_owners, rpc.pre_request, rpc.tx_end (the allow-list and the
//     context of calls; the catalog is reloaded);
//   rate_limit.policies;
//   log.level.
// Everything else (listen addresses, workers, conninfo, cache, resilience, Redis, ...) is
// restart-only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace zonegate::config {

struct ConfigChange {
  std::string key;     // "database.pool.max", "rate_limit.policies[api]", ...
  std::string before;  // as text; secrets as "<secret sha256:0123abcd>"; "" when absent
  std::string after;
  bool live = false;  // applied by the reload; else it waits for a restart
};

struct ReloadPlan {
  std::vector<ConfigChange> changes;
  // The configuration to run with: the running one with `next`'s live keys.
  Config effective;
  // Why the reload cannot be applied at all (then nothing of it is): empty when it can.
  std::vector<std::string> refusals;
  bool ok() const { return refusals.empty(); }
  bool changed(const std::string& prefix) const;  // some live change's key starts with it
  size_t live_count() const;
  size_t restart_count() const { return changes.size() - live_count(); }
};

// Every setting of a config as "key" -> text, secrets hashed: what the reload compares and
// logs.
std::map<std::string, std::string> flatten(const Config& c);
// Whether a flattened key is applied by a reload.
bool live_key(const std::string& key);
// `running`: what the proxy runs with now; `next`: the file just loaded (valid);
// `redis_running`: the running process has Redis clients (store: redis policies started with
// it).
ReloadPlan plan_reload(const Config& running, const Config& next, bool redis_running);

}  // namespace zonegate::config
