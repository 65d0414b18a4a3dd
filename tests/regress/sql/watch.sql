-- Application tables watched for zonegate-proxy's /rpc cache (0.7, docs/SECURITY.md, "The change
-- channel"): zonegate.watch_table() installs a statement trigger (ALWAYS) and a row trigger
-- (REPLICA, for the logical replication apply worker) whose notifications are signed like every
-- other; who may watch; zonegate.watched_tables(); the WATCH notification that tells proxies
-- when what is watched changed, through watch_table/unwatch_table or DDL past them. A dblink
-- connection listens, so the output shows payloads without the listener's PID.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE SCHEMA app;
CREATE ROLE zg_watch_owner LOGIN;
CREATE ROLE zg_watch_other LOGIN;
CREATE ROLE zg_watch_member LOGIN IN ROLE zg_watch_owner, zg_watch_other;
GRANT USAGE ON SCHEMA app TO PUBLIC;
CREATE TABLE app.items (id int PRIMARY KEY, name text NOT NULL);
ALTER TABLE app.items OWNER TO zg_watch_owner;
CREATE TABLE app."Odd.Name" (id int);
ALTER TABLE app."Odd.Name" OWNER TO zg_watch_owner;

-- 1. Who may watch: not PUBLIC (EXECUTE is not granted); a role granted EXECUTE may watch only
-- the tables it owns (or whose owning role it is a member of); superusers any table.
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_call,
       has_function_privilege('zonegate_authenticator', p.oid, 'EXECUTE') AS proxy_may_call
FROM pg_proc p WHERE p.pronamespace = 'zonegate'::regnamespace
  AND p.proname IN ('watch_table', 'unwatch_table', 'watched_tables', '_app_table_changed',
                    '_watch_target', '_unwatch', '_watch_ddl')
ORDER BY 1;
\c - zg_watch_owner
\set SHOW_CONTEXT never
SELECT zonegate.watch_table('app.items');
\c - postgres
\set SHOW_CONTEXT never
GRANT EXECUTE ON FUNCTION zonegate.watch_table(regclass), zonegate.unwatch_table(regclass)
  TO zg_watch_owner, zg_watch_member, zg_watch_other;
\c - zg_watch_other
\set SHOW_CONTEXT never
SELECT zonegate.watch_table('app.items');
SELECT zonegate.unwatch_table('app.items');
\c - zg_watch_member
\set SHOW_CONTEXT never
SELECT zonegate.watch_table('app.items');
-- SET ROLE to a role that may not: refused, though the login may.
SET ROLE zg_watch_other;
SELECT zonegate.watch_table('app.items');
RESET ROLE;
\c - zg_watch_owner
\set SHOW_CONTEXT never
SELECT zonegate.watch_table('app."Odd.Name"');
\c - postgres
\set SHOW_CONTEXT never

-- What cannot be watched: zonegate's own tables (they notify already), a partitioned table
-- (statements on a partition would not fire its triggers), views, temporary tables, NULL.
CREATE TABLE app.parted (id int) PARTITION BY RANGE (id);
CREATE VIEW app.v AS SELECT 1 AS one;
CREATE TEMP TABLE scratch (id int);
SELECT zonegate.watch_table('zonegate.users');
SELECT zonegate.watch_table('app.parted');
SELECT zonegate.watch_table('app.v');
SELECT zonegate.watch_table('scratch');
SELECT zonegate.watch_table(NULL);

-- 2. What is installed: one statement trigger AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE,
-- ALWAYS (it fires under session_replication_role = replica too), and one row trigger AFTER
-- INSERT OR UPDATE OR DELETE, REPLICA (the apply worker fires row triggers only).
SELECT c.relname, t.tgname, t.tgenabled, t.tgtype & 1 = 1 AS per_row,
       t.tgtype & 4 <> 0 AS ins, t.tgtype & 16 <> 0 AS upd, t.tgtype & 8 <> 0 AS del,
       t.tgtype & 32 <> 0 AS trunc, t.tgtype & 66 = 0 AS after
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgfoid = 'zonegate._app_table_changed()'::regprocedure ORDER BY 1, 2;
SELECT table_name, relid = to_regclass(table_name) AS relid_ok, watched, problem
FROM zonegate.watched_tables();
-- Watching again is harmless: the same triggers, once.
SELECT zonegate.watch_table('app.items');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'app.items'::regclass AND NOT tgisinternal;

-- 3. The notifications: signed as every other (docs/API.md, "Change notifications"), naming the
-- table (schema-qualified, quoted as needed) and its oid, with an empty users list (proxies
-- before 0.7 drop nothing); one per table and operation per transaction; none for a rolled-back
-- transaction.
CREATE FUNCTION pg_temp.hmac(k bytea, m text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  kk bytea := k || decode(repeat('00', 64 - length(k)), 'hex');
  ipad bytea := decode(repeat('00', 64), 'hex');
  opad bytea := decode(repeat('00', 64), 'hex');
BEGIN
  FOR i IN 0..63 LOOP
    ipad := set_byte(ipad, i, get_byte(kk, i) # 54);
    opad := set_byte(opad, i, get_byte(kk, i) # 92);
  END LOOP;
  RETURN encode(sha256(opad || sha256(ipad || convert_to(m, 'UTF8'))), 'hex');
END $$;
SELECT dblink_connect('listener', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_database(), session_user));
SELECT dblink_exec('listener', 'LISTEN zonegate_changes');
CREATE TABLE pg_temp.seen (n serial, payload text);
CREATE FUNCTION pg_temp.receive(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  got int := 0;
  k int;
BEGIN
  FOR i IN 1..3000 LOOP
    INSERT INTO pg_temp.seen (payload) SELECT extra FROM dblink_get_notify('listener');
    GET DIAGNOSTICS k = ROW_COUNT;
    got := got + k;
    EXIT WHEN got >= n;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
-- Each payload: its body without at and version (they vary), whether it is signed with the
-- database's key, and whether "oid" is the table's.
CREATE FUNCTION pg_temp.payloads() RETURNS TABLE (body jsonb, mac_ok boolean, oid_ok boolean)
  LANGUAGE sql AS $$
  SELECT m.msg::jsonb - 'at' - 'version' - 'oid',
         s.payload ~ ',"mac":"[0-9a-f]{64}"}$'
           AND substr(s.payload, length(s.payload) - 65, 64) =
               pg_temp.hmac((SELECT key FROM zonegate._notify_key), m.msg),
         (m.msg::jsonb ->> 'oid')::oid = to_regclass(m.msg::jsonb ->> 'table')
  FROM pg_temp.seen s, LATERAL (SELECT left(s.payload, -74) || '}' AS msg) m
  ORDER BY s.n
$$;
CREATE FUNCTION pg_temp.take(n int) RETURNS TABLE (body jsonb, mac_ok boolean, oid_ok boolean)
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.receive(n);
  RETURN QUERY SELECT * FROM pg_temp.payloads();
  TRUNCATE pg_temp.seen;
END $$;
INSERT INTO app.items VALUES (1, 'one');
BEGIN;
INSERT INTO app.items VALUES (2, 'two');
INSERT INTO app.items VALUES (3, 'three');
UPDATE app.items SET name = upper(name);
DELETE FROM app.items WHERE id = 3;
INSERT INTO app."Odd.Name" VALUES (1);
COMMIT;
BEGIN;
DELETE FROM app.items;
ROLLBACK;
TRUNCATE app.items;
SELECT * FROM pg_temp.take(6);
-- Under session_replication_role = replica (a bulk load, the apply worker): still notified.
SET session_replication_role = replica;
INSERT INTO app.items VALUES (4, 'four'), (5, 'five');
RESET session_replication_role;
SELECT * FROM pg_temp.take(1);
-- A role that may write the table but not notify: the trigger signs for it (SECURITY DEFINER).
GRANT INSERT ON app.items TO zg_watch_other;
SELECT dblink_connect('writer', format('host=%s port=%s dbname=%s user=zg_watch_other',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_database()));
SELECT dblink_exec('writer', 'INSERT INTO app.items VALUES (6, ''six'')');
SELECT dblink_disconnect('writer');
SELECT * FROM pg_temp.take(1);

-- 4. What is watched changing: watch_table, unwatch_table and DDL past them each send a WATCH
-- notification (proxies check again), and watched_tables() says what is wrong.
ALTER TABLE app.items DISABLE TRIGGER zz_zonegate_watch;
SELECT table_name, relid = to_regclass(table_name) AS relid_ok, watched, problem
FROM zonegate.watched_tables();
INSERT INTO app.items VALUES (7, 'seven');  -- not notified: past the trigger
SELECT zonegate.watch_table('app.items');
SELECT table_name, relid = to_regclass(table_name) AS relid_ok, watched, problem
FROM zonegate.watched_tables();
DROP TRIGGER zz_zonegate_watch_row ON app.items;
SELECT table_name, relid = to_regclass(table_name) AS relid_ok, watched, problem
FROM zonegate.watched_tables();
SELECT zonegate.unwatch_table('app.items');
ALTER TABLE app."Odd.Name" RENAME TO "Odd.Renamed";
DROP TABLE app."Odd.Renamed";
SELECT * FROM pg_temp.take(6);
SELECT table_name, relid = to_regclass(table_name) AS relid_ok, watched, problem
FROM zonegate.watched_tables();
-- DDL on tables that are not watched says nothing.
ALTER TABLE app.items ADD COLUMN note text;
DROP VIEW app.v;
SELECT zonegate.watch_table('app.items');
SELECT * FROM pg_temp.take(1);
SELECT dblink_disconnect('listener');

-- 5. Cleaning up: the application's rows are where they were.
SELECT count(*) AS rows_kept FROM app.items;
SET client_min_messages = warning;
DROP SCHEMA app CASCADE;
RESET client_min_messages;
REVOKE ALL ON FUNCTION zonegate.watch_table(regclass), zonegate.unwatch_table(regclass)
  FROM zg_watch_owner, zg_watch_member, zg_watch_other;
DROP ROLE zg_watch_member;
DROP ROLE zg_watch_owner;
DROP ROLE zg_watch_other;
DROP EXTENSION dblink;
