// The Prometheus text format (0.0.4) as components write it: each component that has figures
// implements metrics::Source and describes them itself (pgbouncer's stats.c, Envoy's per-filter
// stats prefixes); the registry renders every source it was given, gathering nothing by hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zonegate::metrics {

// Escapes a label value (backslash, double quote, newline).
std::string label_value(std::string_view v);
// Shortest text that reads back as the same double ("0.00025"), +Inf/-Inf/NaN as Prometheus.
std::string number_text(double v);

class Text {
 public:
  // The HELP and TYPE lines of a family; its samples follow.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample; `labels` is `a="x",b="y"` (values escaped by the caller) or empty.
  void sample(std::string_view name, std::string_view labels, std::string_view value);
  void sample(std::string_view name, std::string_view labels, int64_t value);
  void sample_double(std::string_view name, std::string_view labels, double value);
  // A family of one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, int64_t value);
  void single_double(std::string_view name, std::string_view type, std::string_view help,
                     double value);
  std::string& out() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Source {
 public:
  virtual ~Source() = default;
  // Appends this component's metric families.
  virtual void describe_metrics(Text& out) const = 0;
};

}  // namespace zonegate::metrics
