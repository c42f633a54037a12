"""Unit benches on the simulators: the PCU's MAC array, the PMU's access patterns, a whole-tile
launch, network hops, memory controllers and the DDR -> HBM copy; with their result tables."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

__all__ = ["on_each_simulator", "run_pcu_bench", "pcu_table", "report_pcu_failures", "run_pmu_bench",
           "pmu_table", "run_tile_launch", "tile_table", "run_net_bench", "net_table", "mem_table",
           "copy_table"]


def on_each_simulator(simulators: list[str], console, label: str, measure) -> list:
    """``measure(simulator)`` on each usable simulator with a progress line; unusable ones are reported.

    ``measure`` returns a row (dict) or a list of rows; the rows of all simulators are returned.
    """
    from sim import toolchain

    rows = []
    for sim in simulators:
        status = toolchain.simulator_status(sim)
        if not status.usable:
            console.print(f"[yellow]{sim}: {status.reason}[/yellow]")
            continue
        text = f"{sim}: {label}"
        spinner = console.status(text) if console.is_terminal else nullcontext(console.print(text))
        with spinner:
            result = measure(sim)
        rows += result if isinstance(result, list) else [result]
    return rows


def run_pcu_bench(preset: str, simulators: list[str], *, k: int, tiles: int, seed: int, build_dir: Path,
                  waves: bool, console) -> list[dict]:
    """:func:`sim.pcu_measure.measure_systolic` on each usable simulator, with progress."""
    from sim.pcu_measure import measure_systolic

    return on_each_simulator(
        simulators, console, f"{tiles} tiles of K={k} on the {preset} PCU's MAC array",
        lambda sim: measure_systolic(preset, sim, k=k, tiles=tiles, seed=seed, build_dir=build_dir,
                                     waves=waves))


def pcu_table(rows: list[dict]):
    from rich.table import Table

    def fmt(value, pattern):
        return pattern.format(value) if value is not None else "-"

    table = Table(title="PCU systolic array: back-to-back GEMM tiles at full rate, "
                        "checked against the golden model")
    for column in ("simulator", "PEs", "K", "tiles", "steps", "cycles", "cycles/tile (steady)",
                   "utilisation steady", "utilisation overall", "bit-exact", "build s", "run s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["simulator"], r["pes"], str(r["k"]), str(r["tiles"]), str(r["steps"]),
                      str(r["cycles"]), fmt(r["cycles_per_tile_steady"], "{:.1f}"),
                      fmt(r["steady_utilization"] and 100 * r["steady_utilization"], "{:.2f} %"),
                      fmt(r["overall_utilization"] and 100 * r["overall_utilization"], "{:.2f} %"),
                      "yes" if r["bit_exact"] else "[red]NO[/red]", f"{r['build_s']:.1f}",
                      f"{r['run_s']:.1f}")
    return table


def report_pcu_failures(console, rows):
    for r in rows:
        for failure in r["failures"]:
            console.print(f"[red]{r['simulator']}: {failure}[/red]")


def run_pmu_bench(preset: str, simulators: list[str], *, seed: int, build_dir: Path, waves: bool,
                  console) -> list[dict]:
    """:func:`sim.pmu_measure.measure_patterns` on each usable simulator, with progress."""
    from sim.pmu_measure import measure_patterns

    return on_each_simulator(
        simulators, console, f"access patterns on the {preset} PMU",
        lambda sim: measure_patterns(preset, sim, seed=seed, build_dir=build_dir, waves=waves))


def pmu_table(rows: list[dict]):
    from rich.table import Table

    def fmt(value):
        return f"{value:.3f}" if value is not None else "-"

    table = Table(title="PMU bandwidth per access pattern (vectors per cycle; 1.000 is one per cycle)")
    for column in ("simulator", "pattern", "writes", "reads", "write vec/cycle", "read vec/cycle",
                   "bit-exact"):
        table.add_column(column, justify="left" if column == "pattern" else "right")
    for r in rows:
        table.add_row(r["simulator"], r["pattern"], str(r.get("writes", "-")),
                      str(r.get("reads", "-")), fmt(r.get("write_vectors_per_cycle")),
                      fmt(r.get("read_vectors_per_cycle")), "yes" if r["bit_exact"] else "[red]NO[/red]")
    return table


def run_tile_launch(preset: str, simulators: list[str], *, seed: int, build_dir: Path, waves: bool,
                    console) -> list[dict]:
    """:func:`sim.tile.run_scale_bias` (fill a PMU, then x * 1.5 - 0.25 through two PCUs) per simulator."""
    from sim.tile import run_scale_bias

    return on_each_simulator(
        simulators, console, f"launching the scale-bias kernel on the {preset} tile",
        lambda sim: run_scale_bias(preset, sim, build_dir=build_dir, seed=seed, waves=waves))


def tile_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Whole-tile launch: PMU -> PCU (x * 1.5) -> PCU (+ argument -0.25) -> PMU -> edge")
    for column in ("simulator", "preset", "vectors", "records", "image words", "state", "kernel cycles",
                   "bit-exact", "build s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["simulator"], r["preset"], str(r["vectors"]), str(r["records"]),
                      str(r["image_words"]), r["state"], str(r["kernel_cycles"]),
                      "yes" if r["bit_exact"] else "[red]NO[/red]", f"{r['build_s']:.1f}")
    return table


def run_net_bench(preset: str, simulators: list[str], *, hop_register: bool | None, seed: int,
                  build_dir: Path, waves: bool, console) -> list[dict]:
    """:func:`sim.tile.measure_hops` on each usable simulator, with progress."""
    from sim.tile import measure_hops

    return on_each_simulator(
        simulators, console, f"full-rate streams over 0, 3 and 6 link hops of the {preset} mesh",
        lambda sim: measure_hops(preset, sim, build_dir=build_dir, hop_register=hop_register, seed=seed,
                                 waves=waves))


def net_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Network: latency per link hop and throughput (vector fabric, sinks always ready)")
    for column in ("simulator", "hop register", "route", "link hops", "latency (cycles)", "cycles/hop",
                   "payloads/cycle", "intact"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for r in rows:
        table.add_row(r["simulator"], "yes" if r["hop_register"] else "no", r["route"], str(r["link_hops"]),
                      str(r["latency_cycles"]),
                      "-" if r["cycles_per_hop"] is None else f"{r['cycles_per_hop']:.2f}",
                      f"{r['payloads_per_cycle']:.3f}", "yes" if r["intact"] else "[red]NO[/red]")
    return table


def mem_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Memory controllers under traffic (RTL controllers + timing-checked DRAM models; "
                        "a stack: ports streaming at once through the crossbar)")
    for column in ("sim", "preset", "channels x ports", "pattern", "MiB", "GB/s", "peak", "eff.", "row hits",
                   "avg ns", "p99 ns", "REFs", "data"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["sim"], r["preset"], f"{r.get('channels', 1)} x {r.get('ports', 1)}", r["pattern"],
                      f"{r['bytes'] / 2**20:.2f}",
                      f"{r['achieved_GBps']:.2f}", f"{r['peak_GBps']:.1f}", f"{100 * r['efficiency']:.1f} %",
                      f"{100 * r['row_hit_rate']:.1f} %",
                      f"{r['avg_latency_ns']:.1f}", f"{r['p99_latency_ns']:.1f}", str(r["refreshes"]),
                      "ok" if r["data_ok"] else "[red]WRONG[/red]")
    return table


def copy_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="DDR -> HBM copy through two AGCUs (one channel pair)")
    for column in ("simulator", "fabric", "DDR", "HBM", "MiB", "copy GB/s", "bottleneck", "of bottleneck",
                   "bit-exact"):
        table.add_column(column, justify="right")
    for r in rows:
        limit = r["limits_GBps"][r["bottleneck"]]
        table.add_row(r["sim"], r["preset"], r["ddr"], r["hbm"], f"{r['bytes'] / 2**20:.2f}",
                      f"{r['copy_GBps']:.2f}", f"{r['bottleneck']} ({limit:.1f})",
                      f"{100 * r['efficiency_vs_bottleneck']:.1f} %",
                      "yes" if r["bit_exact"] else "[red]NO[/red]")
    return table

