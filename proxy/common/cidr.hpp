// Address ranges (CIDR) and the client address of a request behind trusted proxies.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zonegate::net {

// An IPv4 or IPv6 address in 16 bytes (IPv4 as ::ffff:a.b.c.d so both families compare alike).
struct Address {
  std::array<uint8_t, 16> bytes{};
  // Parses "10.1.2.3", "::1", "[::1]", "10.1.2.3:8080", "[::1]:8080"; false for anything else.
  static bool parse(std::string_view text, Address& out);
};

class Cidr {
 public:
  // "10.0.0.0/8", "2001:db8::/32", or a bare address (one host). False with a message otherwise.
  static bool parse(std::string_view text, Cidr& out, std::string& error);
  bool contains(const Address& a) const;

 private:
  Address base_;
  int prefix_ = 128;  // in bits of the 16-byte form
};

// The address a request came from. `peer` is the TCP peer. Only when the peer is one of `trusted`
// are X-Forwarded-For (rightmost first) and Forwarded (for=) believed: hops that are themselves
// trusted are skipped and the first other one is the client. An unparsable hop ends the walk
// there (the last trusted hop is used), so a forged header can never name an arbitrary address
// from an untrusted peer.
std::string client_address(const std::string& peer, std::string_view x_forwarded_for,
                           std::string_view forwarded, const std::vector<Cidr>& trusted);

}  // namespace zonegate::net
