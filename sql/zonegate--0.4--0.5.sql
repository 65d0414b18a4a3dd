-- zonegate 0.4 -> 0.5: the extension is safe to install into a shared cluster (docs/SECURITY.md).
--  * Identity: zonegate.user_id and request.jwt.claims are honoured only from sessions whose login
--    role is a superuser or a member of zonegate_authenticator (checked by the library); the
--    functions that answer for any user id are granted to that role.
--  * Every internal function (_*) is revoked from PUBLIC; the boundary check moves from a CHECK
--    constraint (which runs with the inserting role's privileges) to a trigger.
--  * Cache invalidation cannot be bypassed: the change triggers fire ALWAYS (also under
--    session_replication_role = replica), row triggers cover the logical replication apply worker
--    (which fires no statement triggers), and zonegate.flush_caches() flushes every backend.
\echo Use "ALTER EXTENSION zonegate UPDATE TO '0.5'" to load this file. \quit

-- The role of the login roles that may say whom a transaction runs for (zonegate-proxy's,
-- PostgREST's authenticator). Roles belong to the cluster, not to a database: it may exist
-- already (another database has the extension) and stays when the extension is dropped.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'zonegate_authenticator') THEN
    CREATE ROLE zonegate_authenticator NOLOGIN;
    COMMENT ON ROLE zonegate_authenticator IS
      'members may set zonegate.user_id / request.jwt.claims and read any user''s context (zonegate extension)';
  END IF;
END
$$;

-- Boundaries are checked by a trigger: a CHECK constraint calls its function with the privileges
-- of the inserting role, which would need EXECUTE on an internal function.
ALTER TABLE zonegate.zones DROP CONSTRAINT zones_boundary_valid;
ALTER FUNCTION zonegate._check_boundary(bigint, jsonb) STRICT;
REVOKE ALL ON FUNCTION zonegate._check_boundary(bigint, jsonb) FROM PUBLIC;

CREATE FUNCTION zonegate._zones_check_boundary() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM zonegate._check_boundary(NEW.id, NEW.boundary);
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION zonegate._zones_check_boundary() FROM PUBLIC;
CREATE TRIGGER zones_check_boundary BEFORE INSERT OR UPDATE OF boundary ON zonegate.zones
  FOR EACH ROW WHEN (NEW.boundary IS NOT NULL)
  EXECUTE FUNCTION zonegate._zones_check_boundary();

-- For the logical replication apply worker, which fires row triggers only: invalidates and
-- notifies per row (identical notifications within a transaction are sent once).
CREATE FUNCTION zonegate._row_changed() RETURNS trigger
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
  PERFORM pg_notify('zonegate_changes', jsonb_build_object(
    'table', TG_TABLE_NAME, 'op', TG_OP, 'users', affected)::text);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION zonegate._row_changed() FROM PUBLIC;

DO $$
DECLARE
  t text;
  op text;
BEGIN
  FOREACH t IN ARRAY ARRAY['zones', 'roles', 'users', 'user_zones'] LOOP
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
      EXECUTE format('ALTER TABLE zonegate.%I ENABLE ALWAYS TRIGGER %I', t,
                     format('zz_%s_changed_%s', t, op));
    END LOOP;
    EXECUTE format('CREATE TRIGGER zz_%1$s_changed_row AFTER INSERT OR UPDATE OR DELETE
                      ON zonegate.%1$I FOR EACH ROW EXECUTE FUNCTION zonegate._row_changed()', t);
    EXECUTE format('ALTER TABLE zonegate.%1$I ENABLE REPLICA TRIGGER zz_%1$s_changed_row', t);
  END LOOP;
END
$$;
-- The zone checks hold under any replication role too.
ALTER TABLE zonegate.zones ENABLE ALWAYS TRIGGER zones_check_boundary;
ALTER TABLE zonegate.zones ENABLE ALWAYS TRIGGER zones_check_cycles_insert;
ALTER TABLE zonegate.zones ENABLE ALWAYS TRIGGER zones_check_cycles_update;

-- Every backend of this database drops its cache at its next statement, and proxies flush
-- theirs: for changes made past the triggers (ALTER TABLE ... DISABLE TRIGGER, a restore).
CREATE FUNCTION zonegate.flush_caches() RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM zonegate._invalidate(t::regclass)
  FROM unnest(ARRAY['zonegate.zones', 'zonegate.roles', 'zonegate.users', 'zonegate.user_zones']) t;
  PERFORM pg_notify('zonegate_changes', jsonb_build_object(
    'table', '*', 'op', 'FLUSH', 'version', nextval('zonegate.change_seq'), 'users', '*',
    'at', (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::text);
END
$$;
REVOKE ALL ON FUNCTION zonegate.flush_caches() FROM PUBLIC;
COMMENT ON FUNCTION zonegate.flush_caches() IS
  'makes every backend of this database drop its zonegate cache at its next statement, and proxies flush theirs (at commit)';

-- Internal functions are nobody's but the extension's.
REVOKE ALL ON FUNCTION zonegate._check_zone_cycles() FROM PUBLIC;
REVOKE ALL ON FUNCTION zonegate._can_access_current_support(internal) FROM PUBLIC;

-- What the proxy's login role needs: any user's context and scope, and the zones' names.
GRANT EXECUTE ON FUNCTION zonegate.user_context(text), zonegate.user_context_json(text),
  zonegate.visible_zones(text), zonegate.can_access(text, bigint),
  zonegate.filter_zones(text, bigint[]) TO zonegate_authenticator;
GRANT SELECT ON zonegate.zones TO zonegate_authenticator;

COMMENT ON FUNCTION zonegate.current_user_id() IS
  'the user this transaction runs for: zonegate.user_id, else the sub claim of request.jwt.claims (values set for the transaction first); honoured only for superusers and members of zonegate_authenticator, an error for anyone else who sets one';
COMMENT ON FUNCTION zonegate.current_zones() IS
  'visible_zones(current_user_id()); empty without a user';
