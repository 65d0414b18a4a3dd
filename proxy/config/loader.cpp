// zonegate.yaml → Config: the one config loader. Every key read here is documented in
// docs/CONFIG.md with its default.
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace zonegate::config {

namespace {

constexpr int64_t kHour = 3'600'000;

void read_server(Section s, ServerConfig& c) {
  s.non_empty_string("host", c.host);
  s.integer("port", c.port, 0, 65535);
  s.integer("workers", c.workers, 0, 256);
  s.integer("max_connections", c.max_connections, 1, 1'000'000);
  s.duration_ms("header_timeout", c.header_timeout_ms, 100, kHour);
  s.duration_ms("body_timeout", c.body_timeout_ms, 100, kHour);
  s.duration_ms("idle_timeout", c.idle_timeout_ms, 100, 24 * kHour);
  s.duration_ms("drain_timeout", c.drain_timeout_ms, 0, kHour);
  s.bytes("max_url_bytes", c.max_url_bytes, 64, 1 << 20);
  s.bytes("max_header_bytes", c.max_header_bytes, 256, 1 << 20);
  s.integer("max_headers", c.max_headers, 1, 1000);
  s.bytes("max_body_bytes", c.max_body_bytes, 0, 1LL << 30);
  s.integer("max_pipelined", c.max_pipelined, 1, 1024);
  s.bytes("max_output_bytes", c.max_output_bytes, 4096, 1LL << 30);
  s.finish();
}

void read_database(Section s, DatabaseConfig& c) {
  s.secret("conninfo", c.conninfo);
  s.finish();
}

void read_log(Section s, LogConfig& c) {
  s.choice("level", c.level, {"debug", "info", "warn", "error"});
  s.string("file", c.file);
  s.boolean("access_log", c.access_log);
  s.finish();
}

LoadResult load_node(const YAML::Node& root, const std::string& name) {
  LoadResult r;
  r.config.source = name;
  Diagnostics diag(name, r.errors);
  Section top(diag, root, "", YAML::Mark());
  top.choice("profile", r.config.profile, {"dev", "prod"});
  read_server(top.section("server"), r.config.server);
  read_database(top.section("database"), r.config.database);
  read_log(top.section("log"), r.config.log);
  top.finish();
  return r;
}

LoadResult parse_error(const std::string& name, const YAML::Exception& e) {
  LoadResult r;
  Diagnostics diag(name, r.errors);
  diag.at(e.mark, "invalid YAML: " + e.msg);
  return r;
}

}  // namespace

LoadResult load_string(const std::string& yaml, const std::string& name) {
  try {
    return load_node(YAML::Load(yaml), name);
  } catch (const YAML::Exception& e) {
    return parse_error(name, e);
  }
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    Diagnostics(path, r.errors)
        .global(std::string("cannot read config file: ") + std::strerror(errno));
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path);
}

}  // namespace zonegate::config
