// The cached /rpc functions' dependencies; see dependencies.hpp.
#include "cache/dependencies.hpp"

#include <algorithm>

namespace zonegate::cache {

std::string rpc_route(const std::string& fn) {
  return "rpc:" + fn;
}

bool is_rpc_route(const std::string& route) {
  return route.compare(0, 4, "rpc:") == 0;
}

bool DependencyIndex::cacheable(const std::string& route) const {
  return std::none_of(refused.begin(), refused.end(),
                      [&](const CacheRefusal& r) { return rpc_route(r.function) == route; });
}

std::string sql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::vector<config::TableRef> depends_on_tables(const config::CacheConfig& cfg) {
  std::vector<config::TableRef> out;
  for (const auto& [fn, policy] : cfg.rpc) {
    for (const config::TableRef& t : policy.depends_on) {
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    }
  }
  return out;
}

DependencyIndex build_dependency_index(const config::CacheConfig& cfg,
                                       const std::vector<TableState>& tables, bool checked,
                                       const std::string& why_unchecked) {
  DependencyIndex idx;
  idx.checked = checked;
  for (const auto& [fn, policy] : cfg.rpc) {
    if (!policy.enabled) continue;
    const std::string route = rpc_route(fn);
    if (policy.depends_on_zonegate) idx.zonegate_routes.push_back(route);
    if (policy.depends_on.empty()) continue;
    idx.table_routes.push_back(route);
    bool refused = false;
    for (const config::TableRef& ref : policy.depends_on) {
      auto st = std::find_if(tables.begin(), tables.end(),
                             [&](const TableState& s) { return s.ref == ref; });
      CacheRefusal r{fn, ref.text, "", ""};
      if (st == tables.end()) {
        r.reason = why_unchecked;
        r.hint = "see the log; SELECT zonegate.reload_schema() checks again";
      } else if (st->oid == 0) {
        r.reason = "table " + ref.text + " does not exist";
        r.hint = "correct cache.rpc." + fn +
                 ".depends_on, or create the table and run SELECT "
                 "zonegate.reload_schema()";
      } else if (!st->watched) {
        r.reason = "table " + st->canonical + " is not watched" +
                   (st->problem.empty() ? std::string(": zonegate.watch_table() was not run on it")
                                        : ": " + st->problem);
        r.hint = "SELECT zonegate.watch_table(" + sql_literal(st->canonical) + ")";
      } else {
        idx.by_oid[st->oid].push_back(route);
        continue;
      }
      if (!refused) idx.refused.push_back(std::move(r));
      refused = true;
    }
  }
  return idx;
}

}  // namespace zonegate::cache
