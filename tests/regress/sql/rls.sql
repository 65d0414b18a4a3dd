-- Row-level security with zonegate: an app table whose rows belong to zones, one policy using
-- can_access_current(zone_id), and users switched per transaction as the proxy does it. The
-- session user is the (trusted) superuser, switched to a web role as the proxy's login would;
-- what an untrusted login gets is in security.sql.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (2, NULL, 'B', 'Region B', 'province'),
  (11, 1, 'A1', 'A one', 'regency'), (12, 1, 'A2', 'A two', 'regency'), (21, 2, 'B1', 'B one', 'regency'),
  (111, 11, 'A1a', 'A one a', 'district'), (121, 12, 'A2a', 'A two a', 'district'),
  (211, 21, 'B1a', 'B one a', 'district');
INSERT INTO zonegate.roles VALUES ('admin', '{}', true), ('staff', '{}', false);
INSERT INTO zonegate.users (user_id, role) VALUES ('adm', 'admin'), ('a_staff', 'staff'),
  ('b_staff', 'staff'), ('two', 'staff'), ('nothing', 'staff');
INSERT INTO zonegate.user_zones VALUES ('a_staff', 1), ('b_staff', 21), ('two', 111), ('two', 211);

-- The example app table (docs/API.md, "Row-level security").
CREATE SCHEMA app;
CREATE TABLE app.reports (
  id bigserial PRIMARY KEY,
  zone_id bigint NOT NULL,
  body text NOT NULL
);
CREATE INDEX reports_zone_id_idx ON app.reports (zone_id);
INSERT INTO app.reports (zone_id, body)
SELECT z, 'report ' || g FROM unnest(ARRAY[1, 2, 11, 12, 21, 111, 121, 211]) z, generate_series(1, 50) g;
ANALYZE app.reports;
ALTER TABLE app.reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY reports_by_zone ON app.reports FOR SELECT
  USING (zonegate.can_access_current(zone_id));
CREATE ROLE zonegate_regress_web;
GRANT USAGE ON SCHEMA app TO zonegate_regress_web;
GRANT SELECT ON app.reports TO zonegate_regress_web;

SET ROLE zonegate_regress_web;
-- Each user sees exactly the rows of their zones; an unknown or a zone-less user: none.
CREATE FUNCTION pg_temp.seen(u text, OUT rows bigint, OUT zones bigint[]) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('zonegate.user_id', u, false);
  SELECT count(*), array_agg(DISTINCT zone_id ORDER BY zone_id) INTO rows, zones FROM app.reports;
END $$;
SELECT u AS user, s.* FROM unnest(ARRAY['adm', 'a_staff', 'b_staff', 'two', 'nothing', 'ghost']) u,
     LATERAL pg_temp.seen(u) s;
RESET zonegate.user_id;
SELECT count(*) AS no_user FROM app.reports;

-- Per transaction, as zonegate-proxy sets it.
BEGIN;
SELECT set_config('zonegate.user_id', 'b_staff', true) IS NOT NULL AS set;
SELECT zone_id, count(*) FROM app.reports GROUP BY zone_id ORDER BY zone_id;
COMMIT;
SELECT count(*) AS after_commit FROM app.reports;

-- PostgREST/Supabase style: the user comes from request.jwt.claims.
SET request.jwt.claims = '{"sub": "two", "role": "authenticated"}';
SELECT array_agg(DISTINCT zone_id ORDER BY zone_id) AS from_claims FROM app.reports;
RESET request.jwt.claims;

-- A grant changed by an administrator shows in the very next query.
RESET ROLE;
INSERT INTO zonegate.user_zones VALUES ('nothing', 12);
SET ROLE zonegate_regress_web;
SET zonegate.user_id = 'nothing';
SELECT array_agg(DISTINCT zone_id ORDER BY zone_id) AS granted_now FROM app.reports;

-- Plans: the support function offers the index condition on the current user's zones for
-- every user, a sees_all one included (docs/API.md: a cached plan is reused for whoever is
-- current later). With sequential scans off, both plans use it; with them on, the planner may
-- still prefer a scan with the per-row check on this small table, by cost alone.
SET enable_seqscan = off;
SET zonegate.user_id = 'two';
EXPLAIN (COSTS OFF) SELECT count(*) FROM app.reports;
SELECT count(*) AS two_rows FROM app.reports;
SET zonegate.user_id = 'adm';
EXPLAIN (COSTS OFF) SELECT count(*) FROM app.reports;
SELECT count(*) AS adm_rows FROM app.reports;
RESET enable_seqscan;
EXPLAIN (COSTS OFF) SELECT count(*) FROM app.reports;
SET enable_seqscan = off;
-- The same prepared statement stays correct when the user changes under a cached plan.
SET plan_cache_mode = force_generic_plan;
PREPARE q AS SELECT count(*) FROM app.reports;
SET zonegate.user_id = 'two';
EXECUTE q;
SET zonegate.user_id = 'adm';
EXECUTE q;
SET zonegate.user_id = 'a_staff';
EXECUTE q;
DEALLOCATE q;
RESET plan_cache_mode;
RESET enable_seqscan;
RESET zonegate.user_id;
RESET ROLE;

DROP SCHEMA app CASCADE;
DROP OWNED BY zonegate_regress_web;
DROP ROLE zonegate_regress_web;
