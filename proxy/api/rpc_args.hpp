// /rpc's argument decoding, with no database or event-loop types so that it is unit-tested and
// fuzzed (tests/fuzz/rpc_args_fuzz.cpp): the query string, a form or a JSON body become named
// arguments (the reserved parameters and filters of the query string are the read side's:
// api/rpc_query.hpp); a name given twice is refused; the overload is chosen by argument names,
// or one input takes the whole body (docs/API.md, "/rpc semantics"); each value becomes the text
// of a bound parameter; and the call's cache key is built from length-prefixed parts
// (cache/key.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "api/rpc_function.hpp"
#include "api/rpc_query.hpp"
#include "http/message.hpp"

namespace zonegate::api::rpc {

// What a request says: its method, the function's name, its Content-Type, Accept and Range
// (nullptr when absent), every Prefer header, its query and its body.
struct CallInput {
  std::string_view method;
  std::string function;
  const std::string* content_type = nullptr;
  const std::string* accept = nullptr;
  const std::string* range = nullptr;
  std::vector<std::string_view> prefer;
  std::string_view query;
  std::string_view body;
};

// What a POST body is, by its Content-Type.
enum class BodyKind {
  kNone,    // GET or HEAD
  kJson,    // application/json (or no Content-Type)
  kForm,    // application/x-www-form-urlencoded
  kText,    // text/plain: for one unnamed text input
  kXml,     // text/xml: for one unnamed xml input
  kBinary,  // application/octet-stream: for one unnamed bytea input
};

// A request's named arguments, in the order it gave them, and what it asks of the result.
struct DecodedArgs {
  bool is_get = false;  // GET or HEAD: arguments from the query string
  // name and, from a query string or a form, the decoded value (a JSON body's values stay in
  // `body`: member i is argument i).
  std::vector<std::pair<std::string, std::optional<std::string>>> args;
  std::optional<rapidjson::Document> body;
  BodyKind body_kind = BodyKind::kNone;
  std::string raw_body;  // a text, xml or binary body
  QueryRequest query;    // select, filters, order, limit/offset, Range, Prefer, Accept
};

// Decodes a request's arguments and what it asks of the result. On a malformed query, header or
// body, an unsupported Content-Type or a name given twice, returns false with the answer to send
// in `error`.
bool decode_args(const CallInput& in, DecodedArgs& out, http::Response& error);

// On GET, a parameter whose value reads as an operator expression is a filter, as PostgREST
// reads it, unless it names an input of some overload and no column of any result: then it is
// that argument (`?msg=eq.hi` passes "eq.hi" to msg). Moves those into the arguments; false with
// the answer (400) when a name is then given twice.
bool adopt_arguments(const std::vector<RpcFunction>& overloads, DecodedArgs& args,
                     http::Response& error);

// The overload whose input names cover the given arguments and whose other inputs have defaults
// (the one with the fewest inputs when several do); `used[i]` is the input argument i names.
// nullptr when none fits.
const RpcFunction* resolve(const std::vector<RpcFunction>& overloads, const DecodedArgs& args,
                           std::vector<size_t>& used);

// The overload that takes the whole body as its one input, as PostgREST chooses it: with
// Prefer: params=single-object, one json or jsonb input; else one unnamed input of the body's
// type (json or jsonb for JSON, text, xml or bytea). nullptr when none does, and on GET.
const RpcFunction* resolve_whole_body(const std::vector<RpcFunction>& overloads,
                                      const DecodedArgs& args);

// The overload a call names: the whole-body one for a body that is not a JSON object of
// arguments (or with params=single-object), else by argument names, falling back for a JSON
// body to one unnamed json input. nullptr when none fits.
const RpcFunction* choose(const std::vector<RpcFunction>& overloads, const DecodedArgs& args,
                          std::vector<size_t>& used, bool& whole_body);

// The one parameter of a whole-body call: the JSON text, the text or xml as sent, bytea as hex.
std::string whole_body_param(const DecodedArgs& args);

// The bound parameters of a call to `f`, in the order of `used` (what resolve() chose).
std::vector<std::optional<std::string>> bind_params(const RpcFunction& f,
                                                    const std::vector<size_t>& used,
                                                    const DecodedArgs& args);

// A JSON value as the text a Postgres parameter of `type` accepts (nullopt for JSON null).
std::optional<std::string> json_to_param(const rapidjson::Value& v, const std::string& type);

// A JSON value serialized without recursion: a request may nest arrays a million levels deep,
// and that must not cost a million stack frames.
std::string json_text(const rapidjson::Value& v);

// The cache key of a call: the function and overload, the scope (and the caller when `user` is
// not null), then the arguments sorted by name with their values, each a length-prefixed part,
// then what the request asks of the result (Plan::cache_part) when it asks anything.
std::string cache_key(const std::string& fn, const RpcFunction& f, const std::vector<size_t>& used,
                      const std::vector<std::optional<std::string>>& params,
                      const std::string* user, std::string_view query = {});

}  // namespace zonegate::api::rpc
