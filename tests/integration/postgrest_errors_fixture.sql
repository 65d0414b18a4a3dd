-- Functions that fail the ways PostgREST's error table covers (tests/integration/
-- test_postgrest_errors.py and node/postgrest_errors.mjs): real constraint violations, casts,
-- RAISE with its default code, a custom PTxyz status, RAISE SQLSTATE 'PGRST' with full
-- response control, and the codes whose status depends on the message or on who asks.
DROP SCHEMA IF EXISTS perr CASCADE;
CREATE SCHEMA perr;
CREATE TABLE perr.parent (id int PRIMARY KEY);
CREATE TABLE perr.child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES perr.parent);
CREATE TABLE perr.uniq (k text PRIMARY KEY);
INSERT INTO perr.parent VALUES (1);
INSERT INTO perr.uniq VALUES ('taken');

CREATE FUNCTION perr.to_int(t text) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT t::int';
CREATE FUNCTION perr.claim(k text) RETURNS text LANGUAGE sql VOLATILE
  AS 'INSERT INTO perr.uniq VALUES (k) RETURNING k';
CREATE FUNCTION perr.adopt(parent int) RETURNS int LANGUAGE sql VOLATILE
  AS 'INSERT INTO perr.child VALUES (parent * 100, parent) RETURNING id';
CREATE FUNCTION perr.refuse(msg text) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN RAISE EXCEPTION '%', msg USING DETAIL = 'Pretty simple', HINT = 'There is nothing you can do.'; END $$;
-- RAISE sqlstate 'PTxyz': the HTTP status is xyz.
CREATE FUNCTION perr.pay(code text DEFAULT 'PT402') RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = code, MESSAGE = 'Payment Required', DETAIL = 'Quota exceeded',
                        HINT = 'Upgrade your plan';
END $$;
-- RAISE sqlstate 'PGRST': the function writes the answer: its code, message, status, headers.
CREATE FUNCTION perr.full_control(good boolean DEFAULT true) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF good THEN
    RAISE SQLSTATE 'PGRST' USING
      MESSAGE = '{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade your plan"}',
      DETAIL = '{"status":402,"headers":{"X-Powered-By":"Nerd Rage","Content-Length":"0"}}';
  END IF;
  RAISE SQLSTATE 'PGRST' USING MESSAGE = 'not json', DETAIL = '{"status":402,"headers":{}}';
END $$;
-- What PostgREST's docs say for custom authorization: RAISE insufficient_privilege answers
-- 401 to the anonymous role and 403 to anyone else.
CREATE FUNCTION perr.members_only() RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN RAISE insufficient_privilege USING MESSAGE = 'permission denied for members_only'; END $$;
-- A write in a read-only transaction: 25006, 405.
CREATE FUNCTION perr.write_read_only() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('transaction_read_only', 'on', true);
  INSERT INTO perr.uniq VALUES ('never');
  RETURN 1;
END $$;
-- 21000: pg-safeupdate's refusal is the client's (400), any other the server's (500).
CREATE FUNCTION perr.cardinality(safeupdate boolean) RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF safeupdate THEN
    RAISE EXCEPTION 'DELETE requires a WHERE clause' USING ERRCODE = 'cardinality_violation';
  END IF;
  RETURN (SELECT g FROM generate_series(1, 2) g);
END $$;
-- Undefined table and function at run time (dynamic SQL): 404 each.
CREATE FUNCTION perr.missing_table() RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN EXECUTE 'SELECT 1 FROM perr.no_such_table'; RETURN 1; END $$;
CREATE FUNCTION perr.missing_function() RETURNS int LANGUAGE plpgsql STABLE AS $$
BEGIN EXECUTE 'SELECT perr.no_such_function()'; RETURN 1; END $$;
-- Postgres's "terminating connection due to administrator command" as a plain error: 503.
CREATE FUNCTION perr.admin_shutdown() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN RAISE EXCEPTION 'terminating connection due to administrator command' USING ERRCODE = 'admin_shutdown'; END $$;
-- Two overloads with as many inputs, both named x: PGRST203.
CREATE FUNCTION perr.twin(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'int' $$;
CREATE FUNCTION perr.twin(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text' $$;
CREATE FUNCTION perr.nap(seconds float8) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT pg_sleep(seconds)::text || 'rested' $$;
