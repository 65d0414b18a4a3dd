// What the logger's files share (log.cpp, log_output.cpp, log_writer.cpp, access_log.cpp): the
// byte buffer lines are built in, the format of a thread's batch, and the functions that cross
// from one file to another. Not for use outside common/log*.cpp and common/access_log.cpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/log.hpp"

namespace zonegate::log::detail {

constexpr size_t kBatchFlushBytes = size_t{64} * 1024;
constexpr size_t kBatchCapacity = kBatchFlushBytes + 4096;  // a batch's buffer: no regrowth

// A growable byte buffer written through raw pointers: a writer ensures the room it needs once,
// then stores bytes without per-append bookkeeping.
struct LineBuf {
  std::unique_ptr<char[]> data;
  size_t size = 0;
  size_t cap = 0;

  // Not const, though it could be: it hands out a pointer to write through.
  // NOLINTNEXTLINE(readability-make-member-function-const)
  char* tail() { return data.get() + size; }
  void set_tail(const char* p) { size = static_cast<size_t>(p - data.get()); }
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

struct ThreadBatch {
  bool on = false;
  LineBuf buf;      // entries (below) waiting for the flush
  LineBuf scratch;  // a line written at once when not batching
  LineBuf text;     // buf's entries as text, when this thread writes them itself
};
extern thread_local ThreadBatch t_batch;  // log_writer.cpp

// A batch is a sequence of entries, each a tag byte and then
//   kTextEntry:   a uint32_t length and that many bytes of text (whole lines);
//   kAccessEntry: a PackedAccess (access_log.cpp), then its strings' bytes one after another.
// Entries are copied in and out with memcpy: nothing in a batch is aligned.
constexpr char kTextEntry = 'T';
constexpr char kAccessEntry = 'A';
constexpr size_t kTextHeader = 1 + sizeof(uint32_t);

// log_output.cpp: writes all of [p, p+len) to the current log fd under the write mutex; a failed
// write drops the rest (logging must never stop the proxy).
void write_all(const char* p, size_t left);
// log_output.cpp: makes path the destination (see configure()); false with a message if the
// file cannot be opened, and the previous destination stays in place.
bool set_destination(const std::string& path, std::string* error);

// access_log.cpp: appends the access line of the access entry whose PackedAccess starts at p
// (just after its tag) to out; returns where the next entry starts.
const char* render_access_entry(const char* p, LineBuf& out);

}  // namespace zonegate::log::detail
