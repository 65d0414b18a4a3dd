// The live dashboard's embedded assets (generated at build time, see proxy/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <string_view>

namespace zonegate::admin {

struct Asset {
  const char* name;  // e.g. "app.js"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

// Terminated by an entry whose name is null.
extern const Asset kAssets[];

// The asset with this name, or nullptr.
inline const Asset* find_asset(std::string_view name) {
  for (const Asset* a = kAssets; a->name != nullptr; ++a) {
    if (name == a->name) return a;
  }
  return nullptr;
}

}  // namespace zonegate::admin
