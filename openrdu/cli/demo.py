"""``openrdu demo``: what ``make demo`` runs (see :func:`openrdu.flows.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path

from ..flows.demo import run_demo
from .common import console_for
from .smoke import add_stream_options

__all__ = ["register", "cmd_demo"]


def cmd_demo(args) -> int:
    ok = run_demo(args.preset, args.sim, items=args.items, seed=args.seed, waves=args.waves,
                  build_dir=Path(args.build_dir), console=console_for())
    return 0 if ok else 1


def register(sub) -> None:
    p = add_stream_options(sub, "demo", "generate Verilog and run the smoke test on both simulators")
    p.set_defaults(func=cmd_demo)
