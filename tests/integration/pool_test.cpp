// The proxy's Postgres pool against a real server: batchable jobs of one loop turn share a Sync
// (one transaction), a failed job does not fail the rest of its batch, and a job sent on its own
// never joins a batch's transaction. Run by test_pool.py with ZONEGATE_TEST_CONNINFO set.
#include <gtest/gtest.h>
#include <uv.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg/pool.hpp"

namespace zonegate::pg {
namespace {

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* conninfo = std::getenv("ZONEGATE_TEST_CONNINFO");
    ASSERT_NE(conninfo, nullptr) << "ZONEGATE_TEST_CONNINFO is not set";
    cfg_.conninfo = conninfo;
    cfg_.pool.min = 1;
    cfg_.pool.max = 1;  // every job on one connection, so the batches are predictable
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    pool_ = std::make_unique<Pool>(&loop_, cfg_);
    pool_->start();
    ASSERT_TRUE(run_until([this] { return pool_->has_ready(); })) << "no connection";
  }

  void TearDown() override {
    pool_->shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    pool_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs the loop until `done` holds or 10 s pass.
  template <typename Pred>
  bool run_until(Pred done) {
    uint64_t deadline = uv_hrtime() + 10'000'000'000ULL;
    while (!done()) {
      if (uv_hrtime() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }

  // Submits a job of one statement; its result lands in results_[index].
  size_t submit(const std::string& sql, std::vector<std::optional<std::string>> params,
                bool batchable) {
    size_t index = results_.size();
    results_.emplace_back();
    Job job;
    job.statements.push_back(make_statement(sql, std::move(params)));
    job.share_sync = batchable;
    job.done = [this, index](Result r) { results_[index] = std::move(r); };
    pool_->submit(std::move(job));
    return index;
  }

  bool all_done() const {
    for (const auto& r : results_) {
      if (!r) return false;
    }
    return true;
  }

  // Column `col` of the single row of job `i`.
  std::string value(size_t i, size_t col) const {
    const Result& r = *results_[i];
    EXPECT_TRUE(r.ok()) << r.sqlstate << " " << r.message;
    if (r.rows.size() != 1 || r.rows[0].size() <= col || !r.rows[0][col]) return "<none>";
    return *r.rows[0][col];
  }

  uv_loop_t loop_{};
  config::DatabaseConfig cfg_;
  std::unique_ptr<Pool> pool_;
  std::vector<std::optional<Result>> results_;
};

// The transaction id tells which jobs shared a transaction.
const char* kRead = "SELECT $1::int, pg_catalog.txid_current()::text";

TEST_F(PoolTest, BatchableJobsOfOneTurnShareOneTransaction) {
  for (int i = 0; i < 5; ++i)
    submit(kRead, {std::to_string(i)}, true);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(value(i, 0), std::to_string(i));
    EXPECT_EQ(value(i, 1), value(0, 1)) << "job " << i << " ran in another transaction";
  }
  // The next turn's jobs are a new batch.
  size_t later = submit(kRead, {"7"}, true);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(value(later, 0), "7");
  EXPECT_NE(value(later, 1), value(0, 1));
}

TEST_F(PoolTest, AFailedJobDoesNotFailTheRestOfItsBatch) {
  size_t before = submit(kRead, {"1"}, true);
  size_t failing = submit("SELECT 1 / $1::int", {"0"}, true);
  // A statement not prepared yet: its Prepare is skipped too, and must be redone.
  size_t after = submit("SELECT $1::int * 10, pg_catalog.txid_current()::text", {"3"}, true);
  size_t last = submit(kRead, {"4"}, true);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(value(before, 0), "1");
  const Result& f = *results_[failing];
  EXPECT_EQ(f.failure, Failure::kSql);
  EXPECT_EQ(f.sqlstate, "22012");
  EXPECT_EQ(f.message, "division by zero");
  EXPECT_EQ(value(after, 0), "30");
  EXPECT_EQ(value(last, 0), "4");
  // The skipped jobs ran again, each in a transaction of its own.
  EXPECT_NE(value(after, 1), value(before, 1));
  EXPECT_NE(value(last, 1), value(before, 1));
  EXPECT_NE(value(last, 1), value(after, 1));
}

TEST_F(PoolTest, AJobOnItsOwnNeverJoinsABatchTransaction) {
  submit("CREATE TABLE IF NOT EXISTS pool_test (x int)", {}, false);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  const char* kWrite =
      "INSERT INTO pool_test VALUES ($1::int) RETURNING x, pg_catalog.txid_current()::text";
  size_t read = submit(kRead, {"1"}, true);
  size_t own = submit(kWrite, {"41"}, false);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(value(own, 0), "41");
  EXPECT_NE(value(own, 1), value(read, 1)) << "the write joined the batch's transaction";
  size_t before = submit(kRead, {"1"}, true);
  size_t failing = submit("SELECT 1 / $1::int", {"0"}, true);
  size_t write = submit(kWrite, {"42"}, false);
  size_t last = submit(kRead, {"5"}, true);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(results_[failing]->sqlstate, "22012");
  EXPECT_EQ(value(write, 0), "42");
  EXPECT_NE(value(write, 1), value(before, 1));
  EXPECT_EQ(value(last, 0), "5");
  size_t count = submit("SELECT count(*) FROM pool_test WHERE x = $1::int", {"42"}, false);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(value(count, 0), "1") << "the write was rolled back with the failed batch";
  submit("DROP TABLE pool_test", {}, false);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
}

TEST_F(PoolTest, BatchedJobsFailCleanlyWhenTheirBackendDies) {
  size_t pid = submit("SELECT pg_catalog.pg_backend_pid()", {}, false);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  std::string backend = value(pid, 0);
  // Another connection ends this pool's backend while a batch is in flight.
  PGconn* admin = PQconnectdb(cfg_.conninfo.c_str());
  ASSERT_EQ(PQstatus(admin), CONNECTION_OK) << PQerrorMessage(admin);
  // Far longer than the test, so the termination below lands while the batch is in flight on
  // any machine (0.5 s could run out first on a slow one); the termination ends it at once.
  size_t a = submit("SELECT pg_catalog.pg_sleep(60), $1::int", {"1"}, true);
  size_t b = submit(kRead, {"2"}, true);
  uv_run(&loop_, UV_RUN_NOWAIT);  // the batch goes out
  const char* params[] = {backend.c_str()};
  PGresult* r = PQexecParams(admin, "SELECT pg_catalog.pg_terminate_backend($1::int)", 1, nullptr,
                             params, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(admin);
  PQclear(r);
  PQfinish(admin);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  // The running job may get the server's own farewell (57P01); the job behind it gets 08006.
  EXPECT_FALSE(results_[a]->ok());
  EXPECT_TRUE(results_[a]->sqlstate == "57P01" || results_[a]->sqlstate == "08006")
      << results_[a]->sqlstate;
  EXPECT_FALSE(results_[b]->ok());
  EXPECT_EQ(results_[b]->sqlstate, "08006") << results_[b]->message;
  // The pool reconnects and serves a new batch.
  ASSERT_TRUE(run_until([this] { return pool_->has_ready(); }));
  size_t again = submit(kRead, {"9"}, true);
  ASSERT_TRUE(run_until([this] { return all_done(); }));
  EXPECT_EQ(value(again, 0), "9");
}

}  // namespace
}  // namespace zonegate::pg
