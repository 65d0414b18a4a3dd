// One /rpc function as pg_proc describes it: what the argument decoding (api/rpc_args.hpp) and the
// catalog (api/catalog.hpp) share. Plain data, no database or event-loop types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zonegate::api {

struct RpcArg {
  std::string name;
  std::string type;  // format_type(), e.g. "bigint", "text[]"
  bool has_default = false;
};

// One column of a function's result, as the catalog names it.
struct RpcColumn {
  std::string name;
  std::string type;  // format_type()
};

struct RpcFunction {
  uint32_t oid = 0;
  std::string schema;
  std::string name;
  std::string signature;  // name(types) as PostgreSQL writes them: "add(integer, integer)"
  std::string owner;      // the owning role
  char volatility = 'v';  // i, s, v
  bool returns_set = false;
  bool returns_void = false;
  bool returns_composite = false;  // a row type or OUT parameters: objects, not scalars
  std::vector<RpcArg> args;        // input arguments in order
  // The result's columns in order, what select=, filters and order= may name: the OUT or TABLE
  // parameters, the attributes of a row type, or for a scalar one column named after the
  // function (as PostgREST names it). Empty for void, and for a bare `record` (no names known).
  std::vector<RpcColumn> columns;

  // One value per row (a bare value or an array of values), not objects.
  bool returns_scalar() const { return !returns_void && !returns_composite; }
  // The column of this name, or nullptr.
  const RpcColumn* column(const std::string& n) const {
    for (const RpcColumn& c : columns) {
      if (c.name == n) return &c;
    }
    return nullptr;
  }
};

}  // namespace zonegate::api
