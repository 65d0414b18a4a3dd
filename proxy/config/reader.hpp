// A small schema walker over yaml-cpp nodes: each accessor reads one key, validates it, expands
// ${ENV} references and records a file:line:col diagnostic on any problem. finish() reports keys
// nobody asked for, with a "did you mean" suggestion.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace zonegate::config {

class Diagnostics {
 public:
  Diagnostics(std::string file, std::vector<Diagnostic>& out) : file_(std::move(file)), out_(out) {}
  void at(const YAML::Mark& mark, std::string message);
  void global(std::string message);
  const std::string& file() const { return file_; }
  size_t count() const { return out_.size(); }

 private:
  std::string file_;
  std::vector<Diagnostic>& out_;
};

// Expands ${VAR} and ${VAR:-default}; "$$" is a literal "$". Returns false with a message when
// a variable is unset and has no default, or a reference is malformed.
bool expand_env(const std::string& in, std::string& out, std::string& error);

// Parses "250ms", "10s", "2m", "1h" into milliseconds.
bool parse_duration_ms(const std::string& s, int64_t& out);
// Parses "1024", "64KiB", "1MiB", "2GiB", "10KB", "5MB" into bytes.
bool parse_bytes(const std::string& s, int64_t& out);

class Section {
 public:
  Section(Diagnostics& diag, const YAML::Node& node, std::string path, YAML::Mark mark);

  void string(const char* key, std::string& out);
  void non_empty_string(const char* key, std::string& out);
  void integer(const char* key, int64_t& out, int64_t lo, int64_t hi);
  void integer(const char* key, int& out, int lo, int hi);
  void number(const char* key, double& out, double lo, double hi);
  void boolean(const char* key, bool& out);
  void duration_ms(const char* key, int64_t& out, int64_t lo, int64_t hi);
  void bytes(const char* key, int64_t& out, int64_t lo, int64_t hi);
  void choice(const char* key, std::string& out, std::initializer_list<const char*> allowed);
  // A secret given inline as `key` or read from the file named by `key_file` (one trailing
  // newline stripped). Both at once is an error.
  void secret(const char* key, std::string& out);
  void string_list(const char* key, std::vector<std::string>& out);
  // The same, with where each item was written (for messages about one item).
  void string_list(const char* key, std::vector<std::string>& out, std::vector<YAML::Mark>& marks);
  // A nested mapping; absent or null gives an empty section.
  Section section(const char* key);
  // Calls fn(name, section) for each entry of a mapping of mappings (e.g. rpc functions).
  void each_entry(const char* key, const std::function<void(const std::string&, Section&)>& fn);
  // Like each_entry, but an entry may also be a single word (e.g. `me_context: off`): then fn
  // gets that word and an empty section.
  void each_entry_or_word(
      const char* key,
      const std::function<void(const std::string&, const std::string& word, Section&)>& fn);
  // Calls fn(index, section) for each item of a list of mappings (e.g. auth.jwt.keys); each
  // item's section is named "key[index]".
  void each_item(const char* key, const std::function<void(size_t, Section&)>& fn);
  bool has(const char* key) const;
  // Reports keys that no accessor asked for.
  void finish();

  const std::string& path() const { return path_; }
  YAML::Mark mark() const { return mark_; }
  void error(const char* key, const std::string& message);
  // Problems recorded so far in the whole file: a check that builds on values just read can
  // skip itself when reading them already failed.
  size_t error_count() const { return diag_.count(); }
  // An error about part of `key`'s value (one list item), reported where that part was written.
  void error_at(const YAML::Mark& mark, const char* key, const std::string& message);

 private:
  YAML::Node take(const char* key);
  bool scalar(const char* key, const YAML::Node& n, std::string& out);
  std::string key_path(const char* key) const;

  Diagnostics& diag_;
  YAML::Node node_;
  std::string path_;
  YAML::Mark mark_;
  std::set<std::string> known_;
  bool is_map_ = false;
};

// Edit distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace zonegate::config
