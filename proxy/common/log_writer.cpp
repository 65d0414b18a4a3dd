// Batching and the writer thread: a batching thread's lines collect in its thread-local batch,
// which flush_this_thread() hands to the writer thread (or writes itself when none runs); the
// writer renders each batch's entries to text and writes them in the order they were handed
// over. Also write_line() and the flush interval. See log.hpp.
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "common/log_internal.hpp"

namespace zonegate::log {

namespace detail {
thread_local ThreadBatch t_batch;
}  // namespace detail

namespace {

using detail::kBatchCapacity;
using detail::kBatchFlushBytes;
using detail::kTextEntry;
using detail::kTextHeader;
using detail::LineBuf;
using detail::t_batch;
using detail::ThreadBatch;
using detail::write_all;

std::atomic<int64_t> g_flush_interval_ms{100};

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
    p = detail::render_access_entry(p, out);
  }
}

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

}  // namespace zonegate::log
