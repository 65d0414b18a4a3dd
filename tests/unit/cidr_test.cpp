// Address ranges and the client address behind trusted proxies (common/cidr.hpp).
#include "common/cidr.hpp"

#include <gtest/gtest.h>

using zonegate::net::Address;
using zonegate::net::Cidr;
using zonegate::net::client_address;

namespace {

Cidr cidr(const char* s) {
  Cidr c;
  std::string err;
  EXPECT_TRUE(Cidr::parse(s, c, err)) << s << ": " << err;
  return c;
}

bool in(const char* range, const char* addr) {
  Address a;
  EXPECT_TRUE(Address::parse(addr, a)) << addr;
  return cidr(range).contains(a);
}

}  // namespace

TEST(Cidr, MatchesNetworksOfBothFamilies) {
  EXPECT_TRUE(in("10.0.0.0/8", "10.200.3.4"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(in("192.168.1.77/24", "192.168.1.1"));  // host bits are ignored
  EXPECT_FALSE(in("192.168.1.0/25", "192.168.1.200"));
  EXPECT_TRUE(in("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(in("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(in("0.0.0.0/0", "8.8.8.8"));
  EXPECT_FALSE(in("0.0.0.0/0", "::1"));  // an IPv4 range never holds an IPv6 address
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:1::5"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::5"));
  EXPECT_TRUE(in("::1", "[::1]:8080"));
  EXPECT_TRUE(in("10.0.0.0/8", "10.1.1.1:443"));
}

TEST(Cidr, RefusesWhatIsNotARange) {
  for (const char* bad : {"", "10.0.0/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129",
                          "host.example", "10.0.0.0/8/8", "1.2.3.4.5"}) {
    Cidr c;
    std::string err;
    EXPECT_FALSE(Cidr::parse(bad, c, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(ClientAddress, ForwardedHeadersOnlyFromTrustedPeers) {
  std::vector<Cidr> trusted = {cidr("10.0.0.0/8")};
  // An untrusted peer's headers are ignored, whatever they say.
  EXPECT_EQ(client_address("203.0.113.9", "1.2.3.4", "", trusted), "203.0.113.9");
  EXPECT_EQ(client_address("203.0.113.9", "", "for=1.2.3.4", trusted), "203.0.113.9");
  EXPECT_EQ(client_address("10.0.0.5", "1.2.3.4", "", {}), "10.0.0.5");  // nothing trusted
  // From a trusted peer: the rightmost hop that is not itself a trusted proxy.
  EXPECT_EQ(client_address("10.0.0.5", "1.2.3.4", "", trusted), "1.2.3.4");
  EXPECT_EQ(client_address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.9.9.9", "", trusted), "1.2.3.4");
  // A forged leftmost entry does not win over the hop the trusted proxy saw.
  EXPECT_EQ(client_address("10.0.0.5", "evil, 1.2.3.4", "", trusted), "1.2.3.4");
  // Garbage where the client should be: the last trusted hop is used, never the garbage.
  EXPECT_EQ(client_address("10.0.0.5", "not-an-ip", "", trusted), "10.0.0.5");
  EXPECT_EQ(client_address("10.0.0.5", "1.2.3.4, unknown", "", trusted), "10.0.0.5");
  // Forwarded (RFC 7239), with quoting, ports and IPv6 brackets; it wins over X-Forwarded-For.
  EXPECT_EQ(client_address("10.0.0.5", "9.9.9.9", "for=1.2.3.4;proto=https", trusted), "1.2.3.4");
  EXPECT_EQ(client_address("10.0.0.5", "", "for=\"[2001:db8::1]:4711\", for=10.1.1.1", trusted),
            "2001:db8::1");
  EXPECT_EQ(client_address("10.0.0.5", "", "For=\"1.2.3.4:80\"", trusted), "1.2.3.4");
}
