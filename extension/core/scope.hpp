// A user's scope: the zones they may see, as sorted disjoint pre-order intervals (one interval
// per top-most grant). Membership is a binary search over the intervals, with no allocation; a
// sees_all scope is a single interval over the whole tree, so it costs nothing extra.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/zone_tree.hpp"

namespace zonegate::core {

struct Interval {
  Pos lo;  // first position
  Pos hi;  // one past the last
};

class Scope {
 public:
  Scope() = default;
  // Everything in the tree (roles with sees_all).
  static Scope everything(const ZoneTree& tree);
  // The union of the subtrees of the granted zones; ids that are not zones are ignored.
  static Scope from_grants(const ZoneTree& tree, const std::vector<int64_t>& zone_ids);

  bool all() const { return all_; }
  bool contains(Pos p) const {
    if (p < 0 || intervals_.empty()) return false;
    // The last interval starting at or before p is the only one that can hold it.
    size_t lo = 0, hi = intervals_.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (intervals_[mid].lo <= p)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo > 0 && p < intervals_[lo - 1].hi;
  }
  bool contains_id(const ZoneTree& tree, int64_t id) const { return contains(tree.find(id)); }
  size_t count() const { return count_; }
  const std::vector<Interval>& intervals() const { return intervals_; }
  // Ids of every zone in scope, ascending.
  std::vector<int64_t> sorted_ids(const ZoneTree& tree) const;
  size_t memory_bytes() const { return sizeof(Scope) + intervals_.capacity() * sizeof(Interval); }

 private:
  static Scope from_intervals(std::vector<Interval> iv);
  std::vector<Interval> intervals_;
  size_t count_ = 0;
  bool all_ = false;
};

// The effective filter of a request: each requested zone expanded to its subtree, intersected
// with the scope, as ascending ids. An absent request (request_all) means everything in scope.
// Requested ids that are not zones select nothing.
std::vector<int64_t> filter_zones(const ZoneTree& tree, const Scope& scope,
                                  const std::vector<int64_t>& requested, bool request_all);

// Ids of the zones in the given positions' intervals, ascending.
std::vector<int64_t> ids_in(const ZoneTree& tree, const std::vector<Interval>& intervals);

}  // namespace zonegate::core
