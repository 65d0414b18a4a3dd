-- RLS benchmark fixture (tests/bench/extension_bench.py): four identical copies of an app table,
-- one per way of scoping it, so that no two policies combine (policies on one table OR together).
--   rows_plain  no RLS: (a) the visible zones pasted as a literal, and the plain count(*)
--   rows_zg     (b) zonegate:  USING (zonegate.can_access_current(zone_id))
--   rows_supa   (c) Supabase's best practice: USING (zone_id = ANY (ARRAY(SELECT f())))
--               with f() a SECURITY DEFINER SQL function (recursive CTE over zonegate's tables)
--   rows_naive  (d) naive per-row policy: recursive walk up from the row's zone to a grant
-- The tables belong to bench_owner; bench_reader (LOGIN, no superuser, no BYPASSRLS, a member of
-- zonegate_authenticator so that its zonegate.user_id is honoured) queries them.
--   psql -v rows=1000000 -f rls_setup.sql      (needs zonegate with zones and users loaded)
\set ON_ERROR_STOP on
\if :{?rows}
\else
  \set rows 1000000
\endif
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS bench CASCADE;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_owner') THEN
    CREATE ROLE bench_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_reader') THEN
    CREATE ROLE bench_reader LOGIN;
  END IF;
END
$$;
CREATE SCHEMA bench AUTHORIZATION bench_owner;
GRANT USAGE ON SCHEMA bench TO bench_reader;
-- bench_reader sets zonegate.user_id as the proxy's login does: it must be trusted with it.
GRANT zonegate_authenticator TO bench_reader;
-- (c)'s function runs as bench_owner; (d)'s policy runs as the querying role.
GRANT SELECT ON zonegate.zones, zonegate.users, zonegate.roles, zonegate.user_zones
  TO bench_owner, bench_reader;

-- zone_id uniform over all zone ids, deterministic (md5 of the row number).
CREATE TEMP TABLE bench_zone_numbers AS
SELECT (row_number() OVER (ORDER BY id))::bigint AS rn, id FROM zonegate.zones;
CREATE UNIQUE INDEX ON bench_zone_numbers (rn);
ANALYZE bench_zone_numbers;

-- No autovacuum: the benchmark vacuums and analyzes them itself, once, before measuring.
CREATE TABLE bench.rows_plain (id bigserial, zone_id bigint NOT NULL, payload text)
  WITH (autovacuum_enabled = false);
INSERT INTO bench.rows_plain (id, zone_id, payload)
SELECT g, z.id, 'payload ' || g
FROM generate_series(1, :rows) AS g
JOIN bench_zone_numbers z
  ON z.rn = 1 + ('x' || substr(md5('bench-row-' || g), 1, 8))::bit(32)::bigint
              % (SELECT count(*) FROM bench_zone_numbers)
ORDER BY g;
SELECT setval('bench.rows_plain_id_seq', :rows) AS last_id \gset

CREATE TABLE bench.rows_zg (LIKE bench.rows_plain INCLUDING DEFAULTS)
  WITH (autovacuum_enabled = false);
CREATE TABLE bench.rows_supa (LIKE bench.rows_plain INCLUDING DEFAULTS)
  WITH (autovacuum_enabled = false);
CREATE TABLE bench.rows_naive (LIKE bench.rows_plain INCLUDING DEFAULTS)
  WITH (autovacuum_enabled = false);
INSERT INTO bench.rows_zg SELECT * FROM bench.rows_plain ORDER BY id;
INSERT INTO bench.rows_supa SELECT * FROM bench.rows_plain ORDER BY id;
INSERT INTO bench.rows_naive SELECT * FROM bench.rows_plain ORDER BY id;

CREATE INDEX rows_plain_zone_id_idx ON bench.rows_plain (zone_id);
CREATE INDEX rows_zg_zone_id_idx ON bench.rows_zg (zone_id);
CREATE INDEX rows_supa_zone_id_idx ON bench.rows_supa (zone_id);
CREATE INDEX rows_naive_zone_id_idx ON bench.rows_naive (zone_id);

ALTER TABLE bench.rows_plain OWNER TO bench_owner;
ALTER TABLE bench.rows_zg OWNER TO bench_owner;
ALTER TABLE bench.rows_supa OWNER TO bench_owner;
ALTER TABLE bench.rows_naive OWNER TO bench_owner;
ALTER SEQUENCE bench.rows_plain_id_seq OWNER TO bench_owner;
GRANT SELECT ON bench.rows_plain, bench.rows_zg, bench.rows_supa, bench.rows_naive TO bench_reader;

-- (b) zonegate.
ALTER TABLE bench.rows_zg ENABLE ROW LEVEL SECURITY;
CREATE POLICY rows_zg_by_zone ON bench.rows_zg FOR SELECT
  USING (zonegate.can_access_current(zone_id));

-- (c) Supabase's recommendation: a SECURITY DEFINER function wrapped in a sub-select, so it runs
-- once per statement (an initPlan) instead of once per row.
CREATE FUNCTION bench.visible_zones_sql() RETURNS SETOF bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  WITH RECURSIVE me AS (
    SELECT u.user_id, r.sees_all
    FROM zonegate.users u JOIN zonegate.roles r ON r.name = u.role
    WHERE u.user_id = current_setting('zonegate.user_id', true) AND u.active
  ), visible(id) AS (
    SELECT g.zone_id FROM zonegate.user_zones g JOIN me ON g.user_id = me.user_id
    WHERE NOT me.sees_all
    UNION ALL
    SELECT z.id FROM zonegate.zones z, me WHERE me.sees_all AND z.parent_id IS NULL
    UNION
    SELECT z.id FROM zonegate.zones z JOIN visible v ON z.parent_id = v.id
  )
  SELECT id FROM visible
$$;
ALTER FUNCTION bench.visible_zones_sql() OWNER TO bench_owner;
ALTER TABLE bench.rows_supa ENABLE ROW LEVEL SECURITY;
CREATE POLICY rows_supa_by_zone ON bench.rows_supa FOR SELECT
  USING (zone_id = ANY (ARRAY(SELECT bench.visible_zones_sql())));

-- (d) naive: for every row, walk up from its zone through the parents and look for a grant.
ALTER TABLE bench.rows_naive ENABLE ROW LEVEL SECURITY;
CREATE POLICY rows_naive_by_zone ON bench.rows_naive FOR SELECT
  USING (
    EXISTS (SELECT 1 FROM zonegate.users u JOIN zonegate.roles r ON r.name = u.role
            WHERE u.user_id = current_setting('zonegate.user_id', true) AND u.active
              AND r.sees_all)
    OR EXISTS (
      WITH RECURSIVE up(id, parent_id) AS (
        SELECT z.id, z.parent_id FROM zonegate.zones z WHERE z.id = rows_naive.zone_id
        UNION ALL
        SELECT z.id, z.parent_id FROM zonegate.zones z JOIN up ON z.id = up.parent_id
      )
      SELECT 1
      FROM up
      JOIN zonegate.user_zones g ON g.zone_id = up.id
      JOIN zonegate.users u ON u.user_id = g.user_id AND u.active
      WHERE g.user_id = current_setting('zonegate.user_id', true)));

RESET client_min_messages;
