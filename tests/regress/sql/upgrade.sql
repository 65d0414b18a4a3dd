-- Installing the skeleton version and updating it gives the current extension; a fresh
-- CREATE EXTENSION runs the same chain of scripts. The member list documents the SQL surface.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS zonegate CASCADE;
RESET client_min_messages;
CREATE EXTENSION zonegate VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'zonegate';
SELECT zonegate.version() ~ '^\d+\.\d+\.\d+$' AS library_loaded;
ALTER EXTENSION zonegate UPDATE TO '0.2';
SELECT extversion FROM pg_extension WHERE extname = 'zonegate';
ALTER EXTENSION zonegate UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'zonegate';
SELECT pg_describe_object(classid, objid, 0) AS member
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'zonegate') AND deptype = 'e'
ORDER BY 1;
-- The updated extension works.
INSERT INTO zonegate.zones (id, code, name, level) VALUES (1, 'A', 'A', 'province');
SELECT zonegate.zone_path(1);
-- And a fresh install lands on the same version.
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate;
SELECT extversion FROM pg_extension WHERE extname = 'zonegate';
SELECT count(*) AS empty_zones FROM zonegate.zones;

-- 0.4 -> 0.5 fixes an installed database in place: a 0.4 install had a non-STRICT boundary
-- check any role could call with a NULL (a backend crash), internal functions for PUBLIC and
-- change triggers a replica-role session skipped.
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate VERSION '0.4';
INSERT INTO zonegate.zones (id, code, name, level) VALUES (1, 'A', 'A', 'province');
CREATE FUNCTION pg_temp.surface() RETURNS TABLE (what text, value text) LANGUAGE sql AS $$
  SELECT 'check_boundary strict / public', p.proisstrict || ' / ' ||
         has_function_privilege('public', p.oid, 'EXECUTE')
  FROM pg_proc p WHERE p.oid = 'zonegate._check_boundary(bigint, jsonb)'::regprocedure
  UNION ALL
  SELECT 'internal functions for public', count(*)::text
  FROM pg_proc p WHERE p.pronamespace = 'zonegate'::regnamespace AND p.proname LIKE '\_%'
    AND has_function_privilege('public', p.oid, 'EXECUTE')
  UNION ALL
  SELECT 'trigger modes', string_agg(DISTINCT t.tgenabled::text, ',' ORDER BY t.tgenabled::text)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = 'zonegate'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'boundary constraint', count(*)::text FROM pg_constraint
  WHERE conname = 'zones_boundary_valid'
  UNION ALL
  SELECT 'authenticator may call user_context',
         has_function_privilege('zonegate_authenticator', 'zonegate.user_context(text)', 'EXECUTE')::text
  WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zonegate_authenticator')
$$;
SELECT * FROM pg_temp.surface();
ALTER EXTENSION zonegate UPDATE TO '0.5';
SELECT * FROM pg_temp.surface();
SELECT zonegate._check_boundary(1, NULL) IS NULL AS null_is_null;
UPDATE zonegate.zones SET boundary = '{"type": "Point", "coordinates": [0, 0]}' WHERE id = 1;
SELECT zonegate.zone_path(1) AS data_kept;
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate;

-- 0.5 -> 0.6 signs an installed database's notifications: the update makes a key and replaces
-- the functions that called pg_notify() themselves, so that one function, _notify(), sends
-- every notification. The result is the same as a fresh install: same functions, same bodies,
-- same privileges.
CREATE FUNCTION pg_temp.definition() RETURNS TABLE (what text, digest text) LANGUAGE sql AS $$
  SELECT 'functions', md5(string_agg(p.oid::regprocedure::text || p.prosrc || p.prosecdef ||
                                     coalesce(p.proacl::text, '') || coalesce(array_to_string(p.proconfig, ','), ''),
                                     '|' ORDER BY p.oid::regprocedure::text))
  FROM pg_proc p WHERE p.pronamespace = 'zonegate'::regnamespace
  UNION ALL
  SELECT 'tables', md5(string_agg(c.relname || coalesce(c.relacl::text, ''), '|' ORDER BY c.relname))
  FROM pg_class c WHERE c.relnamespace = 'zonegate'::regnamespace
  UNION ALL
  SELECT 'triggers', md5(string_agg(c.relname || t.tgname || t.tgenabled::text || t.tgfoid::regproc::text,
                                    '|' ORDER BY c.relname, t.tgname))
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = 'zonegate'::regnamespace AND NOT t.tgisinternal
$$;
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate VERSION '0.6';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.definition();
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate VERSION '0.5';
INSERT INTO zonegate.zones (id, code, name, level) VALUES (1, 'A', 'A', 'province');
SELECT p.proname AS calls_pg_notify FROM pg_proc p
WHERE p.pronamespace = 'zonegate'::regnamespace AND p.prosrc LIKE '%pg_notify(%' ORDER BY 1;
ALTER EXTENSION zonegate UPDATE TO '0.6';
SELECT p.proname AS calls_pg_notify FROM pg_proc p
WHERE p.pronamespace = 'zonegate'::regnamespace AND p.prosrc LIKE '%pg_notify(%' ORDER BY 1;
SELECT octet_length(key) AS key_bytes FROM zonegate._notify_key;
SELECT zonegate.zone_path(1) AS data_kept;
SELECT f.what, f.digest = u.digest AS same_as_fresh_install
FROM fresh f JOIN pg_temp.definition() u USING (what) ORDER BY 1;
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate;

-- 0.6 -> 0.7 adds the watching of application tables (watch_table, unwatch_table,
-- watched_tables, their internal functions and two event triggers): an installed database
-- gets what a fresh install has, keeps its data and its notification key, and watches a table
-- at once.
CREATE FUNCTION pg_temp.event_triggers() RETURNS TABLE (evtname name, evtevent name,
    evtenabled "char", evttags text[], evtfoid text)
  LANGUAGE sql AS $$
  SELECT evtname, evtevent, evtenabled, evttags, evtfoid::regproc::text FROM pg_event_trigger ORDER BY 1
$$;
TRUNCATE fresh;
INSERT INTO fresh SELECT * FROM pg_temp.definition();
CREATE TEMP TABLE fresh_events AS SELECT * FROM pg_temp.event_triggers();
SELECT * FROM fresh_events;
DROP EXTENSION zonegate;
SELECT count(*) AS event_triggers_left FROM pg_event_trigger;
CREATE EXTENSION zonegate VERSION '0.6';
INSERT INTO zonegate.zones (id, code, name, level) VALUES (1, 'A', 'A', 'province');
CREATE TEMP TABLE key_before AS SELECT key FROM zonegate._notify_key;
ALTER EXTENSION zonegate UPDATE TO '0.7';
SELECT extversion FROM pg_extension WHERE extname = 'zonegate';
SELECT zonegate.zone_path(1) AS data_kept,
       (SELECT key FROM zonegate._notify_key) = (SELECT key FROM key_before) AS key_kept;
SELECT f.what, f.digest = u.digest AS same_as_fresh_install
FROM fresh f JOIN pg_temp.definition() u USING (what) ORDER BY 1;
SELECT (SELECT string_agg(e::text, '|' ORDER BY e.evtname) FROM fresh_events e) =
       (SELECT string_agg(e::text, '|' ORDER BY e.evtname) FROM pg_temp.event_triggers() e)
       AS same_event_triggers;
CREATE TABLE public.watched_after_update (id int);
SELECT zonegate.watch_table('public.watched_after_update');
SELECT table_name, watched FROM zonegate.watched_tables();
DROP TABLE public.watched_after_update;
DROP EXTENSION zonegate;
CREATE EXTENSION zonegate;
