// HTTP/1.1 connection handling; see connection.hpp.
#include "http/connection.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/log.hpp"
#include "http/server.hpp"

namespace zonegate::http {

namespace {

// A write request owns the bytes it sends; freed in the write callback.
struct WriteReq {
  uv_write_t req;  // first member: the uv_write_t* is the WriteReq*
  std::string data;
};

// How long to wait for the client's EOF after we shut down our side, so a last response is not
// destroyed by a reset (the classic "lingering close").
constexpr uint64_t kLingerMs = 2000;

bool valid_request_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

// RFC 9110 §5.6.2: a field name is a token.
bool tchar(unsigned char c) {
  return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c != 0 && tchar(c); });
}

// RFC 9110 §5.5: a field value holds visible characters, spaces, tabs and obs-text; never a
// control byte (CR and LF above all: they would split a response).
bool valid_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });
}

// Fields a request may carry once: a second copy is either an attack on whichever hop reads
// the other one (request smuggling, a second Authorization a gateway never checked) or a bug.
constexpr const char* kSingletons[] = {"host",           "authorization", "content-type",
                                       "content-length", "cookie",        "x-request-id",
                                       "range",          "origin",        "proxy-authorization"};

Connection* self(llhttp_t* p) {
  return static_cast<Connection*>(p->data);
}

}  // namespace

void Exchange::respond(Response resp) {
  if (responded_) return;
  responded_ = true;
  resp_ = std::move(resp);
  for (Field& f : extra_headers)
    resp_.headers.push_back(std::move(f));
  extra_headers.clear();
  if (req.method == "HEAD") resp_.head_only = true;
  if (conn_ != nullptr) conn_->on_response_ready();
}

const llhttp_settings_t& Connection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = cb_message_begin;
    st.on_url = cb_url;
    st.on_header_field = cb_header_field;
    st.on_header_value = cb_header_value;
    st.on_headers_complete = cb_headers_complete;
    st.on_body = cb_body;
    st.on_message_complete = cb_message_complete;
    return st;
  }();
  return s;
}

Connection::Connection(Worker& worker, bool admin) : worker_(worker), admin_(admin) {
  tcp_.data = this;
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
}

bool Connection::accept(uv_stream_t* listener) {
  uv_tcp_init(worker_.loop(), &tcp_);
  worker_.add_connection(this);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    close();
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  if (worker_.cfg().send_buffer_bytes > 0) {
    // A fixed send buffer instead of autotuning: a client with a closed window can then park at
    // most about twice this in kernel memory (what TCP memory pressure would make everyone pay).
    auto size = static_cast<int>(worker_.cfg().send_buffer_bytes);
    uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(&tcp_), &size);
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    char buf[64] = {0};
    if (ss.ss_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), buf, sizeof buf);
    }
    client_addr_ = buf;
  }
  last_activity_ms_ = state_since_ms_ = write_progress_ms_ = uv_now(worker_.loop());
  update_reading();
  return true;
}

void Connection::admit() {
  ConnectionLimits& caps = worker_.limits(admin_);
  const ConnectionLimits::Verdict v = caps.acquire(client_addr_);
  if (v == ConnectionLimits::Verdict::kAdmitted) {
    limits_ = &caps;
    return;
  }
  // A clean refusal rather than a reset: the client learns why and when to come back.
  reject_status_ = 503;
  reject_code_ = "too_many_connections";
  reject_message_ = v == ConnectionLimits::Verdict::kTotal
                        ? "the server has too many open connections"
                        : "too many open connections from this client address";
  fail_current("", "connection_limit_reached");
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(h->data);
  // One read buffer per worker: data is parsed (or copied to the backlog) before the next read.
  *buf =
      uv_buf_init(c->worker_.read_buffer(), static_cast<unsigned>(c->worker_.read_buffer_size()));
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(s->data);
  if (nread > 0) {
    c->last_activity_ms_ = uv_now(c->worker_.loop());
    if (c->state_ == State::kLingering || c->close_after_flush_) return;  // discard
    c->parse(buf->base, static_cast<size_t>(nread));
    return;
  }
  if (nread == 0) return;
  if (nread == UV_EOF && c->state_ != State::kLingering && !c->pending_.empty()) {
    // Half-closed by the client after sending its requests: answer them, then close.
    c->peer_eof_ = true;
    c->close_after_flush_ = true;
    c->current_.reset();
    c->update_reading();
    return;
  }
  c->close();
}

void Connection::parse(const char* data, size_t len) {
  parse_ns_ = uv_hrtime();
  in_parse_ = true;
  parse_begin_ = data;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  in_parse_ = false;
  // Keep the tail for folded() of the next read; a pause stops between requests, where no
  // header value can begin, so the backlog needs none.
  prev_tail_len_ = err == HPE_OK ? std::min(len, sizeof prev_tail_) : 0;
  std::memcpy(prev_tail_, data + len - prev_tail_len_, prev_tail_len_);
  if (err == HPE_PAUSED) {
    const char* pos = llhttp_get_error_pos(&parser_);
    std::string rest(pos, static_cast<size_t>(data + len - pos));
    backlog_ = std::move(rest);
    paused_ = true;
  } else if (err != HPE_OK && state_ != State::kClosing) {
    if (reject_status_ == 0) {
      reject_status_ = 400;
      reject_code_ = "malformed_request";
      reject_message_ = "malformed HTTP request";
      fail_current(llhttp_get_error_reason(&parser_));
    } else {
      fail_current("");
    }
  }
  flush();
}

void Connection::fail_current(const char* details, const char* proxy_status) {
  ExchangePtr ex = current_ ? std::move(current_) : std::make_shared<Exchange>(&worker_);
  current_.reset();
  if (ex->req.request_id.empty()) ex->req.request_id = worker_.next_request_id();
  if (ex->req.start_ns == 0) ex->req.start_ns = uv_hrtime();
  ex->req.client_addr = client_addr_;
  ex->req.admin = admin_;
  ex->req.keep_alive = false;
  ex->route = "rejected";
  ex->conn_ = this;
  pending_.push_back(ex);
  close_after_flush_ = true;
  backlog_.clear();
  paused_ = false;
  state_ = State::kIdle;
  Response r = error_response(reject_status_, reject_code_, reject_message_,
                              details != nullptr ? details : "");
  r.close = true;
  // The proxy answered on its own (RFC 9209): a capacity refusal says when to come back; a
  // request it could not take (malformed, too large, too slow) is a client error it generated.
  if (proxy_status != nullptr) r.add_header("Retry-After", "1");
  std::string status = "zonegate; error=";
  status += proxy_status != nullptr ? proxy_status : "http_request_error";
  if (proxy_status == nullptr && !reject_code_.empty()) {
    status += "; details=\"";
    status += reject_code_;  // a fixed token of ours: nothing to escape
    status += '"';
  }
  r.add_header("Proxy-Status", std::move(status));
  ex->respond(std::move(r));
}

int Connection::reject(int status, const char* code, const char* message) {
  reject_status_ = status;
  reject_code_ = code;
  reject_message_ = message;
  return HPE_USER;
}

int Connection::cb_message_begin(llhttp_t* p) {
  Connection* c = self(p);
  c->current_ = std::make_shared<Exchange>(&c->worker_);
  c->current_->req.start_ns = c->parse_ns_;
  c->current_->req.client_addr = c->client_addr_;
  c->current_->req.admin = c->admin_;
  c->started_request_ = true;
  c->state_ = State::kHeaders;
  c->state_since_ms_ = uv_now(c->worker_.loop());
  c->header_bytes_ = 0;
  c->field_.clear();
  c->value_.clear();
  c->in_value_ = false;
  return 0;
}

int Connection::cb_url(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  std::string& t = c->current_->req.target;
  if (t.size() + len > static_cast<size_t>(c->worker_.cfg().max_url_bytes)) {
    return c->reject(414, "uri_too_long", "request target exceeds server.max_url_bytes");
  }
  t.append(at, len);
  return 0;
}

bool Connection::commit_header() {
  for (char& ch : field_)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  current_->req.headers.push_back({std::move(field_), std::move(value_)});
  field_.clear();
  value_.clear();
  in_value_ = false;
  return current_->req.headers.size() <= static_cast<size_t>(worker_.cfg().max_headers);
}

int Connection::cb_header_field(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  c->header_bytes_ += len;
  if (c->header_bytes_ > static_cast<size_t>(c->worker_.cfg().max_header_bytes)) {
    return c->reject(431, "headers_too_large", "request headers exceed server.max_header_bytes");
  }
  // Trailers (fields after a chunked body) never become headers: a trailer could otherwise
  // supply an Authorization that no gateway in front of us saw. They are counted and dropped.
  if (c->state_ == State::kBody) return 0;
  if (c->in_value_ && !c->commit_header()) {
    return c->reject(431, "headers_too_large", "too many request headers (server.max_headers)");
  }
  if (!std::all_of(at, at + len, [](char ch) { return tchar(static_cast<unsigned char>(ch)); })) {
    return c->reject(400, "malformed_request", "a header field name is not a token (RFC 9110)");
  }
  c->field_.append(at, len);
  return 0;
}

int Connection::cb_header_value(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  c->header_bytes_ += len;
  if (c->header_bytes_ > static_cast<size_t>(c->worker_.cfg().max_header_bytes)) {
    return c->reject(431, "headers_too_large", "request headers exceed server.max_header_bytes");
  }
  if (c->state_ == State::kBody) return 0;  // a trailer's value: dropped
  if (!valid_field_value(std::string_view(at, len))) {
    return c->reject(400, "malformed_request", "a header field value holds a control character");
  }
  if (c->folded(at)) {
    return c->reject(400, "malformed_request",
                     "obsolete line folding in a header field (RFC 9112)");
  }
  c->in_value_ = true;
  c->value_.append(at, len);
  return 0;
}

bool Connection::folded(const char* at) const {
  // Walks back over the spaces and tabs before the chunk: a value that follows a line feed
  // (rather than the field's colon) continues a folded line.
  for (size_t back = 1;; ++back) {
    const auto offset = static_cast<size_t>(at - parse_begin_);
    char c = 0;
    if (back <= offset) {
      c = at[-static_cast<ptrdiff_t>(back)];
    } else if (back - offset <= prev_tail_len_) {
      c = prev_tail_[prev_tail_len_ - (back - offset)];
    } else {
      return false;  // further back than we kept: only runs of spaces get here
    }
    if (c == ' ' || c == '\t') continue;
    return c == '\n';
  }
}

int Connection::check_header_section() {
  const Request& r = current_->req;
  size_t counts[std::size(kSingletons)] = {};
  for (const Header& h : r.headers) {
    if (h.name.empty()) {
      return reject(400, "malformed_request", "a header field has an empty name");
    }
    for (size_t i = 0; i < std::size(kSingletons); ++i) {
      if (h.name == kSingletons[i] && ++counts[i] > 1) {
        std::string what = std::string("more than one ") + kSingletons[i] + " header field";
        reject_status_ = 400;
        reject_code_ = "malformed_request";
        reject_message_ = what;
        return HPE_USER;
      }
    }
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one, gets 400.
  if (r.http_minor >= 1 && counts[0] == 0) {
    return reject(400, "malformed_request", "an HTTP/1.1 request needs a Host header field");
  }
  return 0;
}

int Connection::cb_headers_complete(llhttp_t* p) {
  Connection* c = self(p);
  if ((c->in_value_ || !c->field_.empty()) && !c->commit_header()) {
    return c->reject(431, "headers_too_large", "too many request headers (server.max_headers)");
  }
  Request& r = c->current_->req;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  r.http_minor = p->http_minor;
  if (int rc = c->check_header_section(); rc != 0) return rc;
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? std::string() : r.target.substr(q + 1);
  if ((p->flags & F_CONTENT_LENGTH) &&
      p->content_length > static_cast<uint64_t>(c->worker_.cfg().max_body_bytes)) {
    return c->reject(413, "body_too_large", "request body exceeds server.max_body_bytes");
  }
  c->state_ = State::kBody;
  c->state_since_ms_ = uv_now(c->worker_.loop());
  const std::string* expect = r.header("expect");
  if (expect != nullptr && strcasecmp(expect->c_str(), "100-continue") == 0 &&
      c->pending_.empty() && c->writes_in_flight_ == 0) {
    c->write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  return 0;
}

int Connection::cb_body(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  std::string& body = c->current_->req.body;
  if (body.size() + len > static_cast<size_t>(c->worker_.cfg().max_body_bytes)) {
    return c->reject(413, "body_too_large", "request body exceeds server.max_body_bytes");
  }
  body.append(at, len);
  return 0;
}

int Connection::cb_message_complete(llhttp_t* p) {
  Connection* c = self(p);
  ExchangePtr ex = std::move(c->current_);
  c->current_.reset();
  Request& r = ex->req;
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  const std::string* rid = r.header("x-request-id");
  r.request_id = (rid != nullptr && valid_request_id(*rid)) ? *rid : c->worker_.next_request_id();
  c->state_ = State::kIdle;
  c->state_since_ms_ = uv_now(c->worker_.loop());
  ex->conn_ = c;
  c->pending_.push_back(ex);
  c->worker_.dispatch(ex);
  if (!r.keep_alive) {
    // Nothing after a request without keep-alive is read.
    c->close_after_flush_ = true;
    return HPE_PAUSED;
  }
  if (c->pending_.size() >= static_cast<size_t>(c->worker_.cfg().max_pipelined)) return HPE_PAUSED;
  // Answers made at once (cache hits, /openapi.json) wait here until parse() returns and flushes:
  // stop taking requests once they, with what is queued, reach max_output_bytes, so a client
  // that pipelines many and reads nothing holds that much, not max_pipelined whole answers.
  size_t ready = c->output_bytes_;
  for (const ExchangePtr& e : c->pending_)
    if (e->responded_) ready += e->resp_.body_bytes().size();
  if (ready >= static_cast<size_t>(c->worker_.cfg().max_output_bytes)) return HPE_PAUSED;
  return 0;
}

void Connection::on_response_ready() {
  if (in_parse_) return;  // parse() flushes when llhttp_execute returns
  flush();
}

void Connection::serialize(Exchange& ex, std::string& out) {
  const Response& r = ex.resp_;
  const std::string& body = r.body_bytes();
  bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  out.reserve(out.size() + 400 + body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nDate: ";
  out += worker_.date_header();
  out += "\r\n";
  if (!no_body) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
  }
  out += "X-Request-Id: ";
  out += ex.req.request_id;
  out +=
      "\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
      "Referrer-Policy: no-referrer\r\n";
  bool has_cache_control = false, has_csp = false;
  for (const Header& h : r.headers) {
    // A field that is not a token, or a value with a control byte (request bytes that reached
    // a header), is dropped rather than sent: it could split or forge the response.
    if (!is_token(h.name) || !valid_field_value(h.value)) continue;
    if (strcasecmp(h.name.c_str(), "cache-control") == 0) has_cache_control = true;
    if (strcasecmp(h.name.c_str(), "content-security-policy") == 0) has_csp = true;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (!has_cache_control) out += "Cache-Control: no-store\r\n";
  // An API answer is never a document to render: no scripts, no frames, whatever its type.
  if (!has_csp) out += "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n";
  if (r.close) {
    out += "Connection: close\r\n";
  } else if (ex.req.http_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!no_body && !r.head_only) out += body;
}

void Connection::flush() {
  if (state_ == State::kClosing || state_ == State::kLingering) return;
  // The worker's buffer (it keeps its capacity): written before anything below can flush again,
  // and emptied here, at the start of every flush.
  std::string& out = worker_.output_scratch();
  out.clear();
  bool last_sent = false;
  uint64_t done_ns = 0;  // read at the first response: the responses below go out in one write
  // Backpressure: while the client has not taken max_output_bytes already queued, ready
  // responses wait as they are (on_write flushes again), so what one connection queues stays
  // bounded by that plus one response, however many it pipelined.
  const auto max_output = static_cast<size_t>(worker_.cfg().max_output_bytes);
  while (!pending_.empty() && pending_.front()->responded_ && output_bytes_ < max_output &&
         (out.empty() || output_bytes_ + out.size() < max_output)) {
    ExchangePtr ex = std::move(pending_.front());
    pending_.pop_front();
    bool nothing_follows = pending_.empty() && state_ == State::kIdle && backlog_.empty();
    if (!ex->req.keep_alive || (close_after_flush_ && pending_.empty()) ||
        (worker_.draining() && nothing_follows)) {
      ex->resp_.close = true;
    }
    size_t before = out.size();
    serialize(*ex, out);
    if (worker_.observing()) {
      if (done_ns == 0) done_ns = uv_hrtime();
      worker_.observe(*ex, out.size() - before, done_ns);
    }
    ex->conn_ = nullptr;
    if (ex->resp_.close) {
      last_sent = true;
      break;
    }
  }
  if (!out.empty()) write(out);
  if (state_ == State::kClosing) return;
  if (last_sent) {
    for (ExchangePtr& e : pending_)
      e->conn_ = nullptr;
    pending_.clear();
    current_.reset();
    backlog_.clear();
    close_after_flush_ = true;
  }
  if (close_after_flush_) {
    if (pending_.empty() && writes_in_flight_ == 0) start_linger();
    update_reading();
    return;
  }
  if (paused_ && !in_parse_ && pending_.size() < static_cast<size_t>(worker_.cfg().max_pipelined) &&
      output_bytes_ < static_cast<size_t>(worker_.cfg().max_output_bytes)) {
    paused_ = false;
    llhttp_resume(&parser_);
    std::string data = std::move(backlog_);
    backlog_.clear();
    if (!data.empty()) {
      parse(data.data(), data.size());  // flushes again, bounded by max_pipelined
      return;
    }
  }
  update_reading();
}

void Connection::write(const std::string& data) {
  // What the socket takes now goes out with uv_try_write: no write request to allocate, no
  // callback a loop iteration later, no epoll change. Only a remainder (a slow reader, a full
  // socket buffer) is queued with uv_write, and once bytes are queued everything after them
  // queues too, so the order holds.
  size_t sent = 0;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (!outstanding_) {
    outstanding_ = true;  // the janitor watches these bytes until the client has taken them
    write_progress_ms_ = uv_now(worker_.loop());
  }
  if (writes_in_flight_ == 0) {
    uv_buf_t now = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &now, 1);
    if (n < 0 && n != UV_EAGAIN) {
      close();
      return;
    }
    if (n > 0) sent = static_cast<size_t>(n);
    if (sent == data.size()) {
      last_activity_ms_ = uv_now(worker_.loop());
      return;
    }
  }
  auto* wr = new WriteReq{};
  wr->data.assign(data, sent);  // from `sent` to the end
  wr->req.data = this;
  uv_buf_t buf = uv_buf_init(wr->data.data(), static_cast<unsigned>(wr->data.size()));
  output_bytes_ += wr->data.size();
  ++writes_in_flight_;
  int rc = uv_write(&wr->req, stream, &buf, 1, on_write);
  if (rc != 0) {
    output_bytes_ -= wr->data.size();
    --writes_in_flight_;
    delete wr;
    close();
  }
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* wr = reinterpret_cast<WriteReq*>(req);
  auto* c = static_cast<Connection*>(req->data);
  c->output_bytes_ -= wr->data.size();
  --c->writes_in_flight_;
  delete wr;
  if (c->state_ == State::kClosing) return;
  if (status < 0) {
    c->close();
    return;
  }
  c->last_activity_ms_ = uv_now(c->worker_.loop());
  c->flush();  // may resume a paused parser now that output drained
}

void Connection::start_linger() {
  if (state_ == State::kLingering || state_ == State::kClosing) return;
  if (peer_eof_) {
    close();
    return;
  }
  state_ = State::kLingering;
  state_since_ms_ = uv_now(worker_.loop());
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) != 0) {
    close();
    return;
  }
  update_reading();
}

void Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  if (c->state_ != State::kClosing && status < 0) c->close();
}

void Connection::update_reading() {
  bool want;
  if (state_ == State::kClosing) {
    want = false;
  } else if (state_ == State::kLingering) {
    want = true;  // to see the client's EOF
  } else {
    want = !paused_ && !close_after_flush_ && !peer_eof_ &&
           output_bytes_ < static_cast<size_t>(worker_.cfg().max_output_bytes);
  }
  if (want == reading_) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (want) {
    reading_ = uv_read_start(stream, on_alloc, on_read) == 0;
  } else {
    uv_read_stop(stream);
    reading_ = false;
  }
}

size_t Connection::untaken_bytes() {
  size_t n = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_os_fd_t fd = -1;
  int outq = 0;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0 &&
      ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
    n += static_cast<size_t>(outq);
  }
  return n;
}

void Connection::check_timeouts(uint64_t now) {
  const config::ServerConfig& cfg = worker_.cfg();
  if (state_ == State::kClosing) return;
  if (outstanding_) {
    // Progress is the untaken bytes going down (a large answer drains in pieces before its
    // write completes; the kernel's queue empties as the client reads): a client that takes
    // nothing for write_timeout is not reading, whether the bytes wait in libuv or the kernel.
    const size_t untaken = untaken_bytes();
    if (untaken == 0) {
      outstanding_ = false;
      queued_seen_ = 0;
    } else {
      if (untaken < queued_seen_) write_progress_ms_ = now;
      queued_seen_ = untaken;
      if (now - write_progress_ms_ > static_cast<uint64_t>(cfg.write_timeout_ms)) {
        worker_.count_close(CloseReason::kWriteTimeout);
        close();
        return;
      }
    }
  }
  switch (state_) {
    case State::kHeaders:
      if (now - state_since_ms_ > static_cast<uint64_t>(cfg.header_timeout_ms)) {
        worker_.count_close(CloseReason::kHeaderTimeout);
        reject(408, "request_timeout", "request headers not received within server.header_timeout");
        fail_current("");
      }
      break;
    case State::kBody:
      if (now - state_since_ms_ > static_cast<uint64_t>(cfg.body_timeout_ms)) {
        worker_.count_close(CloseReason::kBodyTimeout);
        reject(408, "request_timeout", "request body not received within server.body_timeout");
        fail_current("");
      }
      break;
    case State::kIdle: {
      // A connection that has not begun a request gets header_timeout, not the keep-alive
      // idle_timeout: an idle socket costs the same whether it sent nothing or its headers slowly.
      const int64_t limit = started_request_ ? cfg.idle_timeout_ms : cfg.header_timeout_ms;
      if (pending_.empty() && writes_in_flight_ == 0 &&
          now - last_activity_ms_ > static_cast<uint64_t>(limit)) {
        if (!started_request_) worker_.count_close(CloseReason::kHeaderTimeout);
        close();
      }
      break;
    }
    case State::kLingering:
      if (now - state_since_ms_ > kLingerMs) close();
      break;
    case State::kClosing:
      break;
  }
}

void Connection::drain() {
  if (idle() && writes_in_flight_ == 0 && backlog_.empty()) close();
}

void Connection::close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  for (ExchangePtr& e : pending_)
    e->conn_ = nullptr;
  pending_.clear();
  current_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Connection::on_close(uv_handle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  if (c->limits_ != nullptr) c->limits_->release(c->client_addr_);
  c->worker_.remove_connection(c);
  delete c;
}

}  // namespace zonegate::http
