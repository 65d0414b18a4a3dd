// Per-key rate limiting with GCRA (the generic cell rate algorithm): one int64 per key (the
// theoretical arrival time, TAT) instead of a token count plus a timestamp, so a decision is a
// single compare-and-swap and the per-key state fits one atomic. Shared by the worker threads:
// thread-safe. Pure arithmetic on injected clock values, so every decision is deterministic under
// test.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

namespace zonegate::resilience {

// Monotonic nanoseconds (injected; tests advance a variable).
using NanoClock = std::function<int64_t()>;

struct GcraParams {
  double rate_per_s = 10;  // > 0
  int64_t burst = 1;       // >= 1
};

// Result of one admission decision.
struct RateDecision {
  bool allowed = false;
  int64_t remaining = 0;       // requests still admissible right now after this one (>= 0)
  int64_t reset_ns = 0;        // ns until the bucket is full again (0 when full)
  int64_t retry_after_ns = 0;  // when refused: ns until the next request would be admitted (> 0);
                               // 0 when allowed
};

// GCRA arithmetic on one TAT value, with no state of its own.
//
// T = emission interval = 1e9 / rate ns, rounded to the nearest ns and at least 1 ns (rates above
// 1e9/s clamp to 1 ns; rates so low that T exceeds INT64_MAX, and invalid rates <= 0 or NaN,
// clamp to INT64_MAX: one request per burst, effectively forever). tau = T * (burst - 1),
// saturating at INT64_MAX. A burst below 1 counts as 1. Internally the arithmetic is 128-bit and
// every returned value is clamped to int64, so no input (any rate, burst, tat or now) overflows.
// A request whose new TAT would exceed INT64_MAX is refused (retry_after_ns = INT64_MAX) rather
// than stored clamped, which would forget debt and admit without limit; that happens only at
// absurd rates or a clock ~292 years in.
//
// Given the stored tat (0 = no state = full bucket) and now:
//   tat0 = max(tat, now); allow_at = tat0 - tau;
//   now < allow_at -> refused, retry_after_ns = allow_at - now, tat unchanged;
//   otherwise      -> allowed, new tat = tat0 + T.
// This is exactly a token bucket of capacity burst refilled at rate: the bucket holds
// (tau + T - max(0, tat - now)) / T tokens.
//
// A clock going backwards (now below an earlier now) never admits more than the budget: tat0 =
// max(tat, now) keeps the TAT that earlier admissions pushed forward, so a backwards clock only
// makes keys wait longer (the bucket looks emptier than it is), never refills it.
class Gcra {
 public:
  explicit Gcra(GcraParams p);

  int64_t interval_ns() const { return interval_ns_; }
  int64_t tolerance_ns() const { return tolerance_ns_; }  // tau

  // Pure: returns the decision and writes the tat to store (== tat when refused).
  RateDecision decide(int64_t tat, int64_t now_ns, int64_t& new_tat) const;
  // Lock-free on one atomic: a CAS loop around decide(). Exact under concurrency: every admission
  // moves the TAT forward by T from the value it was decided on, so N racing threads can never
  // admit more than one serial caller would.
  RateDecision admit(std::atomic<int64_t>& tat, int64_t now_ns) const;
  // True when a key with this tat has a full bucket at now (tat <= now): it carries no
  // information (decide() treats it exactly like tat 0) and may be dropped.
  static bool full(int64_t tat, int64_t now_ns) { return tat <= now_ns; }

 private:
  int64_t interval_ns_;
  int64_t tolerance_ns_;
};

struct KeyTableConfig {
  int64_t max_keys = 100000;  // >= 1
  int shards = 16;            // >= 1; a power of two is not required
};

struct KeyTableStats {
  int64_t keys = 0;
  int64_t evicted_full = 0;  // dropped because their bucket was full again (no accuracy lost)
  int64_t evicted_lru = 0;   // dropped because the table was at max_keys (least recently used
                             // first)
};

// The per-policy table key -> TAT, shared by all worker threads.
//
// Keys are stored as a seeded 64-bit hash of the key string, not the string itself, so a tracked
// key costs a fixed few dozen bytes whatever the client sends. std::hash is neither stable nor
// strong enough; the hash is FNV-1a 64 over the bytes, started from a per-table random seed
// (std::random_device) and finished with murmur3's fmix64, so clients cannot precompute
// colliding keys. At 1M tracked keys the probability that any two collide is ~n^2/2^65, about
// 3e-8; a collision only merges two clients' buckets (both share one budget), it never admits
// more than one budget for the pair.
//
// Sharded to keep the workers apart: each shard has a shared_mutex and a map hash -> Slot. A
// request for a key already present takes the shard's shared lock and CASes the slot's atomic,
// so workers never serialize on a hit; only inserting a new key takes the unique lock.
//
// Size bound: max_keys is split across the shards (each gets max_keys / shards, the remainder
// going one each to the first shards, so the shares add up to exactly max_keys and the table
// never holds more; shards is clamped to max_keys so every share is >= 1). When inserting into a
// shard at its share, the shard first drops every key with a full bucket (no accuracy lost), and
// if still above 90% of its share, the least recently used keys down to 90% (nth_element over
// last_used). Each pass costs O(share) and leaves >= 10% of the share free, so eviction is
// amortized O(1) per insert.
class KeyTable {
 public:
  KeyTable(GcraParams p, KeyTableConfig c);
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  RateDecision admit(std::string_view key, int64_t now_ns);
  // Drops every full-bucket key (the proxy calls this from a timer every few seconds).
  void sweep(int64_t now_ns);
  KeyTableStats stats() const;
  const Gcra& gcra() const { return gcra_; }
  // Approximate bytes one tracked key costs (hash node + bucket pointer + slot), for the docs and
  // /health; allocator overhead not included.
  static size_t bytes_per_key();

 private:
  struct Slot {
    std::atomic<int64_t> tat{0};
    std::atomic<int64_t> last_used_ns{0};
  };
  // Cache-line aligned so two shards' locks never share a line.
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<uint64_t, Slot> map;  // under mu; slots' atomics also under a shared lock
    size_t share = 1;                        // this shard's part of max_keys
    int64_t evicted_full = 0;                // under mu (unique to write)
    int64_t evicted_lru = 0;
  };

  uint64_t hash(std::string_view key) const;
  // Both expect s.mu held uniquely.
  static void drop_full_locked(Shard& s, int64_t now_ns);
  static void make_room_locked(Shard& s, int64_t now_ns);

  Gcra gcra_;
  uint64_t seed_;
  size_t nshards_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace zonegate::resilience
