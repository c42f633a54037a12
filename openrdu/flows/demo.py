"""``openrdu demo`` (what ``make demo`` runs): every part of the stack once, with tables."""

from __future__ import annotations

from pathlib import Path

from hdl import __version__
from hdl.presets import get_preset
from hdl.tops import TOPS

from . import simulators
from .run import demo_ffn
from .smoke import report_unusable, run_smoke, smoke_table
from .units import (
    pcu_table,
    pmu_table,
    report_pcu_failures,
    run_pcu_bench,
    run_pmu_bench,
    run_tile_launch,
    tile_table,
)
from .verilog import write_preset_verilog

__all__ = ["run_demo"]


def run_demo(preset_name: str, sim: str, *, items: int, seed: int | None, waves: bool, build_dir: Path,
             console) -> bool:
    """What ``make demo`` runs: generate the preset's tops, smoke-test the stream tops, measure a PMU's
    access patterns and a PCU's MAC array, launch a kernel on a whole tile, and run the fused FFN on
    the kernel system. Prints as it goes on ``console``; returns whether every part passed."""
    from rich.table import Table

    from sim import toolchain

    preset = get_preset(preset_name)
    console.rule(f"OpenRDU {__version__} demo, preset {preset.name!r}")
    console.print(
        f"grid {preset.grid_cols}x{preset.grid_rows} ({preset.num_pcus} PCUs, {preset.num_pmus} PMUs), "
        f"PCU {preset.lanes} lanes x {preset.stages} stages, "
        f"PMU {preset.pmu_banks} banks x {preset.pmu_bank_kib} KiB")
    console.print("The demo generates the preset's tops (units, switch, whole tile), smoke-tests the "
                  "stream tops, measures a PMU's access patterns, runs GEMM tiles on a PCU and launches "
                  "a two-PCU kernel on a whole tile.")

    out_dir = Path(build_dir) / "verilog" / preset.name
    paths = write_preset_verilog(preset.name, out_dir)
    table = Table(title=f"Generated Verilog ({out_dir})")
    for column in ("top", "what it is", "lines", "bytes"):
        table.add_column(column)
    for name, path in zip(TOPS, paths, strict=True):
        text = path.read_text()
        table.add_row(path.name, TOPS[name].description, str(text.count("\n")), f"{len(text):,}")
    console.print(table)

    rows = run_smoke(preset.name, simulators(sim), items=items, seed=seed,
                     waves=waves, build_root=Path(build_dir) / "demo", console=console)
    console.print(smoke_table(rows))
    report_unusable(console, rows)
    ran = [r for r in rows if r["result"] in ("pass", "FAIL")]
    by_sim = {}
    for r in ran:
        by_sim.setdefault(r["simulator"], []).append(r["cycles_per_s"])
    if "verilator" in by_sim and "icarus" in by_sim:
        ratio = (sum(by_sim["verilator"]) / len(by_sim["verilator"])) / (
            sum(by_sim["icarus"]) / len(by_sim["icarus"]))
        console.print(f"Verilator / Icarus simulated cycles per second on this testbench: {ratio:.1f}x "
                      "(the Python testbench acts every cycle, so it dominates both)")
    if waves:
        for r in ran:
            if r.get("waves"):
                console.print(f"waves: {r['waves']}")

    console.rule("PMU: banked scratchpad")
    pmu_rows = run_pmu_bench(preset.name, simulators(sim), seed=seed or 1,
                             build_dir=Path(build_dir) / "demo" / "pmu", waves=waves,
                             console=console)
    console.print(pmu_table(pmu_rows))

    console.rule("PCU: output-stationary MAC array")
    pcu_rows = run_pcu_bench(preset.name, simulators(sim), k=128, tiles=4, seed=seed or 1,
                             build_dir=Path(build_dir) / "demo" / "pcu", waves=waves,
                             console=console)
    console.print(pcu_table(pcu_rows))
    report_pcu_failures(console, pcu_rows)

    console.rule("Tile: program load, argument load, kernel execute")
    tile_rows = run_tile_launch("tiny", simulators(sim), seed=seed or 1,
                                build_dir=Path(build_dir) / "demo" / "tile", waves=waves,
                                console=console)
    console.print(tile_table(tile_rows))

    console.rule("Kernel: fused FFN on the small preset, operands in HBM")
    usable = [s for s in ("verilator", "icarus") if toolchain.simulator_status(s).usable]
    kernel_sim = sim if sim in usable else (usable[0] if usable else None)
    ffn_ok = kernel_sim is not None and demo_ffn(console, simulator=kernel_sim, waves=waves,
                                                         build_root=Path(build_dir) / "kernels")
    missing = [s for s in simulators(sim) if not toolchain.simulator_status(s).usable]
    ok = (bool(ran) and all(r["result"] == "pass" for r in ran) and all(r["bit_exact"] for r in pcu_rows)
          and all(r["bit_exact"] for r in pmu_rows) and all(r["bit_exact"] for r in tile_rows) and ffn_ok)
    console.print(("[green]demo passed[/green]" if ok else "[red]demo FAILED[/red]")
                  + (f" (not run on: {', '.join(missing)})" if missing else ""))
    return ok
