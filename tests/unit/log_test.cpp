// The JSON line logger: batched lines wait for the flush, lines of concurrent batching threads
// never interleave, reopen() after a rename starts a new file.
#include <gtest/gtest.h>
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

TEST_F(LogFile, LineWriterConstantAndPlainFields) {
  for (bool constants_first : {true, false}) {
    log::LineWriter line;
    if (constants_first) line.constant_fields(R"("level":"info","msg":"access")");
    line.plain_field("route", "user_context");
    line.field("n", int64_t{7});
    if (!constants_first) line.constant_fields(R"("level":"info","msg":"access")");
    line.commit();
  }
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"level":"info","msg":"access","route":"user_context","n":7})");
  EXPECT_EQ(lines[1], R"({"route":"user_context","n":7,"level":"info","msg":"access"})");
}

TEST_F(LogFile, LineWriterEscapesAndParsesBack) {
  const std::string nasty = std::string("q\"uote back\\slash \n\r\t ctl\x01\x1f end ") + "\xc3\xa9";
  {
    log::LineWriter line;
    line.field("s", nasty);
    line.field("n", int64_t{-42});
    line.millis("ms", 1'234'567);  // 1.234567 ms -> 1.235
    line.millis("zero", 0);
    line.commit();
  }
  log::batch_this_thread(true);
  {
    log::LineWriter line;
    line.field("plain", "abc");
    line.commit();
  }
  EXPECT_EQ(lines_of(read_file(path_)).size(), 1u);  // the batched one waits
  log::batch_this_thread(false);
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), 2u);
  rapidjson::Document d;
  std::string err;
  ASSERT_TRUE(zonegate::json::parse(lines[0], d, err)) << err << ": " << lines[0];
  EXPECT_EQ(std::string(d["s"].GetString(), d["s"].GetStringLength()), nasty);
  EXPECT_EQ(d["n"].GetInt64(), -42);
  EXPECT_DOUBLE_EQ(d["ms"].GetDouble(), 1.235);
  EXPECT_DOUBLE_EQ(d["zero"].GetDouble(), 0.0);
  EXPECT_NE(lines[0].find("\"ms\":1.235,"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], R"({"plain":"abc"})");
}

// The 8-byte scan must find every character JSON escapes wherever it sits in a block (first,
// last, several, none) and at every length around the block size: random strings of ASCII
// (all 128 values, control characters included) parse back to themselves.
TEST_F(LogFile, LineWriterEscapesEveryPositionAndLength) {
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
  }
  for (const std::string& v : values) {
    log::LineWriter line;
    line.field("v", v);
    line.commit();
  }
  auto lines = lines_of(read_file(path_));
  ASSERT_EQ(lines.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    rapidjson::Document d;
    std::string err;
    ASSERT_TRUE(zonegate::json::parse(lines[i], d, err)) << err << ": " << lines[i];
    ASSERT_EQ(std::string(d["v"].GetString(), d["v"].GetStringLength()), values[i]) << lines[i];
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
