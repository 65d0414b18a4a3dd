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
