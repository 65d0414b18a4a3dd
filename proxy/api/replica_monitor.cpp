// Replica lag monitor; see replica_monitor.hpp.
#include "api/replica_monitor.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace zonegate::api {

upstream::ReplicaStatus ReplicaMonitor::Replica::status() const {
  upstream::ReplicaStatus s;
  s.reachable = reachable.load(std::memory_order_relaxed);
  s.replay_lsn = replay_lsn.load(std::memory_order_relaxed);
  s.lag_bytes = lag_bytes.load(std::memory_order_relaxed);
  s.lag_ms = lag_ms.load(std::memory_order_relaxed);
  s.checked_at_ms = checked_at_ms.load(std::memory_order_relaxed);
  return s;
}

ReplicaMonitor::ReplicaMonitor(const config::DatabaseConfig& primary,
                               const std::vector<config::DatabaseConfig>& replicas,
                               const std::vector<std::string>& names,
                               const config::RoutingConfig& routing,
                               std::function<int64_t()> now_ms,
                               std::function<void(upstream::Lsn, int64_t)> primary_lsn)
    : routing_(routing), now_ms_(std::move(now_ms)), on_primary_lsn_(std::move(primary_lsn)) {
  auto link = [this](const config::DatabaseConfig* db, std::string name, int index) {
    auto l = std::make_unique<Link>();
    l->db = db;
    l->app_name = std::move(name);
    l->owner = this;
    l->index = index;
    links_.push_back(std::move(l));
  };
  link(&primary, "zonegate-proxy-lag", -1);
  for (size_t i = 0; i < replicas.size(); ++i) {
    auto r = std::make_unique<Replica>();
    r->name = names[i];
    replicas_.push_back(std::move(r));
    link(&replicas[i], "zonegate-proxy-lag", static_cast<int>(i));
  }
}

ReplicaMonitor::~ReplicaMonitor() = default;

void ReplicaMonitor::start(uv_loop_t* loop) {
  loop_ = loop;
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  for (auto& l : links_) {
    uv_timer_init(loop_, &l->retry);
    l->retry.data = l.get();
    connect(*l);
  }
  const auto every = static_cast<uint64_t>(routing_.check_interval_ms);
  uv_timer_start(&tick_, on_tick, every, every);
}

void ReplicaMonitor::connect(Link& l) {
  if (stopping_ || l.conn != nullptr) return;
  pg::Connection::Events ev;
  ev.on_ready = [this, &l](pg::Connection*) {
    l.backoff.reset();
    if (l.index < 0) {
      probe_primary();
    } else {
      probe_replica(static_cast<size_t>(l.index));
    }
  };
  ev.on_broken = [this, &l](pg::Connection*, const std::string& why) {
    l.in_flight = false;
    if (l.index >= 0) unreachable(static_cast<size_t>(l.index), why);
  };
  ev.on_closed = [this, &l](pg::Connection* c) {
    delete c;
    if (l.conn == c) l.conn = nullptr;
    if (!stopping_) {
      uv_timer_start(&l.retry, on_retry, static_cast<uint64_t>(l.backoff.next_ms()), 0);
    }
  };
  l.conn = new pg::Connection(loop_, *l.db, std::move(ev), l.app_name);
  l.conn->start();
}

void ReplicaMonitor::on_retry(uv_timer_t* t) {
  auto* l = static_cast<Link*>(t->data);
  l->owner->connect(*l);
}

void ReplicaMonitor::on_tick(uv_timer_t* t) {
  static_cast<ReplicaMonitor*>(t->data)->tick();
}

void ReplicaMonitor::tick() {
  const int64_t now = now_ms_();
  for (auto& l : links_) {
    // A probe that never comes back (a hung server or network): don't trust the link.
    if (l->in_flight && l->conn != nullptr &&
        now - l->sent_ms > std::max<int64_t>(2 * routing_.check_interval_ms, 2'000)) {
      if (l->index >= 0) unreachable(static_cast<size_t>(l->index), "lag check timed out");
      l->conn->close(pg::Failure::kConnection);
      continue;
    }
  }
  probe_primary();
  for (size_t i = 0; i < replicas_.size(); ++i)
    probe_replica(i);
}

void ReplicaMonitor::probe_primary() {
  Link& l = *links_[0];
  if (l.conn == nullptr || l.conn->state() != pg::Connection::State::kReady || l.in_flight) return;
  static const pg::Statement st =
      pg::make_statement("SELECT pg_catalog.pg_current_wal_insert_lsn()::text", {});
  pg::Job job;
  job.statements.push_back(st);
  const int64_t sent = now_ms_();
  l.in_flight = true;
  l.sent_ms = sent;
  job.done = [this, &l, sent](const pg::Result& r) {
    l.in_flight = false;
    const std::optional<std::string>* v = r.scalar();
    upstream::Lsn lsn = 0;
    if (!r.ok() || v == nullptr || !*v || !upstream::parse_lsn(**v, lsn)) return;
    uint64_t prev = primary_lsn_.load();
    while (lsn > prev && !primary_lsn_.compare_exchange_weak(prev, lsn)) {
    }
    if (on_primary_lsn_) on_primary_lsn_(lsn, sent);
  };
  l.conn->send(std::move(job));
}

void ReplicaMonitor::probe_replica(size_t i) {
  Link& l = *links_[i + 1];
  if (l.conn == nullptr || l.conn->state() != pg::Connection::State::kReady || l.in_flight) return;
  static const pg::Statement st = pg::make_statement(
      "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()::text, "
      "pg_catalog.pg_last_wal_receive_lsn()::text, "
      "coalesce((extract(epoch FROM pg_catalog.now() - "
      "pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::bigint, -1)",
      {});
  pg::Job job;
  job.statements.push_back(st);
  l.in_flight = true;
  l.sent_ms = now_ms_();
  job.done = [this, &l, i](const pg::Result& r) {
    l.in_flight = false;
    if (!r.ok() || r.rows.size() != 1 || r.rows[0].size() != 4) {
      unreachable(i, r.ok() ? "unexpected answer to the lag check" : r.message);
      return;
    }
    const auto& row = r.rows[0];
    Replica& rep = *replicas_[i];
    if (row[0].value_or("f") != "t") {
      // Promoted (or a primary named as a replica): its data may have diverged; reads stay off.
      unreachable(i, "not in recovery: not a replica");
      return;
    }
    upstream::Lsn replay = 0, receive = 0;
    if (!row[1] || !upstream::parse_lsn(*row[1], replay)) {
      unreachable(i, "no replay position yet");
      return;
    }
    if (row[2]) upstream::parse_lsn(*row[2], receive);
    const upstream::Lsn primary = primary_lsn_.load();
    const int64_t bytes =
        primary == 0 ? -1 : static_cast<int64_t>(primary > replay ? primary - replay : 0);
    int64_t ms = -1;
    if (bytes == 0) {
      ms = 0;  // everything the primary had is replayed: no lag, however long ago it committed
    } else if (row[3]) {
      ms = std::max<int64_t>(0, std::stoll(*row[3]));
    }
    rep.replay_lsn.store(std::max(rep.replay_lsn.load(), replay));
    rep.lag_bytes.store(bytes);
    rep.lag_ms.store(ms);
    rep.checked_at_ms.store(now_ms_());
    if (!rep.reachable.exchange(true)) {
      log::info("replica reachable", {{"upstream", rep.name}, {"lag_bytes", bytes}});
    }
  };
  l.conn->send(std::move(job));
}

void ReplicaMonitor::unreachable(size_t i, const std::string& why) {
  Replica& rep = *replicas_[i];
  {
    std::lock_guard<std::mutex> lock(rep.mu);
    rep.error = why;
  }
  if (rep.reachable.exchange(false)) {
    log::warn("replica unreachable: its reads go elsewhere",
              {{"upstream", rep.name}, {"error", why}});
  }
}

void ReplicaMonitor::stop() {
  stopping_ = true;
  uv_timer_stop(&tick_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  for (auto& l : links_) {
    uv_timer_stop(&l->retry);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->retry), nullptr);
    if (l->conn != nullptr) l->conn->close(pg::Failure::kShutdown);
  }
}

}  // namespace zonegate::api
