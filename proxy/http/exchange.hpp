// One request and its response in flight (the unit every stage of the request path works on),
// apart from the server and connection that carry it so both can include it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/message.hpp"

namespace zonegate::http {

class Worker;
class Connection;

// One request and its response, in flight. Owned by the connection's ordered queue and by any
// asynchronous work done for it; all of it runs on the worker's loop thread.
class Exchange {
 public:
  Request req;
  // Filled by stages, reported in the access log and metrics.
  std::string route = "unmatched";
  std::string cache_status;  // "hit", "miss", "stale", ... or empty
  std::string user;          // authenticated subject
  // The request runs as the anonymous role (auth.anon_role): a 42501 from the database is then
  // 401 rather than 403, as PostgREST answers (api/errors.hpp).
  bool anonymous = false;
  uint64_t upstream_ns = 0;  // time spent waiting for Postgres
  // Fields a stage before the handler wants on whatever response is sent (e.g. RateLimit).
  std::vector<Field> extra_headers;

  explicit Exchange(Worker* w) : worker_(w) {}
  Worker& worker() const { return *worker_; }
  // Sends the response; later calls are ignored. Must run on the worker's thread.
  void respond(Response resp);
  bool responded() const { return responded_; }
  // False once the client has gone; work done for it can stop early.
  bool client_connected() const { return conn_ != nullptr; }
  const Response& response() const { return resp_; }

 private:
  friend class Connection;
  Worker* worker_;
  Connection* conn_ = nullptr;
  Response resp_;
  bool responded_ = false;
};

using ExchangePtr = std::shared_ptr<Exchange>;
using Handler = std::function<void(const ExchangePtr&)>;

}  // namespace zonegate::http
