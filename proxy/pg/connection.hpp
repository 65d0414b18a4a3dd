// One libpq connection in non-blocking pipeline mode, driven by a uv_poll on its socket. Jobs
// are sent as soon as they arrive (many may be in flight); results are matched to jobs in order.
// Jobs that may share a Sync are queued without a Sync until the owner calls sync() (once per loop
// turn), so the jobs of one turn cost one write to the server, one implicit transaction and one
// write back.
#pragma once

#include <libpq-fe.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_set>

#include "config/config.hpp"
#include "pg/job.hpp"

namespace zonegate::pg {

class Connection {
 public:
  enum class State { kConnecting, kReady, kClosing, kClosed };
  // Events for the owner (the pool), called on the loop thread.
  struct Events {
    std::function<void(Connection*)> on_ready;                           // connected and set up
    std::function<void(Connection*)> on_job_done;                        // capacity freed
    std::function<void(Connection*, const std::string& why)> on_broken;  // failed or lost
    std::function<void(Connection*)> on_closed;  // handles closed: safe to delete
    // LISTEN notifications (channel, payload), if the owner listens on this connection.
    std::function<void(const std::string&, const std::string&)> on_notify;
    // A batch was opened: the owner must call sync() before its loop next waits for events.
    std::function<void(Connection*)> on_batch_open;
    // Run once after the session setup and before the connection counts as ready; a failure is
    // only logged (e.g. the extension is not installed yet).
    std::vector<Statement> warmup;
  };

  // `name` is the fallback application_name (the conninfo's own application_name wins).
  Connection(uv_loop_t* loop, const config::DatabaseConfig& cfg, Events events,
             std::string name = "zonegate-proxy");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting; on_ready or on_broken follows.
  void start();
  // Sends a job now (state must be kReady); one that may share a Sync waits in the open batch for
  // sync().
  void send(Job job);
  // Closes the open batch, if any, with one Sync and writes it out.
  void sync();
  // Fails in-flight jobs with `failure`, closes the socket; on_closed follows.
  void close(Failure failure);
  // Fails the jobs past their deadline now (their callbacks get kDeadline) and cancels the
  // query of the one the server is running (PQcancel, off the loop), so the backend stops
  // working for nobody.
  void expire(uint64_t now_ns);

  State state() const { return state_; }
  size_t in_flight() const { return in_flight_; }
  uint64_t age_ms(uint64_t now_ms) const { return now_ms - created_ms_; }
  const std::string& last_error() const { return last_error_; }
  uint64_t syncs() const { return syncs_; }        // Syncs sent: one per batch or lone job
  uint64_t resent() const { return resent_; }      // batched jobs sent again after a batch failed
  uint64_t cancels() const { return cancels_; }    // cancel requests sent for expired jobs
  bool ever_ready() const { return ever_ready_; }  // false: this was a failed connect attempt

 private:
  // An entry of the pipeline, in the order the server answers: a job, or the Sync that closed a
  // batch (its jobs end with their own results; a job sent alone ends with its Sync).
  struct Pending {
    Job job;
    Result result;
    uint64_t sent_ns = 0;
    // One entry per expected result, in order: the statement name for a Prepare, null for an
    // Execute. A Prepare that fails or is skipped (aborted pipeline) is forgotten.
    std::vector<std::shared_ptr<const std::string>> items;
    size_t next = 0;
    size_t executed = 0;       // the Execute results seen: the statement the next one is for
    bool batched = false;      // ends when its items are answered, not at a Sync
    bool sync_marker = false;  // no job: the Sync closing a batch
    bool skipped = false;      // the server skipped it after an earlier job of its batch failed
    bool expired = false;      // answered kDeadline already; its results are read and dropped
    bool cancel_sent = false;  // a cancel request was sent while it ran
  };
  void cancel_running();
  static void on_poll(uv_poll_t* p, int status, int events);
  static void on_timer(uv_timer_t* t);
  void continue_connect();
  // Queues the job's Prepare/Execute messages; false (and the connection failed) on error.
  bool queue(Pending& p);
  // Handles one result for the front entry; ends it when complete.
  void take_result(PGresult* r);
  void on_connected();
  void become_ready();
  void read_results();
  // Hands out the results libpq already holds, without reading the socket.
  void process_results();
  void flush();
  void fail(const std::string& why);
  void watch(int events);
  void finish_job();
  // Appends a Sync for the open batch to libpq's buffer (sync() also writes it out).
  bool close_batch();

  uv_loop_t* loop_;
  const config::DatabaseConfig& cfg_;
  Events events_;
  std::string name_;
  PGconn* conn_ = nullptr;
  uv_poll_t* poll_ = nullptr;  // heap: the socket can change during connect
  int poll_fd_ = -1;
  int poll_events_ = 0;
  uv_timer_t* timer_ = nullptr;  // connect timeout
  State state_ = State::kConnecting;
  bool processing_ = false;  // inside process_results(): a nested flush leaves the rest to it
  std::deque<Pending> jobs_;
  size_t in_flight_ = 0;     // jobs in jobs_ (sync markers excluded)
  bool batch_open_ = false;  // batched jobs were queued after the last Sync
  uint64_t syncs_ = 0;
  uint64_t resent_ = 0;
  uint64_t cancels_ = 0;
  uint64_t last_cancel_ms_ = 0;
  bool ever_ready_ = false;
  std::unordered_set<std::string> prepared_;
  uint64_t created_ms_ = 0;
  std::string last_error_;
  int handles_open_ = 0;
};

}  // namespace zonegate::pg
