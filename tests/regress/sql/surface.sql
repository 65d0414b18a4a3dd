-- Every function of the schema, found in pg_proc (so a new one is covered without editing this
-- file), called with NULLs, empty, huge and extreme values, NaN and infinities, malformed JSON and
-- GeoJSON: as a superuser and as a plain login. Each call may fail with a clean error; none may
-- take the backend down (pg_regress would lose the connection, and tests/run.sh reads the server
-- log for backends terminated by a signal). Per function: how many calls, and which SQLSTATEs.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
  (1, NULL, 'A', 'Region A', 'province',
   '{"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}'),
  (11, 1, 'A1', 'A one', 'regency', NULL);
INSERT INTO zonegate.roles VALUES ('staff', '{}', false), ('admin', '{}', true);
INSERT INTO zonegate.users (user_id, role) VALUES ('u', 'staff'), ('adm', 'admin');
INSERT INTO zonegate.user_zones VALUES ('u', 11);

CREATE SCHEMA surface;
GRANT USAGE ON SCHEMA surface TO PUBLIC;
-- Hostile values per argument type, as SQL expressions.
CREATE TABLE surface.vals (id serial, type regtype, expr text);
INSERT INTO surface.vals (type, expr) VALUES
  ('text', 'NULL'), ('text', ''''''), ('text', '''u'''), ('text', '''adm'''),
  ('text', 'repeat(''x'', 100000)'), ('text', 'E''\u00e9\u4e2d'''), ('text', '''%s%n%x'''),
  ('text', '''zonegate.zones'''), ('text', 'repeat(''é'', 3000)'),
  ('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-1'), ('bigint', '1'), ('bigint', '11'),
  ('bigint', '9223372036854775807'), ('bigint', '(-9223372036854775807 - 1)'),
  ('double precision', 'NULL'), ('double precision', '''NaN'''),
  ('double precision', '''Infinity'''), ('double precision', '''-Infinity'''),
  ('double precision', '0'), ('double precision', '''-0'''), ('double precision', '1e308'),
  ('double precision', '-1e308'), ('double precision', '5e-324'), ('double precision', '5'),
  ('double precision', '180'), ('double precision', '-90'),
  ('bigint[]', 'NULL'), ('bigint[]', '''{}'''), ('bigint[]', '''{NULL}'''),
  ('bigint[]', '''{1,NULL,11}'''), ('bigint[]', '''{{1,2},{11,3}}'''),
  ('bigint[]', '''[5:6]={1,11}'''), ('bigint[]', 'array_fill(1::bigint, ARRAY[200000])'),
  ('bigint[]', '''{9223372036854775807,-9223372036854775808}'''),
  ('double precision[]', 'NULL'), ('double precision[]', '''{}'''),
  ('double precision[]', '''{NaN,Infinity}'''), ('double precision[]', '''{NULL,5}'''),
  ('double precision[]', '''{{5,5},{5,5}}'''), ('double precision[]', '''[0:1]={5,5}'''),
  ('double precision[]', 'array_fill(5::float8, ARRAY[200000])'),
  ('double precision[]', '''{-Infinity,1e308}'''),
  ('jsonb', 'NULL'), ('jsonb', '''null'''), ('jsonb', '''{}'''), ('jsonb', '''[]'''),
  ('jsonb', '''"text"'''), ('jsonb', '''{"type": "Polygon"}'''),
  ('jsonb', '''{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'''),
  ('jsonb', '''{"type": "Polygon", "coordinates": [[[0, 0]]]}'''),
  ('jsonb', '''{"type": "Polygon", "coordinates": [[[1e308, 0], [-1e308, 0], [0, 1e308], [1e308, 0]]]}'''),
  ('jsonb', '''{"type": "MultiPolygon", "coordinates": [[], [[]], [[[]]]]}'''),
  ('jsonb', '''{"type": "Polygon", "coordinates": [[["a", 0], [1, 0], [1, 1], ["a", 0]]]}'''),
  ('jsonb', 'repeat(''['', 5000)::text || repeat('']'', 5000)'),
  ('jsonb', '(''{"type": "Polygon", "coordinates": [['' || (SELECT string_agg(format(''[%s, %s]'', i % 7, i % 5), '','') FROM generate_series(1, 20000) i) || '', [1, 0]]]}'')'),
  ('jsonb', '''{"type": "FeatureCollection", "features": []}'''),
  ('jsonb', '''{"type": "FeatureCollection", "features": [{}, null, 1]}'''),
  ('jsonb', '''{"type": "FeatureCollection", "features": [{"id": "99999999999999999999", "geometry": {}, "properties": {"name": "x"}}]}'''),
  ('jsonb', '''{"type": "FeatureCollection", "features": [{"id": 7, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "properties": {"name": "seven", "code": "A"}}]}'''),
  ('oid', 'NULL'), ('oid', '0'), ('oid', '1'), ('oid', '4294967295'),
  ('oid', '''zonegate.users''::regclass'), ('oid', '''pg_class''::regclass'),
  ('internal', 'NULL'),
  ('bytea', 'NULL'), ('bytea', '''\x'''), ('bytea', '''\x00'''), ('bytea', 'convert_to(''Jefe'', ''UTF8'')'),
  ('bytea', 'decode(repeat(''ab'', 100000), ''hex'')');
GRANT SELECT ON surface.vals TO PUBLIC;

-- Calls every zonegate function: round k gives argument j the value (k + 3j) of its type's list,
-- and a last round passes NULL everywhere. Each call is undone (its subtransaction rolled back)
-- so the calls do not depend on each other; 'ok' is a call that returned.
CREATE FUNCTION surface.probe(OUT fn text, OUT calls int, OUT outcomes text)
  RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
  p record;
  k int;
  j int;
  rounds int;
  args text[];
  vals text[];
  st text;
  seen text[];
  call text;
  result text;
BEGIN
  FOR p IN SELECT oid, oid::regprocedure::text AS sig, proargtypes::oid[] AS types, pronargs,
                  proretset
           FROM pg_proc WHERE pronamespace = 'zonegate'::regnamespace
           ORDER BY oid::regprocedure::text LOOP
    fn := p.sig;
    calls := 0;
    seen := '{}';
    SELECT coalesce(max(c), 1) INTO rounds FROM (
      SELECT count(*) AS c FROM surface.vals v WHERE v.type = ANY (p.types) GROUP BY v.type) s;
    FOR k IN 0..rounds LOOP
      args := '{}';
      FOR j IN 0..p.pronargs - 1 LOOP
        SELECT array_agg(v.expr ORDER BY v.id) INTO vals FROM surface.vals v
        WHERE v.type = p.types[j];
        IF k = rounds OR vals IS NULL THEN
          args := args || format('NULL::%s', p.types[j]::regtype);
        ELSE
          args := args || format('(%s)::%s', vals[1 + (k + 3 * j) % cardinality(vals)],
                                 p.types[j]::regtype);
        END IF;
      END LOOP;
      call := format('%s(%s)', p.oid::regproc, array_to_string(args, ', '));
      -- The result is used, so the planner cannot drop the call.
      IF p.proretset THEN
        call := format('SELECT count(*)::text FROM %s', call);
      ELSE
        call := format('SELECT (%s)::text', call);
      END IF;
      BEGIN
        EXECUTE call INTO result;
        RAISE EXCEPTION USING ERRCODE = 'ZG000';  -- undo what the call did
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
      END;
      calls := calls + 1;
      IF st = 'ZG000' THEN
        st := 'ok';
      END IF;
      IF NOT st = ANY (seen) THEN
        seen := seen || st;
      END IF;
    END LOOP;
    outcomes := array_to_string(ARRAY(SELECT unnest(seen) ORDER BY 1), ' ');
    RETURN NEXT;
  END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION surface.probe() TO PUBLIC;

-- As the superuser: everything callable, only clean errors.
SELECT * FROM surface.probe();
SELECT count(*) AS zones_untouched FROM zonegate.zones;

-- As a plain login: internal and any-user functions refused (42501), the rest as above. An
-- 'ok' beside a 42501 is a STRICT call with a NULL constant, which the planner folds to NULL
-- before any privilege check (Postgres' own behaviour; nothing runs).
CREATE ROLE zg_surface_plain LOGIN;
\c - zg_surface_plain
\set SHOW_CONTEXT never
SELECT * FROM surface.probe();
\c - postgres
SELECT 1 AS backend_alive;
DROP SCHEMA surface CASCADE;
DROP ROLE zg_surface_plain;
