#!/usr/bin/env bash
# The Debian packages (deploy/package.sh, cmake/packaging.cmake): builds them, checks their
# contents and control data, verifies the systemd unit and the example config; then, as root,
# installs both, runs the installed proxy and extension against a throwaway cluster, purges both
# and puts the machine back as it was (the extension files `make install` had put where the
# package went, the zonegate user and group if they did not exist). An EXIT trap does the
# putting back, so a failure at any step leaves the machine as it found it.
#
#   tests/package/test_package.sh      prints "ok - NAME", "not ok - NAME" or "skip - NAME";
#                                      exits 1 if anything failed
#
# BUILD_DIR (default build-package) and JOBS (default 2) are passed to deploy/package.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PG_CONFIG=${PG_CONFIG:-pg_config}
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
VERSION=$(sed -nE 's/^#define ZONEGATE_VERSION "([^"]+)".*/\1/p' extension/core/version.hpp)
PROXY_PKG=zonegate-proxy
EXT_PKG=postgresql-$PG_MAJOR-zonegate
UNIT=/lib/systemd/system/zonegate-proxy.service

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zonegate-package.XXXXXX")
chmod 755 "$WORK"  # the proxy runs as the zonegate user and reads its config from here
LOG=$WORK/step.log
FAILED=0
PASSED=0

ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() {
  echo "not ok - $1"
  FAILED=$((FAILED + 1))
  if [ -s "$LOG" ]; then tail -n 25 "$LOG" | sed 's/^/#   /'; fi
}
skip() { echo "skip - $1"; }
# check NAME CMD...: ok when CMD exits 0; its output is shown only on failure.
check() {
  local name=$1; shift
  if "$@" >"$LOG" 2>&1; then ok "$name"; else not_ok "$name"; fi
  : >"$LOG"
}

# --- machine state to restore (root part) -----------------------------------------------------
INSTALLED=0        # set once dpkg -i was attempted: cleanup purges
CREATED_USER=0     # the zonegate user did not exist before
CREATED_GROUP=0
CREATED_ETC=0      # /etc/zonegate did not exist before
BACKUP=$WORK/backup
PROXY_PID=""
PG_DIR=$WORK/pg

# Files of the packages that existed before the install (e.g. the extension from `make
# install`) are copied to $BACKUP first and put back after the purge.
backup_files() {  # list file
  mkdir -p "$BACKUP"
  local f
  while IFS= read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then
      mkdir -p "$BACKUP$(dirname "$f")"
      cp -a "$f" "$BACKUP$f"
    fi
  done <"$1"
}

restore_files() {
  [ -d "$BACKUP" ] || return 0
  local f
  (cd "$BACKUP" && find . -type f -o -type l) | sed 's|^\.||' | while IFS= read -r f; do
    mkdir -p "$(dirname "$f")"
    # A new inode, renamed into place: backends that have the library mapped are unaffected.
    cp -a "$BACKUP$f" "$f.zonegate-restore" && mv -f "$f.zonegate-restore" "$f"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
    kill -TERM "$PROXY_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
  fi
  if [ -d "$PG_DIR" ]; then tests/lib/pgcluster.sh destroy "$PG_DIR" >/dev/null 2>&1 || true; fi
  if [ "$INSTALLED" = 1 ]; then
    for p in "$PROXY_PKG" "$EXT_PKG"; do
      if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qvx not-installed; then
        dpkg --purge "$p" >/dev/null 2>&1 || echo "# cleanup: dpkg --purge $p failed" >&2
      fi
    done
    restore_files
  fi
  if [ "$CREATED_USER" = 1 ] && getent passwd zonegate >/dev/null; then
    userdel zonegate >/dev/null 2>&1 || echo "# cleanup: userdel zonegate failed" >&2
  fi
  if [ "$CREATED_GROUP" = 1 ] && getent group zonegate >/dev/null; then
    groupdel zonegate >/dev/null 2>&1 || echo "# cleanup: groupdel zonegate failed" >&2
  fi
  if [ "$CREATED_ETC" = 1 ] && [ -d /etc/zonegate ]; then
    rm -f /etc/zonegate/jwt_secret /etc/zonegate/admin_token
    rmdir /etc/zonegate 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- build ------------------------------------------------------------------------------------
OUT=$WORK/packages
if deploy/package.sh "$OUT" >"$LOG" 2>&1; then ok "deploy/package.sh builds the packages"; else
  not_ok "deploy/package.sh builds the packages"
  echo "# packages: $PASSED passed, $FAILED failed"
  exit 1
fi
: >"$LOG"
PROXY_DEB=$(ls "$OUT"/${PROXY_PKG}_*.deb 2>/dev/null | head -n 1)
EXT_DEB=$(ls "$OUT"/${EXT_PKG}_*.deb 2>/dev/null | head -n 1)
check "two packages: $PROXY_PKG and $EXT_PKG" \
  test "$(ls "$OUT"/*.deb | wc -l)" -eq 2 -a -f "$PROXY_DEB" -a -f "$EXT_DEB"
if [ ! -f "$PROXY_DEB" ] || [ ! -f "$EXT_DEB" ]; then
  echo "# packages: $PASSED passed, $FAILED failed"
  exit 1
fi

# --- contents and control data ----------------------------------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
contents() { dpkg-deb -c "$1" | awk '{print $NF}' | sed 's|^\./|/|'; }
has_file() { contents "$1" | grep -qxF "$2" || { echo "missing $2 in $1"; return 1; }; }
mode_of() { dpkg-deb -c "$1" | awk -v f=".$2" '$NF == f {print $1}'; }
depends_on() {  # deb package: package is one of the Depends
  dpkg-deb -f "$1" Depends | tr ',' '\n' | awk -v p="$2" '$1 == p {found = 1} END {exit !found}'
}

for pair in "$PROXY_DEB:$PROXY_PKG" "$EXT_DEB:$EXT_PKG"; do
  deb=${pair%%:*}; name=${pair#*:}
  check "$name: Package and Version ($VERSION-1) fields" \
    test "$(field "$deb" Package) $(field "$deb" Version)" = "$name $VERSION-1"
  check "$name: Architecture is dpkg's" \
    test "$(field "$deb" Architecture)" = "$(dpkg --print-architecture)"
  check "$name: dpkg-deb -I reads it" dpkg-deb -I "$deb"
done

check "$PROXY_PKG: /usr/bin/zonegate-proxy, executable" \
  test "$(mode_of "$PROXY_DEB" /usr/bin/zonegate-proxy)" = -rwxr-xr-x
check "$PROXY_PKG: the systemd unit $UNIT is deploy/systemd/zonegate-proxy.service" \
  bash -c "cmp <(dpkg-deb --fsys-tarfile '$PROXY_DEB' | tar -xOf - .$UNIT) deploy/systemd/zonegate-proxy.service"
check "$PROXY_PKG: /etc/zonegate/zonegate.yaml is deploy/zonegate.example.yaml" \
  bash -c "cmp <(dpkg-deb --fsys-tarfile '$PROXY_DEB' | tar -xOf - ./etc/zonegate/zonegate.yaml) deploy/zonegate.example.yaml"
check "$PROXY_PKG: /etc/zonegate/zonegate.yaml is a conffile" \
  bash -c "dpkg-deb --ctrl-tarfile '$PROXY_DEB' | tar -xOf - ./conffiles | grep -qx /etc/zonegate/zonegate.yaml"
check "$PROXY_PKG: every file under /etc is a conffile" \
  bash -c "diff <(dpkg-deb -c '$PROXY_DEB' | awk '\$1 !~ /^d/ {print \$NF}' | sed -n 's|^\./etc/|/etc/|p' | sort) \
                <(dpkg-deb --ctrl-tarfile '$PROXY_DEB' | tar -xOf - ./conffiles | sort)"
check "$PROXY_PKG: postinst, prerm, postrm are executable maintainer scripts" \
  bash -c "dpkg-deb --ctrl-tarfile '$PROXY_DEB' | tar -tvf - | awk '{print \$1, \$NF}' | \
           grep -c -E '^-rwxr-xr-x \./(postinst|prerm|postrm)$' | grep -qx 3"
check "$PROXY_PKG: maintainer scripts pass sh -n" \
  bash -c "for s in postinst prerm postrm; do dpkg-deb --ctrl-tarfile '$PROXY_DEB' | tar -xOf - ./\$s | sh -n || exit 1; done"
for lib in libuv1 libpq5 libyaml-cpp0.7 libssl3 libc6 libstdc++6; do
  check "$PROXY_PKG: Depends on $lib" depends_on "$PROXY_DEB" "$lib"
done
# The package that ships a file: dpkg -S by its path, its real path and their /usr-merged twins.
owner_of() {
  local p c
  p=$(readlink -f "$1")
  for c in "$1" "$p" "${1#/usr}" "/usr$1" "${p#/usr}" "/usr$p"; do
    dpkg -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1 | grep . && return 0
  done
  return 1
}
needed_libs_in_depends() {  # deb binary: each NEEDED library comes from a package in Depends
  local deps so path pkg
  deps=$(dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/^ *([^ ]+).*/\1/')
  for so in $(objdump -p "$2" | awk '/NEEDED/ {print $2}'); do
    path=$(ldd "$2" | awk -v so="$so" '$1 == so {print $3}')
    pkg=$(owner_of "$path") || { echo "no package owns $path ($so)"; return 1; }
    echo "$deps" | grep -qx "$pkg" || { echo "$so ($pkg) not in Depends: $deps"; return 1; }
  done
}
dpkg-deb --fsys-tarfile "$PROXY_DEB" | tar -xOf - ./usr/bin/zonegate-proxy >"$WORK/zgp" && chmod +x "$WORK/zgp"
check "$PROXY_PKG: every library the binary needs is in a Depends package" \
  needed_libs_in_depends "$PROXY_DEB" "$WORK/zgp"
dpkg-deb --fsys-tarfile "$EXT_DEB" | tar -xOf - ".$PKGLIBDIR/zonegate.so" >"$WORK/zonegate.so"
check "$EXT_PKG: every library zonegate.so needs is in a Depends package" \
  needed_libs_in_depends "$EXT_DEB" "$WORK/zonegate.so"
check "$PROXY_PKG: the packaged binary prints zonegate-proxy $VERSION" \
  bash -c "[ \"\$('$WORK/zgp' --version)\" = 'zonegate-proxy $VERSION' ]"

check "$EXT_PKG: Depends on postgresql-$PG_MAJOR" depends_on "$EXT_DEB" "postgresql-$PG_MAJOR"
check "$EXT_PKG: $PKGLIBDIR/zonegate.so" has_file "$EXT_DEB" "$PKGLIBDIR/zonegate.so"
check "$EXT_PKG: $SHAREDIR/extension/zonegate.control" has_file "$EXT_DEB" "$SHAREDIR/extension/zonegate.control"
check "$EXT_PKG: every sql/zonegate--*.sql" bash -c "
  for f in sql/zonegate--*.sql; do
    dpkg-deb -c '$EXT_DEB' | awk '{print \$NF}' | grep -qxF \".$SHAREDIR/extension/\$(basename \$f)\" ||
      { echo \"missing \$f\"; exit 1; }
  done"
if [ -d "$PKGLIBDIR/bitcode" ]; then
  check "$EXT_PKG: the LLVM bitcode (zonegate.index.bc, one .bc per source)" bash -c "
    dpkg-deb -c '$EXT_DEB' | awk '{print \$NF}' | grep -qxF '.$PKGLIBDIR/bitcode/zonegate.index.bc' || exit 1
    for f in extension/core/*.cpp extension/pg/*.cpp; do
      b=\${f#extension/}; b=\${b%.cpp}.bc
      dpkg-deb -c '$EXT_DEB' | awk '{print \$NF}' | grep -qxF \".$PKGLIBDIR/bitcode/zonegate/\$b\" ||
        { echo \"missing bitcode \$b\"; exit 1; }
    done"
else
  skip "$EXT_PKG: LLVM bitcode (this PostgreSQL has no bitcode directory)"
fi
check "$EXT_PKG: only files under pkglibdir and sharedir/extension" bash -c "
  ! dpkg-deb -c '$EXT_DEB' | awk '\$1 !~ /^d/ {print \$NF}' | \
    grep -vE '^\.($PKGLIBDIR/|$SHAREDIR/extension/)'"
check "$EXT_PKG: the control file's default_version has its SQL script" bash -c "
  v=\$(dpkg-deb --fsys-tarfile '$EXT_DEB' | tar -xOf - .$SHAREDIR/extension/zonegate.control | \
      sed -nE \"s/^default_version *= *'([^']+)'.*/\1/p\")
  dpkg-deb -c '$EXT_DEB' | awk '{print \$NF}' | grep -qE \"/zonegate--(.*--)?\$v\.sql\$\""

# --- the unit and the example config, before installing ---------------------------------------
# The installed unit is verified below (as root); this one runs anywhere: the same unit with the
# packaged binary's path, since verify checks that ExecStart's command exists.
sed "s|/usr/bin/zonegate-proxy|$WORK/zgp|g" deploy/systemd/zonegate-proxy.service >"$WORK/zonegate-proxy.service"
verify_unit() {  # unit file: exit 0 and not one line of output (verify exits 0 on ignored lines)
  local out
  out=$(systemd-analyze verify "$1" 2>&1)
  local rc=$?
  echo "$out"
  [ $rc -eq 0 ] && [ -z "$out" ]
}
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify deploy/systemd/zonegate-proxy.service" verify_unit "$WORK/zonegate-proxy.service"
else
  not_ok "systemd-analyze verify deploy/systemd/zonegate-proxy.service (systemd-analyze missing)"
fi
check "the unit runs as zonegate, hardened, with the documented commands" bash -c "
  u=deploy/systemd/zonegate-proxy.service
  for l in User=zonegate 'ExecStart=/usr/bin/zonegate-proxy --config /etc/zonegate/zonegate.yaml' \
           'ExecReload=/bin/kill -HUP \$MAINPID' Restart=on-failure NoNewPrivileges=yes \
           ProtectSystem=strict ProtectHome=yes PrivateTmp=yes KillSignal=SIGTERM; do
    grep -qxF \"\$l\" \$u || { echo \"missing: \$l\"; exit 1; }
  done"
check "deploy/zonegate.example.yaml passes --check-config (secrets from files, profile prod)" bash -c "
  head -c 48 /dev/urandom | base64 -w0 >'$WORK/jwt_secret'; head -c 32 /dev/urandom | base64 -w0 >'$WORK/admin_token'
  sed 's|/etc/zonegate/|$WORK/|g' deploy/zonegate.example.yaml >'$WORK/example.yaml'
  '$WORK/zgp' --check-config --config '$WORK/example.yaml' | grep -q 'profile prod'"
check "deploy/zonegate.example.yaml puts no secret inline" bash -c "
  ! grep -nE '^\s*(secret|admin_token|public_key):' deploy/zonegate.example.yaml"

# --- install, run, purge (root only) ----------------------------------------------------------
root_part() {
  local before
  for p in "$PROXY_PKG" "$EXT_PKG"; do
    before=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ -n "$before" ] && [ "$before" != not-installed ]; then
      not_ok "$p is not installed before the test (it is: $before; not touching it)"
      return
    fi
  done
  getent passwd zonegate >/dev/null || CREATED_USER=1
  getent group zonegate >/dev/null || CREATED_GROUP=1
  [ -e /etc/zonegate ] || CREATED_ETC=1
  { contents "$EXT_DEB"; contents "$PROXY_DEB"; } | grep -v '/$' >"$WORK/files"
  backup_files "$WORK/files"

  INSTALLED=1
  check "dpkg -i both packages" dpkg -i "$EXT_DEB" "$PROXY_DEB"
  check "both packages are installed" bash -c "
    for p in $PROXY_PKG $EXT_PKG; do
      [ \"\$(dpkg-query -W -f='\${db:Status-Status}' \$p)\" = installed ] || exit 1
    done"
  check "dpkg --verify: the installed files are the packages'" dpkg --verify "$PROXY_PKG" "$EXT_PKG"
  check "postinst created the system user zonegate (system uid, nologin)" bash -c "
    e=\$(getent passwd zonegate) || exit 1
    uid=\$(echo \"\$e\" | cut -d: -f3)
    [ \"\$uid\" -lt 1000 ] && echo \"\$e\" | grep -q ':/usr/sbin/nologin\$'"
  check "postinst generated the secrets, root:zonegate 0640" bash -c "
    for f in /etc/zonegate/jwt_secret /etc/zonegate/admin_token; do
      [ \"\$(stat -c '%U:%G %a' \$f)\" = 'root:zonegate 640' ] || { stat -c '%n %U:%G %a' \$f; exit 1; }
    done
    [ \$(head -n1 /etc/zonegate/jwt_secret | tr -d '\n' | wc -c) -ge 32 ]"
  check "/usr/bin/zonegate-proxy --version" bash -c "[ \"\$(/usr/bin/zonegate-proxy --version)\" = 'zonegate-proxy $VERSION' ]"
  check "/usr/bin/zonegate-proxy --check-config --config /etc/zonegate/zonegate.yaml" \
    /usr/bin/zonegate-proxy --check-config --config /etc/zonegate/zonegate.yaml
  check "the same check as the service's user zonegate (it reads the secrets)" \
    runuser -u zonegate -- /usr/bin/zonegate-proxy --check-config --config /etc/zonegate/zonegate.yaml
  if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify $UNIT (installed)" verify_unit "$UNIT"
  fi
  # An upgrade (here: the same version again) keeps the secrets and an edited conffile.
  md5sum /etc/zonegate/jwt_secret /etc/zonegate/admin_token >"$WORK/secrets.md5"
  echo "# edited by test_package.sh" >>/etc/zonegate/zonegate.yaml
  check "reinstalling $PROXY_PKG (dpkg --force-confold -i)" \
    dpkg --force-confold -i "$PROXY_DEB"
  check "the reinstall kept the generated secrets and the edited conffile" bash -c "
    md5sum --quiet -c '$WORK/secrets.md5' && grep -qx '# edited by test_package.sh' /etc/zonegate/zonegate.yaml"

  # A throwaway cluster loads the packaged extension from pkglibdir.
  if ! tests/lib/pgcluster.sh start "$PG_DIR" >"$LOG" 2>&1; then
    not_ok "a throwaway cluster starts"
    return
  fi
  : >"$LOG"
  set -a
  # shellcheck disable=SC1091
  . "$PG_DIR/env"
  set +a
  check "createdb zonegate" createdb zonegate
  check "CREATE EXTENSION zonegate from the packaged files" \
    psql -X -v ON_ERROR_STOP=1 -d zonegate -c 'CREATE EXTENSION zonegate'
  check "zonegate.version() is $VERSION, default_version installed" bash -c "
    [ \"\$(psql -XAtq -d zonegate -c 'SELECT zonegate.version()')\" = '$VERSION' ] &&
    [ \"\$(psql -XAtq -d zonegate -c \"SELECT installed_version = default_version FROM pg_available_extensions WHERE name = 'zonegate'\")\" = t ]"

  # The installed proxy, as the service would run it (user zonegate), against that cluster.
  local port
  port=$(free_port)
  mkdir -p "$WORK/proxy"
  cat >"$WORK/proxy/zonegate.yaml" <<YAML
profile: dev
server: {host: 127.0.0.1, port: $port, workers: 1, drain_timeout: 2s}
database:
  conninfo: "host=127.0.0.1 port=$PGPORT dbname=zonegate user=$PGUSER"
  pool: {min: 1, max: 1}
rpc: {schema: zonegate, functions: [current_user_id]}
log: {level: info}
YAML
  chmod -R a+rX "$WORK/proxy"
  # setpriv execs the proxy itself (runuser would stay its parent and turn SIGTERM into a kill).
  setpriv --reuid=zonegate --regid=zonegate --init-groups -- \
    /usr/bin/zonegate-proxy --config "$WORK/proxy/zonegate.yaml" \
    >"$WORK/proxy/proxy.log" 2>&1 &
  PROXY_PID=$!
  local code="" ready=""
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null) || true
    ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null) || true
    [ "$code" = 200 ] && [ "$ready" = 200 ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  cp "$WORK/proxy/proxy.log" "$LOG"
  if [ "$code" = 200 ]; then ok "the installed proxy serves /healthz"; else not_ok "the installed proxy serves /healthz (got ${code:-nothing})"; fi
  cp "$WORK/proxy/proxy.log" "$LOG"
  if [ "$ready" = 200 ]; then ok "the installed proxy is ready against the cluster (/readyz: database, LISTEN)"; else not_ok "the installed proxy is ready against the cluster (/readyz ${ready:-nothing})"; fi
  check "the proxy's /health reports version $VERSION" bash -c "
    curl -sf http://127.0.0.1:$port/health | grep -q '\"version\": *\"$VERSION\"'"
  kill -TERM "$PROXY_PID" 2>/dev/null
  local rc=0
  wait "$PROXY_PID" || rc=$?
  PROXY_PID=""
  cp "$WORK/proxy/proxy.log" "$LOG"
  if [ "$rc" = 0 ] && grep -q '"draining"' "$WORK/proxy/proxy.log"; then
    ok "SIGTERM drains the proxy and it exits 0"
  else not_ok "SIGTERM drains the proxy and it exits 0 (exit $rc)"; fi
  : >"$LOG"
  tests/lib/pgcluster.sh destroy "$PG_DIR" >/dev/null 2>&1

  check "dpkg --purge both packages" dpkg --purge "$PROXY_PKG" "$EXT_PKG"
  check "the packages' files are gone (binary, unit, generated secrets)" bash -c "
    for f in /usr/bin/zonegate-proxy $UNIT /etc/zonegate/jwt_secret /etc/zonegate/admin_token /etc/zonegate/zonegate.yaml; do
      [ ! -e \$f ] || { echo \"left: \$f\"; exit 1; }
    done"
  # Put back what the packages replaced (the extension from `make install`), then the user.
  restore_files
  INSTALLED=0
  if [ "$CREATED_USER" = 1 ]; then userdel zonegate >/dev/null 2>&1; CREATED_USER=0; fi
  if [ "$CREATED_GROUP" = 1 ] && getent group zonegate >/dev/null; then groupdel zonegate >/dev/null 2>&1; fi
  CREATED_GROUP=0
  check "the files the packages replaced are back, byte for byte" bash -c "
    cd '$BACKUP' 2>/dev/null || exit 0
    find . -type f | while read -r f; do cmp \"\$f\" \"/\${f#./}\" || exit 1; done"
  check "the zonegate user and group are as before the test" \
    test "$(getent passwd zonegate; getent group zonegate)" = "$USER_BEFORE"
}

if [ "$(id -u)" -eq 0 ]; then
  USER_BEFORE=$(getent passwd zonegate; getent group zonegate)
  root_part
else
  skip "install, run and purge the packages (needs root)"
fi

echo "# packages: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
