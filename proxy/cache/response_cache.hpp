// The coherent response cache in front of the database (docs/ARCHITECTURE.md, "The response
// cache"): fresh hits served from memory, stale-while-revalidate and stale-if-error (RFC 5861),
// ETag / If-None-Match → 304, single-flight (N concurrent misses for one key make one query; the
// others wait, at most cache.lock_timeout, as nginx's proxy_cache_lock does), and push invalidation
// from zonegate_changes notifications. Shared by all workers; thread-safe. It knows neither HTTP
// nor the database: it answers through a Reply of its own type and asks an Upstream, so the
// stages between it and the pool (breaker, retries, shedding) sit behind that function.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <rapidjson/document.h>

#include "cache/dependencies.hpp"
#include "cache/flush_limiter.hpp"
#include "cache/store.hpp"
#include "common/executor.hpp"
#include "common/field.hpp"
#include "common/metrics_text.hpp"
#include "config/config.hpp"

namespace zonegate::cache {

struct RouteStats {
  std::atomic<int64_t> hits{0}, misses{0}, stale{0}, coalesced{0}, not_modified{0}, bypass{0};
  // Moved on by every change to what the route reads (an application table, zonegate's
  // tables): entries of an older generation are never served, not even stale (O(1), whatever
  // the number of entries).
  std::atomic<int64_t> generation{0};
  // Not cached at all: a table it reads is not watched (cache/dependencies.hpp).
  std::atomic<bool> uncacheable{false};
};

struct CacheStats {
  StoreStats store;
  int64_t hits = 0, misses = 0, stale = 0, coalesced = 0, not_modified = 0, bypass = 0;
  int64_t revalidations = 0, stale_if_error = 0, lock_timeouts = 0;
  int64_t notifications = 0, flushes = 0;  // flushes: everything dropped ("*" or a reconnect)
  int64_t flushes_coalesced = 0;         // "*" flushes whose purge waited (max_flushes_per_second)
  int64_t dependency_invalidations = 0;  // routes whose entries a change to what they read dropped
  double last_invalidation_lag_ms = -1;  // commit -> entries gone, from the payload's "at"
  double max_invalidation_lag_ms = -1;
  std::map<std::string, std::map<std::string, int64_t>> routes;  // route -> counter -> value
};

// What a handler asks the cache to do.
struct CacheKey {
  std::string route;  // stats and per-route purge
  std::string key;    // the full key: route family, canonical arguments, the user when per-user
  std::string tag;    // the user the answer is about, for invalidation ("" if shared)
};

// An answer as the cache hands it out: what an upstream produced, or a stored entry.
struct Answer {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::shared_ptr<const std::string> shared_body;  // an entry's bytes, shared instead of copied
  std::vector<Field> headers;
  const char* outcome = "";  // how the cache answered: "hit", "miss", "stale", "bypass", ...
  // From a replica: its replay position when asked (a lower bound); 0 from the primary.
  uint64_t replica_lsn = 0;
  const std::string& bytes() const { return shared_body ? *shared_body : body; }
};

using Reply = std::function<void(Answer)>;
// Produces the answer for a miss; calls `done` exactly once, on the calling thread.
using Upstream = std::function<void(Reply done)>;

// Who asks. `reply` runs on `executor`'s thread (a coalesced waiter is answered from the
// thread of the request that fetched the entry, through executor->post()).
struct Asker {
  Executor* executor = nullptr;
  std::optional<std::string> if_none_match;
  Reply reply;
};

class ResponseCache : public metrics::Source {
 public:
  ResponseCache(const config::CacheConfig& cfg, std::vector<std::string> route_names,
                Store::Clock clock);
  // Answers from the cache or through `upstream`, per `policy`.
  void serve(Asker asker, const config::CachePolicy& policy, const CacheKey& key,
             Upstream upstream);
  // A zonegate_changes payload (verified by the control connection): drops the named users'
  // entries, or everything for "*". Everything: at once no entry is fresh (O(1), the freshness
  // watermark); the purge that frees them runs at most cache.max_flushes_per_second times a
  // second, later ones wait for run_pending_purge().
  void on_change(const std::string& payload);
  // Runs the purge of a coalesced flush if the limiter allows it now (then *purged, if given,
  // is the number of entries it dropped). Returns the milliseconds until it can run, or -1 when
  // none is pending (any more).
  int64_t run_pending_purge(int64_t* purged = nullptr);
  // Makes every entry stored so far not fresh, in O(1) (a stale-if-error reserve still).
  void mark_all_not_fresh();
  size_t purge_all();
  size_t purge_user(const std::string& user);
  size_t purge_route(const std::string& route);
  CacheStats stats() const;
  // The invalidation channel (LISTEN) is up or down. While it is down a NOTIFY may be missed,
  // so no entry is fresh: every request goes upstream, and entries answer only as
  // stale-if-error when that fails. Entries made before it came back up stay not fresh.
  void set_channel_up(bool up);
  void describe_metrics(metrics::Text& out) const override;
  // Called by each worker's timer: lets coalesced waiters past cache.lock_timeout go upstream.
  void expire_waiters(Executor* executor);
  // A position of the primary's WAL and when (this cache's clock) the query that read it was
  // sent: after an invalidation, the first position read after it is what a replica must have
  // replayed for its answers to be stored (docs/ARCHITECTURE.md, "Replicas and the cache").
  void note_primary_lsn(uint64_t lsn, int64_t sampled_ms);
  int64_t now_ms() const { return store_.now_ms(); }
  int64_t replica_answers_not_stored() const { return replica_not_stored_.load(); }
  // Receives each notification's invalidation lag in seconds (metrics).
  void set_lag_observer(std::function<void(double)> fn) { lag_observer_ = std::move(fn); }
  // What the cached /rpc functions read, as checked at a catalog load: routes refused stop
  // being cached; every route that reads an application table starts a new generation (a
  // change may have been made while it was not watched).
  void set_dependencies(DependencyIndex idx);
  std::shared_ptr<const DependencyIndex> dependencies() const {
    return std::atomic_load(&dependencies_);
  }
  // Drops the entries of a route (a new generation: O(1)); returns false for an unknown route.
  bool invalidate_generation(const std::string& route);

 private:
  struct Waiter;
  struct Flight;
  void lead(std::shared_ptr<Asker> asker, const config::CachePolicy& policy, const CacheKey& key,
            std::shared_ptr<const Entry> stale, const Upstream& upstream);
  // Answers `asker` with the entry (or 304 when its If-None-Match matches).
  void answer_entry(const Asker& asker, const std::string& route,
                    const std::shared_ptr<const Entry>& e, const char* outcome, bool shared);
  std::shared_ptr<const Entry> make_entry(const Answer& r, const config::CachePolicy& p,
                                          const CacheKey& key, int64_t generation);
  // A notification's effect on the routes it names by table (cache/dependencies.hpp).
  void invalidate_dependents(const rapidjson::Document& d);
  RouteStats& route(const std::string& name);

  const config::CacheConfig& cfg_;
  Store store_;
  std::map<std::string, std::unique_ptr<RouteStats>> routes_;  // fixed at construction
  RouteStats other_;
  mutable std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::mutex waiters_mu_;
  std::unordered_map<Executor*, std::vector<std::shared_ptr<Waiter>>> waiters_by_executor_;
  std::atomic<int64_t> revalidations_{0}, stale_if_error_{0}, lock_timeouts_{0};
  std::atomic<int64_t> notifications_{0}, flushes_{0}, flushes_coalesced_{0};
  std::mutex purge_mu_;  // the limiter and the pending flag
  FlushLimiter flush_limiter_;
  bool purge_pending_ = false;
  std::atomic<int64_t> epoch_{
      0};  // bumped by every invalidation; fetches that span one don't store
  // Bumped by every catalog check (set_dependencies): an /rpc fetch that spans one does not
  // store. The /v1 routes do not depend on the catalog, so their fetches still store.
  std::atomic<int64_t> catalog_epoch_{0};
  std::atomic<int64_t> last_lag_us_{-1}, max_lag_us_{-1};
  // Entries stored before this store-clock time are not fresh (INT64_MAX: none is).
  std::atomic<int64_t> fresh_after_ms_{INT64_MAX};
  std::function<void(double)> lag_observer_;
  // Whether an answer a replica gave when it had replayed up to `lsn` may be stored.
  bool replica_answer_storable(uint64_t lsn);
  // An invalidation was applied (or the channel came up): until a primary position read after
  // it is known, no replica answer is stored.
  void invalidated();
  std::mutex lsn_mu_;
  bool inv_lsn_pending_ = true;  // the channel's start counts: the first position comes soon
  int64_t inv_at_ms_ = INT64_MIN;
  uint64_t inv_lsn_ = 0;
  std::atomic<int64_t> replica_not_stored_{0};
  std::shared_ptr<const DependencyIndex> dependencies_;
  std::atomic<int64_t> generation_bumps_{0};
};

}  // namespace zonegate::cache
