#!/usr/bin/env bash
# Builds the Debian packages zonegate-proxy and postgresql-NN-zonegate (CPack, cmake/packaging.cmake).
#
#   deploy/package.sh [OUTDIR]     the .debs go to OUTDIR (default build-package/packages)
#
# Everything is built in build-package/ (BUILD_DIR=...): the proxy with CMake (Release,
# ZONEGATE_PACKAGE=ON), the extension with PGXS in a copy of extension/ and sql/ (PGXS builds in
# place; the copy leaves the tree's own objects alone), installed with DESTDIR into a staging tree
# that CPack packages. JOBS (default 2) parallel jobs, PG_CONFIG (default pg_config) selects the
# PostgreSQL. Prints the paths of the two packages.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-package}
JOBS=${JOBS:-2}
PG_CONFIG=${PG_CONFIG:-pg_config}
OUT_DIR=${1:-$BUILD_DIR/packages}

log() { echo "package: $*" >&2; }
run_logged() {  # run_logged LOGFILE CMD...: quiet unless it fails
  local logfile=$1; shift
  if ! "$@" >"$logfile" 2>&1; then
    log "failed: $* (last lines of $logfile follow)"
    tail -n 40 "$logfile" >&2
    exit 1
  fi
}

mkdir -p "$BUILD_DIR" "$OUT_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
OUT_DIR=$(cd "$OUT_DIR" && pwd)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
STAGE=$BUILD_DIR/extension-stage
EXT_SRC=$BUILD_DIR/extension-src

log "configuring $BUILD_DIR (Release, ZONEGATE_PACKAGE=ON)"
run_logged "$BUILD_DIR/configure.log" cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DZONEGATE_PACKAGE=ON -DZONEGATE_TESTS=OFF -DPG_CONFIG="$PG_CONFIG" \
  -DZONEGATE_EXTENSION_STAGE="$STAGE"

log "building zonegate-proxy"
run_logged "$BUILD_DIR/build-proxy.log" cmake --build "$BUILD_DIR" -j"$JOBS" --target zonegate-proxy

log "building the extension (PGXS, in $EXT_SRC)"
rm -rf "$EXT_SRC" "$STAGE"
mkdir -p "$EXT_SRC" "$STAGE"
tar --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - extension sql | tar -C "$EXT_SRC" -xf -
run_logged "$BUILD_DIR/build-extension.log" make -C "$EXT_SRC/extension" PG_CONFIG="$PG_CONFIG" -j"$JOBS"
run_logged "$BUILD_DIR/install-extension.log" \
  make -C "$EXT_SRC/extension" PG_CONFIG="$PG_CONFIG" install DESTDIR="$STAGE"
strip --strip-unneeded "$STAGE$PKGLIBDIR/zonegate.so"

log "running cpack"
rm -rf "$BUILD_DIR/cpack"
run_logged "$BUILD_DIR/cpack.log" cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$BUILD_DIR/cpack"

shopt -s nullglob
debs=("$BUILD_DIR"/cpack/*.deb)
if [ ${#debs[@]} -ne 2 ]; then
  log "expected 2 packages, cpack made ${#debs[@]}: ${debs[*]:-none}"
  exit 1
fi
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  rm -f "$OUT_DIR/${name}"_*.deb
  mv "$deb" "$OUT_DIR/"
  echo "$OUT_DIR/$(basename "$deb")"
done
