// A pipelined libpq connection on a uv loop; see connection.hpp.
#include "pg/connection.hpp"

#include <cstring>

#include "common/log.hpp"

namespace zonegate::pg {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string trim_message(const char* msg) {
  std::string s = msg != nullptr ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

std::string field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v != nullptr ? v : "";
}

// A job's result when its connection closes before the job ends.
Result lost_result(Failure failure) {
  Result r;
  r.failure = failure;
  r.sqlstate = failure == Failure::kShutdown ? "57P01" : "08006";
  r.message = failure == Failure::kShutdown ? "the proxy is shutting down"
                                            : "connection to the database lost";
  return r;
}

}  // namespace

Statement make_statement(const std::string& sql, std::vector<std::optional<std::string>> params) {
  char name[32];
  std::snprintf(name, sizeof name, "zg_%016llx", static_cast<unsigned long long>(fnv1a(sql)));
  return Statement{std::make_shared<const std::string>(name),
                   std::make_shared<const std::string>(sql), std::move(params)};
}

Connection::Connection(uv_loop_t* loop, const config::DatabaseConfig& cfg, Events events,
                       std::string name)
    : loop_(loop), cfg_(cfg), events_(std::move(events)), name_(std::move(name)) {}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void Connection::start() {
  created_ms_ = uv_now(loop_);
  // fallback_application_name: an application_name in the user's conninfo wins. So do its
  // keepalive settings: ours come first, and libpq keeps the last value of a repeated key.
  // They make a dead peer on TCP visible in ~25 s instead of the kernel's two hours.
  const char* keys[] = {"keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        "fallback_application_name",
                        nullptr};
  const char* vals[] = {"10", "5", "3", "20000", cfg_.conninfo.c_str(), name_.c_str(), nullptr};
  conn_ = PQconnectStartParams(keys, vals, 1);
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  ++handles_open_;
  if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
    fail(conn_ ? trim_message(PQerrorMessage(conn_)) : "out of memory");
    return;
  }
  uv_timer_start(timer_, on_timer, static_cast<uint64_t>(cfg_.pool.connect_timeout_ms), 0);
  watch(UV_WRITABLE);
}

void Connection::on_timer(uv_timer_t* t) {
  auto* c = static_cast<Connection*>(t->data);
  if (c->state_ == State::kConnecting) c->fail("timed out connecting (pool.connect_timeout)");
}

void Connection::watch(int events) {
  int fd = PQsocket(conn_);
  if (fd < 0) {
    fail("connection has no socket");
    return;
  }
  if (poll_ != nullptr && fd != poll_fd_) {
    // libpq moved to another socket (next host or address): a new handle for it.
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) {
      auto* c = static_cast<Connection*>(h->data);
      delete reinterpret_cast<uv_poll_t*>(h);
      if (--c->handles_open_ == 0 && c->state_ == State::kClosing) {
        c->state_ = State::kClosed;
        auto closed = c->events_.on_closed;  // a copy: the owner may delete c inside it
        closed(c);
      }
    });
    poll_ = nullptr;
  }
  if (poll_ == nullptr) {
    poll_ = new uv_poll_t;
    if (uv_poll_init(loop_, poll_, fd) != 0) {
      delete poll_;
      poll_ = nullptr;
      fail("cannot watch the connection's socket");
      return;
    }
    poll_->data = this;
    poll_fd_ = fd;
    poll_events_ = 0;
    ++handles_open_;
  }
  if (events != poll_events_) {
    uv_poll_start(poll_, events, on_poll);
    poll_events_ = events;
  }
}

void Connection::on_poll(uv_poll_t* p, int status, int events) {
  auto* c = static_cast<Connection*>(p->data);
  if (c->state_ == State::kClosing || c->state_ == State::kClosed) return;
  if (status < 0) {
    c->fail(std::string("socket error: ") + uv_strerror(status));
    return;
  }
  if (c->state_ == State::kConnecting && PQstatus(c->conn_) != CONNECTION_OK) {
    c->continue_connect();
    return;
  }
  if (events & UV_WRITABLE) c->flush();
  if (c->state_ != State::kClosing && (events & UV_READABLE)) c->read_results();
}

void Connection::continue_connect() {
  switch (PQconnectPoll(conn_)) {
    case PGRES_POLLING_READING:
      watch(UV_READABLE);
      break;
    case PGRES_POLLING_WRITING:
      watch(UV_WRITABLE);
      break;
    case PGRES_POLLING_OK:
      on_connected();
      break;
    default:
      fail(trim_message(PQerrorMessage(conn_)));
      break;
  }
}

void Connection::on_connected() {
  if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1) {
    fail("cannot enter pipeline mode: " + trim_message(PQerrorMessage(conn_)));
    return;
  }
  // Session setup is the first job; the connection is ready when it completes.
  static const Statement setup =
      make_statement("SELECT pg_catalog.set_config('statement_timeout', $1, false)", {});
  Job job;
  job.statements.push_back(setup);
  job.statements.back().params = {std::to_string(cfg_.pool.statement_timeout_ms) + "ms"};
  job.done = [this](const Result& r) {
    if (!r.ok()) {
      fail("session setup failed: " + r.message);
      return;
    }
    if (events_.warmup.empty()) {
      become_ready();
      return;
    }
    Job warm;
    warm.statements = events_.warmup;
    warm.done = [this](Result w) {
      if (!w.ok()) log::debug("connection warm-up failed", {{"error", w.message}});
      become_ready();
    };
    send(std::move(warm));
  };
  send(std::move(job));  // still kConnecting: the pool sends nothing else until on_ready
}

void Connection::become_ready() {
  uv_timer_stop(timer_);
  state_ = State::kReady;
  ever_ready_ = true;
  events_.on_ready(this);
}

void Connection::send(Job job) {
  Pending p;
  p.sent_ns = uv_hrtime();
  p.result.queued_ns = job.enqueued_ns != 0 ? p.sent_ns - job.enqueued_ns : 0;
  p.batched = job.share_sync && state_ == State::kReady;
  p.job = std::move(job);
  // A job on its own must not join the open batch's transaction: that batch ends first.
  if (!p.batched && !close_batch()) {
    if (p.job.done) p.job.done(lost_result(Failure::kConnection));
    return;
  }
  jobs_.push_back(std::move(p));
  ++in_flight_;
  Pending& q = jobs_.back();
  if (!queue(q)) return;  // the connection failed, and this job with it
  if (q.batched) {
    if (!batch_open_) {
      batch_open_ = true;
      if (events_.on_batch_open) events_.on_batch_open(this);
    }
    return;
  }
  ++syncs_;
  if (PQpipelineSync(conn_) != 1) {
    fail("send failed: " + trim_message(PQerrorMessage(conn_)));
    return;
  }
  flush();
}

bool Connection::queue(Pending& p) {
  for (const Statement& st : p.job.statements) {
    if (prepared_.insert(*st.name).second) {
      if (PQsendPrepare(conn_, st.name->c_str(), st.sql->c_str(),
                        static_cast<int>(st.params.size()), nullptr) != 1) {
        prepared_.erase(*st.name);
        fail("send failed: " + trim_message(PQerrorMessage(conn_)));
        return false;
      }
      p.items.push_back(st.name);
    }
    std::vector<const char*> values;
    values.reserve(st.params.size());
    for (const auto& v : st.params)
      values.push_back(v ? v->c_str() : nullptr);
    if (PQsendQueryPrepared(conn_, st.name->c_str(), static_cast<int>(values.size()), values.data(),
                            nullptr, nullptr, 0) != 1) {
      fail("send failed: " + trim_message(PQerrorMessage(conn_)));
      return false;
    }
    p.items.push_back(nullptr);
  }
  return true;
}

bool Connection::close_batch() {
  if (!batch_open_) return true;
  batch_open_ = false;
  Pending marker;
  marker.sync_marker = true;
  jobs_.push_back(std::move(marker));
  ++syncs_;
  if (PQpipelineSync(conn_) != 1) {
    fail("send failed: " + trim_message(PQerrorMessage(conn_)));
    return false;
  }
  return true;
}

void Connection::sync() {
  if (state_ != State::kReady || !batch_open_) return;
  if (close_batch()) flush();
}

void Connection::flush() {
  int r = PQflush(conn_);
  if (r < 0) {
    fail("write failed: " + trim_message(PQerrorMessage(conn_)));
    return;
  }
  watch(r == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
  // When the socket would not take more, PQflush (like PQsendQuery*) reads what the server sent
  // meanwhile into libpq's buffer, so that neither side blocks. Those bytes no longer make the
  // socket readable: if the last results of this connection's pipeline arrived that way, no poll
  // event would ever hand them out, and their requests waited until the next query on this
  // connection (seconds under load, measured; forever when idle). So hand them out now.
  if (state_ == State::kReady && !processing_) process_results();
}

void Connection::read_results() {
  if (PQconsumeInput(conn_) != 1) {
    fail("connection lost: " + trim_message(PQerrorMessage(conn_)));
    return;
  }
  process_results();
}

void Connection::process_results() {
  struct Guard {
    bool& flag;
    bool was;
    explicit Guard(bool& f) : flag(f), was(f) { flag = true; }
    ~Guard() { flag = was; }
  } guard(processing_);
  while (PGnotify* n = PQnotifies(conn_)) {
    std::string channel = n->relname, payload = n->extra;
    PQfreemem(n);
    if (events_.on_notify) events_.on_notify(channel, payload);
    if (state_ == State::kClosing || state_ == State::kClosed) return;
  }
  int nulls = 0;
  while (state_ == State::kReady || state_ == State::kConnecting) {
    if (PQisBusy(conn_)) break;
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      // A separator after each query's result; two in a row means nothing more is ready.
      if (++nulls > 1) break;
      continue;
    }
    nulls = 0;
    take_result(r);
  }
}

void Connection::take_result(PGresult* r) {
  ExecStatusType st = PQresultStatus(r);
  if (jobs_.empty() || (jobs_.front().sync_marker && st != PGRES_PIPELINE_SYNC)) {
    PQclear(r);  // nothing waits for it (a batch's results all come before its Sync)
    return;
  }
  Pending& p = jobs_.front();
  if (st == PGRES_PIPELINE_SYNC) {
    PQclear(r);
    if (p.sync_marker) {
      jobs_.pop_front();
    } else {
      finish_job();
    }
    return;
  }
  Result& res = p.result;
  bool is_prepare = false;
  if (p.next < p.items.size()) {
    const auto& prepared_name = p.items[p.next++];
    if (prepared_name != nullptr) {
      if (st != PGRES_COMMAND_OK) prepared_.erase(*prepared_name);
      // A Prepare's own result carries no rows.
      is_prepare = st == PGRES_COMMAND_OK || st == PGRES_PIPELINE_ABORTED;
    }
  }
  if (!is_prepare) {
    const size_t statement = p.executed++;
    switch (st) {
      case PGRES_TUPLES_OK: {
        int nrows = PQntuples(r), ncols = PQnfields(r);
        auto& rows =
            p.job.result_statement != Job::kLastStatement && statement > p.job.result_statement
                ? res.trailing
                : res.rows;
        rows.assign(static_cast<size_t>(nrows), {});
        for (int i = 0; i < nrows; ++i) {
          auto& row = rows[static_cast<size_t>(i)];
          row.reserve(static_cast<size_t>(ncols));
          for (int j = 0; j < ncols; ++j) {
            if (PQgetisnull(r, i, j)) {
              row.emplace_back(std::nullopt);
            } else {
              row.emplace_back(
                  std::string(PQgetvalue(r, i, j), static_cast<size_t>(PQgetlength(r, i, j))));
            }
          }
        }
        break;
      }
      case PGRES_COMMAND_OK:
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_NONFATAL_ERROR:
        if (res.failure == Failure::kNone) {
          res.failure = Failure::kSql;
          res.sqlstate = field(r, PG_DIAG_SQLSTATE);
          res.message = field(r, PG_DIAG_MESSAGE_PRIMARY);
          res.detail = field(r, PG_DIAG_MESSAGE_DETAIL);
          res.hint = field(r, PG_DIAG_MESSAGE_HINT);
        }
        break;
      case PGRES_PIPELINE_ABORTED:
        // Skipped after an earlier error: of this job (it has failed), or of its batch.
        if (res.failure == Failure::kNone) p.skipped = true;
        break;
      default:
        if (res.failure == Failure::kNone) {
          res.failure = Failure::kSql;
          res.sqlstate = "XX000";
          res.message = std::string("unexpected result status ") + PQresStatus(st);
        }
        break;
    }
  }
  PQclear(r);
  if (p.batched && p.next >= p.items.size()) finish_job();
}

void Connection::finish_job() {
  Pending p = std::move(jobs_.front());
  jobs_.pop_front();
  --in_flight_;
  if (p.expired) {  // answered already: nothing to resend or report
    if (state_ == State::kReady && events_.on_job_done) events_.on_job_done(this);
    return;
  }
  if (p.skipped && p.result.failure == Failure::kNone) {
    // Another job of its batch failed, so the server skipped this one: it runs again in a
    // transaction of its own. Each round ends at least the failed job, so this terminates.
    p.job.share_sync = false;
    ++resent_;
    send(std::move(p.job));
    return;
  }
  p.result.sent = true;
  // A cancel sent for an expired job can land on the next one if the server had moved on.
  if (p.result.sqlstate == "57014" && !p.cancel_sent && last_cancel_ms_ != 0 &&
      uv_now(loop_) - last_cancel_ms_ < 2000) {
    p.result.interrupted = true;
  }
  p.result.upstream_ns = uv_hrtime() - p.sent_ns;
  if (p.job.done) p.job.done(std::move(p.result));
  if (state_ == State::kReady && events_.on_job_done) events_.on_job_done(this);
}

void Connection::expire(uint64_t now_ns) {
  if (state_ != State::kReady) return;
  // Callbacks run after the walk: one may submit work, which would append to jobs_.
  std::vector<std::pair<std::function<void(Result)>, Result>> expired;
  bool front = true;
  for (Pending& p : jobs_) {
    if (p.sync_marker) continue;
    if (!p.expired && p.job.deadline_ns != 0 && now_ns >= p.job.deadline_ns && p.job.done) {
      p.expired = true;
      Result r;
      r.failure = Failure::kDeadline;
      r.sqlstate = "57014";
      r.message = "the request's deadline passed while its query ran";
      r.sent = true;
      r.queued_ns = p.result.queued_ns;
      r.upstream_ns = now_ns - p.sent_ns;
      expired.emplace_back(std::move(p.job.done), std::move(r));
      p.job.done = nullptr;
    }
    // Only the first job is running: cancelling later ones would hit the wrong query.
    if (front && p.expired && !p.cancel_sent) {
      p.cancel_sent = true;
      cancel_running();
    }
    front = false;
  }
  for (auto& [done, r] : expired)
    done(std::move(r));
}

void Connection::cancel_running() {
  PGcancel* pc = PQgetCancel(conn_);
  if (pc == nullptr) return;
  ++cancels_;
  last_cancel_ms_ = uv_now(loop_);
  // PQcancel opens a connection of its own and blocks until the server took the request: it
  // runs on libuv's thread pool. The work item owns the PGcancel, not this connection.
  struct Work {
    uv_work_t req;
    PGcancel* cancel;
  };
  auto* w = new Work{{}, pc};
  w->req.data = w;
  int rc = uv_queue_work(
      loop_, &w->req,
      [](uv_work_t* r) {
        auto* work = static_cast<Work*>(r->data);
        char err[256];
        if (PQcancel(work->cancel, err, sizeof err) != 1) {
          log::warn("cancelling an expired query failed", {{"error", std::string(err)}});
        }
      },
      [](uv_work_t* r, int) {
        auto* work = static_cast<Work*>(r->data);
        PQfreeCancel(work->cancel);
        delete work;
      });
  if (rc != 0) {
    PQfreeCancel(pc);
    delete w;
  }
}

void Connection::fail(const std::string& why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  last_error_ = why;
  close(Failure::kConnection);
  if (events_.on_broken) events_.on_broken(this, why);
}

void Connection::close(Failure failure) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  state_ = State::kClosing;
  std::deque<Pending> jobs = std::move(jobs_);
  jobs_.clear();
  in_flight_ = 0;
  batch_open_ = false;
  for (Pending& p : jobs) {
    if (!p.job.done) continue;  // a batch's Sync
    Result lost = lost_result(failure);
    lost.queued_ns = p.result.queued_ns;
    lost.sent = true;
    if (p.result.failure == Failure::kSql) {  // keep the server's own error
      lost.sqlstate = p.result.sqlstate;
      lost.message = p.result.message;
      lost.detail = p.result.detail;
      lost.hint = p.result.hint;
    }
    p.job.done(std::move(lost));
  }
  auto on_close = [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    if (h == reinterpret_cast<uv_handle_t*>(c->timer_)) {
      delete c->timer_;
      c->timer_ = nullptr;
    } else {
      delete reinterpret_cast<uv_poll_t*>(h);
    }
    if (--c->handles_open_ == 0) {
      if (c->conn_ != nullptr) PQfinish(c->conn_);  // closes the socket after its poll handle
      c->conn_ = nullptr;
      c->state_ = State::kClosed;
      auto closed = c->events_.on_closed;  // a copy: the owner may delete c inside it
      closed(c);
    }
  };
  if (poll_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), on_close);
    poll_ = nullptr;
  }
  if (timer_ != nullptr) uv_close(reinterpret_cast<uv_handle_t*>(timer_), on_close);
  if (handles_open_ == 0) {
    state_ = State::kClosed;
    auto closed = events_.on_closed;
    closed(this);
  }
}

}  // namespace zonegate::pg
