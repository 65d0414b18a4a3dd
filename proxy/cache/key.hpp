// Response cache keys built from length-prefixed parts (docs/ARCHITECTURE.md, "The response
// cache"). A key joined with separator bytes is ambiguous as soon as a value may contain them (a
// percent-decoded query value may hold any byte): `<len>:<bytes>` parts cannot run into each
// other, so two different part lists never make the same key.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace zonegate::cache {

// Appends one part as <decimal byte length>:<bytes>.
inline void append_key_part(std::string& key, std::string_view part) {
  key += std::to_string(part.size());
  key += ':';
  key.append(part.data(), part.size());
}

// Appends a value that may be SQL NULL as one part: "n" for NULL, "v" and the bytes otherwise.
inline void append_key_value(std::string& key, const std::optional<std::string>& value) {
  if (!value) {
    append_key_part(key, "n");
    return;
  }
  std::string tagged;
  tagged.reserve(value->size() + 1);
  tagged += 'v';
  tagged += *value;
  append_key_part(key, tagged);
}

// A key made of these parts, in order.
inline std::string make_key(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (std::string_view p : parts)
    append_key_part(key, p);
  return key;
}

}  // namespace zonegate::cache
