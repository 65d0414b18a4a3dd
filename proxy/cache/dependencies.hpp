// What the cached /rpc functions read (cache.rpc.<fn>.depends_on) and what a change notification
// therefore invalidates: a change to zonegate's own tables drops the entries of every function
// that depends on zonegate; a change to an application table (a watched one notifies with its
// oid, extension 0.7) those of the functions that depend on it. A function that depends on a
// table that is not watched (or does not exist) is not cached at all: its entries would not be
// dropped when the table changes. Built from the config and, at every catalog load, what the
// database says about the tables (docs/CONFIG.md, "cache"). Plain data, no locks: the response
// cache swaps whole indexes.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace zonegate::cache {

// The cache route of /rpc function `fn` ("rpc:<fn>"), and whether `route` is such a route.
std::string rpc_route(const std::string& fn);
bool is_rpc_route(const std::string& route);

// One depends_on table as the database described it at the last check.
struct TableState {
  config::TableRef ref;
  uint32_t oid = 0;       // 0: no such table
  std::string canonical;  // schema.table as notifications write it (quoted where needed)
  bool watched = false;
  std::string problem;  // why it is not watched, as zonegate.watched_tables() says
};

// A cached function that is not cached, and why (logged and listed in /health).
struct CacheRefusal {
  std::string function;
  std::string table;  // as written in depends_on
  std::string reason;
  std::string hint;  // what to run or change
};

struct DependencyIndex {
  std::unordered_map<uint32_t, std::vector<std::string>> by_oid;  // table oid -> routes
  std::vector<std::string> zonegate_routes;  // routes that read zonegate's tables
  std::vector<std::string> table_routes;     // routes that read at least one application table
  std::vector<CacheRefusal> refused;         // one per function not cached (its first problem)
  bool checked = false;                      // built from the database's answer, not the config
  // Whether the route's entries may be kept (false: the route bypasses the cache).
  bool cacheable(const std::string& route) const;
};

// The index for `cfg`'s cache.rpc policies, given what the database said about each depends_on
// table. `tables` holds one state per distinct table of the config (in any order); a table it
// does not mention counts as not checked: its functions are not cached. `why_unchecked` is the
// reason given then (the check failed, or has not run yet).
DependencyIndex build_dependency_index(const config::CacheConfig& cfg,
                                       const std::vector<TableState>& tables, bool checked,
                                       const std::string& why_unchecked);

// Every distinct application table the cache.rpc policies name, in config order.
std::vector<config::TableRef> depends_on_tables(const config::CacheConfig& cfg);

// A SQL string literal of `text` ('it''s'), for the hints that name a statement to run.
std::string sql_literal(const std::string& text);

}  // namespace zonegate::cache
