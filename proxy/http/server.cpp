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

Worker::Worker(Server& server, int index, int listen_fd, int admin_fd)
    : server_(server),
      index_(index),
      listen_fd_(listen_fd),
      admin_fd_(admin_fd),
      read_buffer_(size_t{64} * 1024) {
  id_prefix_ = random_hex(8) + "-" + std::to_string(index) + "-";
}

Worker::~Worker() {
  if (listen_fd_ >= 0) ::close(listen_fd_);  // never handed to libuv
  if (admin_fd_ >= 0) ::close(admin_fd_);
}

ConnectionLimits& Worker::limits(bool admin) {
  return admin ? *server_.admin_limits_ : server_.limits_;
}

void Worker::count_close(CloseReason why) {
  server_.closed_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
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
  if (admin_fd_ >= 0) {
    uv_tcp_init(&loop_, &admin_listener_);
    admin_listener_.data = this;
    admin_open_ = true;
    rc = uv_tcp_open(&admin_listener_, admin_fd_);
    if (rc == 0) {
      admin_fd_ = -1;
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(&admin_listener_), kBacklog, on_connection);
    }
    if (rc != 0) log::error("admin listen failed", {{"error", uv_strerror(rc)}});
  }
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
  const bool admin = listener == reinterpret_cast<uv_stream_t*>(&w->admin_listener_);
  auto* c = new Connection(*w, admin);
  if (!c->accept(listener)) return;  // closed; freed in its close callback
  if (w->draining_) {
    c->close();
    return;
  }
  c->admit();  // counted against the caps, or answered 503 and closed
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
  if (admin_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&admin_listener_), nullptr);
    admin_open_ = false;
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

Server::Server(config::ServerConfig cfg, Handler handler, std::vector<net::Cidr> exempt)
    : cfg_(std::move(cfg)),
      handler_(std::move(handler)),
      limits_(ConnectionLimitsConfig{cfg_.max_connections, cfg_.max_connections_per_address,
                                     std::move(exempt)}),
      admin_limits_(std::make_unique<ConnectionLimits>(ConnectionLimitsConfig{64, 0, {}})) {}

Server::~Server() {
  join();
}

void Server::set_admin_listener(const config::AdminConfig& admin) {
  admin_enabled_ = admin.enabled;
  admin_host_ = admin.host;
  admin_port_wanted_ = admin.port;
  admin_limits_ =
      std::make_unique<ConnectionLimits>(ConnectionLimitsConfig{admin.max_connections, 0, {}});
}

// SO_REUSEPORT lets every socket that sets it bind the same port, including another process's:
// a second proxy (or a stale one) started on a busy port would silently share its connections
// instead of failing. So the port is first bound once without SO_REUSEPORT, which fails with
// EADDRINUSE while anything listens there; the probe is closed before the workers' sockets bind.
// (A process binding the port between the two is not caught; that window is microseconds.)
bool Server::port_is_free(const sockaddr_storage& addr, socklen_t addr_len, std::string& error,
                          const std::string& where) {
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0;
  if (!ok) {
    const int err = errno;
    error = "cannot listen on " + where + ": " + errno_text(err);
    if (err == EADDRINUSE) error += " (another process listens there)";
  }
  if (fd >= 0) ::close(fd);
  return ok;
}

int Server::listen_socket(const char* section, const std::string& host_in, int port,
                          bool reuse_port, std::string& error, int& bound_port) {
  sockaddr_storage addr{};
  const std::string host = host_in == "localhost" ? "127.0.0.1" : host_in;
  // The admin listener's messages say so; the public one's are as they always were.
  const std::string where = (std::string(section) == "admin" ? "admin listener " : "") + host_in +
                            ":" + std::to_string(port);
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    error = std::string(section) + ".host \"" + host_in + "\" is not an IPv4 or IPv6 address";
    return -1;
  }
  socklen_t addr_len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (bound_port != 0) {
    // The workers' later sockets share the port the first one was given.
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(bound_port));
  } else if (port != 0 && !port_is_free(addr, addr_len, error, where)) {
    return -1;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 ||
      ::listen(fd, kBacklog) != 0) {
    error = "cannot listen on " + where + ": " + errno_text(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  if (bound_port == 0) {
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    bound_port =
        ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  return fd;
}

bool Server::bind(std::string& error) {
  int n = cfg_.workers > 0 ? cfg_.workers : static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  std::vector<int> fds;
  auto fail = [&] {
    for (int fd : fds)
      ::close(fd);
    return false;
  };
  int bound = 0;
  for (int i = 0; i < n; ++i) {
    int fd = listen_socket("server", cfg_.host, cfg_.port, true, error, bound);
    if (fd < 0) return fail();
    fds.push_back(fd);
  }
  port_ = bound;
  int admin_fd = -1;
  if (admin_enabled_) {
    int admin_bound = 0;
    admin_fd = listen_socket("admin", admin_host_, admin_port_wanted_, false, error, admin_bound);
    if (admin_fd < 0) return fail();
    admin_port_ = admin_bound;
  }
  for (int i = 0; i < n; ++i)
    workers_.push_back(
        std::make_unique<Worker>(*this, i, fds[static_cast<size_t>(i)], i == 0 ? admin_fd : -1));
  return true;
}

void Server::describe_metrics(metrics::Text& out) const {
  out.family("zonegate_connections_refused_total", "counter",
             "Client connections refused at accept (503 and closed): past server.max_connections "
             "(reason total), past server.max_connections_per_address (per_address).");
  out.sample("zonegate_connections_refused_total", R"(listener="public",reason="total")",
             limits_.refused_total());
  out.sample("zonegate_connections_refused_total", R"(listener="public",reason="per_address")",
             limits_.refused_per_address());
  out.sample("zonegate_connections_refused_total", R"(listener="admin",reason="total")",
             admin_limits_->refused_total());
  out.family("zonegate_connections_closed_total", "counter",
             "Client connections the proxy closed on its own: a client that took no response "
             "bytes for server.write_timeout (write_timeout), a request line and headers or a "
             "body not received in time (header_timeout, body_timeout).");
  static const char* const kReasons[] = {"write_timeout", "header_timeout", "body_timeout"};
  for (size_t i = 0; i < closed_.size(); ++i) {
    out.sample("zonegate_connections_closed_total", std::string(R"(reason=")") + kReasons[i] + "\"",
               closed_[i].load(std::memory_order_relaxed));
  }
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
