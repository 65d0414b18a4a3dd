-- The schema's clear errors for bad data: cycles, unknown parents/users/zones/roles,
-- malformed boundaries, non-object attributes. Every failed statement leaves the data intact.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS zonegate;
RESET client_min_messages;
\set SHOW_CONTEXT never
TRUNCATE zonegate.user_zones, zonegate.users, zonegate.roles, zonegate.zones CASCADE;

INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (1, NULL, 'A', 'Region A', 'province'),
  (2, NULL, 'B', 'Region B', 'province'),
  (11, 1, 'A.1', 'A one', 'regency'),
  (111, 11, 'A.1.1', 'A one one', 'district');

-- Cycles, direct and indirect, by insert and by update.
UPDATE zonegate.zones SET parent_id = 1 WHERE id = 1;
UPDATE zonegate.zones SET parent_id = 111 WHERE id = 1;
UPDATE zonegate.zones SET parent_id = 11 WHERE id = 11;
-- Two new zones pointing at each other in one statement.
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES
  (20, 21, 'X', 'x', 'regency'), (21, 20, 'Y', 'y', 'regency');
-- Re-parenting without a cycle is fine.
UPDATE zonegate.zones SET parent_id = 2 WHERE id = 11;
SELECT id, parent_id FROM zonegate.zones ORDER BY id;
UPDATE zonegate.zones SET parent_id = 1 WHERE id = 11;

-- Unknown parent, duplicate code, empty code/level, attributes that are not an object.
INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES (3, 99, 'C', 'c', 'province');
INSERT INTO zonegate.zones (id, code, name, level) VALUES (3, 'A', 'dup', 'province');
INSERT INTO zonegate.zones (id, code, name, level) VALUES (3, '', 'empty', 'province');
INSERT INTO zonegate.zones (id, code, name, level) VALUES (3, 'C', 'c', '');
INSERT INTO zonegate.zones (id, code, name, level, attributes) VALUES (3, 'C', 'c', 'x', '[1]');
-- Deleting a zone that still has children is refused.
DELETE FROM zonegate.zones WHERE id = 11;

-- Boundaries: valid Polygon with a hole and MultiPolygon are accepted ...
INSERT INTO zonegate.zones (id, parent_id, code, name, level, boundary) VALUES
  (4, NULL, 'D', 'poly', 'province',
   '{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[3,2],[3,3],[2,2]]]}'),
  (5, NULL, 'E', 'multi', 'province',
   '{"type":"MultiPolygon","coordinates":[[[[20,0],[21,0],[21,1],[20,0]]],[[[30,0],[31,0],[31,1],[30,0]]]]}');
-- ... and every malformed one is refused with the zone and the problem named.
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '"nope"');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Point","coordinates":[1,2]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon"}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon","coordinates":[[[0,0],[200,0],[1,1],[0,0]]]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon","coordinates":[[[0,0],[1,-91],[1,1],[0,0]]]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"Polygon","coordinates":[[[0,0],["a",0],[1,1],[0,0]]]}');
INSERT INTO zonegate.zones (id, code, name, level, boundary) VALUES (6, 'F', 'f', 'x', '{"type":"MultiPolygon","coordinates":[]}');
UPDATE zonegate.zones SET boundary = '{"type":"Polygon","coordinates":[]}' WHERE id = 1;

-- Roles, users, grants.
INSERT INTO zonegate.roles (name, permissions, sees_all) VALUES ('staff', '{read}', false);
INSERT INTO zonegate.roles (name) VALUES ('');
INSERT INTO zonegate.users (user_id, role) VALUES ('u1', 'no-such-role');
-- (updated_at given so the "failing row" detail is stable)
INSERT INTO zonegate.users (user_id, role, updated_at) VALUES ('', 'staff', '2026-01-01Z');
INSERT INTO zonegate.users (user_id, role, attributes, updated_at) VALUES ('u1', 'staff', '"x"', '2026-01-01Z');
INSERT INTO zonegate.users (user_id, role) VALUES ('u1', 'staff');
INSERT INTO zonegate.user_zones VALUES ('ghost', 1);
INSERT INTO zonegate.user_zones VALUES ('u1', 424242);
INSERT INTO zonegate.user_zones VALUES ('u1', 11), ('u1', 11);
INSERT INTO zonegate.user_zones VALUES ('u1', 11);
-- A role in use cannot be dropped; renaming it follows to its users.
DELETE FROM zonegate.roles WHERE name = 'staff';
UPDATE zonegate.roles SET name = 'field' WHERE name = 'staff';
SELECT user_id, role FROM zonegate.users;
-- Deleting a user removes their grants; deleting a zone removes grants on it.
INSERT INTO zonegate.users (user_id, role) VALUES ('u2', 'field');
INSERT INTO zonegate.user_zones VALUES ('u2', 111), ('u2', 2);
DELETE FROM zonegate.users WHERE user_id = 'u1';
DELETE FROM zonegate.zones WHERE id = 111;
SELECT * FROM zonegate.user_zones ORDER BY 1, 2;

-- After all the refused statements the data is as it was.
SELECT id, parent_id, code, level, boundary IS NOT NULL AS has_boundary FROM zonegate.zones ORDER BY id;
