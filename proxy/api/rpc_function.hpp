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
};

}  // namespace zonegate::api
