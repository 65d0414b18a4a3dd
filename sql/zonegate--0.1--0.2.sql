-- zonegate 0.1 -> 0.2: zone hierarchy, users, roles and grants, with the functions that answer
-- user context, visible zones and access checks from a per-backend cache. A fresh
-- CREATE EXTENSION zonegate runs zonegate--0.1.sql and then this script.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.2'" to load this file. \quit

-- Bumped by every change; its value is the cache_version reported in user contexts and sent
-- with each zonegate_changes notification.
CREATE SEQUENCE zonegate.change_seq;
GRANT SELECT ON SEQUENCE zonegate.change_seq TO PUBLIC;

CREATE FUNCTION zonegate._check_boundary(zone_id bigint, boundary jsonb) RETURNS boolean
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_check_boundary';
COMMENT ON FUNCTION zonegate._check_boundary(bigint, jsonb) IS
  'true for a valid GeoJSON Polygon or MultiPolygon, else an error naming the zone and the problem';

CREATE TABLE zonegate.zones (
  id bigint PRIMARY KEY,
  parent_id bigint CONSTRAINT zones_parent_exists REFERENCES zonegate.zones (id),
  code text NOT NULL CONSTRAINT zones_code_unique UNIQUE,
  name text NOT NULL,
  level text NOT NULL,
  boundary jsonb,
  attributes jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT zones_code_not_empty CHECK (code <> ''),
  CONSTRAINT zones_level_not_empty CHECK (level <> ''),
  CONSTRAINT zones_attributes_object CHECK (jsonb_typeof(attributes) = 'object'),
  CONSTRAINT zones_boundary_valid CHECK (boundary IS NULL OR zonegate._check_boundary(id, boundary))
);
CREATE INDEX zones_parent_id_idx ON zonegate.zones (parent_id);
COMMENT ON TABLE zonegate.zones IS
  'the zone forest (any depth); a grant on a zone covers its whole subtree';

CREATE TABLE zonegate.roles (
  name text PRIMARY KEY,
  permissions text[] NOT NULL DEFAULT '{}',
  sees_all boolean NOT NULL DEFAULT false,
  CONSTRAINT roles_name_not_empty CHECK (name <> '')
);
COMMENT ON TABLE zonegate.roles IS 'roles: their permissions, and whether they see every zone';

CREATE TABLE zonegate.users (
  user_id text PRIMARY KEY,
  email text,
  display_name text,
  role text NOT NULL CONSTRAINT users_role_exists REFERENCES zonegate.roles (name) ON UPDATE CASCADE,
  active boolean NOT NULL DEFAULT true,
  attributes jsonb NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_user_id_not_empty CHECK (user_id <> ''),
  CONSTRAINT users_attributes_object CHECK (jsonb_typeof(attributes) = 'object')
);
CREATE INDEX users_role_idx ON zonegate.users (role);

CREATE TABLE zonegate.user_zones (
  user_id text NOT NULL CONSTRAINT user_zones_user_exists
    REFERENCES zonegate.users (user_id) ON DELETE CASCADE ON UPDATE CASCADE,
  zone_id bigint NOT NULL CONSTRAINT user_zones_zone_exists
    REFERENCES zonegate.zones (id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, zone_id)
);
CREATE INDEX user_zones_zone_id_idx ON zonegate.user_zones (zone_id);
COMMENT ON TABLE zonegate.user_zones IS 'grants: a user sees each granted zone and all below it';

-- Extension tables are dumped by pg_dump only when marked as configuration.
SELECT pg_catalog.pg_extension_config_dump('zonegate.zones', '');
SELECT pg_catalog.pg_extension_config_dump('zonegate.roles', '');
SELECT pg_catalog.pg_extension_config_dump('zonegate.users', '');
SELECT pg_catalog.pg_extension_config_dump('zonegate.user_zones', '');
SELECT pg_catalog.pg_extension_config_dump('zonegate.change_seq', '');

-- Cycles: walk up from every inserted or re-parented zone; meeting itself is a cycle.
CREATE FUNCTION zonegate._check_zone_cycles() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cycle bigint[];
BEGIN
  WITH RECURSIVE walk(start_id, cur, path) AS (
    SELECT n.id, n.parent_id, ARRAY[n.id] FROM new_rows n WHERE n.parent_id IS NOT NULL
    UNION ALL
    SELECT w.start_id, z.parent_id, w.path || w.cur
    FROM walk w JOIN zonegate.zones z ON z.id = w.cur
    WHERE w.cur <> w.start_id AND z.parent_id IS NOT NULL AND cardinality(w.path) < 100000
  )
  SELECT w.path || w.cur INTO cycle FROM walk w WHERE w.cur = w.start_id LIMIT 1;
  IF cycle IS NOT NULL THEN
    RAISE EXCEPTION 'zone % cannot be its own ancestor: parent_id cycle %',
      cycle[1], array_to_string(cycle, ' -> ')
      USING ERRCODE = 'check_violation',
            HINT = 'a zone''s parent_id must point outside the zone''s own subtree';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER zones_check_cycles_insert AFTER INSERT ON zonegate.zones
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION zonegate._check_zone_cycles();
CREATE TRIGGER zones_check_cycles_update AFTER UPDATE ON zonegate.zones
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION zonegate._check_zone_cycles();

-- Cache coherence (docs/ARCHITECTURE.md): every statement that changes a zonegate table queues a
-- relcache invalidation (delivered at commit, discarded on rollback) and a notification for
-- proxies on channel zonegate_changes: {"table","op","version","users"}, where "users" is the
-- list of affected user ids or "*" when everybody may be affected (zones, roles, big changes).
CREATE FUNCTION zonegate._invalidate(relid oid) RETURNS void
  LANGUAGE c VOLATILE STRICT
  AS 'MODULE_PATHNAME', 'zonegate_invalidate';
REVOKE ALL ON FUNCTION zonegate._invalidate(oid) FROM PUBLIC;

CREATE FUNCTION zonegate._table_changed() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  affected jsonb;
  n bigint;
  version bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT count(*) INTO n FROM new_rows;
  ELSIF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
    SELECT count(*) INTO n FROM old_rows;
  ELSE
    n := -1;  -- TRUNCATE: no transition table, always a change
  END IF;
  IF n = 0 THEN
    RETURN NULL;  -- the statement changed nothing
  END IF;
  PERFORM zonegate._invalidate(TG_RELID);
  version := nextval('zonegate.change_seq');
  IF TG_TABLE_NAME IN ('users', 'user_zones') AND TG_OP <> 'TRUNCATE' AND n <= 200 THEN
    IF TG_OP = 'INSERT' THEN
      SELECT jsonb_agg(DISTINCT user_id ORDER BY user_id) INTO affected FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
      SELECT jsonb_agg(DISTINCT user_id ORDER BY user_id) INTO affected FROM old_rows;
    ELSE
      SELECT jsonb_agg(DISTINCT u ORDER BY u) INTO affected
      FROM (SELECT user_id AS u FROM old_rows UNION SELECT user_id FROM new_rows) s;
    END IF;
  END IF;
  PERFORM pg_notify('zonegate_changes', jsonb_build_object(
    'table', TG_TABLE_NAME, 'op', TG_OP, 'version', version,
    'users', coalesce(affected, '"*"'::jsonb))::text);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION zonegate._table_changed() FROM PUBLIC;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['zones', 'roles', 'users', 'user_zones'] LOOP
    EXECUTE format('CREATE TRIGGER zz_%1$s_changed_insert AFTER INSERT ON zonegate.%1$I
                      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                      EXECUTE FUNCTION zonegate._table_changed()', t);
    EXECUTE format('CREATE TRIGGER zz_%1$s_changed_update AFTER UPDATE ON zonegate.%1$I
                      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                      EXECUTE FUNCTION zonegate._table_changed()', t);
    EXECUTE format('CREATE TRIGGER zz_%1$s_changed_delete AFTER DELETE ON zonegate.%1$I
                      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                      EXECUTE FUNCTION zonegate._table_changed()', t);
    EXECUTE format('CREATE TRIGGER zz_%1$s_changed_truncate AFTER TRUNCATE ON zonegate.%1$I
                      FOR EACH STATEMENT EXECUTE FUNCTION zonegate._table_changed()', t);
  END LOOP;
END
$$;

-- The API (docs/API.md, "Functions"). These C functions resolve no names at run time (their internal
-- queries are fully schema-qualified, operators included), so they do not pin search_path: a
-- SET clause would make every per-row RLS call pay for a GUC save and restore.
CREATE FUNCTION zonegate.user_context(user_id text) RETURNS jsonb
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_user_context';
COMMENT ON FUNCTION zonegate.user_context(text) IS
  'user, role, permissions, sees_all, grants, top-level regions, visible zone count and cache version; NULL for unknown or inactive users';

CREATE FUNCTION zonegate.visible_zones(user_id text) RETURNS bigint[]
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_visible_zones';
COMMENT ON FUNCTION zonegate.visible_zones(text) IS
  'every zone id the user may see, ascending; empty for unknown or inactive users';

CREATE FUNCTION zonegate.can_access(user_id text, zone_id bigint) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_can_access';
COMMENT ON FUNCTION zonegate.can_access(text, bigint) IS
  'whether the user may see the zone (false for unknown users, inactive users and unknown zones)';

CREATE FUNCTION zonegate.filter_zones(user_id text, requested bigint[]) RETURNS bigint[]
  LANGUAGE c STABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_filter_zones';
COMMENT ON FUNCTION zonegate.filter_zones(text, bigint[]) IS
  'the effective zone filter: each requested zone expanded to its subtree and intersected with what the user sees; NULL or empty request = everything visible';

CREATE FUNCTION zonegate.zone_path(zone_id bigint) RETURNS bigint[]
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_zone_path';
COMMENT ON FUNCTION zonegate.zone_path(bigint) IS 'zone ids from the root down to the zone; NULL for an unknown zone';

CREATE FUNCTION zonegate.current_user_id() RETURNS text
  LANGUAGE c STABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_current_user_id';
COMMENT ON FUNCTION zonegate.current_user_id() IS
  'zonegate.user_id, else the sub claim of request.jwt.claims (PostgREST/Supabase), else NULL';

CREATE FUNCTION zonegate.current_zones() RETURNS bigint[]
  LANGUAGE c STABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_current_zones';
COMMENT ON FUNCTION zonegate.current_zones() IS 'visible_zones(current_user_id()); empty without a user';

CREATE FUNCTION zonegate._can_access_current_support(internal) RETURNS internal
  LANGUAGE c STRICT
  AS 'MODULE_PATHNAME', 'zonegate_can_access_current_support';

CREATE FUNCTION zonegate.can_access_current(zone_id bigint) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  SUPPORT zonegate._can_access_current_support
  AS 'MODULE_PATHNAME', 'zonegate_can_access_current';
COMMENT ON FUNCTION zonegate.can_access_current(bigint) IS
  'can_access(current_user_id(), zone_id), for RLS policies; uses an index on a bigint zone_id column';

CREATE FUNCTION zonegate.cache_stats() RETURNS TABLE (
    cache text, hits bigint, misses bigint, invalidations bigint, rebuilds bigint,
    entries bigint, bytes bigint, last_rebuild_ms float8, last_rebuild_at timestamptz)
  LANGUAGE c VOLATILE
  AS 'MODULE_PATHNAME', 'zonegate_cache_stats';
COMMENT ON FUNCTION zonegate.cache_stats() IS 'this backend''s cache: one row for the zone tree, one for user entries';

CREATE FUNCTION zonegate.cache_reset() RETURNS void
  LANGUAGE c VOLATILE
  AS 'MODULE_PATHNAME', 'zonegate_cache_reset';
COMMENT ON FUNCTION zonegate.cache_reset() IS 'drops this backend''s cache (diagnostics; never needed for correctness)';

-- Functions that take any user id reveal that user's zones: not for PUBLIC by default.
REVOKE ALL ON FUNCTION zonegate.user_context(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate.visible_zones(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate.can_access(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate.filter_zones(text, bigint[]) FROM PUBLIC;
GRANT USAGE ON SCHEMA zonegate TO PUBLIC;
