// Structured JSON logging: one line per event. Lines reach the file in whole-line writes under
// one mutex, so lines from worker threads never interleave. Reopened on SIGHUP for log rotation.
//
// Event-loop threads batch: after batch_this_thread(true), lines written on that thread collect
// in a thread-local buffer and go out in one write(2) when the thread calls flush_this_thread()
// or when the buffer passes 64 KiB (written by the writer thread once start_writer() ran). A worker
// flushes every flush_interval_ms() from a timer (log.access_log_flush, 100 ms by default), or,
// with an interval of 0, from a uv_prepare handle before its loop waits for I/O. One write(2) per
// request cost the cache-hit path about a fifth of its throughput; batching with a flush interval
// is what nginx's `access_log ... buffer= flush=` does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace zonegate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn", "error"; returns false for anything else.
bool parse_level(std::string_view s, Level& out);

struct Field {
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};

// Sets the threshold and the destination ("", "-" or "stderr" = stderr, "stdout" = stdout,
// anything else a file appended to). Returns false with a message if
// the file cannot be opened; the previous destination stays in place.
bool configure(Level level, const std::string& path, std::string* error);
// Reopens the log file (after rotation); no-op for stderr.
void reopen();
bool enabled(Level level);
void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
// Writes an already formatted JSON object as one line (access log).
void write_line(std::string_view line);
struct LineBuf;  // a thread's batch or scratch line (log.cpp)

// One JSON object built straight into the calling thread's batch buffer (or a per-thread scratch
// line when not batching): the access log's hot path. Hand-written rather than RapidJSON's
// Writer because that one escapes character by character and needs its own buffer and a copy.
// Here each field reserves the room it can need once and is copied with raw stores; strings are
// scanned for characters to escape 8 bytes at a time; nothing is allocated per line. (Built on
// std::string appends, a line cost about 1 µs, 7% of a cache hit; see docs/BENCHMARKS.md.)
// Keys must be plain (they are literals); values are escaped as JSON requires.
class LineWriter {
 public:
  LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;
  void field(std::string_view key, std::string_view value);
  // A value the proxy made itself and knows needs no escaping (route names, methods llhttp
  // accepted, formatted addresses, validated request ids): copied without the escape scan.
  void plain_field(std::string_view key, std::string_view value);
  // Constant fields given as JSON text without braces, e.g. "level":"info","msg":"access".
  void constant_fields(std::string_view json);
  void field(std::string_view key, int64_t value);
  // Nanoseconds as milliseconds with three decimals ("latency_ms": 0.125).
  void millis(std::string_view key, uint64_t ns);
  // Closes the object and hands the line over like write_line().
  void commit();

 private:
  char* key(char* p, std::string_view k);
  LineBuf& out_;
  bool first_ = true;
};

// How long an event-loop thread may hold its batched lines (log.access_log_flush); 0: write them
// once per loop iteration. Set before the workers start.
void set_flush_interval_ms(int64_t ms);
int64_t flush_interval_ms();
// Turns batching on or off for the calling thread; turning it off flushes.
void batch_this_thread(bool on);
// Writes the calling thread's batched lines, if any (hands them to the writer thread when it runs).
void flush_this_thread();
// Starts a thread that writes the batches flush_this_thread() hands over, so event-loop threads
// never wait on write(2); at most max_pending_bytes wait (then a flushing thread waits for room).
void start_writer(size_t max_pending_bytes = 16u << 20);
// Writes every batch handed over, then ends the writer thread (lines flushed later are written
// by their own thread again).
void stop_writer();

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kDebug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kInfo, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kWarn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kError, m, f);
}

}  // namespace zonegate::log
