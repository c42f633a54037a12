#!/usr/bin/env bash
# Build Verilator 5.048 from Debian's source package into a fixed cache prefix
# outside the repository, so that later runs (and later sessions on the same
# machine) reuse it.  Only the optimised binary is built (`make -C src opt`).
#
#   scripts/build-verilator.sh            build unless a usable one is cached
#   OPENRDU_CACHE=/some/dir scripts/...   choose the cache prefix
#
# The result is run in place: $PREFIX/bin/verilator with VERILATOR_ROOT=$PREFIX.
# Exit status 0 means "$PREFIX/bin/verilator --version" reports >= 5.036.
set -euo pipefail

VERSION=5.048
CACHE="${OPENRDU_CACHE:-$HOME/.cache/openrdu}"
PREFIX="$CACHE/verilator-$VERSION"
LOG="$CACHE/verilator-$VERSION-build.log"
JOBS="$(nproc 2>/dev/null || echo 2)"

say() { printf '[verilator-build] %s\n' "$*"; }
fail() { say "cannot build Verilator $VERSION: $*"; exit 1; }

if [ -x "$PREFIX/bin/verilator_bin" ] && \
   VERILATOR_ROOT="$PREFIX" "$PREFIX/bin/verilator" --version >/dev/null 2>&1; then
    say "cached build found: $PREFIX ($(VERILATOR_ROOT="$PREFIX" "$PREFIX/bin/verilator" --version))"
    exit 0
fi

[ "$(id -u)" = 0 ] || fail "needs root for apt-get (source package and build dependencies)"
command -v apt-get >/dev/null || fail "apt-get not found (not a Debian-like system)"
mkdir -p "$CACHE"
: > "$LOG"
say "building into $PREFIX (log: $LOG); about 7-12 minutes on 2 cores"

# A deb-src entry for Debian unstable, reusing the mirror this machine already uses.
SRC_LIST=/etc/apt/sources.list.d/openrdu-sid-src.sources
if [ ! -f "$SRC_LIST" ]; then
    mirror="$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null \
              | head -n1 | awk '{print $2}')"
    [ -n "$mirror" ] || mirror="$(grep -hoE '^deb[[:space:]]+[^[:space:]]+/debian/?[[:space:]]' /etc/apt/sources.list 2>/dev/null \
              | head -n1 | awk '{print $2}')"
    [ -n "$mirror" ] || fail "could not find the Debian mirror in /etc/apt/sources.list*"
    say "adding deb-src for unstable from $mirror"
    printf 'Types: deb-src\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" > "$SRC_LIST"
fi

say "step 1/4: apt-get update and build dependencies"
apt-get update -q >>"$LOG" 2>&1 || fail "apt-get update failed (see $LOG)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    dpkg-dev autoconf bison flex libfl-dev help2man perl python3 g++ make \
    zlib1g-dev >>"$LOG" 2>&1 || fail "installing build dependencies failed (see $LOG)"

say "step 2/4: fetching the source package verilator=$VERSION-*"
WORK="$CACHE/verilator-$VERSION-src"
rm -rf "$WORK" "$PREFIX"
mkdir -p "$WORK"
( cd "$WORK" && apt-get source -q --download-only "verilator=$VERSION-1" >>"$LOG" 2>&1 \
  && dpkg-source -x --no-check ./verilator_"$VERSION"*.dsc src >>"$LOG" 2>&1 ) \
    || fail "apt-get source verilator=$VERSION-1 failed (see $LOG)"
mv "$WORK/src" "$PREFIX"
rm -rf "$WORK"

say "step 3/4: configure (run-in-place, VERILATOR_ROOT=$PREFIX)"
cd "$PREFIX"
export VERILATOR_ROOT="$PREFIX"
{ autoconf && ./configure; } >>"$LOG" 2>&1 || fail "configure failed (see $LOG)"

total=$(ls src/*.cpp | wc -l)
say "step 4/4: make -C src opt -j$JOBS (about $total C++ files)"
start=$(date +%s)
make -C src opt -j"$JOBS" 2>&1 | tee -a "$LOG" | awk -v total="$total" -v t0="$start" '
    match($0, /-c \.\.\/[^ ]+\.cpp/) {
        n++; f = substr($0, RSTART + 6, RLENGTH - 6)
        if (n % 10 == 0 || n == 1) {
            printf "[verilator-build]   compiled %d/%d files, %d s (%s)\n", n, total, systime() - t0, f
            fflush()
        }
    }'
[ "${PIPESTATUS[0]}" = 0 ] || fail "make failed (see $LOG)"
# Object files are not needed to run; keep the cache small.
rm -rf src/obj_opt src/obj_dbg
"$PREFIX/bin/verilator" --version >/dev/null || fail "built binary does not run"
say "built $("$PREFIX/bin/verilator" --version) in $(( $(date +%s) - start )) s"
