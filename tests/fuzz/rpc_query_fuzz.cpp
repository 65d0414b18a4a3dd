// libFuzzer target for /rpc's read side (proxy/api/rpc_query.cpp): a query string and the
// Accept, Prefer and Range headers, planned against a small fixed catalog of result shapes.
// Never a crash; every refusal is a 4xx PostgREST error; a planned statement uses each of its
// parameters, numbers them after the call's, and holds no request text: with the catalog's
// quoted identifiers and the fixed literals taken out, no quote of either kind is left; the
// shaping of any counts gives a status PostgREST would.
//
// Input: byte 0 picks the method (GET or POST), then NUL-separated: the query, Accept, Prefer,
// Range (a part that is missing is a header that is absent).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/rpc_query.hpp"
#include "api/sql_text.hpp"

namespace {

namespace api = zonegate::api;
namespace rpc = zonegate::api::rpc;

api::RpcFunction function(const char* name, bool set, bool composite, bool is_void,
                          std::vector<api::RpcColumn> columns) {
  api::RpcFunction f;
  f.schema = "api";
  f.name = name;
  f.returns_set = set;
  f.returns_composite = composite;
  f.returns_void = is_void;
  f.args = {{"a", "integer", true}};
  f.columns = std::move(columns);
  return f;
}

// A table with names that need quoting, a set of scalars, one row, a bare record, void.
const std::vector<api::RpcFunction>& catalog() {
  static const std::vector<api::RpcFunction> c = {
      function("t", true, true, false,
               {{"id", "integer"},
                {"name", "text"},
                {"we\"ird; name", "text"},
                {"ünï", "numeric"},
                {"tags", "text[]"}}),
      function("n", true, false, false, {{"n", "integer"}}),
      function("one", false, true, false, {{"k", "text"}, {"v", "integer"}}),
      function("rec", false, true, false, {}), function("nothing", false, false, true, {})};
  return c;
}

// The SQL with every catalog identifier and fixed literal taken out.
std::string without_known_text(std::string sql) {
  std::vector<std::string> known;
  for (const api::RpcFunction& f : catalog()) {
    known.push_back(api::quote_ident(f.name));
    for (const api::RpcColumn& col : f.columns)
      known.push_back(api::quote_ident(col.name));
  }
  known.push_back(api::quote_ident("api"));
  known.push_back(api::quote_ident("a"));
  for (const char* lit : {"E', \\n '", "E'\\n'", "'zonegate:PGRST116:'", "'[]'", "'null'", "'{'",
                          "'}'", "'['", "']'", "':'", "','", "''"}) {
    known.emplace_back(lit);
  }
  for (const std::string& k : known) {
    for (size_t at = sql.find(k); at != std::string::npos; at = sql.find(k, at))
      sql.erase(at, k.size());
  }
  return sql;
}

// Each of $first..$last appears exactly once as a whole placeholder, and no other does.
bool placeholders_ok(const std::string& sql, size_t first, size_t last) {
  std::vector<int> seen(last + 1, 0);
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] != '$') continue;
    size_t j = i + 1;
    size_t n = 0;
    while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9' && j - i < 8)
      n = n * 10 + static_cast<size_t>(sql[j++] - '0');
    if (j == i + 1 || n == 0 || n > last) return false;
    ++seen[n];
    i = j - 1;
  }
  for (size_t n = first; n <= last; ++n) {
    if (seen[n] != 1) return false;
  }
  return true;
}

bool refusal(int status) {
  return status == 400 || status == 406 || status == 416;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool is_get = data[0] % 2 == 0;
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0) {
      parts.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  parts.push_back(std::move(cur));
  parts.resize(std::max<size_t>(parts.size(), 1));
  const std::string* accept = parts.size() > 1 ? &parts[1] : nullptr;
  std::vector<std::string_view> prefer;
  if (parts.size() > 2) prefer.emplace_back(parts[2]);
  const std::string* range = parts.size() > 3 ? &parts[3] : nullptr;

  std::vector<std::pair<std::string, std::string>> pairs;
  if (!zonegate::http::parse_query(parts[0], pairs)) return 0;
  rpc::QueryRequest q;
  std::vector<std::pair<std::string, std::string>> args;
  zonegate::http::Response error;
  if (!rpc::split_query(pairs, is_get, "t", q, args, error)) {
    if (error.status != 400) __builtin_trap();
    return 0;
  }
  if (!is_get && !args.empty()) __builtin_trap();  // a POST's query holds no arguments
  for (const auto& [k, v] : args) {
    rpc::Filter f;
    std::string why;
    if (rpc::parse_filter_value(v, f, why) != rpc::FilterParse::kNotAFilter) __builtin_trap();
    for (const char* r : {"select", "order", "limit", "offset", "columns", "on_conflict"}) {
      if (k == r) __builtin_trap();
    }
  }
  for (const rpc::FilterParam& p : q.filters) {
    rpc::Filter f;
    std::string why;
    if (rpc::parse_filter_value(p.value, f, why) == rpc::FilterParse::kNotAFilter) __builtin_trap();
  }
  if (!rpc::read_headers(accept, prefer, range, is_get, q, error)) {
    if (!refusal(error.status)) __builtin_trap();
    return 0;
  }

  for (const api::RpcFunction& f : catalog()) {
    const size_t call_params = data[0] % 3;
    std::vector<size_t> used(call_params > 0 ? 1 : 0, 0);
    rpc::Plan plan;
    if (!rpc::plan_call(f, used.size(), q, plan, error)) {
      if (!refusal(error.status)) __builtin_trap();
      continue;
    }
    const std::string sql = plan.statement(rpc::call_sql(f, used, false));
    if (!placeholders_ok(sql, used.size() + 1, used.size() + plan.params.size())) {
      __builtin_trap();
    }
    const std::string rest = without_known_text(sql);
    if (rest.find('\'') != std::string::npos || rest.find('"') != std::string::npos) {
      __builtin_trap();  // request text in a literal or an identifier
    }
    if (plan.plain != plan.cache_part.empty()) __builtin_trap();

    // Any counts Postgres could send back shape into a status PostgREST would give.
    for (const char* total :
         {static_cast<const char*>("0"), "1", "7", static_cast<const char*>(nullptr)}) {
      zonegate::pg::Result r;
      r.rows.push_back({std::string("[]"), std::string(plan.returns_set ? "3" : "1"),
                        total ? std::optional<std::string>(total) : std::nullopt});
      zonegate::http::Response resp = rpc::shape(plan, r);
      if (resp.status != 200 && resp.status != 204 && resp.status != 206 && resp.status != 416) {
        __builtin_trap();
      }
    }
  }
  zonegate::pg::Result failed;
  failed.failure = zonegate::pg::Failure::kSql;
  failed.sqlstate = "22P02";
  failed.message = parts[0];
  zonegate::http::Response singular;
  if (rpc::singular_failure(failed, singular) && singular.status != 406) __builtin_trap();
  return 0;
}
