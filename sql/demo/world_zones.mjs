// Converts world-atlas's Natural Earth countries (TopoJSON) into one JSON zone per line for
// sql/demo/load_world.sh: {"id", "code", "name", "iso", "geometry"} (geometry: a GeoJSON Polygon
// or MultiPolygon). The lines are escaped for psql's \copy text format (backslashes doubled).
//
//   node sql/demo/world_zones.mjs OUT.ndjson [countries-50m.json|countries-110m.json|countries-10m.json]
//   (or a path with a slash: another TopoJSON file with a "countries" object, as in the tests)
//
// Ids are stable across loads and cannot meet the Indonesian codes (at most 10 digits):
//   a unit with its own ISO 3166-1 numeric code N:  id 1,000,000,000,000 + N, code "ISO-N"
//                                                   (Indonesia: 1000000000360, "ISO-360")
//   a unit without one (Kosovo, Somaliland, ...,    id 1,000,001,000,000 + (FNV-1a of the name
//   or sharing its code with a larger unit, as        mod 1,000,000), code "NE-" + the name
//   Ashmore and Cartier Is. shares Australia's)       as a slug ("NE-kosovo")
// Features without a polygonal, non-empty geometry (and, never seen, an id already taken) are
// skipped and counted: listed in OUT.skipped, summed up on stderr. Natural Earth is public domain.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(import.meta.url);
// topojson-client ships a UMD build; require() gets its exports (as tests/bench/geo/to_geojson.mjs).
const topojson = require("topojson-client");

const [out, atlas = "countries-50m.json"] = process.argv.slice(2);
if (!out) {
  console.error("usage: node sql/demo/world_zones.mjs OUT.ndjson [countries-50m.json]");
  process.exit(2);
}

const ISO_BASE = 1_000_000_000_000;
const NAMED_BASE = 1_000_001_000_000;

function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function slug(name) {
  return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

// Planar area in square degrees: only to decide which of two units sharing an ISO code keeps it.
function area(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let sum = 0;
  for (const polygon of polygons) {
    polygon.forEach((ring, k) => {
      let a = 0;
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        a += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
      }
      sum += (k === 0 ? 1 : -1) * Math.abs(a / 2);
    });
  }
  return sum;
}

function nonEmpty(geometry) {
  if (!Array.isArray(geometry.coordinates) || geometry.coordinates.length === 0) return false;
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  return polygons.every((p) => Array.isArray(p) && p.length > 0 && p.every((r) => Array.isArray(r) && r.length > 0));
}

let topology;
try {
  topology = require(atlas.includes("/") ? resolve(atlas) : `world-atlas/${atlas}`);
} catch (e) {
  console.error(`world_zones: cannot read ${atlas} (${e.message.split("\n")[0]}); run 'make deps' (npm package world-atlas)`);
  process.exit(1);
}
const collection = topojson.feature(topology, topology.objects.countries);
const skipped = [];
const units = [];
for (const f of collection.features) {
  const name = f.properties?.name || (f.id !== undefined ? `ISO ${f.id}` : null);
  const type = f.geometry && f.geometry.type;
  if (!name) {
    skipped.push({ name: "(unnamed)", reason: "no name and no id" });
  } else if (type !== "Polygon" && type !== "MultiPolygon") {
    skipped.push({ name, reason: `geometry ${type ?? "null"}` });
  } else if (!nonEmpty(f.geometry)) {
    skipped.push({ name, reason: `empty ${type}` });
  } else {
    const iso = typeof f.id === "string" && /^[0-9]{3}$/.test(f.id) ? f.id : null;
    units.push({ name, iso, geometry: f.geometry, area: area(f.geometry) });
  }
}

// An ISO code shared by several units stays with the largest; the others are named units.
const owner = new Map();
for (const u of units) {
  if (u.iso === null) continue;
  const o = owner.get(u.iso);
  if (!o || u.area > o.area || (u.area === o.area && u.name < o.name)) owner.set(u.iso, u);
}
const seen = new Map();
const lines = [];  // psql \copy text format: a backslash is an escape, so each is doubled
for (const u of units) {
  const byIso = u.iso !== null && owner.get(u.iso) === u;
  const id = byIso ? ISO_BASE + Number(u.iso) : NAMED_BASE + (fnv1a(u.name) % 1_000_000);
  const code = byIso ? `ISO-${u.iso}` : `NE-${slug(u.name) || fnv1a(u.name)}`;
  if (seen.has(id) || seen.has(code)) {
    skipped.push({ name: u.name, reason: `id ${id} or code ${code} already taken by ${seen.get(id) ?? seen.get(code)}` });
    continue;
  }
  seen.set(id, u.name);
  seen.set(code, u.name);
  const zone = { id, code, name: u.name, iso: u.iso, geometry: u.geometry };
  lines.push(JSON.stringify(zone).replace(/\\/g, "\\\\"));
}
writeFileSync(out, lines.length ? lines.join("\n") + "\n" : "");
// OUT.skipped: one {"name", "reason"} per skipped feature, for load_world.sh's summary.
writeFileSync(`${out}.skipped`,
              skipped.map((s) => JSON.stringify(s).replace(/\\/g, "\\\\") + "\n").join(""));
console.error(`world_zones: ${atlas}: ${collection.features.length} features, ${lines.length} zones, ` +
              `${skipped.length} skipped` + (skipped.length ? ` (${skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")})` : ""));
