// Memory and admission cost of resilience::KeyTable at 1,000,000 tracked keys (make bench,
// tests/bench/rate_limit_bench.py section rss; docs/BENCHMARKS.md, "Rate limiting"). A plain
// main: prints one JSON object.
//
//   rate_limit_keys [KEYS]     (default 1,000,000)
//
// GcraParams{10/s, burst 20}, max_keys 2,000,000. Every key "s:user-<i>" is admitted once at a
// fixed clock, so none is full again and none is dropped; VmRSS is read before and after. Then 5
// timed passes re-admit every key (each admit of an existing key: shared lock + CAS), and 2
// threads re-admit all keys concurrently (aggregate ns per admit). The clock never moves, so a
// key's 21st admit would be refused (burst 20); every key gets 1 + 5 + 2 = 8, all admitted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "resilience/rate_limit.hpp"

using zonegate::resilience::GcraParams;
using zonegate::resilience::KeyTable;
using zonegate::resilience::KeyTableConfig;

namespace {

long vm_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1000000;
  // The key strings are built before the first RSS reading so that only the table is measured.
  std::vector<std::string> keys;
  keys.reserve(n);
  for (long i = 0; i < n; ++i)
    keys.push_back("s:user-" + std::to_string(i));
  const int64_t t = 1'000'000'000'000LL;  // fixed clock

  KeyTable table(GcraParams{10, 20}, KeyTableConfig{2'000'000});
  const long before = vm_rss_kib();
  double t0 = now_s();
  long allowed = 0;
  for (const auto& k : keys)
    allowed += table.admit(k, t).allowed;
  const double insert_ns = (now_s() - t0) * 1e9 / n;
  const long after = vm_rss_kib();
  const auto st = table.stats();

  std::vector<double> passes;
  for (int p = 0; p < 5; ++p) {
    t0 = now_s();
    for (const auto& k : keys)
      allowed += table.admit(k, t).allowed;
    passes.push_back((now_s() - t0) * 1e9 / n);
  }
  std::vector<double> sorted = passes;
  std::sort(sorted.begin(), sorted.end());

  // 2 threads on the same keys, both in the same order (the worst case: same shards, same slots).
  t0 = now_s();
  std::vector<std::thread> th;
  std::vector<long> ok(2, 0);
  for (int i = 0; i < 2; ++i) {
    th.emplace_back([&, i] {
      for (const auto& k : keys)
        ok[i] += table.admit(k, t).allowed;
    });
  }
  for (auto& x : th)
    x.join();
  const double two_ns = (now_s() - t0) * 1e9 / (2.0 * n);
  allowed += ok[0] + ok[1];

  std::printf(
      "{\"keys\": %lld, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
      "\"bytes_per_key_measured\": %.1f, \"bytes_per_key_estimate\": %zu, "
      "\"insert_ns\": %.1f, \"admit_ns_median\": %.1f, \"admit_ns_passes\": [%.1f, %.1f, %.1f, "
      "%.1f, %.1f], \"admit_ns_2threads_aggregate\": %.1f, \"admitted_total\": %ld}\n",
      static_cast<long long>(st.keys), before, after, (after - before) * 1024.0 / n,
      KeyTable::bytes_per_key(), insert_ns, sorted[2], passes[0], passes[1], passes[2], passes[3],
      passes[4], two_ns, allowed);
  return st.keys == n ? 0 : 1;
}
