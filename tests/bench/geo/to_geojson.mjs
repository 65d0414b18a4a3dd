// Converts world-atlas's Natural Earth countries (TopoJSON) to a GeoJSON FeatureCollection for
// tests/bench/geo_bench: only Polygon/MultiPolygon features, each keeping its id and name.
//
//   node tests/bench/geo/to_geojson.mjs OUT.json [countries-50m.json|countries-10m.json|...]
//
// The output is generated data: write it under tests/.artifacts/ or /tmp, never commit it.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// topojson-client ships a UMD build; require() gets its exports without relying on how Node
// maps a CommonJS module's names into ESM.
const topojson = require("topojson-client");

const [out, atlas = "countries-50m.json"] = process.argv.slice(2);
if (!out) {
  console.error("usage: node tests/bench/geo/to_geojson.mjs OUT.json [countries-50m.json]");
  process.exit(2);
}

const topology = require(`world-atlas/${atlas}`);
const collection = topojson.feature(topology, topology.objects.countries);
const features = [];
let skipped = 0;
for (const f of collection.features) {
  const type = f.geometry && f.geometry.type;
  if (type !== "Polygon" && type !== "MultiPolygon") {
    skipped++;
    continue;
  }
  // A few Natural Earth units (Kosovo, Somaliland, ...) have no ISO numeric id: keep it absent.
  const feature = { type: "Feature", properties: { name: f.properties?.name ?? null }, geometry: f.geometry };
  if (f.id !== undefined) feature.id = f.id;
  features.push(feature);
}
writeFileSync(out, JSON.stringify({ type: "FeatureCollection", features }));
let polygons = 0;
let positions = 0;
for (const f of features) {
  const parts = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
  polygons += parts.length;
  for (const p of parts) for (const ring of p) positions += ring.length;
}
console.log(`${out}: ${features.length} features, ${polygons} polygons, ${positions} positions` +
            (skipped ? `, ${skipped} skipped (not polygonal)` : ""));
