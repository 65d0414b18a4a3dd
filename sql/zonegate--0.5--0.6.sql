-- zonegate 0.5 -> 0.6: signed change notifications (docs/SECURITY.md, "The change channel").
-- NOTIFY needs no privilege: any role could make proxies flush their caches, reload their /rpc
-- catalog or forge the lag metric. Every notification the extension sends now goes through one
-- SECURITY DEFINER function, zonegate._notify(), which adds a monotonic "version" and "at" and
-- appends an HMAC-SHA256 of the JSON text under a per-database key that only the extension
-- (superusers, SECURITY DEFINER code) and zonegate_authenticator (through notify_key()) read.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.6'" to load this file. \quit

-- 32 bytes from pg_strong_random(), and HMAC-SHA256 through PostgreSQL's own common/hmac.h.
CREATE FUNCTION zonegate._notify_random_key() RETURNS bytea
  LANGUAGE c VOLATILE STRICT
  AS 'MODULE_PATHNAME', 'zonegate_notify_random_key';
CREATE FUNCTION zonegate._hmac_sha256(key bytea, message text) RETURNS text
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'zonegate_hmac_sha256';
-- true the first time a body is seen in this transaction (rolled-back subtransactions forget
-- theirs): the row triggers send one notification per distinct change, as NOTIFY's own
-- deduplication did before each payload carried its own version.
CREATE FUNCTION zonegate._notify_first_in_xact(body text) RETURNS boolean
  LANGUAGE c VOLATILE STRICT
  AS 'MODULE_PATHNAME', 'zonegate_notify_first_in_xact';
-- The key row as last committed (latest snapshot), whatever this transaction's snapshot is.
CREATE FUNCTION zonegate._notify_current_key() RETURNS bytea
  LANGUAGE c VOLATILE
  AS 'MODULE_PATHNAME', 'zonegate_notify_current_key';
REVOKE ALL ON FUNCTION zonegate._notify_random_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate._notify_current_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate._hmac_sha256(bytea, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate._notify_first_in_xact(text) FROM PUBLIC;

-- The key: one row, readable by its owner (the superuser who created the extension) and
-- superusers only. Not marked with pg_extension_config_dump, so pg_dump never writes it: a
-- restore runs CREATE EXTENSION, which makes a new key.
CREATE TABLE zonegate._notify_key (
  id boolean PRIMARY KEY DEFAULT true CONSTRAINT notify_key_one_row CHECK (id),
  key bytea NOT NULL CONSTRAINT notify_key_32_bytes CHECK (octet_length(key) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON zonegate._notify_key FROM PUBLIC;
COMMENT ON TABLE zonegate._notify_key IS
  'the key that signs zonegate_changes notifications; rotate with zonegate.rotate_notify_key()';
INSERT INTO zonegate._notify_key (key) VALUES (zonegate._notify_random_key());

-- The key as last committed (a REPEATABLE READ transaction that began before a rotation signs
-- with the new key), made again if somebody deleted the row (signing must not stop working).
CREATE FUNCTION zonegate._notify_secret() RETURNS bytea
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  k bytea;
BEGIN
  k := zonegate._notify_current_key();
  IF k IS NULL THEN
    INSERT INTO zonegate._notify_key (key) VALUES (zonegate._notify_random_key())
      ON CONFLICT (id) DO NOTHING;
    k := zonegate._notify_current_key();
    IF k IS NULL THEN
      RAISE EXCEPTION 'zonegate has no notification key' USING ERRCODE = 'object_not_in_prerequisite_state',
        HINT = 'SELECT zonegate.rotate_notify_key() as a superuser';
    END IF;
  END IF;
  RETURN k;
END
$$;
REVOKE ALL ON FUNCTION zonegate._notify_secret() FROM PUBLIC;

-- The one way the extension notifies: body (a JSON object without version, at and mac) gets
-- "version" (nextval of change_seq) and "at" (epoch milliseconds), and the payload is its JSON
-- text with ,"mac":"<64 hex>"} in place of the final }, where mac = HMAC-SHA256(key, that JSON
-- text). A users list that would not fit in one NOTIFY (8000 bytes) becomes "*" (everybody).
-- once_per_transaction: send a body at most once per transaction (the row triggers).
CREATE FUNCTION zonegate._notify(body jsonb, once_per_transaction boolean DEFAULT false)
  RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  msg text;
  k bytea;
BEGIN
  IF jsonb_typeof(body) IS DISTINCT FROM 'object' OR body ?| ARRAY['version', 'at', 'mac'] THEN
    RAISE EXCEPTION 'a notification body is a JSON object without version, at or mac'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF once_per_transaction AND NOT zonegate._notify_first_in_xact(body::text) THEN
    RETURN;
  END IF;
  k := zonegate._notify_secret();
  msg := (body || jsonb_build_object('version', nextval('zonegate.change_seq'),
                                     'at', (extract(epoch FROM clock_timestamp()) * 1000)::bigint))::text;
  -- The payload is 73 bytes longer than msg; NOTIFY takes fewer than 8000.
  IF octet_length(msg) + 73 >= 8000 AND jsonb_typeof(body -> 'users') = 'array' THEN
    msg := (msg::jsonb || jsonb_build_object('users', '*'))::text;
  END IF;
  PERFORM pg_notify('zonegate_changes',
                    left(msg, -1) || ',"mac":"' || zonegate._hmac_sha256(k, msg) || '"}');
END
$$;
REVOKE ALL ON FUNCTION zonegate._notify(jsonb, boolean) FROM PUBLIC;

-- The statement triggers: one signed notification per changing statement.
CREATE OR REPLACE FUNCTION zonegate._table_changed() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  affected jsonb;
  n bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT count(*) INTO n FROM new_rows;
  ELSIF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
    SELECT count(*) INTO n FROM old_rows;
  ELSE
    n := -1;  -- TRUNCATE: no transition table, always a change
  END IF;
  IF n = 0 THEN
    RETURN NULL;  -- the statement changed nothing
  END IF;
  PERFORM zonegate._invalidate(TG_RELID);
  IF TG_TABLE_NAME IN ('users', 'user_zones') AND TG_OP <> 'TRUNCATE' AND n <= 200 THEN
    IF TG_OP = 'INSERT' THEN
      SELECT jsonb_agg(DISTINCT user_id ORDER BY user_id) INTO affected FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
      SELECT jsonb_agg(DISTINCT user_id ORDER BY user_id) INTO affected FROM old_rows;
    ELSE
      SELECT jsonb_agg(DISTINCT u ORDER BY u) INTO affected
      FROM (SELECT user_id AS u FROM old_rows UNION SELECT user_id FROM new_rows) s;
    END IF;
  END IF;
  PERFORM zonegate._notify(jsonb_build_object(
    'table', TG_TABLE_NAME, 'op', TG_OP, 'users', coalesce(affected, '"*"'::jsonb)));
  RETURN NULL;
END
$$;

-- The row triggers (logical replication apply): signed too, now with version and at; each
-- distinct change once per transaction.
CREATE OR REPLACE FUNCTION zonegate._row_changed() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  affected jsonb := '"*"';
BEGIN
  PERFORM zonegate._invalidate(TG_RELID);
  IF TG_TABLE_NAME IN ('users', 'user_zones') THEN
    IF TG_OP = 'DELETE' THEN
      affected := jsonb_build_array(OLD.user_id);
    ELSIF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
      affected := jsonb_build_array(OLD.user_id, NEW.user_id);
    ELSE
      affected := jsonb_build_array(NEW.user_id);
    END IF;
  END IF;
  PERFORM zonegate._notify(jsonb_build_object('table', TG_TABLE_NAME, 'op', TG_OP,
                                              'users', affected), true);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION zonegate.flush_caches() RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM zonegate._invalidate(t::regclass)
  FROM unnest(ARRAY['zonegate.zones', 'zonegate.roles', 'zonegate.users', 'zonegate.user_zones']) t;
  PERFORM zonegate._notify(jsonb_build_object('table', '*', 'op', 'FLUSH', 'users', '*'));
END
$$;

-- The key for listeners that verify notifications (zonegate-proxy's control connection).
CREATE FUNCTION zonegate.notify_key() RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN encode(zonegate._notify_secret(), 'hex');
END
$$;
REVOKE ALL ON FUNCTION zonegate.notify_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonegate.notify_key() TO zonegate_authenticator;
COMMENT ON FUNCTION zonegate.notify_key() IS
  'the key (hex) that signs zonegate_changes notifications; for zonegate_authenticator (the proxy''s login)';

-- PostgREST's NOTIFY pgrst, 'reload schema', signed: proxies reload their /rpc catalog at commit.
-- The empty users list makes proxies that predate 0.6 drop nothing.
CREATE FUNCTION zonegate.reload_schema() RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM zonegate._notify(jsonb_build_object('op', 'RELOAD_SCHEMA', 'users', '[]'::jsonb));
END
$$;
REVOKE ALL ON FUNCTION zonegate.reload_schema() FROM PUBLIC;
COMMENT ON FUNCTION zonegate.reload_schema() IS
  'makes every proxy reload its /rpc catalog (at commit): a signed RELOAD_SCHEMA notification';

-- A new key. Not SECURITY DEFINER: it writes the key table, which only superusers and the
-- extension's owner may, whoever is granted EXECUTE. The lock waits for every transaction that
-- signed with the old key to end (they read the key under ACCESS SHARE, held to their end), so
-- all their notifications are queued before the first one signed with the new key.
CREATE FUNCTION zonegate.rotate_notify_key() RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  LOCK TABLE zonegate._notify_key IN ACCESS EXCLUSIVE MODE;
  INSERT INTO zonegate._notify_key (key) VALUES (zonegate._notify_random_key())
    ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key, created_at = now();
END
$$;
REVOKE ALL ON FUNCTION zonegate.rotate_notify_key() FROM PUBLIC;
COMMENT ON FUNCTION zonegate.rotate_notify_key() IS
  'replaces the key that signs zonegate_changes notifications (superuser or the extension''s owner); proxies fetch it on the next notification';
