-- zonegate 0.6 -> 0.7: change notifications for application tables (docs/SECURITY.md, "The
-- change channel"). A cached /rpc function may read an application table; zonegate-proxy keeps
-- such answers only while that table is watched: zonegate.watch_table() installs statement
-- triggers that send, at commit, one signed notification per table and operation through
-- zonegate._notify(), naming the table ({"table": "app.items", "oid": ..., "users": []}: the
-- empty users list makes proxies before 0.7 drop nothing). What is watched changing (watch_table,
-- unwatch_table, or DDL past them, which an event trigger sees: a trigger dropped or disabled,
-- the table altered or dropped) sends {"op": "WATCH", "table": ...}: proxies check again.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.7'" to load this file. \quit

-- The trigger function of watched tables: a statement trigger (INSERT, UPDATE, DELETE,
-- TRUNCATE, ALWAYS) and a row trigger for the logical replication apply worker (which fires no
-- statement triggers). One notification per table and operation per transaction: a bulk load of
-- many statements costs one.
CREATE FUNCTION zonegate._app_table_changed() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM zonegate._notify(jsonb_build_object(
    'table', quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME),
    'oid', TG_RELID::bigint, 'op', TG_OP, 'users', '[]'::jsonb), true);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION zonegate._app_table_changed() FROM PUBLIC;

-- Who may watch: the table's owner (or a member of the owning role), or a superuser. The
-- functions run as the extension's owner, so the caller is read from the session: SET ROLE's
-- role, else the session user (a SECURITY DEFINER function cannot SET ROLE, so this is the
-- caller's, or a stricter one when another SECURITY DEFINER function calls). Returns the
-- table's name as notifications write it, schema-qualified and quoted as needed.
CREATE FUNCTION zonegate._watch_target(tbl regclass) RETURNS text
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  caller text := CASE WHEN current_setting('role') IN ('none', '') THEN session_user::text
                      ELSE current_setting('role') END;
  r record;
BEGIN
  IF tbl IS NULL THEN
    RAISE EXCEPTION 'zonegate: the table is NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT c.relkind, c.relowner, c.relpersistence, n.nspname, c.relname,
         quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
    INTO r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'zonegate: relation % does not exist', tbl::oid
      USING ERRCODE = 'undefined_table';
  END IF;
  IF NOT pg_has_role(caller, r.relowner, 'USAGE') THEN
    RAISE EXCEPTION 'zonegate: must be the owner of table %', r.name
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'the table''s owner, a member of its owning role or a superuser may watch it';
  END IF;
  IF r.nspname = 'zonegate' THEN
    RAISE EXCEPTION 'zonegate: % is one of zonegate''s own tables, which notify already', r.name
      USING ERRCODE = 'invalid_parameter_value', HINT = 'name it as "zonegate" in depends_on';
  END IF;
  IF r.relkind = 'p' THEN
    RAISE EXCEPTION 'zonegate: % is partitioned: a statement on one of its partitions does not fire its triggers', r.name
      USING ERRCODE = 'wrong_object_type',
            HINT = 'watch each partition, and name the partitions in depends_on';
  END IF;
  IF r.relpersistence = 't' THEN
    RAISE EXCEPTION 'zonegate: % is a temporary table', quote_ident(r.relname)
      USING ERRCODE = 'wrong_object_type';
  END IF;
  IF r.relkind <> 'r' THEN
    RAISE EXCEPTION 'zonegate: % is not a table', r.name
      USING ERRCODE = 'wrong_object_type';
  END IF;
  RETURN r.name;
END
$$;
REVOKE ALL ON FUNCTION zonegate._watch_target(regclass) FROM PUBLIC;

-- Drops the watch triggers a table has (an internal step of watch_table and unwatch_table).
CREATE FUNCTION zonegate._unwatch(tbl regclass, name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t name;
BEGIN
  FOR t IN SELECT tgname FROM pg_trigger
           WHERE tgrelid = tbl AND tgname IN ('zz_zonegate_watch', 'zz_zonegate_watch_row') LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t, name);
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION zonegate._unwatch(regclass, text) FROM PUBLIC;

-- Starts watching: installs (again) the triggers and tells the proxies (a WATCH notification:
-- what is watched changed), which check again and cache the functions that depend on the
-- table. Owner or superuser only; not for PUBLIC. Each WATCH body is sent once per transaction
-- (the event trigger below sends the same one for the DDL done here).
CREATE FUNCTION zonegate.watch_table(tbl regclass) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  name text := zonegate._watch_target(tbl);
BEGIN
  PERFORM zonegate._unwatch(tbl, name);
  EXECUTE format('CREATE TRIGGER zz_zonegate_watch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
                    ON %s FOR EACH STATEMENT EXECUTE FUNCTION zonegate._app_table_changed()', name);
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER zz_zonegate_watch', name);
  EXECUTE format('CREATE TRIGGER zz_zonegate_watch_row AFTER INSERT OR UPDATE OR DELETE
                    ON %s FOR EACH ROW EXECUTE FUNCTION zonegate._app_table_changed()', name);
  EXECUTE format('ALTER TABLE %s ENABLE REPLICA TRIGGER zz_zonegate_watch_row', name);
  PERFORM zonegate._notify(jsonb_build_object('op', 'WATCH', 'table', name, 'users', '[]'::jsonb),
                           true);
  RETURN name;
END
$$;
REVOKE ALL ON FUNCTION zonegate.watch_table(regclass) FROM PUBLIC;
COMMENT ON FUNCTION zonegate.watch_table(regclass) IS
  'installs the triggers that notify zonegate-proxy of every change to an application table, so /rpc functions that read it may be cached (cache.rpc.<fn>.depends_on); owner or superuser';

-- Stops watching: removes the triggers and tells the proxies, which stop caching what depends
-- on the table.
CREATE FUNCTION zonegate.unwatch_table(tbl regclass) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  name text := zonegate._watch_target(tbl);
BEGIN
  PERFORM zonegate._unwatch(tbl, name);
  PERFORM zonegate._notify(jsonb_build_object('op', 'WATCH', 'table', name, 'users', '[]'::jsonb),
                           true);
  RETURN name;
END
$$;
REVOKE ALL ON FUNCTION zonegate.unwatch_table(regclass) FROM PUBLIC;
COMMENT ON FUNCTION zonegate.unwatch_table(regclass) IS
  'removes what zonegate.watch_table() installed; proxies stop caching the /rpc functions that depend on the table';

-- Every table with a watch trigger, and whether it is watched as watch_table() left it: what
-- zonegate-proxy checks at each catalog load (an incomplete watch means no caching).
CREATE FUNCTION zonegate.watched_tables()
  RETURNS TABLE (table_name text, relid oid, watched boolean, problem text)
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.oid, p.problem IS NULL, p.problem
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (
    SELECT (SELECT t FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgfoid = f.fn
              AND t.tgtype & 1 = 0 ORDER BY t.tgname LIMIT 1) AS stmt,
           (SELECT t FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgfoid = f.fn
              AND t.tgtype & 1 = 1 ORDER BY t.tgname LIMIT 1) AS rowt
    FROM (SELECT 'zonegate._app_table_changed()'::regprocedure::oid AS fn) f) g
  CROSS JOIN LATERAL (SELECT CASE
    WHEN (g.stmt).oid IS NULL THEN 'its statement trigger is missing'
    WHEN (g.stmt).tgenabled <> 'A' THEN 'its statement trigger ' || quote_ident((g.stmt).tgname) ||
                                         ' is not ENABLE ALWAYS'
    WHEN (g.stmt).tgtype & 60 <> 60 OR (g.stmt).tgtype & 66 <> 0 THEN
      'its statement trigger does not fire after INSERT, UPDATE, DELETE and TRUNCATE'
    WHEN (g.rowt).oid IS NULL THEN 'its row trigger (logical replication) is missing'
    WHEN (g.rowt).tgenabled NOT IN ('R', 'A') THEN 'its row trigger ' || quote_ident((g.rowt).tgname) ||
                                                   ' is disabled'
    WHEN (g.rowt).tgtype & 28 <> 28 OR (g.rowt).tgtype & 66 <> 0 THEN
      'its row trigger does not fire after INSERT, UPDATE and DELETE'
  END AS problem) p
  WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                  AND t.tgfoid = 'zonegate._app_table_changed()'::regprocedure)
  ORDER BY 1
$$;
COMMENT ON FUNCTION zonegate.watched_tables() IS
  'the tables zonegate.watch_table() installed triggers on; watched is false (and problem says why) when they no longer are as installed';

-- DDL that changes what is watched, made past watch_table(): a watch trigger dropped (DROP
-- TRIGGER, DROP TABLE), a watched table altered (DISABLE TRIGGER, ENABLE TRIGGER, RENAME, ...).
-- The proxies are told (a WATCH notification) and reload, so they stop (or resume) caching at
-- once rather than at their next catalog load. It never fails the DDL: a failure to notify is
-- a warning.
CREATE FUNCTION zonegate._watch_ddl() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  tables text;
BEGIN
  IF TG_EVENT = 'sql_drop' THEN
    SELECT string_agg(DISTINCT substring(d.object_identity FROM ' on (.*)$'), ', ') INTO tables
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.object_type = 'trigger' AND d.object_identity LIKE 'zz\_zonegate\_watch% on %';
  ELSE
    SELECT string_agg(DISTINCT d.object_identity, ', ') INTO tables
    FROM pg_event_trigger_ddl_commands() d
    WHERE d.classid = 'pg_class'::regclass
      AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = d.objid
                    AND t.tgfoid = 'zonegate._app_table_changed()'::regprocedure);
  END IF;
  IF tables IS NOT NULL THEN
    PERFORM zonegate._notify(jsonb_build_object('op', 'WATCH', 'table', left(tables, 1000),
                                                'users', '[]'::jsonb), true);
  END IF;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'zonegate could not tell the proxies that a watched table changed: %', SQLERRM
    USING HINT = 'SELECT zonegate.reload_schema() makes them check again';
END
$$;
REVOKE ALL ON FUNCTION zonegate._watch_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER zz_zonegate_watch_drop ON sql_drop EXECUTE FUNCTION zonegate._watch_ddl();
CREATE EVENT TRIGGER zz_zonegate_watch_alter ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
  EXECUTE FUNCTION zonegate._watch_ddl();
-- Also under session_replication_role = replica (a restore, a bulk load).
ALTER EVENT TRIGGER zz_zonegate_watch_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER zz_zonegate_watch_alter ENABLE ALWAYS;
