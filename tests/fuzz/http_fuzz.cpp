// libFuzzer target for the request inputs the proxy decodes itself (llhttp frames the request and
// is fuzzed upstream): query strings, percent escapes, and the JSON error bodies that echo what a
// client sent (an unknown user id, a bad argument). Any bytes are decoded or refused, never a
// crash; decoding never grows the input; bytes without '%' decode to themselves ('+' as space);
// an error body built from any ASCII bytes is JSON that gives those bytes back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "http/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  namespace http = zonegate::http;

  std::string decoded;
  if (http::percent_decode(s, decoded, true)) {
    if (decoded.size() > s.size()) __builtin_trap();
  }
  if (s.find('%') == std::string_view::npos) {
    std::string expected(s);
    for (char& c : expected)
      if (c == '+') c = ' ';
    if (!http::percent_decode(s, decoded, true) || decoded != expected) __builtin_trap();
  }

  std::vector<std::pair<std::string, std::string>> params;
  if (http::parse_query(s, params)) {
    size_t total = 0;
    for (const auto& [name, value] : params)
      total += name.size() + value.size();
    if (total > s.size()) __builtin_trap();
  }

  bool ascii = true;
  for (unsigned char c : s)
    ascii = ascii && c < 0x80;
  if (ascii) {
    const std::string body = http::error_body("fuzz", s, s, {});
    rapidjson::Document d;
    std::string err;
    if (!zonegate::json::parse(body, d, err) || !d.IsObject() || !d["message"].IsString() ||
        std::string_view(d["message"].GetString(), d["message"].GetStringLength()) != s) {
      __builtin_trap();
    }
  }
  return 0;
}
