// libFuzzer target for /rpc's argument decoding (proxy/api/rpc_args.cpp): a method, a
// Content-Type, a query string and a body against a small fixed catalog of overloads. Never a
// crash, whatever the input (a million nested arrays included); a decoded request never names
// an argument twice; a chosen overload is the one with the fewest inputs among those whose names
// cover the arguments and whose other inputs have defaults, and none is chosen when none fits;
// every parameter list matches the chosen overload; cache keys tell shared from per-user calls.
//
// Input: byte 0 picks the method, byte 1 the Content-Type, then the query up to the first NUL,
// then the body. Reserved query parameters and filters are the read side's (rpc_query_fuzz).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/rpc_args.hpp"
#include "common/json.hpp"

namespace {

namespace api = zonegate::api;
namespace rpc = zonegate::api::rpc;

// One overload of f in schema api.
api::RpcFunction overload(uint32_t oid, std::vector<api::RpcArg> args) {
  api::RpcFunction f;
  f.oid = oid;
  f.schema = "api";
  f.name = "f";
  f.args = std::move(args);
  return f;
}

// Overloads that differ by names, counts, defaults and array or JSON types.
const std::vector<api::RpcFunction>& catalog() {
  static const std::vector<api::RpcFunction> c = {
      overload(1, {{"a", "integer", false}}),
      overload(2, {{"a", "integer", false}, {"b", "integer", false}}),
      overload(3, {{"a", "integer", false}, {"b", "integer", false}, {"c", "text", true}}),
      overload(4, {{"x", "text", true}}),
      overload(5, {{"xs", "integer[]", true}, {"doc", "jsonb", true}, {"we ird", "text", true}}),
      overload(6, {{"", "text", false}, {"a\x1e", "text[]", true}})};
  return c;
}

// Whether `f` can take exactly these argument names.
bool fits(const api::RpcFunction& f, const rpc::DecodedArgs& d) {
  std::vector<bool> named(f.args.size(), false);
  for (const auto& a : d.args) {
    bool found = false;
    for (size_t i = 0; i < f.args.size() && !found; ++i) {
      if (f.args[i].name == a.first) {
        named[i] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  for (size_t i = 0; i < f.args.size(); ++i) {
    if (!named[i] && !f.args[i].has_default) return false;
  }
  return true;
}

// The deepest nesting of a JSON value, counted without recursion.
size_t depth_of(const rapidjson::Value& root) {
  size_t deepest = 0;
  std::vector<std::pair<const rapidjson::Value*, size_t>> todo = {{&root, 1}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, d);
    if (v->IsArray()) {
      for (const auto& e : v->GetArray())
        todo.emplace_back(&e, d + 1);
    } else if (v->IsObject()) {
      for (const auto& m : v->GetObject())
        todo.emplace_back(&m.value, d + 1);
    }
  }
  return deepest;
}

// json_text gives back a document equal to the value (compared only where rapidjson's own
// recursive operator== is safe to run).
void check_json_text(const rapidjson::Value& v) {
  const std::string text = rpc::json_text(v);
  if (depth_of(v) > 500) return;
  // Read back with full precision: the writer's shortest doubles round-trip only through a
  // correctly rounding parser.
  rapidjson::Document again;
  again.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag>(text.data(),
                                                                                   text.size());
  if (again.HasParseError() || !(again == v)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kMethods[] = {"GET", "HEAD", "POST", "PUT"};
  static const std::string kTypes[] = {"application/json",
                                       "application/x-www-form-urlencoded",
                                       "application/x-www-form-urlencoded; charset=utf-8",
                                       "application/json; charset=utf-8",
                                       "text/plain",
                                       "application/jsonx",
                                       ""};
  rpc::CallInput in;
  in.method = kMethods[data[0] % 4];
  const size_t type = data[1] % 8;
  in.content_type = type < 7 ? &kTypes[type] : nullptr;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t nul = rest.find('\0');
  in.query = rest.substr(0, nul);
  in.body = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);

  rpc::DecodedArgs d;
  zonegate::http::Response error;
  if (!rpc::decode_args(in, d, error)) {
    if (error.status != 400 && error.status != 415) __builtin_trap();
    return 0;
  }
  if (d.is_get != (in.method == "GET" || in.method == "HEAD")) __builtin_trap();
  // Reserved names in a query string are never arguments (a body may name any argument).
  for (const auto& a : d.is_get ? d.args : decltype(d.args){}) {
    for (const char* r : {"select", "order", "limit", "offset", "columns", "on_conflict"}) {
      if (a.first == r) __builtin_trap();
    }
  }
  // On GET, moving operator-looking parameters that name inputs into the arguments keeps
  // every name once.
  if (!rpc::adopt_arguments(catalog(), d, error)) {
    if (error.status != 400) __builtin_trap();
    return 0;
  }
  std::set<std::string> names;
  for (const auto& a : d.args) {
    if (!names.insert(a.first).second) __builtin_trap();  // an argument twice
    if (d.body.has_value() == a.second.has_value()) __builtin_trap();
  }
  if (d.body && d.body->IsObject() && d.body->MemberCount() != d.args.size()) __builtin_trap();
  if (d.body && !d.body->IsObject() && !d.args.empty()) __builtin_trap();
  bool whole = false;
  std::vector<size_t> chosen;
  if (const api::RpcFunction* w = rpc::choose(catalog(), d, chosen, whole); w != nullptr && whole) {
    if (w->args.size() != 1 || chosen != std::vector<size_t>{0}) __builtin_trap();
    (void)rpc::whole_body_param(d);
  }
  if (d.body && !d.body->IsObject()) return 0;  // only for a whole-body input

  std::vector<size_t> used;
  const api::RpcFunction* f = rpc::resolve(catalog(), d, used);
  size_t fewest = SIZE_MAX;
  for (const api::RpcFunction& o : catalog()) {
    if (fits(o, d)) fewest = std::min(fewest, o.args.size());
  }
  if (f == nullptr) {
    if (fewest != SIZE_MAX) __builtin_trap();  // an overload fits but none was chosen
    return 0;
  }
  if (!fits(*f, d) || f->args.size() != fewest) __builtin_trap();
  if (used.size() != d.args.size()) __builtin_trap();
  std::set<size_t> distinct;
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i] >= f->args.size() || f->args[used[i]].name != d.args[i].first) __builtin_trap();
    if (!distinct.insert(used[i]).second) __builtin_trap();
  }

  std::vector<std::optional<std::string>> params = rpc::bind_params(*f, used, d);
  if (params.size() != used.size()) __builtin_trap();
  for (size_t i = 0; i < params.size(); ++i) {
    if (!d.body) {
      if (params[i] != d.args[i].second) __builtin_trap();
      continue;
    }
    const rapidjson::Value& v =
        (d.body->MemberBegin() + static_cast<rapidjson::SizeType>(i))->value;
    if (v.IsNull() != !params[i].has_value()) __builtin_trap();
    const std::string& t = f->args[used[i]].type;
    if (v.IsArray() && t.size() > 2 && t.compare(t.size() - 2, 2, "[]") == 0) {
      if (params[i]->empty() || params[i]->front() != '{' || params[i]->back() != '}') {
        __builtin_trap();
      }
    }
    if (!v.IsString() && !v.IsNull()) check_json_text(v);
  }

  const std::string user = "alice";
  const std::string shared = rpc::cache_key("f", *f, used, params, nullptr);
  const std::string mine = rpc::cache_key("f", *f, used, params, &user);
  if (shared == mine || shared != rpc::cache_key("f", *f, used, params, nullptr)) __builtin_trap();
  return 0;
}
