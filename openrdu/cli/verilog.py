"""``openrdu verilog`` (Verilog of a preset's generated tops) and ``openrdu lint`` (Verilator's lint
of it)."""

from __future__ import annotations

from pathlib import Path

from hdl.presets import preset_names
from hdl.tops import TOPS

from ..flows.verilog import lint_verilog, write_preset_verilog
from .common import add_preset, console_for

__all__ = ["register", "cmd_verilog", "cmd_lint"]


def cmd_verilog(args) -> int:
    console = console_for()
    out_dir = Path(args.output)
    paths = write_preset_verilog(args.preset, out_dir, args.top)
    for path in paths:
        lines = path.read_text().count("\n")
        console.print(f"wrote {path} ({lines} lines)")
    return 0


def cmd_lint(args) -> int:
    from sim import toolchain

    console = console_for()
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


def register(sub) -> None:
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
