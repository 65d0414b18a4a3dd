-- Application tables read by cached /rpc functions (tests/integration/test_app_table_cache.py):
-- appdata holds the app's data, appapi the functions /rpc exposes. Users and a zone of their own
-- in zonegate's tables, beside whatever other suites put there.
DROP SCHEMA IF EXISTS appapi CASCADE;
DROP SCHEMA IF EXISTS appdata CASCADE;
CREATE SCHEMA appdata;
CREATE SCHEMA appapi;
CREATE TABLE appdata.items (id int PRIMARY KEY, name text NOT NULL, price numeric NOT NULL);
CREATE TABLE appdata.tags (id int PRIMARY KEY, label text NOT NULL);
CREATE TABLE appdata.notes (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO appdata.items VALUES (1, 'pen', 2.50), (2, 'ink', 7.00);
INSERT INTO appdata.tags VALUES (1, 'office');
INSERT INTO appdata.notes VALUES (1, 'first');

CREATE FUNCTION appapi.item(item_id int) RETURNS jsonb LANGUAGE sql STABLE
  AS 'SELECT to_jsonb(i) FROM appdata.items i WHERE i.id = item_id';
CREATE FUNCTION appapi.item_count() RETURNS bigint LANGUAGE sql STABLE
  AS 'SELECT count(*) FROM appdata.items';
CREATE FUNCTION appapi.tag_labels() RETURNS text LANGUAGE sql STABLE
  AS 'SELECT string_agg(label, '','' ORDER BY id) FROM appdata.tags';
CREATE FUNCTION appapi.note(note_id int) RETURNS text LANGUAGE sql STABLE
  AS 'SELECT body FROM appdata.notes WHERE id = note_id';
-- Reads zonegate's tables: every user's grants, whoever asks (a shared answer).
CREATE FUNCTION appapi.grant_count() RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT count(*) FROM zonegate.user_zones WHERE user_id LIKE 'apt-%' $$;

INSERT INTO zonegate.zones (id, parent_id, code, name, level) VALUES (9001, NULL, 'APT', 'Apt', 'province')
  ON CONFLICT (id) DO NOTHING;
INSERT INTO zonegate.roles VALUES ('apt-staff', '{}', false) ON CONFLICT (name) DO NOTHING;
INSERT INTO zonegate.users (user_id, role) VALUES ('apt-u1', 'apt-staff'), ('apt-u2', 'apt-staff')
  ON CONFLICT (user_id) DO NOTHING;
DELETE FROM zonegate.user_zones WHERE user_id LIKE 'apt-%';

SELECT zonegate.watch_table('appdata.items');
SELECT zonegate.watch_table('appdata.tags');
