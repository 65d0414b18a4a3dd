// JSON line logger, the front: levels, configure(), and the structured lines of write(). Where
// lines go is log_output.cpp, batching and the writer thread log_writer.cpp, the access log
// access_log.cpp. See log.hpp.
#include "common/log.hpp"

#include <atomic>
#include <string>
#include <type_traits>
#include <variant>

#include "common/json.hpp"
#include "common/log_internal.hpp"

namespace zonegate::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

bool parse_level(std::string_view s, Level& out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (s == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool configure(Level level, const std::string& path, std::string* error) {
  if (!detail::set_destination(path, error)) return false;
  g_level = static_cast<int>(level);
  return true;
}

void set_level(Level level) {
  g_level = static_cast<int>(level);
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  json::Writer w;
  w.start_object();
  w.key("ts");
  w.string(json::iso8601_now_ms());
  w.key("level");
  w.string(level_name(level));
  w.key("msg");
  w.string(msg);
  for (const Field& f : fields) {
    w.key(f.key);
    std::visit(
        [&w](auto v) {
          using T = decltype(v);
          if constexpr (std::is_same_v<T, std::string_view>)
            w.string(v);
          else if constexpr (std::is_same_v<T, int64_t>)
            w.int64(v);
          else if constexpr (std::is_same_v<T, double>)
            w.number(v);
          else
            w.boolean(v);
        },
        f.value);
  }
  w.end_object();
  write_line(w.take());
}

}  // namespace zonegate::log
