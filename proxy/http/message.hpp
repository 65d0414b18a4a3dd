// HTTP request and response values exchanged between the connection layer and the handlers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/field.hpp"

namespace zonegate::http {

using Header = Field;  // the name is lower-cased on parse

struct Request {
  std::string method;
  std::string target;  // as sent: path plus optional ?query
  std::string path;    // target up to '?', not percent-decoded
  std::string query;   // after '?', not decoded
  std::vector<Header> headers;
  std::string body;
  int http_minor = 1;
  bool keep_alive = true;
  std::string request_id;
  std::string client_addr;
  bool admin = false;     // arrived on the admin listener (admin.host:admin.port)
  uint64_t start_ns = 0;  // uv_hrtime() when the first byte of the request arrived

  // First header with this (lower-case) name, or nullptr.
  const std::string* header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::vector<Header> headers;  // extra headers; standard ones are added on serialization
  std::string body;
  // Set instead of body when the bytes are shared (a cached entry's): sent without a copy.
  std::shared_ptr<const std::string> shared_body;
  bool close = false;      // close the connection after this response
  bool head_only = false;  // HEAD: send the headers of the body without the body

  Response() = default;
  Response(int s, std::string b) : status(s), body(std::move(b)) {}
  void add_header(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
  }
  const std::string& body_bytes() const { return shared_body ? *shared_body : body; }
};

// The standard reason phrase for a status code ("OK", "Not Found", ...).
const char* reason_phrase(int status);

// {"code","message","details","hint"} as PostgREST writes errors; empty details/hint are null.
std::string error_body(std::string_view code, std::string_view message,
                       std::string_view details = {}, std::string_view hint = {});
Response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view details = {}, std::string_view hint = {});

// Splits a query string into decoded name/value pairs ("a=1&b=x%20y"). Returns false on a
// malformed percent escape.
bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out);
// Percent-decodes s ('+' stays '+' unless plus_is_space). Returns false on a bad escape.
bool percent_decode(std::string_view s, std::string& out, bool plus_is_space);

}  // namespace zonegate::http
