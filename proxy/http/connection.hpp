// One client connection: a uv_tcp_t (first member, recovered with container_of), an llhttp
// parser, and the ordered queue of exchanges so pipelined requests are answered in order.
// Memory is freed only in the close callback.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <deque>
#include <string>

#include "http/connection_limits.hpp"
#include "http/exchange.hpp"

namespace zonegate::http {

class Worker;

class Connection {
 public:
  enum class State {
    kIdle,       // between requests
    kHeaders,    // reading a request line and headers
    kBody,       // reading a body
    kLingering,  // response sent, write side shut down, waiting for the client's EOF
    kClosing,    // uv_close issued
  };

  // `admin`: accepted on the admin listener.
  Connection(Worker& worker, bool admin);
  // Accepts from the listener and starts reading; false (and closed) on failure.
  bool accept(uv_stream_t* listener);
  // Counts the connection against its listener's caps; past one, answers 503 and closes.
  void admit();
  // Called by the janitor with the loop's current time.
  void check_timeouts(uint64_t now_ms);
  // Graceful shutdown: close now when idle, else after the in-flight responses.
  void drain();
  void close();
  // An exchange of ours got its response.
  void on_response_ready();
  bool idle() const { return state_ == State::kIdle && pending_.empty(); }

  Connection* prev = nullptr;  // worker's intrusive list
  Connection* next = nullptr;

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_close(uv_handle_t* h);

  static int cb_message_begin(llhttp_t* p);
  static int cb_url(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, size_t len);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, size_t len);
  static int cb_message_complete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  void parse(const char* data, size_t len);
  int reject(int status, const char* code, const char* message);
  // Checks the request's header section as a whole (Host, singleton fields); 0 or reject().
  int check_header_section();
  // Whether the header value chunk at `at` continues a value on a new line (obs-fold, RFC 9112
  // §5.2): llhttp accepts it, a front proxy may read it otherwise, so it is refused.
  bool folded(const char* at) const;
  // Answers the request being read with the recorded rejection and closes after it.
  // With `proxy_status` (an RFC 9209 error type): the proxy refused on its own, so the response
  // says so and carries Retry-After.
  void fail_current(const char* details, const char* proxy_status = nullptr);
  bool commit_header();
  void flush();
  void serialize(Exchange& ex, std::string& out);
  void write(const std::string& data);
  void update_reading();
  // Bytes written but not yet taken by the client: libuv's queue plus the kernel's (SIOCOUTQ).
  size_t untaken_bytes();
  void close_after_flush();
  void start_linger();

  uv_tcp_t tcp_{};
  Worker& worker_;
  const bool admin_;
  ConnectionLimits* limits_ = nullptr;  // set once admitted: released in on_close
  bool started_request_ = false;        // a request has begun on this connection
  // Response bytes not yet taken by the client, in libuv's queue and in the kernel's (unsent
  // or unacknowledged), at the last janitor pass; checked while `outstanding_` (set by every
  // write, cleared once both queues are empty).
  size_t queued_seen_ = 0;
  bool outstanding_ = false;
  uint64_t write_progress_ms_ = 0;  // when those bytes last went down
  llhttp_t parser_{};
  State state_ = State::kIdle;
  ExchangePtr current_;  // the request being parsed
  std::deque<ExchangePtr> pending_;
  std::string backlog_;  // received but not parsed while paused
  std::string field_, value_;
  bool in_value_ = false;
  // The bytes parse() is working on, and the last bytes of the previous call's (when it parsed
  // everything): what precedes a header value, to tell an obs-fold continuation.
  const char* parse_begin_ = nullptr;
  char prev_tail_[8] = {};
  size_t prev_tail_len_ = 0;
  size_t header_bytes_ = 0;
  int reject_status_ = 0;
  std::string reject_code_, reject_message_;
  bool paused_ = false;
  bool reading_ = false;
  bool in_parse_ = false;
  // When parse() was handed its bytes: the start of every request that begins in them (one
  // clock read for all the requests pipelined in one read).
  uint64_t parse_ns_ = 0;
  bool close_after_flush_ = false;
  bool peer_eof_ = false;
  size_t output_bytes_ = 0;  // bytes handed to uv_write and not yet completed
  int writes_in_flight_ = 0;
  uint64_t state_since_ms_ = 0;
  uint64_t last_activity_ms_ = 0;
  std::string client_addr_;
  uv_shutdown_t shutdown_req_{};
};

}  // namespace zonegate::http
