// Worker threads, listeners and graceful drain; see server.hpp.
#include "http/server.hpp"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

#include "common/errno_text.hpp"
#include "common/log.hpp"
#include "http/connection.hpp"

namespace zonegate::http {

namespace {

constexpr int kBacklog = 1024;
constexpr uint64_t kJanitorMs = 200;
constexpr int kCmdDrain = 1;
constexpr int kCmdForce = 2;

std::string random_hex(int n) {
  std::random_device rd;
  std::string s;
  static const char* digits = "0123456789abcdef";
  for (int i = 0; i < n; ++i)
    s.push_back(digits[rd() % 16]);
  return s;
}

}  // namespace

Worker::Worker(Server& server, int index, int listen_fd)
    : server_(server), index_(index), listen_fd_(listen_fd), read_buffer_(size_t{64} * 1024) {
  id_prefix_ = random_hex(8) + "-" + std::to_string(index) + "-";
}

Worker::~Worker() {
  if (listen_fd_ >= 0) ::close(listen_fd_);  // never handed to libuv
}

const config::ServerConfig& Worker::cfg() const {
  return server_.cfg_;
}

const std::string& Worker::date_header() {
  std::time_t now = std::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    date_ = buf;
  }
  return date_;
}

std::string Worker::next_request_id() {
  return id_prefix_ + std::to_string(++request_seq_);
}

void Worker::dispatch(const ExchangePtr& ex) {
  try {
    server_.handler_(ex);
  } catch (const std::exception& e) {
    log::error("handler failed", {{"request_id", ex->req.request_id}, {"error", e.what()}});
    if (!ex->responded()) ex->respond(error_response(500, "internal_error", "internal error"));
  }
}

void Worker::observe(const Exchange& ex, uint64_t bytes, uint64_t done_ns) {
  server_.observer_(*this, ex, bytes, done_ns);
}

void Worker::add_connection(Connection* c) {
  c->next = connections_;
  if (connections_ != nullptr) connections_->prev = c;
  connections_ = c;
  ++connection_count_;
}

void Worker::remove_connection(Connection* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (connections_ == c) connections_ = c->next;
  --connection_count_;
  maybe_finish();
}

void Worker::init() {
  // Runs on the main thread before the worker thread exists, so commands can be sent at once.
  uv_loop_init(&loop_);
  loop_.data = this;
  uv_async_init(&loop_, &command_, on_command);
  command_.data = this;
  uv_timer_init(&loop_, &janitor_);
  janitor_.data = this;
  uv_timer_start(&janitor_, on_janitor, kJanitorMs, kJanitorMs);
  uv_prepare_init(&loop_, &log_flush_);
  uv_timer_init(&loop_, &log_timer_);
  if (const int64_t every = log::flush_interval_ms(); every > 0) {
    const auto ms = static_cast<uint64_t>(every);
    uv_timer_start(&log_timer_, on_log_timer, ms, ms);
  } else {
    uv_prepare_start(&log_flush_, on_prepare);
  }
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  listener_open_ = true;
  int rc = uv_tcp_open(&listener_, listen_fd_);
  if (rc == 0) {
    listen_fd_ = -1;  // owned by the handle now
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kBacklog, on_connection);
  }
  if (rc != 0) log::error("listen failed", {{"worker", index_}, {"error", uv_strerror(rc)}});
}

void Worker::run() {
  // Named so that top -H and the benchmarks can tell the loops from the log writer.
  pthread_setname_np(pthread_self(), ("zg-worker-" + std::to_string(index_)).substr(0, 15).c_str());
  log::batch_this_thread(true);
  if (server_.context_factory_) context_ = server_.context_factory_(*this);
  uv_run(&loop_, UV_RUN_DEFAULT);
  context_.reset();
  uv_loop_close(&loop_);
  log::batch_this_thread(false);
}

void Worker::on_prepare(uv_prepare_t*) {
  log::flush_this_thread();
}

void Worker::on_log_timer(uv_timer_t*) {
  log::flush_this_thread();
}

void Worker::on_connection(uv_stream_t* listener, int status) {
  auto* w = static_cast<Worker*>(listener->data);
  if (status < 0) {
    log::warn("accept failed", {{"worker", w->index_}, {"error", uv_strerror(status)}});
    return;
  }
  auto* c = new Connection(*w);
  if (!c->accept(listener)) return;  // closed; freed in its close callback
  if (w->draining_ || w->connection_count_ > static_cast<size_t>(w->cfg().max_connections)) {
    c->close();
  }
}

bool Worker::post(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(command_mutex_);
  if (finished_) return false;
  tasks_.push_back(std::move(task));
  uv_async_send(&command_);
  return true;
}

void Worker::on_command(uv_async_t* async) {
  auto* w = static_cast<Worker*>(async->data);
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(w->command_mutex_);
    tasks.swap(w->tasks_);
  }
  for (auto& t : tasks)
    t();
  int cmds = w->commands_.exchange(0);
  if (cmds & kCmdDrain) w->begin_drain();
  if (cmds & kCmdForce) w->force_close();
}

void Worker::on_janitor(uv_timer_t* timer) {
  auto* w = static_cast<Worker*>(timer->data);
  uint64_t now = uv_now(&w->loop_);
  for (Connection* c = w->connections_; c != nullptr;) {
    Connection* next = c->next;  // check_timeouts may close c (freed later, in its callback)
    c->check_timeouts(now);
    c = next;
  }
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  if (listener_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listener_open_ = false;
  }
  for (Connection* c = connections_; c != nullptr; c = c->next)
    c->drain();
  maybe_finish();
}

void Worker::force_close() {
  begin_drain();
  for (Connection* c = connections_; c != nullptr; c = c->next)
    c->close();
  maybe_finish();
}

void Worker::maybe_finish() {
  if (!draining_ || finished_ || connection_count_ != 0) return;
  {
    std::lock_guard<std::mutex> lock(command_mutex_);
    finished_ = true;  // no command can be sent to the closing async handle from now on
  }
  if (context_) context_->shutdown();
  uv_timer_stop(&janitor_);
  uv_close(reinterpret_cast<uv_handle_t*>(&janitor_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&command_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&log_flush_), nullptr);
  uv_timer_stop(&log_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&log_timer_), nullptr);
}

void Worker::send_command(int cmd) {
  std::lock_guard<std::mutex> lock(command_mutex_);
  if (finished_) return;
  commands_ |= cmd;
  uv_async_send(&command_);
}

Server::Server(config::ServerConfig cfg, Handler handler)
    : cfg_(std::move(cfg)), handler_(std::move(handler)) {}

Server::~Server() {
  join();
}

std::string Server::listen_error(int err) const {
  return "cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " + errno_text(err);
}

// SO_REUSEPORT lets every socket that sets it bind the same port, including another process's:
// a second proxy (or a stale one) started on a busy port would silently share its connections
// instead of failing. So the port is first bound once without SO_REUSEPORT, which fails with
// EADDRINUSE while anything listens there; the probe is closed before the workers' sockets bind.
// (A process binding the port between the two is not caught; that window is microseconds.)
bool Server::port_is_free(const sockaddr_storage& addr, socklen_t addr_len, std::string& error) {
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0;
  if (!ok) {
    const int err = errno;
    error = listen_error(err);
    if (err == EADDRINUSE) error += " (another process listens there)";
  }
  if (fd >= 0) ::close(fd);
  return ok;
}

bool Server::bind(std::string& error) {
  sockaddr_storage addr{};
  std::string host = cfg_.host == "localhost" ? "127.0.0.1" : cfg_.host;
  if (uv_ip4_addr(host.c_str(), cfg_.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), cfg_.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    error = "server.host \"" + cfg_.host + "\" is not an IPv4 or IPv6 address";
    return false;
  }
  int n = cfg_.workers > 0 ? cfg_.workers : static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  socklen_t addr_len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (cfg_.port != 0 && !port_is_free(addr, addr_len, error)) return false;
  for (int i = 0; i < n; ++i) {
    int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 ||
        ::listen(fd, kBacklog) != 0) {
      error = listen_error(errno);
      if (fd >= 0) ::close(fd);
      workers_.clear();
      return false;
    }
    if (i == 0) {
      // With port 0 the kernel picked one; the other workers' sockets share it.
      socklen_t len = sizeof addr;
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    }
    workers_.push_back(std::make_unique<Worker>(*this, i, fd));
  }
  return true;
}

void Server::start() {
  for (auto& w : workers_) {
    w->init();
    ++running_;
    uv_thread_create(
        &w->thread_,
        [](void* arg) {
          auto* worker = static_cast<Worker*>(arg);
          worker->run();
          Server& s = worker->server_;
          --s.running_;
          if (s.on_worker_exit_) s.on_worker_exit_();
        },
        w.get());
    w->started_ = true;
  }
}

void Server::drain() {
  for (auto& w : workers_)
    w->send_command(kCmdDrain);
}

void Server::force_close() {
  for (auto& w : workers_)
    w->send_command(kCmdForce);
}

void Server::join() {
  for (auto& w : workers_) {
    if (w->started_) {
      uv_thread_join(&w->thread_);
      w->started_ = false;
    }
  }
}

}  // namespace zonegate::http
