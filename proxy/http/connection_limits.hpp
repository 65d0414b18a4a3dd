// Admission of client connections, shared by every worker: a cap on the connections open at
// once and a cap per client address, so one host (a slowloris, a leaking client) cannot take
// every connection. Pure bookkeeping with no I/O: the server asks at accept and answers a
// refused connection itself (docs/ARCHITECTURE.md, "Slow and abusive clients").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/cidr.hpp"

namespace zonegate::http {

struct ConnectionLimitsConfig {
  int64_t max_total = 10000;      // >= 1
  int64_t max_per_address = 256;  // 0: no per-address cap
  std::vector<net::Cidr> exempt;  // addresses without a per-address cap (load balancers)
};

class ConnectionLimits {
 public:
  enum class Verdict { kAdmitted, kTotal, kPerAddress };

  explicit ConnectionLimits(ConnectionLimitsConfig cfg);
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // Counts a new connection from `address` (the TCP peer, as uv_ip*_name writes it) if both
  // caps allow it. Every kAdmitted must be paired with one release() of the same address.
  Verdict acquire(const std::string& address);
  void release(const std::string& address);

  int64_t open() const { return total_.load(std::memory_order_relaxed); }
  int64_t refused_total() const { return refused_total_.load(std::memory_order_relaxed); }
  int64_t refused_per_address() const { return refused_address_.load(std::memory_order_relaxed); }
  // Distinct addresses with a connection open (what the per-address table holds).
  size_t addresses() const;
  const ConnectionLimitsConfig& config() const { return cfg_; }

 private:
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, int64_t> open;  // address -> connections; no zero entries
  };
  Shard& shard_of(std::string_view address);
  bool exempt(const std::string& address) const;

  ConnectionLimitsConfig cfg_;
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> refused_total_{0}, refused_address_{0};
  static constexpr size_t kShards = 16;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace zonegate::http
