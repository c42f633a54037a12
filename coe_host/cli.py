"""The ``openrdu`` command line.

::

    openrdu --version
    openrdu doctor                                   simulators found, versions, what is missing
    openrdu verilog --preset small -o build/verilog  Verilog of every generated top of a preset
    openrdu lint [--preset NAME]                     verilator --lint-only on every generated top
    openrdu smoke --sim all --preset small           stream smoke test on the simulators
    openrdu pcu-bench --preset small --k 256         PCU MAC-array utilisation on back-to-back tiles
    openrdu pmu-bench --preset small                 PMU bandwidth per access pattern
    openrdu mem-bench --tier hbm --pattern seq       RTL memory controller bandwidth and latency
    openrdu mem-bench --copy                         DDR -> HBM copy bandwidth through two AGCUs
    openrdu coe simulate --experts 150 --sockets 8   Composition-of-Experts node model vs a DGX baseline
    openrdu coe report                               regenerate docs/coe.md (paper vs ours) and its plots
    openrdu formal [--all]                           formal property checks with a summary table
    openrdu demo                                     what `make demo` runs

Bad input (an unknown preset or simulator, a non-positive count) exits with
status 2 and a message naming the valid choices.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from hdl import __version__
from hdl.presets import DEFAULT_PRESET, get_preset, preset_names
from hdl.tops import TOPS, generated_tops, stream_tops

from . import bench_cli, coe_cli, run_cli, synth_cli
from .cli_args import fraction, positive_int

SIM_CHOICES = ("icarus", "verilator", "all")




def _version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "missing"

    python = sys.version.split()[0]
    return f"openrdu {__version__} (amaranth {v('amaranth')}, cocotb {v('cocotb')}, python {python})"


def _console(json_mode: bool = False):
    from rich.console import Console

    # Human output goes to stderr when stdout carries JSON; logs and pipes get a wide table.
    console = Console(stderr=json_mode)
    return console if console.is_terminal else Console(stderr=json_mode, width=120)


def _simulators(choice: str) -> list[str]:
    return ["verilator", "icarus"] if choice == "all" else [choice]


# ---------------------------------------------------------------------------------------------
# verilog / lint


def write_preset_verilog(preset_name: str, out_dir: Path, tops: list[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<preset>_<top>.v`` for each generated top; return the paths."""
    from sim.runner import write_verilog

    factories = generated_tops(preset_name)
    paths = []
    for name in tops or list(factories):
        module = f"{preset_name}_{name}"
        paths.append(write_verilog(factories[name](), out_dir / f"{module}.v", name=module))
    return paths


def cmd_verilog(args) -> int:
    console = _console()
    out_dir = Path(args.output)
    paths = write_preset_verilog(args.preset, out_dir, args.top)
    for path in paths:
        lines = path.read_text().count("\n")
        console.print(f"wrote {path} ({lines} lines)")
    return 0


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


def cmd_lint(args) -> int:
    from sim import toolchain

    console = _console()
    status = toolchain.simulator_status("verilator")
    if not status.usable:
        console.print(f"[red]cannot lint:[/red] {status.reason}")
        return 1
    presets = preset_names() if args.preset == "all" else [args.preset]
    failures = 0
    for preset in presets:
        heavy = [t for t in TOPS if preset in TOPS[t].heavy and not args.top]
        if heavy:
            console.print(f"skipping {', '.join(heavy)} of {preset} (flattened, it needs > 13 GB to lint; "
                          f"name it with --top, or build it hierarchically: "
                          f"openrdu tile-build --preset {preset})")
        tops = [t for t in (args.top or TOPS) if t not in args.skip and t not in heavy]
        paths = write_preset_verilog(preset, Path(args.output) / preset, tops)
        for path, ok, text in lint_verilog(paths):
            console.print(f"{'[green]clean[/green]' if ok else '[red]FAIL[/red]'}  {path}")
            if not ok:
                failures += 1
                console.print(text)
    console.print(f"verilator --lint-only: {failures} of the generated tops have findings"
                  if failures else "verilator --lint-only: every generated top is clean")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# smoke / demo


def run_smoke(preset_name: str, simulators: list[str], *, items: int, seed: int | None,
              waves: bool, build_root: Path, console=None) -> list[dict]:
    """Run the stream smoke testbench on every generated stream top and each simulator."""
    from sim import toolchain
    from sim.runner import SimulationError, run_cocotb

    rows = []
    factories = stream_tops(preset_name)
    for sim in simulators:
        status = toolchain.simulator_status(sim)
        for top in factories:
            row = {"simulator": sim, "preset": preset_name, "top": top, "items": items}
            if not status.usable:
                rows.append({**row, "result": "unavailable", "reason": status.reason})
                continue
            label = f"{top} on {sim}: building and running {items} payloads each way"
            if console is not None and not console.is_terminal:
                console.print(label)
            spinner = (console.status(label) if console is not None and console.is_terminal
                       else nullcontext())
            try:
                with spinner:
                    result = run_cocotb(
                        factories[top](), "sim.testbenches.stream_smoke", simulator=sim,
                        build_dir=build_root / preset_name / f"{top}-{sim}", seed=seed,
                        waves=waves, env={"OPENRDU_SMOKE_ITEMS": str(items)})
            except SimulationError as e:
                rows.append({**row, "result": "error", "reason": str(e)})
                continue
            stalls = result.metrics.get("random_stalls_lose_nothing", {})
            full = result.metrics.get("full_rate_one_per_cycle", {})
            rows.append({
                **row,
                "version": status.version,
                "result": "pass" if result.passed else "FAIL",
                "failed_tests": result.failed_tests,
                "payload_bits": stalls.get("payload_bits"),
                "cycles_random_stalls": stalls.get("cycles"),
                "cycles_full_rate": full.get("cycles"),
                "cycles_per_s": stalls.get("cycles_per_s"),
                "build_s": round(result.build_s, 3),
                "run_s": round(result.run_s, 3),
                "waves": str(result.waves) if result.waves else None,
            })
    return rows


def _smoke_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Stream smoke test: random valid/ready stalls, nothing lost or duplicated")
    for column, justify in (("simulator", "left"), ("top", "left"), ("bits", "right"),
                            ("items", "right"), ("cycles (stalls)", "right"),
                            ("cycles (full rate)", "right"), ("cycles/s", "right"),
                            ("build s", "right"), ("result", "left")):
        table.add_column(column, justify=justify)
    for r in rows:
        if r["result"] in ("unavailable", "error"):
            table.add_row(r["simulator"], r["top"], "-", str(r["items"]), "-", "-", "-", "-",
                          f"[yellow]{r['result']}[/yellow]")
            continue
        color = "green" if r["result"] == "pass" else "red"
        table.add_row(r["simulator"], r["top"], str(r["payload_bits"]), str(r["items"]),
                      str(r["cycles_random_stalls"]), str(r["cycles_full_rate"]),
                      f"{r['cycles_per_s']:,.0f}" if r["cycles_per_s"] else "-",
                      f"{r['build_s']:.2f}", f"[{color}]{r['result']}[/{color}]")
    return table


def _report_unusable(console, rows):
    seen = set()
    for r in rows:
        if r["result"] in ("unavailable", "error") and r["simulator"] not in seen:
            seen.add(r["simulator"])
            console.print(f"[yellow]{r['simulator']}: {r['reason']}[/yellow]")


def cmd_smoke(args) -> int:
    console = _console(args.json)
    rows = run_smoke(args.preset, _simulators(args.sim), items=args.items, seed=args.seed,
                     waves=args.waves, build_root=Path(args.build_dir), console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(_smoke_table(rows))
        _report_unusable(console, rows)
    ran = [r for r in rows if r["result"] in ("pass", "FAIL")]
    return 0 if ran and all(r["result"] == "pass" for r in ran) else 1


def cmd_demo(args) -> int:
    from rich.table import Table

    from sim import toolchain

    console = _console()
    preset = get_preset(args.preset)
    console.rule(f"OpenRDU {__version__} demo, preset {preset.name!r}")
    console.print(
        f"grid {preset.grid_cols}x{preset.grid_rows} ({preset.num_pcus} PCUs, {preset.num_pmus} PMUs), "
        f"PCU {preset.lanes} lanes x {preset.stages} stages, "
        f"PMU {preset.pmu_banks} banks x {preset.pmu_bank_kib} KiB")
    console.print("The demo generates the preset's tops (units, switch, whole tile), smoke-tests the "
                  "stream tops, measures a PMU's access patterns, runs GEMM tiles on a PCU and launches "
                  "a two-PCU kernel on a whole tile.")

    out_dir = Path(args.build_dir) / "verilog" / preset.name
    paths = write_preset_verilog(preset.name, out_dir)
    table = Table(title=f"Generated Verilog ({out_dir})")
    for column in ("top", "what it is", "lines", "bytes"):
        table.add_column(column)
    for name, path in zip(TOPS, paths, strict=True):
        text = path.read_text()
        table.add_row(path.name, TOPS[name].description, str(text.count("\n")), f"{len(text):,}")
    console.print(table)

    rows = run_smoke(preset.name, _simulators(args.sim), items=args.items, seed=args.seed,
                     waves=args.waves, build_root=Path(args.build_dir) / "demo", console=console)
    console.print(_smoke_table(rows))
    _report_unusable(console, rows)
    ran = [r for r in rows if r["result"] in ("pass", "FAIL")]
    by_sim = {}
    for r in ran:
        by_sim.setdefault(r["simulator"], []).append(r["cycles_per_s"])
    if "verilator" in by_sim and "icarus" in by_sim:
        ratio = (sum(by_sim["verilator"]) / len(by_sim["verilator"])) / (
            sum(by_sim["icarus"]) / len(by_sim["icarus"]))
        console.print(f"Verilator / Icarus simulated cycles per second on this testbench: {ratio:.1f}x "
                      "(the Python testbench acts every cycle, so it dominates both)")
    if args.waves:
        for r in ran:
            if r.get("waves"):
                console.print(f"waves: {r['waves']}")

    console.rule("PMU: banked scratchpad")
    pmu_rows = run_pmu_bench(preset.name, _simulators(args.sim), seed=args.seed or 1,
                             build_dir=Path(args.build_dir) / "demo" / "pmu", waves=args.waves,
                             console=console)
    console.print(_pmu_table(pmu_rows))

    console.rule("PCU: output-stationary MAC array")
    pcu_rows = run_pcu_bench(preset.name, _simulators(args.sim), k=128, tiles=4, seed=args.seed or 1,
                             build_dir=Path(args.build_dir) / "demo" / "pcu", waves=args.waves,
                             console=console)
    console.print(_pcu_table(pcu_rows))
    _report_pcu_failures(console, pcu_rows)

    console.rule("Tile: program load, argument load, kernel execute")
    tile_rows = run_tile_launch("tiny", _simulators(args.sim), seed=args.seed or 1,
                                build_dir=Path(args.build_dir) / "demo" / "tile", waves=args.waves,
                                console=console)
    console.print(_tile_table(tile_rows))

    console.rule("Kernel: fused FFN on the small preset, operands in HBM")
    usable = [s for s in ("verilator", "icarus") if toolchain.simulator_status(s).usable]
    kernel_sim = args.sim if args.sim in usable else (usable[0] if usable else None)
    ffn_ok = kernel_sim is not None and run_cli.demo_ffn(console, simulator=kernel_sim, waves=args.waves,
                                                         build_root=Path(args.build_dir) / "kernels")
    missing = [s for s in _simulators(args.sim) if not toolchain.simulator_status(s).usable]
    ok = (bool(ran) and all(r["result"] == "pass" for r in ran) and all(r["bit_exact"] for r in pcu_rows)
          and all(r["bit_exact"] for r in pmu_rows) and all(r["bit_exact"] for r in tile_rows) and ffn_ok)
    console.print(("[green]demo passed[/green]" if ok else "[red]demo FAILED[/red]")
                  + (f" (not run on: {', '.join(missing)})" if missing else ""))
    return 0 if ok else 1


def _on_each_simulator(simulators: list[str], console, label: str, measure) -> list:
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

    return _on_each_simulator(
        simulators, console, f"{tiles} tiles of K={k} on the {preset} PCU's MAC array",
        lambda sim: measure_systolic(preset, sim, k=k, tiles=tiles, seed=seed, build_dir=build_dir,
                                     waves=waves))


def _pcu_table(rows: list[dict]):
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


def _report_pcu_failures(console, rows):
    for r in rows:
        for failure in r["failures"]:
            console.print(f"[red]{r['simulator']}: {failure}[/red]")


def cmd_pcu_bench(args) -> int:
    console = _console(args.json)
    rows = run_pcu_bench(args.preset, _simulators(args.sim), k=args.k, tiles=args.tiles, seed=args.seed,
                         build_dir=Path(args.build_dir), waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(_pcu_table(rows))
        _report_pcu_failures(console, rows)
    return 0 if rows and all(r["bit_exact"] for r in rows) else 1


def run_pmu_bench(preset: str, simulators: list[str], *, seed: int, build_dir: Path, waves: bool,
                  console) -> list[dict]:
    """:func:`sim.pmu_measure.measure_patterns` on each usable simulator, with progress."""
    from sim.pmu_measure import measure_patterns

    return _on_each_simulator(
        simulators, console, f"access patterns on the {preset} PMU",
        lambda sim: measure_patterns(preset, sim, seed=seed, build_dir=build_dir, waves=waves))


def _pmu_table(rows: list[dict]):
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


def cmd_pmu_bench(args) -> int:
    console = _console(args.json)
    rows = run_pmu_bench(args.preset, _simulators(args.sim), seed=args.seed, build_dir=Path(args.build_dir),
                         waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(_pmu_table(rows))
    return 0 if rows and all(r["bit_exact"] for r in rows) else 1


def run_tile_launch(preset: str, simulators: list[str], *, seed: int, build_dir: Path, waves: bool,
                    console) -> list[dict]:
    """:func:`sim.tile.run_scale_bias` (fill a PMU, then x * 1.5 - 0.25 through two PCUs) per simulator."""
    from sim.tile import run_scale_bias

    return _on_each_simulator(
        simulators, console, f"launching the scale-bias kernel on the {preset} tile",
        lambda sim: run_scale_bias(preset, sim, build_dir=build_dir, seed=seed, waves=waves))


def _tile_table(rows: list[dict]):
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

    return _on_each_simulator(
        simulators, console, f"full-rate streams over 0, 3 and 6 link hops of the {preset} mesh",
        lambda sim: measure_hops(preset, sim, build_dir=build_dir, hop_register=hop_register, seed=seed,
                                 waves=waves))


def _net_table(rows: list[dict]):
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


def cmd_net_bench(args) -> int:
    console = _console(args.json)
    preset = get_preset(args.preset)
    if preset.grid_cols < 4 or preset.grid_rows < 4:
        console.print(f"[red]net-bench routes over 6 link hops and needs a mesh of at least 4 x 4; "
                      f"preset {preset.name!r} is {preset.grid_cols} x {preset.grid_rows}[/red]")
        return 2
    rows = []
    for hop_register in ((True, False) if args.hop_register == "both" else (args.hop_register == "on",)):
        rows += run_net_bench(args.preset, _simulators(args.sim), hop_register=hop_register, seed=args.seed,
                              build_dir=Path(args.build_dir), waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(_net_table(rows))
    return 0 if rows and all(r["intact"] for r in rows) else 1


def cmd_tile_build(args) -> int:
    from rich.table import Table

    from sim import toolchain
    from sim.tile import build_tile

    console = _console(args.json)
    status = toolchain.simulator_status("verilator")
    if not status.usable:
        console.print(f"[red]cannot build:[/red] {status.reason}")
        return 1
    presets = preset_names() if args.preset == "all" else [args.preset]
    rows = []
    for preset in presets:
        text = f"{preset}: generating the tile's Verilog and building it with Verilator"
        with console.status(text) if console.is_terminal else nullcontext(console.print(text)):
            rows.append(build_tile(preset, build_dir=Path(args.build_dir), jobs=args.jobs))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0 if all(r["ok"] for r in rows) else 1
    table = Table(title="Whole tile: Verilog size and Verilator build (verilator --cc --build)")
    for column in ("preset", "Verilog lines", "MiB", "modules", "generate s", "verilate s", "build s",
                   "peak MiB", "result"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["preset"], f"{r['verilog_lines']:,}", f"{r['verilog_bytes'] / 2**20:.1f}",
                      str(r["modules"]), f"{r['generate_s']:.1f}", str(r["verilate_s"]),
                      f"{r['build_s']:.1f}", str(r["peak_mib"]),
                      "ok" if r["ok"] else f"[red]failed[/red] ({r['log']})")
    console.print(table)
    return 0 if all(r["ok"] for r in rows) else 1


def _mem_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Memory controllers under traffic (RTL controller + timing-checked DRAM model, "
                        "one channel)")
    for column in ("sim", "preset", "pattern", "MiB", "GB/s", "peak", "eff.", "row hits", "avg ns", "p99 ns",
                   "REFs", "data"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["sim"], r["preset"], r["pattern"], f"{r['bytes'] / 2**20:.2f}",
                      f"{r['achieved_GBps']:.2f}", f"{r['peak_GBps']:.1f}", f"{100 * r['efficiency']:.1f} %",
                      f"{100 * r['row_hit_rate']:.1f} %",
                      f"{r['avg_latency_ns']:.1f}", f"{r['p99_latency_ns']:.1f}", str(r["refreshes"]),
                      "ok" if r["data_ok"] else "[red]WRONG[/red]")
    return table


def _copy_table(rows: list[dict]):
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


def cmd_mem_bench(args) -> int:
    from hdl.memctrl.timing import timing_names, timing_preset
    from sim.memory import PATTERNS, mem_bench

    console = _console(args.json)
    if args.copy:
        from sim.dma import copy_bench

        rows = _on_each_simulator(
            _simulators(args.sim), console, f"copying {args.bytes} bytes DDR -> HBM through two AGCUs",
            lambda sim: copy_bench(preset=args.fabric, nbytes=args.bytes, simulator=sim, waves=args.waves))
        if args.json:
            print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        else:
            console.print(_copy_table(rows))
        return 0 if rows and all(r["bit_exact"] for r in rows) else 1
    names = timing_names(args.tier)
    if args.preset is None:
        presets = [names[0]]
    elif args.preset == "all":
        presets = names
    else:
        try:
            timing = timing_preset(args.preset)
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            return 2
        if timing.tier != args.tier:
            console.print(f"[red]{timing.name} is not a {args.tier.upper()} preset; "
                          f"--tier {args.tier} takes: {', '.join(names)}[/red]")
            return 2
        presets = [timing.name]
    patterns = list(PATTERNS) if args.pattern == "all" else [args.pattern]
    rows = []
    for preset in presets:
        for pattern in patterns:
            rows += _on_each_simulator(
                _simulators(args.sim), console, f"{preset}, {pattern} traffic, {args.bytes} bytes",
                lambda sim, preset=preset, pattern=pattern: mem_bench(
                    args.tier, preset, pattern, args.bytes, sim, write_fraction=args.write_fraction,
                    stride_bytes=args.stride, queue_depth=args.queue_depth, seed=args.seed,
                    waves=args.waves))
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        console.print(_mem_table(rows))
    return 0 if rows and all(r["data_ok"] for r in rows) else 1




def cmd_formal(args) -> int:
    from rich.table import Table

    from hdl.formal import JOBS
    from sim.formal import run_job, tools_available

    console = _console()
    jobs = [j for j in JOBS if (args.all or not j.slow) and (not args.job or j.name in args.job)]
    for solver in sorted({job.solver for job in jobs}):
        ok, reason = tools_available(solver)
        if not ok:
            console.print(f"[red]{reason}[/red]")
            return 1
    table = Table(title="Formal property checks (SymbiYosys, smtbmc)")
    for column in ("property", "guarantees", "mode", "depth", "solver", "result", "seconds"):
        table.add_column(column, justify="right" if column in ("depth", "seconds") else "left")
    results = []
    start = time.perf_counter()
    for job in jobs:
        spinner = console.status(f"{job.name}: {job.mode} depth {job.depth}") if console.is_terminal \
            else nullcontext(console.print(f"{job.name}: {job.mode} depth {job.depth}"))
        with spinner:
            result = run_job(job, Path(args.build_dir))
        results.append(result)
        if result.unfinished:
            status = "[yellow]unfinished (by design)[/yellow]"
        else:
            color = "green" if result.passed else "red"
            status = f"[{color}]{result.status}[/{color}]"
        table.add_row(job.name, job.guarantees, job.mode, str(job.depth), job.solver, status,
                      f"{result.seconds:.1f}")
    console.print(table)
    console.print(f"{len(results)} jobs in {time.perf_counter() - start:.0f} s wall time")
    failed = [r for r in results if not r.passed and not r.unfinished]
    for result in failed:
        log = result.workdir / "sby.log"
        console.print(f"[red]{result.job.name}: {result.status}[/red] (log: {log})")
        if result.counterexample:
            console.print(f"  counterexample: {result.counterexample}")
        if result.detail:
            console.print(result.detail)
    return 0 if results and not failed else 1


def cmd_doctor(args) -> int:
    from sim import toolchain

    return toolchain._main()


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openrdu",
        description="OpenRDU: an open RTL model of a reconfigurable dataflow unit.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_preset(p, allow_all=False):
        choices = preset_names() + (["all"] if allow_all else [])
        p.add_argument("--preset", default=DEFAULT_PRESET, choices=choices, metavar="NAME",
                       help=f"hardware preset, one of: {', '.join(choices)} (default {DEFAULT_PRESET})")

    def add_sim(p, default="all"):
        p.add_argument("--sim", default=default, choices=SIM_CHOICES, metavar="SIM",
                       help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default {default})")

    p = sub.add_parser("doctor", help="show which simulators are usable and why not")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("verilog", help="generate Verilog for a preset's tops")
    add_preset(p)
    p.add_argument("-o", "--output", default="build/verilog", help="output directory")
    p.add_argument("--top", action="append", choices=list(TOPS), metavar="TOP",
                   help=f"only this top (repeatable): {', '.join(TOPS)}")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("lint", help="verilator --lint-only on every generated top")
    add_preset(p, allow_all=True)
    p.add_argument("-o", "--output", default="build/lint", help="where the Verilog is written")
    p.add_argument("--top", action="append", choices=list(TOPS), metavar="TOP",
                   help="only this top (repeatable; default: all)")
    p.add_argument("--skip", action="append", default=[], choices=list(TOPS), metavar="TOP",
                   help="leave this top out (repeatable)")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("pcu-bench", help="measure the PCU MAC array's utilisation on back-to-back tiles")
    add_preset(p)
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES, metavar="SIM",
                   help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default verilator)")
    p.add_argument("--k", type=positive_int, default=256, help="inner dimension of each tile (default 256)")
    p.add_argument("--tiles", type=positive_int, default=8, help="back-to-back tiles (default 8)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random operands")
    p.add_argument("--waves", action="store_true", help="record waveforms in the build directory")
    p.add_argument("--build-dir", default="build/pcu-bench", help="where builds, logs and waves go")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_pcu_bench)

    p = sub.add_parser("formal", help="run the formal property checks (SymbiYosys)")
    p.add_argument("--all", action="store_true", help="include the slow jobs")
    p.add_argument("--job", action="append", metavar="NAME", help="only this job (repeatable)")
    p.add_argument("--build-dir", default="build/formal", help="where the jobs' work directories go")
    p.set_defaults(func=cmd_formal)

    p = sub.add_parser("pmu-bench", help="measure PMU bandwidth per access pattern")
    add_preset(p)
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES, metavar="SIM",
                   help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default verilator)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random data")
    p.add_argument("--waves", action="store_true", help="record waveforms in the build directory")
    p.add_argument("--build-dir", default="build/pmu-bench", help="where builds, logs and waves go")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_pmu_bench)

    p = sub.add_parser("tile-build", help="Verilog size and Verilator build time of a whole tile")
    add_preset(p, allow_all=True)
    p.add_argument("--jobs", type=positive_int, default=2, help="parallel C++ compile jobs (default 2)")
    p.add_argument("--build-dir", default="build/tile-build", help="where the Verilog and objects go")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_tile_build)

    p = sub.add_parser("net-bench", help="measure network latency per hop and throughput")
    add_preset(p)
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES, metavar="SIM",
                   help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default verilator)")
    p.add_argument("--hop-register", default="on", choices=("on", "off", "both"),
                   help="pipeline register per hop: on (the preset's default), off, or both builds")
    p.add_argument("--seed", type=int, default=1, help="seed of the random data")
    p.add_argument("--waves", action="store_true", help="record waveforms in the build directory")
    p.add_argument("--build-dir", default="build/net-bench", help="where builds, logs and waves go")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_net_bench)

    p = sub.add_parser("mem-bench", help="bandwidth and latency of the RTL memory controllers",
                       description="Runs one RTL channel controller with a timing-checked DRAM device model. "
                                   "--json prints one object (a list when several points run).")
    p.add_argument("--tier", default="hbm", choices=("hbm", "ddr"), help="memory tier (default hbm)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="DRAM timing preset of the tier (HBM2-2000, HBM3-6400, DDR4-3200, DDR5-4800) "
                        "or 'all'; default: the tier's first")
    p.add_argument("--pattern", default="seq", choices=("seq", "random", "strided", "all"),
                   help="traffic pattern (default seq)")
    p.add_argument("--bytes", type=positive_int, default=1 << 18, help="bytes moved (default 256 KiB)")
    p.add_argument("--write-fraction", type=fraction, default=0.0, help="share of writes (default 0: reads)")
    p.add_argument("--stride", type=positive_int, default=4096, help="bytes between strided accesses")
    p.add_argument("--queue-depth", type=int, default=32, choices=(4, 8, 16, 32, 64),
                   help="controller request slots (default 32)")
    p.add_argument("--copy", action="store_true",
                   help="instead: DDR4-3200 -> HBM2-2000 copy through two AGCUs (the CoE host's number)")
    p.add_argument("--fabric", default=DEFAULT_PRESET, choices=preset_names(), metavar="PRESET",
                   help="fabric preset of the copy path's AGCUs (default small)")
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES, metavar="SIM",
                   help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default verilator)")
    p.add_argument("--seed", type=int, default=1, help="seed of addresses and data")
    p.add_argument("--waves", action="store_true", help="record waveforms in the build directory")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_mem_bench)

    for name, func, help_text in (
        ("smoke", cmd_smoke, "stream smoke test on Icarus and/or Verilator"),
        ("demo", cmd_demo, "generate Verilog and run the smoke test on both simulators"),
    ):
        p = sub.add_parser(name, help=help_text)
        add_preset(p)
        add_sim(p)
        p.add_argument("--items", type=positive_int, default=2000, help="payloads per test")
        p.add_argument("--seed", type=int, default=None, help="cocotb random seed")
        p.add_argument("--waves", action="store_true",
                       help="record waveforms (Icarus: FST, Verilator: VCD) in the build directory")
        p.add_argument("--build-dir", default="build", help="where builds, logs and waves go")
        if name == "smoke":
            p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
        p.set_defaults(func=func)
    coe_cli.add_parser(sub)
    bench_cli.add_parser(sub)
    run_cli.add_parser(sub)
    synth_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
