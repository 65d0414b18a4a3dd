// GCRA and the sharded per-key TAT table; see rate_limit.hpp.
#include "resilience/rate_limit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

namespace zonegate::resilience {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// 128-bit intermediates: every operand is an int64, so sums and differences of a few of them
// cannot overflow, and the result is clamped back to int64 exactly once.
using Wide = __int128;

int64_t clamp64(Wide v) {
  if (v > kMax) return kMax;
  if (v < kMin) return kMin;
  return static_cast<int64_t>(v);
}

int64_t interval_for(double rate_per_s) {
  // Invalid rates (<= 0, NaN) behave like the slowest rate rather than failing or admitting
  // everything: the loader should have rejected them, and refusing is the safe side.
  if (!(rate_per_s > 0)) return kMax;
  const double t = 1e9 / rate_per_s;  // +inf only for denormal rates, caught below
  // 9.2e18 is below INT64_MAX (~9.223e18) and exactly representable, so llround cannot overflow.
  if (!(t < 9.2e18)) return kMax;
  return std::max<int64_t>(std::llround(t), 1);
}

int64_t tolerance_for(int64_t interval, int64_t burst) {
  const int64_t extra = std::max<int64_t>(burst, 1) - 1;
  if (extra == 0) return 0;
  if (extra > kMax / interval) return kMax;
  return interval * extra;
}

// A fixed odd constant to fall back on when random_device is unavailable (it may throw); then
// the seed is only as unpredictable as the clock and an address, still not a constant.
uint64_t random_seed() {
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  try {
    std::random_device rd;
    seed = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  } catch (...) {
    seed ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= reinterpret_cast<uintptr_t>(&seed);
  }
  return seed;
}

// murmur3's 64-bit finalizer: full avalanche, so the low bits (the map's buckets) and high bits
// (the shard index) of the FNV state are both well mixed.
uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

// ---- Gcra ----

Gcra::Gcra(GcraParams p)
    : interval_ns_(interval_for(p.rate_per_s)),
      tolerance_ns_(tolerance_for(interval_ns_, p.burst)) {}

RateDecision Gcra::decide(int64_t tat, int64_t now_ns, int64_t& new_tat) const {
  const Wide T = interval_ns_;
  const Wide tau = tolerance_ns_;
  const Wide now = now_ns;
  const Wide tat0 = std::max<Wide>(tat, now);
  const Wide allow_at = tat0 - tau;
  RateDecision d;
  Wide stored;
  if (now < allow_at || tat0 + T > kMax) {
    // The second case: the next TAT would not fit in an int64. Clamping it instead would store
    // a TAT that forgets part of the debt and, with a large tau, admit without limit; refusing
    // is the safe side and happens only at absurd rates or a clock ~292 years in.
    d.allowed = false;
    d.retry_after_ns = now < allow_at ? clamp64(allow_at - now) : kMax;  // > 0 either way
    new_tat = tat;
    stored = tat0;  // what the bucket looks like now; the stored tat itself is unchanged
  } else {
    d.allowed = true;
    new_tat = static_cast<int64_t>(tat0 + T);  // fits: checked above
    stored = new_tat;
  }
  const Wide pending = stored - now;  // ns of "debt" the bucket still has to pay back
  const Wide tokens = tau + T - pending;
  // Floor division; negative (refused) means no token, so 0.
  d.remaining = !d.allowed || tokens <= 0 ? 0 : clamp64(tokens / T);
  d.reset_ns = pending <= 0 ? 0 : clamp64(pending);
  return d;
}

RateDecision Gcra::admit(std::atomic<int64_t>& tat, int64_t now_ns) const {
  int64_t cur = tat.load(std::memory_order_acquire);
  for (;;) {
    int64_t next = cur;
    const RateDecision d = decide(cur, now_ns, next);
    // A refusal changes nothing (an admission always moves the TAT forward by >= 1): the load
    // that saw cur is the decision's linearization point, no write needed.
    if (next == cur) return d;
    // On failure cur is reloaded and the decision redone on the value that won, so concurrent
    // callers each consume a distinct T of the budget.
    if (tat.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                  std::memory_order_acquire)) {
      return d;
    }
  }
}

// ---- KeyTable ----

KeyTable::KeyTable(GcraParams p, KeyTableConfig c) : gcra_(p), seed_(random_seed()) {
  const int64_t max_keys = std::max<int64_t>(c.max_keys, 1);
  // More shards than keys would leave shards with a share of 0 (or force the total above
  // max_keys): clamp so every share is >= 1.
  const int64_t shards = std::clamp<int64_t>(c.shards, 1, max_keys);
  nshards_ = static_cast<size_t>(shards);
  shards_ = std::make_unique<Shard[]>(nshards_);
  const int64_t base = max_keys / shards;
  const int64_t extra = max_keys % shards;
  for (int64_t i = 0; i < shards; ++i)
    shards_[static_cast<size_t>(i)].share = static_cast<size_t>(base + (i < extra ? 1 : 0));
}

uint64_t KeyTable::hash(std::string_view key) const {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed_;  // FNV-1a 64 offset basis, seeded
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  // FNV alone avalanches poorly in its high bits (which pick the shard); the finalizer fixes that.
  // Not a keyed PRF like SipHash, but with a secret random initial state colliding keys cannot be
  // precomputed offline, and a collision only merges two buckets (see the header).
  return fmix64(h);
}

RateDecision KeyTable::admit(std::string_view key, int64_t now_ns) {
  const uint64_t h = hash(key);
  // The high bits pick the shard, the map buckets on the whole value: fmix64 makes both uniform.
  Shard& s = shards_[static_cast<size_t>((h >> 32) % nshards_)];
  {
    std::shared_lock<std::shared_mutex> lock(s.mu);
    auto it = s.map.find(h);
    if (it != s.map.end()) {
      // Nodes are stable and erased only under the unique lock, so the slot outlives this lock.
      Slot& slot = it->second;
      slot.last_used_ns.store(now_ns, std::memory_order_relaxed);
      return gcra_.admit(slot.tat, now_ns);
    }
  }
  std::unique_lock<std::shared_mutex> lock(s.mu);
  auto it = s.map.find(h);  // another worker may have inserted it between the two locks
  if (it == s.map.end()) {
    if (s.map.size() >= s.share) make_room_locked(s, now_ns);
    it = s.map.try_emplace(h).first;
  }
  Slot& slot = it->second;
  slot.last_used_ns.store(now_ns, std::memory_order_relaxed);
  return gcra_.admit(slot.tat, now_ns);
}

void KeyTable::drop_full_locked(Shard& s, int64_t now_ns) {
  for (auto it = s.map.begin(); it != s.map.end();) {
    if (Gcra::full(it->second.tat.load(std::memory_order_relaxed), now_ns)) {
      it = s.map.erase(it);
      ++s.evicted_full;
    } else {
      ++it;
    }
  }
}

void KeyTable::make_room_locked(Shard& s, int64_t now_ns) {
  // Full buckets first: dropping them loses nothing, a later request sees the same fresh bucket.
  drop_full_locked(s, now_ns);
  // Then LRU down to 90% of the share (and always below the share, so the caller's insert fits),
  // which leaves room for >= 10% more inserts before the next O(share) pass.
  const size_t target = std::min(s.share - 1, s.share * 9 / 10);
  if (s.map.size() <= target) return;
  std::vector<std::pair<int64_t, uint64_t>> by_use;  // (last_used, key)
  by_use.reserve(s.map.size());
  for (const auto& [key, slot] : s.map)
    by_use.emplace_back(slot.last_used_ns.load(std::memory_order_relaxed), key);
  const size_t drop = by_use.size() - target;
  std::nth_element(by_use.begin(), by_use.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   by_use.end());
  for (size_t i = 0; i < drop; ++i)
    s.map.erase(by_use[i].second);
  s.evicted_lru += static_cast<int64_t>(drop);
}

void KeyTable::sweep(int64_t now_ns) {
  for (size_t i = 0; i < nshards_; ++i) {
    Shard& s = shards_[i];
    std::unique_lock<std::shared_mutex> lock(s.mu);
    drop_full_locked(s, now_ns);
  }
}

KeyTableStats KeyTable::stats() const {
  KeyTableStats st;
  for (size_t i = 0; i < nshards_; ++i) {
    const Shard& s = shards_[i];
    std::shared_lock<std::shared_mutex> lock(s.mu);
    st.keys += static_cast<int64_t>(s.map.size());
    st.evicted_full += s.evicted_full;
    st.evicted_lru += s.evicted_lru;
  }
  return st;
}

size_t KeyTable::bytes_per_key() {
  // A libstdc++ hash node: next pointer + the (key, Slot) pair + the cached hash, plus the
  // key's share of the bucket array (one pointer at load factor ~1).
  return sizeof(Slot) + sizeof(uint64_t) + 2 * sizeof(void*) + sizeof(size_t) + sizeof(void*);
}

}  // namespace zonegate::resilience
