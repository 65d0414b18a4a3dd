-- Data and functions the API suites call through zonegate-proxy.
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (2, NULL, 'B', 'Region B', 'province'),
  (11, 1, 'A1', 'A one', 'regency'), (12, 1, 'A2', 'A two', 'regency'), (21, 2, 'B1', 'B one', 'regency'),
  (111, 11, 'A1a', 'A one a', 'district'), (211, 21, 'B1a', 'B one a', 'district');
UPDATE zonegate.zones SET boundary = CASE id
  WHEN 1 THEN '{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]]]}'
  WHEN 11 THEN '{"type":"Polygon","coordinates":[[[1,1],[4,1],[4,4],[1,4],[1,1]]]}'
  WHEN 111 THEN '{"type":"Polygon","coordinates":[[[2,2],[3,2],[3,3],[2,3],[2,2]]]}'
  WHEN 2 THEN '{"type":"Polygon","coordinates":[[[20,0],[30,0],[30,10],[20,10],[20,0]]]}'
  END::jsonb WHERE id IN (1, 11, 111, 2);
INSERT INTO zonegate.roles VALUES ('admin', '{read,write}', true), ('staff', '{read}', false);
INSERT INTO zonegate.users (user_id, email, role, active) VALUES
  ('alice', 'alice@example.org', 'staff', true), ('bob', 'bob@example.org', 'staff', true),
  ('root', 'root@example.org', 'admin', true), ('gone', NULL, 'staff', false);
INSERT INTO zonegate.user_zones VALUES ('alice', 11), ('alice', 21), ('bob', 2), ('gone', 1);

DROP SCHEMA IF EXISTS api CASCADE;
CREATE SCHEMA api;
CREATE TABLE api.counter (n int NOT NULL);
CREATE TABLE api.uniq (k text PRIMARY KEY);
CREATE TYPE api.thing AS (id int, label text);
CREATE FUNCTION api.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION api.echo(msg text, times int DEFAULT 1) RETURNS text LANGUAGE sql STABLE
  AS 'SELECT repeat(msg, times)';
CREATE FUNCTION api.whoami() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('user', zonegate.current_user_id(),
                            'claims', current_setting('request.jwt.claims', true)::jsonb)
$$;
CREATE FUNCTION api.my_zones() RETURNS SETOF bigint LANGUAGE sql STABLE
  AS 'SELECT unnest(zonegate.current_zones())';
CREATE FUNCTION api.report(zone bigint) RETURNS TABLE (zone_id bigint, visible boolean)
  LANGUAGE sql STABLE AS 'SELECT zone, zonegate.can_access_current(zone)';
CREATE FUNCTION api.one_thing() RETURNS api.thing LANGUAGE sql STABLE AS $$ SELECT (7, 'seven')::api.thing $$;
CREATE FUNCTION api.bump(n int) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  INSERT INTO api.counter VALUES (n); SELECT count(*) FROM api.counter
$$;
CREATE FUNCTION api.nothing() RETURNS void LANGUAGE sql VOLATILE AS 'SELECT';
CREATE FUNCTION api.fail(msg text) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN RAISE EXCEPTION '%', msg USING DETAIL = 'raised on purpose', HINT = 'do not call fail'; END $$;
CREATE FUNCTION api.dup(k text) RETURNS int LANGUAGE sql VOLATILE AS $$
  INSERT INTO api.uniq VALUES (k); SELECT 1
$$;
CREATE FUNCTION api.slow(seconds float8) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT pg_sleep(seconds)::text || 'done'
$$;
CREATE FUNCTION api.over(a int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'one' $$;
CREATE FUNCTION api.over(a int, b int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'two' $$;
CREATE FUNCTION api.arr_sum(xs int[]) RETURNS int LANGUAGE sql IMMUTABLE
  AS 'SELECT coalesce(sum(x), 0)::int FROM unnest(xs) x';
CREATE FUNCTION api.doc(body jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT body -> 'a' $$;
CREATE FUNCTION api.hidden() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 42';
CREATE FUNCTION api.slow_stable(seconds float8, tag text DEFAULT '') RETURNS text
  LANGUAGE sql STABLE AS $$ SELECT pg_sleep(seconds)::text || 'slept ' || tag $$;
CREATE FUNCTION api.grants_of_caller() RETURNS bigint[] LANGUAGE sql STABLE
  AS 'SELECT zonegate.current_zones()';
