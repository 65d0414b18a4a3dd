// Prometheus text writing; see metrics_text.hpp.
#include "common/metrics_text.hpp"

#include <charconv>
#include <cmath>

namespace zonegate::metrics {

std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

void Text::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
  out_.append(name).append(" ").append(type).append("\n");
}

void Text::sample(std::string_view name, std::string_view labels, std::string_view value) {
  out_.append(name);
  if (!labels.empty()) out_.append("{").append(labels).append("}");
  out_.append(" ").append(value).append("\n");
}

void Text::sample(std::string_view name, std::string_view labels, int64_t value) {
  sample(name, labels, std::to_string(value));
}

void Text::sample_double(std::string_view name, std::string_view labels, double value) {
  sample(name, labels, number_text(value));
}

void Text::single(std::string_view name, std::string_view type, std::string_view help,
                  int64_t value) {
  family(name, type, help);
  sample(name, "", value);
}

void Text::single_double(std::string_view name, std::string_view type, std::string_view help,
                         double value) {
  family(name, type, help);
  sample_double(name, "", value);
}

}  // namespace zonegate::metrics
