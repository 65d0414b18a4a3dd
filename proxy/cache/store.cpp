// Sharded, byte-bounded SIEVE store; see store.hpp.
#include "cache/store.hpp"

#include <cstdio>
#include <mutex>

namespace zonegate::cache {

struct Store::Node {
  std::string key;
  std::shared_ptr<const Entry> entry;
  size_t bytes = 0;
  std::atomic<bool> visited{false};
  Node* prev = nullptr;  // towards the head (newer)
  Node* next = nullptr;  // towards the tail (older)
};

struct Store::Shard {
  mutable std::shared_mutex mu;
  std::unordered_map<std::string, Node*> map;
  std::unordered_multimap<std::string, Node*> by_tag;
  Node* head = nullptr;  // newest
  Node* tail = nullptr;  // oldest
  Node* hand = nullptr;  // SIEVE's eviction hand; null means "start from the tail"
  size_t bytes = 0;

  void link_head(Node* n) {
    n->prev = nullptr;
    n->next = head;
    if (head != nullptr) head->prev = n;
    head = n;
    if (tail == nullptr) tail = n;
  }
  void unlink(Node* n) {
    if (hand == n) hand = n->prev;
    if (n->prev != nullptr)
      n->prev->next = n->next;
    else
      head = n->next;
    if (n->next != nullptr)
      n->next->prev = n->prev;
    else
      tail = n->prev;
  }
  void drop(Node* n) {
    unlink(n);
    map.erase(n->key);
    if (!n->entry->tag.empty()) {
      auto range = by_tag.equal_range(n->entry->tag);
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second == n) {
          by_tag.erase(it);
          break;
        }
      }
    }
    bytes -= n->bytes;
    delete n;
  }
  // SIEVE: from the hand (or the tail) towards the head, clear visited bits; evict the first
  // unvisited node; wrap around to the tail.
  Node* victim() {
    Node* n = hand != nullptr ? hand : tail;
    while (n != nullptr) {
      if (!n->visited.exchange(false, std::memory_order_relaxed)) {
        hand = n->prev;
        return n;
      }
      n = n->prev != nullptr ? n->prev : tail;
    }
    return nullptr;
  }
  ~Shard() {
    for (Node* n = head; n != nullptr;) {
      Node* next = n->next;
      delete n;
      n = next;
    }
  }
};

void set_lifetimes(Entry& e, int64_t now_ms, int64_t ttl_ms, int64_t swr_ms, int64_t sie_ms) {
  e.stored_ms = now_ms;
  e.fresh_until_ms = now_ms + ttl_ms;
  e.swr_until_ms = e.fresh_until_ms + swr_ms;
  e.sie_until_ms = e.fresh_until_ms + sie_ms;
}

Freshness freshness(const Entry& e, int64_t now_ms) {
  if (now_ms < e.fresh_until_ms) return Freshness::kFresh;
  if (now_ms < e.swr_until_ms) return Freshness::kStaleWhileRevalidate;
  return Freshness::kExpired;
}

bool serves_if_error(const Entry& e, int64_t now_ms) {
  return now_ms < e.sie_until_ms;
}

int64_t age_seconds(const Entry& e, int64_t now_ms) {
  int64_t age = (now_ms - e.stored_ms) / 1000;
  return age < 0 ? 0 : age;
}

size_t Entry::bytes(size_t key_size) const {
  // The strings plus a fixed estimate of the node, maps and control block.
  size_t extra = 0;
  for (const Field& h : headers)
    extra += h.name.size() + h.value.size() + sizeof(Field);
  return key_size * 2 + body.size() + content_type.size() + etag.size() + route.size() +
         tag.size() * 2 + extra + sizeof(Entry) + 160;
}

Store::Store(size_t max_bytes, size_t shards, Clock clock) : clock_(std::move(clock)) {
  if (shards == 0) shards = 1;
  for (size_t i = 0; i < shards; ++i)
    shards_.push_back(std::make_unique<Shard>());
  shard_budget_ = max_bytes / shards;
}

Store::~Store() = default;

Store::Shard& Store::shard_for(const std::string& key) {
  return *shards_[std::hash<std::string>{}(key) % shards_.size()];
}

std::shared_ptr<const Entry> Store::get(const std::string& key) {
  Shard& s = shard_for(key);
  std::shared_lock<std::shared_mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  it->second->visited.store(true, std::memory_order_relaxed);
  return it->second->entry;
}

void Store::put(const std::string& key, std::shared_ptr<const Entry> entry) {
  put_if(key, std::move(entry), [] { return true; });
}

bool Store::put_if(const std::string& key, std::shared_ptr<const Entry> entry,
                   const std::function<bool()>& still_valid) {
  size_t bytes = entry->bytes(key.size());
  if (bytes > shard_budget_) return false;
  Shard& s = shard_for(key);
  std::unique_lock<std::shared_mutex> lock(s.mu);
  if (!still_valid()) return false;
  auto it = s.map.find(key);
  if (it != s.map.end()) s.drop(it->second);
  while (s.bytes + bytes > shard_budget_) {
    Node* v = s.victim();
    if (v == nullptr) break;
    s.drop(v);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  Node* n = new Node();
  n->key = key;
  n->bytes = bytes;
  if (!entry->tag.empty()) s.by_tag.emplace(entry->tag, n);
  n->entry = std::move(entry);
  s.map.emplace(n->key, n);
  s.link_head(n);
  s.bytes += bytes;
  return true;
}

size_t Store::invalidate_tag(const std::string& tag) {
  size_t dropped = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::unique_lock<std::shared_mutex> lock(s.mu);
    auto range = s.by_tag.equal_range(tag);
    std::vector<Node*> nodes;
    for (auto it = range.first; it != range.second; ++it)
      nodes.push_back(it->second);
    for (Node* n : nodes)
      s.drop(n);
    dropped += nodes.size();
  }
  invalidated_.fetch_add(static_cast<int64_t>(dropped), std::memory_order_relaxed);
  return dropped;
}

size_t Store::drop_where(const std::function<bool(const Node&)>& pred) {
  size_t dropped = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::unique_lock<std::shared_mutex> lock(s.mu);
    for (Node* n = s.head; n != nullptr;) {
      Node* next = n->next;
      if (pred(*n)) {
        s.drop(n);
        ++dropped;
      }
      n = next;
    }
  }
  invalidated_.fetch_add(static_cast<int64_t>(dropped), std::memory_order_relaxed);
  return dropped;
}

size_t Store::invalidate_route(const std::string& route) {
  return drop_where([&route](const Node& n) { return n.entry->route == route; });
}

size_t Store::invalidate_all() {
  return drop_where([](const Node&) { return true; });
}

StoreStats Store::stats() const {
  StoreStats st;
  for (const auto& sp : shards_) {
    std::shared_lock<std::shared_mutex> lock(sp->mu);
    st.entries += static_cast<int64_t>(sp->map.size());
    st.bytes += static_cast<int64_t>(sp->bytes);
  }
  st.max_bytes = static_cast<int64_t>(shard_budget_ * shards_.size());
  st.evictions = evictions_.load();
  st.invalidated = invalidated_.load();
  return st;
}

std::string make_etag(const std::string& body) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: a validator, not a security boundary
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "\"zg-%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace zonegate::cache
