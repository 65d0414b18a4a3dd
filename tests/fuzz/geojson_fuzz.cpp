// libFuzzer target for the GeoJSON boundary parser: any input must either parse or throw
// zonegate::Error. Any other exception, a crash or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "core/geojson.hpp"

// Parses one input; when it parses, also runs the measures, which must not throw on a result
// parse_boundary accepted.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    zonegate::geo::MultiPolygon mp = zonegate::geo::parse_boundary(json);
    // A parsed boundary has positions (checked first: bounds_of would throw Error, which is
    // swallowed below) and an ordered box inside the world.
    if (zonegate::geo::position_count(mp) == 0) __builtin_trap();
    zonegate::geo::Bounds b = zonegate::geo::bounds_of(mp);
    if (b.min_lon > b.max_lon || b.min_lat > b.max_lat || b.min_lon < -180 || b.max_lon > 180 ||
        b.min_lat < -90 || b.max_lat > 90) {
      __builtin_trap();
    }
  } catch (const zonegate::Error&) {
    // Rejected input: the expected outcome for most of what the fuzzer generates.
  }
  return 0;
}
