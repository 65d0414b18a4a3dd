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
