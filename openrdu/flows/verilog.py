"""Verilog of a preset's generated tops, and Verilator's lint of it (``openrdu verilog``,
``openrdu lint``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hdl.tops import generated_tops

__all__ = ["write_preset_verilog", "lint_verilog"]


def write_preset_verilog(preset_name: str, out_dir: Path, tops: list[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<preset>_<top>.v`` for each generated top; return the paths."""
    from sim.runner import write_verilog

    factories = generated_tops(preset_name)
    paths = []
    for name in tops or list(factories):
        module = f"{preset_name}_{name}"
        paths.append(write_verilog(factories[name](), out_dir / f"{module}.v", name=module))
    return paths


def lint_verilog(paths: list[Path]) -> list[tuple[Path, bool, str]]:
    """Run ``verilator --lint-only`` (with the runner's short waiver list) on each file."""
    from sim import toolchain
    from sim.runner import VERILATOR_WAIVERS

    toolchain.activate("verilator")
    results = []
    for path in paths:
        module = path.stem
        proc = subprocess.run(
            ["verilator", "--lint-only", *VERILATOR_WAIVERS, "--top-module", module, str(path)],
            capture_output=True, text=True,
        )
        results.append((path, proc.returncode == 0, (proc.stdout + proc.stderr).strip()))
    return results

