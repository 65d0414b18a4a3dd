#!/usr/bin/env bash
# The one helper that starts and stops a throwaway PostgreSQL cluster for tests, demos and benches.
#
#   pgcluster.sh start DIR [--name NAME] [--port N] [--preload LIBS]  initdb in DIR, start on a
#                                   free port with the socket in DIR; prints the env file DIR/env
#                                   (PGHOST, PGPORT, ...). --preload: LD_PRELOAD for the server
#                                   (the ASan runtime for the extension's sanitizer build), with
#                                   ASAN_OPTIONS for a server (no leak checks: Postgres frees
#                                   by exiting)
#   pgcluster.sh replica DIR --from PRIMARY_DIR [--port N]
#                                   a streaming hot standby of the running cluster in PRIMARY_DIR
#                                   (pg_basebackup -R), started on a free port with its socket in
#                                   DIR; prints DIR/env like start
#   pgcluster.sh stop DIR           stop the cluster (fast, then immediate) and keep DIR
#   pgcluster.sh destroy DIR        stop it and remove DIR
#   pgcluster.sh run -- CMD...      temp cluster around CMD; always stopped and removed afterwards,
#                                   also on failure or Ctrl-C. CMD sees PGHOST/PGPORT/PGUSER/PGDATA.
#
# Run as root, the server runs as the `postgres` user via runuser (Postgres refuses root).
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
SUPERUSER=postgres

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  # Ask the kernel for a free port; the caller retries if another process takes it first.
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd_start() {
  local dir=$1; shift
  local port="" preload=""
  while [ $# -gt 0 ]; do
    case $1 in
      --port) port=$2; shift 2 ;;
      --preload) preload=$2; shift 2 ;;
      *) echo "pgcluster: unknown option $1" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U "$SUPERUSER" --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
# throwaway cluster settings (tests/lib/pgcluster.sh)
unix_socket_directories = '$dir'
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 256MB
shared_preload_libraries = 'pg_stat_statements'
log_min_messages = warning
log_line_prefix = '%m [%p] '
max_wal_senders = 4
wal_level = replica
CONF
  fi
  if [ -f "$dir/env" ] && as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "$dir/env"  # already running: starting is idempotent
    return 0
  fi
  local tries=0
  while :; do
    local p=${port:-$(free_port)}
    local run_env=()
    if [ -n "$preload" ]; then
      run_env=(env "LD_PRELOAD=$preload"
        "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=1")
    fi
    if as_owner "${run_env[@]}" "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $p" \
        -w -t 60 start >/dev/null 2>&1; then
      port=$p
      break
    fi
    tries=$((tries + 1))
    if [ -n "${port:-}" ] || [ $tries -ge 5 ]; then
      echo "pgcluster: server did not start; log follows" >&2
      tail -n 30 "$dir/server.log" >&2 || true
      exit 1
    fi
  done
  cat >"$dir/env" <<ENV
PGHOST=$dir
PGPORT=$port
PGUSER=$SUPERUSER
PGDATA=$dir/data
PGDATABASE=postgres
ENV
  chmod 644 "$dir/env"
  echo "$dir/env"
}

cmd_replica() {
  local dir=$1; shift
  local from="" port=""
  while [ $# -gt 0 ]; do
    case $1 in
      --from) from=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      *) echo "pgcluster: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ -n "$from" ] && [ -f "$from/env" ] || { echo "pgcluster: replica needs --from a running cluster" >&2; exit 2; }
  local phost pport
  phost=$(sed -n 's/^PGHOST=//p' "$from/env")
  pport=$(sed -n 's/^PGPORT=//p' "$from/env")
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    # -R writes standby.signal and primary_conninfo; the copied postgresql.conf names the
    # primary's socket directory, so this one's is appended (the last setting wins).
    as_owner "$PG_BINDIR/pg_basebackup" -D "$dir/data" -R -X stream -c fast -h "$phost" -p "$pport" \
      -U "$SUPERUSER" >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
# streaming replica of $from (tests/lib/pgcluster.sh replica)
unix_socket_directories = '$dir'
hot_standby = on
hot_standby_feedback = on
CONF
  fi
  if [ -n "$port" ]; then cmd_start "$dir" --port "$port"; else cmd_start "$dir"; fi
}

cmd_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

cmd_destroy() {
  local dir=$1
  cmd_stop "$dir"
  rm -rf "$dir"
}

cmd_run() {
  [ "${1:-}" = "--" ] && shift
  # Global on purpose: the EXIT trap runs after this function returned.
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-pg.XXXXXX")
  trap 'cmd_destroy "$RUN_DIR"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cmd_start "$RUN_DIR" >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "$RUN_DIR/env"
  set +a
  "$@"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  replica) shift; cmd_replica "$@" ;;
  stop) cmd_stop "$2" ;;
  destroy) cmd_destroy "$2" ;;
  run) shift; cmd_run "$@" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
