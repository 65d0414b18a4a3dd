// Point-in-zone lookups: zonegate's SpatialIndex against GEOS prepared geometries, side by side
// on the same polygons and points. Both answer "which of these polygons covers the point, the
// best zone first": GEOS with an STRtree for candidates and GEOSPreparedCovers_r per candidate,
// zonegate with SpatialIndex::zone_at. Also index build time and heap bytes for both, and the
// agreement of the two on every benchmark point (exit status 1 on any disagreement).
//
// Data: Natural Earth countries from world-atlas, converted once with
//   node tests/bench/geo/to_geojson.mjs tests/.artifacts/bench/countries-50m.geojson
// ZONEGATE_GEO_DATA overrides that path; ZONEGATE_GEO_POINTS the number of points per set
// (default 1,000,000). Two point sets, fixed seeds: "world" is uniform over [-180, 180] x
// [-90, 90]; "boxes" picks a country uniformly, then a point uniformly in its bounding box.
//
//   geo_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <geos_c.h>
#include <malloc.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/geojson.hpp"
#include "core/spatial_index.hpp"

using namespace zonegate::geo;

namespace {

struct Country {
  std::string iso;  // feature id (ISO 3166 numeric), empty when absent
  std::string name;
  MultiPolygon shape;
  Bounds box;
};

struct Data {
  std::vector<Country> countries;  // zone id = index + 1, depth 0
  std::vector<Point> world, boxes;
  size_t polygons = 0, positions = 0;
  Country largest;  // the polygon with the most positions, alone: per-polygon "checks"
  std::vector<Point> in_largest;  // uniform in its bounding box
};

// Reads the FeatureCollection; each geometry goes through the extension's own parser.
std::vector<Country> load_countries(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr,
                 "geo_bench: cannot read %s\n  make it with: node tests/bench/geo/to_geojson.mjs "
                 "%s\n  (or set ZONEGATE_GEO_DATA)\n",
                 path.c_str(), path.c_str());
    std::exit(2);
  }
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("features")) {
    std::fprintf(stderr, "geo_bench: %s is not a GeoJSON FeatureCollection\n", path.c_str());
    std::exit(2);
  }
  std::vector<Country> out;
  for (const auto& f : doc["features"].GetArray()) {
    Country c;
    if (f.HasMember("id") && f["id"].IsString()) c.iso = f["id"].GetString();
    const auto& props = f["properties"];
    if (props.IsObject() && props.HasMember("name") && props["name"].IsString())
      c.name = props["name"].GetString();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    f["geometry"].Accept(writer);
    c.shape = parse_boundary({buf.GetString(), buf.GetSize()});
    c.box = bounds_of(c.shape);
    out.push_back(std::move(c));
  }
  return out;
}

// The environment variable as a count, or the default.
size_t env_count(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

// The countries and both point sets, loaded and drawn once.
Data& data() {
  static Data d = [] {
    Data d;
    const char* path = std::getenv("ZONEGATE_GEO_DATA");
    d.countries = load_countries(path && *path ? path : ZONEGATE_GEO_DEFAULT_DATA);
    size_t most = 0;
    for (const Country& c : d.countries) {
      d.polygons += c.shape.polygons.size();
      d.positions += position_count(c.shape);
      for (const Polygon& p : c.shape.polygons) {
        MultiPolygon one{{p}};
        if (position_count(one) <= most) continue;
        most = position_count(one);
        d.largest = {c.iso, c.name, one, bounds_of(one)};
      }
    }
    const size_t n = env_count("ZONEGATE_GEO_POINTS", 1'000'000);
    std::mt19937_64 rng(20240601);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (size_t i = 0; i < n; ++i)
      d.world.push_back({-180 + 360 * unit(rng), -90 + 180 * unit(rng)});
    const Bounds& lb = d.largest.box;
    for (size_t i = 0; i < n; ++i) {
      d.in_largest.push_back({lb.min_lon + (lb.max_lon - lb.min_lon) * unit(rng),
                              lb.min_lat + (lb.max_lat - lb.min_lat) * unit(rng)});
    }
    std::uniform_int_distribution<size_t> pick(0, d.countries.size() - 1);
    for (size_t i = 0; i < n; ++i) {
      const Bounds& b = d.countries[pick(rng)].box;
      d.boxes.push_back({b.min_lon + (b.max_lon - b.min_lon) * unit(rng),
                         b.min_lat + (b.max_lat - b.min_lat) * unit(rng)});
    }
    return d;
  }();
  return d;
}

// The countries as index entries: zone id = position + 1, all at depth 0.
std::vector<IndexEntry> entries_of(const Data& d) {
  std::vector<IndexEntry> entries;
  for (size_t i = 0; i < d.countries.size(); ++i)
    entries.push_back({static_cast<int64_t>(i + 1), 0, d.countries[i].shape});
  return entries;
}

// Bytes the heap has handed out (glibc), to compare both sides' structures the same way.
size_t heap_bytes() {
  return mallinfo2().uordblks;
}

// ---- GEOS side ---------------------------------------------------------------------------------

// GEOS notice and error handler: to stderr.
void geos_message(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "GEOS: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
}

// The one GEOS context of the benchmark.
GEOSContextHandle_t geos() {
  static GEOSContextHandle_t h = [] {
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(h, geos_message);
    GEOSContext_setErrorHandler_r(h, geos_message);
    return h;
  }();
  return h;
}

struct GeosPart {
  const GEOSPreparedGeometry* prepared;
  int64_t zone_id;
  int depth;
};

// One prepared geometry per polygon (like SpatialIndex's per-polygon boxes), all in an STRtree.
class GeosIndex {
 public:
  // GEOS geometries from the parsed rings, one prepared geometry and tree item per polygon.
  explicit GeosIndex(const std::vector<Country>& countries) {
    GEOSContextHandle_t h = geos();
    for (size_t i = 0; i < countries.size(); ++i) {
      for (const Polygon& p : countries[i].shape.polygons) {
        std::vector<GEOSGeometry*> rings;
        for (const Ring& r : p.rings) {
          GEOSCoordSequence* seq = GEOSCoordSeq_create_r(h, static_cast<unsigned>(r.size()), 2);
          for (size_t k = 0; k < r.size(); ++k)
            GEOSCoordSeq_setXY_r(h, seq, static_cast<unsigned>(k), r[k].lon, r[k].lat);
          rings.push_back(GEOSGeom_createLinearRing_r(h, seq));
        }
        GEOSGeometry* poly = GEOSGeom_createPolygon_r(h, rings[0], rings.data() + 1,
                                                      static_cast<unsigned>(rings.size() - 1));
        geoms_.push_back(poly);
        parts_.push_back({GEOSPrepare_r(h, poly), static_cast<int64_t>(i + 1), 0});
      }
    }
    tree_ = GEOSSTRtree_create_r(h, 10);
    for (size_t i = 0; i < parts_.size(); ++i)
      GEOSSTRtree_insert_r(h, tree_, geoms_[i], &parts_[i]);
    // GEOS builds the tree and each prepared polygon's point locator on first use: force them
    // here so the build cost and memory are counted as build, not as the first lookups.
    for (size_t i = 0; i < parts_.size(); ++i) {
      double x = 0, y = 0;
      GEOSGeom_getXMin_r(h, geoms_[i], &x);
      GEOSGeom_getYMin_r(h, geoms_[i], &y);
      GEOSGeometry* pt = GEOSGeom_createPointFromXY_r(h, x, y);
      GEOSPreparedCovers_r(h, parts_[i].prepared, pt);
      zone_at(pt);
      GEOSGeom_destroy_r(h, pt);
    }
  }
  // Frees the tree, the prepared geometries, then the geometries they point into.
  ~GeosIndex() {
    GEOSContextHandle_t h = geos();
    GEOSSTRtree_destroy_r(h, tree_);
    for (const GeosPart& p : parts_)
      GEOSPreparedGeom_destroy_r(h, p.prepared);
    for (GEOSGeometry* g : geoms_)
      GEOSGeom_destroy_r(h, g);
  }
  GeosIndex(const GeosIndex&) = delete;
  GeosIndex& operator=(const GeosIndex&) = delete;

  // The best covering zone: candidates from the STRtree, each tested only if it could beat
  // the best so far (the same pruning SpatialIndex does).
  std::optional<int64_t> zone_at(const GEOSGeometry* point) const {
    Query q{geos(), point, nullptr};
    GEOSSTRtree_query_r(q.h, tree_, point, &GeosIndex::visit, &q);
    if (!q.best) return std::nullopt;
    return q.best->zone_id;
  }

 private:
  struct Query {
    GEOSContextHandle_t h;
    const GEOSGeometry* point;
    const GeosPart* best;
  };
  // STRtree callback: covers-tests a candidate that could beat the best so far.
  static void visit(void* item, void* user) {
    auto* q = static_cast<Query*>(user);
    auto* part = static_cast<const GeosPart*>(item);
    if (q->best && (part->depth < q->best->depth ||
                    (part->depth == q->best->depth && part->zone_id >= q->best->zone_id))) {
      return;
    }
    char r = GEOSPreparedCovers_r(q->h, part->prepared, q->point);
    if (r == 2) std::abort();  // a GEOS exception: the comparison would be meaningless
    if (r == 1) q->best = part;
  }

  std::vector<GEOSGeometry*> geoms_;
  std::vector<GeosPart> parts_;
  GEOSSTRtree* tree_ = nullptr;
};

// Point geometries for GEOS, made before timing: the C API of GEOS 3.11 has no XY predicates
// (GEOSPreparedContainsXY_r arrived in 3.12), so creating them is not charged to GEOS.
std::vector<GEOSGeometry*> geos_points(const std::vector<Point>& pts) {
  std::vector<GEOSGeometry*> out;
  out.reserve(pts.size());
  for (const Point& p : pts)
    out.push_back(GEOSGeom_createPointFromXY_r(geos(), p.lon, p.lat));
  return out;
}

struct Sides {
  std::unique_ptr<SpatialIndex> zonegate, zonegate_largest;
  std::unique_ptr<GeosIndex> geos, geos_largest;
  std::vector<GEOSGeometry*> world, boxes, in_largest;
};

// Both indexes and the GEOS points, built once.
Sides& sides() {
  static Sides s = [] {
    Sides s;
    const Data& d = data();
    s.zonegate = SpatialIndex::build(entries_of(d));
    s.geos = std::make_unique<GeosIndex>(d.countries);
    s.world = geos_points(d.world);
    s.boxes = geos_points(d.boxes);
    std::vector<IndexEntry> one;
    one.push_back({1, 0, d.largest.shape});
    s.zonegate_largest = SpatialIndex::build(std::move(one));
    s.geos_largest = std::make_unique<GeosIndex>(std::vector<Country>{d.largest});
    s.in_largest = geos_points(d.in_largest);
    return s;
  }();
  return s;
}

// ---- Benchmarks ------------------------------------------------------------------------------

// SpatialIndex::zone_at over every point of a set, per iteration.
void BM_ZonegateLookup(benchmark::State& state, const SpatialIndex* index_ptr,
                       const std::vector<Point>* points) {
  const SpatialIndex& index = *index_ptr;
  int64_t sum = 0;
  for (auto _ : state) {
    for (const Point& p : *points)
      sum += index.zone_at(p.lon, p.lat).value_or(0);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(points->size()));
}

// GeosIndex::zone_at over every point of a set, per iteration.
void BM_GeosLookup(benchmark::State& state, const GeosIndex* index_ptr,
                   const std::vector<GEOSGeometry*>* points) {
  const GeosIndex& index = *index_ptr;
  int64_t sum = 0;
  for (auto _ : state) {
    for (const GEOSGeometry* p : *points)
      sum += index.zone_at(p).value_or(0);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(points->size()));
}

// SpatialIndex::build on copies of the entries; memory and heap bytes as counters.
void BM_ZonegateBuild(benchmark::State& state) {
  const Data& d = data();
  size_t heap = 0, bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<IndexEntry> entries = entries_of(d);
    state.ResumeTiming();
    auto index = SpatialIndex::build(std::move(entries));
    state.PauseTiming();
    bytes = index->memory_bytes();
    size_t before = heap_bytes();
    index.reset();
    heap = before - heap_bytes();
    state.ResumeTiming();
  }
  state.counters["memory_bytes"] = static_cast<double>(bytes);
  state.counters["heap_bytes"] = static_cast<double>(heap);
  state.counters["polygons"] = static_cast<double>(d.polygons);
}

// GEOS geometries, prepared geometries, STRtree, all forced built; heap bytes as a counter.
void BM_GeosBuild(benchmark::State& state) {
  const Data& d = data();
  size_t heap = 0;
  for (auto _ : state) {
    auto index = std::make_unique<GeosIndex>(d.countries);
    state.PauseTiming();
    size_t before = heap_bytes();
    index.reset();
    heap = before - heap_bytes();
    state.ResumeTiming();
  }
  state.counters["heap_bytes"] = static_cast<double>(heap);
  state.counters["polygons"] = static_cast<double>(d.polygons);
}

// "name (iso)" of a zone id, for disagreement reports.
std::string zone_name(std::optional<int64_t> id) {
  if (!id) return "none";
  const Country& c = data().countries[static_cast<size_t>(*id - 1)];
  return std::to_string(*id) + " " + c.name + (c.iso.empty() ? "" : " (" + c.iso + ")");
}

// Every point both ways; prints the counts and each disagreement. Returns the disagreements.
size_t agreement(const char* set, const SpatialIndex& zonegate, const GeosIndex& geos,
                 const std::vector<Point>& pts, const std::vector<GEOSGeometry*>& geos_pts) {
  size_t agree = 0, covered = 0, shown = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    std::optional<int64_t> a = zonegate.zone_at(pts[i].lon, pts[i].lat);
    std::optional<int64_t> b = geos.zone_at(geos_pts[i]);
    covered += a.has_value();
    if (a == b) {
      ++agree;
    } else if (shown++ < 50) {
      std::printf("  DISAGREE %s (%.17g, %.17g): zonegate %s, GEOS %s\n", set, pts[i].lon,
                  pts[i].lat, zone_name(a).c_str(), zone_name(b).c_str());
    }
  }
  std::printf("agreement %-7s: %zu / %zu points agree (%zu disagree); %.1f%% covered\n", set, agree,
              pts.size(), pts.size() - agree, 100.0 * covered / pts.size());
  return pts.size() - agree;
}

}  // namespace

// Loads the data, checks agreement, prints sizes, then runs the benchmarks.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const Data& d = data();
  std::printf("countries: %zu features, %zu polygons, %zu positions; %zu points per set\n",
              d.countries.size(), d.polygons, d.positions, d.world.size());

  size_t heap0 = heap_bytes();
  auto t0 = std::chrono::steady_clock::now();
  auto zg = SpatialIndex::build(entries_of(d));
  auto t1 = std::chrono::steady_clock::now();
  size_t heap_zg = heap_bytes() - heap0;  // entries were released by build: index only
  auto gi = std::make_unique<GeosIndex>(d.countries);
  auto t2 = std::chrono::steady_clock::now();
  size_t heap_geos = heap_bytes() - heap0 - heap_zg;
  std::printf("zonegate index: %.1f ms, memory_bytes %zu, heap %zu\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(), zg->memory_bytes(),
              heap_zg);
  std::printf("GEOS STRtree + prepared (warmed): %.1f ms, heap %zu\n",
              std::chrono::duration<double, std::milli>(t2 - t1).count(), heap_geos);
  zg.reset();
  gi.reset();

  const Sides& s = sides();
  std::printf("largest polygon: %s, %zu positions\n", d.largest.name.c_str(),
              position_count(d.largest.shape));
  size_t bad =
      agreement("world", *s.zonegate, *s.geos, d.world, s.world) +
      agreement("boxes", *s.zonegate, *s.geos, d.boxes, s.boxes) +
      agreement("largest", *s.zonegate_largest, *s.geos_largest, d.in_largest, s.in_largest);
  std::fflush(stdout);

  benchmark::RegisterBenchmark("zone_at/zonegate/world", BM_ZonegateLookup, s.zonegate.get(),
                               &d.world)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("zone_at/geos/world", BM_GeosLookup, s.geos.get(), &s.world)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("zone_at/zonegate/boxes", BM_ZonegateLookup, s.zonegate.get(),
                               &d.boxes)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("zone_at/geos/boxes", BM_GeosLookup, s.geos.get(), &s.boxes)
      ->Unit(benchmark::kMillisecond);
  // One polygon, points in its box: comparable with published per-polygon "checks" numbers.
  benchmark::RegisterBenchmark("covers/zonegate/largest", BM_ZonegateLookup,
                               s.zonegate_largest.get(), &d.in_largest)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("covers/geos/largest", BM_GeosLookup, s.geos_largest.get(),
                               &s.in_largest)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("build/zonegate", BM_ZonegateBuild)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("build/geos", BM_GeosBuild)->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return bad == 0 ? 0 : 1;
}
