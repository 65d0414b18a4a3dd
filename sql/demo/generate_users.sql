-- Generates demo users and grants shaped like a field organisation, deterministically:
--   admins (sees_all)            0.01% (at least 1)
--   province managers            0.4%  one province each
--   regency supervisors          5%    one regency, 10% of them two
--   field staff                  the rest, one district, 20% two, 5% three (same regency)
-- 1% of non-admins are inactive. User ids are UUIDs derived from the seed and the number, or with
-- ids=number the number itself ('1', '2', ...: what the benchmarks use, so pgbench can bind the id
-- as a parameter instead of computing it in SQL).
--   psql -v users=100000 -v seed=42 [-v ids=uuid|number] -f generate_users.sql
-- Needs zones loaded first (load_idn.sh). Grants go to provinces, regencies and districts by
-- level, wherever they sit: the countries of load_world.sh (Indonesia above the provinces) get
-- none; admins see them through sees_all. Running it again adds nothing that already exists.
\set ON_ERROR_STOP on
\if :{?users}
\else
  \set users 100000
\endif
\if :{?seed}
\else
  \set seed 42
\endif
\if :{?ids}
\else
  \set ids uuid
\endif
SELECT set_config('zonegate_demo.ids', :'ids', false) IS NULL AS unused \gset
DO $$
BEGIN
  IF current_setting('zonegate_demo.ids') NOT IN ('uuid', 'number') THEN
    RAISE EXCEPTION 'generate_users: ids must be uuid or number, not "%"',
      current_setting('zonegate_demo.ids');
  END IF;
END $$;

BEGIN;
INSERT INTO zonegate.roles (name, permissions, sees_all) VALUES
  ('admin', '{zones.read,zones.write,users.manage,reports.read,reports.approve}', true),
  ('province_manager', '{zones.read,reports.read,reports.approve,users.read}', false),
  ('regency_supervisor', '{zones.read,reports.read,reports.review}', false),
  ('field_staff', '{zones.read,reports.submit}', false)
ON CONFLICT (name) DO NOTHING;

-- A deterministic 32-bit hash of (seed, user number, purpose).
CREATE FUNCTION pg_temp.h(seed text, i bigint, salt text) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT ('x' || substr(md5(seed || '-' || i || '-' || salt), 1, 8))::bit(32)::bigint $$;

-- Provinces, regencies and districts numbered 1..n per level in code order (joins, not big
-- array subscripts: those would detoast the whole array on every access).
CREATE TEMP TABLE demo_zones ON COMMIT DROP AS
SELECT level, row_number() OVER (PARTITION BY level ORDER BY code) AS idx, id, parent_id
FROM zonegate.zones WHERE level IN ('province', 'regency', 'district');
CREATE INDEX ON demo_zones (level, idx);
CREATE TEMP TABLE demo_counts ON COMMIT DROP AS
SELECT level, count(*) AS n FROM demo_zones GROUP BY level;

DO $$
BEGIN
  IF (SELECT count(*) FROM demo_counts) < 3 THEN
    RAISE EXCEPTION 'generate_users: no province/regency/district zones; load zones first (sql/demo/load_idn.sh)';
  END IF;
END $$;

CREATE TEMP TABLE demo_users ON COMMIT DROP AS
WITH n AS (
  SELECT :users::bigint AS total,
         greatest(1, round(:users * 0.0001))::bigint AS admins,
         round(:users * 0.004)::bigint AS pms,
         round(:users * 0.05)::bigint AS rss
)
SELECT i,
       CASE WHEN :'ids' = 'number' THEN i::text
            ELSE md5('zonegate-demo-' || :'seed' || '-' || i)::uuid::text END AS user_id,
       CASE WHEN i <= admins THEN 'admin'
            WHEN i <= admins + pms THEN 'province_manager'
            WHEN i <= admins + pms + rss THEN 'regency_supervisor'
            ELSE 'field_staff' END AS role,
       i > admins AND pg_temp.h(:'seed', i, 'inactive') % 100 = 0 AS inactive
FROM n, generate_series(1, n.total) AS i;

INSERT INTO zonegate.users (user_id, email, display_name, role, active, attributes)
SELECT user_id, 'user' || i || '@demo.example.org', 'Demo User ' || i, role, NOT inactive,
       jsonb_build_object('employee_no', i, 'team', 'team-' || (pg_temp.h(:'seed', i, 'team') % 50))
FROM demo_users
ON CONFLICT (user_id) DO NOTHING;

WITH picks AS (
  SELECT user_id, role, pg_temp.h(:'seed', i, 'zone') AS hz, pg_temp.h(:'seed', i, 'extra') AS hx
  FROM demo_users WHERE role <> 'admin'
), wanted AS (
  SELECT p.user_id, 'province' AS level, 1 + p.hz % c.n AS idx
  FROM picks p JOIN demo_counts c ON c.level = 'province'
  WHERE p.role = 'province_manager'
  UNION ALL
  SELECT p.user_id, 'regency', 1 + (p.hz + k) % c.n
  FROM picks p JOIN demo_counts c ON c.level = 'regency',
       generate_series(0, CASE WHEN p.hx % 10 = 0 THEN 1 ELSE 0 END) AS k
  WHERE p.role = 'regency_supervisor'
)
INSERT INTO zonegate.user_zones (user_id, zone_id)
SELECT w.user_id, z.id FROM wanted w JOIN demo_zones z USING (level, idx)
UNION ALL
-- Field staff: one district, and the next one or two in code order when in the same regency.
SELECT p.user_id, zk.id
FROM picks p JOIN demo_counts c ON c.level = 'district'
JOIN demo_zones z0 ON z0.level = 'district' AND z0.idx = 1 + p.hz % c.n
CROSS JOIN LATERAL generate_series(0, CASE WHEN p.hx % 100 < 5 THEN 2
                                           WHEN p.hx % 100 < 20 THEN 1 ELSE 0 END) AS k
JOIN demo_zones zk ON zk.level = 'district' AND zk.idx = z0.idx + k AND zk.parent_id = z0.parent_id
WHERE p.role = 'field_staff'
ON CONFLICT DO NOTHING;
COMMIT;

SELECT format('generate_users: %s users (%s), %s grants', (SELECT count(*) FROM zonegate.users),
              (SELECT string_agg(role || ' ' || n, ', ' ORDER BY n)
               FROM (SELECT role, count(*) AS n FROM zonegate.users GROUP BY role) r),
              (SELECT count(*) FROM zonegate.user_zones)) AS summary \gset
\echo :summary
