-- Signed change notifications (docs/SECURITY.md, "The change channel"): every payload the
-- extension sends on zonegate_changes carries version, at and an HMAC-SHA256 under the
-- database's key, whichever path sends it (statement triggers, row triggers, flush_caches,
-- reload_schema); the key and the functions that use it are the extension's, the proxy's login
-- reads the key and nobody else. A dblink connection listens, so the output shows payloads
-- without the listener's PID (psql's own LISTEN output has it).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (11, 1, 'A1', 'A one', 'regency');
INSERT INTO zonegate.roles VALUES ('staff', '{}', false);
INSERT INTO zonegate.users (user_id, role) VALUES ('u1', 'staff'), ('u2', 'staff');

-- HMAC-SHA256 (RFC 2104) from the built-in sha256(), for keys up to one block: an independent
-- implementation to check the extension's against.
CREATE FUNCTION pg_temp.hmac(k bytea, m text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  kk bytea := k || decode(repeat('00', 64 - length(k)), 'hex');
  ipad bytea := decode(repeat('00', 64), 'hex');
  opad bytea := decode(repeat('00', 64), 'hex');
BEGIN
  FOR i IN 0..63 LOOP
    ipad := set_byte(ipad, i, get_byte(kk, i) # 54);   -- 0x36
    opad := set_byte(opad, i, get_byte(kk, i) # 92);   -- 0x5c
  END LOOP;
  RETURN encode(sha256(opad || sha256(ipad || convert_to(m, 'UTF8'))), 'hex');
END $$;

-- 1. The C function is HMAC-SHA256: RFC 4231 test cases 1, 2 and 6 (a key longer than a block),
-- and the same answer as the SQL one for the database's key.
SELECT zonegate._hmac_sha256(decode(repeat('0b', 20), 'hex'), 'Hi There')
         = 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' AS rfc4231_1,
       zonegate._hmac_sha256('Jefe', 'what do ya want for nothing?')
         = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' AS rfc4231_2,
       zonegate._hmac_sha256(decode(repeat('aa', 131), 'hex'),
                             'Test Using Larger Than Block-Size Key - Hash Key First')
         = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' AS rfc4231_6,
       zonegate._hmac_sha256(k.key, 'zonegate é') = pg_temp.hmac(k.key, 'zonegate é') AS same_as_sql
FROM zonegate._notify_key k;

-- 2. The key: 32 random bytes made at install, which notify_key() returns as hex; never dumped
-- (not a configuration table of the extension), so a restore makes a new one.
SELECT octet_length(key) AS key_bytes, encode(key, 'hex') = zonegate.notify_key() AS notify_key_is_hex,
       key <> decode(repeat('00', 32), 'hex') AS not_zero
FROM zonegate._notify_key;
SELECT count(*) AS keys FROM zonegate._notify_key;
SELECT '_notify_key' = ANY (SELECT c.relname FROM pg_extension e, unnest(e.extconfig) t(oid)
                            JOIN pg_class c ON c.oid = t.oid
                            WHERE e.extname = 'zonegate') AS dumped_by_pg_dump;

-- 3. Every path signs. The listener reads what was committed; each payload is checked: it ends
-- with ,"mac":"<64 hex>"}, and the mac is the HMAC of the JSON text with } in place of that
-- suffix. Shown without at and version, which vary (checked apart: versions increase, at is
-- now in epoch milliseconds).
SELECT dblink_connect('listener', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_database(), session_user));
SELECT dblink_exec('listener', 'LISTEN zonegate_changes');
CREATE TABLE pg_temp.seen (n serial, payload text);
-- Waits (at most 30 s) until the listener has n more payloads, and keeps them.
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
CREATE FUNCTION pg_temp.check_payloads(key bytea) RETURNS TABLE (
    body jsonb, signed boolean, mac_ok boolean, version_up boolean, at_now boolean)
  LANGUAGE sql AS $$
  SELECT msg::jsonb - 'at' - 'version',
         s.payload ~ ',"mac":"[0-9a-f]{64}"}$',
         substr(s.payload, length(s.payload) - 65, 64) = pg_temp.hmac(key, msg),
         (msg::jsonb ->> 'version')::bigint > coalesce(lag((msg::jsonb ->> 'version')::bigint) OVER (ORDER BY s.n), 0),
         abs((msg::jsonb ->> 'at')::bigint - extract(epoch FROM now()) * 1000) < 600000
  FROM pg_temp.seen s, LATERAL (SELECT left(s.payload, -74) || '}' AS msg) m
  ORDER BY s.n
$$;

-- Statement triggers, flush_caches(), reload_schema(), and a users list too long for one
-- NOTIFY (200 rows of 37-byte ids: 8,000 bytes), which says "*" instead of failing the insert.
INSERT INTO zonegate.user_zones VALUES ('u1', 1), ('u2', 11);
UPDATE zonegate.zones SET name = 'Region A.' WHERE id = 1;
SELECT zonegate.flush_caches();
SELECT zonegate.reload_schema();
INSERT INTO zonegate.users (user_id, role)
  SELECT 'user-' || md5(g::text), 'staff' FROM generate_series(1, 200) g;
DELETE FROM zonegate.users WHERE user_id LIKE 'user-%';
-- The row triggers alone (the logical replication apply worker fires no statement triggers):
-- signed as well, each distinct change once per transaction, and a rolled-back
-- subtransaction's change sent again when it is made again.
BEGIN;
ALTER TABLE zonegate.user_zones DISABLE TRIGGER zz_user_zones_changed_insert;
ALTER TABLE zonegate.user_zones DISABLE TRIGGER zz_user_zones_changed_delete;
SET LOCAL session_replication_role = replica;
INSERT INTO zonegate.user_zones VALUES ('u1', 11);
DELETE FROM zonegate.user_zones WHERE user_id = 'u1' AND zone_id = 11;
INSERT INTO zonegate.user_zones VALUES ('u1', 11);
SAVEPOINT s;
DELETE FROM zonegate.user_zones WHERE user_id = 'u2';
ROLLBACK TO s;
DELETE FROM zonegate.user_zones WHERE user_id = 'u2';
ALTER TABLE zonegate.user_zones ENABLE ALWAYS TRIGGER zz_user_zones_changed_insert;
ALTER TABLE zonegate.user_zones ENABLE ALWAYS TRIGGER zz_user_zones_changed_delete;
COMMIT;
SELECT pg_temp.receive(9);
SELECT * FROM pg_temp.check_payloads((SELECT key FROM zonegate._notify_key));
SELECT count(*) AS payloads FROM pg_temp.seen;

-- 4. A new key: payloads are signed with it, and no longer verify under the old one.
CREATE TABLE pg_temp.old_key AS SELECT key FROM zonegate._notify_key;
SELECT zonegate.rotate_notify_key();
SELECT (SELECT key FROM zonegate._notify_key) <> (SELECT key FROM pg_temp.old_key) AS rotated,
       (SELECT count(*) FROM zonegate._notify_key) AS keys;
TRUNCATE pg_temp.seen;
INSERT INTO zonegate.user_zones VALUES ('u2', 1);
SELECT pg_temp.receive(1);
SELECT body, mac_ok AS new_key_ok FROM pg_temp.check_payloads((SELECT key FROM zonegate._notify_key));
SELECT mac_ok AS old_key_ok FROM pg_temp.check_payloads((SELECT key FROM pg_temp.old_key));
-- A key row deleted by mistake is made again rather than leaving changes unsigned.
DELETE FROM zonegate._notify_key;
TRUNCATE pg_temp.seen;
DELETE FROM zonegate.user_zones WHERE user_id = 'u2' AND zone_id = 1;
SELECT pg_temp.receive(1);
SELECT body, mac_ok FROM pg_temp.check_payloads((SELECT key FROM zonegate._notify_key));
-- A REPEATABLE READ transaction that began before another session rotated the key signs with the
-- new key: the key is read as last committed, not as the transaction's snapshot has it (proxies
-- have moved to the new key by then and would refuse the old one).
SELECT dblink_connect('rotator', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_database(), session_user));
TRUNCATE pg_temp.old_key;
INSERT INTO pg_temp.old_key SELECT key FROM zonegate._notify_key;
TRUNCATE pg_temp.seen;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS snapshot_taken FROM zonegate.users;
SELECT dblink_exec('rotator', 'DO $$ BEGIN PERFORM zonegate.rotate_notify_key(); END $$');
INSERT INTO zonegate.user_zones VALUES ('u2', 11);
COMMIT;
SELECT pg_temp.receive(1);
SELECT (SELECT key FROM zonegate._notify_key) <> (SELECT key FROM pg_temp.old_key) AS rotated;
SELECT body, mac_ok AS signed_with_new_key
FROM pg_temp.check_payloads((SELECT key FROM zonegate._notify_key));
SELECT dblink_disconnect('rotator');
SELECT dblink_disconnect('listener');

-- 5. Who may do what: a plain login reads no key, cannot sign, reload or rotate (it can still
-- NOTIFY, which is why listeners verify); the proxy's login (zonegate_authenticator) reads the
-- key and nothing more; EXECUTE on rotate_notify_key() alone does not let a role rotate.
CREATE ROLE zg_notify_plain LOGIN;
CREATE ROLE zg_notify_proxy LOGIN IN ROLE zonegate_authenticator;
GRANT EXECUTE ON FUNCTION zonegate.rotate_notify_key() TO zg_notify_plain;
CREATE SCHEMA notify_test;
GRANT USAGE ON SCHEMA notify_test TO PUBLIC;
CREATE FUNCTION notify_test.attempts() RETURNS TABLE (what text, result text)
  LANGUAGE plpgsql AS $$
DECLARE
  w text;
  st text;
  msg text;
BEGIN
  FOREACH w IN ARRAY ARRAY[
    '(SELECT count(*) FROM zonegate._notify_key)', 'zonegate.notify_key()',
    'zonegate.reload_schema()', 'zonegate.rotate_notify_key()', 'zonegate.flush_caches()',
    'zonegate._notify(''{"op": "FLUSH", "users": "*"}'', false)',
    'zonegate._hmac_sha256(''k'', ''m'')', 'zonegate._notify_random_key()',
    'zonegate._notify_secret()', 'zonegate._notify_current_key()',
    'zonegate._notify_first_in_xact(''x'')',
    'pg_notify(''zonegate_changes'', ''reload schema'')'] LOOP
    what := w;
    BEGIN
      EXECUTE 'SELECT ' || w || '::text';
      result := 'ok';
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
      result := st || ': ' || msg;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION notify_test.attempts() TO PUBLIC;
\c - zg_notify_plain
\set SHOW_CONTEXT never
SELECT session_user, * FROM notify_test.attempts();
\c - zg_notify_proxy
\set SHOW_CONTEXT never
SELECT session_user, * FROM notify_test.attempts();
\c - postgres
\set SHOW_CONTEXT never
SELECT count(*) AS keys_after_attempts FROM zonegate._notify_key;
DROP SCHEMA notify_test CASCADE;
REVOKE EXECUTE ON FUNCTION zonegate.rotate_notify_key() FROM zg_notify_plain;
DROP ROLE zg_notify_plain;
DROP ROLE zg_notify_proxy;
DROP EXTENSION dblink;
