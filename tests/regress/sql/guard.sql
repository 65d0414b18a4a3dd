-- The C/C++ boundary guards: every kind of failure raised from C++ becomes a clean SQL ERROR
-- with the right SQLSTATE, the backend survives, and C++ frames are unwound.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never

SELECT zonegate.version() ~ '^[0-9]+\.[0-9]+\.[0-9]+$' AS version_ok;
SELECT zonegate._selftest_guard('ok');

-- Report SQLSTATE, message, detail and hint of an error without stopping the script.
CREATE FUNCTION pg_temp.try(kind text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hin text;
BEGIN
  PERFORM zonegate._selftest_guard(kind);
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                          hin = PG_EXCEPTION_HINT;
  RETURN format('%s | %s | %s | %s', st, msg, det, hin);
END $$;

SELECT zonegate._selftest_unwound() AS unwound_before \gset
SELECT kind, pg_temp.try(kind)
FROM unnest(ARRAY['cpp', 'zonegate', 'bad_alloc', 'unknown', 'pg', 'palloc', 'nonsense']) AS kind;
-- Each failing call above unwound exactly one C++ frame holding a heap-owning object.
SELECT zonegate._selftest_unwound() - :unwound_before AS frames_unwound;

-- The jsonb document builder (user_context's documents): keys stored in jsonb's order (shorter
-- first), nesting and every scalar kind; a malformed token list is refused, never trusted.
SELECT zonegate._selftest_guard('document');
SELECT kind, pg_temp.try(kind)
FROM unnest(ARRAY['document_unclosed', 'document_stray_end', 'document_key_twice',
                  'document_scalar', 'document_trailing']) AS kind;

-- The errors as a client sees them, outside any handler.
SELECT zonegate._selftest_guard('cpp');
SELECT 1 AS backend_alive;
SELECT zonegate._selftest_guard('pg');
SELECT 2 AS backend_alive;
SELECT zonegate._selftest_guard(NULL) IS NULL AS strict_null;

-- An error in the middle of a transaction aborts it as usual; the next one works.
BEGIN;
SELECT zonegate._selftest_guard('zonegate');
SELECT 1;
ROLLBACK;
SELECT zonegate._selftest_guard('ok') AS after_rollback;

-- The extension's own tables gone (a broken install): a clear error, not a crash; the backend
-- finds them again once they are back.
BEGIN;
ALTER TABLE zonegate.user_zones RENAME TO user_zones_gone;
SELECT zonegate.user_context('nobody');
ROLLBACK;
BEGIN;
ALTER TABLE zonegate.zones RENAME COLUMN parent_id TO parent_gone;
SELECT zonegate.zone_path(1);
ROLLBACK;
BEGIN;
ALTER TABLE zonegate.users RENAME COLUMN email TO email_gone;
SELECT zonegate.user_context('nobody');
ROLLBACK;
-- Users are read through the primary keys' indexes.
BEGIN;
SET LOCAL client_min_messages = warning;
ALTER TABLE zonegate.users DROP CONSTRAINT users_pkey CASCADE;
SELECT zonegate.user_context('nobody');
ROLLBACK;
SELECT zonegate.user_context('nobody') IS NULL AS tables_back;
