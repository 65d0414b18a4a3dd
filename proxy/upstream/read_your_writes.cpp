// Read-your-writes bookkeeping; see read_your_writes.hpp.
#include "upstream/read_your_writes.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

namespace zonegate::upstream {

bool parse_lsn(const std::string& text, Lsn& out) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size() || slash > 8 ||
      text.size() - slash - 1 > 8) {
    return false;
  }
  auto hex = [](const std::string& s, size_t from, size_t to, uint64_t& v) {
    v = 0;
    for (size_t i = from; i < to; ++i) {
      const char c = s[i];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<uint64_t>(d);
    }
    return true;
  };
  uint64_t hi = 0, lo = 0;
  if (!hex(text, 0, slash, hi) || !hex(text, slash + 1, text.size(), lo)) return false;
  out = (hi << 32) | lo;
  return true;
}

std::string lsn_text(Lsn lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return buf;
}

ReadYourWrites::ReadYourWrites(size_t max_subjects, int64_t ttl_ms, resilience::Clock clock)
    : share_(std::max<size_t>(1, max_subjects / kShards)),
      ttl_ms_(ttl_ms),
      clock_(std::move(clock)) {}

ReadYourWrites::Shard& ReadYourWrites::shard_of(const std::string& subject) {
  return shards_[std::hash<std::string>()(subject) % kShards];
}

void ReadYourWrites::trim_locked(Shard& s, int64_t now) {
  for (auto it = s.map.begin(); it != s.map.end();) {
    if (it->second.expires_ms <= now) {
      it = s.map.erase(it);
    } else {
      ++it;
    }
  }
  if (s.map.size() < share_) return;
  // The oldest quarter goes; what they required, everybody requires from now on.
  std::vector<std::pair<int64_t, const std::string*>> by_age;
  by_age.reserve(s.map.size());
  for (const auto& [subject, e] : s.map)
    by_age.emplace_back(e.expires_ms, &subject);
  const size_t drop = std::max<size_t>(1, s.map.size() / 4);
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<ptrdiff_t>(drop - 1), by_age.end());
  Lsn highest = 0;
  std::vector<std::string> victims;
  victims.reserve(drop);
  for (size_t i = 0; i < drop; ++i)
    victims.push_back(*by_age[i].second);
  for (const std::string& v : victims) {
    const Entry& e = s.map[v];
    // A write whose position is unknown cannot be folded: its subject keeps its entry.
    if (e.pending > 0) continue;
    highest = std::max(highest, e.lsn);
    s.map.erase(v);
  }
  if (highest > 0) {
    std::lock_guard<std::mutex> lock(floor_mu_);
    floor_ = std::max(floor_, highest);
  }
}

void ReadYourWrites::writing(const std::string& subject) {
  if (subject.empty()) return;
  const int64_t now = clock_();
  Shard& s = shard_of(subject);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(subject);
  if (it == s.map.end()) {
    trim_locked(s, now);
    it = s.map.emplace(subject, Entry{}).first;
  }
  ++it->second.pending;
  it->second.expires_ms = now + ttl_ms_;
}

void ReadYourWrites::written(const std::string& subject, Lsn lsn) {
  if (subject.empty()) return;
  const int64_t now = clock_();
  Shard& s = shard_of(subject);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(subject);
  if (it == s.map.end()) {
    trim_locked(s, now);
    it = s.map.emplace(subject, Entry{}).first;
  }
  Entry& e = it->second;
  if (e.pending > 0) --e.pending;
  e.lsn = std::max(e.lsn, lsn);
  e.expires_ms = now + ttl_ms_;
}

Lsn ReadYourWrites::required(const std::string& subject) {
  Lsn need = floor();
  if (subject.empty()) return need;
  const int64_t now = clock_();
  Shard& s = shard_of(subject);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(subject);
  if (it == s.map.end()) return need;
  if (it->second.expires_ms <= now) {
    s.map.erase(it);
    return need;
  }
  if (it->second.pending > 0) return kPrimaryOnly;
  return std::max(need, it->second.lsn);
}

size_t ReadYourWrites::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.map.size();
  }
  return n;
}

Lsn ReadYourWrites::floor() const {
  std::lock_guard<std::mutex> lock(floor_mu_);
  return floor_;
}

}  // namespace zonegate::upstream
