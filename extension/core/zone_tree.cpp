// Building the pre-order zone tree; see zone_tree.hpp.
#include "core/zone_tree.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "core/error.hpp"

namespace zonegate::core {

void IdIndex::reset(size_t expected) {
  size_t cap = 16;
  while (cap < expected + expected / 2 + 1)
    cap <<= 1;  // load factor <= 2/3
  slots_.assign(cap, Slot{0, kNoPos});
}

bool IdIndex::insert(int64_t id, Pos pos) {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash(id) & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.pos == kNoPos) {
      s = Slot{id, pos};
      return true;
    }
    if (s.id == id) return false;
  }
}

void IdIndex::remap(const std::vector<Pos>& map) {
  for (Slot& s : slots_) {
    if (s.pos != kNoPos) s.pos = map[static_cast<size_t>(s.pos)];
  }
}

namespace {

constexpr size_t kMaxStringBytes = std::numeric_limits<uint16_t>::max();

std::string cycle_message(const std::vector<ZoneInput>& rows, const IdIndex& by_input,
                          size_t start) {
  // Walk parent links from a zone no root reaches; the walk must revisit a zone.
  std::unordered_map<size_t, size_t> seen;
  std::vector<size_t> order;
  size_t cur = start;
  while (seen.find(cur) == seen.end()) {
    seen[cur] = order.size();
    order.push_back(cur);
    cur = static_cast<size_t>(by_input.find(rows[cur].parent_id));
  }
  std::string msg = "zone parent_id links form a cycle: ";
  for (size_t i = seen[cur]; i < order.size(); ++i)
    msg += std::to_string(rows[order[i]].id) + " -> ";
  msg += std::to_string(rows[cur].id);
  return msg;
}

// Row indices in id order. Rows usually come almost in id order (loaded in order, a few out of
// place, updated rows at the end of the table), and on such input std::sort's pivots degrade
// into its heapsort fallback: a build of the Indonesian tree took 50% longer after one update
// (core_bench BM_TreeBuildOrder). Input of a few ascending runs is merged run by run instead, in
// linear time per merge pass; anything more disordered goes to std::sort.
std::vector<size_t> rows_by_id(const std::vector<ZoneInput>& rows) {
  constexpr size_t kMaxRuns = 64;
  const size_t n = rows.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  auto id_less = [&](size_t a, size_t b) { return rows[a].id < rows[b].id; };
  std::vector<size_t> bounds{0};  // where each ascending run starts, then n
  for (size_t i = 1; i < n; ++i) {
    if (rows[i].id >= rows[i - 1].id) continue;
    bounds.push_back(i);
    if (bounds.size() > kMaxRuns) {
      std::sort(idx.begin(), idx.end(), id_less);
      return idx;
    }
  }
  bounds.push_back(n);
  while (bounds.size() > 2) {  // merge neighbouring runs pairwise until one is left
    std::vector<size_t> merged{0};
    size_t r = 0;
    for (; r + 2 < bounds.size(); r += 2) {
      std::inplace_merge(idx.begin() + static_cast<std::ptrdiff_t>(bounds[r]),
                         idx.begin() + static_cast<std::ptrdiff_t>(bounds[r + 1]),
                         idx.begin() + static_cast<std::ptrdiff_t>(bounds[r + 2]), id_less);
      merged.push_back(bounds[r + 2]);
    }
    if (r + 1 < bounds.size()) merged.push_back(bounds.back());  // an odd run out: kept as is
    bounds.swap(merged);
  }
  return idx;
}

}  // namespace

std::shared_ptr<const ZoneTree> ZoneTree::build(const std::vector<ZoneInput>& rows) {
  const size_t n = rows.size();
  if (n >= static_cast<size_t>(std::numeric_limits<Pos>::max())) {
    throw Error(sqlstate::kDataException, "too many zones: " + std::to_string(n));
  }
  auto tree = std::make_shared<ZoneTree>();
  ZoneTree& t = *tree;

  // Index input rows by id (positions are input indices until the DFS renumbers them).
  t.index_.reset(n);
  for (size_t i = 0; i < n; ++i) {
    if (!t.index_.insert(rows[i].id, static_cast<Pos>(i))) {
      throw Error(sqlstate::kDataException, "duplicate zone id " + std::to_string(rows[i].id));
    }
  }

  // Children in CSR form, each list in id order.
  std::vector<size_t> by_id = rows_by_id(rows);

  std::vector<uint32_t> child_start(n + 1, 0);
  std::vector<Pos> parent_input(n, kNoPos);
  for (size_t i = 0; i < n; ++i) {
    if (!rows[i].has_parent) continue;
    Pos p = t.index_.find(rows[i].parent_id);
    if (p == kNoPos) {
      throw Error(sqlstate::kForeignKeyViolation,
                  "zone " + std::to_string(rows[i].id) + " has parent_id " +
                      std::to_string(rows[i].parent_id) + ", which is not a zone");
    }
    parent_input[i] = p;
    ++child_start[static_cast<size_t>(p) + 1];
  }
  std::partial_sum(child_start.begin(), child_start.end(), child_start.begin());
  std::vector<uint32_t> fill(child_start.begin(), child_start.end() - 1);
  std::vector<uint32_t> children(n);
  for (size_t i : by_id) {
    if (parent_input[i] != kNoPos) children[fill[static_cast<size_t>(parent_input[i])]++] = i;
  }

  // Iterative pre-order DFS from the roots (in id order).
  std::vector<Pos> pos_of(n, kNoPos);
  std::vector<size_t> order;  // order[pos] = input index
  order.reserve(n);
  std::vector<std::pair<size_t, uint32_t>> stack;  // (input index, next child offset)
  t.end_.assign(n, 0);
  t.depth_.assign(n, 0);
  for (size_t r : by_id) {
    if (rows[r].has_parent) continue;
    t.roots_.push_back(static_cast<Pos>(order.size()));
    pos_of[r] = static_cast<Pos>(order.size());
    order.push_back(r);
    stack.emplace_back(r, child_start[r]);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < child_start[node + 1]) {
        size_t c = children[next++];
        size_t d = stack.size();
        if (d > std::numeric_limits<uint16_t>::max()) {
          throw Error(sqlstate::kDataException, "zone tree deeper than 65535 levels");
        }
        pos_of[c] = static_cast<Pos>(order.size());
        t.depth_[order.size()] = static_cast<uint16_t>(d);
        order.push_back(c);
        stack.emplace_back(c, child_start[c]);
      } else {
        t.end_[pos_of[node]] = static_cast<Pos>(order.size());
        stack.pop_back();
      }
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (pos_of[i] == kNoPos)
        throw Error(sqlstate::kCheckViolation, cycle_message(rows, t.index_, i));
    }
  }

  // Per-position attributes.
  t.ids_.resize(n);
  t.parent_.resize(n);
  t.level_.resize(n);
  t.str_off_.resize(n);
  t.code_len_.resize(n);
  t.name_len_.resize(n);
  size_t arena_bytes = 0;
  for (const ZoneInput& r : rows)
    arena_bytes += r.code.size() + r.name.size();
  t.arena_.reserve(arena_bytes);
  std::unordered_map<std::string_view, uint16_t> level_ids;
  uint16_t last_level = 0;
  for (size_t pos = 0; pos < n; ++pos) {
    const ZoneInput& r = rows[order[pos]];
    t.ids_[pos] = r.id;
    t.parent_[pos] = r.has_parent ? pos_of[static_cast<size_t>(parent_input[order[pos]])] : kNoPos;
    if (r.code.size() > kMaxStringBytes || r.name.size() > kMaxStringBytes) {
      throw Error(sqlstate::kDataException,
                  "zone " + std::to_string(r.id) + ": code or name longer than 65535 bytes");
    }
    if (t.arena_.size() > std::numeric_limits<uint32_t>::max() - 2 * kMaxStringBytes) {
      throw Error(sqlstate::kDataException, "zone codes and names exceed 4 GiB");
    }
    t.str_off_[pos] = static_cast<uint32_t>(t.arena_.size());
    t.code_len_[pos] = static_cast<uint16_t>(r.code.size());
    t.name_len_[pos] = static_cast<uint16_t>(r.name.size());
    t.arena_.append(r.code);
    t.arena_.append(r.name);
    // Levels are few: try the previous one, then the map.
    if (pos > 0 && t.levels_[last_level] == r.level) {
      t.level_[pos] = last_level;
      continue;
    }
    auto it = level_ids.find(r.level);
    if (it == level_ids.end()) {
      if (t.levels_.size() >= std::numeric_limits<uint16_t>::max()) {
        throw Error(sqlstate::kDataException, "more than 65535 distinct zone levels");
      }
      t.levels_.emplace_back(r.level);
      it = level_ids.emplace(r.level, static_cast<uint16_t>(t.levels_.size() - 1)).first;
    }
    t.level_[pos] = it->second;
    last_level = it->second;
  }
  t.index_.remap(pos_of);
  return tree;
}

Pos ZoneTree::root_of(Pos p) const {
  checked(p);
  while (parent_[p] != kNoPos)
    p = parent_[p];
  return p;
}

std::vector<int64_t> ZoneTree::path(Pos p) const {
  checked(p);
  std::vector<int64_t> out;
  for (Pos cur = p; cur != kNoPos; cur = parent_[cur])
    out.push_back(ids_[cur]);
  std::reverse(out.begin(), out.end());
  return out;
}

const std::vector<int64_t>& ZoneTree::all_ids_sorted() const {
  if (all_ids_sorted_.size() != ids_.size()) {
    all_ids_sorted_ = ids_;
    std::sort(all_ids_sorted_.begin(), all_ids_sorted_.end());
  }
  return all_ids_sorted_;
}

size_t ZoneTree::memory_bytes() const {
  size_t levels = 0;
  for (const std::string& l : levels_)
    levels += sizeof(std::string) + l.capacity();
  return sizeof(ZoneTree) + ids_.capacity() * 8 + parent_.capacity() * 4 + end_.capacity() * 4 +
         depth_.capacity() * 2 + level_.capacity() * 2 + str_off_.capacity() * 4 +
         code_len_.capacity() * 2 + name_len_.capacity() * 2 + arena_.capacity() + levels +
         roots_.capacity() * 4 + index_.memory_bytes() + all_ids_sorted_.capacity() * 8;
}

}  // namespace zonegate::core
