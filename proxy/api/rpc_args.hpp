// /rpc's argument decoding, with no database or event-loop types so that it is unit-tested and
// fuzzed (tests/fuzz/rpc_args_fuzz.cpp): the query string, a form or a JSON body become named
// arguments; a name given twice is refused; the overload is chosen by argument names (docs/API.md,
// "/rpc semantics"); each value becomes the text of a bound parameter; and the call's cache key is
// built from length-prefixed parts (cache/key.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "api/rpc_function.hpp"
#include "http/message.hpp"

namespace zonegate::api::rpc {

// What a request says: its method, Content-Type (nullptr when absent), query and body.
struct CallInput {
  std::string_view method;
  const std::string* content_type = nullptr;
  std::string_view query;
  std::string_view body;
};

// A request's named arguments, in the order it gave them.
struct DecodedArgs {
  bool is_get = false;  // GET or HEAD: arguments from the query string
  // name and, from a query string or a form, the decoded value (a JSON body's values stay in
  // `body`: member i is argument i).
  std::vector<std::pair<std::string, std::optional<std::string>>> args;
  std::optional<rapidjson::Document> body;
};

// Decodes a request's arguments. On a malformed query or body, an unsupported Content-Type or a
// name given twice, returns false with the answer to send in `error`.
bool decode_args(const CallInput& in, DecodedArgs& out, http::Response& error);

// The overload whose input names cover the given arguments and whose other inputs have defaults
// (the one with the fewest inputs when several do); `used[i]` is the input argument i names.
// nullptr when none fits.
const RpcFunction* resolve(const std::vector<RpcFunction>& overloads, const DecodedArgs& args,
                           std::vector<size_t>& used);

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
// not null), then the arguments sorted by name with their values, each a length-prefixed part.
std::string cache_key(const std::string& fn, const RpcFunction& f, const std::vector<size_t>& used,
                      const std::vector<std::optional<std::string>>& params,
                      const std::string* user);

}  // namespace zonegate::api::rpc
