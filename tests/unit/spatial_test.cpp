// The point-in-zone index (core/spatial_index): exact answers on hand-made shapes (edges,
// vertices, holes, points one ulp outside), deepest-wins and smallest-id ties, input errors, and
// property tests on random convex, star-shaped, holed, multi-part and degenerate integer-grid
// polygons against both the brute-force covers() and an independent winding-number test in
// exact integer arithmetic written here (PostGIS's ring rules), plus the crowded-cell splits of
// the candidate grid and unsnapped doubles near edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/geojson.hpp"
#include "core/spatial_index.hpp"

using zonegate::geo::covers;
using zonegate::geo::IndexEntry;
using zonegate::geo::MultiPolygon;
using zonegate::geo::Point;
using zonegate::geo::Polygon;
using zonegate::geo::Ring;
using zonegate::geo::SpatialIndex;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A closed ring through the given positions (the closing position is added).
Ring ring(std::vector<Point> pts) {
  pts.push_back(pts.front());
  return pts;
}

// An axis-aligned rectangle ring, counterclockwise.
Ring rect(double x0, double y0, double x1, double y1) {
  return ring({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}});
}

// A one-polygon shape from its rings (exterior first).
MultiPolygon shape(std::vector<Ring> rings) {
  MultiPolygon mp;
  mp.polygons.push_back(Polygon{std::move(rings)});
  return mp;
}

// An index of one zone (id 1, depth 0) with the given shape.
std::unique_ptr<SpatialIndex> one_zone(const MultiPolygon& mp) {
  std::vector<IndexEntry> entries;
  entries.push_back({1, 0, mp});
  return SpatialIndex::build(std::move(entries));
}

// Whether the one-zone index and covers() both say the point is covered; fails the test if
// they disagree with each other.
bool indexed_covers(const SpatialIndex& index, const MultiPolygon& mp, double x, double y) {
  bool brute = covers(mp, x, y);
  bool indexed = index.zone_at(x, y).has_value();
  EXPECT_EQ(brute, indexed) << "at (" << x << ", " << y << ")";
  return indexed;
}

// ---- The independent reference ------------------------------------------------------------
// Property-test coordinates are multiples of 2^-34 below 256 in magnitude, so scaled by 2^34
// they are integers below 2^42 and every cross product below fits exactly in __int128. Each
// ring's winding number is Dan Sunday's formulation with an explicit on-segment check, and the
// rings are combined as PostGIS does (exterior, then holes in order): a different formulation
// from the index's, sharing no code with it.
constexpr int kFixedBits = 34;
using I128 = __int128;

// v * 2^34 as an integer; v must be on the 2^-34 grid.
int64_t fixed(double v) {
  double scaled = v * 0x1p34;  // exact: a power of two
  if (scaled != std::trunc(scaled)) ADD_FAILURE() << v << " is not on the test grid";
  return static_cast<int64_t>(scaled);
}

struct FixedPoint {
  int64_t x, y;
};
using FixedRing = std::vector<FixedPoint>;
using FixedShape = std::vector<std::vector<FixedRing>>;  // polygons of rings

// The shape on the integer grid, converted once for all its probe points.
FixedShape to_fixed(const MultiPolygon& mp) {
  FixedShape out;
  for (const Polygon& p : mp.polygons) {
    out.emplace_back();
    for (const Ring& r : p.rings) {
      out.back().emplace_back();
      for (const Point& pt : r)
        out.back().back().push_back({fixed(pt.lon), fixed(pt.lat)});
    }
  }
  return out;
}

// Where q is relative to one ring: on it, or else its winding number.
struct RingPlace {
  bool on;
  int winding;
};

// Sunday's winding number of q for ring r, or "on" when q is on one of its edges.
RingPlace place(const FixedRing& r, int64_t qx, int64_t qy) {
  int winding = 0;
  for (size_t k = 0; k + 1 < r.size(); ++k) {
    const int64_t ax = r[k].x, ay = r[k].y, bx = r[k + 1].x, by = r[k + 1].y;
    I128 left = I128(bx - ax) * (qy - ay) - I128(by - ay) * (qx - ax);  // > 0: q left of a->b
    if (left == 0 && std::min(ax, bx) <= qx && qx <= std::max(ax, bx) && std::min(ay, by) <= qy &&
        qy <= std::max(ay, by)) {
      return {true, 0};
    }
    if (ay <= qy && qy < by && left > 0) ++winding;  // upward, q on its left
    if (by <= qy && qy < ay && left < 0) --winding;  // downward, q on its right
  }
  return {false, winding};
}

// PostGIS's point_in_multipolygon: any polygon whose exterior holds q (or has q on it) and whose
// first hole holding q (if any) has q on its boundary rather than inside.
bool reference_covers(const FixedShape& shape, double x, double y) {
  const int64_t qx = fixed(x), qy = fixed(y);
  for (const std::vector<FixedRing>& polygon : shape) {
    RingPlace outer = place(polygon[0], qx, qy);
    if (outer.on) return true;
    if (outer.winding == 0) continue;
    bool covered = true;
    for (size_t h = 1; h < polygon.size(); ++h) {
      RingPlace hole = place(polygon[h], qx, qy);
      if (hole.on) return true;
      if (hole.winding != 0) {
        covered = false;
        break;
      }
    }
    if (covered) return true;
  }
  return false;
}

// ---- Random shapes --------------------------------------------------------------------------

// v rounded to the 2^-bits grid.
double snap(double v, int bits) {
  return std::ldexp(std::nearbyint(std::ldexp(v, bits)), -bits);
}

// Deterministic random numbers for the shapes and points.
struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * std::uniform_real_distribution<double>(0.0, 1.0)(gen);
  }
  // Uniform in [lo, hi].
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
};

// A star-shaped ring around (cx, cy): n jittered angles (gaps below 2*pi*1.8/n), radii in
// [r_min, r_max], vertices on the 2^-30 grid, counterclockwise.
Ring star(Rng& rng, double cx, double cy, int n, double r_min, double r_max) {
  std::vector<Point> pts;
  for (int i = 0; i < n; ++i) {
    double angle = 2 * M_PI * (i + rng.uniform(0, 0.8)) / n;
    double r = rng.uniform(r_min, r_max);
    pts.push_back({snap(cx + r * std::cos(angle), 30), snap(cy + r * std::sin(angle), 30)});
  }
  return ring(pts);
}

// A convex ring: n points on a circle, sorted by angle.
Ring convex(Rng& rng, double cx, double cy, int n, double r) {
  std::vector<double> angles;
  angles.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    angles.push_back(rng.uniform(0, 2 * M_PI));
  std::sort(angles.begin(), angles.end());
  std::vector<Point> pts;
  pts.reserve(angles.size());
  for (double a : angles)
    pts.push_back({snap(cx + r * std::cos(a), 30), snap(cy + r * std::sin(a), 30)});
  return ring(pts);
}

// A star polygon with up to three star holes well inside it: the exterior's radii are at least
// r/2 with angular gaps below pi/2, so its edges stay beyond 0.38 r; hole centers sit at 0.17 r,
// 120 degrees apart, with radii up to 0.12 r: disjoint, and within 0.29 r.
Polygon holed(Rng& rng, double cx, double cy, double r) {
  Polygon p;
  p.rings.push_back(star(rng, cx, cy, rng.integer(8, 200), r / 2, r));
  int holes = rng.integer(1, 3);
  for (int h = 0; h < holes; ++h) {
    double a = 2 * M_PI * h / 3;
    p.rings.push_back(star(rng, cx + 0.17 * r * std::cos(a), cy + 0.17 * r * std::sin(a),
                           rng.integer(3, 40), 0.04 * r, 0.12 * r));
  }
  return p;
}

// A random ring of n integer vertices in [0, side]^2: self-intersections, collinear and
// repeated vertices, horizontal edges, vertices at the height of query points: every
// degenerate case at once.
Ring integer_ring(Rng& rng, int n, int side) {
  std::vector<Point> pts;
  pts.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    pts.push_back({double(rng.integer(0, side)), double(rng.integer(0, side))});
  return ring(pts);
}

// Query points for a shape: uniform in its box widened by 5%, and for up to 150 random edges
// their first vertex, the points at k/8 along them (exactly on them: dyadic) and those points
// moved 2^-34 in each direction.
std::vector<Point> probe_points(Rng& rng, const MultiPolygon& mp, size_t uniform) {
  zonegate::geo::Bounds b{kInf, kInf, -kInf, -kInf};
  std::vector<std::pair<Point, Point>> edges;
  for (const Polygon& p : mp.polygons) {
    for (const Ring& r : p.rings) {
      for (size_t k = 0; k < r.size(); ++k) {
        b.min_lon = std::min(b.min_lon, r[k].lon), b.max_lon = std::max(b.max_lon, r[k].lon);
        b.min_lat = std::min(b.min_lat, r[k].lat), b.max_lat = std::max(b.max_lat, r[k].lat);
        if (k + 1 < r.size()) edges.emplace_back(r[k], r[k + 1]);
      }
    }
  }
  double wx = (b.max_lon - b.min_lon) * 0.05 + 1e-3, wy = (b.max_lat - b.min_lat) * 0.05 + 1e-3;
  std::vector<Point> out;
  for (size_t i = 0; i < uniform; ++i) {
    out.push_back({snap(rng.uniform(b.min_lon - wx, b.max_lon + wx), kFixedBits),
                   snap(rng.uniform(b.min_lat - wy, b.max_lat + wy), kFixedBits)});
  }
  std::shuffle(edges.begin(), edges.end(), rng.gen);
  edges.resize(std::min<size_t>(edges.size(), 150));
  const double d = std::ldexp(1.0, -kFixedBits);
  for (const auto& [a, c] : edges) {
    out.push_back(a);
    out.push_back({a.lon + d, a.lat + d});
    out.push_back({a.lon - d, a.lat - d});
    out.push_back({(a.lon + c.lon) / 2, (a.lat + c.lat) / 2});
    for (int t = 1; t < 8; t += 3) {
      Point on{a.lon + (c.lon - a.lon) * t / 8, a.lat + (c.lat - a.lat) * t / 8};
      out.push_back(on);
      out.push_back({on.lon + d, on.lat});
      out.push_back({on.lon - d, on.lat});
      out.push_back({on.lon, on.lat + d});
      out.push_back({on.lon, on.lat - d});
    }
  }
  return out;
}

// Checks one shape three ways on its probe points; returns how many points were covered.
size_t check_shape(Rng& rng, const MultiPolygon& mp, size_t uniform) {
  auto index = one_zone(mp);
  const FixedShape exact = to_fixed(mp);
  size_t covered = 0;
  for (const Point& q : probe_points(rng, mp, uniform)) {
    bool expected = reference_covers(exact, q.lon, q.lat);
    bool brute = covers(mp, q.lon, q.lat);
    std::optional<int64_t> got = index->zone_at(q.lon, q.lat);
    if (brute != expected || got.has_value() != expected) {
      ADD_FAILURE() << "point (" << q.lon << ", " << q.lat << "): reference " << expected
                    << ", covers " << brute << ", index " << got.has_value();
      return covered;  // one report per shape is enough
    }
    covered += expected;
  }
  return covered;
}

}  // namespace

// ---- Exact cases ------------------------------------------------------------------------------

TEST(Spatial, SquareInsideEdgesVerticesOutside) {
  MultiPolygon sq = shape({rect(0, 0, 10, 10)});
  auto index = one_zone(sq);
  EXPECT_TRUE(indexed_covers(*index, sq, 5, 5));
  for (Point p : {Point{0, 0}, Point{10, 0}, Point{10, 10}, Point{0, 10}})
    EXPECT_TRUE(indexed_covers(*index, sq, p.lon, p.lat)) << "vertex";
  for (Point p : {Point{5, 0}, Point{10, 5}, Point{5, 10}, Point{0, 5}, Point{0.1, 0}})
    EXPECT_TRUE(indexed_covers(*index, sq, p.lon, p.lat)) << "edge";
  const double above10 = std::nextafter(10.0, kInf), below0 = std::nextafter(0.0, -kInf);
  EXPECT_FALSE(indexed_covers(*index, sq, above10, 5));
  EXPECT_FALSE(indexed_covers(*index, sq, 5, below0));
  EXPECT_FALSE(indexed_covers(*index, sq, above10, above10));
  EXPECT_FALSE(indexed_covers(*index, sq, -3, 5));
  EXPECT_FALSE(indexed_covers(*index, sq, 5, 11));
  EXPECT_EQ(index->zone_at(5, 5), std::optional<int64_t>(1));
  EXPECT_EQ(index->covering(10, 10), std::vector<int64_t>{1});
  EXPECT_TRUE(index->covering(20, 20).empty());
  EXPECT_EQ(index->size(), 1u);
  EXPECT_EQ(index->polygon_count(), 1u);
}

TEST(Spatial, ConcaveCShape) {
  // A "C" opening to the right: the notch [2, 10] x [2, 8] is outside.
  MultiPolygon c =
      shape({ring({{0, 0}, {10, 0}, {10, 2}, {2, 2}, {2, 8}, {10, 8}, {10, 10}, {0, 10}})});
  auto index = one_zone(c);
  EXPECT_TRUE(indexed_covers(*index, c, 1, 5));                           // spine
  EXPECT_TRUE(indexed_covers(*index, c, 6, 1));                           // lower arm
  EXPECT_TRUE(indexed_covers(*index, c, 6, 9));                           // upper arm
  EXPECT_FALSE(indexed_covers(*index, c, 6, 5));                          // in the notch
  EXPECT_FALSE(indexed_covers(*index, c, 11, 5));                         // right of the notch
  EXPECT_TRUE(indexed_covers(*index, c, 6, 2));                           // notch floor edge
  EXPECT_TRUE(indexed_covers(*index, c, 2, 5));                           // notch back edge
  EXPECT_TRUE(indexed_covers(*index, c, 2, 8));                           // notch vertex
  EXPECT_TRUE(indexed_covers(*index, c, 10, 8));                          // arm tip vertex
  EXPECT_FALSE(indexed_covers(*index, c, 6, std::nextafter(2.0, kInf)));  // just inside notch
  EXPECT_FALSE(indexed_covers(*index, c, std::nextafter(2.0, kInf), 5));
  EXPECT_FALSE(indexed_covers(*index, c, std::nextafter(10.0, kInf), 2));
  // Rays from these points pass exactly through vertices and along horizontal edges.
  EXPECT_TRUE(indexed_covers(*index, c, 1, 2));
  EXPECT_TRUE(indexed_covers(*index, c, 1, 8));
  EXPECT_FALSE(indexed_covers(*index, c, -1, 2));
  EXPECT_FALSE(indexed_covers(*index, c, -1, 10));
}

TEST(Spatial, HoleEdgesAndVerticesAreCovered) {
  MultiPolygon holed = shape({rect(0, 0, 10, 10), rect(3, 3, 6, 6)});
  auto index = one_zone(holed);
  EXPECT_TRUE(indexed_covers(*index, holed, 1, 1));
  EXPECT_TRUE(indexed_covers(*index, holed, 8, 5));
  EXPECT_FALSE(indexed_covers(*index, holed, 4.5, 4.5));  // in the hole
  EXPECT_TRUE(indexed_covers(*index, holed, 3, 4.5));     // on the hole's edge
  EXPECT_TRUE(indexed_covers(*index, holed, 4.5, 6));
  EXPECT_TRUE(indexed_covers(*index, holed, 6, 6));  // hole vertex
  EXPECT_TRUE(indexed_covers(*index, holed, 3, 3));
  EXPECT_FALSE(indexed_covers(*index, holed, std::nextafter(3.0, kInf), 4.5));  // 1 ulp in hole
  EXPECT_TRUE(indexed_covers(*index, holed, std::nextafter(3.0, -kInf), 4.5));
  EXPECT_FALSE(indexed_covers(*index, holed, 4.5, std::nextafter(6.0, -kInf)));
}

TEST(Spatial, MultiPolygonParts) {
  MultiPolygon mp;
  mp.polygons.push_back(Polygon{{rect(0, 0, 2, 2)}});
  mp.polygons.push_back(Polygon{{rect(5, 5, 7, 7), rect(5.5, 5.5, 6.5, 6.5)}});
  mp.polygons.push_back(Polygon{{rect(2, 0, 4, 2)}});  // shares the edge x = 2 with part 0
  auto index = one_zone(mp);
  EXPECT_EQ(index->polygon_count(), 3u);
  EXPECT_TRUE(indexed_covers(*index, mp, 1, 1));
  EXPECT_TRUE(indexed_covers(*index, mp, 3, 1));
  EXPECT_TRUE(indexed_covers(*index, mp, 2, 1));  // on the shared edge
  EXPECT_TRUE(indexed_covers(*index, mp, 5.2, 6));
  EXPECT_FALSE(indexed_covers(*index, mp, 6, 6));  // hole of part 1
  EXPECT_FALSE(indexed_covers(*index, mp, 4.5, 4.5));
  EXPECT_FALSE(indexed_covers(*index, mp, 3, 3));
}

TEST(Spatial, DiagonalEdgesExactly) {
  MultiPolygon tri = shape({ring({{0, 0}, {4, 0}, {0, 4}})});
  auto index = one_zone(tri);
  EXPECT_TRUE(indexed_covers(*index, tri, 2, 2));  // on the hypotenuse
  EXPECT_TRUE(indexed_covers(*index, tri, 1, 3));
  EXPECT_FALSE(indexed_covers(*index, tri, 2, std::nextafter(2.0, kInf)));
  EXPECT_FALSE(indexed_covers(*index, tri, std::nextafter(2.0, kInf), 2));
  EXPECT_TRUE(indexed_covers(*index, tri, 2, std::nextafter(2.0, -kInf)));
  // Non-dyadic positions: the vertices themselves are exactly on the boundary.
  MultiPolygon odd = shape({ring({{0.1, 0.2}, {0.7, 0.3}, {0.3, 0.9}})});
  auto odd_index = one_zone(odd);
  for (Point p : odd.polygons[0].rings[0])
    EXPECT_TRUE(indexed_covers(*odd_index, odd, p.lon, p.lat));
  EXPECT_TRUE(indexed_covers(*odd_index, odd, 0.35, 0.45));
}

TEST(Spatial, NearlyCollinearPointsNeedExactOrientation) {
  // The edge (-24, -24) -> (24, 24) lies on y = x; points within a few ulps of (0.5, 0.5) are
  // where a plain floating-point determinant gets the side wrong. Interior: y < x.
  MultiPolygon tri = shape({ring({{-24, -24}, {24, -24}, {24, 24}})});
  auto index = one_zone(tri);
  const double ulp = std::ldexp(1.0, -53);
  for (int i = -12; i <= 12; ++i) {
    for (int j = -12; j <= 12; ++j) {
      double x = 0.5 + i * ulp, y = 0.5 + j * ulp;
      EXPECT_EQ(indexed_covers(*index, tri, x, y), y <= x) << i << ", " << j;
    }
  }
}

TEST(Spatial, AntimeridianSplitIntoMultiPolygon) {
  // A Fiji-like zone from 177E to 178W, split at the antimeridian as RFC 7946 asks.
  MultiPolygon fiji;
  fiji.polygons.push_back(Polygon{{rect(177, -19, 180, -16)}});
  fiji.polygons.push_back(Polygon{{rect(-180, -19, -178, -16)}});
  auto index = one_zone(fiji);
  EXPECT_TRUE(indexed_covers(*index, fiji, 179, -17));
  EXPECT_TRUE(indexed_covers(*index, fiji, -179, -17));
  EXPECT_TRUE(indexed_covers(*index, fiji, 180, -17));
  EXPECT_TRUE(indexed_covers(*index, fiji, -180, -17));
  EXPECT_FALSE(indexed_covers(*index, fiji, 0, -17));
  // Unsplit, the same ring is planar: it spans the long way round, through 0.
  MultiPolygon wrong = shape({ring({{177, -19}, {-178, -19}, {-178, -16}, {177, -16}})});
  auto wrong_index = one_zone(wrong);
  EXPECT_TRUE(indexed_covers(*wrong_index, wrong, 0, -17));
  EXPECT_FALSE(indexed_covers(*wrong_index, wrong, 179, -17));
}

TEST(Spatial, QueriesOutsideTheCoordinateRange) {
  auto index = one_zone(shape({rect(-180, -90, 180, 90)}));
  EXPECT_TRUE(index->zone_at(180, 90).has_value());
  EXPECT_TRUE(index->zone_at(-180, -90).has_value());
  EXPECT_FALSE(index->zone_at(std::nan(""), 0).has_value());
  EXPECT_FALSE(index->zone_at(0, std::nan("")).has_value());
  EXPECT_FALSE(index->zone_at(kInf, 0).has_value());
  EXPECT_FALSE(index->zone_at(181, 0).has_value());
  EXPECT_FALSE(index->zone_at(0, -1e300).has_value());
  EXPECT_TRUE(index->covering(std::nan(""), 1).empty());
}

TEST(Spatial, InvalidPolygonsGetPostgisAnswers) {
  // Natural Earth's Antarctica in world-atlas: a flat exterior along the bottom and the coast as
  // a "hole" outside it. PostGIS (and GEOS, through the shell's envelope) cover nothing there.
  MultiPolygon antarctica =
      shape({ring({{-180, -89}, {180, -89}, {0, -89}}), rect(-50, -80, 50, -70)});
  auto a = one_zone(antarctica);
  EXPECT_FALSE(indexed_covers(*a, antarctica, 0, -75));
  EXPECT_TRUE(indexed_covers(*a, antarctica, 0, -89));     // on the flat exterior
  EXPECT_FALSE(indexed_covers(*a, antarctica, -50, -75));  // on the "hole", outside the shell
  // A ring winding twice around [1, 2]^2: winding number 2 is inside (nonzero rule).
  MultiPolygon twice =
      shape({ring({{0, 0}, {3, 0}, {3, 3}, {0, 3}, {0, 0}, {3, 0}, {3, 3}, {0, 3}})});
  auto t = one_zone(twice);
  EXPECT_TRUE(indexed_covers(*t, twice, 1.5, 1.5));
  // Overlapping holes: the first hole holding the point decides.
  MultiPolygon holes = shape({rect(0, 0, 10, 10), rect(2, 2, 6, 6), rect(4, 4, 8, 8)});
  auto h = one_zone(holes);
  EXPECT_FALSE(indexed_covers(*h, holes, 5, 4));  // inside hole 1, on hole 2's edge
  EXPECT_TRUE(indexed_covers(*h, holes, 6, 5));   // on hole 1's edge, inside hole 2
  EXPECT_FALSE(indexed_covers(*h, holes, 7, 7));  // inside hole 2 only
}

// ---- Deepest wins, ties --------------------------------------------------------------------

TEST(Spatial, DeepestZoneWins) {
  std::vector<IndexEntry> entries;
  entries.push_back({11, 0, shape({rect(0, 0, 100, 80)})});       // province
  entries.push_back({1101, 1, shape({rect(10, 10, 40, 40)})});    // district in it
  entries.push_back({110101, 2, shape({rect(20, 20, 30, 30)})});  // village in the district
  entries.push_back({12, 0, shape({rect(100, 0, 180, 80)})});     // the next province
  auto index = SpatialIndex::build(std::move(entries));
  EXPECT_EQ(index->size(), 4u);
  EXPECT_EQ(index->zone_at(25, 25), std::optional<int64_t>(110101));
  EXPECT_EQ(index->zone_at(15, 15), std::optional<int64_t>(1101));
  EXPECT_EQ(index->zone_at(50, 50), std::optional<int64_t>(11));
  EXPECT_EQ(index->zone_at(40, 40), std::optional<int64_t>(1101));    // district corner
  EXPECT_EQ(index->zone_at(20, 25), std::optional<int64_t>(110101));  // village edge
  EXPECT_EQ(index->zone_at(150, 50), std::optional<int64_t>(12));
  EXPECT_EQ(index->zone_at(100, 50), std::optional<int64_t>(11));  // shared edge: smaller id
  EXPECT_EQ(index->zone_at(-1, 50), std::nullopt);
  EXPECT_EQ(index->covering(25, 25), (std::vector<int64_t>{11, 1101, 110101}));
  EXPECT_EQ(index->covering(100, 50), (std::vector<int64_t>{11, 12}));
}

TEST(Spatial, EqualDepthTiesGoToTheSmallestId) {
  std::vector<IndexEntry> entries;
  entries.push_back({7, 1, shape({rect(0, 0, 10, 10)})});
  entries.push_back({5, 1, shape({rect(5, 0, 15, 10)})});
  entries.push_back({9, 0, shape({rect(-5, -5, 20, 20)})});
  entries.push_back({3, 0, shape({rect(-5, -5, 20, 20)})});
  auto index = SpatialIndex::build(std::move(entries));
  EXPECT_EQ(index->zone_at(7, 5), std::optional<int64_t>(5));  // both depth 1: id 5
  EXPECT_EQ(index->zone_at(2, 5), std::optional<int64_t>(7));  // only 7 at depth 1
  EXPECT_EQ(index->zone_at(12, 5), std::optional<int64_t>(5));
  EXPECT_EQ(index->zone_at(18, 5), std::optional<int64_t>(3));  // depth 0 twin: id 3
  EXPECT_EQ(index->covering(7, 5), (std::vector<int64_t>{3, 5, 7, 9}));
}

TEST(Spatial, EmptyIndex) {
  auto index = SpatialIndex::build({});
  EXPECT_EQ(index->size(), 0u);
  EXPECT_EQ(index->polygon_count(), 0u);
  EXPECT_EQ(index->zone_at(0, 0), std::nullopt);
  EXPECT_TRUE(index->covering(0, 0).empty());
  EXPECT_GT(index->memory_bytes(), 0u);
}

TEST(Spatial, MemoryIsReported) {
  Rng rng(5);
  std::vector<IndexEntry> entries;
  entries.push_back({1, 0, shape({star(rng, 0, 0, 1000, 5, 10)})});
  auto index = SpatialIndex::build(std::move(entries));
  // At least the 1001 positions of 16 bytes; not wildly more (stripes, grid, headers).
  EXPECT_GE(index->memory_bytes(), 1001u * 16);
  EXPECT_LE(index->memory_bytes(), 1001u * 16 * 4);
}

// ---- Input errors ---------------------------------------------------------------------------

namespace {
// The message SpatialIndex::build throws for one zone with this shape (checking SQLSTATE 22023).
std::string build_error(std::vector<IndexEntry> entries) {
  try {
    SpatialIndex::build(std::move(entries));
  } catch (const zonegate::Error& e) {
    EXPECT_STREQ(e.sqlstate(), zonegate::sqlstate::kInvalidParameterValue);
    return e.what();
  }
  return "<no error>";
}
// Entries of one zone (id 4) with the given shape.
std::vector<IndexEntry> single(MultiPolygon mp) {
  std::vector<IndexEntry> entries;
  entries.push_back({4, 0, std::move(mp)});
  return entries;
}
}  // namespace

TEST(Spatial, BadInputIsAnError) {
  std::vector<IndexEntry> twice;
  twice.push_back({8, 0, shape({rect(0, 0, 1, 1)})});
  twice.push_back({8, 1, shape({rect(0, 0, 2, 2)})});
  EXPECT_EQ(build_error(std::move(twice)), "zone id 8 appears twice");
  EXPECT_EQ(build_error(single(MultiPolygon{})), "zone 4 has no polygons");
  MultiPolygon no_rings;
  no_rings.polygons.emplace_back();
  EXPECT_EQ(build_error(single(no_rings)), "zone 4: polygon 0 has no rings");
  EXPECT_EQ(build_error(single(shape({Ring{{0, 0}, {1, 0}, {0, 0}}}))),
            "zone 4: polygon 0 ring 0 has 3 positions; a closed ring needs at least 4");
  EXPECT_EQ(build_error(single(shape({rect(0, 0, 1, 1), Ring{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}))),
            "zone 4: polygon 0 ring 1 is not closed");
  EXPECT_EQ(build_error(single(shape({ring({{0, 0}, {1, std::nan("")}, {1, 1}})}))),
            "zone 4: polygon 0 ring 0 position 1 is not a longitude in [-180, 180] and a "
            "latitude in [-90, 90]");
  EXPECT_EQ(build_error(single(shape({ring({{0, 0}, {181, 0}, {1, 1}})}))),
            "zone 4: polygon 0 ring 0 position 1 is not a longitude in [-180, 180] and a "
            "latitude in [-90, 90]");
}

TEST(Spatial, DegenerateRingsAreAccepted) {
  // Zero-area rings are valid input: their points are boundary, nothing else is covered.
  MultiPolygon flat = shape({ring({{0, 0}, {4, 0}, {8, 0}})});
  MultiPolygon dot = shape({ring({{3, 3}, {3, 3}, {3, 3}})});
  auto fi = one_zone(flat);
  auto di = one_zone(dot);
  EXPECT_TRUE(indexed_covers(*fi, flat, 2, 0));
  EXPECT_FALSE(indexed_covers(*fi, flat, 2, 1e-300));
  EXPECT_TRUE(indexed_covers(*di, dot, 3, 3));
  EXPECT_FALSE(indexed_covers(*di, dot, 3, std::nextafter(3.0, kInf)));
}

// ---- Property tests -------------------------------------------------------------------------

TEST(SpatialProperty, ConvexPolygons) {
  Rng rng(101);
  size_t covered = 0;
  for (int s = 0; s < 40; ++s) {
    MultiPolygon mp = shape({convex(rng, rng.uniform(-170, 170), rng.uniform(-80, 80),
                                    rng.integer(3, 60), rng.uniform(0.001, 9))});
    covered += check_shape(rng, mp, 2000);
  }
  EXPECT_GT(covered, 10000u);  // the points are not all outside
}

TEST(SpatialProperty, StarShapedPolygons) {
  Rng rng(202);
  for (int s = 0; s < 40; ++s) {
    bool big = s < 3;  // a few with many edges: grids of thousands of cells, long stripes
    int n = big ? rng.integer(400, 1500) : rng.integer(5, 300);
    double r = rng.uniform(0.01, 9);
    MultiPolygon mp =
        shape({star(rng, rng.uniform(-170, 170), rng.uniform(-80, 80), n, r * 0.2, r)});
    check_shape(rng, mp, big ? 1500 : 2000);
  }
}

TEST(SpatialProperty, PolygonsWithHoles) {
  Rng rng(303);
  for (int s = 0; s < 30; ++s) {
    MultiPolygon mp;
    mp.polygons.push_back(
        holed(rng, rng.uniform(-170, 170), rng.uniform(-80, 80), rng.uniform(0.01, 9)));
    check_shape(rng, mp, 2000);
  }
}

TEST(SpatialProperty, MultiPolygons) {
  Rng rng(404);
  for (int s = 0; s < 30; ++s) {
    MultiPolygon mp;
    double cx = rng.uniform(-150, 150), cy = rng.uniform(-70, 70);
    int parts = rng.integer(2, 5);
    for (int k = 0; k < parts; ++k) {
      // Parts may overlap (an invalid MultiPolygon): any part covering the point covers it.
      double px = cx + rng.uniform(-15, 15), py = cy + rng.uniform(-15, 15);
      if (k % 2 == 0) {
        mp.polygons.push_back(holed(rng, px, py, rng.uniform(1, 8)));
      } else {
        mp.polygons.push_back(Polygon{{star(rng, px, py, rng.integer(3, 80), 1, 6)}});
      }
    }
    check_shape(rng, mp, 2000);
  }
}

TEST(SpatialProperty, ArbitraryDoublesMatchBruteForce) {
  // Unsnapped coordinates, and points computed along edges in floating point: within an ulp or
  // two of an edge, on either side or exactly on it. Only covers() can judge these (exactly);
  // the index's grid and stripes must agree with it.
  Rng rng(808);
  for (int s = 0; s < 30; ++s) {
    double cx = rng.uniform(-170, 170), cy = rng.uniform(-80, 80), r = rng.uniform(1e-4, 9);
    std::vector<Point> pts;
    int n = rng.integer(16, 400);
    for (int i = 0; i < n; ++i) {
      double a = 2 * M_PI * (i + rng.uniform(0, 0.8)) / n, d = rng.uniform(0.3, 1) * r;
      pts.push_back({cx + d * std::cos(a), cy + d * std::sin(a)});
    }
    MultiPolygon mp = shape({ring(pts)});
    auto index = one_zone(mp);
    const Ring& outer = mp.polygons[0].rings[0];
    for (int i = 0; i < 3000; ++i) {
      Point q;
      if (i % 3 == 0) {
        q = {cx + rng.uniform(-r, r), cy + rng.uniform(-r, r)};
      } else {
        const auto k = static_cast<size_t>(rng.integer(0, static_cast<int>(outer.size()) - 2));
        double t = rng.uniform(0, 1);
        q = {outer[k].lon + t * (outer[k + 1].lon - outer[k].lon),
             outer[k].lat + t * (outer[k + 1].lat - outer[k].lat)};
      }
      ASSERT_EQ(index->zone_at(q.lon, q.lat).has_value(), covers(mp, q.lon, q.lat))
          << "shape " << s << " at (" << q.lon << ", " << q.lat << ")";
    }
  }
}

TEST(SpatialProperty, DegenerateIntegerPolygons) {
  // Self-intersecting rings of integer vertices and points on the half-integer lattice: rays
  // through vertices, along horizontal edges, points on collinear overlapping edges.
  Rng rng(505);
  for (int s = 0; s < 150; ++s) {
    MultiPolygon mp;
    int parts = rng.integer(1, 3);
    for (int k = 0; k < parts; ++k) {
      Polygon p;
      p.rings.push_back(integer_ring(rng, rng.integer(3, s < 20 ? 40 : 12), 8));
      if (rng.integer(0, 1)) p.rings.push_back(integer_ring(rng, rng.integer(3, 6), 8));
      mp.polygons.push_back(p);
    }
    auto index = one_zone(mp);
    const FixedShape exact = to_fixed(mp);
    for (int i = -2; i <= 18; ++i) {
      for (int j = -2; j <= 18; ++j) {
        double x = i / 2.0, y = j / 2.0;
        bool expected = reference_covers(exact, x, y);
        ASSERT_EQ(covers(mp, x, y), expected) << "shape " << s << " at " << x << ", " << y;
        ASSERT_EQ(index->zone_at(x, y).has_value(), expected)
            << "shape " << s << " at " << x << ", " << y;
      }
    }
    check_shape(rng, mp, 500);
  }
}

namespace {
// Checks zone_at and covering against the brute-force priority rule over `zones` at `points`;
// returns how many points more than one zone covers.
size_t check_zones(const std::vector<IndexEntry>& zones, const std::vector<Point>& points) {
  std::vector<zonegate::geo::Bounds> boxes;  // exterior boxes: a quick "cannot cover" test
  std::vector<FixedShape> exact;
  for (const IndexEntry& e : zones) {
    boxes.push_back(zonegate::geo::bounds_of(e.shape));
    exact.push_back(to_fixed(e.shape));
  }
  auto index = SpatialIndex::build(zones);
  EXPECT_EQ(index->size(), zones.size());
  size_t nested = 0;
  for (const Point& q : points) {
    std::vector<int64_t> expected_ids;
    const IndexEntry* best = nullptr;
    for (size_t z = 0; z < zones.size(); ++z) {
      const IndexEntry& e = zones[z];
      const zonegate::geo::Bounds& b = boxes[z];
      if (q.lon < b.min_lon || q.lon > b.max_lon || q.lat < b.min_lat || q.lat > b.max_lat)
        continue;
      if (!reference_covers(exact[z], q.lon, q.lat)) continue;
      expected_ids.push_back(e.zone_id);
      if (!best || e.depth > best->depth || (e.depth == best->depth && e.zone_id < best->zone_id))
        best = &e;
    }
    std::sort(expected_ids.begin(), expected_ids.end());
    nested += expected_ids.size() > 1;
    std::optional<int64_t> expected;
    if (best) expected = best->zone_id;
    if (index->zone_at(q.lon, q.lat) != expected || index->covering(q.lon, q.lat) != expected_ids) {
      ADD_FAILURE() << "at (" << q.lon << ", " << q.lat << ")";
      break;
    }
  }
  return nested;
}
}  // namespace

TEST(SpatialProperty, CrowdedCellsAreSplit) {
  // 600 small zones packed into one degree among 40 large ones: the candidate grid's cell there
  // is split, and its sub-cells again; answers must not change.
  Rng rng(707);
  std::vector<IndexEntry> zones;
  for (int z = 0; z < 640; ++z) {
    bool small = z < 600;
    double cx = small ? rng.uniform(10, 11) : rng.uniform(0, 60);
    double cy = small ? rng.uniform(10, 11) : rng.uniform(0, 60);
    double r = small ? rng.uniform(0.002, 0.05) : rng.uniform(2, 20);
    MultiPolygon mp = shape({star(rng, cx, cy, rng.integer(3, 24), r / 3, r)});
    zones.push_back({z * 3 + 1, small ? rng.integer(1, 3) : 0, std::move(mp)});
  }
  std::vector<Point> points;
  for (int i = 0; i < 6000; ++i) {
    bool near = i % 4 != 0;
    points.push_back({snap(near ? rng.uniform(9.9, 11.1) : rng.uniform(-2, 62), kFixedBits),
                      snap(near ? rng.uniform(9.9, 11.1) : rng.uniform(-2, 62), kFixedBits)});
  }
  for (const IndexEntry& e : zones)
    points.push_back(e.shape.polygons[0].rings[0][0]);
  EXPECT_GT(check_zones(zones, points), 500u);
}

TEST(SpatialProperty, ManyZonesDeepestThenSmallestId) {
  // Overlapping zones of random depths: zone_at must be the brute-force "max depth, then min
  // id" over the zones that cover the point, and covering() exactly those zones.
  Rng rng(606);
  std::vector<IndexEntry> entries;
  for (int z = 0; z < 120; ++z) {
    MultiPolygon mp;
    int parts = rng.integer(1, 3);
    for (int k = 0; k < parts; ++k) {
      double cx = rng.uniform(0, 60), cy = rng.uniform(0, 60);
      if (k == 0 && z % 3 == 0) {
        mp.polygons.push_back(holed(rng, cx, cy, rng.uniform(4, 20)));
      } else if (z % 3 == 1) {
        mp.polygons.push_back(Polygon{{convex(rng, cx, cy, rng.integer(3, 30), 6)}});
      } else {
        mp.polygons.push_back(Polygon{{star(rng, cx, cy, rng.integer(3, 120), 1, 10)}});
      }
    }
    entries.push_back({1000 - 7 * z, rng.integer(0, 3), std::move(mp)});
  }
  std::vector<Point> points;
  points.reserve(6000);
  for (int i = 0; i < 6000; ++i)
    points.push_back(
        {snap(rng.uniform(-5, 75), kFixedBits), snap(rng.uniform(-5, 75), kFixedBits)});
  for (const IndexEntry& e : entries) {  // a vertex of every ring: boundary cases across zones
    for (const Polygon& p : e.shape.polygons) {
      for (const Ring& r : p.rings)
        points.push_back(r[rng.integer(0, static_cast<int>(r.size()) - 1)]);
    }
  }
  size_t nested = check_zones(entries, points);
  EXPECT_GT(nested, 1000u);  // overlaps are common, so the priority rule is exercised
}
