// What /rpc may call: the allow-listed functions as pg_proc describes them (argument names and
// types, defaults, volatility, return shape), loaded at start and again on the signed
// RELOAD_SCHEMA notification zonegate.reload_schema() sends. Shared read-only by all workers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pg/job.hpp"

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
  char volatility = 'v';  // i, s, v
  bool returns_set = false;
  bool returns_void = false;
  bool returns_composite = false;  // a row type or OUT parameters: objects, not scalars
  std::vector<RpcArg> args;        // input arguments in order
};

struct Catalog {
  std::unordered_map<std::string, std::vector<RpcFunction>> functions;  // by name (overloads)
  bool zone_at = false;  // zonegate.zone_at(float8, float8) exists
  std::string error;     // why the last load failed, if it did
};

// The statement that reads the catalog: parameters $1 schema, $2 text[] of names.
pg::Statement catalog_statement(const std::string& schema, const std::vector<std::string>& names);
// Builds a catalog from that statement's rows (throws std::runtime_error on malformed rows).
Catalog catalog_from_rows(const std::string& schema,
                          const std::vector<std::vector<std::optional<std::string>>>& rows);

// A PostgreSQL array literal for text values: {"a","b \"c\""}.
std::string pg_text_array(const std::vector<std::string>& items);
// "name" with embedded quotes doubled.
std::string quote_ident(const std::string& name);

}  // namespace zonegate::api
