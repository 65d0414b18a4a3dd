// libFuzzer target for the query-string decoding /rpc and /v1 rely on (http::parse_query and
// http::percent_decode), by round trips: any bytes percent-encoded decode to themselves; any name
// and value list encoded as a query string parses back to the same list; a query that parses,
// encoded again, parses to the same pairs; percent_decode refuses exactly the inputs with a '%'
// not followed by two hex digits, and what it accepts shrinks by two bytes per escape.
//
// Input: the bytes themselves for the decoding properties; split at 0xFF bytes into alternating
// names and values for the list round trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"

namespace {

namespace http = zonegate::http;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// A hex digit, either case.
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 unreserved bytes stay, everything else becomes %XX (upper or lower hex by position,
// so both are exercised).
std::string encode(std::string_view s) {
  static const char kUpper[] = "0123456789ABCDEF";
  static const char kLower[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
      continue;
    }
    const char* hex = (i % 2 == 0) ? kUpper : kLower;
    out += '%';
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

// The query string of these pairs, each name and value encoded.
std::string join(const Pairs& pairs) {
  std::string q;
  for (const auto& [k, v] : pairs) {
    if (!q.empty()) q += '&';
    q += encode(k) + "=" + encode(v);
  }
  return q;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);

  // Encoded bytes decode to themselves, with '+' as space or not.
  std::string out;
  const std::string enc = encode(s);
  if (!http::percent_decode(enc, out, false) || out != s) __builtin_trap();
  if (!http::percent_decode(enc, out, true) || out != s) __builtin_trap();

  // Raw bytes: refused exactly when an escape is malformed; else two bytes shorter per escape.
  bool valid = true;
  size_t escapes = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      ++escapes;
      i += 2;
    } else {
      valid = false;
      break;
    }
  }
  if (http::percent_decode(s, out, true) != valid) __builtin_trap();
  if (valid && out.size() != s.size() - 2 * escapes) __builtin_trap();

  // Any name/value list survives encoding and parsing.
  Pairs pairs;
  std::string cur;
  std::vector<std::string> fields;
  for (char c : s) {
    if (static_cast<unsigned char>(c) == 0xFF) {
      fields.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields.push_back(std::move(cur));
  for (size_t i = 0; i < fields.size(); i += 2)
    pairs.emplace_back(fields[i], i + 1 < fields.size() ? fields[i + 1] : std::string());
  Pairs parsed;
  if (!http::parse_query(join(pairs), parsed) || parsed != pairs) __builtin_trap();

  // A raw query that parses gives one pair per non-empty part, and parses the same way again
  // once its pairs are encoded.
  if (http::parse_query(s, parsed)) {
    size_t parts = 0;
    size_t start = 0;
    while (start <= s.size()) {
      size_t amp = s.find('&', start);
      if (amp == std::string_view::npos) amp = s.size();
      parts += amp > start ? 1 : 0;
      start = amp + 1;
    }
    if (parsed.size() != parts) __builtin_trap();
    Pairs again;
    if (!http::parse_query(join(parsed), again) || again != parsed) __builtin_trap();
  }
  return 0;
}
