"""Unit benches: ``openrdu pcu-bench``, ``pmu-bench``, ``tile-build``, ``net-bench`` and ``mem-bench``."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

from hdl.presets import DEFAULT_PRESET, get_preset, preset_names

from ..flows import simulators
from ..flows.units import (
    copy_table,
    mem_table,
    net_table,
    on_each_simulator,
    pcu_table,
    pmu_table,
    report_pcu_failures,
    run_net_bench,
    run_pcu_bench,
    run_pmu_bench,
)
from .args import fraction, positive_int
from .common import SIM_CHOICES, add_preset, console_for

__all__ = ["register", "cmd_pcu_bench", "cmd_pmu_bench", "cmd_tile_build", "cmd_net_bench", "cmd_mem_bench"]


def cmd_pcu_bench(args) -> int:
    console = console_for(args.json)
    rows = run_pcu_bench(args.preset, simulators(args.sim), k=args.k, tiles=args.tiles, seed=args.seed,
                         build_dir=Path(args.build_dir), waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(pcu_table(rows))
        report_pcu_failures(console, rows)
    return 0 if rows and all(r["bit_exact"] for r in rows) else 1


def cmd_pmu_bench(args) -> int:
    console = console_for(args.json)
    rows = run_pmu_bench(args.preset, simulators(args.sim), seed=args.seed, build_dir=Path(args.build_dir),
                         waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(pmu_table(rows))
    return 0 if rows and all(r["bit_exact"] for r in rows) else 1


def cmd_net_bench(args) -> int:
    console = console_for(args.json)
    preset = get_preset(args.preset)
    if preset.grid_cols < 4 or preset.grid_rows < 4:
        console.print(f"[red]net-bench routes over 6 link hops and needs a mesh of at least 4 x 4; "
                      f"preset {preset.name!r} is {preset.grid_cols} x {preset.grid_rows}[/red]")
        return 2
    rows = []
    for hop_register in ((True, False) if args.hop_register == "both" else (args.hop_register == "on",)):
        rows += run_net_bench(args.preset, simulators(args.sim), hop_register=hop_register, seed=args.seed,
                              build_dir=Path(args.build_dir), waves=args.waves, console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(net_table(rows))
    return 0 if rows and all(r["intact"] for r in rows) else 1


def cmd_tile_build(args) -> int:
    from rich.table import Table

    from sim import toolchain
    from sim.tile import build_tile

    console = console_for(args.json)
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


#: The largest ``mem-bench --bytes``: the job lists every request, and the run simulates every line.
MEM_BENCH_MAX_BYTES = 64 << 20
LINE_BYTES = 64


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_mem_bench(args) -> int:
    from hdl.memctrl.timing import timing_names, timing_preset
    from sim.memory import PATTERNS, mem_bench

    if args.bytes % LINE_BYTES or args.bytes > MEM_BENCH_MAX_BYTES:
        return _refuse(f"--bytes {args.bytes}: must be a multiple of the {LINE_BYTES}-byte DRAM line, from "
                       f"{LINE_BYTES} to {MEM_BENCH_MAX_BYTES} ({MEM_BENCH_MAX_BYTES >> 20} MiB)")
    if args.stride % LINE_BYTES:
        return _refuse(f"--stride {args.stride}: must be a positive multiple of {LINE_BYTES} bytes "
                       f"(one line)")
    stack = args.ports > 1 or args.channels > 1
    if args.channels < 1 or args.channels > 32 or args.channels & (args.channels - 1):
        return _refuse(f"--channels {args.channels}: must be a power of two from 1 to 32")
    if not 1 <= args.ports <= 64:
        return _refuse(f"--ports {args.ports}: must be from 1 to 64")
    if stack and (args.tier != "hbm" or args.copy):
        return _refuse(f"--ports {args.ports} --channels {args.channels}: a stack is benched with --tier hbm "
                       f"and without --copy")
    if stack and args.bytes < LINE_BYTES * args.ports:
        return _refuse(f"--bytes {args.bytes}: a stack bench needs at least one {LINE_BYTES}-byte line "
                       f"per port ({LINE_BYTES * args.ports} bytes for --ports {args.ports})")
    console = console_for(args.json)
    if args.copy:
        from sim.dma import copy_bench

        rows = on_each_simulator(
            simulators(args.sim), console, f"copying {args.bytes} bytes DDR -> HBM through two AGCUs",
            lambda sim: copy_bench(preset=args.fabric, nbytes=args.bytes, simulator=sim, waves=args.waves))
        if args.json:
            print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        else:
            console.print(copy_table(rows))
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
            return _refuse(f"--preset {args.preset}: {e}")
        if timing.tier != args.tier:
            return _refuse(f"--preset {timing.name} is not a {args.tier.upper()} preset; "
                           f"--tier {args.tier} takes: {', '.join(names)}")
        presets = [timing.name]
    patterns = list(PATTERNS) if args.pattern == "all" else [args.pattern]
    rows = []
    for preset in presets:
        for pattern in patterns:
            rows += on_each_simulator(
                simulators(args.sim), console, f"{preset}, {pattern} traffic, {args.bytes} bytes",
                lambda sim, preset=preset, pattern=pattern: mem_bench(
                    args.tier, preset, pattern, args.bytes, sim, write_fraction=args.write_fraction,
                    stride_bytes=args.stride, queue_depth=args.queue_depth, seed=args.seed,
                    waves=args.waves, channels=args.channels, ports=args.ports if stack else 0))
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        console.print(mem_table(rows))
    return 0 if rows and all(r["data_ok"] for r in rows) else 1


def register(sub) -> None:
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
    p.add_argument("--channels", type=positive_int, default=1,
                   help="HBM channels of a stack (a power of two up to 32; an HBM2 stack has 8); with "
                        "--channels or --ports above 1 the bench is a whole stack: the channels behind "
                        "the crossbar the AGCUs use, every port streaming its own region at once")
    p.add_argument("--ports", type=positive_int, default=1,
                   help="requesters (AGCUs) streaming into the stack at once, 1 to 64 (default 1)")
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
