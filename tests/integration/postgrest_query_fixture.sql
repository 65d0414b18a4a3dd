-- Functions tests/integration/test_postgrest_query.py calls through /rpc: a set-returning
-- function with columns of several types (and names that need quoting), scalar, composite,
-- set-of-scalar, OUT-parameter, void, whole-body and VOLATILE ones, in a schema of their own.
DROP SCHEMA IF EXISTS pq CASCADE;
CREATE SCHEMA pq;

-- A table an injection would drop: it must still be there after every hostile request.
CREATE TABLE pq.victim (id int);
INSERT INTO pq.victim VALUES (1);

CREATE TABLE pq.items (
  id int PRIMARY KEY, name text, price numeric(10, 2), tags text[], born date, active boolean,
  score float8, meta jsonb, "ünï" text, "Mixed Case" int);
INSERT INTO pq.items VALUES
  (1, 'apple',  1.50, '{fruit,red}',    '2024-01-31', true,  0.1,  '{"b": 1, "a": [1, 2]}', 'α', 10),
  (2, 'banana', 0.25, '{fruit,yellow}', '2023-06-01', false, NULL, NULL,                     'β', NULL),
  (3, 'carrot', NULL, '{vegetable}',    NULL,         true,  2.5,  '{"z": null}',            NULL, 30),
  (4, 'Durian', 12.00, '{}',            '2020-02-29', NULL,  -1e300, '[]',                    'δ', 40),
  (5, 'egg, "large"', 3.00, NULL,       '2024-12-24', false, 1e-7, '{"k": "v"}',             'ε', 50);

CREATE FUNCTION pq.items(min_id int DEFAULT 0)
  RETURNS TABLE (id int, name text, price numeric(10, 2), tags text[], born date,
                 active boolean, score float8, meta jsonb, "ünï" text, "Mixed Case" int)
  LANGUAGE sql STABLE AS $$
  SELECT id, name, price, tags, born, active, score, meta, "ünï", "Mixed Case"
    FROM pq.items WHERE id >= min_id ORDER BY id
$$;

CREATE TYPE pq.pair AS (k text, v int);
CREATE FUNCTION pq.one_pair() RETURNS pq.pair LANGUAGE sql STABLE
  AS $$ SELECT ('one', 1)::pq.pair $$;
CREATE FUNCTION pq.pairs(n int DEFAULT 3) RETURNS SETOF pq.pair LANGUAGE sql STABLE
  AS $$ SELECT ('k' || g, g)::pq.pair FROM generate_series(1, n) g $$;
CREATE FUNCTION pq.split(a int, OUT doubled int, OUT label text) LANGUAGE sql IMMUTABLE
  AS $$ SELECT a * 2, 'half ' || (a / 2.0)::text $$;
CREATE FUNCTION pq.twice(n int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT n * 2';
CREATE FUNCTION pq.numbers(n int) RETURNS SETOF int LANGUAGE sql IMMUTABLE
  AS 'SELECT g FROM generate_series(1, n) g';
CREATE FUNCTION pq.maybe_null() RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT NULL::text';
CREATE FUNCTION pq.nothing() RETURNS void LANGUAGE sql STABLE AS 'SELECT';
-- An argument and a result column of the same name: ?category=eq.x filters, ?category=x passes.
CREATE FUNCTION pq.search(category text DEFAULT NULL) RETURNS TABLE (category text, n int)
  LANGUAGE sql STABLE AS $$
  SELECT c, n FROM (VALUES ('fruit', 2), ('vegetable', 1)) v(c, n)
   WHERE category IS NULL OR c = category
$$;
CREATE FUNCTION pq.echo(msg text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT msg';

-- The whole body as one argument.
CREATE FUNCTION pq.body_json(json) RETURNS json LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION pq.body_text(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT upper($1)';
CREATE FUNCTION pq.body_bytes(bytea) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT length($1)';
CREATE FUNCTION pq.single(doc jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$ SELECT jsonb_build_object('got', doc) $$;

-- VOLATILE and writing: a 406 for a single object must roll its writes back.
CREATE TABLE pq.log (n int);
CREATE FUNCTION pq.make_rows(n int) RETURNS SETOF pq.pair LANGUAGE sql VOLATILE AS $$
  INSERT INTO pq.log SELECT g FROM generate_series(1, n) g;
  SELECT ('made' || g, g)::pq.pair FROM generate_series(1, n) g
$$;
