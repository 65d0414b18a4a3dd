// Scopes and the effective filter; see scope.hpp.
#include "core/scope.hpp"

#include <algorithm>

namespace zonegate::core {

namespace {

// Sorts intervals and drops those nested in an earlier one. Subtree intervals are either nested
// or disjoint, so this is their union.
std::vector<Interval> normalize(std::vector<Interval> iv) {
  std::sort(iv.begin(), iv.end(), [](const Interval& a, const Interval& b) {
    return a.lo < b.lo || (a.lo == b.lo && a.hi > b.hi);
  });
  std::vector<Interval> out;
  out.reserve(iv.size());
  for (const Interval& i : iv) {
    if (!out.empty() && i.lo < out.back().hi) {
      out.back().hi = std::max(out.back().hi, i.hi);
      continue;
    }
    out.push_back(i);
  }
  return out;
}

}  // namespace

Scope Scope::from_intervals(std::vector<Interval> iv) {
  Scope s;
  s.intervals_ = normalize(std::move(iv));
  s.intervals_.shrink_to_fit();
  for (const Interval& i : s.intervals_)
    s.count_ += static_cast<size_t>(i.hi - i.lo);
  return s;
}

Scope Scope::everything(const ZoneTree& tree) {
  Scope s;
  if (tree.size() > 0) s.intervals_.push_back({0, static_cast<Pos>(tree.size())});
  s.count_ = tree.size();
  s.all_ = true;
  return s;
}

Scope Scope::from_grants(const ZoneTree& tree, const std::vector<int64_t>& zone_ids) {
  std::vector<Interval> iv;
  iv.reserve(zone_ids.size());
  for (int64_t id : zone_ids) {
    Pos p = tree.find(id);
    if (p != kNoPos) iv.push_back({p, tree.end(p)});
  }
  return from_intervals(std::move(iv));
}

std::vector<int64_t> ids_in(const ZoneTree& tree, const std::vector<Interval>& intervals) {
  size_t n = 0;
  for (const Interval& i : intervals) {
    if (!tree.holds(i.lo, i.hi)) {
      throw Error(sqlstate::kInternalError,
                  "zone range [" + std::to_string(i.lo) + ", " + std::to_string(i.hi) +
                      ") is outside the zone tree (" + std::to_string(tree.size()) + " zones)");
    }
    n += static_cast<size_t>(i.hi - i.lo);
  }
  if (n == tree.size() && n > 0) return tree.all_ids_sorted();
  std::vector<int64_t> out;
  out.reserve(n);
  for (const Interval& i : intervals) {
    for (Pos p = i.lo; p < i.hi; ++p)
      out.push_back(tree.id(p));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> Scope::sorted_ids(const ZoneTree& tree) const {
  return ids_in(tree, intervals_);
}

std::vector<int64_t> filter_zones(const ZoneTree& tree, const Scope& scope,
                                  const std::vector<int64_t>& requested, bool request_all) {
  if (request_all) return scope.sorted_ids(tree);
  std::vector<Interval> req;
  req.reserve(requested.size());
  for (int64_t id : requested) {
    Pos p = tree.find(id);
    if (p != kNoPos) req.push_back({p, tree.end(p)});
  }
  req = normalize(std::move(req));
  // Intersect two sorted disjoint interval lists.
  const std::vector<Interval>& have = scope.intervals();
  std::vector<Interval> both;
  size_t i = 0, j = 0;
  while (i < req.size() && j < have.size()) {
    Pos lo = std::max(req[i].lo, have[j].lo);
    Pos hi = std::min(req[i].hi, have[j].hi);
    if (lo < hi) both.push_back({lo, hi});
    if (req[i].hi < have[j].hi)
      ++i;
    else
      ++j;
  }
  return ids_in(tree, both);
}

}  // namespace zonegate::core
