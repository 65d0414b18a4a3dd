// Redis GCRA client; see gcra_client.hpp.
#include "redis/gcra_client.hpp"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>
#include <vector>

#include "common/log.hpp"

namespace zonegate::redis {

// Redis numbers in Lua are doubles: microseconds since the epoch (~1.8e15) are exact below 2^53.
// The key lives as long as its bucket is not full again (new_tat - now), plus a millisecond.
const char* const kGcraScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
local remaining = math.floor((tolerance + interval - (new_tat - now)) / interval)
return {1, remaining, 0, new_tat - now}
)lua";

namespace {

GcraClient* client_of(const redisAsyncContext* c) {
  return static_cast<GcraClient*>(c->data);
}

// privdata carries the command's id, not a pointer: a reply that comes after the command timed
// out finds nothing to call.
void* id_data(uint64_t id) {
  // An integer in a pointer's clothes, never dereferenced: the check's concern (lost pointer
  // provenance) does not apply.
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  return reinterpret_cast<void*>(static_cast<uintptr_t>(id));
}

uint64_t data_id(void* p) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
}

// An array of four integers, as the script returns, into a decision (microseconds to ns).
bool parse_decision(const redisReply* r, resilience::RateDecision& d) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 4) return false;
  for (size_t i = 0; i < 4; ++i)
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return false;
  d.allowed = r->element[0]->integer == 1;
  d.remaining = r->element[1]->integer < 0 ? 0 : r->element[1]->integer;
  d.retry_after_ns = d.allowed ? 0 : r->element[2]->integer * 1000;
  if (!d.allowed && d.retry_after_ns <= 0) d.retry_after_ns = 1;
  d.reset_ns = r->element[3]->integer * 1000;
  return true;
}

}  // namespace

GcraClient::GcraClient(uv_loop_t* loop, const config::RedisConfig& cfg)
    : loop_(loop), cfg_(cfg), backoff_(100, cfg.reconnect_max_ms) {}

GcraClient::~GcraClient() = default;

void GcraClient::start() {
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
  connect();
}

void GcraClient::connect() {
  if (stopping_ || ctx_ != nullptr) return;
  // hiredis resolves a host name with a blocking getaddrinfo: name Redis by address where the
  // proxy runs (it happens at connect only, and with backoff).
  ctx_ = redisAsyncConnect(cfg_.host.c_str(), cfg_.port);
  if (ctx_ == nullptr || ctx_->err != 0) {
    const std::string why = ctx_ != nullptr ? ctx_->errstr : "out of memory";
    if (ctx_ != nullptr) redisAsyncFree(ctx_);
    ctx_ = nullptr;
    lost(why.c_str());
    return;
  }
  ctx_->data = this;
  connect_started_ms_ = uv_now(loop_);
  redisLibuvAttach(ctx_, loop_);
  redisAsyncSetConnectCallback(ctx_, on_connect);
  redisAsyncSetDisconnectCallback(ctx_, on_disconnect);
}

void GcraClient::on_connect(const redisAsyncContext* c, int status) {
  GcraClient* self = client_of(c);
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    self->ctx_ = nullptr;
    self->lost(c->errstr);
    return;
  }
  // AUTH, SELECT and SCRIPT LOAD go out together; ready once all three have answered well.
  redisAsyncContext* ctx = self->ctx_;
  self->setup_left_ = 0;
  if (!self->cfg_.password.empty()) {
    const char* argv[] = {"AUTH", self->cfg_.password.c_str()};
    const size_t len[] = {4, self->cfg_.password.size()};
    redisAsyncCommandArgv(ctx, on_setup_reply, nullptr, 2, argv, len);
    ++self->setup_left_;
  }
  if (self->cfg_.db != 0) {
    const std::string db = std::to_string(self->cfg_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    const size_t len[] = {6, db.size()};
    redisAsyncCommandArgv(ctx, on_setup_reply, nullptr, 2, argv, len);
    ++self->setup_left_;
  }
  const char* argv[] = {"SCRIPT", "LOAD", kGcraScript};
  const size_t len[] = {6, 4, std::strlen(kGcraScript)};
  redisAsyncCommandArgv(ctx, on_setup_reply, id_data(1), 3, argv, len);
  ++self->setup_left_;
}

void GcraClient::on_setup_reply(redisAsyncContext* c, void* reply, void* privdata) {
  GcraClient* self = client_of(c);
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;  // the connection went: on_disconnect says so
  if (r->type == REDIS_REPLY_ERROR) {
    log::warn("redis setup failed", {{"error", std::string(r->str, r->len)}});
    redisAsyncDisconnect(c);
    return;
  }
  if (privdata != nullptr) {  // SCRIPT LOAD: the script's SHA1
    if (r->type != REDIS_REPLY_STRING) {
      redisAsyncDisconnect(c);
      return;
    }
    self->sha_.assign(r->str, r->len);
  }
  if (--self->setup_left_ == 0) {
    self->ready_ = true;
    if (self->on_state_) self->on_state_(true);
    self->backoff_.reset();
    ++self->stats_.connects;
    log::info("redis connected", {{"host", self->cfg_.host}, {"port", self->cfg_.port}});
  }
}

void GcraClient::on_disconnect(const redisAsyncContext* c, int status) {
  GcraClient* self = client_of(c);
  self->ctx_ = nullptr;  // hiredis frees it after this callback
  const bool was_ready = self->ready_;
  self->ready_ = false;
  if (was_ready && self->on_state_) self->on_state_(false);
  ++self->stats_.disconnects;
  if (self->stopping_) return;
  if (was_ready || status != REDIS_OK) {
    log::warn("redis connection lost: global rate limits fall back to local ones",
              {{"error", c->errstr[0] != '\0' ? c->errstr : "closed"}});
  }
  self->schedule_reconnect();
}

void GcraClient::lost(const char* why) {
  ready_ = false;
  if (stopping_) return;
  log::warn("redis unreachable: global rate limits fall back to local ones",
            {{"host", cfg_.host}, {"port", cfg_.port}, {"error", why}});
  schedule_reconnect();
}

void GcraClient::schedule_reconnect() {
  if (stopping_) return;
  uv_timer_start(&retry_, on_retry, static_cast<uint64_t>(backoff_.next_ms()), 0);
}

void GcraClient::on_retry(uv_timer_t* t) {
  static_cast<GcraClient*>(t->data)->connect();
}

void GcraClient::decide(const std::string& key, int64_t interval_us, int64_t tolerance_us,
                        Done done) {
  if (!ready_ || ctx_ == nullptr) {
    ++stats_.down;
    done(Outcome::kDown, resilience::RateDecision{});
    return;
  }
  const uint64_t id = next_id_++;
  const std::string t = std::to_string(interval_us), tau = std::to_string(tolerance_us);
  const char* argv[] = {"EVALSHA", sha_.c_str(), "1", key.c_str(), t.c_str(), tau.c_str()};
  const size_t len[] = {7, sha_.size(), 1, key.size(), t.size(), tau.size()};
  if (redisAsyncCommandArgv(ctx_, on_decide_reply, id_data(id), 6, argv, len) != REDIS_OK) {
    ++stats_.errors;
    done(Outcome::kError, resilience::RateDecision{});
    return;
  }
  pending_.emplace(
      id, Pending{id, uv_now(loop_) + static_cast<uint64_t>(cfg_.timeout_ms), std::move(done)});
  order_.push_back(id);
}

bool GcraClient::take(uint64_t id, Done& done) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return false;
  done = std::move(it->second.done);
  pending_.erase(it);
  return true;
}

void GcraClient::finish(uint64_t id, Outcome o, const resilience::RateDecision& d) {
  Done done;
  if (!take(id, done)) return;  // timed out already: the caller has moved on
  switch (o) {
    case Outcome::kOk:
      ++stats_.ok;
      break;
    case Outcome::kError:
      ++stats_.errors;
      break;
    case Outcome::kTimeout:
      ++stats_.timeouts;
      break;
    case Outcome::kDown:
      ++stats_.down;
      break;
  }
  done(o, d);
}

void GcraClient::on_decide_reply(redisAsyncContext* c, void* reply, void* privdata) {
  GcraClient* self = client_of(c);
  const uint64_t id = data_id(privdata);
  auto* r = static_cast<redisReply*>(reply);
  resilience::RateDecision d;
  if (r == nullptr) {
    self->finish(id, Outcome::kDown, d);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    // NOSCRIPT: the server lost its scripts (a restart, SCRIPT FLUSH). Reconnecting loads it
    // again; meanwhile the callers decide locally.
    if (std::strncmp(r->str, "NOSCRIPT", 8) == 0 && self->ready_) {
      self->ready_ = false;
      if (self->on_state_) self->on_state_(false);
      redisAsyncDisconnect(c);
    }
    self->finish(id, Outcome::kError, d);
    return;
  }
  self->finish(id, parse_decision(r, d) ? Outcome::kOk : Outcome::kError, d);
}

void GcraClient::expire(uint64_t now_ms) {
  while (!order_.empty()) {
    auto it = pending_.find(order_.front());
    if (it == pending_.end()) {
      order_.pop_front();  // answered already
      continue;
    }
    if (it->second.deadline_ms > now_ms) break;
    const uint64_t id = order_.front();
    order_.pop_front();
    finish(id, Outcome::kTimeout, resilience::RateDecision{});
  }
  // A connect that hangs (a black-holed address) is given up on, and tried again later.
  if (ctx_ != nullptr && !ready_ && setup_left_ == 0 &&
      now_ms - connect_started_ms_ > static_cast<uint64_t>(cfg_.connect_timeout_ms)) {
    redisAsyncContext* c = ctx_;
    ctx_ = nullptr;
    redisAsyncFree(c);
    lost("connect timed out");
  }
}

void GcraClient::stop() {
  stopping_ = true;
  if (ready_ && on_state_) on_state_(false);
  ready_ = false;
  if (ctx_ != nullptr) {
    redisAsyncContext* c = ctx_;
    ctx_ = nullptr;
    redisAsyncFree(c);  // calls every pending callback with no reply: kDown
  }
  // Whatever is left (it cannot be answered now) is failed too.
  std::vector<uint64_t> ids;
  ids.reserve(pending_.size());
  for (const auto& [id, p] : pending_)
    ids.push_back(id);
  for (uint64_t id : ids)
    finish(id, Outcome::kDown, resilience::RateDecision{});
  order_.clear();
  uv_timer_stop(&retry_);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_), nullptr);
}

}  // namespace zonegate::redis
