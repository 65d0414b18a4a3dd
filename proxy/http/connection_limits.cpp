// Connection admission; see connection_limits.hpp.
#include "http/connection_limits.hpp"

#include <algorithm>
#include <functional>

namespace zonegate::http {

ConnectionLimits::ConnectionLimits(ConnectionLimitsConfig cfg)
    : cfg_(std::move(cfg)), shards_(new Shard[kShards]) {}

ConnectionLimits::Shard& ConnectionLimits::shard_of(std::string_view address) {
  return shards_[std::hash<std::string_view>()(address) % kShards];
}

bool ConnectionLimits::exempt(const std::string& address) const {
  if (cfg_.exempt.empty()) return false;
  net::Address a;
  if (!net::Address::parse(address, a)) return false;
  return std::any_of(cfg_.exempt.begin(), cfg_.exempt.end(),
                     [&](const net::Cidr& c) { return c.contains(a); });
}

ConnectionLimits::Verdict ConnectionLimits::acquire(const std::string& address) {
  // The total first, with a CAS loop so racing workers never admit past the cap together.
  int64_t n = total_.load(std::memory_order_relaxed);
  do {
    if (n >= cfg_.max_total) {
      refused_total_.fetch_add(1, std::memory_order_relaxed);
      return Verdict::kTotal;
    }
  } while (!total_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  if (cfg_.max_per_address > 0 && !exempt(address)) {
    Shard& s = shard_of(address);
    std::lock_guard<std::mutex> lock(s.mu);
    int64_t& mine = s.open[address];
    if (mine >= cfg_.max_per_address) {
      total_.fetch_sub(1, std::memory_order_relaxed);
      refused_address_.fetch_add(1, std::memory_order_relaxed);
      return Verdict::kPerAddress;
    }
    ++mine;
  }
  return Verdict::kAdmitted;
}

void ConnectionLimits::release(const std::string& address) {
  total_.fetch_sub(1, std::memory_order_relaxed);
  if (cfg_.max_per_address <= 0 || exempt(address)) return;
  Shard& s = shard_of(address);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.open.find(address);
  if (it == s.open.end()) return;  // cannot happen for a paired call; never go negative
  if (--it->second <= 0) s.open.erase(it);
}

size_t ConnectionLimits::addresses() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].open.size();
  }
  return n;
}

}  // namespace zonegate::http
