// Function catalog for /rpc; see catalog.hpp.
#include "api/catalog.hpp"

#include <stdexcept>

#include "common/json.hpp"

namespace zonegate::api {

namespace {

constexpr const char* kCatalogSql =
    "SELECT p.oid, p.proname, p.provolatile, p.proretset, "
    "       p.prorettype = 'pg_catalog.void'::pg_catalog.regtype, "
    "       (t.typtype = 'c' OR (p.prorettype = 'pg_catalog.record'::pg_catalog.regtype)), "
    "       p.pronargdefaults, "
    "       pg_catalog.array_to_json(coalesce(p.proargnames, '{}'))::text, "
    "       coalesce(pg_catalog.array_to_json(p.proargmodes)::text, 'null'), "
    "       coalesce((SELECT pg_catalog.json_agg(pg_catalog.format_type(a.t, NULL) ORDER BY a.ord) "
    "        FROM unnest(coalesce(p.proallargtypes, p.proargtypes::pg_catalog.oid[])) "
    "             WITH ORDINALITY AS a(t, ord))::text, '[]'), "
    "       pg_catalog.to_regprocedure('zonegate.zone_at(double precision,double precision)') "
    "         IS NOT NULL "
    "FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_catalog.pg_type t ON t.oid = p.prorettype "
    "WHERE n.nspname = $1 AND p.proname = ANY ($2::pg_catalog.text[]) AND p.prokind = 'f' "
    "UNION ALL "
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "       pg_catalog.to_regprocedure('zonegate.zone_at(double precision,double precision)') "
    "         IS NOT NULL";

const std::string& cell(const std::vector<std::optional<std::string>>& row, size_t i) {
  if (i >= row.size() || !row[i])
    throw std::runtime_error("catalog row has a NULL where a value belongs");
  return *row[i];
}

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  std::string err;
  if (!json::parse(text, d, err)) throw std::runtime_error("catalog JSON: " + err);
  return d;
}

}  // namespace

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string pg_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

pg::Statement catalog_statement(const std::string& schema, const std::vector<std::string>& names) {
  return pg::make_statement(kCatalogSql, {schema, pg_text_array(names)});
}

Catalog catalog_from_rows(const std::string& schema,
                          const std::vector<std::vector<std::optional<std::string>>>& rows) {
  Catalog cat;
  for (const auto& row : rows) {
    if (row.size() != 11) throw std::runtime_error("catalog row has the wrong number of columns");
    if (!row[0]) {  // the trailing row only carries the zone_at check
      cat.zone_at = cell(row, 10) == "t";
      continue;
    }
    RpcFunction f;
    f.oid = static_cast<uint32_t>(std::stoul(cell(row, 0)));
    f.schema = schema;
    f.name = cell(row, 1);
    f.volatility = cell(row, 2).empty() ? 'v' : cell(row, 2)[0];
    f.returns_set = cell(row, 3) == "t";
    f.returns_void = cell(row, 4) == "t";
    f.returns_composite = cell(row, 5) == "t";
    int ndefaults = std::stoi(cell(row, 6));
    rapidjson::Document names = parse_json(cell(row, 7));
    rapidjson::Document modes = parse_json(cell(row, 8));
    rapidjson::Document types = parse_json(cell(row, 9));
    if (!names.IsArray() || !types.IsArray()) throw std::runtime_error("catalog arrays malformed");
    for (rapidjson::SizeType i = 0; i < types.Size(); ++i) {
      char mode = 'i';
      if (modes.IsArray() && i < modes.Size() && modes[i].IsString())
        mode = modes[i].GetString()[0];
      if (mode == 'o' || mode == 't') continue;  // OUT and TABLE columns are results, not inputs
      RpcArg a;
      a.name = (i < names.Size() && names[i].IsString()) ? names[i].GetString() : "";
      a.type = types[i].IsString() ? types[i].GetString() : "text";
      f.args.push_back(std::move(a));
    }
    for (int k = 0; k < ndefaults && k < static_cast<int>(f.args.size()); ++k) {
      f.args[f.args.size() - 1 - static_cast<size_t>(k)].has_default = true;
    }
    cat.functions[f.name].push_back(std::move(f));
  }
  return cat;
}

}  // namespace zonegate::api
