// Signed change notifications on the proxy's side (docs/SECURITY.md, "The change channel"): the
// verifier (good and bad MACs, unsigned and truncated payloads, replays, the version window, key
// rotation), the cooldown and the flush limiter on an injected clock, the response cache's
// coalesced flushes, and the two config keys.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cache/flush_limiter.hpp"
#include "cache/notify_verifier.hpp"
#include "cache/response_cache.hpp"
#include "config/config.hpp"

using namespace zonegate::cache;

namespace {

const std::string kKey(32, '\x42');
const std::string kOtherKey(32, '\x43');

// The JSON text the extension builds (jsonb's output), for a version.
std::string body(int64_t version, const std::string& users = R"(["u1"])",
                 const std::string& op = "INSERT") {
  return R"({"at": 1796610696050, "op": ")" + op + R"(", "table": "user_zones", "users": )" +
         users + R"(, "version": )" + std::to_string(version) + "}";
}

NotifyReject verify(NotifyVerifier& v, const std::string& payload, NotifyMessage* m = nullptr) {
  NotifyMessage scratch;
  return v.verify(payload, m != nullptr ? m : &scratch).reject;
}

}  // namespace

TEST(NotifyVerifier, SignsLikeTheExtension) {
  // The payload of the regress suite's RFC 4231 case 2 key, and the suffix's exact form.
  EXPECT_EQ(NotifyVerifier::mac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  std::string p = NotifyVerifier::sign(kKey, R"({"op": "FLUSH"})");
  EXPECT_EQ(p.rfind(R"({"op": "FLUSH","mac":")", 0), 0U) << p;
  EXPECT_EQ(p.size(), std::string(R"({"op": "FLUSH"})").size() + 73);
  EXPECT_EQ(p.substr(p.size() - 2), "\"}");
  EXPECT_TRUE(NotifyVerifier::has_signature(p));
}

TEST(NotifyVerifier, AcceptsAGoodMacAndHandsOutTheSignedText) {
  NotifyVerifier v;
  v.set_key(kKey, 10);
  NotifyMessage m;
  std::string text = body(11);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, text), &m), NotifyReject::kNone);
  EXPECT_EQ(m.json, text);
  EXPECT_EQ(m.version, 11);
  EXPECT_EQ(m.at, 1796610696050);
  EXPECT_EQ(m.op, "INSERT");
}

TEST(NotifyVerifier, RefusesABadMac) {
  NotifyVerifier v;
  v.set_key(kKey, 10);
  // Another key, one flipped digit, a changed body under the original MAC, an empty key.
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kOtherKey, body(11))), NotifyReject::kBadMac);
  std::string p = NotifyVerifier::sign(kKey, body(12));
  std::string flipped = p;
  char& digit = flipped[flipped.size() - 3];
  digit = digit == '0' ? '1' : '0';
  EXPECT_EQ(verify(v, flipped), NotifyReject::kBadMac);
  std::string forged = p;
  forged.replace(forged.find("[\"u1\"]"), 6, "\"*\"   ");
  EXPECT_EQ(verify(v, forged), NotifyReject::kBadMac);
  NotifyVerifier keyless;
  EXPECT_EQ(verify(keyless, p), NotifyReject::kBadMac);
  // None of them moved the window: the genuine one still passes.
  EXPECT_EQ(verify(v, p), NotifyReject::kNone);
}

TEST(NotifyVerifier, RefusesUnsignedPayloads) {
  NotifyVerifier v;
  v.set_key(kKey, 10);
  for (const char* p : {"reload schema", R"({"users":"*"})", R"({"table":"*","op":"FLUSH"})", "",
                        "{}", R"({"users": ["u1"], "version": 11, "at": 1})"}) {
    EXPECT_EQ(verify(v, p), NotifyReject::kUnsigned) << p;
  }
}

TEST(NotifyVerifier, TruncatedOrGarbledSignaturesAreMalformedNeverAccepted) {
  NotifyVerifier v;
  v.set_key(kKey, 10);
  std::string p = NotifyVerifier::sign(kKey, body(11));
  for (size_t n = 0; n < p.size(); ++n) {
    NotifyReject r = verify(v, p.substr(0, n));
    EXPECT_NE(r, NotifyReject::kNone) << n;
    bool has_mac = p.substr(0, n).find("\"mac\"") != std::string::npos;
    EXPECT_EQ(r, has_mac ? NotifyReject::kMalformed : NotifyReject::kUnsigned) << n;
  }
  std::string upper = p;
  for (size_t i = upper.size() - 66; i < upper.size() - 2; ++i)
    upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  EXPECT_NE(upper, p);
  EXPECT_EQ(verify(v, upper), NotifyReject::kMalformed);
  EXPECT_EQ(verify(v, p + " "), NotifyReject::kMalformed);
  // Authentic but not what the extension sends: no version, a negative one, no at, no op,
  // not JSON.
  for (const char* text :
       {R"({"at": 1, "op": "INSERT", "users": "*"})", R"({"at": 1, "op": "X", "version": -1})",
        R"({"op": "INSERT", "version": 20})", R"({"at": 1, "version": 21})",
        R"({"at": 1, "op": "X", "version": "22"})", "{not json}"}) {
    EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, text)), NotifyReject::kMalformed) << text;
  }
  EXPECT_EQ(verify(v, p), NotifyReject::kNone);
}

TEST(NotifyVerifier, RefusesAReplay) {
  NotifyVerifier v;
  v.set_key(kKey, 10);
  std::string flush = NotifyVerifier::sign(kKey, body(11, "\"*\"", "FLUSH"));
  EXPECT_EQ(verify(v, flush), NotifyReject::kNone);
  for (int i = 0; i < 100; ++i) {
    NotifyMessage m;
    NotifyVerdict verdict = v.verify(flush, &m);
    EXPECT_EQ(verdict.reject, NotifyReject::kReplay);
    EXPECT_FALSE(verdict.too_old);  // a duplicate, not a sequence that went back
  }
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(12))), NotifyReject::kNone);
  EXPECT_EQ(verify(v, flush), NotifyReject::kReplay);
}

TEST(NotifyVerifier, VersionWindowTakesCommitOrderNotVersionOrder) {
  NotifyVerifier v(128);
  v.set_key(kKey, 1000);
  auto ok = [&](int64_t ver) { return verify(v, NotifyVerifier::sign(kKey, body(ver))); };
  // Transactions commit out of version order: each version counts once, in any order.
  EXPECT_EQ(ok(1003), NotifyReject::kNone);
  EXPECT_EQ(ok(1001), NotifyReject::kNone);
  EXPECT_EQ(ok(1002), NotifyReject::kNone);
  EXPECT_EQ(ok(1001), NotifyReject::kReplay);
  // Below the anchor but within the window: a transaction that began before the proxy
  // fetched change_seq and committed after; once.
  EXPECT_EQ(ok(900), NotifyReject::kNone);
  EXPECT_EQ(ok(900), NotifyReject::kReplay);
  // The window is 128 versions below the newest (1003): 876 is the last one in it.
  EXPECT_EQ(ok(876), NotifyReject::kNone);
  NotifyMessage m;
  NotifyVerdict old = v.verify(NotifyVerifier::sign(kKey, body(875)), &m);
  EXPECT_EQ(old.reject, NotifyReject::kReplay);
  EXPECT_TRUE(old.too_old);
  // The window slides with the newest version; what it passes over is forgotten correctly.
  EXPECT_EQ(ok(1200), NotifyReject::kNone);
  EXPECT_EQ(ok(1003), NotifyReject::kReplay);  // too old now
  EXPECT_EQ(ok(1100), NotifyReject::kNone);    // a slot reused from 972
  EXPECT_EQ(ok(1100), NotifyReject::kReplay);
  EXPECT_EQ(ok(5000), NotifyReject::kNone);  // a jump past the whole window
  EXPECT_EQ(ok(4990), NotifyReject::kNone);
  EXPECT_EQ(ok(4990), NotifyReject::kReplay);
  EXPECT_EQ(ok(1200), NotifyReject::kReplay);
}

TEST(NotifyVerifier, ACapturedOldPayloadIsRefusedRightAfterTheProxyStarts) {
  // The window is anchored at change_seq's value when the key is fetched: a payload captured a
  // window ago cannot be replayed into a fresh proxy.
  NotifyVerifier v(1024);
  v.set_key(kKey, 50'000);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(40'000, "\"*\"", "FLUSH"))),
            NotifyReject::kReplay);
}

TEST(NotifyVerifier, KeyRotation) {
  NotifyVerifier v(1024);
  v.set_key(kKey, 10);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(11))), NotifyReject::kNone);
  // A forgery with a leaked key pushes the newest version far ahead: genuine ones look old.
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(int64_t{1} << 40))), NotifyReject::kNone);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(12))), NotifyReject::kReplay);
  // rotate_notify_key(): the new key re-anchors the window at change_seq; the old key fails.
  v.set_key(kOtherKey, 20);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(21))), NotifyReject::kBadMac);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kOtherKey, body(19))), NotifyReject::kNone);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kOtherKey, body(21))), NotifyReject::kNone);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kOtherKey, body(21))), NotifyReject::kReplay);
}

TEST(NotifyVerifier, SameKeyKeepsTheWindowUnlessChangeSeqWentBack) {
  NotifyVerifier v(1024);
  v.set_key(kKey, 100);
  std::string p = NotifyVerifier::sign(kKey, body(101));
  EXPECT_EQ(verify(v, p), NotifyReject::kNone);
  v.set_key(kKey, 150);  // a reconnect: the window stays, the payload is still a replay
  EXPECT_EQ(verify(v, p), NotifyReject::kReplay);
  v.set_key(kKey, 5000);
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(5001))), NotifyReject::kNone);
  // change_seq restarted (a restore): new versions look too old until it is read again.
  NotifyMessage m;
  NotifyVerdict old = v.verify(NotifyVerifier::sign(kKey, body(3)), &m);
  EXPECT_TRUE(old.too_old);
  v.set_key(kKey, 2);  // last_value below the newest seen: the sequence went back
  EXPECT_EQ(verify(v, NotifyVerifier::sign(kKey, body(3))), NotifyReject::kNone);
}

TEST(ReplayWindow, UnanchoredAcceptsAnythingOnceAndRoundsItsSize) {
  ReplayWindow w(100);
  EXPECT_EQ(w.size(), 128U);
  EXPECT_EQ(w.check(7), ReplayWindow::Check::kNew);
  w.mark(7);
  EXPECT_TRUE(w.anchored());
  EXPECT_EQ(w.check(7), ReplayWindow::Check::kDuplicate);
  EXPECT_EQ(w.check(6), ReplayWindow::Check::kNew);
  // Every version of a long run is remembered exactly while in the window.
  for (int64_t x = 8; x < 10'000; ++x) {
    ASSERT_EQ(w.check(x), ReplayWindow::Check::kNew) << x;
    w.mark(x);
    ASSERT_EQ(w.check(x), ReplayWindow::Check::kDuplicate) << x;
    if (x - 127 >= 7) {
      ASSERT_EQ(w.check(x - 127), ReplayWindow::Check::kDuplicate) << x;
    }
    ASSERT_EQ(w.check(x - 128), ReplayWindow::Check::kTooOld) << x;
  }
}

TEST(Cooldown, OncePerIntervalOnTheInjectedClock) {
  int64_t now = 1'000;
  Cooldown c(3'000, [&now] { return now; });
  EXPECT_EQ(c.remaining_ms(), 0);
  EXPECT_TRUE(c.try_acquire());
  EXPECT_FALSE(c.try_acquire());
  EXPECT_EQ(c.remaining_ms(), 3'000);
  now += 2'999;
  EXPECT_FALSE(c.try_acquire());
  EXPECT_EQ(c.remaining_ms(), 1);
  now += 1;
  EXPECT_TRUE(c.try_acquire());
  EXPECT_FALSE(c.try_acquire());
}

TEST(FlushLimiter, AtMostNPerSecondSliding) {
  int64_t now = 0;
  FlushLimiter f(3, [&now] { return now; });
  EXPECT_TRUE(f.admit());
  now = 500;
  EXPECT_TRUE(f.admit());
  now = 900;
  EXPECT_TRUE(f.admit());
  EXPECT_FALSE(f.admit());  // a fourth within the second
  EXPECT_EQ(f.wait_ms(), 100);
  now = 999;
  EXPECT_FALSE(f.admit());
  now = 1'000;  // the one at 0 left the window
  EXPECT_EQ(f.wait_ms(), 0);
  EXPECT_TRUE(f.admit());
  EXPECT_FALSE(f.admit());
  EXPECT_EQ(f.wait_ms(), 500 + 1000 - 1000);  // the one at 500 leaves at 1500
  now = 1'500;
  EXPECT_TRUE(f.admit());
}

TEST(FlushLimiter, AFloodIsAdmittedAtTheRateNotMore) {
  int64_t now = 0;
  FlushLimiter f(5, [&now] { return now; });
  int admitted = 0;
  for (now = 0; now < 10'000; ++now) {  // a flush every millisecond for ten seconds
    admitted += f.admit() ? 1 : 0;
  }
  EXPECT_EQ(admitted, 50);
  FlushLimiter one(0, [&now] { return now; });  // at least one per second
  EXPECT_TRUE(one.admit());
  EXPECT_FALSE(one.admit());
}

namespace {

// A response cache on an injected clock, answering from an upstream that counts its calls.
struct CacheFixture {
  int64_t now = 1'000;
  int upstream_calls = 0;
  zonegate::config::CacheConfig cfg;
  std::unique_ptr<ResponseCache> cache;
  zonegate::config::CachePolicy policy;

  explicit CacheFixture(int max_flushes_per_second) {
    cfg.max_flushes_per_second = max_flushes_per_second;
    cache =
        std::make_unique<ResponseCache>(cfg, std::vector<std::string>{"r"}, [this] { return now; });
    cache->set_channel_up(true);
    now += 1;
  }
  // How the cache answered one request for `user`.
  std::string get(const std::string& user) {
    std::string outcome;
    Asker a;
    a.reply = [&outcome](const Answer& ans) { outcome = ans.outcome; };
    cache->serve(std::move(a), policy, CacheKey{"r", "r/" + user, user}, [this](const Reply& done) {
      ++upstream_calls;
      Answer ans;
      ans.body = "{}";
      done(std::move(ans));
    });
    return outcome;
  }
};

}  // namespace

TEST(ResponseCacheFlushes, PastTheLimitAFlushTakesEffectAtOnceAndItsPurgeWaits) {
  CacheFixture f(1);
  EXPECT_EQ(f.get("u1"), "miss");
  EXPECT_EQ(f.get("u1"), "hit");
  f.cache->on_change(R"({"op": "FLUSH", "users": "*", "version": 1})");  // purged at once
  EXPECT_EQ(f.cache->stats().store.entries, 0);
  EXPECT_EQ(f.cache->run_pending_purge(), -1);
  f.now += 10;
  EXPECT_EQ(f.get("u1"), "miss");
  EXPECT_EQ(f.get("u2"), "miss");
  EXPECT_EQ(f.get("u1"), "hit");
  // A second flush within the second: no entry is fresh from now on, none is freed yet.
  f.cache->on_change(R"({"op": "FLUSH", "users": "*", "version": 2})");
  CacheStats s = f.cache->stats();
  EXPECT_EQ(s.flushes, 2);
  EXPECT_EQ(s.flushes_coalesced, 1);
  EXPECT_EQ(s.store.entries, 2);
  f.now += 1;
  EXPECT_EQ(f.get("u1"), "miss");  // correctness: the flush is in effect
  EXPECT_EQ(f.get("u1"), "hit");   // stored after the flush: fresh
  EXPECT_EQ(f.get("u2"), "miss");
  // The purge runs once the limiter allows it.
  int64_t wait = f.cache->run_pending_purge();
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 1000);
  f.now += wait;
  EXPECT_EQ(f.cache->run_pending_purge(), -1);
  EXPECT_EQ(f.cache->stats().store.entries, 0);
  EXPECT_EQ(f.cache->run_pending_purge(), -1);  // nothing pending any more
}

TEST(ResponseCacheFlushes, AnAdminPurgeAllSatisfiesADeferredPurge) {
  CacheFixture f(1);
  f.cache->on_change(R"({"users": "*"})");  // purged at once
  f.now += 10;
  f.cache->on_change(R"({"users": "*"})");  // deferred
  EXPECT_EQ(f.cache->stats().flushes_coalesced, 1);
  f.cache->purge_all();
  f.now += 1;
  EXPECT_EQ(f.get("u1"), "miss");
  EXPECT_EQ(f.get("u1"), "hit");
  f.now += 2000;
  EXPECT_EQ(f.cache->run_pending_purge(), -1);  // nothing left to do
  EXPECT_EQ(f.cache->stats().store.entries, 1);
  EXPECT_EQ(f.get("u1"), "hit");
}

TEST(ResponseCacheFlushes, AFloodOfFlushesPurgesAtTheConfiguredRate) {
  CacheFixture f(5);
  int purges_run = 0;
  for (int i = 0; i < 1000; ++i) {  // a "*" every millisecond for a second
    f.get("u");
    f.cache->on_change(R"({"users": "*"})");
    if (f.cache->stats().store.entries == 0) ++purges_run;
    f.cache->run_pending_purge();
    f.now += 1;
  }
  CacheStats s = f.cache->stats();
  EXPECT_EQ(s.flushes, 1000);
  EXPECT_EQ(s.flushes_coalesced, 995);
  EXPECT_EQ(purges_run, 5);
}

TEST(ResponseCacheFlushes, AWatermarkNeverReopensAChannelThatIsDown) {
  CacheFixture f(1);
  EXPECT_EQ(f.get("u"), "miss");
  f.cache->on_change(R"({"users": "*"})");
  f.cache->set_channel_up(false);
  f.now += 5;
  f.cache->on_change(R"({"users": "*"})");  // coalesced while down: must not make entries fresh
  f.now += 5;
  EXPECT_EQ(f.get("u"), "miss");
  EXPECT_EQ(f.get("u"), "miss");
}

TEST(Config, NotifyAuthFollowsTheProfileAndMaxFlushesIsBounded) {
  using zonegate::config::load_string;
  auto dev = load_string("", "d.yaml");
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev.config.cache.notify_auth, "optional");
  EXPECT_EQ(dev.config.cache.max_flushes_per_second, 5);
  auto prod = load_string(
      "profile: prod\nauth:\n  jwt:\n    secret: 0123456789abcdef0123456789abcdef\n"
      "    audience: [zonegate]\n  admin_token: admin-0123456789abcdef0123456789abcdef\n",
      "p.yaml");
  ASSERT_TRUE(prod.ok()) << prod.errors.front().to_string();
  EXPECT_EQ(prod.config.cache.notify_auth, "required");
  auto set =
      load_string("cache:\n  notify_auth: required\n  max_flushes_per_second: 20\n", "s.yaml");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.config.cache.notify_auth, "required");
  EXPECT_EQ(set.config.cache.max_flushes_per_second, 20);
  auto bad = load_string("cache:\n  notify_auth: off\n  max_flushes_per_second: 0\n", "b.yaml");
  ASSERT_EQ(bad.errors.size(), 2U);
  EXPECT_EQ(bad.errors[0].to_string(),
            "b.yaml:2:16: cache.notify_auth: \"off\" is not one of required, optional");
  EXPECT_EQ(bad.errors[1].to_string(),
            "b.yaml:3:27: cache.max_flushes_per_second: 0 is out of range [1, 10000]");
}
