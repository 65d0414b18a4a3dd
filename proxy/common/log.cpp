// JSON line logger; see log.hpp.
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/json.hpp"

namespace zonegate::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_reopen_mutex;  // guards g_path and fd swaps, never the write path
std::mutex g_write_mutex;   // one writer at a time: a batch bigger than PIPE_BUF stays whole
std::string g_path;
constexpr size_t kBatchFlushBytes = 64 * 1024;
constexpr size_t kBatchCapacity = kBatchFlushBytes + 4096;  // a batch's buffer: no regrowth
std::atomic<int64_t> g_flush_interval_ms{100};

}  // namespace

// A growable byte buffer written through raw pointers: a writer ensures the room it needs once,
// then stores bytes without per-append bookkeeping.
struct LineBuf {
  std::unique_ptr<char[]> data;
  size_t size = 0;
  size_t cap = 0;

  char* tail() { return data.get() + size; }
  void set_tail(char* p) { size = static_cast<size_t>(p - data.get()); }
  void ensure(size_t extra) {
    if (size + extra > cap) grow(size + extra);
  }
  void grow(size_t need) {
    size_t n = std::max({need, cap * 2, size_t{1024}});
    std::unique_ptr<char[]> d(new char[n]);
    if (size > 0) std::memcpy(d.get(), data.get(), size);
    data = std::move(d);
    cap = n;
  }
  void append(std::string_view s) {
    ensure(s.size());
    std::memcpy(tail(), s.data(), s.size());
    size += s.size();
  }
};

namespace {

struct ThreadBatch {
  bool on = false;
  LineBuf buf;
  LineBuf scratch;  // a line written at once when not batching
};
thread_local ThreadBatch t_batch;

// Whether any of the 8 bytes in w is below 0x20, '"' or '\\' (the characters JSON escapes).
// Exact as an existence test (hasless/haszero of "Bit Twiddling Hacks"; the borrows they can
// cause only misplace which byte, never invent or hide one).
inline bool needs_escape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t ctl = (w - kOnes * 0x20) & ~w & kHigh;
  const uint64_t q = w ^ (kOnes * '"'), b = w ^ (kOnes * '\\');
  return (ctl | ((q - kOnes) & ~q & kHigh) | ((b - kOnes) & ~b & kHigh)) != 0;
}

// Writes s escaped as the inside of a JSON string at p (room for 6 bytes per input byte must be
// there); returns the new end. Plain 8-byte blocks are copied whole.
char* escape_into(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* in = s.data();
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, in + i, 8);
      if (needs_escape(w)) break;
      std::memcpy(p, in + i, 8);
      p += 8;
      i += 8;
    }
    if (i >= n) break;
    const auto c = static_cast<unsigned char>(in[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = static_cast<char>(c);
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"':
      case '\\':
        *p++ = static_cast<char>(c);
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 15];
        break;
    }
  }
  return p;
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

// The event-loop threads' batches are written by a thread of its own once start_writer() ran, as
// Envoy's access-log flush thread does: a write(2) of 64 KiB into the page cache took 20-80 µs
// here, with stalls of several ms while the kernel wrote the file out (measured appending 29 MB/s,
// the access log's rate at 88,000 hits/s), all of it on a worker's loop. A worker hands its full
// buffer over under a mutex and goes on with a spare one. Batches are written in the order they
// were handed over, so each thread's lines stay in order.
class BackgroundWriter {
 public:
  ~BackgroundWriter() { stop(); }

  void start(size_t max_pending_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) return;
    max_pending_ = max_pending_bytes;
    stopping_ = false;
    running_ = true;
    thread_ = std::thread([this] { run(); });
  }

  // Writes what is queued, then ends the thread.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!running_) return;
      stopping_ = true;
    }
    work_cv_.notify_one();
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
  }

  // Queues b's bytes and leaves b empty (with a spare buffer's room). False when not running:
  // the caller writes b itself. When max_pending bytes wait already, waits for room (nothing is
  // dropped and the order stays; the loop pays, as it would writing itself).
  bool hand_over(LineBuf& b) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!running_ || stopping_) return false;
    room_cv_.wait(lock, [&] { return pending_ == 0 || pending_ + b.size <= max_pending_; });
    pending_ += b.size;
    queue_.push_back(std::move(b));
    b = LineBuf{};
    if (!spare_.empty()) {
      b = std::move(spare_.back());
      spare_.pop_back();
    }
    lock.unlock();
    work_cv_.notify_one();
    b.size = 0;
    b.ensure(kBatchCapacity);
    return true;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything is written
      std::vector<LineBuf> work;
      work.swap(queue_);
      lock.unlock();
      size_t bytes = 0;
      for (LineBuf& b : work) {
        write_all(b.data.get(), b.size);
        bytes += b.size;
        b.size = 0;
      }
      lock.lock();
      pending_ -= bytes;
      for (LineBuf& b : work) {
        if (spare_.size() < kSpares) spare_.push_back(std::move(b));
      }
      room_cv_.notify_all();
    }
  }

  static constexpr size_t kSpares = 8;
  std::mutex mu_;
  std::condition_variable work_cv_, room_cv_;
  std::vector<LineBuf> queue_, spare_;
  size_t pending_ = 0;  // bytes handed over and not yet written
  size_t max_pending_ = 0;
  bool running_ = false, stopping_ = false;
  std::thread thread_;
};

BackgroundWriter g_writer;

// Where the calling thread builds its next line: the batch, or a scratch line written at once.
LineBuf& line_target() {
  return t_batch.on ? t_batch.buf : t_batch.scratch;
}

// Hands over a line just completed (newline included) in line_target().
void line_done() {
  ThreadBatch& b = t_batch;
  if (!b.on) {
    write_all(b.scratch.data.get(), b.scratch.size);
    b.scratch.size = 0;
  } else if (b.buf.size >= kBatchFlushBytes) {
    flush_this_thread();
  }
}

}  // namespace

void write_line(std::string_view line) {
  LineBuf& out = line_target();
  out.append(line);
  out.append("\n");
  line_done();
}

LineWriter::LineWriter() : out_(line_target()) {
  out_.append("{");
}

char* LineWriter::key(char* p, std::string_view k) {
  if (!first_) *p++ = ',';
  first_ = false;
  *p++ = '"';
  std::memcpy(p, k.data(), k.size());
  p += k.size();
  *p++ = '"';
  *p++ = ':';
  return p;
}

void LineWriter::field(std::string_view k, std::string_view value) {
  out_.ensure(k.size() + 6 * value.size() + 8);
  char* p = key(out_.tail(), k);
  *p++ = '"';
  p = escape_into(p, value);
  *p++ = '"';
  out_.set_tail(p);
}

void LineWriter::plain_field(std::string_view k, std::string_view value) {
  out_.ensure(k.size() + value.size() + 8);
  char* p = key(out_.tail(), k);
  *p++ = '"';
  std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '"';
  out_.set_tail(p);
}

void LineWriter::constant_fields(std::string_view json) {
  out_.ensure(json.size() + 1);
  char* p = out_.tail();
  if (!first_) *p++ = ',';
  first_ = false;
  std::memcpy(p, json.data(), json.size());
  out_.set_tail(p + json.size());
}

void LineWriter::field(std::string_view k, int64_t value) {
  out_.ensure(k.size() + 32);
  char* p = key(out_.tail(), k);
  p = std::to_chars(p, p + 24, value).ptr;
  out_.set_tail(p);
}

void LineWriter::millis(std::string_view k, uint64_t ns) {
  out_.ensure(k.size() + 40);
  char* p = key(out_.tail(), k);
  const uint64_t us = (ns + 500) / 1000;
  p = std::to_chars(p, p + 24, us / 1000).ptr;
  const auto frac = static_cast<unsigned>(us % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  out_.set_tail(p);
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
  if (on) t_batch.buf.ensure(kBatchCapacity);
}

void flush_this_thread() {
  LineBuf& b = t_batch.buf;
  if (b.size == 0) return;
  if (g_writer.hand_over(b)) return;
  write_all(b.data.get(), b.size);
  b.size = 0;
}

void start_writer(size_t max_pending_bytes) {
  g_writer.start(max_pending_bytes);
}

void stop_writer() {
  g_writer.stop();
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
