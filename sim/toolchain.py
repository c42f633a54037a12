"""Find the HDL simulators OpenRDU runs on and say whether they are usable.

Icarus Verilog comes from the system (``iverilog``/``vvp``). Verilator must be
at least 5.036 for cocotb 2.x; Debian 12 ships 5.006, so ``make setup`` builds
5.048 into a cache prefix outside the repository (``scripts/build-verilator.sh``):

    ``$OPENRDU_CACHE/verilator-5.048`` (default ``~/.cache/openrdu/verilator-5.048``)

:func:`activate` puts the usable Verilator first on ``PATH`` (and sets
``VERILATOR_ROOT`` for the cached, run-in-place build) so that cocotb's runner,
which looks ``verilator`` up on ``PATH``, finds it.

Run ``python -m sim.toolchain`` for a status table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "SIMULATORS",
    "MIN_VERILATOR",
    "ToolStatus",
    "cache_dir",
    "compiler_cache_env",
    "verilator_status",
    "icarus_status",
    "simulator_status",
    "activate",
    "required_simulators",
]

#: Simulators OpenRDU runs cocotb testbenches on, in preference order for speed.
SIMULATORS = ("verilator", "icarus")
#: Oldest Verilator whose output cocotb 2.x's harness compiles against.
MIN_VERILATOR = (5, 36)
#: The version ``scripts/build-verilator.sh`` builds.
CACHED_VERILATOR_VERSION = "5.048"


@dataclass(frozen=True)
class ToolStatus:
    """What we know about one simulator.

    Attributes
    ----------
    name : str
        ``"icarus"`` or ``"verilator"``.
    usable : bool
        True when cocotb tests can run on it.
    version : str or None
        Version string as the tool reports it.
    path : str or None
        Executable found.
    reason : str
        Why it is not usable (empty when usable); one line, says what to do.
    env : dict
        Environment variables to set before using it (``PATH`` prefix, ``VERILATOR_ROOT``).
    """

    name: str
    usable: bool
    version: str | None = None
    path: str | None = None
    reason: str = ""
    env: tuple[tuple[str, str], ...] = ()


def cache_dir() -> Path:
    """Cache prefix for tools built outside the repository."""
    return Path(os.environ.get("OPENRDU_CACHE", Path.home() / ".cache" / "openrdu"))


def _run_version(cmd: list[str], env: dict | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                             env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else None


def _parse_verilator_version(text: str | None) -> tuple[int, int] | None:
    match = re.search(r"Verilator (\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2])) if match else None


@cache
def verilator_status() -> ToolStatus:
    """Usable Verilator: a new-enough one on ``PATH``, else the cached build."""
    minimum = f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}"
    found_old = None
    system = shutil.which("verilator")
    if system:
        text = _run_version([system, "--version"])
        version = _parse_verilator_version(text)
        if version and version >= MIN_VERILATOR:
            return ToolStatus("verilator", True, text, system)
        found_old = text or system

    root = cache_dir() / f"verilator-{CACHED_VERILATOR_VERSION}"
    cached = root / "bin" / "verilator"
    if cached.exists():
        env = {"VERILATOR_ROOT": str(root)}
        text = _run_version([str(cached), "--version"], env)
        version = _parse_verilator_version(text)
        if version and version >= MIN_VERILATOR:
            env["PATH"] = str(root / "bin")
            return ToolStatus("verilator", True, text, str(cached), env=tuple(env.items()))

    if found_old:
        reason = (f"Verilator >= {minimum} needed by cocotb 2.x, found {found_old!r} and no build in "
                  f"{root}; run `make setup` (builds {CACHED_VERILATOR_VERSION}, needs root and apt)")
    else:
        reason = (f"Verilator >= {minimum} not found (no `verilator` on PATH, no build in {root}); "
                  "run `make setup`")
    return ToolStatus("verilator", False, reason=reason)


@cache
def icarus_status() -> ToolStatus:
    """Usable Icarus Verilog: ``iverilog`` and ``vvp`` on ``PATH``."""
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if not iverilog or not vvp:
        return ToolStatus("icarus", False, reason="Icarus Verilog not found (`iverilog`/`vvp`); "
                          "run `make setup` as root or `apt-get install iverilog`")
    text = _run_version([iverilog, "-V"])
    return ToolStatus("icarus", True, text, iverilog)


def simulator_status(name: str) -> ToolStatus:
    """Status of simulator ``name`` (one of :data:`SIMULATORS`)."""
    if name == "verilator":
        return verilator_status()
    if name == "icarus":
        return icarus_status()
    raise ValueError(f"Unknown simulator {name!r}; valid simulators: {', '.join(SIMULATORS)}")


def compiler_cache_env() -> dict[str, str]:
    """Environment that makes Verilator's generated makefiles compile through ccache.

    Verilator's C++ is the same for the same design wherever it is built, so a build in a new
    directory (a test's temporary directory, a fresh clone) reuses the object files of an
    earlier one. The cache lives beside the Verilator build (``cache_dir()/ccache``, at most
    5 GB). Empty when ccache is not installed (``make setup`` installs it where it can) or when
    ``OBJCACHE`` is already set (the user's choice wins; ``OBJCACHE=`` turns it off).
    """
    if "OBJCACHE" in os.environ or shutil.which("ccache") is None:
        return {}
    return {"OBJCACHE": "ccache", "CCACHE_DIR": os.environ.get("CCACHE_DIR", str(cache_dir() / "ccache")),
            "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "5G")}


def activate(name: str) -> ToolStatus:
    """Make simulator ``name`` the one found by cocotb's runner in this process.

    Raises
    ------
    RuntimeError
        If the simulator is not usable; the message says why and what to do.
    """
    status = simulator_status(name)
    if not status.usable:
        raise RuntimeError(status.reason)
    for key, value in status.env:
        if key == "PATH":
            parts = os.environ.get("PATH", "").split(os.pathsep)
            if parts[0] != value:
                os.environ["PATH"] = os.pathsep.join([value, *[p for p in parts if p != value]])
        else:
            os.environ[key] = value
    if name == "verilator":
        os.environ.update(compiler_cache_env())
    return status


def required_simulators() -> set[str]:
    """Simulators that must be usable (``OPENRDU_REQUIRE_SIMS=icarus,verilator``, set by CI).

    A required simulator that is missing makes its tests fail instead of skip.
    """
    raw = os.environ.get("OPENRDU_REQUIRE_SIMS", "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = names - set(SIMULATORS)
    if unknown:
        raise ValueError(f"OPENRDU_REQUIRE_SIMS names unknown simulator(s) {sorted(unknown)}; "
                         f"valid: {', '.join(SIMULATORS)}")
    return names


def _main() -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="OpenRDU simulators")
    for column in ("simulator", "usable", "version", "path / reason"):
        table.add_column(column)
    for name in SIMULATORS:
        s = simulator_status(name)
        table.add_row(name, "yes" if s.usable else "[red]no[/red]", s.version or "-",
                      s.path if s.usable else s.reason)
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
