// GeoJSON boundary parsing: RapidJSON builds a DOM, then a fixed-depth walk checks the RFC 7946
// Polygon/MultiPolygon shape and names the polygon, ring and position at fault.
#include "core/geojson.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <system_error>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>

#include "core/error.hpp"

namespace zonegate::geo {
namespace {

using rapidjson::SizeType;
using rapidjson::Value;

// Iterative: "[[[[..." cannot overflow the C stack (the parser keeps a heap stack, and the DOM's
// pool allocator frees without recursing). Numbers as strings: RapidJSON 1.1.0's own conversion
// has undefined behaviour on extreme exponents (found by tests/fuzz/geojson_fuzz), so
// NumberHandler converts them. Validated encoding: echoed strings are valid UTF-8.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseNumbersAsStringsFlag |
                                 rapidjson::kParseValidateEncodingFlag;

// At most this many characters of an unexpected "type" are echoed back.
constexpr size_t kMaxEchoedTypeChars = 40;

// For a JSON number std::from_chars found out of double's range: whether it is too large, as
// opposed to too close to zero. The text is valid JSON number syntax (RapidJSON checked it).
bool overflows(std::string_view text) {
  size_t e = text.find_first_of("eE");
  std::string_view mantissa = text.substr(0, e);
  // Saturate far beyond any input length, so order + exponent below cannot overflow or mislead.
  constexpr long long kSaturate = 1'000'000'000'000'000LL;
  long long exponent = 0;
  if (e != std::string_view::npos) {
    size_t i = e + 1;
    bool negative = i < text.size() && text[i] == '-';
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    for (; i < text.size(); ++i)
      exponent = std::min(exponent * 10 + (text[i] - '0'), kSaturate);
    if (negative) exponent = -exponent;
  }
  // Decimal order of the leading nonzero digit: 2 for "123.4", -3 for "0.001".
  size_t point = std::min(mantissa.find('.'), mantissa.size());
  size_t first = mantissa.find_first_of("123456789");
  if (first == std::string_view::npos) return false;  // zero is never out of range
  long long order = first < point ? static_cast<long long>(point - first) - 1
                                  : -static_cast<long long>(first - point);
  return order + exponent >= 0;
}

// Builds the DOM through Document's SAX interface, turning the number texts that
// kParseNumbersAsStringsFlag delivers into doubles: correctly rounded, ±inf past the largest
// double (rejected later as not finite), ±0 below the smallest.
class NumberHandler {
 public:
  explicit NumberHandler(rapidjson::Document& doc) : doc_(doc) {}

  bool RawNumber(const char* str, SizeType length, bool) {
    double v = 0;
    auto [end, ec] = std::from_chars(str, str + length, v);
    bool negative = length > 0 && str[0] == '-';
    if (ec == std::errc::result_out_of_range) {
      double magnitude = overflows({str, length}) ? HUGE_VAL : 0.0;
      v = negative ? -magnitude : magnitude;
    } else if (ec != std::errc() || end != str + length) {
      v = std::nan("");  // cannot happen for JSON syntax; NaN is rejected as not finite anyway
    }
    return doc_.Double(v);
  }

  // Everything else goes to the Document unchanged.
  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned i) { return doc_.Uint(i); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t i) { return doc_.Uint64(i); }
  bool Double(double d) { return doc_.Double(d); }
  bool String(const char* s, SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool Key(const char* s, SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool EndObject(SizeType members) { return doc_.EndObject(members); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(SizeType elements) { return doc_.EndArray(elements); }

 private:
  rapidjson::Document& doc_;
};

// Throws the one error kind of this file.
[[noreturn]] void fail(const std::string& message) {
  throw Error(sqlstate::kInvalidParameterValue, message);
}

// Shortest text that parses back to the same double (106.8, not 106.800000).
std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// A position as the client would have written it: [lon, lat].
std::string format_point(const Point& p) {
  return "[" + format_number(p.lon) + ", " + format_number(p.lat) + "]";
}

// RapidJSON's English reason without its trailing period, so " at byte N" reads as one sentence.
std::string parse_reason(rapidjson::ParseErrorCode code) {
  std::string reason = rapidjson::GetParseError_En(code);
  if (!reason.empty() && reason.back() == '.') reason.pop_back();
  return reason;
}

// The first max_chars characters of a UTF-8 string, never cutting a character in half (the
// parser has validated the encoding, so continuation bytes are the only ones to skip).
std::string truncate_utf8(const char* s, size_t len, size_t max_chars) {
  size_t chars = 0;
  size_t i = 0;
  for (; i < len; ++i) {
    bool starts_char = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (starts_char && chars++ == max_chars) break;
  }
  return std::string(s, i);
}

// "polygon P ring R": the prefix of every ring-level message.
std::string ring_name(size_t p, size_t r) {
  return "polygon " + std::to_string(p) + " ring " + std::to_string(r);
}

// One position: 2 or 3 finite numbers (altitude dropped), longitude and latitude in range.
Point parse_position(const Value& v, size_t p, size_t r, size_t k) {
  std::string name = ring_name(p, r) + " position " + std::to_string(k);
  bool ok = v.IsArray() && (v.Size() == 2 || v.Size() == 3);
  for (SizeType i = 0; ok && i < v.Size(); ++i) {
    // Past the largest double, NumberHandler stored ±inf: valid JSON, but not a coordinate.
    ok = v[i].IsNumber() && std::isfinite(v[i].GetDouble());
  }
  if (!ok) fail(name + " is not [longitude, latitude]");
  Point pt{v[0].GetDouble(), v[1].GetDouble()};
  if (pt.lon < -180.0 || pt.lon > 180.0) {
    fail(name + ": longitude " + format_number(pt.lon) + " is outside [-180, 180]");
  }
  if (pt.lat < -90.0 || pt.lat > 90.0) {
    fail(name + ": latitude " + format_number(pt.lat) + " is outside [-90, 90]");
  }
  return pt;
}

// One linear ring: every position valid, at least 4 of them, first equal to last. Closure is
// checked on longitude and latitude only, since the altitude is dropped anyway.
Ring parse_ring(const Value& v, size_t p, size_t r) {
  if (!v.IsArray()) fail(ring_name(p, r) + " is not an array of positions");
  Ring ring;
  ring.reserve(v.Size());
  for (SizeType k = 0; k < v.Size(); ++k)
    ring.push_back(parse_position(v[k], p, r, k));
  if (ring.size() < 4) {
    fail(ring_name(p, r) + " has " + std::to_string(ring.size()) +
         (ring.size() == 1 ? " position" : " positions") + "; a closed ring needs at least 4");
  }
  const Point& first = ring.front();
  const Point& last = ring.back();
  if (first.lon != last.lon || first.lat != last.lat) {
    fail(ring_name(p, r) + " is not closed: first position " + format_point(first) +
         " differs from last " + format_point(last));
  }
  return ring;
}

// One polygon's coordinates: a non-empty array of rings, the exterior first.
Polygon parse_polygon(const Value& v, size_t p) {
  if (!v.IsArray()) fail("polygon " + std::to_string(p) + " is not an array of rings");
  if (v.Empty()) fail("polygon " + std::to_string(p) + " has no rings");
  Polygon polygon;
  polygon.rings.reserve(v.Size());
  for (SizeType r = 0; r < v.Size(); ++r)
    polygon.rings.push_back(parse_ring(v[r], p, r));
  return polygon;
}

}  // namespace

// Parses the document, checks "type", then walks "coordinates" at exactly the depth the type
// calls for, so deeper nesting shows up as a bad position rather than being recursed into.
MultiPolygon parse_boundary(std::string_view json) {
  rapidjson::Document doc;
  // A plain byte stream, not EncodedInputStream: that one skips a byte order mark byte by byte
  // (a lone 0xBB would vanish), and RFC 8259 lets a parser refuse the mark altogether.
  rapidjson::MemoryStream bytes(json.data(), json.size());
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document& d) {
    NumberHandler handler(d);
    rapidjson::Reader reader;
    result = reader.Parse<kParseFlags>(bytes, handler);
    return !result.IsError();
  };
  doc.Populate(generate);
  if (result.IsError()) {
    fail("invalid JSON: " + parse_reason(result.Code()) + " at byte " +
         std::to_string(result.Offset()));
  }
  // The parser reads a NUL byte as end of input; anything after one is trailing garbage.
  if (bytes.Tell() != json.size()) {
    fail("invalid JSON: " + parse_reason(rapidjson::kParseErrorDocumentRootNotSingular) +
         " at byte " + std::to_string(bytes.Tell()));
  }

  if (!doc.IsObject()) fail("boundary must be a GeoJSON object");
  auto type = doc.FindMember("type");
  if (type == doc.MemberEnd() || !type->value.IsString()) fail("boundary has no \"type\" member");
  std::string_view type_name(type->value.GetString(), type->value.GetStringLength());
  bool is_polygon = type_name == "Polygon";
  if (!is_polygon && type_name != "MultiPolygon") {
    fail("boundary type must be \"Polygon\" or \"MultiPolygon\", got \"" +
         truncate_utf8(type_name.data(), type_name.size(), kMaxEchoedTypeChars) + "\"");
  }
  auto coords = doc.FindMember("coordinates");
  if (coords == doc.MemberEnd() || !coords->value.IsArray()) {
    fail("boundary has no \"coordinates\" array");
  }

  MultiPolygon mp;
  const Value& c = coords->value;
  if (is_polygon) {
    mp.polygons.push_back(parse_polygon(c, 0));
    return mp;
  }
  if (c.Empty()) fail("MultiPolygon has no polygons");
  mp.polygons.reserve(c.Size());
  for (SizeType p = 0; p < c.Size(); ++p)
    mp.polygons.push_back(parse_polygon(c[p], p));
  return mp;
}

// Min/max over every exterior ring; holes lie inside their exterior, so they cannot widen it.
Bounds bounds_of(const MultiPolygon& mp) {
  bool any = false;
  Bounds b{0, 0, 0, 0};
  for (const Polygon& polygon : mp.polygons) {
    if (polygon.rings.empty()) continue;
    for (const Point& pt : polygon.rings.front()) {
      if (!any) {
        b = {pt.lon, pt.lat, pt.lon, pt.lat};
        any = true;
        continue;
      }
      b.min_lon = std::min(b.min_lon, pt.lon);
      b.min_lat = std::min(b.min_lat, pt.lat);
      b.max_lon = std::max(b.max_lon, pt.lon);
      b.max_lat = std::max(b.max_lat, pt.lat);
    }
  }
  // An empty box has no honest value; only a hand-built MultiPolygon can get here.
  if (!any) fail("boundary has no exterior positions to bound");
  return b;
}

// Sum of every ring's size, holes and closing positions included.
size_t position_count(const MultiPolygon& mp) {
  size_t n = 0;
  for (const Polygon& polygon : mp.polygons) {
    for (const Ring& ring : polygon.rings)
      n += ring.size();
  }
  return n;
}

}  // namespace zonegate::geo
