-- zonegate 0.1: the skeleton. Loaded by CREATE EXTENSION zonegate.
\echo Use "CREATE EXTENSION zonegate" to load this file. \quit

CREATE FUNCTION zonegate.version() RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'zonegate_version';
COMMENT ON FUNCTION zonegate.version() IS 'version of the loaded zonegate library';

-- Diagnostics for the C/C++ boundary guards (see docs/ARCHITECTURE.md); superuser only.
CREATE FUNCTION zonegate._selftest_guard(kind text) RETURNS text
  LANGUAGE c VOLATILE STRICT
  AS 'MODULE_PATHNAME', 'zonegate_selftest_guard';
CREATE FUNCTION zonegate._selftest_unwound() RETURNS bigint
  LANGUAGE c VOLATILE
  AS 'MODULE_PATHNAME', 'zonegate_selftest_unwound';
REVOKE ALL ON FUNCTION zonegate._selftest_guard(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate._selftest_unwound() FROM PUBLIC;
