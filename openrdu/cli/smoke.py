"""``openrdu smoke``: the stream smoke test (random valid/ready stalls) on Icarus and/or Verilator."""

from __future__ import annotations

import json
from pathlib import Path

from ..flows import simulators
from ..flows.smoke import report_unusable, run_smoke, smoke_table
from .args import positive_int
from .common import add_preset, add_sim, console_for

__all__ = ["register", "cmd_smoke", "add_stream_options"]


def cmd_smoke(args) -> int:
    console = console_for(args.json)
    rows = run_smoke(args.preset, simulators(args.sim), items=args.items, seed=args.seed,
                     waves=args.waves, build_root=Path(args.build_dir), console=console)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(smoke_table(rows))
        report_unusable(console, rows)
    ran = [r for r in rows if r["result"] in ("pass", "FAIL")]
    return 0 if ran and all(r["result"] == "pass" for r in ran) else 1


def add_stream_options(sub, name: str, help_text: str):
    """The parser of ``smoke`` and ``demo``: preset, simulators, payloads, seed, waves, build folder."""
    p = sub.add_parser(name, help=help_text)
    add_preset(p)
    add_sim(p)
    p.add_argument("--items", type=positive_int, default=2000, help="payloads per test")
    p.add_argument("--seed", type=int, default=None, help="cocotb random seed")
    p.add_argument("--waves", action="store_true",
                   help="record waveforms (Icarus: FST, Verilator: VCD) in the build directory")
    p.add_argument("--build-dir", default="build", help="where builds, logs and waves go")
    return p


def register(sub) -> None:
    p = add_stream_options(sub, "smoke", "stream smoke test on Icarus and/or Verilator")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=cmd_smoke)
