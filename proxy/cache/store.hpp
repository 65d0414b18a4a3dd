// The response cache's storage: shared by all workers, sharded by key hash, bounded by bytes.
//
// Eviction is SIEVE (Zhang et al., NSDI 2024): a FIFO queue with one "visited" bit per entry and
// a hand that walks from the oldest entry, clearing bits and evicting the first unvisited one. We
// chose it over LRU because a hit only sets an atomic bit (no list surgery), so lookups take a
// shared lock and workers do not serialise on hot keys, and because its hit ratio matches or
// beats LRU on skewed web traffic (it is scan-resistant: one-off keys are evicted first).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/field.hpp"

namespace zonegate::cache {

// A stored response and its lifetimes (RFC 5861): fresh until fresh_until; then served stale
// while revalidating until swr_until; served stale when the upstream fails until sie_until.
struct Entry {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<Field> headers;  // the upstream's own (Content-Range, ...), sent with every answer
  std::string etag;            // strong validator: a hash of the body
  std::string route;           // for per-route purge and stats
  std::string tag;             // the user the entry is about ("" for shared entries)
  int64_t stored_ms = 0;
  int64_t fresh_until_ms = 0;
  int64_t swr_until_ms = 0;
  int64_t sie_until_ms = 0;
  size_t bytes(size_t key_size) const;
};

// The RFC 5861 decisions about an entry at a given time, in one place (the response cache asks
// them with its store's clock; tests with an injected one).
enum class Freshness { kFresh, kStaleWhileRevalidate, kExpired };
// Sets the lifetimes of an entry stored at now_ms: fresh for ttl, then stale-while-revalidate
// and stale-if-error windows counted from the end of freshness.
void set_lifetimes(Entry& e, int64_t now_ms, int64_t ttl_ms, int64_t swr_ms, int64_t sie_ms);
Freshness freshness(const Entry& e, int64_t now_ms);
// Whether the entry may answer for an upstream that failed (5xx) at now_ms.
bool serves_if_error(const Entry& e, int64_t now_ms);
// The Age header's value: whole seconds since stored, never negative.
int64_t age_seconds(const Entry& e, int64_t now_ms);

struct StoreStats {
  int64_t entries = 0;
  int64_t bytes = 0;
  int64_t max_bytes = 0;
  int64_t evictions = 0;
  int64_t invalidated = 0;  // entries dropped by invalidation or purge
};

class Store {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds
  Store(size_t max_bytes, size_t shards, Clock clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The entry for key, fresh or not (the caller decides what its age allows), or null.
  std::shared_ptr<const Entry> get(const std::string& key);
  // Stores (replacing any entry for key) and evicts until the shard is within its budget.
  // An entry larger than a shard's whole budget is not stored.
  void put(const std::string& key, std::shared_ptr<const Entry> entry);
  // put, but only if still_valid() holds; it is evaluated under the shard's lock, so an
  // invalidation that makes it false either is seen here or, running after, drops the entry.
  // Returns whether the entry was stored.
  bool put_if(const std::string& key, std::shared_ptr<const Entry> entry,
              const std::function<bool()>& still_valid);
  // Drops every entry tagged `tag` / every entry of `route` / everything; returns how many.
  size_t invalidate_tag(const std::string& tag);
  size_t invalidate_route(const std::string& route);
  size_t invalidate_all();
  StoreStats stats() const;
  int64_t now_ms() const { return clock_(); }

 private:
  struct Node;
  struct Shard;
  Shard& shard_for(const std::string& key);
  size_t drop_where(const std::function<bool(const Node&)>& pred);

  std::vector<std::unique_ptr<Shard>> shards_;
  size_t shard_budget_;
  Clock clock_;
  std::atomic<int64_t> evictions_{0};
  std::atomic<int64_t> invalidated_{0};
};

// A strong ETag for a body: "zg-<16 hex digits of a 64-bit hash>" (quoted).
std::string make_etag(const std::string& body);

}  // namespace zonegate::cache
