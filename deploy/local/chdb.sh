#!/usr/bin/env bash
# Installs libchdb.so — the current ClickHouse engine as a shared library — so tests can
# check that the project's DDL and SQL run on the ClickHouse users deploy (25.x/26.x), not
# only on the local 18.16 server. github.com/chdb-io/chdb-go loads the library with purego
# when its package initialises and finds it through CHDB_LIB_PATH.
#
#   deploy/local/chdb.sh            install when missing (idempotent, quiet when present),
#                                   then print the library's absolute path on stdout
#   deploy/local/chdb.sh path       print the path only (exit 1 when not installed)
#   deploy/local/chdb.sh env        print `export CHDB_LIB_PATH=...` (installing first)
#
# The library comes from the npm package @chdb/lib-linux-x64-gnu (the build chdb's Node
# binding uses), installed with npm into <run>/chdb. Environment: GCA_RUN_DIR (default
# <repo>/.run), GCA_CHDB_VERSION (default below).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUN=${GCA_RUN_DIR:-$ROOT/.run}
DIR=$RUN/chdb
PKG=@chdb/lib-linux-x64-gnu
# 26.7 is the engine DESIGN.md §6 names; pinned so every machine tests the same engine.
VERSION=${GCA_CHDB_VERSION:-26.7.3-stable.1}
STAMP=$DIR/.gca-installed

say() { printf '[chdb] %s\n' "$*" >&2; }
die() { printf '[chdb] ERROR: %s\n' "$*" >&2; exit 1; }

lib_path() {
    local f
    f=$(find "$DIR/node_modules/$PKG" -name 'libchdb.so' -type f 2>/dev/null | head -n1)
    [[ -n $f ]] || return 1
    printf '%s\n' "$f"
}

installed() { [[ -f $STAMP && $(cat "$STAMP") == "$VERSION" ]] && lib_path >/dev/null; }

install() {
    installed && return 0
    [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
        die "only linux x86_64 is packaged as $PKG; set CHDB_LIB_PATH to a libchdb.so yourself"
    command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm)"
    mkdir -p "$DIR"
    # Serialise concurrent installs (parallel test packages may all call this script).
    exec 8>"$DIR/.lock"
    if command -v flock >/dev/null 2>&1; then flock -w 900 8 || die "lock $DIR/.lock held too long"; fi
    installed && return 0
    say "installing $PKG@$VERSION into $DIR (about 150 MB download, once)"
    [[ -f $DIR/package.json ]] || printf '{"name":"gca-chdb","private":true}\n' >"$DIR/package.json"
    # --os/--cpu are implied by the package; --ignore-scripts: we only want the file.
    npm install --prefix "$DIR" --no-audit --no-fund --no-save --ignore-scripts \
        --loglevel=error "$PKG@$VERSION" >&2 || die "npm install $PKG@$VERSION failed"
    lib_path >/dev/null || die "$PKG@$VERSION holds no libchdb.so"
    printf '%s' "$VERSION" >"$STAMP"
}

case ${1:-install} in
    install) install; lib_path ;;
    path)    installed || exit 1; lib_path ;;
    env)     install; printf 'export CHDB_LIB_PATH=%s\n' "$(lib_path)" ;;
    *)       die "usage: $0 [install|path|env]" ;;
esac
