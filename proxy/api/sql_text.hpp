// The two ways request-independent text enters /rpc's SQL: a catalog identifier, quoted, and a
// text array literal for a bound parameter. Header-only so that the fuzz targets of the /rpc
// parsers link without the catalog's database types.
#pragma once

#include <string>
#include <vector>

namespace zonegate::api {

// "name" with embedded quotes doubled.
inline std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A PostgreSQL array literal for text values: {"a","b \"c\""}.
inline std::string pg_text_array(const std::vector<std::string>& items) {
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

}  // namespace zonegate::api
