// Schema walker over YAML; see reader.hpp.
#include "config/reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/errno_text.hpp"

namespace zonegate::config {

std::string Diagnostic::to_string() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  return s + ": " + message;
}

void Diagnostics::at(const YAML::Mark& mark, std::string message) {
  Diagnostic d;
  d.file = file_;
  if (mark.line >= 0 && !mark.is_null()) {
    d.line = mark.line + 1;
    d.column = mark.column + 1;
  }
  d.message = std::move(message);
  out_.push_back(std::move(d));
}

void Diagnostics::global(std::string message) {
  at(YAML::Mark::null_mark(), std::move(message));
}

bool expand_env(const std::string& in, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '$') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < in.size() && in[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (i + 1 >= in.size() || in[i + 1] != '{') {
      out.push_back('$');
      continue;
    }
    size_t close = in.find('}', i + 2);
    if (close == std::string::npos) {
      error = "unterminated ${...} reference";
      return false;
    }
    std::string ref = in.substr(i + 2, close - i - 2);
    std::string name = ref;
    bool has_default = false;
    std::string def;
    size_t sep = ref.find(":-");
    if (sep != std::string::npos) {
      name = ref.substr(0, sep);
      def = ref.substr(sep + 2);
      has_default = true;
    }
    bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char n : name)
      valid = valid && (std::isalnum(static_cast<unsigned char>(n)) || n == '_');
    if (!valid) {
      error = "invalid environment variable name in ${" + ref + "}";
      return false;
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && (*value != '\0' || !has_default)) {
      out += value;
    } else if (has_default) {
      out += def;
    } else {
      error = "environment variable " + name + " is not set (write ${" + name +
              ":-default} to give a default)";
      return false;
    }
    i = close;
  }
  return true;
}

bool parse_duration_ms(const std::string& s, int64_t& out) {
  struct Unit {
    const char* suffix;
    double ms;
  };
  static const Unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  for (const Unit& u : units) {
    size_t n = std::strlen(u.suffix);
    if (s.size() <= n || s.compare(s.size() - n, n, u.suffix) != 0) continue;
    std::string num = s.substr(0, s.size() - n);
    // "10ms" must not parse as 10 minutes with a stray "s": the number part must be numeric.
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(num.c_str(), &end);
    if (errno != 0 || end == num.c_str() || *end != '\0' || !std::isfinite(v) || v < 0) continue;
    out = static_cast<int64_t>(std::llround(v * u.ms));
    return true;
  }
  return false;
}

bool parse_bytes(const std::string& s, int64_t& out) {
  struct Unit {
    const char* suffix;
    int64_t mult;
  };
  static const Unit units[] = {
      {"KiB", 1LL << 10},    {"MiB", 1LL << 20},           {"GiB", 1LL << 30}, {"KB", 1000},
      {"MB", 1000LL * 1000}, {"GB", 1000LL * 1000 * 1000}, {"B", 1},           {"", 1}};
  for (const Unit& u : units) {
    size_t n = std::strlen(u.suffix);
    if (s.size() <= n || s.compare(s.size() - n, n, u.suffix) != 0) continue;
    std::string num = s.substr(0, s.size() - n);
    while (!num.empty() && num.back() == ' ')
      num.pop_back();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(num.c_str(), &end, 10);
    if (errno != 0 || end == num.c_str() || *end != '\0' || v < 0) continue;
    if (v > INT64_MAX / u.mult) return false;
    out = v * u.mult;
    return true;
  }
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

Section::Section(Diagnostics& diag, const YAML::Node& node, std::string path, YAML::Mark mark)
    : diag_(diag), node_(node), path_(std::move(path)), mark_(mark) {
  if (node_.IsDefined() && !node_.IsNull()) {
    mark_ = node_.Mark();
    if (node_.IsMap()) {
      is_map_ = true;
    } else {
      diag_.at(node_.Mark(), (path_.empty() ? std::string("the document") : path_) +
                                 " must be a mapping of key: value");
    }
  }
}

std::string Section::key_path(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

void Section::error(const char* key, const std::string& message) {
  if (key == nullptr || key[0] == '\0') {  // about the section itself
    diag_.at(mark_, path_ + ": " + message);
    return;
  }
  const YAML::Node& cn = node_;  // const access never inserts
  YAML::Node n = is_map_ ? YAML::Node(cn[key]) : YAML::Node(YAML::NodeType::Undefined);
  diag_.at(n.IsDefined() ? n.Mark() : mark_, key_path(key) + ": " + message);
}

bool Section::has(const char* key) const {
  if (!is_map_) return false;
  const YAML::Node& cn = node_;
  return cn[key].IsDefined();
}

YAML::Node Section::take(const char* key) {
  known_.insert(key);
  if (!is_map_) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node& cn = node_;  // const access never inserts
  YAML::Node n = cn[key];
  return n;
}

bool Section::scalar(const char* key, const YAML::Node& n, std::string& out) {
  if (!n.IsScalar()) {
    diag_.at(n.Mark(), key_path(key) + ": expected a single value, got a " +
                           (n.IsMap()        ? "mapping"
                            : n.IsSequence() ? "list"
                                             : "null"));
    return false;
  }
  std::string err;
  if (!expand_env(n.Scalar(), out, err)) {
    diag_.at(n.Mark(), key_path(key) + ": " + err);
    return false;
  }
  return true;
}

void Section::string(const char* key, std::string& out) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  if (n.IsNull()) {
    out.clear();
    return;
  }
  std::string v;
  if (scalar(key, n, v)) out = std::move(v);
}

void Section::non_empty_string(const char* key, std::string& out) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (n.IsNull() || (scalar(key, n, v) && v.empty())) {
    diag_.at(n.Mark(), key_path(key) + ": must not be empty");
    return;
  }
  if (!v.empty()) out = std::move(v);
}

void Section::integer(const char* key, int64_t& out, int64_t lo, int64_t hi) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || errno != 0 || *end != '\0') {
    diag_.at(n.Mark(), key_path(key) + ": expected an integer, got \"" + v + "\"");
    return;
  }
  if (x < lo || x > hi) {
    diag_.at(n.Mark(), key_path(key) + ": " + v + " is out of range [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
    return;
  }
  out = x;
}

void Section::integer(const char* key, int& out, int lo, int hi) {
  int64_t v = out;
  integer(key, v, lo, hi);
  out = static_cast<int>(v);
}

void Section::number(const char* key, double& out, double lo, double hi) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  char* end = nullptr;
  errno = 0;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || errno != 0 || *end != '\0' || !std::isfinite(x)) {
    diag_.at(n.Mark(), key_path(key) + ": expected a number, got \"" + v + "\"");
    return;
  }
  if (x < lo || x > hi) {
    std::ostringstream os;
    os << key_path(key) << ": " << v << " is out of range [" << lo << ", " << hi << "]";
    diag_.at(n.Mark(), os.str());
    return;
  }
  out = x;
}

void Section::boolean(const char* key, bool& out) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  if (v == "true" || v == "yes" || v == "on") {
    out = true;
  } else if (v == "false" || v == "no" || v == "off") {
    out = false;
  } else {
    diag_.at(n.Mark(), key_path(key) + ": expected true or false, got \"" + v + "\"");
  }
}

void Section::duration_ms(const char* key, int64_t& out, int64_t lo, int64_t hi) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  int64_t ms = 0;
  if (!parse_duration_ms(v, ms)) {
    diag_.at(n.Mark(), key_path(key) +
                           ": expected a duration such as 250ms, 10s, 5m or 1h, got \"" + v + "\"");
    return;
  }
  if (ms < lo || ms > hi) {
    diag_.at(n.Mark(), key_path(key) + ": " + v + " is out of range [" + std::to_string(lo) +
                           "ms, " + std::to_string(hi) + "ms]");
    return;
  }
  out = ms;
}

void Section::bytes(const char* key, int64_t& out, int64_t lo, int64_t hi) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  int64_t b = 0;
  if (!parse_bytes(v, b)) {
    diag_.at(n.Mark(),
             key_path(key) + ": expected a size such as 65536, 64KiB or 256MiB, got \"" + v + "\"");
    return;
  }
  if (b < lo || b > hi) {
    diag_.at(n.Mark(), key_path(key) + ": " + v + " is out of range [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "] bytes");
    return;
  }
  out = b;
}

void Section::choice(const char* key, std::string& out,
                     std::initializer_list<const char*> allowed) {
  YAML::Node n = take(key);
  if (!n.IsDefined()) return;
  std::string v;
  if (!scalar(key, n, v)) return;
  std::string list;
  for (const char* a : allowed) {
    if (v == a) {
      out = v;
      return;
    }
    list += list.empty() ? "" : ", ";
    list += a;
  }
  diag_.at(n.Mark(), key_path(key) + ": \"" + v + "\" is not one of " + list);
}

void Section::secret(const char* key, std::string& out) {
  std::string file_key = std::string(key) + "_file";
  YAML::Node inline_node = take(key);
  YAML::Node file_node = take(file_key.c_str());
  if (inline_node.IsDefined() && file_node.IsDefined()) {
    diag_.at(file_node.Mark(),
             key_path(key) + ": give either " + key + " or " + file_key + ", not both");
    return;
  }
  if (inline_node.IsDefined()) {
    string(key, out);
    return;
  }
  if (!file_node.IsDefined()) return;
  std::string path;
  if (!scalar(file_key.c_str(), file_node, path)) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diag_.at(file_node.Mark(),
             key_path(file_key.c_str()) + ": cannot read " + path + ": " + errno_text(errno));
    return;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string v = ss.str();
  if (!v.empty() && v.back() == '\n') v.pop_back();
  if (!v.empty() && v.back() == '\r') v.pop_back();
  out = std::move(v);
}

void Section::string_list(const char* key, std::vector<std::string>& out) {
  std::vector<YAML::Mark> marks;
  string_list(key, out, marks);
}

void Section::string_list(const char* key, std::vector<std::string>& out,
                          std::vector<YAML::Mark>& marks) {
  YAML::Node n = take(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence()) {
    diag_.at(n.Mark(), key_path(key) + ": expected a list");
    return;
  }
  std::vector<std::string> items;
  std::vector<YAML::Mark> at;
  for (const YAML::Node& item : n) {
    std::string v;
    if (scalar(key, item, v)) {
      items.push_back(std::move(v));
      at.push_back(item.Mark());
    }
  }
  out = std::move(items);
  marks = std::move(at);
}

void Section::error_at(const YAML::Mark& mark, const char* key, const std::string& message) {
  diag_.at(mark, key_path(key) + ": " + message);
}

Section Section::section(const char* key) {
  YAML::Node n = take(key);
  return Section(diag_, n, key_path(key), n.IsDefined() ? n.Mark() : mark_);
}

void Section::each_entry(const char* key,
                         const std::function<void(const std::string&, Section&)>& fn) {
  each_entry_or_word(key, [&](const std::string& name, const std::string& word, Section& s) {
    if (!word.empty()) {
      s.error("", "expected a mapping of settings, got \"" + word + "\"");
      return;
    }
    fn(name, s);
  });
}

void Section::each_entry_or_word(
    const char* key,
    const std::function<void(const std::string&, const std::string&, Section&)>& fn) {
  YAML::Node n = take(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    diag_.at(n.Mark(), key_path(key) + " must be a mapping of name: settings");
    return;
  }
  for (const auto& kv : n) {
    std::string name = kv.first.Scalar();
    std::string word;
    YAML::Node value = kv.second;
    if (value.IsScalar()) {
      std::string err;
      if (!expand_env(value.Scalar(), word, err))
        diag_.at(value.Mark(), key_path(key) + "." + name + ": " + err);
      value = YAML::Node(YAML::NodeType::Null);
    }
    Section s(diag_, value, key_path(key) + "." + name, kv.first.Mark());
    fn(name, word, s);
    s.finish();
  }
}

void Section::each_item(const char* key, const std::function<void(size_t, Section&)>& fn) {
  YAML::Node n = take(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence()) {
    diag_.at(n.Mark(), key_path(key) + " must be a list of mappings");
    return;
  }
  size_t i = 0;
  for (const YAML::Node& item : n) {
    std::string name = key_path(key) + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) {
      diag_.at(item.Mark(), name + " must be a mapping of key: value");
    } else {
      Section s(diag_, item, name, item.Mark());
      fn(i, s);
      s.finish();
    }
    ++i;
  }
}

void Section::finish() {
  if (!is_map_) return;
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (!seen.insert(k).second) {
      // yaml-cpp keeps one of the two silently; a typo'd copy-paste should not go unnoticed.
      diag_.at(kv.first.Mark(),
               "duplicate key \"" + k + "\"" + (path_.empty() ? "" : " in " + path_));
      continue;
    }
    if (known_.count(k)) continue;
    std::string best;
    size_t best_d = SIZE_MAX;
    for (const std::string& cand : known_) {
      size_t d = edit_distance(k, cand);
      if (d < best_d) {
        best_d = d;
        best = cand;
      }
    }
    std::string msg = "unknown key \"" + k + "\"" + (path_.empty() ? "" : " in " + path_);
    if (!best.empty() && best_d <= std::max<size_t>(2, k.size() / 3)) {
      msg += " (did you mean \"" + best + "\"?)";
    }
    diag_.at(kv.first.Mark(), msg);
  }
}

}  // namespace zonegate::config
