// JSON line logger; see log.hpp.
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
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
std::mutex g_write_mutex;   // one writer at a time: a batch bigger than PIPE_BUF stays whole
std::string g_path;
constexpr size_t kBatchFlushBytes = 64 * 1024;
std::atomic<int64_t> g_flush_interval_ms{100};

struct ThreadBatch {
  bool on = false;
  std::string buf;
  std::string scratch;  // LineWriter's line when not batching
};
thread_local ThreadBatch t_batch;

// Appends s as the inside of a JSON string: runs of plain bytes in one append each.
void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    const char* named = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : nullptr;
    if (named != nullptr) {
      out.append(named);
    } else {
      const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(u, sizeof u);
    }
  }
  out.append(s.data() + run, s.size() - run);
}

// Writes all of [p, p+len) to the current log fd; a failed write drops the rest (logging must
// never stop the proxy).
void write_all(const char* p, size_t left) {
  std::lock_guard<std::mutex> lock(g_write_mutex);
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

// stdout and stderr belong to the process: never closed here.
bool is_standard(int fd) {
  return fd == STDOUT_FILENO || fd == STDERR_FILENO;
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
  if (path == "stdout") {
    fd = STDOUT_FILENO;
  } else if (!path.empty() && path != "-" && path != "stderr") {
    fd = open_log(path, error);
    if (fd < 0) return false;
  }
  std::lock_guard<std::mutex> wlock(g_write_mutex);
  int old = g_fd.exchange(fd);
  if (!is_standard(old) && old != fd) ::close(old);
  g_path = is_standard(fd) ? std::string() : path;
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
  // Swapped under the write mutex: no writer is between loading the old fd and writing to it.
  std::lock_guard<std::mutex> wlock(g_write_mutex);
  int old = g_fd.exchange(fd);
  if (!is_standard(old)) ::close(old);
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

namespace {

// Where the calling thread builds its next line: the batch, or a scratch line written at once.
std::string& line_target() {
  return t_batch.on ? t_batch.buf : t_batch.scratch;
}

// Hands over a line just completed (newline included) in line_target().
void line_done() {
  ThreadBatch& b = t_batch;
  if (!b.on) {
    write_all(b.scratch.data(), b.scratch.size());
    b.scratch.clear();
  } else if (b.buf.size() >= kBatchFlushBytes) {
    flush_this_thread();
  }
}

}  // namespace

void write_line(std::string_view line) {
  std::string& out = line_target();
  out.append(line);
  out.push_back('\n');
  line_done();
}

LineWriter::LineWriter() : out_(line_target()) {
  out_.push_back('{');
}

void LineWriter::key(std::string_view k) {
  if (!first_) out_.push_back(',');
  first_ = false;
  out_.push_back('"');
  out_.append(k);
  out_.append("\":");
}

void LineWriter::field(std::string_view k, std::string_view value) {
  key(k);
  out_.push_back('"');
  append_escaped(out_, value);
  out_.push_back('"');
}

void LineWriter::field(std::string_view k, int64_t value) {
  key(k);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, static_cast<size_t>(r.ptr - buf));
}

void LineWriter::millis(std::string_view k, uint64_t ns) {
  key(k);
  const uint64_t us = (ns + 500) / 1000;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, us / 1000);
  out_.append(buf, static_cast<size_t>(r.ptr - buf));
  const auto frac = static_cast<unsigned>(us % 1000);
  out_.push_back('.');
  out_.push_back(static_cast<char>('0' + frac / 100));
  out_.push_back(static_cast<char>('0' + frac / 10 % 10));
  out_.push_back(static_cast<char>('0' + frac % 10));
}

void LineWriter::commit() {
  out_.append("}\n");
  line_done();
}

void set_flush_interval_ms(int64_t ms) {
  g_flush_interval_ms.store(ms < 0 ? 0 : ms, std::memory_order_relaxed);
}

int64_t flush_interval_ms() {
  return g_flush_interval_ms.load(std::memory_order_relaxed);
}

void batch_this_thread(bool on) {
  if (!on) flush_this_thread();
  t_batch.on = on;
  if (on && t_batch.buf.capacity() < kBatchFlushBytes) t_batch.buf.reserve(kBatchFlushBytes + 4096);
}

void flush_this_thread() {
  ThreadBatch& b = t_batch;
  if (b.buf.empty()) return;
  write_all(b.buf.data(), b.buf.size());
  b.buf.clear();
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
