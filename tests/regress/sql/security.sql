-- The trust boundary (docs/SECURITY.md), tried as the roles a DBA would create: a reporting
-- login with plain SQL access and no grants, the proxy's login (a member of
-- zonegate_authenticator), the web role the proxy switches to, and a zone administrator. Each
-- login really logs in (\c): its session user is its own, as behind a real connection.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
\set VERBOSITY default
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (2, NULL, 'B', 'Region B', 'province'),
  (11, 1, 'A1', 'A one', 'regency'), (21, 2, 'B1', 'B one', 'regency');
INSERT INTO zonegate.roles VALUES ('admin', '{}', true), ('staff', '{read}', false);
INSERT INTO zonegate.users (user_id, role) VALUES ('adm', 'admin'), ('a_staff', 'staff'),
  ('b_staff', 'staff'), ('nothing', 'staff');
INSERT INTO zonegate.user_zones VALUES ('a_staff', 1), ('b_staff', 21);

CREATE SCHEMA sec;
CREATE TABLE sec.reports (zone_id bigint NOT NULL, body text NOT NULL);
INSERT INTO sec.reports SELECT z, 'r' FROM unnest(ARRAY[1, 2, 11, 21]) z;
ALTER TABLE sec.reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_zone ON sec.reports FOR SELECT USING (zonegate.can_access_current(zone_id));

CREATE ROLE zg_report LOGIN;                            -- plain SQL access, no grants
CREATE ROLE zg_proxy LOGIN IN ROLE zonegate_authenticator;  -- zonegate-proxy's login
CREATE ROLE zg_web NOLOGIN;                             -- what the proxy SET ROLEs to
GRANT zg_web TO zg_proxy;
CREATE ROLE zg_zone_admin LOGIN;                        -- maintains the zone tree
GRANT USAGE ON SCHEMA sec TO zg_report, zg_web;
GRANT SELECT ON sec.reports TO zg_report, zg_web;
GRANT SELECT, INSERT, UPDATE, DELETE ON zonegate.zones TO zg_zone_admin;

-- Reports SQLSTATE and message of a statement without stopping the script.
CREATE FUNCTION sec.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; r text;
BEGIN
  EXECUTE sql INTO r;
  RETURN coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  RETURN st || ': ' || msg;
END $$;
GRANT EXECUTE ON FUNCTION sec.try(text) TO PUBLIC;

-- 1. The reporting login: every way to set or forge an identity is refused, never honoured.
\c - zg_report
\set SHOW_CONTEXT never
SELECT session_user, zonegate.current_user_id() AS nobody, zonegate.current_zones() = '{}' AS no_zones,
       count(*) AS rows_without_identity FROM sec.reports;
SET zonegate.user_id = 'adm';
SELECT zonegate.current_user_id();
SELECT count(*) FROM sec.reports;
SELECT zonegate.current_zones();
RESET zonegate.user_id;
BEGIN;
SELECT set_config('zonegate.user_id', 'adm', true) IS NOT NULL AS set_local;
SELECT zonegate.can_access_current(1);
ROLLBACK;
SET request.jwt.claims = '{"sub": "adm", "role": "authenticated"}';
SELECT count(*) FROM sec.reports;
RESET request.jwt.claims;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "adm"}', true) IS NOT NULL AS set_local;
SELECT zonegate.current_user_id();
ROLLBACK;
-- Claims without a subject are an anonymous request: no identity, nothing to refuse.
SET request.jwt.claims = '{"role": "anon"}';
SELECT zonegate.current_user_id() IS NULL AS anonymous, count(*) AS anon_rows FROM sec.reports;
RESET request.jwt.claims;
-- Becoming a trusted role is not possible without membership; a function's SET clause is
-- still this session.
SET ROLE zonegate_authenticator;
SET ROLE zg_proxy;
SET SESSION AUTHORIZATION zg_proxy;
SELECT session_user AS still;
CREATE FUNCTION pg_temp.as_admin() RETURNS text LANGUAGE sql SET zonegate.user_id = 'adm'
  AS 'SELECT zonegate.current_user_id()';
SELECT pg_temp.as_admin();
-- Functions that answer for any user id, internal functions, the tables and the cache size.
SELECT f, sec.try('SELECT ' || f) AS result FROM unnest(ARRAY[
  'zonegate.user_context(''adm'')::text', 'zonegate.user_context_json(''adm'')::text',
  'zonegate.visible_zones(''adm'')::text', 'zonegate.can_access(''adm'', 1)::text',
  'zonegate.filter_zones(''adm'', NULL)::text', 'zonegate.flush_caches()::text',
  'zonegate._invalidate(0)::text', 'zonegate._check_boundary(1, ''{}'')::text',
  '(SELECT count(*) FROM zonegate.users)::text', '(SELECT count(*) FROM zonegate.zones)::text',
  'set_config(''zonegate.user_cache_size'', ''1GB'', false)']) f;
-- Every internal function of the schema, found in the catalog: none is for PUBLIC.
SELECT p.oid::regprocedure AS internal_function,
       has_function_privilege('zg_report', p.oid, 'EXECUTE') AS report_may_call,
       has_function_privilege('zg_proxy', p.oid, 'EXECUTE') AS proxy_may_call
FROM pg_proc p WHERE p.pronamespace = 'zonegate'::regnamespace AND p.proname LIKE '\_%'
ORDER BY 1::text;
-- What a plain role may learn: zone ids and their ancestry (reference data), nothing per user.
SELECT zonegate.zone_path(11) AS path, zonegate.zone_at(200, 100) AS outside,
       zonegate.version() IS NOT NULL AS version;

-- 2. The proxy's login: identity honoured, set for the transaction, also after SET ROLE.
\c - zg_proxy
\set SHOW_CONTEXT never
BEGIN;
SELECT set_config('zonegate.user_id', 'a_staff', true) IS NOT NULL AS set_local;
SET LOCAL ROLE zg_web;
SELECT current_user, zonegate.current_user_id(), array_agg(zone_id ORDER BY zone_id) AS a_staff_rows
FROM sec.reports;
COMMIT;
SELECT zonegate.current_user_id() IS NULL AS gone_after_commit;
SELECT zonegate.user_context('a_staff') ->> 'role' AS any_user_context,
       zonegate.visible_zones('b_staff') AS any_user_zones,
       (SELECT count(*) FROM zonegate.zones) AS zones_readable;
-- Transaction-local values hide session ones: a session SET left behind by an earlier client
-- of a transaction-mode pooler does not win over this transaction's claims, nor over an
-- anonymous request's.
SET zonegate.user_id = 'adm';
SELECT zonegate.current_user_id() AS session_value;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "b_staff"}', true) IS NOT NULL AS set_local;
SELECT zonegate.current_user_id() AS local_claims_win, array_agg(zone_id) AS rows FROM sec.reports;
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS set_local;
SELECT zonegate.current_user_id() IS NULL AS anonymous_hides_session, count(*) AS rows FROM sec.reports;
COMMIT;
BEGIN;
SELECT set_config('zonegate.user_id', '', true) IS NOT NULL AS set_local;
SELECT zonegate.current_user_id() IS NULL AS empty_local_hides_session;
COMMIT;
SELECT zonegate.current_user_id() AS session_value_again;
RESET zonegate.user_id;
-- Claims that name nobody unambiguously are refused, never read one way here and another in
-- a policy that parses them with jsonb.
SET request.jwt.claims = '{"sub": "a_staff", "sub": "adm"}';
SELECT zonegate.current_user_id();
SET request.jwt.claims = '{"sub": "adm\u0000x"}';
SELECT zonegate.current_user_id();
SET request.jwt.claims = 'adm';
SELECT zonegate.current_user_id();
RESET request.jwt.claims;
-- Only a superuser sizes the cache.
SET zonegate.user_cache_size = '1GB';

-- 3. Membership is checked where the value is read: revoked, the next statement refuses it;
-- granted again, it is honoured (in this backend here; across backends in
-- tests/isolation/specs/trust_revoked.spec).
\c - postgres
\set SHOW_CONTEXT never
REVOKE zonegate_authenticator FROM zg_proxy;
SET SESSION AUTHORIZATION zg_proxy;
SET zonegate.user_id = 'a_staff';
SELECT zonegate.current_user_id();
RESET SESSION AUTHORIZATION;
GRANT zonegate_authenticator TO zg_proxy;
SET SESSION AUTHORIZATION zg_proxy;
SELECT zonegate.current_user_id() AS honoured_again;
RESET zonegate.user_id;
RESET SESSION AUTHORIZATION;

-- 4. The zone administrator maintains zones (boundaries checked) without any internal function.
\c - zg_zone_admin
\set SHOW_CONTEXT never
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
  (12, 1, 'A2', 'A two', 'regency',
   '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}');
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
  (13, 1, 'A3', 'A three', 'regency', '{"type": "Polygon", "coordinates": [[[0, 0]]]}');
UPDATE zonegate.zones SET boundary = '{"type": "Point", "coordinates": [0, 0]}' WHERE id = 12;
SELECT zonegate.zone_at(0.5, 0.25) AS inserted_zone_found;
SET zonegate.user_id = 'adm';
SELECT zonegate.current_user_id();
RESET zonegate.user_id;

-- 5. Empty arrays are canonical: they equal '{}' and have no dimensions.
\c - postgres
\set SHOW_CONTEXT never
SET zonegate.user_id = 'nothing';
SELECT zonegate.current_zones() = '{}' AS current_empty,
       zonegate.visible_zones('nothing') = '{}' AS visible_empty,
       zonegate.filter_zones('nothing', '{1}') = '{}' AS filter_empty,
       zonegate.filter_zones('a_staff', '{2}') = '{}' AS filter_outside_scope,
       zonegate.zone_at('{}'::float8[], '{}'::float8[]) = '{}' AS zone_at_empty,
       array_dims(zonegate.visible_zones('ghost')) IS NULL AS no_dims;
RESET zonegate.user_id;

DROP SCHEMA sec CASCADE;
DELETE FROM zonegate.zones WHERE id = 12;
DROP OWNED BY zg_report, zg_proxy, zg_web, zg_zone_admin;
DROP ROLE zg_report, zg_proxy, zg_web, zg_zone_admin;
