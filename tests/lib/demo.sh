#!/usr/bin/env bash
# The embedded default (`make demo` / `make demo-stop`): a private Postgres cluster under
# .zonegate/, the zonegate extension, and zonegate-proxy on localhost:8080.
#
#   demo.sh start   start everything (or report what is already running); writes .zonegate/demo.env
#   demo.sh stop    stop the proxy and the cluster; leaves no process behind
#
# ZONEGATE_DEMO_DIR (default ./.zonegate), ZONEGATE_PORT (default 8080) and ZONEGATE_ADMIN_PORT
# (the admin listener: dashboard, /metrics; default 8081) move it elsewhere;
# ZONEGATE_DEMO_USERS (default 100000) and ZONEGATE_DEMO_SEED (42) shape the generated users.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO_DIR=${ZONEGATE_DEMO_DIR:-$ROOT/.zonegate}
PORT=${ZONEGATE_PORT:-8080}
ADMIN_PORT=${ZONEGATE_ADMIN_PORT:-8081}
PROXY_BIN=${ZONEGATE_PROXY_BIN:-$ROOT/build/proxy/zonegate-proxy}
CONFIG=$ROOT/zonegate.yaml
DEMO_USERS=${ZONEGATE_DEMO_USERS:-100000}
DEMO_SEED=${ZONEGATE_DEMO_SEED:-42}
DB=zonegate
PROXY_ROLE=zonegate_proxy  # the login role zonegate-proxy connects as
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)

say() { printf 'demo: %s\n' "$*"; }

# The cluster lives in the project unless the postgres user cannot reach it there.
cluster_dir() {
  if [ -f "$DEMO_DIR/pgdir" ]; then cat "$DEMO_DIR/pgdir"; return; fi
  local dir="$DEMO_DIR/pg"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$DEMO_DIR"; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-demo-pg.XXXXXX")
    say "the postgres user cannot enter $DEMO_DIR; the cluster lives in $dir" >&2
  fi
  echo "$dir" >"$DEMO_DIR/pgdir"
  echo "$dir"
}

# The Indonesian hierarchy, the Natural Earth countries above it and generated users, loaded
# once (the loaders are idempotent; a demo directory from before the countries gets them added).
load_data() {
  local zones users
  zones=$(psql -X -At -c "SELECT count(*) FROM zonegate.zones WHERE attributes ->> 'source' = 'idn-area-data'")
  if [ "$zones" -lt 91000 ]; then
    say "loading the Indonesian administrative hierarchy (idn-area-data)"
    "$ROOT/sql/demo/load_idn.sh" >/dev/null 2>"$DEMO_DIR/load.log" || { cat "$DEMO_DIR/load.log" >&2; exit 1; }
  fi
  if [ "$(psql -X -At -c "SELECT count(*) = 0 OR EXISTS (SELECT 1 FROM zonegate.zones WHERE level = 'province'
                AND parent_id IS NULL AND attributes ->> 'source' = 'idn-area-data')
              FROM zonegate.zones WHERE level = 'country'")" = t ]; then
    say "loading Natural Earth's countries above it (world-atlas 50m, public domain)"
    "$ROOT/sql/demo/load_world.sh" >>"$DEMO_DIR/load.log" 2>&1 || { cat "$DEMO_DIR/load.log" >&2; exit 1; }
  fi
  users=$(psql -X -At -c "SELECT count(*) FROM zonegate.users")
  if [ "$users" -lt "$DEMO_USERS" ]; then
    say "generating $DEMO_USERS users and their grants (seed $DEMO_SEED)"
    psql -X -q -v users="$DEMO_USERS" -v seed="$DEMO_SEED" -f "$ROOT/sql/demo/generate_users.sql" >/dev/null
  fi
}

# Random secrets for the demo, made once and kept in .zonegate/secrets.env (git-ignored).
ensure_secrets() {
  if [ ! -f "$DEMO_DIR/secrets.env" ]; then
    umask 077
    {
      echo "ZONEGATE_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "ZONEGATE_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$DEMO_DIR/secrets.env"
  fi
  set -a
  # shellcheck disable=SC1091
  . "$DEMO_DIR/secrets.env"
  set +a
}

proxy_running() {
  [ -f "$DEMO_DIR/proxy.pid" ] && kill -0 "$(cat "$DEMO_DIR/proxy.pid")" 2>/dev/null
}

wait_for_health() {
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then return 0; fi
    if ! proxy_running; then return 1; fi
    sleep 0.1
  done
  return 1
}

start() {
  local pgdir
  pgdir=$(cluster_dir)
  local port_opt=()
  # Restart on the port it had, so settings written earlier stay true.
  [ -f "$pgdir/env" ] && port_opt=(--port "$(. "$pgdir/env" && echo "$PGPORT")")
  say "PostgreSQL cluster in $pgdir"
  "$ROOT/tests/lib/pgcluster.sh" start "$pgdir" "${port_opt[@]}" >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "$pgdir/env"
  set +a
  export PGDATABASE=$DB
  export PGOPTIONS="-c client_min_messages=warning"
  if [ "$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 0 ]; then
    psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
  fi
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS zonegate" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -c "ALTER EXTENSION zonegate UPDATE" >/dev/null
  # The proxy logs in as its own role, a member of zonegate_authenticator: the trusted path for
  # the identity it sets (docs/SECURITY.md), not a superuser.
  psql -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PROXY_ROLE') THEN
        CREATE ROLE $PROXY_ROLE LOGIN;
      END IF; END \$\$; GRANT zonegate_authenticator TO $PROXY_ROLE" >/dev/null
  load_data
  ensure_secrets

  if proxy_running; then
    say "zonegate-proxy already running (pid $(cat "$DEMO_DIR/proxy.pid"))"
  else
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
      say "port $PORT is already in use by another program; set ZONEGATE_PORT to another port" >&2
      exit 1
    fi
    if curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/" 2>/dev/null; then
      say "port $ADMIN_PORT is already in use by another program; set ZONEGATE_ADMIN_PORT to another port" >&2
      exit 1
    fi
    say "starting zonegate-proxy on 127.0.0.1:$PORT"
    ZONEGATE_PORT=$PORT ZONEGATE_ADMIN_PORT=$ADMIN_PORT ZONEGATE_DATABASE_URL="host=$PGHOST port=$PGPORT dbname=$DB user=$PROXY_ROLE" \
      nohup "$PROXY_BIN" --config "$CONFIG" >>"$DEMO_DIR/proxy.log" 2>&1 &
    echo $! >"$DEMO_DIR/proxy.pid"
    if ! wait_for_health; then
      say "zonegate-proxy did not become healthy; last log lines:" >&2
      tail -n 20 "$DEMO_DIR/proxy.log" >&2
      exit 1
    fi
  fi

  local example
  example=$(psql -X -At -F ' ' -c "SELECT u.user_id, g.zone_id FROM zonegate.users u JOIN zonegate.user_zones g USING (user_id) WHERE u.role = 'regency_supervisor' AND u.active AND g.zone_id BETWEEN 3200 AND 3299 ORDER BY u.user_id LIMIT 1")
  EXAMPLE_USER=${example%% *}
  EXAMPLE_ZONE=${example##* }
  local service_token user_token
  service_token=$("$PROXY_BIN" token --config "$CONFIG" --sub demo-service --role service --ttl 604800)
  user_token=$("$PROXY_BIN" token --config "$CONFIG" --sub "$EXAMPLE_USER" --ttl 604800)
  cat >"$DEMO_DIR/demo.env" <<ENV
ZONEGATE_URL=http://127.0.0.1:$PORT
ZONEGATE_ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
ZONEGATE_ADMIN_TOKEN=$ZONEGATE_ADMIN_TOKEN
ZONEGATE_SERVICE_TOKEN=$service_token
ZONEGATE_USER_TOKEN=$user_token
ZONEGATE_USER_ID=$EXAMPLE_USER
ZONEGATE_CONFIG=$CONFIG
PGHOST=$PGHOST
PGPORT=$PGPORT
PGDATABASE=$DB
PGUSER=$PGUSER
ENV
  cat <<INFO

zonegate demo is running
  PostgreSQL   $PGHOST (port $PGPORT), database $DB, extension zonegate $(psql -X -At -c "SELECT zonegate.version()")
  proxy        http://127.0.0.1:$PORT   (pid $(cat "$DEMO_DIR/proxy.pid"), log $DEMO_DIR/proxy.log)
  dashboard    http://127.0.0.1:$ADMIN_PORT/admin/   (the admin listener; sign in with ZONEGATE_ADMIN_TOKEN from demo.env)
  metrics      http://127.0.0.1:$ADMIN_PORT/metrics   and   http://127.0.0.1:$ADMIN_PORT/health (in full)
  settings     $DEMO_DIR/demo.env   (source it: set -a; . $DEMO_DIR/demo.env; set +a)

  data         $(psql -X -At -c "SELECT format('%s zones (%s Natural Earth countries with boundaries; Indonesia''s %s provinces to villages below Indonesia)', count(*), count(*) FILTER (WHERE level = 'country'), count(*) FILTER (WHERE level <> 'country')) FROM zonegate.zones"), $(psql -X -At -c "SELECT count(*) FROM zonegate.users") users, $(psql -X -At -c "SELECT count(*) FROM zonegate.user_zones") grants

try
  curl -s http://127.0.0.1:$PORT/healthz
  set -a; . $DEMO_DIR/demo.env; set +a

  # over HTTP, as the example user (a regency supervisor in Jawa Barat) and as a service
  curl -s -H "Authorization: Bearer \$ZONEGATE_USER_TOKEN" \$ZONEGATE_URL/v1/me/context
  curl -s -H "Authorization: Bearer \$ZONEGATE_USER_TOKEN" -H 'Content-Type: application/json' -d '{"zones":[32]}' \$ZONEGATE_URL/v1/me/zones/filter
  curl -s -H "Authorization: Bearer \$ZONEGATE_SERVICE_TOKEN" \$ZONEGATE_URL/v1/users/\$ZONEGATE_USER_ID/context
  curl -s -H "Authorization: Bearer \$ZONEGATE_USER_TOKEN" "\$ZONEGATE_URL/rpc/zone_path?zone_id=$EXAMPLE_ZONE"
  # which zone is Jakarta in? (any valid token; only the countries have boundaries: Indonesia)
  curl -s -H "Authorization: Bearer \$ZONEGATE_USER_TOKEN" "\$ZONEGATE_URL/v1/zones/at?lon=106.8&lat=-6.2"

  # 1. everything a request needs to know about a user, in one call
  psql -c "SELECT jsonb_pretty(zonegate.user_context('$EXAMPLE_USER'))"
  # 2. the region filter: the user picks Jawa Barat (32); what may they see there?
  psql -c "SELECT cardinality(zonegate.filter_zones('$EXAMPLE_USER', '{32}'))"
  # 3. the per-row check an RLS policy makes: their own regency yes, Aceh (11) no
  psql -c "SET zonegate.user_id = '$EXAMPLE_USER'; SELECT zonegate.can_access_current($EXAMPLE_ZONE), zonegate.can_access_current(11)"

stop it all with: make demo-stop
INFO
}

stop() {
  if proxy_running; then
    local pid
    pid=$(cat "$DEMO_DIR/proxy.pid")
    say "stopping zonegate-proxy (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DEMO_DIR/proxy.pid"
  if [ -f "$DEMO_DIR/pgdir" ]; then
    local pgdir
    pgdir=$(cat "$DEMO_DIR/pgdir")
    if [ -f "$pgdir/data/postmaster.pid" ]; then
      say "stopping PostgreSQL in $pgdir"
      "$ROOT/tests/lib/pgcluster.sh" stop "$pgdir"
    fi
  fi
  say "stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
