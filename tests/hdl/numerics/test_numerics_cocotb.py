"""The MAC and the exp unit on Icarus and Verilator: random operands, back-pressure, full rate."""

import pytest

from hdl.numerics.units import OpUnit
from sim.runner import run_cocotb

pytestmark = pytest.mark.cocotb

BENCH = "sim.testbenches.numerics_unit"


@pytest.mark.parametrize("op, items", [("mac", 3000), ("exp", 1500)])
def test_unit_matches_golden_under_backpressure(simulator, sim_build_dir, waves, op, items):
    dut = OpUnit(op)
    result = run_cocotb(dut, BENCH, simulator=simulator, build_dir=sim_build_dir, waves=waves,
                        env={"OPENRDU_OP": op, "OPENRDU_ITEMS": str(items),
                             "OPENRDU_LATENCY": str(dut.latency)})
    assert result.passed, result.summary()
    assert result.tests == 2
    stalled = result.metrics["random_operands_with_backpressure"]
    assert stalled["items"] == items and stalled["cycles"] > items  # stalls did happen


def test_bench_catches_a_wrong_unit(simulator, sim_build_dir):
    """An adder checked as a subtractor must fail both tests (the comparison can fail)."""
    result = run_cocotb(OpUnit("fadd"), BENCH, simulator=simulator, build_dir=sim_build_dir,
                        env={"OPENRDU_OP": "fsub", "OPENRDU_ITEMS": "200", "OPENRDU_LATENCY": "2"})
    assert result.failures == 2, result.summary()
