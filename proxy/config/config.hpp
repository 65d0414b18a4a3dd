// zonegate.yaml as a typed struct, with its defaults. docs/CONFIG.md documents every field;
// config/loader.cpp is the one place YAML becomes this struct.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zonegate::config {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  int workers = 0;                  // 0: one per core
  int64_t max_connections = 10000;  // per worker
  int64_t header_timeout_ms = 10'000;
  int64_t body_timeout_ms = 30'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t drain_timeout_ms = 10'000;
  int64_t max_url_bytes = 8 * 1024;
  int64_t max_header_bytes = 16 * 1024;
  int64_t max_headers = 64;
  int64_t max_body_bytes = 1024 * 1024;
  int64_t max_pipelined = 32;  // requests in flight per connection before reading pauses
  int64_t max_output_bytes = 1024 * 1024;  // queued response bytes before reading pauses
};

struct DatabaseConfig {
  std::string conninfo = "dbname=postgres";
};

struct LogConfig {
  std::string level = "info";
  std::string file;  // empty: stderr
  bool access_log = true;
};

struct Config {
  std::string source;  // file name it was read from
  std::string profile = "dev";
  ServerConfig server;
  DatabaseConfig database;
  LogConfig log;
};

// One problem found while loading: where it is and what is wrong.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (e.g. file missing)
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  Config config;
  std::vector<Diagnostic> errors;
  bool ok() const { return errors.empty(); }
};

// Reads and validates a config file. Never throws; every problem is in errors.
LoadResult load_file(const std::string& path);
// Same from a string (tests, embedded defaults); `name` is used in diagnostics.
LoadResult load_string(const std::string& yaml, const std::string& name);

}  // namespace zonegate::config
