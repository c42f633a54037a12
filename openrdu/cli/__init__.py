"""The ``openrdu`` command line.

::

    openrdu --version
    openrdu doctor                                   simulators found, versions, what is missing
    openrdu verilog --preset small -o build/verilog  Verilog of every generated top of a preset
    openrdu lint [--preset NAME]                     verilator --lint-only on every generated top
    openrdu smoke --sim all --preset small           stream smoke test on the simulators
    openrdu demo                                     what `make demo` runs
    openrdu run KERNEL --preset P --shape DIMS       compile a kernel and run it on the RTL
    openrdu pcu-bench --preset small --k 256         PCU MAC-array utilisation on back-to-back tiles
    openrdu pmu-bench --preset small                 PMU bandwidth per access pattern
    openrdu tile-build --preset small                Verilog size and Verilator build of a whole tile
    openrdu net-bench --preset small                 network latency per hop and throughput
    openrdu mem-bench --tier hbm --pattern seq       RTL memory controller bandwidth and latency
    openrdu mem-bench --copy                         DDR -> HBM copy bandwidth through two AGCUs
    openrdu formal [--all]                           formal property checks with a summary table
    openrdu synth UNIT --preset P --target T         FPGA synthesis of a unit (LUTs, DSPs, Fmax)
    openrdu bench / openrdu sweep SPEC.toml          benchmarks; design-space sweeps on Dask
    openrdu coe simulate|route|demo|report           the Composition-of-Experts host

Each command (or command group) is one module of this package with a ``register(subparsers)``
function that adds its parser and options and sets ``func``; :data:`COMMANDS` lists them in
the order ``openrdu --help`` shows. The work itself is done by :mod:`openrdu.flows`.

Bad input (an unknown preset or simulator, a non-positive count) exits with
status 2 and a message naming the valid choices.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import bench, coe, demo, doctor, formal, run, smoke, synth, units, verilog
from .common import build_reporter, version_text

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in the order of ``openrdu --help``.
COMMANDS = (doctor, verilog, smoke, demo, run, units, formal, synth, bench, coe)


def build_parser() -> argparse.ArgumentParser:
    """The ``openrdu`` parser with every command of :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="openrdu",
        description="OpenRDU: an open RTL model of a reconfigurable dataflow unit.")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


_NUMERIC = re.compile(r"^-\d[\d.,eE+-]*$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--shape -1,4,4`` -> ``--shape=-1,4,4``: argparse takes a value that starts with ``-`` and
    is not a plain number for an option and reports "expected one argument"; joined, the option's
    own check names the bad value."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NUMERIC.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``openrdu`` with ``argv`` (default: the process's arguments); returns the exit status."""
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    from sim.build_progress import reporting

    with reporting(build_reporter()):        # every model build says what it is doing
        return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
