-- Every SQL function on a small fixture, with NULL and unknown inputs, the region filter story,
-- sees_all and inactive users, the current-user functions, privileges, and cache coherence
-- inside one session (including rollbacks and savepoints).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;

--   A(1) > A1(11) > A1a(111), A1b(112);  A(1) > A2(12) > A2a(121)
--   B(2) > B1(21) > B1a(211)
--   C(3)
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'), (2, NULL, 'B', 'Region B', 'province'),
  (3, NULL, 'C', 'Region C', 'province'),
  (11, 1, 'A1', 'A one', 'regency'), (12, 1, 'A2', 'A two', 'regency'),
  (21, 2, 'B1', 'B one', 'regency'),
  (111, 11, 'A1a', 'A one a', 'district'), (112, 11, 'A1b', 'A one b', 'district'),
  (121, 12, 'A2a', 'A two a', 'district'), (211, 21, 'B1a', 'B one a', 'district');
INSERT INTO zonegate.roles VALUES
  ('admin', '{read,write,admin}', true), ('manager', '{read,approve}', false),
  ('staff', '{read}', false);
INSERT INTO zonegate.users (user_id, email, display_name, role, active, attributes) VALUES
  ('adm', 'adm@example.org', 'Admin', 'admin', true, '{}'),
  ('mgr', 'mgr@example.org', 'Manager of A', 'manager', true, '{"team": "a"}'),
  ('sup', NULL, NULL, 'staff', true, '{}'),
  ('gone', 'gone@example.org', 'Inactive', 'staff', false, '{}'),
  ('bare', NULL, NULL, 'staff', true, '{}');
INSERT INTO zonegate.user_zones VALUES ('mgr', 1), ('sup', 11), ('sup', 21), ('gone', 1);

-- user_context: a manager, a user with two grants in two regions, an admin; NULL for inactive,
-- unknown and NULL users.
SELECT zonegate.user_context('mgr') - 'cache_version' AS mgr;
SELECT zonegate.user_context('sup') -> 'grants' AS sup_grants,
       zonegate.user_context('sup') -> 'regions' AS sup_regions,
       zonegate.user_context('sup') -> 'visible_zone_count' AS sup_count;
SELECT zonegate.user_context('adm') -> 'sees_all' AS adm_sees_all,
       zonegate.user_context('adm') -> 'grants' AS adm_grants,
       jsonb_array_length(zonegate.user_context('adm') -> 'regions') AS adm_regions,
       zonegate.user_context('adm') -> 'visible_zone_count' AS adm_count;
SELECT (zonegate.user_context('sup') ->> 'cache_version')::bigint > 0 AS has_version;
-- cache_version is zonegate.change_seq as of the last change before the document was built: a
-- committed change to any zonegate table moves it for documents built afterwards, also for a user
-- whose own row did not change (the backend reads the sequence once per invalidation).
SELECT (zonegate.user_context('sup') ->> 'cache_version')::bigint
       = (SELECT last_value FROM zonegate.change_seq) AS version_is_current;
UPDATE zonegate.users SET display_name = display_name WHERE user_id = 'mgr';
SELECT (zonegate.user_context('sup') ->> 'cache_version')::bigint
       = (SELECT last_value FROM zonegate.change_seq) AS version_follows_user_change;
UPDATE zonegate.zones SET name = name WHERE id = 1;
SELECT (zonegate.user_context_json('sup')::jsonb ->> 'cache_version')::bigint
       = (SELECT last_value FROM zonegate.change_seq) AS version_follows_zone_change;
-- The json text form: the same document, user_id first, NULL where user_context is NULL.
SELECT zonegate.user_context_json(u)::jsonb = zonegate.user_context(u) AS same_document,
       left(zonegate.user_context_json(u)::text, 11) AS starts_with
FROM unnest(ARRAY['adm', 'mgr', 'sup']) u;
-- The text document and the jsonb one agree for every kind of JSON an attribute or a name can
-- hold (escapes, astral characters, numbers past int64, nesting, keys jsonb reorders).
INSERT INTO zonegate.users (user_id, email, display_name, role, attributes) VALUES
  ('odd', 'odd@example.org', E'Tab\t"quoted" \\ é ☃ 😀', 'staff',
   '{"n": 1.50, "e": 1e3, "small": 1e-20, "big": 123456789012345678901234567890, "neg": -7,
     "max": 9223372036854775807, "over": 9223372036854775808, "min": -9223372036854775808,
     "zero": -0, "s": "line\nbreak \u2603 \ud83d\ude00 \/ \u001f", "empty": {}, "none": [],
     "nested": {"a": [1, {"b": null}, true, false, [[]]]}, "dup": 1, "Dup": 2, "": ""}');
SELECT zonegate.user_context('odd') = zonegate.user_context_json('odd')::jsonb AS same_as_jsonb_in,
       zonegate.user_context('odd')::text = zonegate.user_context_json('odd')::jsonb::text
         AS same_text;
SELECT zonegate.user_context('odd') -> 'attributes' AS attributes,
       zonegate.user_context('odd') -> 'display_name' AS display_name;
DELETE FROM zonegate.users WHERE user_id = 'odd';
SELECT zonegate.user_context_json('gone') IS NULL AS inactive_null,
       zonegate.user_context_json('nobody') IS NULL AS unknown_null;
SELECT zonegate.user_context('gone') IS NULL AS inactive_null,
       zonegate.user_context('nobody') IS NULL AS unknown_null,
       zonegate.user_context(NULL) IS NULL AS null_null,
       zonegate.user_context('bare') -> 'visible_zone_count' AS bare_count;

-- visible_zones: sorted; admin sees all; empty for inactive and unknown.
SELECT u, zonegate.visible_zones(u) FROM unnest(ARRAY['adm', 'mgr', 'sup', 'gone', 'nobody', 'bare']) u;
SELECT zonegate.visible_zones(NULL) IS NULL AS null_user;

-- can_access: the whole matrix for sup, plus edge cases.
SELECT z, zonegate.can_access('sup', z) FROM unnest(ARRAY[1, 2, 3, 11, 12, 21, 111, 112, 121, 211, 999]) z;
SELECT zonegate.can_access('adm', 121) AS admin_any, zonegate.can_access('adm', 999) AS admin_unknown_zone,
       zonegate.can_access('gone', 11) AS inactive, zonegate.can_access('nobody', 1) AS unknown_user,
       zonegate.can_access(NULL, 1) IS NULL AS null_user, zonegate.can_access('sup', NULL) IS NULL AS null_zone;

-- filter_zones, the region filter story: sup picks region A, then region B, then A and B.
SELECT zonegate.filter_zones('sup', '{1}') AS region_a;
SELECT zonegate.filter_zones('sup', '{2}') AS region_b;
SELECT zonegate.filter_zones('sup', '{1,2}') AS regions_a_and_b;
-- A region the user cannot see, a district inside their scope, and their union.
SELECT zonegate.filter_zones('sup', '{3}') AS region_c, zonegate.filter_zones('sup', '{112}') AS one_district,
       zonegate.filter_zones('sup', '{3,112}') AS both;
-- NULL, empty and all-NULL requests mean everything visible; unknown zones select nothing.
SELECT zonegate.filter_zones('sup', NULL) AS null_req, zonegate.filter_zones('sup', '{}') AS empty_req,
       zonegate.filter_zones('sup', '{NULL}') AS null_elems, zonegate.filter_zones('sup', '{999}') AS unknown,
       zonegate.filter_zones('sup', '{999,211,211}') AS unknown_and_dup;
SELECT zonegate.filter_zones('mgr', '{11,12}') AS mgr_two_regencies, zonegate.filter_zones('adm', '{2}') AS adm_b,
       zonegate.filter_zones('gone', '{1}') AS inactive, zonegate.filter_zones(NULL, '{1}') AS null_user;
SELECT zonegate.filter_zones('sup', '{{1},{2}}');

-- zone_path.
SELECT zonegate.zone_path(211) AS deep, zonegate.zone_path(3) AS root, zonegate.zone_path(999) IS NULL AS unknown,
       zonegate.zone_path(NULL) IS NULL AS null_zone;

-- The current user: zonegate.user_id first, else request.jwt.claims ->> 'sub', else NULL.
SELECT zonegate.current_user_id() IS NULL AS nobody, zonegate.current_zones() AS no_zones,
       zonegate.can_access_current(1) AS no_access;
SET request.jwt.claims = '{"sub": "mgr", "role": "authenticated"}';
SELECT zonegate.current_user_id() AS from_claims, zonegate.current_zones(), zonegate.can_access_current(121);
SET zonegate.user_id = 'sup';
SELECT zonegate.current_user_id() AS guc_wins, zonegate.current_zones(), zonegate.can_access_current(121);
SET zonegate.user_id = '';
-- Claims that are not a JSON object name nobody for sure: an error, not a guess.
SET request.jwt.claims = 'not json';
SELECT zonegate.current_user_id() IS NULL AS malformed_claims;
SET request.jwt.claims = '{"sub": 42}';
SELECT zonegate.current_user_id() IS NULL AS non_string_sub;
RESET request.jwt.claims;
SET zonegate.user_id = 'gone';
SELECT zonegate.current_zones() AS inactive_zones, zonegate.can_access_current(1) AS inactive_access;
SET zonegate.user_id = 'adm';
SELECT cardinality(zonegate.current_zones()) AS admin_zones, zonegate.can_access_current(211) AS admin_access;
-- Set per transaction, as the proxy does.
BEGIN;
SELECT set_config('zonegate.user_id', 'sup', true);
SELECT zonegate.current_zones();
COMMIT;
SELECT zonegate.current_user_id() AS after_commit;
RESET zonegate.user_id;

-- Coherence inside one session: a change is seen by the next statement, a rollback undoes it.
SELECT zonegate.visible_zones('bare') AS before;
BEGIN;
INSERT INTO zonegate.user_zones VALUES ('bare', 12);
SELECT zonegate.visible_zones('bare') AS in_txn;
ROLLBACK;
SELECT zonegate.visible_zones('bare') AS after_rollback;
BEGIN;
INSERT INTO zonegate.user_zones VALUES ('bare', 21);
SAVEPOINT s1;
INSERT INTO zonegate.user_zones VALUES ('bare', 12);
SELECT zonegate.visible_zones('bare') AS before_rollback_to;
ROLLBACK TO SAVEPOINT s1;
SELECT zonegate.visible_zones('bare') AS after_rollback_to;
COMMIT;
SELECT zonegate.visible_zones('bare') AS committed;
-- New zones, re-parenting, deactivation and role changes show at once.
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES (212, 21, 'B1b', 'B one b', 'district');
SELECT zonegate.visible_zones('bare') AS new_zone;
UPDATE zonegate.zones SET parent_id = 12 WHERE id = 21;
SELECT zonegate.visible_zones('mgr') AS mgr_after_reparent, zonegate.zone_path(212) AS path;
UPDATE zonegate.users SET active = false WHERE user_id = 'bare';
SELECT zonegate.user_context('bare') IS NULL AS deactivated, zonegate.visible_zones('bare');
UPDATE zonegate.roles SET sees_all = true WHERE name = 'manager';
SELECT zonegate.user_context('mgr') -> 'visible_zone_count' AS manager_sees_all;
DELETE FROM zonegate.user_zones;
SELECT zonegate.visible_zones('sup') AS no_grants;
TRUNCATE zonegate.user_zones, zonegate.users;
SELECT zonegate.user_context('mgr') IS NULL AS truncated;

-- cache_stats: one row per cache, counting what happened above.
SELECT cache, hits > 0 AS hits, misses > 0 AS misses, invalidations > 0 AS invalidations,
       rebuilds > 0 AS rebuilds, entries >= 0 AS entries,
       -- 'mgr' is unknown since the TRUNCATE: an unknown id takes no entry and no bytes
       CASE cache WHEN 'users' THEN entries = 0 AND bytes = 0 ELSE bytes > 0 END AS bytes,
       last_rebuild_at IS NOT NULL AS rebuilt_at
FROM zonegate.cache_stats() WHERE cache IN ('zones', 'users');
SELECT zonegate.cache_reset();
SELECT zonegate.zone_path(212) AS after_reset;

-- Privileges: functions taking any user id are not for PUBLIC; the current-user ones are, and
-- they work for a role that cannot read zonegate's tables itself. The identity is honoured here
-- because the session user (a superuser) is trusted, as the proxy's login is when it switches
-- to a web role; a plain login choosing an identity is refused (security.sql).
INSERT INTO zonegate.users (user_id, role) VALUES ('sup', 'staff');
INSERT INTO zonegate.user_zones VALUES ('sup', 11);
CREATE ROLE zonegate_regress_app;
SET ROLE zonegate_regress_app;
SELECT zonegate.user_context('adm');
SELECT zonegate.user_context_json('adm');
SELECT zonegate.can_access('adm', 1);
SELECT count(*) FROM zonegate.users;
SET zonegate.user_id = 'sup';
SELECT zonegate.current_zones() AS app_zones, zonegate.zone_path(111) AS app_path,
       zonegate.can_access_current(112) AS app_access;
RESET zonegate.user_id;
RESET ROLE;
DROP ROLE zonegate_regress_app;
