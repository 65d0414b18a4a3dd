// The point-in-zone index: an adaptive grid over the polygon boxes selects candidates, best zone
// first; per polygon, a coarse grid answers points away from the boundary and y-stripes (edges
// bucketed by latitude band, the idea of tidwall/tg) limit the exact winding-number count near
// it. See the header for the semantics; the comments here say why each piece is as it is.
#include "core/spatial_index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "core/error.hpp"

namespace zonegate::geo {
namespace {

// Tuning, measured on Natural Earth 50m countries (tests/bench/geo_bench.cpp): more stripes and
// cells cost memory linearly and pay back less and less.
constexpr uint32_t kEdgesPerStripe = 2;  // stripes = edges / this: ~2 edges per stripe of its own
// An edge is filed under every stripe it spans, so a wiggly boundary (a horizontal line crossing
// it c times on average) files about edges + c * stripes entries. Fewer stripes for such polygons
// keep that within (1 + kStripeBudget) * edges; a lookup still tests only about c * 1.5 edges.
constexpr double kStripeBudget = 2;
constexpr uint32_t kGridMinEdges = 16;  // below this the stripes alone are as fast as a grid
constexpr uint32_t kCellsPerEdge = 16;  // grid cells per edge (2 bits each)
constexpr uint32_t kMaxGridSide = 65535;
// Grid cells are marked "mixed" when an edge passes within this fraction of a cell of them. It
// must exceed the rounding error of the cell arithmetic (about cells-per-side * 2^-52 of a cell),
// which it does by ten orders of magnitude for any grid side we build.
constexpr double kCellMargin = 1.0 / 16;

// Candidate grid: about kCellsPerPolygon top cells per polygon, fewer while the polygon boxes
// would fill more than kListBudget list entries per polygon; a cell listing more than kSplitAt
// polygons is split kSplitWays x kSplitWays, up to kMaxSplitDepth times, when that at least
// halves its mean list length and the entries stay within the budget.
constexpr double kCellsPerPolygon = 2;
constexpr double kListBudget = 12;
constexpr size_t kSplitAt = 8;
constexpr uint32_t kSplitWays = 4;
constexpr int kMaxSplitDepth = 12;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

enum Cell : uint8_t { kOutside = 0, kInside = 1, kMixed = 2 };

// ---- Exact orientation -------------------------------------------------------------------------
// Shewchuk's orient2d: a floating-point evaluation with his proven error bound decides almost
// every case; the rest are evaluated exactly with expansion arithmetic. Hand-written (about 40
// lines) because no Debian package ships these predicates as a library: GEOS has them but the
// extension must not depend on GEOS, and Boost.Geometry's copy is an internal detail namespace.

constexpr double kEpsilon = 0x1p-53;  // unit roundoff of double
constexpr double kCcwErrBoundA = (3.0 + 16.0 * kEpsilon) * kEpsilon;

// Knuth's TwoSum: s + e == a + b exactly.
inline void two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  double bv = s - a;
  double av = s - bv;
  e = (a - av) + (b - bv);
}

// s + e == a - b exactly.
inline void two_diff(double a, double b, double& s, double& e) {
  s = a - b;
  double bv = a - s;
  double av = s + bv;
  e = (a - av) + (bv - b);
}

// p + e == a * b exactly (barring underflow): the fused multiply-add rounds only once, so it
// yields the product's rounding error, whatever the compiler contracts elsewhere.
inline void two_prod(double a, double b, double& p, double& e) {
  p = a * b;
  e = std::fma(a, b, -p);
}

// Sign of (a - q) x (b - q), exactly: the four differences as exact two-term expansions, their
// eight cross products as sixteen doubles, summed into a nonoverlapping expansion (Shewchuk's
// Grow-Expansion with zero elimination) whose largest component carries the sign.
[[gnu::noinline]] int orient_exact(const Point& a, const Point& b, double x, double y) {
  double ax1, ax0, by1, by0, ay1, ay0, bx1, bx0;
  two_diff(a.lon, x, ax1, ax0);
  two_diff(b.lat, y, by1, by0);
  two_diff(a.lat, y, ay1, ay0);
  two_diff(b.lon, x, bx1, bx0);
  const double left[4][2] = {{ax1, by1}, {ax1, by0}, {ax0, by1}, {ax0, by0}};
  const double right[4][2] = {{ay1, bx1}, {ay1, bx0}, {ay0, bx1}, {ay0, bx0}};
  double terms[16];
  int n = 0;
  for (int i = 0; i < 4; ++i) {
    two_prod(left[i][0], left[i][1], terms[n], terms[n + 1]);
    n += 2;
    two_prod(-right[i][0], right[i][1], terms[n], terms[n + 1]);
    n += 2;
  }
  double h[16];
  int m = 0;
  for (double q : terms) {
    int k = 0;
    for (int j = 0; j < m; ++j) {
      double s, e;
      two_sum(q, h[j], s, e);
      q = s;
      if (e != 0) h[k++] = e;
    }
    if (q != 0) h[k++] = q;
    m = k;
  }
  return m == 0 ? 0 : (h[m - 1] > 0 ? 1 : -1);
}

// +1 when q = (x, y) is left of the directed line a->b, -1 right, 0 on it. Exact.
inline int orient(const Point& a, const Point& b, double x, double y) {
  double l = (a.lon - x) * (b.lat - y);
  double r = (a.lat - y) * (b.lon - x);
  double det = l - r;
  double sum;
  if (l > 0) {
    if (r <= 0) return 1;
    sum = l + r;
  } else if (l < 0) {
    if (r >= 0) return -1;
    sum = -l - r;
  } else {
    return det > 0 ? 1 : (det < 0 ? -1 : 0);
  }
  double bound = kCcwErrBoundA * sum;
  if (det >= bound || -det >= bound) return det > 0 ? 1 : -1;
  return orient_exact(a, b, x, y);
}

// ---- The per-edge test ----------------------------------------------------------------------
constexpr int kOnEdge = 2;  // edge_winding's answer for a point on the edge

// One edge's contribution to the winding number of q = (x, y), counted on a ray from q towards
// +longitude: +1 for an upward edge crossing it, -1 for a downward one (Dan Sunday's rule, as
// PostGIS uses). An edge counts when exactly one endpoint lies strictly above y (lower endpoint
// in, upper out, so a vertex on the ray is counted once). Horizontal edges never count; they
// only matter when q lies on them. Any exact contact with the edge is kOnEdge.
inline int edge_winding(const Point& a, const Point& b, double x, double y) {
  // Edges whose closed latitude range misses y, or that lie wholly left of q, play no part.
  if ((a.lat > y && b.lat > y) || (a.lat < y && b.lat < y)) return 0;
  if (a.lon < x && b.lon < x) return 0;
  if (a.lat == b.lat) return std::min(a.lon, b.lon) <= x ? kOnEdge : 0;  // horizontal at y
  if ((a.lon == x && a.lat == y) || (b.lon == x && b.lat == y)) return kOnEdge;
  // Both endpoints at or below y: the edge meets height y only at an endpoint, which is not q.
  if ((a.lat > y) == (b.lat > y)) return 0;
  const int up = b.lat > a.lat ? 1 : -1;
  if (a.lon > x && b.lon > x) return up;  // strictly right of q: no orientation needed
  int o = orient(a, b, x, y);
  if (o == 0) return kOnEdge;
  // q left of an upward edge (or right of a downward one): the edge crosses the ray.
  return o == up ? up : 0;
}

// PostGIS's rule for one polygon, given each ring's verdict in order: on the exterior ring ->
// covered; outside it -> not; then the first hole that the point is on (covered) or strictly
// inside (not covered) decides; no such hole -> covered. Returns 1 when decided covered, 0 when
// decided not, -1 to go on with the next ring.
inline int ring_verdict(size_t ring, bool on_edge, int winding) {
  if (on_edge) return 1;
  if (ring == 0) return winding != 0 ? -1 : 0;
  return winding != 0 ? 0 : -1;
}

// The bucket of offset d at `scale` buckets per unit, clamped to [0, n - 1] (NaN -> 0). Build
// and lookup use this one monotonic function, so an edge filed under the buckets of its
// endpoints' latitudes is found from every latitude between them, and a box listed in the cells
// of its corners is found from every point in it, with no epsilon.
inline uint32_t bucket(double d, double scale, uint32_t n) {
  double t = d * scale;
  if (!(t > 0)) return 0;
  return t < static_cast<double>(n) ? static_cast<uint32_t>(t) : n - 1;
}

// The largest float <= v (v is finite and within float range): the candidate lists' float boxes
// only ever grow, so they never drop a polygon.
inline float float_down(double v) {
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) > v ? std::nextafter(f, -std::numeric_limits<float>::infinity())
                                    : f;
}
// The smallest float >= v.
inline float float_up(double v) {
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) < v ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}

// "zone 7: polygon 0 ring 1": the prefix of every input error.
std::string where(int64_t zone, size_t p, size_t r) {
  return "zone " + std::to_string(zone) + ": polygon " + std::to_string(p) + " ring " +
         std::to_string(r);
}

// Throws the one error of this file: bad input, SQLSTATE 22023.
[[noreturn]] void fail(const std::string& message) {
  throw Error(sqlstate::kInvalidParameterValue, message);
}

// Checks what the index relies on (closed rings of at least 4 finite, in-range positions), so
// bad input is an error and not a wrong answer; returns the number of positions.
size_t validate(const IndexEntry& e) {
  if (e.shape.polygons.empty()) fail("zone " + std::to_string(e.zone_id) + " has no polygons");
  size_t positions = 0;
  for (size_t p = 0; p < e.shape.polygons.size(); ++p) {
    const Polygon& poly = e.shape.polygons[p];
    if (poly.rings.empty()) {
      fail("zone " + std::to_string(e.zone_id) + ": polygon " + std::to_string(p) +
           " has no rings");
    }
    for (size_t r = 0; r < poly.rings.size(); ++r) {
      const Ring& ring = poly.rings[r];
      if (ring.size() < 4) {
        fail(where(e.zone_id, p, r) + " has " + std::to_string(ring.size()) +
             " positions; a closed ring needs at least 4");
      }
      for (size_t k = 0; k < ring.size(); ++k) {
        // Also rejects NaN and infinities: every comparison with NaN is false.
        if (!(std::fabs(ring[k].lon) <= 180.0 && std::fabs(ring[k].lat) <= 90.0)) {
          fail(where(e.zone_id, p, r) + " position " + std::to_string(k) +
               " is not a longitude in [-180, 180] and a latitude in [-90, 90]");
        }
      }
      if (ring.front().lon != ring.back().lon || ring.front().lat != ring.back().lat) {
        fail(where(e.zone_id, p, r) + " is not closed");
      }
      positions += ring.size();
    }
  }
  return positions;
}

}  // namespace

// ---- Build --------------------------------------------------------------------------------------

// Orders zones by priority, copies their rings into one array polygon by polygon (in that
// order, so a smaller polygon index means a better zone), then builds each polygon's stripes and
// grid and finally the candidate grid.
std::unique_ptr<SpatialIndex> SpatialIndex::build(std::vector<IndexEntry> entries) {
  size_t positions = 0, polygons = 0;
  for (const IndexEntry& e : entries) {
    positions += validate(e);
    polygons += e.shape.polygons.size();
  }
  // Edge e joins positions e and e + 1, so the last index must still fit in uint32.
  if (positions >= kNone) fail("too many positions to index: " + std::to_string(positions));

  std::vector<uint32_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (entries[a].depth != entries[b].depth) return entries[a].depth > entries[b].depth;
    return entries[a].zone_id < entries[b].zone_id;
  });
  std::vector<int64_t> ids;
  ids.reserve(entries.size());
  for (const IndexEntry& e : entries)
    ids.push_back(e.zone_id);
  std::sort(ids.begin(), ids.end());
  auto dup = std::adjacent_find(ids.begin(), ids.end());
  if (dup != ids.end()) fail("zone id " + std::to_string(*dup) + " appears twice");

  std::unique_ptr<SpatialIndex> index(new SpatialIndex());
  SpatialIndex& ix = *index;
  ix.zone_ids_.reserve(entries.size());
  ix.polys_.reserve(polygons);
  ix.verts_.reserve(positions);
  for (uint32_t rank = 0; rank < order.size(); ++rank) {
    IndexEntry& e = entries[order[rank]];
    ix.zone_ids_.push_back(e.zone_id);
    for (const Polygon& polygon : e.shape.polygons) {
      Poly poly{};
      poly.zone = rank;
      poly.min_x = poly.max_x = polygon.rings[0][0].lon;
      poly.min_y = poly.max_y = polygon.rings[0][0].lat;
      for (const Ring& ring : polygon.rings) {
        for (const Point& pt : ring) {
          poly.min_x = std::min(poly.min_x, pt.lon);
          poly.max_x = std::max(poly.max_x, pt.lon);
          poly.min_y = std::min(poly.min_y, pt.lat);
          poly.max_y = std::max(poly.max_y, pt.lat);
        }
      }
      ix.polys_.push_back(poly);
      ix.build_polygon_accelerators(polygon, static_cast<uint32_t>(ix.polys_.size() - 1));
    }
    std::vector<Polygon>().swap(e.shape.polygons);  // copied: release the input now
  }
  ix.build_candidate_grid();
  ix.stripe_edges_.shrink_to_fit();
  ix.ring_start_.shrink_to_fit();
  ix.stripe_off_.shrink_to_fit();
  ix.poly_cells_.shrink_to_fit();
  return index;
}

// Appends polygon p's rings to verts_ and builds its y-stripes, then (for polygons with enough
// edges) its grid of cells classified as wholly outside, wholly inside or mixed.
void SpatialIndex::build_polygon_accelerators(const Polygon& polygon, uint32_t p) {
  Poly& poly = polys_[p];
  std::vector<uint32_t> edges;  // first vertex of each edge, ring joins excluded
  poly.first_ring = static_cast<uint32_t>(ring_start_.size());
  poly.n_rings = static_cast<uint32_t>(polygon.rings.size());
  for (const Ring& ring : polygon.rings) {
    const auto base = static_cast<uint32_t>(verts_.size());
    ring_start_.push_back(base);
    verts_.insert(verts_.end(), ring.begin(), ring.end());
    for (uint32_t k = 0; k + 1 < ring.size(); ++k)
      edges.push_back(base + k);
  }
  ring_start_.push_back(static_cast<uint32_t>(verts_.size()));  // the last ring's end
  const auto n_edges = static_cast<uint32_t>(edges.size());

  // Stripes: bucket each edge under every stripe its latitude range touches.
  double height = poly.max_y - poly.min_y;
  double spans = 0;  // sum of the edges' latitude spans, in heights: crossings of a mean line
  for (uint32_t e : edges)
    spans += std::fabs(verts_[e + 1].lat - verts_[e].lat);
  spans = height > 0 ? spans / height : 0;
  const uint32_t whole = n_edges / kEdgesPerStripe;  // stripes of kEdgesPerStripe edges each
  double wanted = std::min<double>(static_cast<double>(whole),
                                   spans > 0 ? kStripeBudget * n_edges / spans : n_edges);
  uint32_t n_stripes = static_cast<uint32_t>(std::max(1.0, wanted));
  double scale = height > 0 ? n_stripes / height : 0;
  if (!std::isfinite(scale)) scale = 0;  // a box too thin to divide: one stripe
  if (scale == 0) n_stripes = 1;
  poly.stripe_scale = scale;
  poly.nstripes = n_stripes;
  poly.first_stripe = static_cast<uint32_t>(stripe_off_.size());
  size_t base = stripe_edges_.size();
  std::vector<uint32_t> counts(n_stripes + 1, 0);
  auto stripe_range = [&](uint32_t e) {
    double y0 = verts_[e].lat - poly.min_y, y1 = verts_[e + 1].lat - poly.min_y;
    return std::make_pair(bucket(std::min(y0, y1), scale, n_stripes),
                          bucket(std::max(y0, y1), scale, n_stripes));
  };
  for (uint32_t e : edges) {
    auto [s0, s1] = stripe_range(e);
    for (uint32_t s = s0; s <= s1; ++s)
      ++counts[s + 1];
  }
  for (uint32_t s = 0; s < n_stripes; ++s)
    counts[s + 1] += counts[s];
  if (base + counts[n_stripes] >= kNone) fail("too many polygon edges to index");
  for (uint32_t s = 0; s <= n_stripes; ++s)
    stripe_off_.push_back(static_cast<uint32_t>(base + counts[s]));
  stripe_edges_.resize(base + counts[n_stripes]);
  for (uint32_t e : edges) {
    auto [s0, s1] = stripe_range(e);
    for (uint32_t s = s0; s <= s1; ++s)
      stripe_edges_[base + counts[s]++] = e;
  }

  // Grid: about kCellsPerEdge cells per edge, shaped like the box.
  double width = poly.max_x - poly.min_x;
  if (n_edges < kGridMinEdges || !(width > 0) || !(height > 0)) return;
  double cells = static_cast<double>(n_edges) * kCellsPerEdge;
  double nx_f = std::round(std::sqrt(cells * width / height));
  uint32_t nx = static_cast<uint32_t>(std::clamp(nx_f, 1.0, std::min(cells, double(kMaxGridSide))));
  uint32_t ny =
      static_cast<uint32_t>(std::clamp(std::round(cells / nx), 1.0, double(kMaxGridSide)));
  double sx = nx / width, sy = ny / height;
  size_t first_cell = (poly_cells_.size() * 4);
  size_t n_cells = size_t(nx) * ny;
  if (!std::isfinite(sx) || !std::isfinite(sy) || first_cell + n_cells >= kNone) return;

  // Mark every cell an edge passes within kCellMargin of, in cell units (u, v): row by row, the
  // part of the edge inside the row's band widened by the margin.
  std::vector<uint8_t> status(n_cells, kOutside);
  const double m = kCellMargin;
  for (uint32_t e : edges) {
    const Point& a = verts_[e];
    const Point& b = verts_[e + 1];
    double ua = (a.lon - poly.min_x) * sx, va = (a.lat - poly.min_y) * sy;
    double ub = (b.lon - poly.min_x) * sx, vb = (b.lat - poly.min_y) * sy;
    // bucket(v, 1, n) is floor(v) clamped to [0, n - 1].
    const uint32_t j0 = bucket(std::min(va, vb) - m, 1, ny);
    const uint32_t j1 = bucket(std::max(va, vb) + m, 1, ny);
    const double dv = vb - va, inv_dv = dv != 0 ? 1 / dv : 0;
    for (uint32_t j = j0; j <= j1; ++j) {
      double u0 = ua, u1 = ub;
      if (dv != 0) {
        double t0 = std::clamp((j - m - va) * inv_dv, 0.0, 1.0);
        double t1 = std::clamp((j + 1 + m - va) * inv_dv, 0.0, 1.0);
        u0 = ua + t0 * (ub - ua);
        u1 = ua + t1 * (ub - ua);
      }
      uint8_t* row = status.data() + size_t(j) * nx;
      const uint32_t i1 = bucket(std::max(u0, u1) + m, 1, nx);
      for (uint32_t i = bucket(std::min(u0, u1) - m, 1, nx); i <= i1; ++i)
        row[i] = kMixed;
    }
  }
  // Classify the untouched cells. Adjacent untouched cells form an edge-free connected region,
  // so a cell takes the status of its untouched left or lower neighbour; only a cell with
  // neither needs an exact test (at its center, which must provably map to it).
  for (uint32_t j = 0; j < ny; ++j) {
    uint8_t* row = status.data() + size_t(j) * nx;
    const uint8_t* below = j > 0 ? row - nx : nullptr;
    int run = -1;  // status of the untouched run this cell continues, if any
    for (uint32_t i = 0; i < nx; ++i) {
      if (row[i] == kMixed) {
        run = -1;
        continue;
      }
      if (run < 0 && below && below[i] != kMixed) run = below[i];
      if (run < 0) {
        double cx = poly.min_x + (i + 0.5) / sx, cy = poly.min_y + (j + 0.5) / sy;
        bool maps = cx >= poly.min_x && cx <= poly.max_x && cy >= poly.min_y && cy <= poly.max_y &&
                    bucket(cx - poly.min_x, sx, nx) == i && bucket(cy - poly.min_y, sy, ny) == j;
        int loc = maps ? stripe_locate(poly, cx, cy) : 2;
        run = loc == 2 ? -1 : loc;  // a center on the boundary cannot happen; be safe
      }
      row[i] = static_cast<uint8_t>(run < 0 ? int{kMixed} : run);
    }
  }
  poly.nx = static_cast<uint16_t>(nx);
  poly.ny = static_cast<uint16_t>(ny);
  poly.cell_sx = sx;
  poly.cell_sy = sy;
  poly.first_cell = static_cast<uint32_t>(first_cell);
  // Four cells a byte; a polygon's cells start on a byte (first_cell is a multiple of 4).
  status.resize((n_cells + 3) / 4 * 4, kOutside);
  for (size_t c = 0; c < status.size(); c += 4) {
    poly_cells_.push_back(static_cast<uint8_t>(status[c] | status[c + 1] << 2 | status[c + 2] << 4 |
                                               status[c + 3] << 6));
  }
}

// Lays a uniform grid over all polygon boxes, lists in each cell the polygons whose box meets
// it (ascending, so best zone first), then splits crowded cells. Why not an R-tree: a cell
// lookup is two multiplications and its list is already in priority order, so zone_at stops at
// the first covering polygon. A packed Hilbert R-tree (16 per node, SSE box tests) visited ~5
// nodes per lookup on the countries and needed its candidates sorted by priority: lookups were
// 2 to 2.5 times slower. The list budget and the split rule keep skewed data (a few huge boxes
// over many small ones) within a small multiple of the polygon count in memory; the one shape
// a grid handles worse than a tree is thousands of polygons packed into a spot under 4^-12 of
// a top cell, which administrative boundaries never are.
void SpatialIndex::build_candidate_grid() {
  const size_t n = polys_.size();
  if (n == 0) return;
  boxes_.resize(4 * n);
  bounds_ = {polys_[0].min_x, polys_[0].min_y, polys_[0].max_x, polys_[0].max_y};
  for (size_t p = 0; p < n; ++p) {
    const Poly& b = polys_[p];
    boxes_[4 * p] = float_down(b.min_x), boxes_[4 * p + 1] = float_down(b.min_y);
    boxes_[4 * p + 2] = float_up(b.max_x), boxes_[4 * p + 3] = float_up(b.max_y);
    bounds_.min_lon = std::min(bounds_.min_lon, b.min_x);
    bounds_.min_lat = std::min(bounds_.min_lat, b.min_y);
    bounds_.max_lon = std::max(bounds_.max_lon, b.max_x);
    bounds_.max_lat = std::max(bounds_.max_lat, b.max_y);
  }
  // The cells of grid g that polygon p's exact box spans, as [i0, i1] x [j0, j1].
  struct Span {
    uint32_t i0, i1, j0, j1;
  };
  auto span = [&](const Grid& g, uint32_t p) {
    const Poly& b = polys_[p];
    return Span{bucket(b.min_x - g.x0, g.sx, g.nx), bucket(b.max_x - g.x0, g.sx, g.nx),
                bucket(b.min_y - g.y0, g.sy, g.ny), bucket(b.max_y - g.y0, g.sy, g.ny)};
  };
  // A grid of about `cells` cells over [x0, x0 + w] x [y0, y0 + h], shaped like it.
  auto make_grid = [](double x0, double y0, double w, double h, double cells, uint32_t first) {
    Grid g{x0, y0, 0, 0, 1, 1, first};
    if (w > 0 && h > 0) {
      double side = std::min(cells, 1e5);  // a very flat box: one row of `cells` cells
      g.nx = static_cast<uint32_t>(std::clamp(std::round(std::sqrt(cells * w / h)), 1.0, side));
      g.ny = static_cast<uint32_t>(std::clamp(std::round(cells / g.nx), 1.0, 1e5));
    } else if (w > 0) {
      g.nx = static_cast<uint32_t>(std::clamp(cells, 1.0, 1e5));
    } else if (h > 0) {
      g.ny = static_cast<uint32_t>(std::clamp(cells, 1.0, 1e5));
    }
    g.sx = w > 0 ? g.nx / w : 0;
    g.sy = h > 0 ? g.ny / h : 0;
    if (!std::isfinite(g.sx)) g.sx = 0, g.nx = 1;  // too thin to divide
    if (!std::isfinite(g.sy)) g.sy = 0, g.ny = 1;
    return g;
  };

  const double w = bounds_.max_lon - bounds_.min_lon, h = bounds_.max_lat - bounds_.min_lat;
  const double budget = kListBudget * static_cast<double>(n);
  Grid top{};
  double total = 0;
  for (double cells = std::max(1.0, kCellsPerPolygon * static_cast<double>(n));; cells /= 4) {
    top = make_grid(bounds_.min_lon, bounds_.min_lat, w, h, cells, 0);
    total = 0;
    for (uint32_t p = 0; p < n; ++p) {
      Span s = span(top, p);
      total += double(s.i1 - s.i0 + 1) * (s.j1 - s.j0 + 1);
    }
    if (total <= budget + double(top.nx) * top.ny || cells <= 1) break;
  }
  grids_.push_back(top);
  std::vector<std::vector<uint32_t>> lists(size_t(top.nx) * top.ny);
  for (uint32_t p = 0; p < n; ++p) {
    Span s = span(top, p);
    for (uint32_t j = s.j0; j <= s.j1; ++j) {
      for (uint32_t i = s.i0; i <= s.i1; ++i)
        lists[size_t(j) * top.nx + i].push_back(p);
    }
  }
  cell_sub_.assign(lists.size(), kNone);

  // Split crowded cells, coarse ones first. A sub-grid covers its cell's nominal rectangle;
  // points that round into the cell from just outside it clamp to the sub-grid's border cells,
  // and the monotonic bucket keeps every box listed wherever its points land.
  struct Pending {
    uint32_t grid, cell;
    int depth;
  };
  std::vector<Pending> queue;
  for (uint32_t c = 0; c < lists.size(); ++c)
    queue.push_back({0, c, 0});
  for (size_t q = 0; q < queue.size(); ++q) {
    const Pending at = queue[q];
    std::vector<uint32_t>& list = lists[at.cell];
    if (list.size() <= kSplitAt || at.depth >= kMaxSplitDepth) continue;
    const Grid& parent = grids_[at.grid];
    uint32_t local = at.cell - parent.first;
    uint32_t i = local % parent.nx, j = local / parent.nx;
    double cw = parent.sx > 0 ? 1 / parent.sx : 0, ch = parent.sy > 0 ? 1 / parent.sy : 0;
    Grid sub = make_grid(parent.x0 + i * cw, parent.y0 + j * ch, cw, ch,
                         double(kSplitWays) * kSplitWays, static_cast<uint32_t>(lists.size()));
    std::vector<std::vector<uint32_t>> sub_lists(size_t(sub.nx) * sub.ny);
    double entries = 0;
    for (uint32_t p : list) {
      Span s = span(sub, p);
      for (uint32_t sj = s.j0; sj <= s.j1; ++sj) {
        for (uint32_t si = s.i0; si <= s.i1; ++si)
          sub_lists[size_t(sj) * sub.nx + si].push_back(p);
      }
      entries += double(s.i1 - s.i0 + 1) * (s.j1 - s.j0 + 1);
    }
    const auto listed = static_cast<double>(list.size());
    bool halves = entries / static_cast<double>(sub_lists.size()) <= listed / 2.0;
    if (!halves || total - listed + entries > budget) continue;
    total += entries - listed;
    const auto sub_index = static_cast<uint32_t>(grids_.size());
    grids_.push_back(sub);
    cell_sub_[at.cell] = sub_index;
    std::vector<uint32_t>().swap(list);  // invalidated below by the growth of lists
    for (auto& l : sub_lists) {
      queue.push_back({sub_index, static_cast<uint32_t>(lists.size()), at.depth + 1});
      lists.push_back(std::move(l));
      cell_sub_.push_back(kNone);
    }
  }
  if (total + 1 >= double(kNone)) fail("too many polygons to index");
  cell_begin_.reserve(lists.size() + 1);
  for (const auto& l : lists) {
    cell_begin_.push_back(static_cast<uint32_t>(cands_.size()));
    cands_.insert(cands_.end(), l.begin(), l.end());
  }
  cell_begin_.push_back(static_cast<uint32_t>(cands_.size()));
}

// ---- Lookup -------------------------------------------------------------------------------------

// The cell holding (x, y), which must be within bounds_: down through the sub-grids.
uint32_t SpatialIndex::cell_of(double x, double y) const {
  const Grid* g = grids_.data();
  for (;;) {
    uint32_t c =
        g->first + bucket(y - g->y0, g->sy, g->ny) * g->nx + bucket(x - g->x0, g->sx, g->nx);
    uint32_t sub = cell_sub_[c];
    if (sub == kNone) return c;
    g = &grids_[sub];
  }
}

// Winding numbers over the edges of the point's stripe: every edge whose latitude range holds y
// is there (see bucket), plus a few that edge_winding drops at once. A stripe lists its edges in
// ring order, so rings are judged one after the other as the scan passes their last edge; a ring
// with no edge in the stripe has winding number 0.
int SpatialIndex::stripe_locate(const Poly& poly, double x, double y) const {
  const uint32_t s = bucket(y - poly.min_y, poly.stripe_scale, poly.nstripes);
  const uint32_t* e = stripe_edges_.data() + stripe_off_[poly.first_stripe + s];
  const uint32_t* end = stripe_edges_.data() + stripe_off_[poly.first_stripe + s + 1];
  const Point* v = verts_.data();
  const uint32_t* ring_end = ring_start_.data() + poly.first_ring + 1;  // ring_end[r]
  size_t ring = 0;
  int winding = 0;
  for (; e != end; ++e) {
    while (*e >= ring_end[ring]) {  // past the current ring's last edge: judge it
      int verdict = ring_verdict(ring, false, winding);
      if (verdict >= 0) return verdict;
      ++ring;
      winding = 0;
    }
    int w = edge_winding(v[*e], v[*e + 1], x, y);
    if (w == kOnEdge) return 2;  // every earlier ring has let the point through
    winding += w;
  }
  for (; ring < poly.n_rings; ++ring, winding = 0) {
    int verdict = ring_verdict(ring, false, winding);
    if (verdict >= 0) return verdict;
  }
  return 1;
}

// Exact box test, then the grid cell's verdict when it has one, else the stripe's ray cast.
bool SpatialIndex::polygon_covers(uint32_t p, double x, double y) const {
  const Poly& poly = polys_[p];
  if (!(x >= poly.min_x && x <= poly.max_x && y >= poly.min_y && y <= poly.max_y)) return false;
  if (poly.nx != 0) {
    size_t c = poly.first_cell + size_t(bucket(y - poly.min_y, poly.cell_sy, poly.ny)) * poly.nx +
               bucket(x - poly.min_x, poly.cell_sx, poly.nx);
    unsigned cell = (poly_cells_[c >> 2] >> ((c & 3) * 2)) & 3u;
    if (cell != kMixed) return cell == kInside;
  }
  return stripe_locate(poly, x, y) != 0;
}

// The cell's list is in priority order, so the first polygon that covers the point is the
// answer: the deepest zone, then the smallest id.
std::optional<int64_t> SpatialIndex::zone_at(double lon, double lat) const {
  // Also turns NaN away: every comparison with it is false.
  if (grids_.empty() || !(lon >= bounds_.min_lon && lon <= bounds_.max_lon &&
                          lat >= bounds_.min_lat && lat <= bounds_.max_lat)) {
    return std::nullopt;
  }
  const uint32_t c = cell_of(lon, lat);
  for (uint32_t k = cell_begin_[c], end = cell_begin_[c + 1]; k < end; ++k) {
    const uint32_t p = cands_[k];
    const float* b = &boxes_[4 * size_t(p)];
    if (lon < b[0] || lat < b[1] || lon > b[2] || lat > b[3]) continue;
    if (polygon_covers(p, lon, lat)) return zone_ids_[polys_[p].zone];
  }
  return std::nullopt;
}

// Tests the whole list; ids come out ascending and once each.
std::vector<int64_t> SpatialIndex::covering(double lon, double lat) const {
  std::vector<int64_t> out;
  if (grids_.empty() || !(lon >= bounds_.min_lon && lon <= bounds_.max_lon &&
                          lat >= bounds_.min_lat && lat <= bounds_.max_lat)) {
    return out;
  }
  const uint32_t c = cell_of(lon, lat);
  for (uint32_t k = cell_begin_[c], end = cell_begin_[c + 1]; k < end; ++k) {
    if (polygon_covers(cands_[k], lon, lat)) out.push_back(zone_ids_[polys_[cands_[k]].zone]);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Capacities, not sizes: what the allocator actually holds for this index.
size_t SpatialIndex::memory_bytes() const {
  return sizeof(SpatialIndex) + zone_ids_.capacity() * sizeof(int64_t) +
         polys_.capacity() * sizeof(Poly) + verts_.capacity() * sizeof(Point) +
         ring_start_.capacity() * sizeof(uint32_t) + stripe_off_.capacity() * sizeof(uint32_t) +
         stripe_edges_.capacity() * sizeof(uint32_t) + poly_cells_.capacity() +
         boxes_.capacity() * sizeof(float) + grids_.capacity() * sizeof(Grid) +
         cell_begin_.capacity() * sizeof(uint32_t) + cell_sub_.capacity() * sizeof(uint32_t) +
         cands_.capacity() * sizeof(uint32_t);
}

// Brute force over every edge of every ring, with the same per-edge test and ring rule as the
// index; a polygon without rings covers nothing.
bool covers(const MultiPolygon& shape, double lon, double lat) {
  for (const Polygon& polygon : shape.polygons) {
    int verdict = polygon.rings.empty() ? 0 : -1;
    for (size_t r = 0; r < polygon.rings.size() && verdict < 0; ++r) {
      const Ring& ring = polygon.rings[r];
      int winding = 0;
      bool on_edge = false;
      for (size_t k = 0; k + 1 < ring.size() && !on_edge; ++k) {
        int w = edge_winding(ring[k], ring[k + 1], lon, lat);
        if (w == kOnEdge) {
          on_edge = true;
        } else {
          winding += w;
        }
      }
      verdict = ring_verdict(r, on_edge, winding);
    }
    if (verdict != 0) return true;  // covered, or every hole passed
  }
  return false;
}

}  // namespace zonegate::geo
