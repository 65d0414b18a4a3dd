// The HTTP/1.1 server: one libuv loop per worker thread, each with its own SO_REUSEPORT
// listener, its connections and its application state (Postgres pool...). Shared state lives
// outside, sharded or atomic. See docs/ARCHITECTURE.md.
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/executor.hpp"
#include "common/metrics_text.hpp"
#include "config/config.hpp"
#include "http/connection_limits.hpp"
#include "http/exchange.hpp"
#include "http/message.hpp"

namespace zonegate::http {

class Connection;

// Application state a worker owns (its Postgres pool, ...). Created on the worker's thread.
class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  // The worker is exiting: close every libuv handle so the loop can end.
  virtual void shutdown() = 0;
};

using ContextFactory = std::function<std::unique_ptr<WorkerContext>(Worker&)>;
// Called once per completed response (access log, metrics), on the worker's thread. done_ns is
// when the response was queued (uv_hrtime()): read once per write, for every response it carries.
using ResponseObserver =
    std::function<void(const Worker&, const Exchange&, uint64_t bytes, uint64_t done_ns)>;

class Server;

// Why the server closed a connection on its own (counted for /metrics).
enum class CloseReason { kWriteTimeout, kHeaderTimeout, kBodyTimeout, kCount };

class Worker : public Executor {
 public:
  Worker(Server& server, int index, int listen_fd, int admin_fd);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uv_loop_t* loop() { return &loop_; }
  int index() const { return index_; }
  const config::ServerConfig& cfg() const;
  // The cached Date header value, refreshed once per second.
  const std::string& date_header();
  std::string next_request_id();
  char* read_buffer() { return read_buffer_.data(); }
  // Where a connection serializes its responses before writing them (one at a time: the loop
  // thread runs one flush to its write before any other).
  std::string& output_scratch() { return output_scratch_; }
  size_t read_buffer_size() const { return read_buffer_.size(); }
  bool draining() const { return draining_; }
  WorkerContext* context() { return context_.get(); }
  template <typename T>
  T& context_as() {
    return *static_cast<T*>(context_.get());
  }
  size_t connection_count() const { return connection_count_; }

  // Runs `task` on this worker's loop thread, soon. Callable from any thread; false (and the
  // task dropped) once the worker is shutting down.
  bool post(std::function<void()> task) override;

  // Internal: used by Connection.
  void dispatch(const ExchangePtr& ex);
  bool observing() const;  // whether a ResponseObserver is set
  void observe(const Exchange& ex, uint64_t bytes, uint64_t done_ns);  // when observing()
  void add_connection(Connection* c);
  void remove_connection(Connection* c);
  // The admission caps of the listener a connection came in on.
  ConnectionLimits& limits(bool admin);
  void count_close(CloseReason why);

 private:
  friend class Server;
  void init();
  void run();
  static void on_connection(uv_stream_t* listener, int status);
  static void on_command(uv_async_t* async);
  static void on_janitor(uv_timer_t* timer);
  static void on_prepare(uv_prepare_t* prepare);
  static void on_log_timer(uv_timer_t* timer);
  void begin_drain();
  void force_close();
  void maybe_finish();
  void send_command(int cmd);

  Server& server_;
  int index_;
  int listen_fd_;
  int admin_fd_;  // -1 but on the worker that owns the admin listener
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_tcp_t admin_listener_{};
  bool admin_open_ = false;
  uv_async_t command_{};
  uv_timer_t janitor_{};
  uv_prepare_t log_flush_{};  // log.access_log_flush 0: batched log lines before the loop waits
  uv_timer_t log_timer_{};    // otherwise: batched log lines every log::flush_interval_ms()
  uv_thread_t thread_{};
  bool listener_open_ = false;
  bool draining_ = false;
  bool finished_ = false;  // guarded by command_mutex_ once threads run
  bool started_ = false;
  std::mutex command_mutex_;
  std::atomic<int> commands_{0};
  std::vector<std::function<void()>> tasks_;  // guarded by command_mutex_
  Connection* connections_ = nullptr;         // intrusive list head
  size_t connection_count_ = 0;
  std::vector<char> read_buffer_;
  std::unique_ptr<WorkerContext> context_;
  std::string date_;
  std::string output_scratch_;
  int64_t date_second_ = -1;
  uint64_t request_seq_ = 0;
  std::string id_prefix_;
};

class Server : public metrics::Source {
 public:
  // `exempt`: client addresses without a per-address connection cap (trusted load balancers).
  Server(config::ServerConfig cfg, Handler handler, std::vector<net::Cidr> exempt = {});
  ~Server() override;

  // Also listen on the admin address (before bind()): one socket, served by worker 0, whose
  // requests carry Request::admin; its connections have their own cap.
  void set_admin_listener(const config::AdminConfig& admin);

  // Binds one SO_REUSEPORT socket per worker, after checking that no other process listens on
  // the port. False with a message on failure.
  bool bind(std::string& error);
  // The port actually bound (useful with port 0); admin_port() is 0 without an admin listener.
  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  int worker_count() const { return static_cast<int>(workers_.size()); }
  void set_context_factory(ContextFactory f) { context_factory_ = std::move(f); }
  void set_observer(ResponseObserver o) { observer_ = std::move(o); }
  // Called on a worker's thread when it has exited its loop.
  void set_on_worker_exit(std::function<void()> f) { on_worker_exit_ = std::move(f); }

  void start();
  // Stop accepting, finish in-flight requests, close idle connections. Thread-safe.
  void drain();
  // Close every connection now. Thread-safe.
  void force_close();
  void join();
  int workers_running() const { return running_.load(); }

  const config::ServerConfig& cfg() const { return cfg_; }
  const ConnectionLimits& limits() const { return limits_; }
  // zonegate_connections_refused_total and zonegate_connections_closed_total.
  void describe_metrics(metrics::Text& out) const override;

 private:
  friend class Worker;
  // Binds a listening socket to host:port (SO_REUSEPORT when reuse_port); -1 with `error` set.
  // `section` names the config section in messages ("server", "admin").
  static int listen_socket(const char* section, const std::string& host, int port, bool reuse_port,
                           std::string& error, int& bound_port);
  static bool port_is_free(const sockaddr_storage& addr, socklen_t addr_len, std::string& error,
                           const std::string& where);
  config::ServerConfig cfg_;
  Handler handler_;
  bool admin_enabled_ = false;
  std::string admin_host_;
  int admin_port_wanted_ = 0;
  int admin_port_ = 0;
  ConnectionLimits limits_;
  std::unique_ptr<ConnectionLimits> admin_limits_;
  std::array<std::atomic<int64_t>, static_cast<size_t>(CloseReason::kCount)> closed_{};
  ContextFactory context_factory_;
  ResponseObserver observer_;
  std::function<void()> on_worker_exit_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> running_{0};
  int port_ = 0;
};

inline bool Worker::observing() const {
  return static_cast<bool>(server_.observer_);
}

}  // namespace zonegate::http
