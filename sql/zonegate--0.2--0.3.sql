-- zonegate 0.2 -> 0.3: change notifications carry "at", the time (epoch milliseconds) the
-- changing statement ended, so listeners can measure their invalidation lag.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.3'" to load this file. \quit

CREATE OR REPLACE FUNCTION zonegate._table_changed() RETURNS trigger
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
    'users', coalesce(affected, '"*"'::jsonb),
    'at', (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::text);
  RETURN NULL;
END
$$;

-- Per-function call counts and time, cluster-wide, from Postgres' own statistics. C functions
-- are only counted with track_functions = 'all' (postgresql.conf, or SET by a superuser).
CREATE VIEW zonegate.function_stats AS
SELECT p.proname::text AS function,
       pg_catalog.pg_get_function_identity_arguments(s.funcid) AS arguments,
       s.calls,
       s.total_time AS total_ms,
       s.self_time AS self_ms,
       CASE WHEN s.calls > 0 THEN s.total_time / s.calls END AS mean_ms
FROM pg_catalog.pg_stat_user_functions s
JOIN pg_catalog.pg_proc p ON p.oid = s.funcid
WHERE s.schemaname = 'zonegate';
COMMENT ON VIEW zonegate.function_stats IS
  'calls and time per zonegate function (needs track_functions = all); see also zonegate.cache_stats()';
GRANT SELECT ON zonegate.function_stats TO PUBLIC;

-- The user context as json text: what user_context() returns, in a fixed key order (user_id
-- first), served from the cache as stored text, so a client reading text pays no jsonb output.
CREATE FUNCTION zonegate.user_context_json(user_id text) RETURNS json
  LANGUAGE c STABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_user_context_json';
COMMENT ON FUNCTION zonegate.user_context_json(text) IS
  'user_context() as json text in a fixed key order; NULL for unknown or inactive users';
REVOKE ALL ON FUNCTION zonegate.user_context_json(text) FROM PUBLIC;
