// The proxy's edge as pure parts: connection admission caps (http/connection_limits) and the
// admin listener's token, sessions and sign-in throttle (api/admin_auth).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "api/admin_auth.hpp"
#include "http/connection_limits.hpp"

namespace zonegate {
namespace {

using http::ConnectionLimits;
using http::ConnectionLimitsConfig;
using Verdict = ConnectionLimits::Verdict;

TEST(ConnectionLimits, PerAddressCapLeavesOtherAddressesAlone) {
  ConnectionLimits caps(ConnectionLimitsConfig{10, 2, {}});
  EXPECT_EQ(caps.acquire("10.0.0.1"), Verdict::kAdmitted);
  EXPECT_EQ(caps.acquire("10.0.0.1"), Verdict::kAdmitted);
  EXPECT_EQ(caps.acquire("10.0.0.1"), Verdict::kPerAddress);
  EXPECT_EQ(caps.acquire("10.0.0.2"), Verdict::kAdmitted);
  EXPECT_EQ(caps.open(), 3);
  EXPECT_EQ(caps.refused_per_address(), 1);
  caps.release("10.0.0.1");
  EXPECT_EQ(caps.acquire("10.0.0.1"), Verdict::kAdmitted);  // a slot came back
  EXPECT_EQ(caps.addresses(), 2u);
  for (int i = 0; i < 2; ++i)
    caps.release("10.0.0.1");
  caps.release("10.0.0.2");
  EXPECT_EQ(caps.open(), 0);
  EXPECT_EQ(caps.addresses(), 0u);  // no entry left behind for a closed address
}

TEST(ConnectionLimits, TotalCapAndExemptAddresses) {
  net::Cidr lb;
  std::string err;
  ASSERT_TRUE(net::Cidr::parse("192.168.0.0/16", lb, err));
  ConnectionLimits caps(ConnectionLimitsConfig{5, 1, {lb}});
  // A balancer carries many clients: no per-address cap for it, only the total.
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(caps.acquire("192.168.1.7"), Verdict::kAdmitted);
  EXPECT_EQ(caps.acquire("10.1.1.1"), Verdict::kAdmitted);
  EXPECT_EQ(caps.acquire("10.1.1.2"), Verdict::kTotal);
  EXPECT_EQ(caps.acquire("192.168.1.7"), Verdict::kTotal);
  EXPECT_EQ(caps.refused_total(), 2);
  EXPECT_EQ(caps.open(), 5);
  caps.release("192.168.1.7");
  EXPECT_EQ(caps.acquire("10.1.1.2"), Verdict::kAdmitted);
}

TEST(ConnectionLimits, NoPerAddressCapWhenZero) {
  ConnectionLimits caps(ConnectionLimitsConfig{100, 0, {}});
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(caps.acquire("127.0.0.1"), Verdict::kAdmitted);
  EXPECT_EQ(caps.acquire("127.0.0.1"), Verdict::kTotal);
  EXPECT_EQ(caps.addresses(), 0u);
}

TEST(ConnectionLimits, RacingWorkersNeverAdmitPastTheCaps) {
  ConnectionLimits caps(ConnectionLimitsConfig{1000, 50, {}});
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i)
        if (caps.acquire("10.9.9.9") == Verdict::kAdmitted) admitted.fetch_add(1);
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(admitted.load(), 50);
  EXPECT_EQ(caps.open(), 50);
  EXPECT_EQ(caps.refused_per_address(), 350);
}

struct FakeTime {
  int64_t unix_s = 1'800'000'000;
  int64_t mono_ns = 1'000'000'000;
};

api::AdminAuth make_auth(FakeTime& t, const std::string& token, bool secure = false) {
  config::AuthConfig a;
  a.admin_token = token;
  config::AdminConfig adm;
  adm.secure_cookie = secure;
  adm.session_ttl_ms = 3'600'000;
  adm.login_quota = 3;
  adm.login_window_s = 60;
  return api::AdminAuth(
      a, adm, [&t] { return t.unix_s; }, [&t] { return t.mono_ns; });
}

const std::string kToken = "admin-token-0123456789abcdef0123456789";

TEST(AdminAuth, TokenComparesWholeTokensOnly) {
  FakeTime t;
  api::AdminAuth auth = make_auth(t, kToken);
  EXPECT_TRUE(auth.enabled());
  EXPECT_TRUE(auth.token_matches(kToken));
  EXPECT_FALSE(auth.token_matches(kToken.substr(0, kToken.size() - 1)));
  EXPECT_FALSE(auth.token_matches(kToken + "x"));
  EXPECT_FALSE(auth.token_matches(""));
  http::Request req;
  req.headers.push_back({"authorization", "Bearer " + kToken});
  EXPECT_TRUE(auth.bearer_matches(req));
  req.headers[0].value = "Bearer " + kToken + "0";
  EXPECT_FALSE(auth.bearer_matches(req));
  // Without a configured token nothing matches, the empty string included.
  api::AdminAuth off = make_auth(t, "");
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.token_matches(""));
}

TEST(AdminAuth, SessionsExpireAndAreRevokedBySignOut) {
  FakeTime t;
  api::AdminAuth auth = make_auth(t, kToken);
  const std::string s = auth.new_session();
  EXPECT_EQ(s.find(kToken), std::string::npos);  // the cookie never carries the token
  EXPECT_TRUE(auth.valid_session(s));
  // Tampering with any part breaks the MAC.
  std::string forged = s;
  forged[0] = forged[0] == '9' ? '8' : '9';
  EXPECT_FALSE(auth.valid_session(forged));
  EXPECT_FALSE(auth.valid_session(s.substr(0, s.size() - 1) + (s.back() == 'a' ? "b" : "a")));
  EXPECT_FALSE(auth.valid_session("garbage"));
  EXPECT_FALSE(auth.valid_session(""));
  // Expiry.
  t.unix_s += 3600;
  EXPECT_TRUE(auth.valid_session(s));
  t.unix_s += 1;
  EXPECT_FALSE(auth.valid_session(s));
  // Revocation: every session issued before it ends; new ones work.
  t.unix_s -= 10;
  const std::string a = auth.new_session();
  EXPECT_TRUE(auth.valid_session(a));
  auth.revoke_sessions();
  EXPECT_FALSE(auth.valid_session(a));
  const std::string b = auth.new_session();
  EXPECT_TRUE(auth.valid_session(b));
  EXPECT_EQ(auth.revocations(), 1);
  // Another process (another random key) does not accept this one's sessions.
  api::AdminAuth other = make_auth(t, kToken);
  EXPECT_FALSE(other.valid_session(b));
}

TEST(AdminAuth, CookieAttributes) {
  FakeTime t;
  EXPECT_EQ(make_auth(t, kToken).cookie_attributes(false),
            "; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=3600");
  EXPECT_EQ(make_auth(t, kToken, true).cookie_attributes(true),
            "; Path=/admin; HttpOnly; SameSite=Strict; Secure; Max-Age=0");
}

TEST(AdminAuth, SignInThrottlePerClientAddress) {
  FakeTime t;
  api::AdminAuth auth = make_auth(t, kToken);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(auth.admit_login("10.0.0.1").allowed) << i;
  resilience::RateDecision d = auth.admit_login("10.0.0.1");
  EXPECT_FALSE(d.allowed);
  EXPECT_GT(d.retry_after_ns, 0);
  EXPECT_LE(d.retry_after_ns, int64_t{20} * 1'000'000'000);  // one attempt per 20 s refills
  EXPECT_TRUE(auth.admit_login("10.0.0.2").allowed);         // another client is not affected
  t.mono_ns += d.retry_after_ns;
  EXPECT_TRUE(auth.admit_login("10.0.0.1").allowed);
  EXPECT_EQ(auth.logins_throttled(), 1);
}

}  // namespace
}  // namespace zonegate
