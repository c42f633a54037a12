"""The kernel runners' watchdog, on both simulators.

A compiled kernel run through :mod:`sim.kernels` with a watchdog limit far below its run time
(its launch is still busy computing when the limit passes): the bench must take a stuck report,
stop the launch with ABORT, see the launch controller leave RUNNING for ABORTED, and the run must
fail with a :class:`sim.runner.SimulationError` that names the units that were stalled, each one
a unit the launch uses. ``openrdu run --timeout-cycles`` on the same build must exit 1 with
``simulation failed: ...`` naming them too. The shared kernel-system build of
``tests/compiler/test_kernels_cocotb.py`` (``build/kernels``) is used.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import compile_kernel
from sim.kernel_jobs import run_isolated
from sim.kernels import random_inputs
from sim.runner import SimulationError

pytestmark = pytest.mark.cocotb

SHARED = Path(__file__).resolve().parents[2] / "build" / "kernels"
KERNEL = ("gemm", (9, 13, 7), {"act": "gelu"})
#: far below the launch's run time (about 700 cycles on tiny): it is stopped mid-run
LIMIT = 192


def stalled_units(message: str) -> list[str]:
    found = re.search(r"stalled units: ([^;]+)", message)
    assert found, f"no stalled units in: {message}"
    return [name.strip() for name in found.group(1).split(",")]


def test_watchdog_aborts_the_launch_and_names_the_stalled_units(simulator, sim_build_dir):
    kernel, shape, options = KERNEL
    compiled = compile_kernel(kernel, "tiny", shape, **options)
    (launch,) = compiled.launches
    used = set(launch.kernel.units)
    with pytest.raises(SimulationError) as failure:
        run_isolated([(compiled, random_inputs(compiled, seed=3))], simulator=simulator, build_root=SHARED,
                     run_dir=sim_build_dir / "runs", timeout_cycles=LIMIT)
    message = str(failure.value)
    assert f"did not finish within {LIMIT} cycles (watchdog)" in message, message
    assert "ABORT stopped it, the controller is ABORTED" in message, message
    units = stalled_units(message)
    assert units and set(units) <= used, f"stalled {units}, the launch uses {sorted(used)}"

    # the command line: exit 1 and the same report on stderr
    env = dict(os.environ, OPENRDU_BUILD=str(SHARED.parent))
    proc = subprocess.run([sys.executable, "-m", "openrdu", "run", kernel, "--preset", "tiny", "--shape",
                           ",".join(map(str, shape)), "--act", options["act"], "--sim", simulator,
                           "--seed", "3", "--timeout-cycles", str(LIMIT), "--json"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout == "", proc.stdout
    assert proc.stderr.startswith("simulation failed: "), proc.stderr[-2000:]
    assert "ABORTED" in proc.stderr
    cli_units = stalled_units(proc.stderr)
    assert cli_units and set(cli_units) <= used, cli_units
