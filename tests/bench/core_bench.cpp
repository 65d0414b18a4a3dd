// Micro-benchmarks of the pure core on the real Indonesian hierarchy (91,599 zones from
// idn-area-data): compiling the tree, the per-row access check, filters, context documents.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/context.hpp"
#include "core/scope.hpp"
#include "core/zone_tree.hpp"

using namespace zonegate::core;

namespace {

struct Data {
  std::vector<std::string> strings;
  std::vector<ZoneInput> rows;
  std::vector<int64_t> districts, regencies, provinces;
};

int64_t code_id(const std::string& code) {
  std::string digits;
  for (char c : code) {
    if (c != '.') digits.push_back(c);
  }
  return std::stoll(digits);
}

// Splits one CSV line of idn-area-data (fields with commas are quoted).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"' && quoted && i + 1 < line.size() && line[i + 1] == '"') {
      out.back().push_back('"');  // "" inside quotes is one quote
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

const Data& data() {
  static Data d = [] {
    Data d;
    d.strings.reserve(4 * 100000);
    const char* files[] = {"provinces", "regencies", "districts", "villages"};
    const char* levels[] = {"province", "regency", "district", "village"};
    for (int f = 0; f < 4; ++f) {
      std::ifstream in(std::string(ZONEGATE_IDN_DATA) + "/" + files[f] + ".csv");
      if (!in) throw std::runtime_error("run make deps: idn-area-data is missing");
      std::string line;
      std::getline(in, line);
      while (std::getline(in, line)) {
        auto cols = split_csv(line);
        ZoneInput z;
        z.id = code_id(cols[0]);
        z.has_parent = f > 0;
        z.parent_id = f > 0 ? code_id(cols[1]) : 0;
        d.strings.push_back(cols[0]);
        z.code = d.strings.back();
        d.strings.push_back(cols.back());
        z.name = d.strings.back();
        z.level = levels[f];
        d.rows.push_back(z);
        if (f == 0) d.provinces.push_back(z.id);
        if (f == 1) d.regencies.push_back(z.id);
        if (f == 2) d.districts.push_back(z.id);
      }
    }
    return d;
  }();
  return d;
}

void BM_TreeBuild(benchmark::State& state) {
  const Data& d = data();
  for (auto _ : state)
    benchmark::DoNotOptimize(ZoneTree::build(d.rows));
  state.counters["zones"] = static_cast<double>(d.rows.size());
  state.counters["bytes"] = static_cast<double>(ZoneTree::build(d.rows)->memory_bytes());
}
BENCHMARK(BM_TreeBuild)->Unit(benchmark::kMillisecond);

// The rows in the order a table returns them after one zone was updated (its new version at the
// end: what every rebuild after a change reads), and in random order.
void BM_TreeBuildOrder(benchmark::State& state) {
  std::vector<ZoneInput> rows = data().rows;
  if (state.range(0) == 0) {
    std::rotate(rows.begin(), rows.begin() + 1, rows.end());
    state.SetLabel("one updated row last");
  } else {
    std::shuffle(rows.begin(), rows.end(), std::mt19937_64(7));
    state.SetLabel("shuffled");
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(ZoneTree::build(rows));
}
BENCHMARK(BM_TreeBuildOrder)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// The per-row RLS check: id lookup plus interval search, for scopes of 1 to 20 grants.
void BM_CanAccess(benchmark::State& state) {
  const Data& d = data();
  auto tree = ZoneTree::build(d.rows);
  std::mt19937_64 rng(1);
  std::vector<int64_t> grants;
  for (int i = 0; i < state.range(0); ++i)
    grants.push_back(d.districts[rng() % d.districts.size()]);
  Scope s = Scope::from_grants(*tree, grants);
  std::vector<int64_t> probes;
  for (int i = 0; i < 4096; ++i)
    probes.push_back(d.rows[rng() % d.rows.size()].id);
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += s.contains(tree->find(probes[i++ & 4095]));
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CanAccess)->Arg(1)->Arg(20)->Arg(500);

void BM_FilterProvince(benchmark::State& state) {
  const Data& d = data();
  auto tree = ZoneTree::build(d.rows);
  Scope s = Scope::from_grants(*tree, {d.provinces[0], d.provinces[1]});
  for (auto _ : state)
    benchmark::DoNotOptimize(filter_zones(*tree, s, {d.provinces[1]}, false));
}
BENCHMARK(BM_FilterProvince)->Unit(benchmark::kMicrosecond);

void BM_ContextJson(benchmark::State& state) {
  const Data& d = data();
  auto tree = ZoneTree::build(d.rows);
  UserRecord u;
  u.user_id = "4fbb771f-fb05-b959-35a6-c087fbf13485";
  u.email = "user@example.org";
  u.role = "regency_supervisor";
  u.permissions = {"zones.read", "reports.read", "reports.review"};
  u.grants = {d.regencies[3], d.regencies[4]};
  Scope s = scope_for(*tree, u);
  for (auto _ : state)
    benchmark::DoNotOptimize(build_context_json(*tree, u, s, 1));
}
BENCHMARK(BM_ContextJson)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
