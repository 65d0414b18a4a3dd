-- Fixture of test_postgrest_context.py: PostgREST's roles and request context on /rpc. A login
-- role as PostgREST's authenticator (zg_pgr_login: not a superuser, a member of
-- zonegate_authenticator and of the roles tokens may name), the roles tokens name, one it is not
-- a member of, a superuser role it is (wrongly) a member of, and the functions that report
-- what each call saw. Idempotent: every test module run starts from the same state.
DROP SCHEMA IF EXISTS pgr CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['zg_pgr_login', 'zg_pgr_anon', 'zg_pgr_user', 'zg_pgr_editor',
                           'zg_pgr_outsider', 'zg_pgr_super', 'zg_pgr_heir', 'zg_pgr "odd" ü']
  LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('DROP OWNED BY %I', r);
      EXECUTE format('DROP ROLE %I', r);
    END IF;
  END LOOP;
END $$;

CREATE ROLE zg_pgr_anon NOLOGIN;
CREATE ROLE zg_pgr_user NOLOGIN;
CREATE ROLE zg_pgr_editor NOLOGIN;
CREATE ROLE zg_pgr_outsider NOLOGIN;
CREATE ROLE zg_pgr_super NOLOGIN SUPERUSER;
CREATE ROLE zg_pgr_heir NOLOGIN IN ROLE zg_pgr_super;  -- inherits a superuser's privileges
CREATE ROLE "zg_pgr ""odd"" ü" NOLOGIN;                -- a name with a quote, a space, non-ASCII
CREATE ROLE zg_pgr_login LOGIN IN ROLE zonegate_authenticator;
GRANT zg_pgr_anon, zg_pgr_user, zg_pgr_editor, zg_pgr_super, zg_pgr_heir, "zg_pgr ""odd"" ü"
  TO zg_pgr_login;

CREATE SCHEMA pgr;
GRANT USAGE ON SCHEMA pgr TO zg_pgr_login, zg_pgr_anon, zg_pgr_user, zg_pgr_editor,
  zg_pgr_outsider, "zg_pgr ""odd"" ü";

CREATE TABLE pgr.writes (id serial PRIMARY KEY, v text NOT NULL,
                         token text UNIQUE DEFERRABLE INITIALLY DEFERRED);
GRANT SELECT, INSERT ON pgr.writes TO zg_pgr_login, zg_pgr_anon, zg_pgr_user, zg_pgr_editor;
GRANT USAGE ON SEQUENCE pgr.writes_id_seq TO zg_pgr_login, zg_pgr_anon, zg_pgr_user, zg_pgr_editor;

-- What the call saw: who it runs as and every request.* setting.
CREATE FUNCTION pgr.seen() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'current_user', current_user::text,
    'session_user', session_user::text,
    'user_id', current_setting('zonegate.user_id', true),
    'claims', current_setting('request.jwt.claims', true)::json,
    'method', current_setting('request.method', true),
    'path', current_setting('request.path', true),
    'headers', current_setting('request.headers', true)::json,
    'cookies', current_setting('request.cookies', true)::json,
    'read_only', current_setting('transaction_read_only'),
    'pre', current_setting('pgr.pre', true))
$$;

-- Sets the answer's status and headers as a PostgREST function does.
CREATE FUNCTION pgr.respond(status text DEFAULT NULL, headers text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF status IS NOT NULL THEN PERFORM set_config('response.status', status, true); END IF;
  IF headers IS NOT NULL THEN PERFORM set_config('response.headers', headers, true); END IF;
  RETURN 'done';
END $$;

CREATE FUNCTION pgr.respond_void(status text) RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM set_config('response.status', status, true);
END $$;

-- A VOLATILE function that writes: refused by READ ONLY over GET, committed over POST.
CREATE FUNCTION pgr.writer(v text, token text DEFAULT NULL) RETURNS bigint LANGUAGE sql VOLATILE AS $$
  INSERT INTO pgr.writes (v, token) VALUES (v, token);
  SELECT count(*) FROM pgr.writes WHERE writes.v = writer.v;
$$;

-- Only one role may call it.
CREATE FUNCTION pgr.editor_only() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'for editors' $$;
REVOKE EXECUTE ON FUNCTION pgr.editor_only() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgr.editor_only() TO zg_pgr_editor;

-- Cached per user (cache.rpc): its answer names the role it ran as.
CREATE FUNCTION pgr.cached_role() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_user::text $$;

-- rpc.pre_request: runs first, in the same transaction, as the request's role. A header asks
-- it to refuse; otherwise it leaves a setting the call reads.
CREATE FUNCTION pgr.pre_check() RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE h json := current_setting('request.headers', true)::json;
BEGIN
  IF h ->> 'x-block' = 'privilege' THEN
    RAISE insufficient_privilege USING MESSAGE = 'blocked by the pre-request function';
  ELSIF h ->> 'x-block' IS NOT NULL THEN
    RAISE EXCEPTION 'pre-request says no: %', h ->> 'x-block' USING HINT = 'ask nicely';
  END IF;
  PERFORM set_config('pgr.pre', 'ran as ' || current_user, true);
END $$;

-- Cached per user, with a header of its own (and a cookie when asked): the cache keeps the
-- header with the answer and never stores the cookie.
CREATE FUNCTION pgr.tagged(tag text, cookie boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM set_config('response.headers',
                     CASE WHEN cookie THEN json_build_array(json_build_object('X-Tag', tag),
                                                            json_build_object('Set-Cookie', 'c=' || tag))
                          ELSE json_build_array(json_build_object('X-Tag', tag)) END::text, true);
  RETURN current_user::text;
END $$;
