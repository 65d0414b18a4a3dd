// Function catalog for /rpc; see catalog.hpp.
#include "api/catalog.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "common/json.hpp"

namespace zonegate::api {

namespace {

// Columns 0-15 and 20 (the result's columns: [[name, type], ...]) describe one allow-listed
// overload; the trailing row (column 0 NULL) carries the zone_at check (10) and the schema's
// state (16-19). An owner is trusted when it is a superuser
// or has the privileges (pg_has_role USAGE: itself, or a role it inherits) of the schema's owner
// (so the database owner for public, owned by pg_database_owner) or of a listed role.
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
    "       NULL::boolean, "
    "       p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')', "
    "       pg_catalog.pg_get_userbyid(p.proowner), "
    "       coalesce(o.rolsuper, false) "
    "         OR pg_catalog.pg_has_role(p.proowner, n.nspowner, 'USAGE') "
    "         OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r "
    "                     WHERE r.rolname = ANY ($4::pg_catalog.text[]) "
    "                       AND pg_catalog.pg_has_role(p.proowner, r.oid, 'USAGE')), "
    "       l.lanname, "
    "       CASE WHEN p.proname = ANY ($5::pg_catalog.text[]) "
    "            THEN coalesce(pg_catalog.pg_get_function_sqlbody(p.oid), p.prosrc) END, "
    "       NULL::boolean, NULL::boolean, NULL::text, NULL::text, "
    "       CASE WHEN t.typtype = 'c' THEN "
    "         (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, "
    "                  pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum) "
    "            FROM pg_catalog.pg_attribute a "
    "           WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)::text "
    "       WHEN p.prorettype = 'pg_catalog.record'::pg_catalog.regtype THEN "
    "         (SELECT pg_catalog.json_agg(pg_catalog.json_build_array( "
    "                  coalesce(p.proargnames[a.ord], ''), pg_catalog.format_type(a.t, NULL)) "
    "                  ORDER BY a.ord) "
    "            FROM unnest(p.proallargtypes) WITH ORDINALITY AS a(t, ord) "
    "           WHERE p.proargmodes[a.ord] IN ('o', 'b', 't'))::text "
    "       WHEN p.prorettype = 'pg_catalog.void'::pg_catalog.regtype THEN '[]' "
    "       ELSE pg_catalog.json_build_array(pg_catalog.json_build_array(p.proname, "
    "              pg_catalog.format_type(p.prorettype, NULL)))::text END "
    "FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_catalog.pg_type t ON t.oid = p.prorettype "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "LEFT JOIN pg_catalog.pg_roles o ON o.oid = p.proowner "
    "WHERE n.nspname = $1 AND p.prokind = 'f' "
    "  AND (p.proname = ANY ($2::pg_catalog.text[]) OR p.oid = ANY ($3::pg_catalog.oid[])) "
    "UNION ALL "
    "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "       pg_catalog.to_regprocedure('zonegate.zone_at(double precision,double precision)') "
    "         IS NOT NULL, "
    "       NULL, NULL, NULL, NULL, NULL, "
    "       EXISTS (SELECT 1 FROM pg_catalog.pg_namespace s WHERE s.nspname = $1), "
    "       (SELECT pg_catalog.has_schema_privilege('public', s.oid, 'CREATE') "
    "          FROM pg_catalog.pg_namespace s WHERE s.nspname = $1), "
    "       (SELECT pg_catalog.json_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
    "                 ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END)::text "
    "          FROM pg_catalog.pg_namespace s, pg_catalog.aclexplode(s.nspacl) a "
    "         WHERE s.nspname = $1 AND a.privilege_type = 'CREATE' AND a.grantee <> s.nspowner), "
    "       (SELECT pg_catalog.pg_get_userbyid(s.nspowner)::text "
    "          FROM pg_catalog.pg_namespace s WHERE s.nspname = $1), "
    "       NULL::text";

constexpr size_t kColumns = 21;

// What in a body shows that it reads the caller's identity (compared in lower case).
constexpr const char* kIdentityMarkers[] = {
    "current_setting", "current_user",     "session_user",      "current_role",
    "request.jwt",     "zonegate.user_id", "zonegate.current_", "zonegate.can_access_current",
    "auth.uid"};

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

pg::Statement catalog_statement(const CatalogQuery& q) {
  return pg::make_statement(kCatalogSql,
                            {q.schema, pg_text_array(q.names), pg_text_array(q.signature_oids),
                             pg_text_array(q.trusted_owners), pg_text_array(q.shared)});
}

pg::Statement signature_statement(const std::string& schema, const std::string& name,
                                  const std::string& args) {
  return pg::make_statement("SELECT pg_catalog.to_regprocedure($1)::pg_catalog.oid",
                            {quote_ident(schema) + "." + quote_ident(name) + args});
}

std::string identity_dependence(const std::string& language, const std::string& body) {
  if (language != "sql" && language != "plpgsql") {
    return "its language, " + language + ", cannot be checked";
  }
  std::string lower(body.size(), '\0');
  std::transform(body.begin(), body.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* m : kIdentityMarkers) {
    if (lower.find(m) != std::string::npos) return std::string("its body reads ") + m;
  }
  return "";
}

Catalog catalog_from_rows(const std::string& schema, const std::vector<std::string>& shared,
                          const std::vector<std::vector<std::optional<std::string>>>& rows) {
  Catalog cat;
  std::vector<std::pair<RpcFunction, std::string>> callable;  // with the identity reason
  for (const auto& row : rows) {
    if (row.size() != kColumns) {
      throw std::runtime_error("catalog row has the wrong number of columns");
    }
    if (!row[0]) {  // the trailing row: zone_at and the schema
      cat.zone_at = cell(row, 10) == "t";
      cat.schema_exists = cell(row, 16) == "t";
      cat.public_create = row[17].value_or("f") == "t";
      if (row[18]) {
        rapidjson::Document roles = parse_json(*row[18]);
        if (roles.IsArray()) {
          for (const auto& r : roles.GetArray()) {
            if (r.IsString()) cat.other_creators.emplace_back(r.GetString(), r.GetStringLength());
          }
        }
      }
      cat.schema_owner = row[19].value_or("");
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
    // The result's columns; a bare `record` has none (null: no OUT parameters to name them).
    if (row[20]) {
      rapidjson::Document cols = parse_json(*row[20]);
      if (cols.IsArray()) {
        for (const auto& c : cols.GetArray()) {
          if (!c.IsArray() || c.Size() != 2 || !c[0].IsString() || !c[1].IsString()) {
            throw std::runtime_error("catalog result columns malformed");
          }
          f.columns.push_back({std::string(c[0].GetString(), c[0].GetStringLength()),
                               std::string(c[1].GetString(), c[1].GetStringLength())});
        }
      }
    }
    f.signature = cell(row, 11);
    f.owner = cell(row, 12);
    if (cell(row, 13) != "t") {
      std::string why = "its owner is not trusted: not a superuser, without the privileges of ";
      why += "the owner of schema " + schema + " or of a role in rpc.trusted_owners";
      cat.refused.push_back({schema + "." + f.signature, f.owner, std::move(why)});
      continue;
    }
    std::string why;
    if (row[15]) why = identity_dependence(cell(row, 14), *row[15]);
    callable.emplace_back(std::move(f), std::move(why));
  }
  for (auto& [f, why] : callable) {
    if (cat.public_create) {
      // Anyone may add an overload, or anything a body resolves through the search path.
      cat.refused.push_back({schema + "." + f.signature, f.owner,
                             "PUBLIC may CREATE in schema " + schema +
                                 ": REVOKE CREATE ON SCHEMA " + quote_ident(schema) +
                                 " FROM PUBLIC"});
      continue;
    }
    if (!why.empty() && std::find(shared.begin(), shared.end(), f.name) != shared.end() &&
        cat.shared_refusal(f.name) == nullptr) {
      cat.shared_refused.push_back({f.name, f.signature + ": " + why});
    }
    cat.functions[f.name].push_back(std::move(f));
  }
  return cat;
}

}  // namespace zonegate::api
