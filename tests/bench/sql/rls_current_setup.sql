-- A self-contained fixture for the per-row cost of can_access_current() (the RLS check):
-- a 3-level tree of 10,101 zones, 1,000 users granted one regency each, 200,000 rows.
-- Used by tests/bench/ab_extension.sh rls_current (docs/BENCHMARKS.md).
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;
INSERT INTO zonegate.zones (id, parent_id, code, name, level)
SELECT p, NULL, 'p' || p, 'province ' || p, 'province' FROM generate_series(1, 100) p;
INSERT INTO zonegate.zones (id, parent_id, code, name, level)
SELECT 1000 + r, 1 + r % 100, 'r' || r, 'regency ' || r, 'regency' FROM generate_series(1, 10000) r;
INSERT INTO zonegate.roles VALUES ('staff', '{}', false);
INSERT INTO zonegate.users (user_id, role) SELECT k::text, 'staff' FROM generate_series(1, 1000) k;
INSERT INTO zonegate.user_zones SELECT k::text, 1000 + (k * 7919) % 10000 + 1 FROM generate_series(1, 1000) k;
DROP SCHEMA IF EXISTS bench_rls CASCADE;
CREATE SCHEMA bench_rls;
CREATE TABLE bench_rls.rows AS SELECT (1000 + (g::bigint * 104729) % 10000 + 1)::bigint AS zone_id FROM generate_series(1, 200000) g;
ANALYZE bench_rls.rows;
