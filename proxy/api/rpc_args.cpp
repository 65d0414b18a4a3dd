// /rpc argument decoding; see rpc_args.hpp.
#include "api/rpc_args.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cache/key.hpp"
#include "common/json.hpp"

namespace zonegate::api::rpc {

namespace {

// Name/value pairs of a query string or form body as arguments; false when it is malformed.
bool pairs_as_args(std::string_view text, DecodedArgs& out) {
  std::vector<std::pair<std::string, std::string>> q;
  if (!http::parse_query(text, q)) return false;
  for (auto& [k, v] : q)
    out.args.emplace_back(std::move(k), std::move(v));
  return true;
}

// One value of rapidjson's Accept(): scalars are written, containers opened (the caller walks
// their contents). Returns true when `v` was a container.
bool write_value(rapidjson::Writer<rapidjson::StringBuffer>& w, const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      w.Null();
      return false;
    case rapidjson::kFalseType:
      w.Bool(false);
      return false;
    case rapidjson::kTrueType:
      w.Bool(true);
      return false;
    case rapidjson::kObjectType:
      w.StartObject();
      return true;
    case rapidjson::kArrayType:
      w.StartArray();
      return true;
    case rapidjson::kStringType:
      w.String(v.GetString(), v.GetStringLength());
      return false;
    case rapidjson::kNumberType:
      // The order of GenericValue::Accept, so numbers are written as they always were.
      if (v.IsDouble()) {
        w.Double(v.GetDouble());
      } else if (v.IsInt()) {
        w.Int(v.GetInt());
      } else if (v.IsUint()) {
        w.Uint(v.GetUint());
      } else if (v.IsInt64()) {
        w.Int64(v.GetInt64());
      } else {
        w.Uint64(v.GetUint64());
      }
      return false;
  }
  return false;
}

// Whether a JSON document holds a number no double can hold: RapidJSON reads 2e308 as
// infinity, which no writer can give back as JSON (the parameter would be cut short).
bool has_non_finite(const rapidjson::Value& root) {
  std::vector<const rapidjson::Value*> todo = {&root};
  while (!todo.empty()) {
    const rapidjson::Value* v = todo.back();
    todo.pop_back();
    if (v->IsDouble() && !std::isfinite(v->GetDouble())) return true;
    if (v->IsArray()) {
      for (const auto& e : v->GetArray())
        todo.push_back(&e);
    } else if (v->IsObject()) {
      for (const auto& m : v->GetObject())
        todo.push_back(&m.value);
    }
  }
  return false;
}

// The media type of a Content-Type, lower-cased, without parameters ("" when absent).
std::string media_type(const std::string* content_type) {
  if (content_type == nullptr) return "";
  std::string_view v(*content_type);
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A JSON body: an object's members are the arguments (unless params=single-object sends it
// whole); any other JSON value is kept for a function that takes the body whole.
bool decode_json_body(std::string_view body, DecodedArgs& out, http::Response& error) {
  out.body.emplace();
  std::string err;
  if (!json::parse(body, *out.body, err)) {
    error = http::error_response(400, "PGRST102",
                                 "the body must be a JSON object of named arguments", err);
    return false;
  }
  if (has_non_finite(*out.body)) {
    error =
        http::error_response(400, "PGRST102", "the body must be a JSON object of named arguments",
                             "a number is too large for a double");
    return false;
  }
  if (!out.body->IsObject() || out.query.single_object) return true;
  for (auto it = out.body->MemberBegin(); it != out.body->MemberEnd(); ++it) {
    out.args.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()),
                          std::nullopt);
  }
  return true;
}

// Refuses an argument named twice.
bool no_name_twice(const DecodedArgs& out, http::Response& error) {
  std::set<std::string> seen;
  for (const auto& a : out.args) {
    if (!seen.insert(a.first).second) {
      error = http::error_response(400, "PGRST100", "argument \"" + a.first + "\" given twice");
      return false;
    }
  }
  return true;
}

}  // namespace

bool decode_args(const CallInput& in, DecodedArgs& out, http::Response& error) {
  out = DecodedArgs();
  out.is_get = in.method == "GET" || in.method == "HEAD";
  std::vector<std::pair<std::string, std::string>> query;
  if (!http::parse_query(in.query, query)) {
    error = http::error_response(400, "PGRST100", "malformed query string");
    return false;
  }
  std::vector<std::pair<std::string, std::string>> plain;
  if (!split_query(query, out.is_get, in.function, out.query, plain, error)) return false;
  if (!read_headers(in.accept, in.prefer, in.range, out.is_get, out.query, error)) return false;
  if (out.is_get) {
    for (auto& [k, v] : plain)
      out.args.emplace_back(std::move(k), std::move(v));
  } else {
    const std::string media = media_type(in.content_type);
    if (media == "application/x-www-form-urlencoded") {
      out.body_kind = BodyKind::kForm;
      if (!pairs_as_args(in.body, out)) {
        error = http::error_response(400, "PGRST100", "malformed form body");
        return false;
      }
    } else if (media.empty() || media == "application/json") {
      out.body_kind = BodyKind::kJson;
      if (!in.body.empty() && !decode_json_body(in.body, out, error)) return false;
    } else if (media == "text/plain" || media == "text/xml" ||
               media == "application/octet-stream") {
      out.body_kind = media == "text/plain" ? BodyKind::kText
                      : media == "text/xml" ? BodyKind::kXml
                                            : BodyKind::kBinary;
      if (out.body_kind != BodyKind::kBinary && in.body.find('\0') != std::string_view::npos) {
        // libpq would end the text at the NUL: the function would get another value.
        error = http::error_response(400, "PGRST102", "a text body must not contain NUL");
        return false;
      }
      out.raw_body.assign(in.body);
    } else if (!in.body.empty()) {
      error = http::error_response(415, "PGRST102",
                                   "Content-Type not acceptable: " + media.substr(0, 64), "",
                                   "send application/json");
      return false;
    }
    // params=single-object is for a JSON body only.
    if (out.body_kind != BodyKind::kJson) out.query.single_object = false;
  }
  return no_name_twice(out, error);
}

bool adopt_arguments(const std::vector<RpcFunction>& overloads, DecodedArgs& args,
                     http::Response& error) {
  if (!args.is_get || args.query.filters.empty()) return true;
  std::vector<FilterParam> filters;
  for (FilterParam& p : args.query.filters) {
    bool input = false;
    bool column = false;
    for (const RpcFunction& f : overloads) {
      column = column || f.column(p.name) != nullptr;
      for (const RpcArg& a : f.args)
        input = input || a.name == p.name;
    }
    if (input && !column) {
      args.args.emplace_back(std::move(p.name), std::move(p.value));
    } else {
      filters.push_back(std::move(p));
    }
  }
  args.query.filters = std::move(filters);
  return no_name_twice(args, error);
}

const RpcFunction* resolve_whole_body(const std::vector<RpcFunction>& overloads,
                                      const DecodedArgs& args) {
  if (args.is_get) return nullptr;
  for (const RpcFunction& f : overloads) {
    if (f.args.size() != 1) continue;
    const std::string& t = f.args[0].type;
    if (args.query.single_object) {
      if (args.body_kind == BodyKind::kJson && (t == "json" || t == "jsonb")) return &f;
      continue;
    }
    if (!f.args[0].name.empty()) continue;
    bool fits = false;
    switch (args.body_kind) {
      case BodyKind::kJson:
        fits = t == "json" || t == "jsonb";
        break;
      case BodyKind::kText:
        fits = t == "text";
        break;
      case BodyKind::kXml:
        fits = t == "xml";
        break;
      case BodyKind::kBinary:
        fits = t == "bytea";
        break;
      case BodyKind::kNone:
      case BodyKind::kForm:
        break;
    }
    if (fits) return &f;
  }
  return nullptr;
}

const RpcFunction* choose(const std::vector<RpcFunction>& overloads, const DecodedArgs& args,
                          std::vector<size_t>& used, bool& whole_body) {
  used.clear();
  whole_body = false;
  const bool raw = args.body_kind == BodyKind::kText || args.body_kind == BodyKind::kXml ||
                   args.body_kind == BodyKind::kBinary;
  const bool json_not_object = args.body && !args.body->IsObject();
  const RpcFunction* f = nullptr;
  if (!args.query.single_object && !raw && !json_not_object) {
    f = resolve(overloads, args, used);
    if (f != nullptr || args.body_kind != BodyKind::kJson) return f;
  }
  f = resolve_whole_body(overloads, args);
  if (f != nullptr) {
    whole_body = true;
    used.assign(1, 0);
  }
  return f;
}

std::string whole_body_param(const DecodedArgs& args) {
  switch (args.body_kind) {
    case BodyKind::kJson:
      return args.body ? json_text(*args.body) : std::string("{}");
    case BodyKind::kBinary: {
      static const char kHex[] = "0123456789abcdef";
      std::string out = "\\x";
      out.reserve(2 + 2 * args.raw_body.size());
      for (char ch : args.raw_body) {
        const auto u = static_cast<unsigned char>(ch);
        out += kHex[u >> 4];
        out += kHex[u & 0xf];
      }
      return out;
    }
    case BodyKind::kText:
    case BodyKind::kXml:
    case BodyKind::kNone:
    case BodyKind::kForm:
      break;
  }
  return args.raw_body;
}

const RpcFunction* resolve(const std::vector<RpcFunction>& overloads, const DecodedArgs& args,
                           std::vector<size_t>& used) {
  const RpcFunction* best = nullptr;
  for (const RpcFunction& f : overloads) {
    std::vector<size_t> idx;
    bool ok = true;
    for (const auto& a : args.args) {
      auto it = std::find_if(f.args.begin(), f.args.end(),
                             [&](const RpcArg& x) { return x.name == a.first; });
      if (it == f.args.end()) {
        ok = false;
        break;
      }
      idx.push_back(static_cast<size_t>(it - f.args.begin()));
    }
    for (size_t i = 0; ok && i < f.args.size(); ++i) {
      if (!f.args[i].has_default && std::find(idx.begin(), idx.end(), i) == idx.end()) ok = false;
    }
    if (ok && (best == nullptr || f.args.size() < best->args.size())) {
      best = &f;
      used = idx;
    }
  }
  return best;
}

std::vector<std::optional<std::string>> bind_params(const RpcFunction& f,
                                                    const std::vector<size_t>& used,
                                                    const DecodedArgs& args) {
  std::vector<std::optional<std::string>> params;
  params.reserve(used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    if (args.body) {
      // Argument i is member i of the body (decode_args made them in member order).
      const auto member = args.body->MemberBegin() + static_cast<rapidjson::SizeType>(i);
      params.push_back(json_to_param(member->value, f.args[used[i]].type));
    } else {
      params.push_back(args.args[i].second);
    }
  }
  return params;
}

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  struct Frame {
    const rapidjson::Value* v;
    rapidjson::SizeType next;
  };
  std::vector<Frame> stack;
  if (write_value(w, v)) stack.push_back({&v, 0});
  while (!stack.empty()) {
    Frame& top = stack.back();
    const rapidjson::Value& c = *top.v;
    if (c.IsObject()) {
      if (top.next == c.MemberCount()) {
        w.EndObject(c.MemberCount());
        stack.pop_back();
        continue;
      }
      const auto m = c.MemberBegin() + top.next++;
      w.Key(m->name.GetString(), m->name.GetStringLength());
      if (write_value(w, m->value)) stack.push_back({&m->value, 0});  // `top` is spent
    } else {
      if (top.next == c.Size()) {
        w.EndArray(c.Size());
        stack.pop_back();
        continue;
      }
      const rapidjson::Value& e = c[top.next++];
      if (write_value(w, e)) stack.push_back({&e, 0});
    }
  }
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<std::string> json_to_param(const rapidjson::Value& v, const std::string& type) {
  if (v.IsNull()) return std::nullopt;
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsArray() && type.size() > 2 && type.compare(type.size() - 2, 2, "[]") == 0) {
    // A JSON array for an array parameter becomes an array literal, as PostgREST does.
    std::string out = "{";
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (i > 0) out += ',';
      const auto& e = v[i];
      if (e.IsNull()) {
        out += "NULL";
        continue;
      }
      std::string text;
      if (e.IsString()) {
        text.assign(e.GetString(), e.GetStringLength());
      } else {
        text = json_text(e);
      }
      out += '"';
      for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
    return out + "}";
  }
  return json_text(v);
}

std::string cache_key(const std::string& fn, const RpcFunction& f, const std::vector<size_t>& used,
                      const std::vector<std::optional<std::string>>& params,
                      const std::string* user, std::string_view query) {
  // Sorted by name: the same arguments in another order are the same call.
  std::vector<std::pair<std::string_view, const std::optional<std::string>*>> canon;
  for (size_t i = 0; i < used.size() && i < params.size(); ++i)
    canon.emplace_back(f.args[used[i]].name, &params[i]);
  std::sort(canon.begin(), canon.end());
  std::string key = cache::make_key({"rpc", fn, std::to_string(f.oid)});
  if (user != nullptr) {
    cache::append_key_part(key, "user");
    cache::append_key_part(key, *user);
  } else {
    cache::append_key_part(key, "shared");
  }
  cache::append_key_part(key, std::to_string(canon.size()));
  for (const auto& [name, value] : canon) {
    cache::append_key_part(key, name);
    cache::append_key_value(key, *value);
  }
  if (!query.empty()) {
    cache::append_key_part(key, "query");
    cache::append_key_part(key, query);
  }
  return key;
}

}  // namespace zonegate::api::rpc
