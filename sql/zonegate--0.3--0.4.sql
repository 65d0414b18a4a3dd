-- zonegate 0.3 -> 0.4: point-in-zone resolution. zone_at(lon, lat) answers the deepest zone
-- whose boundary covers a point from a per-backend spatial index, built on first use and
-- invalidated with the zone tree; and two loaders for GeoJSON FeatureCollections.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.4'" to load this file. \quit

CREATE FUNCTION zonegate.zone_at(lon float8, lat float8) RETURNS bigint
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_zone_at';
COMMENT ON FUNCTION zonegate.zone_at(float8, float8) IS
  'the deepest zone whose boundary covers the point (lon/lat, boundary points inside; ties: smallest id); NULL outside every zone';

CREATE FUNCTION zonegate.zone_at(lons float8[], lats float8[]) RETURNS bigint[]
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_zone_at_many';
COMMENT ON FUNCTION zonegate.zone_at(float8[], float8[]) IS
  'zone_at for each (lons[i], lats[i]); NULL elements where no zone covers the point or a coordinate is NULL';

-- Creates zones from a GeoJSON FeatureCollection: one zone per feature, its boundary the
-- feature's geometry. The id comes from the feature's "id" (or properties.<id_key>), the code
-- from properties.<code_key> (default: the id), the name from properties.<name_key>.
CREATE FUNCTION zonegate.import_geojson(
    collection jsonb, level text, parent_id bigint DEFAULT NULL,
    id_key text DEFAULT 'id', code_key text DEFAULT 'code', name_key text DEFAULT 'name')
  RETURNS integer
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer;
  bad record;
BEGIN
  IF jsonb_typeof(collection) <> 'object' OR collection ->> 'type' IS DISTINCT FROM 'FeatureCollection'
     OR jsonb_typeof(collection -> 'features') <> 'array' THEN
    RAISE EXCEPTION 'import_geojson expects a GeoJSON FeatureCollection with a "features" array'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT f.ord - 1 AS idx, f.feature INTO bad
  FROM jsonb_array_elements(collection -> 'features') WITH ORDINALITY AS f(feature, ord)
  WHERE jsonb_typeof(f.feature -> 'geometry') IS DISTINCT FROM 'object'
     OR coalesce(f.feature ->> 'id', f.feature -> 'properties' ->> id_key) IS NULL
     OR coalesce(f.feature ->> 'id', f.feature -> 'properties' ->> id_key) !~ '^-?[0-9]{1,18}$'
     OR f.feature -> 'properties' ->> name_key IS NULL
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'feature % cannot be imported', bad.idx
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'every feature needs a geometry, an integer id ("id" or properties.' || id_key
                     || ') and properties.' || name_key,
            HINT = left(bad.feature::text, 200);
  END IF;
  INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary)
  SELECT coalesce(f ->> 'id', f -> 'properties' ->> id_key)::bigint, import_geojson.parent_id,
         coalesce(f -> 'properties' ->> code_key, coalesce(f ->> 'id', f -> 'properties' ->> id_key)),
         f -> 'properties' ->> name_key, import_geojson.level, f -> 'geometry'
  FROM jsonb_array_elements(collection -> 'features') AS f;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION zonegate.import_geojson(jsonb, text, bigint, text, text, text) IS
  'creates one zone per feature of a GeoJSON FeatureCollection, with its geometry as boundary';

-- Sets boundaries of existing zones from a FeatureCollection, matching properties.<match_key>
-- (default: code) to zones.code. Features that match no zone are reported, not silently skipped.
CREATE FUNCTION zonegate.attach_boundaries(collection jsonb, match_key text DEFAULT 'code')
  RETURNS integer
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n integer;
  unmatched text[];
BEGIN
  IF jsonb_typeof(collection) <> 'object' OR collection ->> 'type' IS DISTINCT FROM 'FeatureCollection'
     OR jsonb_typeof(collection -> 'features') <> 'array' THEN
    RAISE EXCEPTION 'attach_boundaries expects a GeoJSON FeatureCollection with a "features" array'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT array_agg(coalesce(f -> 'properties' ->> match_key, '(none)')) INTO unmatched
  FROM jsonb_array_elements(collection -> 'features') AS f
  WHERE NOT EXISTS (SELECT 1 FROM zonegate.zones z WHERE z.code = f -> 'properties' ->> match_key);
  IF unmatched IS NOT NULL THEN
    RAISE EXCEPTION '% feature(s) match no zone by properties.%', cardinality(unmatched), match_key
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'unmatched: ' || array_to_string(unmatched[1:20], ', ');
  END IF;
  UPDATE zonegate.zones z SET boundary = f -> 'geometry'
  FROM jsonb_array_elements(collection -> 'features') AS f
  WHERE z.code = f -> 'properties' ->> match_key;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION zonegate.attach_boundaries(jsonb, text) IS
  'sets zones.boundary from a GeoJSON FeatureCollection, matching properties.<match_key> to zones.code';
