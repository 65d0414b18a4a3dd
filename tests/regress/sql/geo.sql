-- Point-in-zone: zone_at on nested and neighbouring polygons, boundaries and holes, the batch
-- form, invalidation when a boundary changes, and the GeoJSON loaders with their errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;

-- Province P: [0,10]x[0,10] with a hole [8,9]x[8,9]; district D inside it: [1,4]x[1,4];
-- neighbour province Q shares P's edge x = 10: [10,20]x[0,10]; islands I (MultiPolygon).
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
  (1, NULL, 'P', 'Province P', 'province',
   '{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[8,8],[9,8],[9,9],[8,9],[8,8]]]}'),
  (2, NULL, 'Q', 'Province Q', 'province',
   '{"type":"Polygon","coordinates":[[[10,0],[20,0],[20,10],[10,10],[10,0]]]}'),
  (11, 1, 'P.D', 'District D', 'district',
   '{"type":"Polygon","coordinates":[[[1,1],[4,1],[4,4],[1,4],[1,1]]]}'),
  (12, 1, 'P.E', 'District E (no boundary)', 'district', NULL),
  (3, NULL, 'I', 'Islands', 'province',
   '{"type":"MultiPolygon","coordinates":[[[[30,0],[31,0],[31,1],[30,1],[30,0]]],[[[40,0],[41,0],[41,1],[40,1],[40,0]]]]}');

SELECT label, lon, lat, zonegate.zone_at(lon, lat) AS zone FROM (VALUES
  ('inside P only', 6.0, 6.0),
  ('inside D (deeper wins)', 2.0, 2.0),
  ('on D''s edge', 4.0, 2.0),
  ('on D''s corner', 1.0, 1.0),
  ('in P''s hole', 8.5, 8.5),
  ('on the hole''s edge', 8.0, 8.5),
  ('on the shared edge P|Q (tie: smallest id)', 10.0, 5.0),
  ('inside Q', 15.0, 5.0),
  ('second island', 40.5, 0.5),
  ('between islands', 35.0, 0.5),
  ('outside everything', -5.0, -5.0),
  ('far away', 179.9, 89.9)) AS t(label, lon, lat);

-- Out-of-range coordinates are in no zone; NULL gives NULL; NaN and infinity are errors.
SELECT zonegate.zone_at(200, 5) IS NULL AS out_of_range, zonegate.zone_at(NULL, 5) IS NULL AS null_lon;
SELECT zonegate.zone_at('NaN', 5);
SELECT zonegate.zone_at(5, 'Infinity');

-- The batch form.
SELECT zonegate.zone_at(ARRAY[6, 2, 8.5, 40.5, NULL]::float8[], ARRAY[6, 2, 8.5, 0.5, 1]::float8[]);
SELECT zonegate.zone_at(ARRAY[1, 2]::float8[], ARRAY[1]::float8[]);
SELECT zonegate.zone_at('{}'::float8[], '{}'::float8[]);
SELECT zonegate.zone_at(ARRAY[[1, 2], [3, 4]]::float8[], ARRAY[1, 2, 3, 4]::float8[]);
-- Not JSON at all never reaches zonegate: the jsonb column refuses it with Postgres's own error.
UPDATE zonegate.zones SET boundary = '{"type": "Polygon", ' WHERE id = 1;

-- A changed boundary is seen by the next statement; removing one too.
UPDATE zonegate.zones SET boundary =
  '{"type":"Polygon","coordinates":[[[5,5],[7,5],[7,7],[5,7],[5,5]]]}' WHERE id = 12;
SELECT zonegate.zone_at(6, 6) AS now_in_e;
BEGIN;
UPDATE zonegate.zones SET boundary = NULL WHERE id = 12;
SELECT zonegate.zone_at(6, 6) AS in_txn;
ROLLBACK;
SELECT zonegate.zone_at(6, 6) AS after_rollback;

-- The spatial cache reports itself.
SELECT cache, entries, bytes > 0 AS has_bytes, rebuilds > 0 AS rebuilt
FROM zonegate.cache_stats() WHERE cache = 'spatial';

-- Loading a FeatureCollection: new zones, then boundaries for existing ones.
SELECT zonegate.import_geojson('{"type":"FeatureCollection","features":[
  {"type":"Feature","id":100,"properties":{"name":"A","code":"A"},
   "geometry":{"type":"Polygon","coordinates":[[[50,0],[51,0],[51,1],[50,1],[50,0]]]}},
  {"type":"Feature","properties":{"id":"101","name":"B"},
   "geometry":{"type":"MultiPolygon","coordinates":[[[[52,0],[53,0],[53,1],[52,0]]]]}}]}', 'country');
SELECT id, code, name, level, boundary ->> 'type' AS type FROM zonegate.zones WHERE id >= 100 ORDER BY id;
SELECT zonegate.zone_at(50.5, 0.5) AS a, zonegate.zone_at(52.9, 0.5) AS b;
SELECT zonegate.attach_boundaries('{"type":"FeatureCollection","features":[
  {"type":"Feature","properties":{"code":"P.E"},
   "geometry":{"type":"Polygon","coordinates":[[[2,6],[3,6],[3,7],[2,7],[2,6]]]}}]}');
SELECT zonegate.zone_at(2.5, 6.5) AS attached;
-- Their errors: not a collection, a feature without id or geometry, an invalid geometry (the
-- CHECK names the zone), boundaries for codes that match no zone.
SELECT zonegate.import_geojson('{"type":"Feature"}', 'x');
SELECT zonegate.import_geojson('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"N"},"geometry":{"type":"Point","coordinates":[1,2]}}]}', 'x');
SELECT zonegate.import_geojson('{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"properties":{"name":"N"}}]}', 'x');
SELECT zonegate.import_geojson('{"type":"FeatureCollection","features":[{"type":"Feature","id":7,"properties":{"name":"N"},"geometry":{"type":"Point","coordinates":[1,2]}}]}', 'x');
SELECT zonegate.attach_boundaries('{"type":"FeatureCollection","features":[{"properties":{"code":"nope"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}');
SELECT count(*) AS zones_after_errors FROM zonegate.zones;
