// JSON line logger; see log.hpp.
#include "common/log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
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
  LineBuf buf;      // entries (below) waiting for the flush
  LineBuf scratch;  // a line written at once when not batching
  LineBuf text;     // buf's entries as text, when this thread writes them itself
};
thread_local ThreadBatch t_batch;

// A batch is a sequence of entries, each a tag byte and then
//   kTextEntry:   a uint32_t length and that many bytes of text (whole lines);
//   kAccessEntry: a PackedAccess, then its strings' bytes one after another.
// Entries are copied in and out with memcpy: nothing in a batch is aligned.
constexpr char kTextEntry = 'T';
constexpr char kAccessEntry = 'A';
constexpr size_t kTextHeader = 1 + sizeof(uint32_t);

struct PackedAccess {
  int64_t unix_ms, worker, status;
  uint64_t bytes, latency_ns, upstream_ns;
  uint32_t len[7];  // request_id, client, method, path, route, cache, user
};

void render_batch(const LineBuf& in, LineBuf& out);

// Whether any of the 8 bytes in w is below 0x20, '"' or '\\' (the characters JSON escapes).
// Exact as an existence test (hasless/haszero of "Bit Twiddling Hacks"; the borrows they can
// cause only misplace which byte, never invent or hide one).
inline bool needs_escape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t ctl = (w - kOnes * 0x20) & ~w & kHigh;
  const uint64_t q = w ^ (kOnes * '"'), b = w ^ (kOnes * '\\');
  return (ctl | ((q - kOnes) & ~q & kHigh) | ((b - kOnes) & ~b & kHigh)) != 0;
}

// Copies n bytes to p and returns p + n. Up to 32 bytes take at most two loads and two stores
// of a fixed size (overlapping when n is not a power of two) instead of a call to memcpy: an
// access record's strings are mostly that short, and a memcpy call per string was a third of
// storing a record on the event loop.
inline char* put_bytes(char* p, const char* s, size_t n) {
  if (n >= 8) {
    if (n > 32) {
      std::memcpy(p, s, n);
    } else if (n > 16) {
      char a[16], b[16];
      std::memcpy(a, s, 16);
      std::memcpy(b, s + n - 16, 16);
      std::memcpy(p, a, 16);
      std::memcpy(p + n - 16, b, 16);
    } else {
      uint64_t a, b;
      std::memcpy(&a, s, 8);
      std::memcpy(&b, s + n - 8, 8);
      std::memcpy(p, &a, 8);
      std::memcpy(p + n - 8, &b, 8);
    }
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(p, &a, 4);
    std::memcpy(p + n - 4, &b, 4);
  } else if (n > 0) {
    p[0] = s[0];
    p[n / 2] = s[n / 2];
    p[n - 1] = s[n - 1];
  }
  return p + n;
}

// Whether any byte of s is one JSON escapes: whole 8-byte blocks, the last one overlapping the
// one before (bytes checked twice change nothing), so no byte-by-byte tail for n >= 8.
inline bool needs_escaping(const char* s, size_t n) {
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
  }
  uint64_t w;
  for (size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&w, s + i, 8);
    if (needs_escape(w)) return true;
  }
  std::memcpy(&w, s + n - 8, 8);
  return needs_escape(w);
}

// Writes s escaped as the inside of a JSON string at p (room for 6 bytes per input byte must be
// there); returns the new end. Plain 8-byte blocks are copied whole.
char* escape_into(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* in = s.data();
  const size_t n = s.size();
  if (!needs_escaping(in, n)) return put_bytes(p, in, n);  // nearly every path and user
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

// Keeps a log file's written data out of the page cache: every kDropChunk bytes, starts the
// writeback of the chunk just written and drops the one before it from the cache once it is on
// disk (sync_file_range, then POSIX_FADV_DONTNEED: the streaming-write pattern). The proxy never
// reads its log back, and without this the file's pages pile up in the cache, evicting what
// Postgres and the OS cache for better use; each write also lands on fresh pages. On this
// project's test VM a fresh page costs a fault into the hypervisor (freed memory is handed back
// to the host): writing 64 KiB blocks took 2.4x the CPU without the drop (docs/BENCHMARKS.md,
// section 9). Regular files only; pipes, terminals and /dev/null are left alone.
class CacheDropper {
 public:
  // The log fd changed (configure, reopen): the next write starts over.
  void reset() { fd_ = -1; }
  // After a write to fd of the bytes [begin, end) of the file.
  void wrote(int fd, off_t begin, off_t end) {
    if (fd != fd_) {
      struct stat st {};
      fd_ = fd;
      regular_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
      start_ = begin;
      prev_ = -1;
    } else if (begin < start_) {  // the file was truncated under us (logrotate copytruncate)
      start_ = begin;
      prev_ = -1;
    }
    if (!regular_ || end - start_ < kDropChunk) return;
    sync_file_range(fd, start_, end - start_, SYNC_FILE_RANGE_WRITE);
    if (prev_ >= 0) {
      sync_file_range(
          fd, prev_, start_ - prev_,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      posix_fadvise(fd, prev_, start_ - prev_, POSIX_FADV_DONTNEED);
    }
    prev_ = start_;
    start_ = end;
  }

 private:
  static constexpr off_t kDropChunk = 4 << 20;
  int fd_ = -1;
  bool regular_ = false;
  off_t start_ = 0;  // where the chunk being written began
  off_t prev_ = -1;  // the chunk before it, whose writeback was started
};

CacheDropper g_dropper;  // guarded by g_write_mutex

// Writes all of [p, p+len) to the current log fd; a failed write drops the rest (logging must
// never stop the proxy).
void write_all(const char* p, size_t left) {
  std::lock_guard<std::mutex> lock(g_write_mutex);
  int fd = g_fd.load(std::memory_order_acquire);
  const size_t total = left;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // O_APPEND: the offset is the end of what was just written.
  const off_t end = lseek(fd, 0, SEEK_CUR);
  if (end >= 0) g_dropper.wrote(fd, end - static_cast<off_t>(total), end);
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
  g_dropper.reset();
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
  g_dropper.reset();
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
    pthread_setname_np(pthread_self(), "zg-log-writer");
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything is written
      std::vector<LineBuf> work;
      work.swap(queue_);
      lock.unlock();
      size_t bytes = 0;
      for (LineBuf& b : work) {
        text_.size = 0;
        render_batch(b, text_);
        write_all(text_.data.get(), text_.size);
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
  LineBuf text_;  // the batch being written, as text (only the writer thread touches it)
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

// Starts a text entry at out's end; returns where it starts, for end_text_entry().
size_t begin_text_entry(LineBuf& out) {
  const size_t at = out.size;
  out.ensure(kTextHeader);
  out.data[at] = kTextEntry;
  out.size += kTextHeader;
  return at;
}

// Writes the length of the text entry that starts at `at` (it ends at out's end).
void end_text_entry(LineBuf& out, size_t at) {
  const auto n = static_cast<uint32_t>(out.size - at - kTextHeader);
  std::memcpy(out.data.get() + at + 1, &n, sizeof n);
}

// Hands over an entry just completed in line_target(): the scratch line (one text entry) is
// written at once, a batch flushed when it is full.
void line_done() {
  ThreadBatch& b = t_batch;
  if (!b.on) {
    write_all(b.scratch.data.get() + kTextHeader, b.scratch.size - kTextHeader);
    b.scratch.size = 0;
  } else if (b.buf.size >= kBatchFlushBytes) {
    flush_this_thread();
  }
}

}  // namespace

void write_line(std::string_view line) {
  LineBuf& out = line_target();
  const size_t at = begin_text_entry(out);
  out.append(line);
  out.append("\n");
  end_text_entry(out, at);
  line_done();
}

namespace {

// Copies a string literal; its length is a constant, so the copy compiles to a few moves.
template <size_t N>
inline char* put(char* p, const char (&s)[N]) {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

inline char* put(char* p, std::string_view s) {
  return put_bytes(p, s.data(), s.size());
}

inline char* put_int(char* p, int64_t v) {
  return std::to_chars(p, p + 24, v).ptr;
}

// Nanoseconds as milliseconds with three decimals (0.125), rounded to the microsecond.
char* put_millis(char* p, uint64_t ns) {
  const uint64_t us = (ns + 500) / 1000;
  p = std::to_chars(p, p + 24, us / 1000).ptr;
  const auto frac = static_cast<unsigned>(us % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  return p;
}

// The access line of r, appended to out: the one format of write_access(), built with one
// size check and straight stores (a line took 1 µs built with std::string appends, 0.37 µs
// field by field). Hand-written rather than RapidJSON's Writer, which escapes character by
// character; only path and user are escaped, the other strings are the proxy's own.
void render_access(LineBuf& out, const AccessRecord& r) {
  // 24 for the time, 20 digits per number, 6 bytes per escaped input byte, and the literals.
  out.ensure(384 + r.request_id.size() + r.client.size() + r.method.size() + r.route.size() +
             r.cache.size() + 6 * (r.path.size() + r.user.size()));
  char* p = out.tail();
  p = put(p, "{\"ts\":\"");
  p = put(p, json::iso8601_ms_view(r.unix_ms));
  p = put(p, "\",\"level\":\"info\",\"msg\":\"access\",\"request_id\":\"");
  p = put(p, r.request_id);
  p = put(p, "\",\"worker\":");
  p = put_int(p, r.worker);
  p = put(p, ",\"client\":\"");
  p = put(p, r.client);
  p = put(p, "\",\"method\":\"");
  p = put(p, r.method);
  p = put(p, "\",\"path\":\"");
  p = escape_into(p, r.path);
  p = put(p, "\",\"route\":\"");
  p = put(p, r.route);
  p = put(p, "\",\"status\":");
  p = put_int(p, r.status);
  p = put(p, ",\"bytes\":");
  p = put_int(p, static_cast<int64_t>(r.bytes));
  p = put(p, ",\"latency_ms\":");
  p = put_millis(p, r.latency_ns);
  p = put(p, ",\"upstream_ms\":");
  p = put_millis(p, r.upstream_ns);
  if (!r.cache.empty()) {
    p = put(p, ",\"cache\":\"");
    p = put(p, r.cache);
    *p++ = '"';
  }
  if (!r.user.empty()) {
    p = put(p, ",\"user\":\"");
    p = escape_into(p, r.user);
    *p++ = '"';
  }
  p = put(p, "}\n");
  out.set_tail(p);
}

// Appends r to a batch as an access entry: a header and the strings' bytes, no formatting.
void pack_access(LineBuf& out, const AccessRecord& r) {
  const std::string_view strings[7] = {r.request_id, r.client, r.method, r.path,
                                       r.route,      r.cache,  r.user};
  PackedAccess h{r.unix_ms, r.worker, r.status, r.bytes, r.latency_ns, r.upstream_ns, {}};
  size_t total = 1 + sizeof h;
  for (int i = 0; i < 7; ++i) {
    h.len[i] = static_cast<uint32_t>(strings[i].size());
    total += strings[i].size();
  }
  out.ensure(total);
  char* p = out.tail();
  *p++ = kAccessEntry;
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  for (const std::string_view& v : strings)
    p = put_bytes(p, v.data(), v.size());  // copies nothing for an empty view (data() may be null)
  out.set_tail(p);
}

// Appends the text of a batch's entries to out.
void render_batch(const LineBuf& in, LineBuf& out) {
  const char* p = in.data.get();
  const char* const end = p + in.size;
  while (p < end) {
    const char tag = *p++;
    if (tag == kTextEntry) {
      uint32_t n;
      std::memcpy(&n, p, sizeof n);
      p += sizeof n;
      out.append(std::string_view(p, n));
      p += n;
      continue;
    }
    PackedAccess h;
    std::memcpy(&h, p, sizeof h);
    p += sizeof h;
    std::string_view s[7];
    for (int i = 0; i < 7; ++i) {
      s[i] = std::string_view(p, h.len[i]);
      p += h.len[i];
    }
    AccessRecord r;
    r.unix_ms = h.unix_ms;
    r.worker = h.worker;
    r.status = h.status;
    r.bytes = h.bytes;
    r.latency_ns = h.latency_ns;
    r.upstream_ns = h.upstream_ns;
    r.request_id = s[0];
    r.client = s[1];
    r.method = s[2];
    r.path = s[3];
    r.route = s[4];
    r.cache = s[5];
    r.user = s[6];
    render_access(out, r);
  }
}

}  // namespace

int64_t unix_ms_at(uint64_t monotonic_ns) {
  thread_local uint64_t next_sync_ns = 0;
  thread_local int64_t offset_ns = 0;  // wall clock minus monotonic clock
  if (monotonic_ns >= next_sync_ns) {
    timespec wall{}, mono{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    offset_ns =
        (static_cast<int64_t>(wall.tv_sec) - static_cast<int64_t>(mono.tv_sec)) * 1'000'000'000 +
        (wall.tv_nsec - mono.tv_nsec);
    next_sync_ns = monotonic_ns + 1'000'000'000;
  }
  const int64_t ns = static_cast<int64_t>(monotonic_ns) + offset_ns;
  return ns >= 0 ? ns / 1'000'000 : -((-ns + 999'999) / 1'000'000);
}

void write_access(const AccessRecord& r) {
  ThreadBatch& b = t_batch;
  if (b.on) {
    pack_access(b.buf, r);
    if (b.buf.size >= kBatchFlushBytes) flush_this_thread();
    return;
  }
  b.scratch.size = 0;
  render_access(b.scratch, r);
  write_all(b.scratch.data.get(), b.scratch.size);
  b.scratch.size = 0;
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
  LineBuf& text = t_batch.text;
  text.size = 0;
  render_batch(b, text);
  write_all(text.data.get(), text.size);
  text.size = 0;
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
