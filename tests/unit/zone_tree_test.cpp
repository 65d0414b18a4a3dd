// The compiled zone forest, scopes and the effective filter: exact cases, error messages, and
// property tests against a brute-force model (parent-pointer walks) on random forests of several
// shapes: deep chains, wide fans, many roots, random ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

#include "core/error.hpp"
#include "core/scope.hpp"
#include "core/zone_tree.hpp"

using namespace zonegate::core;

namespace {

// Zones built from (id, parent or 0 for none) pairs; code "c<id>", name "n<id>", level by depth.
struct Forest {
  Forest() = default;
  explicit Forest(std::vector<std::pair<int64_t, int64_t>> e) : edges(std::move(e)) {}
  std::vector<std::pair<int64_t, int64_t>> edges;  // id, parent (0 = root)
  std::vector<std::string> strings;                // keeps the views alive
  std::vector<ZoneInput> inputs() {
    strings.clear();
    strings.reserve(edges.size() * 2);
    std::vector<ZoneInput> out;
    for (auto [id, parent] : edges) {
      strings.push_back("c" + std::to_string(id));
      strings.push_back("n" + std::to_string(id));
      ZoneInput z;
      z.id = id;
      z.parent_id = parent;
      z.has_parent = parent != 0;
      z.code = strings[strings.size() - 2];
      z.name = strings.back();
      z.level = parent == 0 ? "root" : "child";
      out.push_back(z);
    }
    return out;
  }
};

std::string build_error(Forest f) {
  try {
    ZoneTree::build(f.inputs());
  } catch (const zonegate::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Brute force: is z equal to or below g, by walking parent pointers.
bool under(const std::map<int64_t, int64_t>& parent, int64_t z, int64_t g) {
  for (int64_t cur = z; cur != 0; cur = parent.at(cur)) {
    if (cur == g) return true;
  }
  return false;
}

enum class Shape { kRandom, kChain, kFan, kManyRoots };

Forest random_forest(std::mt19937_64& rng, Shape shape, size_t n) {
  // Distinct random ids, some negative, so nothing depends on ids being dense or ordered.
  std::set<int64_t> idset;
  std::uniform_int_distribution<int64_t> idd(-1'000'000, 1'000'000);
  while (idset.size() < n) {
    int64_t v = idd(rng);
    if (v != 0) idset.insert(v);
  }
  std::vector<int64_t> ids(idset.begin(), idset.end());
  std::shuffle(ids.begin(), ids.end(), rng);
  Forest f;
  for (size_t i = 0; i < n; ++i) {
    int64_t parent = 0;
    if (i > 0) {
      switch (shape) {
        case Shape::kChain:
          parent = ids[i - 1];
          break;
        case Shape::kFan:
          parent = ids[0];
          break;
        case Shape::kManyRoots:
          parent = (rng() % 3 == 0) ? 0 : ids[rng() % i];
          break;
        case Shape::kRandom:
          parent = (rng() % 20 == 0) ? 0 : ids[rng() % i];
          break;
      }
    }
    f.edges.emplace_back(ids[i], parent);
  }
  std::shuffle(f.edges.begin(), f.edges.end(), rng);  // input order must not matter
  return f;
}

}  // namespace

TEST(ZoneTree, PreOrderPositionsAndSubtreeRanges) {
  Forest f{{{10, 0}, {20, 10}, {30, 10}, {21, 20}, {22, 20}, {5, 0}, {31, 30}}};
  auto t = ZoneTree::build(f.inputs());
  ASSERT_EQ(t->size(), 7u);
  // Roots in id order (5, 10), children in id order: 5 | 10 20 21 22 30 31
  std::vector<int64_t> ids;
  ids.reserve(t->size());
  for (Pos p = 0; p < static_cast<Pos>(t->size()); ++p)
    ids.push_back(t->id(p));
  EXPECT_EQ(ids, (std::vector<int64_t>{5, 10, 20, 21, 22, 30, 31}));
  Pos p10 = t->find(10), p20 = t->find(20), p31 = t->find(31);
  EXPECT_EQ(t->end(p10), 7);
  EXPECT_EQ(t->end(p20), p20 + 3);
  EXPECT_TRUE(t->is_under(p31, p10));
  EXPECT_FALSE(t->is_under(p31, p20));
  EXPECT_EQ(t->find(999), kNoPos);
  EXPECT_EQ(t->depth(p31), 2);
  EXPECT_EQ(t->path(p31), (std::vector<int64_t>{10, 30, 31}));
  EXPECT_EQ(t->root_of(p31), p10);
  EXPECT_EQ(t->code(p31), "c31");
  EXPECT_EQ(t->name(p31), "n31");
  EXPECT_EQ(t->level(p31), "child");
  EXPECT_EQ(t->roots(), (std::vector<Pos>{t->find(5), p10}));
  EXPECT_EQ(t->all_ids_sorted(), (std::vector<int64_t>{5, 10, 20, 21, 22, 30, 31}));
}

TEST(ZoneTree, EmptyForest) {
  auto t = ZoneTree::build({});
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(t->find(1), kNoPos);
  Scope s = Scope::everything(*t);
  EXPECT_EQ(s.count(), 0u);
  EXPECT_FALSE(s.contains(0));
}

TEST(ZoneTree, BuildErrors) {
  EXPECT_EQ(build_error(Forest{{{1, 0}, {1, 0}}}), "duplicate zone id 1");
  EXPECT_EQ(build_error(Forest{{{1, 0}, {2, 7}}}), "zone 2 has parent_id 7, which is not a zone");
  EXPECT_EQ(build_error(Forest{{{1, 1}}}), "zone parent_id links form a cycle: 1 -> 1");
  EXPECT_EQ(build_error(Forest{{{1, 0}, {2, 3}, {3, 4}, {4, 2}, {5, 4}}}),
            "zone parent_id links form a cycle: 2 -> 3 -> 4 -> 2");
}

TEST(ZoneTree, InputOrderDoesNotChangePositions) {
  std::mt19937_64 rng(7);
  Forest f = random_forest(rng, Shape::kRandom, 300);
  auto a = ZoneTree::build(f.inputs());
  std::shuffle(f.edges.begin(), f.edges.end(), rng);
  auto b = ZoneTree::build(f.inputs());
  for (Pos p = 0; p < static_cast<Pos>(a->size()); ++p)
    ASSERT_EQ(a->id(p), b->id(p));
}

// The orders a table returns rows in: sorted by id, sorted with updated rows moved to the end,
// a few sorted runs (merged by the builder), just past the builder's limit of 64 runs, reversed.
TEST(ZoneTree, PositionsAreTheSameForEveryRowOrder) {
  std::mt19937_64 rng(11);
  Forest f = random_forest(rng, Shape::kRandom, 2000);
  std::sort(f.edges.begin(), f.edges.end());
  auto reference = ZoneTree::build(f.inputs());
  auto expect_same = [&](const std::string& order) {
    auto t = ZoneTree::build(f.inputs());
    ASSERT_EQ(t->size(), reference->size()) << order;
    for (Pos p = 0; p < static_cast<Pos>(t->size()); ++p) {
      ASSERT_EQ(t->id(p), reference->id(p)) << order << " at " << p;
      ASSERT_EQ(t->end(p), reference->end(p)) << order << " at " << p;
    }
  };
  auto sorted = f.edges;
  std::rotate(f.edges.begin(), f.edges.begin() + 3, f.edges.end());
  expect_same("three updated rows at the end");
  for (size_t runs : {2, 3, 7, 64, 65, 300}) {
    f.edges = sorted;
    size_t len = f.edges.size() / runs;
    std::vector<std::vector<std::pair<int64_t, int64_t>>> chunks;
    for (size_t r = 0; r < runs; ++r) {
      auto b = f.edges.begin() + static_cast<std::ptrdiff_t>(r * len);
      auto e = r + 1 == runs ? f.edges.end() : b + static_cast<std::ptrdiff_t>(len);
      chunks.emplace_back(b, e);
    }
    std::reverse(chunks.begin(), chunks.end());  // every chunk starts below its predecessor
    f.edges.clear();
    for (auto& c : chunks)
      f.edges.insert(f.edges.end(), c.begin(), c.end());
    expect_same(std::to_string(runs) + " ascending runs");
  }
  f.edges = sorted;
  std::reverse(f.edges.begin(), f.edges.end());
  expect_same("reversed");
}

TEST(ZoneTree, DeepChainDoesNotRecurse) {
  Forest f;
  for (int64_t i = 1; i <= 60000; ++i)
    f.edges.emplace_back(i, i - 1);
  auto t = ZoneTree::build(f.inputs());
  EXPECT_EQ(t->depth(t->find(60000)), 59999);
  EXPECT_EQ(t->end(t->find(1)), 60000);
}

TEST(Scope, GrantsMergeNestedAndIgnoreUnknown) {
  Forest f{{{10, 0}, {20, 10}, {30, 10}, {21, 20}, {22, 20}, {5, 0}, {31, 30}}};
  auto t = ZoneTree::build(f.inputs());
  Scope s = Scope::from_grants(*t, {21, 20, 5, 424242, 20});
  EXPECT_EQ(s.intervals().size(), 2u);  // {5} and {20, 21, 22}
  EXPECT_EQ(s.count(), 4u);
  EXPECT_EQ(s.sorted_ids(*t), (std::vector<int64_t>{5, 20, 21, 22}));
  EXPECT_TRUE(s.contains_id(*t, 22));
  EXPECT_FALSE(s.contains_id(*t, 10));
  EXPECT_FALSE(s.contains_id(*t, 424242));
  EXPECT_FALSE(s.all());
  Scope all = Scope::everything(*t);
  EXPECT_TRUE(all.all());
  EXPECT_EQ(all.count(), 7u);
  EXPECT_EQ(all.intervals().size(), 1u);
  Scope none = Scope::from_grants(*t, {});
  EXPECT_EQ(none.count(), 0u);
  EXPECT_FALSE(none.contains(0));
}

// A scope built against a bigger tree, applied to a smaller one (a rebuilt generation): reading
// its positions is an error, never a read past the end; the tree it was built for still works.
TEST(Scope, PositionsFromAnotherTreeAreRefused) {
  Forest big{{{1, 0}, {2, 1}, {3, 1}, {4, 3}, {5, 0}}};
  Forest small{{{1, 0}, {2, 1}}};
  auto t_big = ZoneTree::build(big.inputs());
  auto t_small = ZoneTree::build(small.inputs());
  Scope s = Scope::from_grants(*t_big, {3, 5});
  EXPECT_EQ(s.sorted_ids(*t_big), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_THROW(s.sorted_ids(*t_small), zonegate::Error);
  EXPECT_THROW(filter_zones(*t_small, s, {}, true), zonegate::Error);
  EXPECT_THROW(t_small->id(2), zonegate::Error);
  EXPECT_THROW(t_small->id(-1), zonegate::Error);
  EXPECT_THROW(t_small->path(7), zonegate::Error);
  EXPECT_THROW(t_small->end(2), zonegate::Error);
  EXPECT_EQ(t_small->id(1), 2);
  try {
    t_small->name(9);
    FAIL() << "position 9 read";
  } catch (const zonegate::Error& e) {
    EXPECT_STREQ(e.sqlstate(), "XX000");
    EXPECT_EQ(std::string(e.what()), "zone position 9 is outside the zone tree (2 zones)");
  }
}

// The region filter story: pick region A, then B, then A and B.
TEST(Filter, RegionStory) {
  // Two provinces (1, 2), regencies 11, 12 under 1 and 21 under 2, districts below.
  Forest f{{{1, 0}, {2, 0}, {11, 1}, {12, 1}, {21, 2}, {111, 11}, {121, 12}, {211, 21}, {212, 21}}};
  auto t = ZoneTree::build(f.inputs());
  Scope user = Scope::from_grants(*t, {11, 21});  // one regency in each province
  using V = std::vector<int64_t>;
  EXPECT_EQ(filter_zones(*t, user, {1}, false), (V{11, 111}));
  EXPECT_EQ(filter_zones(*t, user, {2}, false), (V{21, 211, 212}));
  EXPECT_EQ(filter_zones(*t, user, {1, 2}, false), (V{11, 21, 111, 211, 212}));
  EXPECT_EQ(filter_zones(*t, user, {}, true), (V{11, 21, 111, 211, 212}));
  EXPECT_EQ(filter_zones(*t, user, {12}, false), V{});           // outside the scope
  EXPECT_EQ(filter_zones(*t, user, {211, 999}, false), V{211});  // unknown id selects nothing
  EXPECT_EQ(filter_zones(*t, user, {}, false), V{});             // an empty request selects nothing
}

class Property : public ::testing::TestWithParam<Shape> {};

TEST_P(Property, ScopeAndFilterMatchBruteForce) {
  std::mt19937_64 rng(static_cast<uint64_t>(GetParam()) * 7919 + 1);
  for (int round = 0; round < 20; ++round) {
    size_t n = 1 + rng() % 400;
    Forest f = random_forest(rng, GetParam(), n);
    auto t = ZoneTree::build(f.inputs());
    std::map<int64_t, int64_t> parent(f.edges.begin(), f.edges.end());
    std::vector<int64_t> ids;
    for (auto& e : f.edges)
      ids.push_back(e.first);

    // Structure: positions, subtree ranges and paths agree with parent walks.
    for (int64_t z : ids) {
      Pos pz = t->find(z);
      ASSERT_NE(pz, kNoPos);
      ASSERT_EQ(t->id(pz), z);
      int64_t pid = parent[z];
      ASSERT_EQ(t->parent(pz), pid == 0 ? kNoPos : t->find(pid));
      for (int k = 0; k < 5; ++k) {
        int64_t g = ids[rng() % ids.size()];
        ASSERT_EQ(t->is_under(pz, t->find(g)), under(parent, z, g)) << z << " under " << g;
      }
    }

    // Scopes: random grants (sometimes none, sometimes unknown ids).
    std::vector<int64_t> grants;
    size_t ng = rng() % 6;
    for (size_t i = 0; i < ng; ++i)
      grants.push_back(ids[rng() % ids.size()]);
    if (rng() % 4 == 0) grants.push_back(2'000'000);
    Scope s = Scope::from_grants(*t, grants);
    std::vector<int64_t> want;
    for (int64_t z : ids) {
      bool vis = std::any_of(grants.begin(), grants.end(),
                             [&](int64_t g) { return parent.count(g) && under(parent, z, g); });
      ASSERT_EQ(s.contains_id(*t, z), vis) << "zone " << z;
      if (vis) want.push_back(z);
    }
    std::sort(want.begin(), want.end());
    ASSERT_EQ(s.sorted_ids(*t), want);
    ASSERT_EQ(s.count(), want.size());

    // Filters: random requests, intersected with the scope.
    std::vector<int64_t> req;
    size_t nr = rng() % 5;
    for (size_t i = 0; i < nr; ++i)
      req.push_back(ids[rng() % ids.size()]);
    std::vector<int64_t> fwant;
    for (int64_t z : want) {
      if (std::any_of(req.begin(), req.end(), [&](int64_t r) { return under(parent, z, r); })) {
        fwant.push_back(z);
      }
    }
    ASSERT_EQ(filter_zones(*t, s, req, false), fwant);
    ASSERT_EQ(filter_zones(*t, s, {}, true), want);
    Scope all = Scope::everything(*t);
    std::vector<int64_t> sorted_ids = ids;
    std::sort(sorted_ids.begin(), sorted_ids.end());
    ASSERT_EQ(all.sorted_ids(*t), sorted_ids);
  }
}

std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  static const char* const names[] = {"Random", "Chain", "Fan", "ManyRoots"};
  return names[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Shapes, Property,
                         ::testing::Values(Shape::kRandom, Shape::kChain, Shape::kFan,
                                           Shape::kManyRoots),
                         shape_name);
