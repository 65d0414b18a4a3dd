// The zone forest compiled for fast access checks: zones are numbered in pre-order, so a zone's
// subtree is the contiguous range [pos, end(pos)) and "is Z under G" is two comparisons.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace zonegate::core {

// Pre-order position of a zone in a compiled tree.
using Pos = int32_t;
inline constexpr Pos kNoPos = -1;

// One zones row as the builder reads it; the strings only need to live during build().
struct ZoneInput {
  int64_t id = 0;
  int64_t parent_id = 0;
  bool has_parent = false;
  std::string_view code;
  std::string_view name;
  std::string_view level;
};

// Open-addressing map from zone id to position: O(1) lookups without allocation.
class IdIndex {
 public:
  void reset(size_t expected);
  // Inserts id; returns false if it was already present.
  bool insert(int64_t id, Pos pos);
  Pos find(int64_t id) const {
    if (slots_.empty()) return kNoPos;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(id) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.pos == kNoPos) return kNoPos;
      if (s.id == id) return s.pos;
    }
  }
  // Rewrites every stored position through map (old position -> new position).
  void remap(const std::vector<Pos>& map);
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  // Key and position in one slot: a random lookup touches one cache line, not two arrays.
  struct Slot {
    int64_t id;
    Pos pos;
  };
  static size_t hash(int64_t id) {
    // splitmix64 finalizer: ids are often dense or patterned; this spreads them.
    uint64_t x = static_cast<uint64_t>(id) + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<size_t>(x ^ (x >> 31));
  }
  std::vector<Slot> slots_;
};

class ZoneTree {
 public:
  // Compiles a forest. Children are ordered by id, roots too, so positions are deterministic.
  // Throws zonegate::Error on a duplicate id, a parent that is not a zone, or a cycle.
  static std::shared_ptr<const ZoneTree> build(const std::vector<ZoneInput>& rows);

  size_t size() const { return ids_.size(); }
  Pos find(int64_t id) const { return index_.find(id); }
  // Accessors by position check it: a position from another tree (a scope built against an
  // older generation) is an error, never a read past the end.
  int64_t id(Pos p) const { return ids_[checked(p)]; }
  Pos parent(Pos p) const { return parent_[checked(p)]; }
  // One past the last descendant of p.
  Pos end(Pos p) const { return end_[checked(p)]; }
  int depth(Pos p) const { return depth_[checked(p)]; }
  bool is_under(Pos z, Pos g) const { return g <= z && z < end_[checked(g)]; }
  std::string_view code(Pos p) const {
    size_t i = checked(p);
    return {arena_.data() + str_off_[i], code_len_[i]};
  }
  std::string_view name(Pos p) const {
    size_t i = checked(p);
    return {arena_.data() + str_off_[i] + code_len_[i], name_len_[i]};
  }
  std::string_view level(Pos p) const { return levels_[level_[checked(p)]]; }
  // Whether [lo, hi) is a range of positions of this tree.
  bool holds(Pos lo, Pos hi) const {
    return lo >= 0 && lo <= hi && static_cast<size_t>(hi) <= ids_.size();
  }
  const std::vector<Pos>& roots() const { return roots_; }
  Pos root_of(Pos p) const;
  // Zone ids from the root down to p.
  std::vector<int64_t> path(Pos p) const;
  // Every zone id, ascending (for sees_all users); computed once per tree.
  const std::vector<int64_t>& all_ids_sorted() const;
  size_t memory_bytes() const;

 private:
  size_t checked(Pos p) const {
    if (p < 0 || static_cast<size_t>(p) >= ids_.size()) {
      throw Error(sqlstate::kInternalError, "zone position " + std::to_string(p) +
                                                " is outside the zone tree (" +
                                                std::to_string(ids_.size()) + " zones)");
    }
    return static_cast<size_t>(p);
  }
  std::vector<int64_t> ids_;
  std::vector<Pos> parent_;
  std::vector<Pos> end_;
  std::vector<uint16_t> depth_;
  std::vector<uint16_t> level_;
  std::vector<uint32_t> str_off_;
  std::vector<uint16_t> code_len_;
  std::vector<uint16_t> name_len_;
  std::vector<std::string> levels_;
  std::string arena_;
  std::vector<Pos> roots_;
  IdIndex index_;
  mutable std::vector<int64_t> all_ids_sorted_;
};

}  // namespace zonegate::core
