// The response cache stage; see response_cache.hpp.
#include "cache/response_cache.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include "common/json.hpp"
#include "common/log.hpp"

namespace zonegate::cache {

struct ResponseCache::Waiter {
  Asker asker;  // its reply runs only on asker.executor's thread
  std::string route;
  int64_t deadline_ms = 0;
  std::atomic<bool> done{false};  // answered by the leader, or gone upstream itself
  Upstream upstream;
};

struct ResponseCache::Flight {
  std::vector<std::shared_ptr<Waiter>> waiters;
  int64_t epoch = 0;          // invalidation epoch when the fetch started
  int64_t catalog_epoch = 0;  // catalog epoch then (checked for /rpc routes only)
  int64_t generation = 0;     // the route's generation then
};

namespace {

// An answer that sets a cookie is sent but never stored: replaying one user's cookie to the
// next asker (or to everybody, in a shared scope) would hand over a session.
bool sets_cookie(const Answer& a) {
  return std::any_of(a.headers.begin(), a.headers.end(),
                     [](const Field& f) { return strcasecmp(f.name.c_str(), "set-cookie") == 0; });
}

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// RFC 9110 If-None-Match: "*" or a list of entity tags, compared weakly.
bool etag_matches(const std::optional<std::string>& header, const std::string& etag) {
  if (!header) return false;
  size_t pos = 0;
  while (pos < header->size()) {
    size_t comma = header->find(',', pos);
    if (comma == std::string::npos) comma = header->size();
    std::string tag = header->substr(pos, comma - pos);
    size_t a = tag.find_first_not_of(" \t"), b = tag.find_last_not_of(" \t");
    tag = a == std::string::npos ? "" : tag.substr(a, b - a + 1);
    if (tag.rfind("W/", 0) == 0) tag = tag.substr(2);
    if (tag == "*" || tag == etag) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

ResponseCache::ResponseCache(const config::CacheConfig& cfg, std::vector<std::string> route_names,
                             Store::Clock clock)
    : cfg_(cfg),
      store_(static_cast<size_t>(cfg.max_bytes), static_cast<size_t>(cfg.shards), clock),
      flush_limiter_(cfg.max_flushes_per_second, std::move(clock)) {
  for (std::string& r : route_names)
    routes_.emplace(std::move(r), std::make_unique<RouteStats>());
  // Until the first check, a function that reads an application table is not cached.
  set_dependencies(build_dependency_index(cfg_, {}, false, "not checked yet"));
}

RouteStats& ResponseCache::route(const std::string& name) {
  auto it = routes_.find(name);  // the map never changes after construction: no lock
  return it != routes_.end() ? *it->second : other_;
}

void ResponseCache::answer_entry(const Asker& asker, const std::string& route_name,
                                 const std::shared_ptr<const Entry>& entry, const char* outcome,
                                 bool shared) {
  const Entry& e = *entry;
  Answer a;
  a.status = e.status;
  // The body stays the entry's (an aliasing pointer keeps the entry alive until it is sent).
  a.shared_body = std::shared_ptr<const std::string>(entry, &e.body);
  a.content_type = e.content_type;
  a.outcome = outcome;
  a.headers.reserve(4 + e.headers.size());
  a.headers.push_back({"ETag", e.etag});
  a.headers.push_back({"Age", std::to_string(age_seconds(e, store_.now_ms()))});
  a.headers.push_back({"X-Cache", upper(outcome)});
  // The answer's own fields; its Cache-Control (a function's response.headers) replaces ours.
  bool own_cache_control = false;
  for (const Field& f : e.headers) {
    if (strcasecmp(f.name.c_str(), "etag") == 0 || strcasecmp(f.name.c_str(), "age") == 0 ||
        strcasecmp(f.name.c_str(), "x-cache") == 0) {
      continue;  // the cache's to say
    }
    own_cache_control = own_cache_control || strcasecmp(f.name.c_str(), "cache-control") == 0;
    a.headers.push_back(f);
  }
  if (!own_cache_control) {
    a.headers.push_back({"Cache-Control", shared ? "public, no-cache" : "private, no-cache"});
  }
  if (etag_matches(asker.if_none_match, e.etag)) {
    a.status = 304;
    a.shared_body.reset();
    route(route_name).not_modified.fetch_add(1, std::memory_order_relaxed);
  }
  asker.reply(std::move(a));
}

std::shared_ptr<const Entry> ResponseCache::make_entry(const Answer& r,
                                                       const config::CachePolicy& p,
                                                       const CacheKey& key, int64_t generation) {
  auto e = std::make_shared<Entry>();
  e->status = r.status;
  e->content_type = r.content_type;
  e->headers = r.headers;
  e->body = r.bytes();
  e->etag = make_etag(e->body);
  e->route = key.route;
  e->tag = p.shared ? std::string() : key.tag;
  e->headers = r.headers;
  e->generation = generation;
  set_lifetimes(*e, store_.now_ms(), p.ttl_ms, p.stale_while_revalidate_ms, p.stale_if_error_ms);
  return e;
}

void ResponseCache::serve(Asker asker, const config::CachePolicy& policy, const CacheKey& key,
                          Upstream upstream) {
  RouteStats& rs = route(key.route);
  if (!cfg_.enabled || !policy.enabled || policy.ttl_ms == 0 ||
      rs.uncacheable.load(std::memory_order_relaxed)) {
    rs.bypass.fetch_add(1, std::memory_order_relaxed);
    upstream([reply = std::move(asker.reply)](Answer a) {
      a.outcome = "bypass";
      reply(std::move(a));
    });
    return;
  }
  int64_t now = store_.now_ms();
  std::shared_ptr<const Entry> e = store_.get(key.key);
  // Something it was computed from changed since: gone, not even a stale-if-error reserve.
  if (e && e->generation != rs.generation.load(std::memory_order_acquire)) e.reset();
  Freshness fr = e ? freshness(*e, now) : Freshness::kExpired;
  if (e && e->stored_ms < fresh_after_ms_.load(std::memory_order_relaxed)) {
    fr = Freshness::kExpired;  // made while (or before) the invalidation channel was down
  }
  if (fr == Freshness::kFresh) {
    rs.hits.fetch_add(1, std::memory_order_relaxed);
    answer_entry(asker, key.route, e, "hit", policy.shared);
    return;
  }
  if (fr == Freshness::kStaleWhileRevalidate) {
    rs.stale.fetch_add(1, std::memory_order_relaxed);
    answer_entry(asker, key.route, e, "stale", policy.shared);
    // The refresh runs in the background: nobody waits for its answer.
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      if (flights_.count(key.key) != 0) return;  // a refresh is already on its way
      auto f = std::make_shared<Flight>();
      f->epoch = epoch_.load();
      f->catalog_epoch = catalog_epoch_.load();
      f->generation = rs.generation.load(std::memory_order_acquire);
      flights_.emplace(key.key, std::move(f));
      revalidations_.fetch_add(1, std::memory_order_relaxed);
    }
    lead(nullptr, policy, key, e, upstream);
    return;
  }
  rs.misses.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(flights_mu_);
    auto it = flights_.find(key.key);
    if (it != flights_.end()) {
      auto w = std::make_shared<Waiter>();
      w->asker = std::move(asker);
      w->route = key.route;
      w->deadline_ms = now + cfg_.lock_timeout_ms;
      w->upstream = std::move(upstream);
      it->second->waiters.push_back(w);
      rs.coalesced.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard<std::mutex> wl(waiters_mu_);
      waiters_by_executor_[w->asker.executor].push_back(std::move(w));
      return;
    }
    auto f = std::make_shared<Flight>();
    f->epoch = epoch_.load();
    f->catalog_epoch = catalog_epoch_.load();
    f->generation = rs.generation.load(std::memory_order_acquire);
    flights_.emplace(key.key, std::move(f));
  }
  lead(std::make_shared<Asker>(std::move(asker)), policy, key, e, upstream);
}

void ResponseCache::lead(std::shared_ptr<Asker> asker, const config::CachePolicy& policy,
                         const CacheKey& key, std::shared_ptr<const Entry> stale,
                         const Upstream& upstream) {
  upstream([this, asker = std::move(asker), policy, key, stale = std::move(stale)](Answer r) {
    std::shared_ptr<Flight> f;
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      auto it = flights_.find(key.key);
      if (it != flights_.end()) {
        f = it->second;
        flights_.erase(it);
      }
    }
    std::shared_ptr<const Entry> entry;
    const char* outcome = "miss";
    if ((r.status == 200 || r.status == 404) && !sets_cookie(r) &&
        (r.replica_lsn == 0 || replica_answer_storable(r.replica_lsn))) {
      // A fetch whose flight is gone (none: a waiter past lock_timeout) is not stored anyway.
      entry = make_entry(r, policy, key, f ? f->generation : -1);
      // A change committed while we fetched may not be in what we got: answer, don't keep it.
      // The epoch is compared under the shard lock (see Store::put_if): an invalidation racing
      // with this store either makes it skip or runs after it and drops the entry.
      if (f) {
        int64_t started = f->epoch;
        int64_t catalog = is_rpc_route(key.route) ? f->catalog_epoch : -1;
        store_.put_if(key.key, entry, [this, started, catalog] {
          return epoch_.load() == started && (catalog < 0 || catalog_epoch_.load() == catalog);
        });
      }
    } else if (r.status >= 500 && stale && serves_if_error(*stale, store_.now_ms())) {
      entry = stale;
      outcome = "stale";
      stale_if_error_.fetch_add(1, std::memory_order_relaxed);
    }
    if (f) {
      for (auto& w : f->waiters) {
        if (w->done.exchange(true)) continue;  // went upstream itself after lock_timeout
        bool shared = policy.shared;
        const char* waiter_outcome = entry == stale ? "stale" : "coalesced";
        w->asker.executor->post([this, w, entry, r, shared, waiter_outcome] {
          if (entry) {
            answer_entry(w->asker, w->route, entry, waiter_outcome, shared);
          } else {
            Answer copy = r;
            copy.outcome = "miss";
            w->asker.reply(std::move(copy));
          }
        });
      }
    }
    if (asker) {  // null for a background refresh
      if (entry) {
        answer_entry(*asker, key.route, entry, outcome, policy.shared);
      } else {
        r.outcome = "miss";
        asker->reply(std::move(r));
      }
    }
  });
}

void ResponseCache::expire_waiters(Executor* executor) {
  std::vector<std::shared_ptr<Waiter>> expired;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = waiters_by_executor_.find(executor);
    if (it == waiters_by_executor_.end()) return;
    int64_t now = store_.now_ms();
    auto& list = it->second;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const std::shared_ptr<Waiter>& w) {
                                if (w->done.load()) return true;
                                if (now < w->deadline_ms) return false;
                                if (!w->done.exchange(true)) expired.push_back(w);
                                return true;
                              }),
               list.end());
  }
  for (auto& w : expired) {
    lock_timeouts_.fetch_add(1, std::memory_order_relaxed);
    w->upstream([w](Answer a) {
      a.outcome = "lock-timeout";
      w->asker.reply(std::move(a));
    });
  }
}

void ResponseCache::invalidated() {
  std::lock_guard<std::mutex> lock(lsn_mu_);
  inv_lsn_pending_ = true;
  inv_at_ms_ = store_.now_ms();
}

void ResponseCache::note_primary_lsn(uint64_t lsn, int64_t sampled_ms) {
  std::lock_guard<std::mutex> lock(lsn_mu_);
  // Strictly after: a position read in the same millisecond may predate the commit.
  if (inv_lsn_pending_ && sampled_ms > inv_at_ms_) {
    inv_lsn_ = std::max(inv_lsn_, lsn);
    inv_lsn_pending_ = false;
  }
}

bool ResponseCache::replica_answer_storable(uint64_t lsn) {
  bool ok;
  {
    std::lock_guard<std::mutex> lock(lsn_mu_);
    ok = !inv_lsn_pending_ && lsn >= inv_lsn_;
  }
  if (!ok) replica_not_stored_.fetch_add(1, std::memory_order_relaxed);
  return ok;
}

void ResponseCache::set_channel_up(bool up) {
  invalidated();  // either way: what replicas had replayed before it is not known to be enough
  if (up) {
    // + 1: an entry stored in this very millisecond may predate the channel, so it is not fresh.
    fresh_after_ms_.store(store_.now_ms() + 1);
  } else {
    fresh_after_ms_.store(INT64_MAX);
    epoch_.fetch_add(1);  // a fetch in flight may miss a notification too: don't store it
  }
}

void ResponseCache::on_change(const std::string& payload) {
  epoch_.fetch_add(1);
  invalidated();
  rapidjson::Document d;
  std::string err;
  bool everything = true;
  std::vector<std::string> users;
  int64_t at = 0;
  if (json::parse(payload, d, err) && d.IsObject()) {
    invalidate_dependents(d);
    auto u = d.FindMember("users");
    if (u != d.MemberEnd() && u->value.IsArray()) {
      everything = false;
      for (const auto& v : u->value.GetArray()) {
        if (v.IsString())
          users.emplace_back(v.GetString(), v.GetStringLength());
        else
          everything = true;  // something we do not understand: be safe
      }
    }
    auto op = d.FindMember("op");
    if (op != d.MemberEnd() && op->value.IsString() &&
        std::string_view(op->value.GetString()) == "RECONNECT") {
      // The channel came back: set_channel_up() made every older entry not fresh already.
      // They are kept, to answer as stale-if-error while the database is still failing.
      flushes_.fetch_add(1, std::memory_order_relaxed);
      notifications_.fetch_add(1, std::memory_order_release);
      return;
    }
    auto a = d.FindMember("at");
    if (a != d.MemberEnd() && a->value.IsInt64()) at = a->value.GetInt64();
  }
  if (everything) {
    // Correctness first: from now on no entry stored before is fresh, and a fetch in flight
    // does not store (the epoch moved above). Freeing the entries may wait.
    mark_all_not_fresh();
    flushes_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(purge_mu_);
    if (flush_limiter_.admit()) {
      purge_pending_ = false;
      store_.invalidate_all();
    } else {
      purge_pending_ = true;
      flushes_coalesced_.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    for (const std::string& user : users)
      store_.invalidate_tag(user);
  }
  if (at > 0) {
    int64_t lag_us = (json::now_unix_ms() - at) * 1000;
    if (lag_us < 0) lag_us = 0;
    last_lag_us_.store(lag_us);
    if (lag_observer_) lag_observer_(static_cast<double>(lag_us) / 1e6);
    int64_t prev = max_lag_us_.load();
    while (lag_us > prev && !max_lag_us_.compare_exchange_weak(prev, lag_us)) {
    }
  }
  // Counted last: once the counter moves, the invalidation is in effect (tests and operators
  // read it as "processed").
  notifications_.fetch_add(1, std::memory_order_release);
}

void ResponseCache::mark_all_not_fresh() {
  // Never lowers the watermark: while the channel is down it is INT64_MAX (nothing is fresh).
  int64_t want = store_.now_ms() + 1;
  int64_t cur = fresh_after_ms_.load();
  while (cur < want && !fresh_after_ms_.compare_exchange_weak(cur, want)) {
  }
}

int64_t ResponseCache::run_pending_purge(int64_t* purged) {
  std::lock_guard<std::mutex> lock(purge_mu_);
  if (!purge_pending_) return -1;
  if (!flush_limiter_.admit()) return std::max<int64_t>(1, flush_limiter_.wait_ms());
  purge_pending_ = false;
  // Entries stored since the flush go too: misses, nothing worse.
  auto n = static_cast<int64_t>(store_.invalidate_all());
  if (purged != nullptr) *purged = n;
  return -1;
}

void ResponseCache::invalidate_dependents(const rapidjson::Document& d) {
  std::shared_ptr<const DependencyIndex> idx = dependencies();
  auto op = d.FindMember("op");
  std::string_view o = op != d.MemberEnd() && op->value.IsString()
                           ? std::string_view(op->value.GetString(), op->value.GetStringLength())
                           : std::string_view();
  auto oid = d.FindMember("oid");
  if (o == "WATCH") {
    // What is watched changed (extension 0.7): a table may have changed unseen meanwhile, and
    // may change unseen until the control connection's check (set_dependencies) says it is
    // watched: not cached until then.
    for (const std::string& r : idx->table_routes) {
      auto it = routes_.find(r);
      if (it != routes_.end()) it->second->uncacheable.store(true, std::memory_order_relaxed);
      invalidate_generation(r);
    }
  } else if (oid != d.MemberEnd()) {
    // An application table (extension 0.7's watch triggers name it by oid too).
    if (!oid->value.IsUint()) return;
    auto it = idx->by_oid.find(oid->value.GetUint());
    if (it == idx->by_oid.end()) return;
    for (const std::string& r : it->second)
      invalidate_generation(r);
  } else if (o != "RELOAD_SCHEMA") {
    // zonegate's own tables (or a flush, a reconnect): whatever user it names, a function that
    // reads them may have read that user's rows for anybody.
    for (const std::string& r : idx->zonegate_routes)
      invalidate_generation(r);
  }
}

bool ResponseCache::invalidate_generation(const std::string& route) {
  auto it = routes_.find(route);
  if (it == routes_.end()) return false;
  it->second->generation.fetch_add(1, std::memory_order_acq_rel);
  generation_bumps_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ResponseCache::set_dependencies(DependencyIndex idx) {
  for (auto& [name, rs] : routes_)
    rs->uncacheable.store(!idx.cacheable(name), std::memory_order_relaxed);
  for (const std::string& r : idx.table_routes)
    invalidate_generation(r);
  catalog_epoch_.fetch_add(1);  // an /rpc fetch in flight under the old index does not store
  std::atomic_store(&dependencies_, std::shared_ptr<const DependencyIndex>(
                                        std::make_shared<DependencyIndex>(std::move(idx))));
}

size_t ResponseCache::purge_all() {
  epoch_.fetch_add(1);
  // Does what a deferred flush purge would do, so that one is satisfied: left pending, it would
  // later drop the entries stored after this purge for no reason.
  std::lock_guard<std::mutex> lock(purge_mu_);
  purge_pending_ = false;
  return store_.invalidate_all();
}

size_t ResponseCache::purge_user(const std::string& user) {
  epoch_.fetch_add(1);
  return store_.invalidate_tag(user);
}

size_t ResponseCache::purge_route(const std::string& r) {
  epoch_.fetch_add(1);
  return store_.invalidate_route(r);
}

CacheStats ResponseCache::stats() const {
  CacheStats s;
  s.store = store_.stats();
  auto add = [&s](const std::string& name, const RouteStats& r) {
    std::map<std::string, int64_t> m = {{"hits", r.hits.load()},
                                        {"misses", r.misses.load()},
                                        {"stale", r.stale.load()},
                                        {"coalesced", r.coalesced.load()},
                                        {"not_modified", r.not_modified.load()},
                                        {"bypass", r.bypass.load()}};
    s.hits += m["hits"];
    s.misses += m["misses"];
    s.stale += m["stale"];
    s.coalesced += m["coalesced"];
    s.not_modified += m["not_modified"];
    s.bypass += m["bypass"];
    s.routes[name] = std::move(m);
  };
  for (const auto& [name, r] : routes_)
    add(name, *r);
  s.revalidations = revalidations_.load();
  s.stale_if_error = stale_if_error_.load();
  s.lock_timeouts = lock_timeouts_.load();
  s.notifications = notifications_.load();
  s.flushes = flushes_.load();
  s.flushes_coalesced = flushes_coalesced_.load();
  s.dependency_invalidations = generation_bumps_.load();
  s.last_invalidation_lag_ms = static_cast<double>(last_lag_us_.load()) / 1000.0;
  s.max_invalidation_lag_ms = static_cast<double>(max_lag_us_.load()) / 1000.0;
  return s;
}

void ResponseCache::describe_metrics(metrics::Text& out) const {
  CacheStats c = stats();
  auto per_route = [&](const char* name, const char* help, const char* key) {
    out.family(name, "counter", help);
    for (const auto& [route, counters] : c.routes)
      out.sample(name, "route=\"" + metrics::label_value(route) + "\"", counters.at(key));
  };
  out.single("zonegate_cache_replica_not_stored_total", "counter",
             "Answers from a replica that were served but not stored: the replica had not "
             "replayed past the latest invalidation.",
             replica_not_stored_.load(std::memory_order_relaxed));
  per_route("zonegate_cache_hits_total", "Requests answered from a fresh cache entry.", "hits");
  per_route("zonegate_cache_misses_total", "Cacheable requests that went to the database.",
            "misses");
  per_route("zonegate_cache_stale_total", "Requests answered from a stale entry (SWR).", "stale");
  per_route("zonegate_cache_coalesced_total",
            "Requests that waited for an identical one in flight.", "coalesced");
  per_route("zonegate_cache_not_modified_total", "304 answers to If-None-Match.", "not_modified");
  out.single("zonegate_cache_stale_if_error_total", "counter",
             "Stale entries served because the database failed.", c.stale_if_error);
  out.single("zonegate_cache_evictions_total", "counter",
             "Entries evicted to stay within cache.max_bytes.", c.store.evictions);
  out.single("zonegate_cache_invalidated_total", "counter",
             "Entries dropped by invalidation or purge.", c.store.invalidated);
  out.single("zonegate_cache_revalidations_total", "counter",
             "Background refreshes (stale-while-revalidate).", c.revalidations);
  out.single("zonegate_cache_lock_timeouts_total", "counter",
             "Coalesced requests that gave up waiting (cache.lock_timeout).", c.lock_timeouts);
  out.single("zonegate_cache_entries", "gauge", "Entries in the cache.", c.store.entries);
  out.single("zonegate_cache_bytes", "gauge", "Bytes the cache holds.", c.store.bytes);
  out.single("zonegate_cache_max_bytes", "gauge", "cache.max_bytes.", c.store.max_bytes);
  out.single(
      "zonegate_notifications_total", "counter",
      "zonegate_changes notifications processed (counted once their invalidation is in effect).",
      c.notifications);
  out.single(
      "zonegate_cache_flushes_total", "counter",
      "Times everything was dropped (\"*\" changes) or made not fresh (listener reconnects).",
      c.flushes);
  out.single("zonegate_cache_dependency_invalidations_total", "counter",
             "Times a change to what a cached /rpc function reads (cache.rpc.<fn>.depends_on) "
             "dropped all its entries.",
             c.dependency_invalidations);
  out.single("zonegate_cache_flushes_coalesced_total", "counter",
             "\"*\" flushes past cache.max_flushes_per_second: in effect at once (no entry fresh), "
             "their purge deferred.",
             c.flushes_coalesced);
}

}  // namespace zonegate::cache
