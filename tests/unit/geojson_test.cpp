// GeoJSON zone boundaries (core/geojson): valid Polygons and MultiPolygons parse to the expected
// rings, what RFC 7946 lets a parser ignore is ignored, bounds_of and position_count measure
// right, every invalid document gets its exact message with SQLSTATE 22023, and hostile input
// (200,000 levels of nesting, NUL bytes, bad UTF-8) fails cleanly instead of crashing.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/geojson.hpp"

using zonegate::geo::Bounds;
using zonegate::geo::MultiPolygon;
using zonegate::geo::parse_boundary;
using zonegate::geo::Point;

namespace {

// The message parse_boundary throws for json (checking it is a 22023 zonegate::Error), or
// "<no error>" when it parses.
std::string error_of(std::string_view json) {
  try {
    parse_boundary(json);
  } catch (const zonegate::Error& e) {
    EXPECT_STREQ(e.sqlstate(), zonegate::sqlstate::kInvalidParameterValue) << e.what();
    return e.what();
  }
  return "<no error>";
}

// Whether two points are exactly equal (the parser must not perturb coordinates).
bool same(const Point& a, const Point& b) {
  return a.lon == b.lon && a.lat == b.lat;
}

// A valid closed square ring, for building documents around one bad part.
constexpr const char* kSquare = "[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]";

}  // namespace

TEST(GeoJson, PolygonWithHole) {
  auto mp = parse_boundary(R"({"type": "Polygon", "coordinates": [
      [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
      [[2, 2], [2, 4], [4, 4], [4, 2], [2, 2]]]})");
  ASSERT_EQ(mp.polygons.size(), 1u);
  ASSERT_EQ(mp.polygons[0].rings.size(), 2u);
  const auto& outer = mp.polygons[0].rings[0];
  const auto& hole = mp.polygons[0].rings[1];
  ASSERT_EQ(outer.size(), 5u);
  ASSERT_EQ(hole.size(), 5u);
  EXPECT_TRUE(same(outer[1], Point{10, 0}));
  EXPECT_TRUE(same(outer.front(), outer.back()));
  EXPECT_TRUE(same(hole[2], Point{4, 4}));
}

TEST(GeoJson, MultiPolygonKeepsOrder) {
  auto mp = parse_boundary(R"({"type": "MultiPolygon", "coordinates": [
      [[[106.8, -6.2], [106.9, -6.2], [106.9, -6.1], [106.8, -6.2]]],
      [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]],
       [[1, 1], [2, 1], [2, 2], [1, 1]]]]})");
  ASSERT_EQ(mp.polygons.size(), 2u);
  ASSERT_EQ(mp.polygons[0].rings.size(), 1u);
  ASSERT_EQ(mp.polygons[1].rings.size(), 2u);
  // Parsed to the nearest double: exactly what the literal 106.8 compiles to.
  EXPECT_TRUE(same(mp.polygons[0].rings[0][0], Point{106.8, -6.2}));
  EXPECT_TRUE(same(mp.polygons[1].rings[0][2], Point{180, 90}));
}

TEST(GeoJson, AltitudeIsAcceptedAndDropped) {
  auto mp = parse_boundary(R"({"type": "Polygon", "coordinates": [
      [[0, 0, 5], [1, 0, 5.5], [1, 1], [0, 1, -3], [0, 0, 5]]]})");
  ASSERT_EQ(mp.polygons[0].rings[0].size(), 5u);
  EXPECT_TRUE(same(mp.polygons[0].rings[0][1], Point{1, 0}));
}

TEST(GeoJson, NumbersParseToTheNearestDouble) {
  // Extreme exponents underflow to (signed) zero; other spellings of a number mean the same.
  auto mp = parse_boundary(R"({"type": "Polygon", "coordinates": [[
      [1e-400, -1e-99999999999999999999], [0.1E1, 5e-324], [100000000000000000000e-18, 1E+1],
      [-106.80000000000000001, 0.000000000000000000000000000000000000000000000000001],
      [0, 0]]]})");
  const auto& ring = mp.polygons[0].rings[0];
  EXPECT_EQ(ring[0].lon, 0.0);
  EXPECT_FALSE(std::signbit(ring[0].lon));
  EXPECT_EQ(ring[0].lat, 0.0);
  EXPECT_TRUE(std::signbit(ring[0].lat));
  EXPECT_TRUE(same(ring[1], Point{1, 5e-324}));
  EXPECT_TRUE(same(ring[2], Point{100, 10}));
  EXPECT_TRUE(same(ring[3], Point{-106.8, 1e-51}));
}

TEST(GeoJson, ExtraMembersAreIgnored) {
  auto mp = parse_boundary(
      R"({"bbox": [0, 0, 1, 1], "crs": {"type": "name", "properties": {"name": "EPSG:4326"}},
          "properties": {"name": "Kelurahan X", "nested": [[[[[1]]]]]}, "id": 7,
          "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})");
  ASSERT_EQ(mp.polygons.size(), 1u);
  EXPECT_EQ(mp.polygons[0].rings[0].size(), 5u);
}

TEST(GeoJson, SurroundingWhitespaceIsFine) {
  EXPECT_EQ(error_of(std::string(" \n\t{\"type\": \"Polygon\", \"coordinates\": [") + kSquare +
                     "]}\r\n "),
            "<no error>");
}

TEST(GeoJson, BoundsCoverExteriorRingsOnly) {
  auto mp = parse_boundary(R"({"type": "MultiPolygon", "coordinates": [
      [[[106.8, -6.3], [106.95, -6.3], [106.95, -6.1], [106.8, -6.3]]],
      [[[100, -8], [101.5, -8], [101.5, -7], [100, -8]],
       [[100.5, -7.5], [100.6, -7.5], [100.6, -7.4], [100.5, -7.5]]]]})");
  Bounds b = zonegate::geo::bounds_of(mp);
  EXPECT_EQ(b.min_lon, 100);
  EXPECT_EQ(b.min_lat, -8);
  EXPECT_EQ(b.max_lon, 106.95);
  EXPECT_EQ(b.max_lat, -6.1);
}

TEST(GeoJson, BoundsOfEmptyMultiPolygonThrows) {
  EXPECT_THROW(zonegate::geo::bounds_of(MultiPolygon{}), zonegate::Error);
}

TEST(GeoJson, PositionCountIncludesHolesAndClosingPositions) {
  auto mp = parse_boundary(R"({"type": "MultiPolygon", "coordinates": [
      [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
       [[2, 2], [2, 4], [4, 4], [2, 2]]],
      [[[20, 20], [21, 20], [21, 21], [20, 21], [20, 22], [20, 20]]]]})");
  EXPECT_EQ(zonegate::geo::position_count(mp), 5u + 4u + 6u);
  EXPECT_EQ(zonegate::geo::position_count(MultiPolygon{}), 0u);
}

// Everything the table needs lives in an anonymous namespace: config_test.cpp has its own
// global BadCase, and two different definitions of one name break the One Definition Rule.
namespace {

// The table of bad documents and the exact message each one gets.
struct BadCase {
  std::string json;
  std::string error;
};

// Shows the document (its first 120 bytes) when a case fails, instead of the struct's bytes.
void PrintTo(const BadCase& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.json.substr(0, 120));
}

class GeoJsonError : public ::testing::TestWithParam<BadCase> {};

TEST_P(GeoJsonError, GivesExactMessage) {
  EXPECT_EQ(error_of(GetParam().json), GetParam().error);
}

// A Polygon document around the given coordinates text.
std::string polygon(const std::string& coordinates) {
  return R"({"type": "Polygon", "coordinates": )" + coordinates + "}";
}

// A MultiPolygon document around the given coordinates text.
std::string multi(const std::string& coordinates) {
  return R"({"type": "MultiPolygon", "coordinates": )" + coordinates + "}";
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Table, GeoJsonError,
    ::testing::Values(
        // Not JSON at all.
        BadCase{"", "invalid JSON: The document is empty at byte 0"},
        BadCase{R"({"type": "Polygon",})",
                "invalid JSON: Missing a name for object member at byte 19"},
        BadCase{polygon(kSquare) + " {}",
                "invalid JSON: The document root must not be followed by other values at byte 77"},
        BadCase{polygon(kSquare) + std::string("\0junk", 5),
                "invalid JSON: The document root must not be followed by other values at byte 76"},
        BadCase{"{\"type\": \"Pol\xC3\x28gon\"}",
                "invalid JSON: Invalid encoding in string at byte 13"},
        BadCase{polygon("[[[0, 0], [1e400, 0]]]"),
                "invalid JSON: Number too big to be stored in double at byte 46"},
        BadCase{polygon("[[[0, NaN]]]"), "invalid JSON: Invalid value at byte 41"},
        // Not a Polygon or MultiPolygon object.
        BadCase{"[1, 2]", "boundary must be a GeoJSON object"},
        BadCase{"\"Polygon\"", "boundary must be a GeoJSON object"},
        BadCase{R"({"coordinates": []})", "boundary has no \"type\" member"},
        BadCase{R"({"type": 5, "coordinates": []})", "boundary has no \"type\" member"},
        BadCase{R"({"type": "Point", "coordinates": [1, 2]})",
                "boundary type must be \"Polygon\" or \"MultiPolygon\", got \"Point\""},
        BadCase{R"({"type": "polygon", "coordinates": []})",
                "boundary type must be \"Polygon\" or \"MultiPolygon\", got \"polygon\""},
        BadCase{R"({"type": ")" + std::string(100, 'x') + R"("})",
                "boundary type must be \"Polygon\" or \"MultiPolygon\", got \"" +
                    std::string(40, 'x') + "\""},
        // Truncation counts characters and never splits one: 39 x then a 2-byte "é" and more.
        BadCase{R"({"type": ")" + std::string(39, 'x') + "\xC3\xA9\xC3\xA9zz\"}",
                "boundary type must be \"Polygon\" or \"MultiPolygon\", got \"" +
                    std::string(39, 'x') + "\xC3\xA9\""},
        BadCase{R"({"type": "Polygon"})", "boundary has no \"coordinates\" array"},
        BadCase{R"({"type": "Polygon", "coordinates": {"0": []}})",
                "boundary has no \"coordinates\" array"},
        // Empty structure.
        BadCase{polygon("[]"), "polygon 0 has no rings"},
        BadCase{multi("[]"), "MultiPolygon has no polygons"},
        BadCase{multi(std::string("[[") + kSquare + "], []]"), "polygon 1 has no rings"},
        BadCase{multi(std::string("[[") + kSquare + "], 5]"), "polygon 1 is not an array of rings"},
        // Rings and positions.
        BadCase{polygon(std::string("[") + kSquare + ", {}]"),
                "polygon 0 ring 1 is not an array of positions"},
        BadCase{polygon("[[[0, 0], [1.7976931348623159e308, 0], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], [1, 0], [1, -0.00000001e-1000000000000000000000], [0]]]"),
                "polygon 0 ring 0 position 3 is not [longitude, latitude]"},
        BadCase{multi(std::string("[[") + kSquare + "], [" + kSquare + ", \"ring\"]]"),
                "polygon 1 ring 1 is not an array of positions"},
        BadCase{polygon("[[[0, 0], [1, 0], [1], [0, 0]]]"),
                "polygon 0 ring 0 position 2 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], [1, 0, 0, 0], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], [\"1\", 0], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], [1, null], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], 7, [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{polygon("[[[0, 0], [[1, 0]], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 position 1 is not [longitude, latitude]"},
        BadCase{multi(std::string("[[") + kSquare + "], [" + kSquare +
                      ", [[0, 0], [200.5, 0], [1, 1], [0, 0]]]]"),
                "polygon 1 ring 1 position 1: longitude 200.5 is outside [-180, 180]"},
        BadCase{polygon("[[[-180.000001, 0], [1, 0], [1, 1], [-180.000001, 0]]]"),
                "polygon 0 ring 0 position 0: longitude -180.000001 is outside [-180, 180]"},
        BadCase{polygon("[[[0, 0], [1, 0], [1, -90.5], [0, 0]]]"),
                "polygon 0 ring 0 position 2: latitude -90.5 is outside [-90, 90]"},
        BadCase{polygon("[[[0, 0], [1, 0], [1, 1e3], [0, 0]]]"),
                "polygon 0 ring 0 position 2: latitude 1000 is outside [-90, 90]"},
        BadCase{polygon("[[[0, 0], [1, 1], [0, 0]]]"),
                "polygon 0 ring 0 has 3 positions; a closed ring needs at least 4"},
        BadCase{polygon("[[[0, 0]]]"),
                "polygon 0 ring 0 has 1 position; a closed ring needs at least 4"},
        BadCase{polygon("[[]]"),
                "polygon 0 ring 0 has 0 positions; a closed ring needs at least 4"},
        BadCase{polygon("[[[1, 2], [5, 6], [7, 8], [3, 4]]]"),
                "polygon 0 ring 0 is not closed: first position [1, 2] differs from last [3, 4]"},
        BadCase{polygon("[[[106.8, -6.2], [106.9, -6.2], [106.9, -6.1], [106.80000001, -6.2]]]"),
                "polygon 0 ring 0 is not closed: first position [106.8, -6.2] differs from last "
                "[106.80000001, -6.2]"}));

TEST(GeoJson, DeeplyNestedUnclosedArrayFailsCleanly) {
  std::string json(200000, '[');
  EXPECT_EQ(error_of(json), "invalid JSON: Invalid value at byte 200000");
}

TEST(GeoJson, DeeplyNestedClosedArrayFailsCleanly) {
  // Valid JSON 200,000 levels deep: parsing and freeing it must not recurse.
  std::string json = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(error_of(json), "boundary must be a GeoJSON object");
  std::string coords = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(error_of(polygon(coords)), "polygon 0 ring 0 position 0 is not [longitude, latitude]");
  EXPECT_EQ(error_of(R"({"properties": )" + coords + "}"), "boundary has no \"type\" member");
}
