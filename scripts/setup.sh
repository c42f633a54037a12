#!/usr/bin/env bash
# One-command set-up shared by `make demo`, `make test` and friends (run via `make setup`).
#   1. .venv with the project installed editable, with its test extras
#   2. Icarus Verilog (Debian package; installed when missing and running as root)
#   3. Verilator >= 5.036 (Debian 12 ships 5.006: build 5.048 into a cache prefix outside the repo)
# Re-running is cheap: each step is skipped when already satisfied.
# A simulator that cannot be had is reported in one line; everything else still works
# and that simulator's tests skip (CI sets OPENRDU_REQUIRE_SIMS so that they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.openrdu-installed"
say() { printf '[setup] %s\n' "$*"; }

# 1. Python environment ------------------------------------------------------------------------
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "Python >= 3.10 is required; set PYTHON=/path/to/python3.x"; exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV" || {
        say "python -m venv failed; on Debian: apt-get install python3-venv"; exit 1; }
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    say "installing openrdu (editable) and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --progress-bar off -e '.[test]'
    touch "$STAMP"
else
    say "$VENV is up to date"
fi

# 2. Icarus Verilog ----------------------------------------------------------------------------
apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 1; fi
    if [ $apt_updated = 0 ]; then apt-get update -q >/dev/null && apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
if command -v iverilog >/dev/null && command -v vvp >/dev/null; then
    say "icarus: $(iverilog -V 2>&1 | head -n1)"
elif apt_install iverilog; then
    say "icarus: installed $(iverilog -V 2>&1 | head -n1)"
else
    say "icarus: NOT AVAILABLE (not root or no apt-get): install it with 'apt-get install iverilog'; Icarus tests will skip"
fi

# 3. Verilator >= 5.036 ------------------------------------------------------------------------
verilator_ok() { "$VENV/bin/python" -c 'from sim.toolchain import verilator_status as s; import sys; sys.exit(not s().usable)'; }
if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
    apt_install g++ make || true
fi
# ccache: Verilator's C++ for an unchanged design compiles once per machine (sim/toolchain.py
# points its makefiles at it); optional, builds work without it
if command -v ccache >/dev/null || apt_install ccache; then
    say "ccache: $(ccache --version | head -1) (Verilator builds cached in ${OPENRDU_CACHE:-$HOME/.cache/openrdu}/ccache)"
else
    say "ccache: not available (optional: repeated Verilator builds are slower)"
fi
if verilator_ok; then
    say "verilator: $("$VENV/bin/python" -c 'from sim.toolchain import verilator_status as s; print(s().version, "at", s().path)')"
elif bash scripts/build-verilator.sh && verilator_ok; then
    say "verilator: built and cached"
else
    say "verilator: NOT AVAILABLE: $("$VENV/bin/python" -c 'from sim.toolchain import verilator_status as s; print(s().reason)'); Verilator tests will skip"
fi
say "done"
