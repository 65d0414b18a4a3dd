-- Invalidation that cannot be bypassed: changes made with session_replication_role = replica
-- (logical replication apply, restores) still reach the cache; the apply worker, which fires
-- row triggers only, is covered by row triggers enabled for the replica role; and
-- flush_caches() reaches what went past every trigger.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (11, 1, 'A1', 'A one', 'regency'),
  (2, NULL, 'B', 'Region B', 'province');
INSERT INTO zonegate.roles VALUES ('staff', '{}', false);
INSERT INTO zonegate.users (user_id, role) VALUES ('u', 'staff');
INSERT INTO zonegate.user_zones VALUES ('u', 1);

-- How each trigger fires: the change and zone-check triggers ALWAYS, the row triggers for the
-- replica role only (A = always, R = replica, O = origin).
SELECT c.relname, t.tgname, t.tgenabled
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'zonegate'::regnamespace AND NOT t.tgisinternal
ORDER BY 1, 2;

-- A revoked grant is seen at once under the replica role, as under the origin role.
SELECT zonegate.can_access('u', 11) AS granted;
SET session_replication_role = replica;
DELETE FROM zonegate.user_zones WHERE user_id = 'u';
SELECT zonegate.can_access('u', 11) AS revoked_as_replica;
INSERT INTO zonegate.user_zones VALUES ('u', 2);
SELECT zonegate.visible_zones('u') AS granted_as_replica;
-- Zone checks hold as well: no cycle can be written as a replica.
UPDATE zonegate.zones SET parent_id = 11 WHERE id = 1;
RESET session_replication_role;

-- The apply worker fires no statement triggers: with them disabled, the row triggers alone
-- invalidate (the cache is warm before each change, so a missed invalidation would show).
BEGIN;
ALTER TABLE zonegate.user_zones DISABLE TRIGGER zz_user_zones_changed_insert;
ALTER TABLE zonegate.user_zones DISABLE TRIGGER zz_user_zones_changed_delete;
ALTER TABLE zonegate.zones DISABLE TRIGGER zz_zones_changed_insert;
SET LOCAL session_replication_role = replica;
SELECT zonegate.visible_zones('u') AS before_row_insert;
INSERT INTO zonegate.user_zones VALUES ('u', 1);
SELECT zonegate.visible_zones('u') AS after_row_insert;
DELETE FROM zonegate.user_zones WHERE user_id = 'u' AND zone_id = 2;
SELECT zonegate.visible_zones('u') AS after_row_delete;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES (12, 1, 'A2', 'A two', 'regency');
SELECT zonegate.visible_zones('u') AS after_zone_row_insert;
ROLLBACK;

-- Past every trigger (disabled ones, origin role): the cache is stale until flush_caches().
BEGIN;
ALTER TABLE zonegate.user_zones DISABLE TRIGGER USER;
SELECT zonegate.visible_zones('u') AS warm;
DELETE FROM zonegate.user_zones WHERE user_id = 'u';
SELECT zonegate.visible_zones('u') AS stale_past_triggers;
SELECT zonegate.flush_caches();
SELECT zonegate.visible_zones('u') AS after_flush;
ROLLBACK;
SELECT zonegate.visible_zones('u') AS rolled_back;
