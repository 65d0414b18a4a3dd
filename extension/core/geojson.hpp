// Zone boundaries as GeoJSON (RFC 7946): the parser/validator and the few measures the rest of
// the core needs (bounding box, size). Pure C++17: no postgres.h, no I/O.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace zonegate::geo {

struct Point {
  double lon;
  double lat;
};
using Ring = std::vector<Point>;  // closed: front() == back(), at least 4 positions
struct Polygon {
  std::vector<Ring> rings;  // rings[0] is the exterior ring, the rest are holes
};
struct MultiPolygon {
  std::vector<Polygon> polygons;
};
struct Bounds {
  double min_lon, min_lat, max_lon, max_lat;
};

// Parses and validates a GeoJSON geometry (RFC 7946) that must be a Polygon or a MultiPolygon.
// A Polygon becomes a MultiPolygon with one polygon. Throws zonegate::Error (SQLSTATE 22023)
// with a precise message naming the polygon/ring/position at fault.
MultiPolygon parse_boundary(std::string_view json);

// Bounding box of all exterior rings. Throws zonegate::Error if there is no position to bound
// (only possible for a value built by hand: parse_boundary never returns one).
Bounds bounds_of(const MultiPolygon& mp);

// Total number of positions (closing positions included), for size accounting.
size_t position_count(const MultiPolygon& mp);

}  // namespace zonegate::geo
