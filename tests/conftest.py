"""Shared fixtures: the simulator parametrisation and per-test build directories.

``simulator``
    Parametrised over Icarus and Verilator. An unusable simulator skips its
    tests with one reason line, unless it is listed in ``OPENRDU_REQUIRE_SIMS``
    (CI sets ``icarus,verilator``), in which case the tests fail.
``sim_build_dir``
    ``build/sim/<test id>``: Verilog, logs, results and waves of one test.
``--waves``
    Record waveforms (FST on Icarus, VCD on Verilator) in those directories.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sim import toolchain
from sim.runner import VERILATOR_CFLAGS_ENV

# Verilator models built by the tests compile without C++ optimisation: the suite's designs are
# large and its runs short, so this roughly halves build time; benchmarks keep -Os.
os.environ.setdefault(VERILATOR_CFLAGS_ENV, "-O0")

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--waves", action="store_true", default=False,
                     help="record waveforms of cocotb tests under build/sim/<test>/")


@pytest.fixture(params=toolchain.SIMULATORS)
def simulator(request) -> str:
    name = request.param
    status = toolchain.simulator_status(name)
    if not status.usable:
        if name in toolchain.required_simulators():
            pytest.fail(f"{name} is required (OPENRDU_REQUIRE_SIMS) but unusable: {status.reason}")
        pytest.skip(f"{name} unusable: {status.reason}")
    return name


@pytest.fixture
def sim_build_dir(request) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    path = REPO / "build" / "sim" / Path(request.node.path).stem / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def waves(request) -> bool:
    return request.config.getoption("--waves")
