// CIDR matching and client-address resolution; see cidr.hpp. inet_pton does the parsing.
#include "common/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace zonegate::net {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool parse_plain(std::string_view text, Address& out) {
  if (text.empty() || text.size() > 45) return false;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out.bytes.fill(0);
    out.bytes[10] = out.bytes[11] = 0xff;
    std::memcpy(out.bytes.data() + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.bytes.data(), &v6, 16);
    return true;
  }
  return false;
}

bool is_v4_mapped(const Address& a) {
  for (int i = 0; i < 10; ++i)
    if (a.bytes[i] != 0) return false;
  return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

}  // namespace

bool Address::parse(std::string_view text, Address& out) {
  text = trim(text);
  if (!text.empty() && text.front() == '"' && text.size() >= 2 && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  if (!text.empty() && text.front() == '[') {  // [v6] or [v6]:port
    size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    return parse_plain(text.substr(1, close - 1), out);
  }
  if (parse_plain(text, out)) return true;
  size_t colon = text.rfind(':');  // a.b.c.d:port
  if (colon != std::string_view::npos && text.find(':') == colon) {
    return parse_plain(text.substr(0, colon), out) && is_v4_mapped(out);
  }
  return false;
}

bool Cidr::parse(std::string_view text, Cidr& out, std::string& error) {
  text = trim(text);
  size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  Address a;
  if (!parse_plain(addr, a)) {
    error = "\"" + std::string(text) + "\" is not an IPv4 or IPv6 address range (like 10.0.0.0/8)";
    return false;
  }
  bool v4 = addr.find(':') == std::string_view::npos;
  int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3)
      bits = -1;
    else {
      bits = 0;
      for (char c : p) {
        if (c < '0' || c > '9') {
          bits = -1;
          break;
        }
        bits = bits * 10 + (c - '0');
      }
    }
    if (bits < 0 || bits > max_bits) {
      error =
          "\"" + std::string(text) + "\": the prefix length must be 0.." + std::to_string(max_bits);
      return false;
    }
  }
  out.prefix_ = v4 ? bits + 96 : bits;
  // Clear the host bits so contains() compares the network only.
  for (int i = 0; i < 16; ++i) {
    int keep = out.prefix_ - i * 8;
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    a.bytes[i] &= mask;
  }
  out.base_ = a;
  return true;
}

bool Cidr::contains(const Address& a) const {
  for (int i = 0; i < 16; ++i) {
    int keep = prefix_ - i * 8;
    if (keep <= 0) return true;
    uint8_t mask = keep >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - keep));
    if ((a.bytes[i] & mask) != base_.bytes[i]) return false;
  }
  return true;
}

namespace {

bool trusted_address(const Address& a, const std::vector<Cidr>& trusted) {
  return std::any_of(trusted.begin(), trusted.end(), [&](const Cidr& c) { return c.contains(a); });
}

// The hops of X-Forwarded-For ("a, b, c") or of Forwarded's for= ("for=a;proto=x, for=b"),
// in order, as written.
std::vector<std::string_view> hops(std::string_view xff, std::string_view fwd) {
  std::vector<std::string_view> out;
  auto split = [&](std::string_view s, bool forwarded) {
    while (!s.empty()) {
      size_t comma = s.find(',');
      std::string_view elem = trim(s.substr(0, comma));
      if (forwarded) {  // find for= among ;-separated pairs
        std::string_view found;
        while (!elem.empty()) {
          size_t semi = elem.find(';');
          std::string_view pair = trim(elem.substr(0, semi));
          if (pair.size() > 4 && (pair[0] == 'f' || pair[0] == 'F') &&
              (pair[1] == 'o' || pair[1] == 'O') && (pair[2] == 'r' || pair[2] == 'R') &&
              pair[3] == '=') {
            found = pair.substr(4);
          }
          elem = semi == std::string_view::npos ? std::string_view() : elem.substr(semi + 1);
        }
        out.push_back(found);
      } else {
        out.push_back(elem);
      }
      s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    }
  };
  // Forwarded is the standard (RFC 7239); X-Forwarded-For is used when it is absent.
  if (!fwd.empty())
    split(fwd, true);
  else
    split(xff, false);
  return out;
}

std::string canonical(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (is_v4_mapped(a))
    inet_ntop(AF_INET, a.bytes.data() + 12, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace

std::string client_address(const std::string& peer, std::string_view x_forwarded_for,
                           std::string_view forwarded, const std::vector<Cidr>& trusted) {
  Address p;
  if (trusted.empty() || !Address::parse(peer, p) || !trusted_address(p, trusted)) return peer;
  std::vector<std::string_view> h = hops(x_forwarded_for, forwarded);
  std::string client = peer;
  for (size_t i = h.size(); i-- > 0;) {
    Address a;
    if (!Address::parse(h[i], a)) break;  // "unknown", an obfuscated name or garbage: stop
    client = canonical(a);
    if (!trusted_address(a, trusted)) break;
  }
  return client;
}

}  // namespace zonegate::net
