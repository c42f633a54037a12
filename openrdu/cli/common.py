"""What every ``openrdu`` command shares: the console, the simulator and preset options."""

from __future__ import annotations

import sys

from hdl import __version__
from hdl.presets import DEFAULT_PRESET, preset_names

from ..flows import simulators

__all__ = ["SIM_CHOICES", "version_text", "console_for", "simulators", "add_preset", "add_sim",
           "run_one_command", "build_reporter"]

#: ``--sim`` of the commands that run on every simulator.
SIM_CHOICES = ("icarus", "verilator", "all")


def version_text() -> str:
    """``openrdu --version``: our version and those of Amaranth, cocotb and Python."""
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "missing"

    python = sys.version.split()[0]
    return f"openrdu {__version__} (amaranth {v('amaranth')}, cocotb {v('cocotb')}, python {python})"


def console_for(json_mode: bool = False):
    """A rich console: on stderr when stdout carries JSON, 120 columns wide when not a terminal."""
    from rich.console import Console

    # Human output goes to stderr when stdout carries JSON; logs and pipes get a wide table.
    console = Console(stderr=json_mode)
    return console if console.is_terminal else Console(stderr=json_mode, width=120)


def build_reporter(stream=None, every_s: float | None = None):
    """A reporter for :func:`sim.build_progress.reporting`: one line on ``stream`` (stderr) when a
    model build changes stage, and one every ``every_s`` seconds in between (10 s on a terminal,
    30 s in a log), so a long build is never silent."""
    import time

    stream = stream or sys.stderr
    if every_s is None:
        every_s = 10.0 if stream.isatty() else 30.0
    last = {"stage": None, "at": 0.0}

    def report(status) -> None:
        now = time.monotonic()
        key = (status.design, status.stage)
        if key != last["stage"] or now - last["at"] >= every_s:
            last.update(stage=key, at=now)
            print(status.line(), file=stream, flush=True)

    return report


def add_preset(p, allow_all: bool = False) -> None:
    """``--preset NAME`` (one of the hardware presets; ``all`` too when ``allow_all``)."""
    choices = preset_names() + (["all"] if allow_all else [])
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=choices, metavar="NAME",
                   help=f"hardware preset, one of: {', '.join(choices)} (default {DEFAULT_PRESET})")


def add_sim(p, default: str = "all") -> None:
    """``--sim SIM`` (icarus, verilator or all)."""
    p.add_argument("--sim", default=default, choices=SIM_CHOICES, metavar="SIM",
                   help=f"simulator, one of: {', '.join(SIM_CHOICES)} (default {default})")


def run_one_command(register, argv: list[str] | None = None, description: str | None = None) -> int:
    """Run the one command that ``register`` adds, outside the full ``openrdu`` parser
    (``python -m openrdu.cli.coe coe ...``); returns its exit status."""
    import argparse

    parser = argparse.ArgumentParser(prog="openrdu", description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)
