"""Run a tile on Icarus or Verilator: host command phases and traffic on its open pins.

:func:`run_tile_phases` writes the tile's Verilog (:meth:`hdl.tile.Tile.verilog`: the
tile plus one PCU and one PMU module), builds it once per build directory and runs
the phases with :mod:`sim.testbenches.tile_bench`. :func:`phase` builds one phase record;
:func:`pin_port` names the tile port of an open pin.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth.lib import wiring

from hdl.tile import Tile, TileParams

from .runner import SimResult, run_cocotb

__all__ = ["phase", "pin_port", "run_tile_phases", "tile_stream_ports"]

BENCH = "sim.testbenches.tile_bench"


def pin_port(pin: str) -> str:
    """``"agcu_w0.vout"`` → the tile port ``"agcu_w0_vout"``."""
    site, name = pin.split(".")
    return f"{site}_{name}"


def tile_stream_ports(tile: Tile) -> tuple[list[str], list[str]]:
    """The tile's open-pin stream ports: (inputs the bench drives, outputs it takes from)."""
    inputs, outputs = [], []
    for name, member in tile.signature.members.items():
        if name == "host" or not member.is_signature:
            continue
        (inputs if member.flow is wiring.In else outputs).append(name)
    return inputs, outputs


def phase(name: str, *, host=(), sources=None, sinks=None, valid_p: float = 1.0, ready_p: float = 1.0,
          until_state=(), timeout: int = 20000, quiet_cycles: int = 0) -> dict:
    """One phase of :mod:`sim.testbenches.tile_bench`; pins may be given as ``"site.pin"``."""
    for label, p in (("valid_p", valid_p), ("ready_p", ready_p)):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"{label} must be in (0, 1], got {p}")
    fix = lambda k: pin_port(k) if "." in k else k  # noqa: E731
    return {"name": name, "host": [int(w) for w in host],
            "sources": {fix(k): [int(x) for x in v] for k, v in (sources or {}).items()},
            "sinks": {fix(k): int(v) for k, v in (sinks or {}).items()},
            "valid_p": valid_p, "ready_p": ready_p, "until_state": [int(s) for s in until_state],
            "timeout": timeout, "quiet_cycles": quiet_cycles}


def run_tile_phases(params: TileParams | str, phases: list[dict], *, simulator: str,
                    build_dir: str | os.PathLike, waves: bool = False, seed: int | None = None) -> SimResult:
    """Build the tile of ``params`` and run ``phases`` on ``simulator``.

    The result's ``metrics["tile_phases"][name]`` holds, per phase, ``status``,
    ``received``, ``sent_at``, ``arrived_at``, ``busy_seen``, ``stray`` and ``phase_cycles``.
    """
    if not phases:
        raise ValueError("no phases to run")
    tile = Tile(params)
    inputs, outputs = tile_stream_ports(tile)
    for ph in phases:
        for port in ph["sources"]:
            if port not in inputs:
                raise ValueError(f"phase {ph['name']}: {port} is not an open input pin of this tile")
        for port in ph["sinks"]:
            if port not in outputs:
                raise ValueError(f"phase {ph['name']}: {port} is not an open output pin of this tile")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "tile.v"
    source.write_text(tile.verilog("top"))
    spec = build_dir / "phases.json"
    spec.write_text(json.dumps({"inputs": inputs, "outputs": outputs, "phases": phases}))
    return run_cocotb(source, BENCH, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed,
                      env={"OPENRDU_TILE_PHASES": str(spec.resolve())})
