-- What a DBA sees from psql: per-function call counts and time (zonegate.function_stats, from
-- pg_stat_user_functions with track_functions = all) next to this backend's cache_stats().
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES (1, NULL, 'A', 'A', 'province'),
  (11, 1, 'A1', 'A1', 'regency');
SET track_functions = 'all';
SELECT zonegate.zone_path(11);
SELECT zonegate.zone_path(11);
SELECT zonegate.zone_path(1);
SELECT pg_stat_force_next_flush();
SELECT function, arguments, calls >= 3 AS counted, total_ms >= 0 AS timed, mean_ms >= 0 AS has_mean
FROM zonegate.function_stats WHERE function = 'zone_path';
SELECT cache, entries FROM zonegate.cache_stats() ORDER BY cache;
\d+ zonegate.function_stats
RESET track_functions;

-- A user entry gets each document only when it is asked for: the JSON text for
-- user_context_json() (the proxy), the jsonb for user_context(); RLS and the zone functions need
-- neither. The cache's byte count grows with each.
INSERT INTO zonegate.roles (name) VALUES ('staff');
INSERT INTO zonegate.users (user_id, role) VALUES ('u1', 'staff');
INSERT INTO zonegate.user_zones VALUES ('u1', 11);
SELECT zonegate.cache_reset();
SELECT zonegate.user_context_json('u1') IS NOT NULL AS text_form;
CREATE TEMP TABLE text_only AS SELECT entries, bytes FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT zonegate.user_context('u1') = zonegate.user_context_json('u1')::jsonb AS same_document;
CREATE TEMP TABLE with_jsonb AS SELECT entries, bytes FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT w.entries, w.bytes > t.bytes AS grew_by_the_jsonb FROM with_jsonb w, text_only t;
SELECT zonegate.user_context('u1') IS NOT NULL AS again;
SELECT s.bytes = w.bytes AS made_once
FROM zonegate.cache_stats() s, with_jsonb w WHERE s.cache = 'users';
-- A scope-only entry builds no document; asking for one reads the user again (one miss) and
-- keeps the documents the entry had, so a backend serving both kinds of callers keeps both.
SELECT zonegate.cache_reset();
SELECT zonegate.can_access('u1', 11) AS scope_only;
CREATE TEMP TABLE scope_entry AS
SELECT entries, bytes, misses FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT zonegate.user_context('u1') ->> 'user_id' AS jsonb_form;
CREATE TEMP TABLE jsonb_entry AS
SELECT entries, bytes, misses FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT j.entries, j.bytes > s.bytes AS grew_by_the_jsonb, j.misses - s.misses AS reads
FROM jsonb_entry j, scope_entry s;
SELECT zonegate.user_context_json('u1')::jsonb = zonegate.user_context('u1') AS same_document;
CREATE TEMP TABLE both_entry AS
SELECT entries, bytes, misses FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT b.entries, b.bytes > j.bytes AS grew_by_the_text, b.misses - j.misses AS reads
FROM both_entry b, jsonb_entry j;
SELECT zonegate.can_access('u1', 11) AS scope, zonegate.user_context('u1') IS NOT NULL AS jsonb,
       zonegate.user_context_json('u1') IS NOT NULL AS text;
SELECT c.misses - b.misses AS no_more_reads, c.bytes = b.bytes AS same_bytes
FROM zonegate.cache_stats() c, both_entry b WHERE c.cache = 'users';

-- A parallel query's leader reads with the statement's snapshot (it may not take a newer one):
-- a user entry read that way is good for its transaction only, like the tree. (Vacuous when the
-- workers took every row and the leader read nothing.)
SELECT zonegate.cache_reset();
SELECT zonegate.zone_path(11) IS NOT NULL AS tree_built_outside_parallel_mode;
CREATE TEMP TABLE before_parallel AS SELECT misses FROM zonegate.cache_stats() WHERE cache = 'users';
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = on;
SELECT count(*) AS visible FROM zonegate.zones WHERE zonegate.can_access('u1', id);
CREATE TEMP TABLE parallel_read AS SELECT misses FROM zonegate.cache_stats() WHERE cache = 'users';
COMMIT;
SELECT zonegate.can_access('u1', 11) AS next_transaction;
SELECT p.misses = b.misses OR s.misses = p.misses + 1 AS read_again
FROM zonegate.cache_stats() s, parallel_read p, before_parallel b WHERE s.cache = 'users';

-- The user cache stays within zonegate.user_cache_size: the least recently used entries go, the
-- answers stay right, an evicted user is read again and a recent one is a hit. Long ids (past the
-- short-string buffer) and documents asked for in a different form under eviction pressure too.
INSERT INTO zonegate.users (user_id, role)
SELECT 'evict-' || lpad(i::text, 40, '0'), 'staff' FROM generate_series(1, 300) i;
INSERT INTO zonegate.user_zones SELECT 'evict-' || lpad(i::text, 40, '0'), 11
FROM generate_series(1, 300) i;
SELECT zonegate.cache_reset();
SET zonegate.user_cache_size = '32kB';
SELECT count(*) FILTER (WHERE zonegate.user_context(u) ->> 'user_id' = u) AS right_documents,
       count(*) FILTER (WHERE zonegate.can_access(u, 11)) AS right_scopes
FROM (SELECT 'evict-' || lpad(i::text, 40, '0') AS u FROM generate_series(1, 300) i) s;
SELECT entries < 300 AS evicted_some, entries > 1 AS kept_some, bytes <= 32 * 1024 AS within_limit
FROM zonegate.cache_stats() WHERE cache = 'users';
CREATE TEMP TABLE after_fill AS SELECT hits, misses FROM zonegate.cache_stats() WHERE cache = 'users';
SELECT zonegate.user_context_json('evict-' || lpad('300', 40, '0'))::jsonb ->> 'user_id'
         = 'evict-' || lpad('300', 40, '0') AS recent_text_form;
SELECT zonegate.user_context('evict-' || lpad('300', 40, '0')) IS NOT NULL AS recent_jsonb_form;
SELECT zonegate.user_context('evict-' || lpad('1', 40, '0')) ->> 'user_id'
         = 'evict-' || lpad('1', 40, '0') AS evicted_read_again;
SELECT s.misses - a.misses AS misses, s.hits - a.hits AS hits,
       s.bytes <= 32 * 1024 AS within_limit
FROM zonegate.cache_stats() s, after_fill a WHERE s.cache = 'users';
-- The cache is a segmented LRU: a user used twice is protected, and a pass through many users
-- seen once goes through the probation segment without pushing it out (in a plain LRU the 300
-- users would have evicted it).
SELECT zonegate.cache_reset();
SELECT zonegate.can_access('u1', 11) AND zonegate.can_access('u1', 11) AS used_twice;
SELECT count(*) FILTER (WHERE zonegate.can_access(u, 11)) AS seen_once
FROM (SELECT 'evict-' || lpad(i::text, 40, '0') AS u FROM generate_series(1, 300) i) s;
CREATE TEMP TABLE after_pass AS SELECT hits, misses, entries FROM zonegate.cache_stats()
WHERE cache = 'users';
SELECT a.entries < 300 AS evicted_some, zonegate.can_access('u1', 11) AS still_there
FROM after_pass a;
SELECT s.misses - a.misses AS misses, s.hits - a.hits AS hits
FROM zonegate.cache_stats() s, after_pass a WHERE s.cache = 'users';
RESET zonegate.user_cache_size;
DELETE FROM zonegate.users WHERE user_id LIKE 'evict-%';

-- A miss reuses the roles earlier misses read, until zonegate.roles changes: a committed change
-- is seen by the next read of any user, an uncommitted one inside its transaction, a rolled-back
-- one never.
SELECT zonegate.cache_reset();
INSERT INTO zonegate.roles (name, permissions) VALUES ('rc', '{a}');
INSERT INTO zonegate.users (user_id, role) VALUES ('rc1', 'rc'), ('rc2', 'rc'), ('rc3', 'rc');
SELECT zonegate.user_context('rc1') -> 'permissions' AS first_read;
UPDATE zonegate.roles SET permissions = '{a,b}' WHERE name = 'rc';
SELECT zonegate.user_context('rc2') -> 'permissions' AS another_user_after_update,
       zonegate.user_context('rc1') -> 'permissions' AS first_user_after_update;
BEGIN;
UPDATE zonegate.roles SET permissions = '{c}', sees_all = true WHERE name = 'rc';
SELECT zonegate.user_context('rc3') -> 'permissions' AS in_transaction,
       zonegate.user_context('rc3') -> 'sees_all' AS sees_all_in_transaction;
ROLLBACK;
SELECT zonegate.user_context('rc3') -> 'permissions' AS after_rollback,
       zonegate.user_context('rc3') -> 'sees_all' AS sees_all_after_rollback,
       zonegate.user_context('rc1') -> 'permissions' AS first_user_after_rollback;
DELETE FROM zonegate.users WHERE role = 'rc';
DELETE FROM zonegate.roles WHERE name = 'rc';
