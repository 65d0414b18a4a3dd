// The JSON line logger: batched lines wait for the flush, lines of concurrent batching threads
// never interleave, reopen() after a rename starts a new file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/json.hpp"
#include "common/log.hpp"

namespace log = zonegate::log;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

class LogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zonegate-log-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/proxy.log";
    std::string err;
    ASSERT_TRUE(log::configure(log::Level::kInfo, path_, &err)) << err;
  }
  void TearDown() override {
    std::string err;
    log::configure(log::Level::kInfo, "-", &err);
    std::remove(path_.c_str());
    std::remove((path_ + ".1").c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

// Lines {"t":T,"i":I,"pad":"pp.."} (I % pad_mod pad bytes) from `threads` batching threads, each
// flushing every `flush_every` lines.
void write_from_threads(int threads, int lines, int flush_every, int pad_mod) {
  std::vector<std::thread> all;
  all.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    all.emplace_back([=] {
      log::batch_this_thread(true);
      for (int i = 0; i < lines; ++i) {
        log::write_line("{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) +
                        ",\"pad\":\"" + std::string(static_cast<size_t>(i % pad_mod), 'p') + "\"}");
        if (i % flush_every == 0) log::flush_this_thread();
      }
      log::batch_this_thread(false);
    });
  }
  for (auto& th : all)
    th.join();
}

// All threads * lines lines are there, each whole, each thread's in order.
void expect_whole_and_in_order(const std::string& text, int threads, int lines, int pad_mod) {
  std::map<int, int> next;  // thread -> next expected i
  auto got = lines_of(text);
  ASSERT_EQ(got.size(), static_cast<size_t>(threads * lines));
  for (const std::string& l : got) {
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(l.c_str(), "{\"t\":%d,\"i\":%d,", &t, &i), 2) << l;
    ASSERT_EQ(l.size(), l.find("\"pad\":\"") + 7 + static_cast<size_t>(i % pad_mod) + 2) << l;
    ASSERT_EQ(next[t], i) << "thread " << t << " out of order";
    next[t] = i + 1;
  }
}

}  // namespace

TEST_F(LogFile, UnbatchedLinesAreWrittenAtOnce) {
  log::write_line(R"({"n":1})");
  log::info("hello", {{"k", "v"}});
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"n":1})");
  EXPECT_NE(lines[1].find(R"("msg":"hello","k":"v")"), std::string::npos) << lines[1];
}

TEST_F(LogFile, BatchedLinesWaitForTheFlush) {
  log::batch_this_thread(true);
  log::write_line(R"({"n":1})");
  log::write_line(R"({"n":2})");
  EXPECT_EQ(read_file(path_), "");
  log::flush_this_thread();
  EXPECT_EQ(read_file(path_), "{\"n\":1}\n{\"n\":2}\n");
  log::write_line(R"({"n":3})");
  log::batch_this_thread(false);  // turning batching off flushes
  EXPECT_EQ(lines_of(read_file(path_)).size(), 3u);
  log::write_line(R"({"n":4})");  // and later lines go out at once
  EXPECT_EQ(lines_of(read_file(path_)).size(), 4u);
}

TEST_F(LogFile, BigBatchesFlushThemselves) {
  log::batch_this_thread(true);
  const std::string line = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
  for (int i = 0; i < 100; ++i)
    log::write_line(line);
  // 64 KiB is the flush threshold: 100 lines of ~1 KB passed it once.
  size_t written = lines_of(read_file(path_)).size();
  EXPECT_GE(written, 60u);
  EXPECT_LT(written, 100u);
  log::batch_this_thread(false);
  EXPECT_EQ(lines_of(read_file(path_)).size(), 100u);
}

TEST_F(LogFile, ConcurrentBatchingThreadsNeverInterleave) {
  write_from_threads(4, 20000, 97, 300);
  expect_whole_and_in_order(read_file(path_), 4, 20000, 300);
}

TEST_F(LogFile, ReopenAfterRotationStartsANewFile) {
  log::write_line(R"({"before":true})");
  ASSERT_EQ(std::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  log::write_line(R"({"still_old":true})");  // the old inode until reopen
  log::reopen();
  log::write_line(R"({"after":true})");
  EXPECT_EQ(read_file(path_ + ".1"), "{\"before\":true}\n{\"still_old\":true}\n");
  EXPECT_EQ(read_file(path_), "{\"after\":true}\n");
}

TEST(Iso8601, PerThreadFormatMatchesTheClock) {
  for (int i = 0; i < 3; ++i) {
    auto day_now = [] {
      std::time_t t = std::time(nullptr);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char day[16];
      std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
      return std::string(day);
    };
    std::string day_before = day_now();
    std::string a = zonegate::json::iso8601_now_ms();
    std::string_view v = zonegate::json::iso8601_now_ms_view();
    std::string day_after = day_now();
    ASSERT_EQ(v.size(), 24u);
    // YYYY-MM-DDTHH:MM:SS.mmmZ
    for (size_t k : {4u, 7u})
      EXPECT_EQ(v[k], '-') << v;
    EXPECT_EQ(v[10], 'T');
    EXPECT_EQ(v[19], '.');
    EXPECT_EQ(v[23], 'Z');
    EXPECT_TRUE(v.substr(0, 10) == day_before || v.substr(0, 10) == day_after) << v;
    EXPECT_LE(a.substr(0, 19), std::string(v.substr(0, 19)));  // the clock never goes back
    usleep(400 * 1000);  // crosses a second boundary at least once
  }
}

// Escaped strings and the numbers' formats parse back to what was logged; a batched line waits
// for the flush.
TEST_F(LogFile, AccessLineEscapesAndParsesBack) {
  const std::string nasty = std::string("q\"uote back\\slash \n\r\t ctl\x01\x1f end ") + "\xc3\xa9";
  log::AccessRecord r;
  r.path = nasty;
  r.user = nasty;
  r.status = -42;
  r.latency_ns = 1'234'567;  // 1.234567 ms -> 1.235
  r.upstream_ns = 0;
  log::write_access(r);
  log::batch_this_thread(true);
  r.path = "abc";
  log::write_access(r);
  EXPECT_EQ(lines_of(read_file(path_)).size(), 1u);  // the batched one waits
  log::batch_this_thread(false);
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), 2u);
  rapidjson::Document d;
  std::string err;
  ASSERT_TRUE(zonegate::json::parse(lines[0], d, err)) << err << ": " << lines[0];
  EXPECT_EQ(std::string(d["path"].GetString(), d["path"].GetStringLength()), nasty);
  EXPECT_EQ(std::string(d["user"].GetString(), d["user"].GetStringLength()), nasty);
  EXPECT_EQ(d["status"].GetInt64(), -42);
  EXPECT_DOUBLE_EQ(d["latency_ms"].GetDouble(), 1.235);
  EXPECT_DOUBLE_EQ(d["upstream_ms"].GetDouble(), 0.0);
  EXPECT_NE(lines[0].find("\"latency_ms\":1.235,"), std::string::npos) << lines[0];
  ASSERT_TRUE(zonegate::json::parse(lines[1], d, err)) << err << ": " << lines[1];
  EXPECT_EQ(std::string(d["path"].GetString()), "abc");
}

// The 8-byte scan must find every character JSON escapes wherever it sits in a block (first,
// last, several, none) and at every length around the block size: random strings of ASCII
// (all 128 values, control characters included) parse back to themselves.
TEST_F(LogFile, AccessLineEscapesEveryPositionAndLength) {
  uint32_t state = 7;  // xorshift32: <random> would drag in ::log, which this file's alias shadows
  auto rng = [&state] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  };
  std::vector<std::string> values;
  for (size_t len = 0; len <= 40; ++len) {
    for (int round = 0; round < 25; ++round) {
      std::string v(len, 'a');
      for (char& c : v) {
        // Mostly plain text, with a fair share of the three kinds of escaped characters.
        switch (rng() % 8) {
          case 0:
            c = static_cast<char>(rng() % 0x20);
            break;
          case 1:
            c = '"';
            break;
          case 2:
            c = '\\';
            break;
          default:
            c = static_cast<char>(0x20 + rng() % 0x60);
            break;
        }
      }
      values.push_back(v);
    }
    // Plain text (copied whole), and one character to escape at each position: the last block
    // overlaps the one before it, and a hit in either must send the string to the escaper.
    const std::string plain(len, 'p');
    values.push_back(plain);
    for (size_t at = 0; at < len; ++at) {
      for (char special : {'"', '\\', '\x01'}) {
        std::string v = plain;
        v[at] = special;
        values.push_back(v);
      }
    }
  }
  auto write_values = [&values] {
    for (const std::string& v : values) {
      log::AccessRecord r;
      r.path = v;
      r.user = v;
      log::write_access(r);
    }
  };
  write_values();  // formatted at once
  const std::string direct = read_file(path_);
  // Stored in a batch (every string length through the record's copy) and formatted at the flush.
  ASSERT_EQ(truncate(path_.c_str(), 0), 0);
  log::batch_this_thread(true);
  write_values();
  log::batch_this_thread(false);
  EXPECT_EQ(read_file(path_), direct);
  auto lines = lines_of(direct);
  ASSERT_EQ(lines.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    rapidjson::Document d;
    std::string err;
    ASSERT_TRUE(zonegate::json::parse(lines[i], d, err)) << err << ": " << lines[i];
    ASSERT_EQ(std::string(d["path"].GetString(), d["path"].GetStringLength()), values[i])
        << lines[i];
    if (!values[i].empty()) {
      ASSERT_EQ(std::string(d["user"].GetString(), d["user"].GetStringLength()), values[i])
          << lines[i];
    }
  }
}

// With the writer thread, flushing hands batches over; every line arrives, each thread's in
// order, also when the queue is full and flushing threads must wait for room.
class WriterThread : public LogFile, public ::testing::WithParamInterface<size_t> {};

TEST_P(WriterThread, WritesEveryBatchInOrder) {
  log::start_writer(GetParam());
  write_from_threads(3, 20000, 89, 200);
  log::stop_writer();  // writes what is still queued
  expect_whole_and_in_order(read_file(path_), 3, 20000, 200);
  // Stopped: a flush writes at once again.
  log::batch_this_thread(true);
  log::write_line(R"({"after":1})");
  log::flush_this_thread();
  log::batch_this_thread(false);
  EXPECT_EQ(lines_of(read_file(path_)).back(), R"({"after":1})");
}

// 16 MiB (the proxy's default) and 1 byte (every hand-over waits for an empty queue).
INSTANTIATE_TEST_SUITE_P(QueueLimits, WriterThread, ::testing::Values(size_t{16} << 20, size_t{1}));

namespace {

// Records with every kind of value: escaped path and user, empty cache and user, big numbers,
// latencies below a microsecond and above a second, a time before the epoch.
std::vector<log::AccessRecord> sample_records(std::vector<std::string>& keep) {
  keep = {"/v1/users/a\"b\\c\n\x01/context?x=\xc3\xa9", "sub \"quoted\"\t", ""};
  std::vector<log::AccessRecord> out;
  for (int i = 0; i < 50; ++i) {
    log::AccessRecord r;
    r.unix_ms = i == 7 ? -1 : 1'767'323'045'678 + int64_t{i} * 999;  // 2026-01-02T03:04:05.678Z + i
    r.worker = i % 3;
    r.status = i % 5 == 0 ? 404 : 200;
    r.bytes = i == 3 ? UINT64_C(1) << 40 : 2796u + static_cast<uint64_t>(i);
    r.latency_ns = i == 4 ? 2'500'000'499u : 999u * static_cast<uint64_t>(i);
    r.upstream_ns = i % 2 == 0 ? 0u : 1'234'567u;
    r.request_id = i % 2 == 0 ? "zg-1a2b-17" : "client.id:9_x-";
    r.client = "127.0.0.1:54321";
    r.method = i % 4 == 0 ? "POST" : "GET";
    r.path = keep[static_cast<size_t>(i) % 2];
    r.route = "user_context";
    r.cache = i % 3 == 0 ? "" : "hit";
    r.user = i % 4 == 1 ? std::string_view(keep[1]) : i % 4 == 2 ? "42" : "";
    out.push_back(r);
  }
  return out;
}

}  // namespace

// The one line format, field by field.
TEST_F(LogFile, AccessLineFormat) {
  log::AccessRecord r;
  r.unix_ms = 1'767'323'045'678;
  r.worker = 1;
  r.status = 200;
  r.bytes = 2796;
  r.latency_ns = 51'499;
  r.upstream_ns = 0;
  r.request_id = "zg-1-2";
  r.client = "127.0.0.1:4000";
  r.method = "GET";
  r.path = "/v1/me/context";
  r.route = "me_context";
  r.cache = "hit";
  r.user = "u\"1";
  log::write_access(r);
  r.cache = "";
  r.user = "";
  log::write_access(r);
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), 2u);
  const std::string common =
      R"({"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"access","request_id":"zg-1-2",)"
      R"("worker":1,"client":"127.0.0.1:4000","method":"GET","path":"/v1/me/context",)"
      R"("route":"me_context","status":200,"bytes":2796,"latency_ms":0.051,"upstream_ms":0.000)";
  EXPECT_EQ(lines[0], common + R"(,"cache":"hit","user":"u\"1"})");
  EXPECT_EQ(lines[1], common + "}");
}

// A record stored in a batch (written by this thread or by the writer thread) becomes the same
// line as one written at once, and text lines logged between records keep their place.
TEST_F(LogFile, StoredAccessRecordsBecomeTheSameLines) {
  std::vector<std::string> keep;
  const std::vector<log::AccessRecord> records = sample_records(keep);
  auto write_all_records = [&] {
    for (size_t i = 0; i < records.size(); ++i) {
      log::write_access(records[i]);
      if (i % 10 == 9) log::write_line("{\"text\":" + std::to_string(i) + "}");
    }
  };
  write_all_records();  // not batching: formatted at once
  const std::string direct = read_file(path_);
  ASSERT_EQ(lines_of(direct).size(), records.size() + records.size() / 10);

  for (bool writer : {false, true}) {
    std::string err;
    ASSERT_TRUE(log::configure(log::Level::kInfo, path_, &err)) << err;
    ASSERT_EQ(truncate(path_.c_str(), 0), 0);
    if (writer) log::start_writer();
    log::batch_this_thread(true);
    write_all_records();
    EXPECT_EQ(read_file(path_), "") << "batched records wait for the flush";
    log::batch_this_thread(false);
    if (writer) log::stop_writer();
    EXPECT_EQ(read_file(path_), direct) << (writer ? "writer thread" : "own thread");
  }

  auto lines = lines_of(direct);
  rapidjson::Document d;
  std::string err;
  ASSERT_TRUE(zonegate::json::parse(lines[0], d, err)) << err << ": " << lines[0];
  EXPECT_EQ(std::string(d["path"].GetString(), d["path"].GetStringLength()), keep[0]);
  EXPECT_FALSE(d.HasMember("cache"));
  EXPECT_FALSE(d.HasMember("user"));
  ASSERT_TRUE(zonegate::json::parse(lines[1], d, err)) << err << ": " << lines[1];
  EXPECT_EQ(std::string(d["user"].GetString()), keep[1]);
  EXPECT_EQ(std::string(d["cache"].GetString()), "hit");
  ASSERT_TRUE(zonegate::json::parse(lines[3], d, err)) << err << ": " << lines[3];
  EXPECT_EQ(d["bytes"].GetUint64(), UINT64_C(1) << 40);
  ASSERT_TRUE(zonegate::json::parse(lines[4], d, err)) << err << ": " << lines[4];
  EXPECT_DOUBLE_EQ(d["latency_ms"].GetDouble(), 2500.0);
  ASSERT_TRUE(zonegate::json::parse(lines[7], d, err)) << err << ": " << lines[7];
  EXPECT_EQ(std::string(d["ts"].GetString()), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(lines[10], R"({"text":9})");
}

// Many threads logging records through the writer thread, flushing at odd moments and filling
// batches past the 64 KiB threshold: every line arrives whole and each thread's in order.
TEST_F(LogFile, AccessRecordsFromManyThreadsThroughTheWriter) {
  log::start_writer(size_t{1} << 20);
  std::vector<std::thread> all;
  const int kThreads = 3, kLines = 20000;
  all.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    all.emplace_back([t] {
      log::batch_this_thread(true);
      std::string id, path;
      for (int i = 0; i < kLines; ++i) {
        id = "t" + std::to_string(t) + "-" + std::to_string(i);
        path = "/p/" + std::string(static_cast<size_t>(i % 300), 'x');
        log::AccessRecord r;
        r.worker = t;
        r.status = i;
        r.request_id = id;
        r.path = path;
        log::write_access(r);
        if (i % 113 == 0) log::flush_this_thread();
      }
      log::batch_this_thread(false);
    });
  }
  for (auto& th : all)
    th.join();
  log::stop_writer();
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  std::map<int64_t, int64_t> next;
  for (const std::string& l : lines) {
    rapidjson::Document d;
    std::string err;
    ASSERT_TRUE(zonegate::json::parse(l, d, err)) << err << ": " << l;
    const int64_t t = d["worker"].GetInt64(), i = d["status"].GetInt64();
    ASSERT_EQ(next[t], i) << "thread " << t << " out of order";
    ASSERT_EQ(std::string(d["request_id"].GetString()),
              "t" + std::to_string(t) + "-" + std::to_string(i));
    ASSERT_EQ(d["path"].GetStringLength(), 3u + static_cast<size_t>(i % 300));
    next[t] = i + 1;
  }
}

TEST(Iso8601, FormatsGivenTimes) {
  EXPECT_EQ(zonegate::json::iso8601_ms_view(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(zonegate::json::iso8601_ms_view(1'767'323'045'678), "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(zonegate::json::iso8601_ms_view(1'767'323'045'999), "2026-01-02T03:04:05.999Z");
  EXPECT_EQ(zonegate::json::iso8601_ms_view(1'767'323'046'000), "2026-01-02T03:04:06.000Z");
  EXPECT_EQ(zonegate::json::iso8601_ms_view(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(zonegate::json::iso8601_ms_view(-1000), "1969-12-31T23:59:59.000Z");
}

// "ts" from a monotonic reading agrees with the wall clock, also across the once-a-second
// resynchronisation.
TEST(UnixMsAt, AgreesWithTheWallClock) {
  for (int i = 0; i < 6; ++i) {
    timespec mono{};
    const int64_t before = zonegate::json::now_unix_ms();
    clock_gettime(CLOCK_MONOTONIC, &mono);
    const int64_t got = log::unix_ms_at(static_cast<uint64_t>(mono.tv_sec) * 1'000'000'000u +
                                        static_cast<uint64_t>(mono.tv_nsec));
    const int64_t after = zonegate::json::now_unix_ms();
    EXPECT_GE(got, before - 1);
    EXPECT_LE(got, after + 1);
    usleep(300 * 1000);
  }
}

// A log file's written data leaves the page cache once it is on disk: after 17 MiB of lines the
// first 4 MiB are no longer resident, the last lines still are (mincore). Also after the file
// was truncated under the logger (logrotate's copytruncate). On tmpfs the cache is the storage,
// so there is nothing to check.
TEST_F(LogFile, WrittenChunksLeaveThePageCache) {
  struct statfs fs {};
  ASSERT_EQ(statfs(dir_.c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) {
    GTEST_SKIP() << dir_ << " is on tmpfs";
  }
  const std::string line = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      ASSERT_EQ(truncate(path_.c_str(), 0), 0);
    }
    log::batch_this_thread(true);
    for (int i = 0; i < 17 * 1024; ++i)
      log::write_line(line);
    log::batch_this_thread(false);

    const int fd = open(path_.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(fstat(fd, &st), 0);
    const auto size = static_cast<size_t>(st.st_size);
    ASSERT_GT(size, size_t{16} << 20);
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(map, MAP_FAILED);
    const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> resident((size + page - 1) / page);
    ASSERT_EQ(mincore(map, size, resident.data()), 0);
    munmap(map, size);
    close(fd);
    size_t head = 0;
    for (size_t i = 0; i < (size_t{4} << 20) / page; ++i)
      head += resident[i] & 1;
    EXPECT_EQ(head, 0u) << "round " << round << ": pages of the first 4 MiB still cached";
    EXPECT_EQ(resident.back() & 1, 1) << "the last page was just written: it must be cached";
  }
}
