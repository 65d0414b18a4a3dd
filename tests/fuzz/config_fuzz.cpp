// libFuzzer target for the proxy's config loader: arbitrary bytes must yield either a config or
// diagnostics with a message; load_string must never throw or crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  zonegate::config::LoadResult r = zonegate::config::load_string(yaml, "fuzz.yaml");
  for (const auto& d : r.errors) {
    if (d.message.empty() || d.line < 0 || d.column < 0) __builtin_trap();
  }
  return 0;
}
