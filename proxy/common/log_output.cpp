// Where log lines go: the destination's fd (stderr, stdout or a file opened for append), whole
// writes under one mutex, reopen() after rotation (SIGHUP), and the page-cache drop behind the
// writes to a file. See log.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "common/errno_text.hpp"
#include "common/log.hpp"
#include "common/log_internal.hpp"

namespace zonegate::log {

namespace {

std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_reopen_mutex;  // guards g_path and fd swaps, never the write path
std::mutex g_write_mutex;   // one writer at a time: a batch bigger than PIPE_BUF stays whole
std::string g_path;

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

// stdout and stderr belong to the process: never closed here.
bool is_standard(int fd) {
  return fd == STDOUT_FILENO || fd == STDERR_FILENO;
}

int open_log(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0 && error) *error = "cannot open log file " + path + ": " + errno_text(errno);
  return fd;
}

}  // namespace

namespace detail {

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

bool set_destination(const std::string& path, std::string* error) {
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
  return true;
}

}  // namespace detail

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

}  // namespace zonegate::log
