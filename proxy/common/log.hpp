// Structured JSON logging: one line per event. Lines reach the file in whole-line writes under
// one mutex, so lines from worker threads never interleave. Reopened on SIGHUP for log rotation.
//
// Event-loop threads batch: after batch_this_thread(true), what they log collects in a
// thread-local buffer and goes out in one write(2) when the thread calls flush_this_thread() or
// when the buffer passes 64 KiB (written by the writer thread once start_writer() ran). A worker
// flushes every flush_interval_ms() from a timer (log.access_log_flush, 100 ms by default), or,
// with an interval of 0, from a uv_prepare handle before its loop waits for I/O. One write(2) per
// request cost the cache-hit path about a fifth of its throughput; batching with a flush interval
// is what nginx's `access_log ... buffer= flush=` does.
//
// Access-log lines are formatted off the event loop: a batching thread stores each request's
// fields as a compact record (write_access), and the writer thread turns the records into JSON
// lines as it writes them, as Quill and NanoLog do. Formatting a line on the loop was the larger
// part of the access log's cost on a cache hit (docs/BENCHMARKS.md, section 9).
//
// Implemented by log.cpp (levels, configure, write), log_output.cpp (the fd, reopen),
// log_writer.cpp (batches, the writer thread) and access_log.cpp (write_access, unix_ms_at).
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
// The threshold alone (a reload's log.level).
void set_level(Level level);
// Reopens the log file (after rotation); no-op for stderr.
void reopen();
bool enabled(Level level);
void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
// Writes an already formatted JSON object as one line.
void write_line(std::string_view line);

// One request of the access log. The strings are copied by write_access(); request_id, client,
// method, route and cache must need no JSON escaping (the proxy makes or checks them), path and
// user are escaped. Empty cache and user are left out of the line.
struct AccessRecord {
  int64_t unix_ms = 0;  // when the response was done ("ts")
  int64_t worker = 0;
  int64_t status = 0;
  uint64_t bytes = 0;
  uint64_t latency_ns = 0;
  uint64_t upstream_ns = 0;
  std::string_view request_id, client, method, path, route, cache, user;
};
// Logs one access line at level info (the caller checks enabled(kInfo)): on a batching thread
// the record is stored as is and formatted when the batch is written, else formatted and
// written at once. Either way the line is the same:
// {"ts":..,"level":"info","msg":"access","request_id":..,"worker":..,"client":..,"method":..,
//  "path":..,"route":..,"status":..,"bytes":..,"latency_ms":..,"upstream_ms":..[,"cache":..]
//  [,"user":..]}
void write_access(const AccessRecord& r);
// Unix time in ms of a monotonic reading (uv_hrtime()), for "ts" without a second clock read
// per request: the calling thread reads the wall clock once a second and keeps the difference
// (the two clocks drift apart by well under a millisecond in a second).
int64_t unix_ms_at(uint64_t monotonic_ns);

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
