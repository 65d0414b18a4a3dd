// The byte-level formatting helpers of the hand-written access line (access_log.cpp): fixed-size
// copies, JSON string escaping 8 bytes at a time, integers and milliseconds. Inline, in a header,
// because they belong on the hot path's inlined code (storing a record on the event loop).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace zonegate::log::detail {

// Whether any of the 8 bytes in w is below 0x20, '"' or '\\' (the characters JSON escapes).
// Exact as an existence test (hasless/haszero of "Bit Twiddling Hacks"; the borrows they can
// cause only misplace which byte, never invent or hide one).
inline bool needs_escape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t ctl = (w - kOnes * 0x20) & ~w & kHigh;
  const uint64_t q = w ^ (kOnes * '"'), b = w ^ (kOnes * '\\');
  return (ctl | ((q - kOnes) & ~q & kHigh) | ((b - kOnes) & ~b & kHigh)) != 0;
}

// Copies n bytes to p and returns p + n. Up to 32 bytes take at most two loads and two stores
// of a fixed size (overlapping when n is not a power of two) instead of a call to memcpy: an
// access record's strings are mostly that short, and a memcpy call per string was a third of
// storing a record on the event loop.
inline char* put_bytes(char* p, const char* s, size_t n) {
  if (n >= 8) {
    if (n > 32) {
      std::memcpy(p, s, n);
    } else if (n > 16) {
      char a[16], b[16];
      std::memcpy(a, s, 16);
      std::memcpy(b, s + n - 16, 16);
      std::memcpy(p, a, 16);
      std::memcpy(p + n - 16, b, 16);
    } else {
      uint64_t a, b;
      std::memcpy(&a, s, 8);
      std::memcpy(&b, s + n - 8, 8);
      std::memcpy(p, &a, 8);
      std::memcpy(p + n - 8, &b, 8);
    }
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(p, &a, 4);
    std::memcpy(p + n - 4, &b, 4);
  } else if (n > 0) {
    p[0] = s[0];
    p[n / 2] = s[n / 2];
    p[n - 1] = s[n - 1];
  }
  return p + n;
}

// Whether any byte of s is one JSON escapes: whole 8-byte blocks, the last one overlapping the
// one before (bytes checked twice change nothing), so no byte-by-byte tail for n >= 8.
inline bool needs_escaping(const char* s, size_t n) {
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
  }
  uint64_t w;
  for (size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&w, s + i, 8);
    if (needs_escape(w)) return true;
  }
  std::memcpy(&w, s + n - 8, 8);
  return needs_escape(w);
}

// Writes s escaped as the inside of a JSON string at p (room for 6 bytes per input byte must be
// there); returns the new end. Plain 8-byte blocks are copied whole.
inline char* escape_into(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* in = s.data();
  const size_t n = s.size();
  if (!needs_escaping(in, n)) return put_bytes(p, in, n);  // nearly every path and user
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, in + i, 8);
      if (needs_escape(w)) break;
      std::memcpy(p, in + i, 8);
      p += 8;
      i += 8;
    }
    if (i >= n) break;
    const auto c = static_cast<unsigned char>(in[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = static_cast<char>(c);
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"':
      case '\\':
        *p++ = static_cast<char>(c);
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 15];
        break;
    }
  }
  return p;
}

// Copies a string literal; its length is a constant, so the copy compiles to a few moves.
template <size_t N>
inline char* put(char* p, const char (&s)[N]) {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

inline char* put(char* p, std::string_view s) {
  return put_bytes(p, s.data(), s.size());
}

inline char* put_int(char* p, int64_t v) {
  return std::to_chars(p, p + 24, v).ptr;
}

// Nanoseconds as milliseconds with three decimals (0.125), rounded to the microsecond.
inline char* put_millis(char* p, uint64_t ns) {
  const uint64_t us = (ns + 500) / 1000;
  p = std::to_chars(p, p + 24, us / 1000).ptr;
  const auto frac = static_cast<unsigned>(us % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  return p;
}

}  // namespace zonegate::log::detail
