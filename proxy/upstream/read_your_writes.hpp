// Read-your-writes across replicas (docs/ARCHITECTURE.md, "Replicas"): after a subject's write
// commits on the primary, that subject's reads go only to replicas whose replay position has
// passed the write (else to the primary). Remembers, per subject, the primary's WAL position
// after the commit; a write whose position is not known yet (in flight, or its position query
// still out) sends the subject to the primary. Bounded memory: entries expire after `ttl`, and
// past `max_subjects` the oldest go, their positions folded into one floor that every subject
// then needs, so forgetting never weakens the guarantee, it only asks more of replicas.
// Shared by the workers: thread-safe. Pure: positions and time are given by the caller.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "resilience/clock.hpp"

namespace zonegate::upstream {

// A WAL position (pg_lsn as a 64-bit number); 0 = none.
using Lsn = uint64_t;
// What required() answers when only the primary may serve the subject now.
inline constexpr Lsn kPrimaryOnly = UINT64_MAX;

// "16/B374D848" -> 0x16B374D848; false for anything else.
bool parse_lsn(const std::string& text, Lsn& out);
std::string lsn_text(Lsn lsn);

class ReadYourWrites {
 public:
  ReadYourWrites(size_t max_subjects, int64_t ttl_ms, resilience::Clock clock);

  // A write of `subject` is about to run on the primary: until written() or the entry expires,
  // the subject reads from the primary.
  void writing(const std::string& subject);
  // The write committed (or may have) and the primary's position after it is `lsn`.
  void written(const std::string& subject, Lsn lsn);
  // The replay position a replica needs to serve `subject` now (0: any), or kPrimaryOnly.
  Lsn required(const std::string& subject);

  size_t size() const;
  Lsn floor() const;

 private:
  struct Entry {
    Lsn lsn = 0;
    int pending = 0;  // writes whose position is not known yet
    int64_t expires_ms = 0;
  };
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
  };
  Shard& shard_of(const std::string& subject);
  // Drops expired entries and, past the shard's share, the oldest (into floor_). Under s.mu.
  void trim_locked(Shard& s, int64_t now);

  static constexpr size_t kShards = 16;
  size_t share_;
  int64_t ttl_ms_;
  resilience::Clock clock_;
  std::array<Shard, kShards> shards_;
  mutable std::mutex floor_mu_;
  Lsn floor_ = 0;
};

}  // namespace zonegate::upstream
