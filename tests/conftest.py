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
from sim.runner import VERILATOR_UNIT_CFLAGS_ENV

# Verilator models of units built by the tests compile without C++ optimisation: the suite's designs
# are large and their runs short, so this roughly halves build time; benchmarks keep -Os. The kernel
# system keeps its own build (sim.kernels: hierarchical, O1), the one `make demo` uses too.
os.environ.setdefault(VERILATOR_UNIT_CFLAGS_ENV, "-O0")

REPO = Path(__file__).resolve().parent.parent


#: Tests that take minutes on 2 cores (CI durations). They are collected first so that
#: pytest-xdist starts them at once instead of leaving one of them alone at the end.
LONG_FIRST = (
    "test_coe_rtl.py::test_rtl_demo",
    "test_kernels_cocotb.py::",
    "test_cli.py::test_generated_verilog_is_lint_clean",
    "test_cli.py::test_verilog_writes_every_top",
    "test_cli.py::test_tile_build_compiles_the_hierarchical_tile",
    "test_formal.py::test_property_holds[launch_bad_crc]",
    "test_formal.py::test_property_holds[switch_order]",
    "test_tile_cocotb.py::",
    "test_system_cocotb.py::",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((k for k, key in enumerate(LONG_FIRST) if key in item.nodeid), len(LONG_FIRST))
    items.sort(key=rank)


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
