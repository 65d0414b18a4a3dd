// JSON line logger; see log.hpp.
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

#include "common/json.hpp"

namespace zonegate::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_reopen_mutex;  // guards g_path and fd swaps, never the write path
std::string g_path;

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

int open_log(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0 && error) *error = "cannot open log file " + path + ": " + std::strerror(errno);
  return fd;
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
  std::lock_guard<std::mutex> lock(g_reopen_mutex);
  int fd = STDERR_FILENO;
  if (!path.empty() && path != "-") {
    fd = open_log(path, error);
    if (fd < 0) return false;
  }
  int old = g_fd.exchange(fd);
  if (old != STDERR_FILENO && old != fd) ::close(old);
  g_path = (fd == STDERR_FILENO) ? std::string() : path;
  g_level = static_cast<int>(level);
  return true;
}

void reopen() {
  std::lock_guard<std::mutex> lock(g_reopen_mutex);
  if (g_path.empty()) return;
  std::string err;
  int fd = open_log(g_path, &err);
  if (fd < 0) {
    write(Level::kError, "log reopen failed", {{"error", err}});
    return;
  }
  int old = g_fd.exchange(fd);
  // A writer may still hold the old fd for one write; closing it then makes that write fail
  // with EBADF, which only loses a line already on its way to the rotated file's old inode.
  if (old != STDERR_FILENO) ::close(old);
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write_line(std::string line) {
  line.push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  int fd = g_fd.load(std::memory_order_acquire);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
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
