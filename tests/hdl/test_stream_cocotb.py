"""Stream smoke test on Icarus and Verilator: random valid/ready stalls, full rate, mutants caught."""

import pytest

from hdl.presets import get_preset
from hdl.tops import generated_tops
from sim.runner import run_cocotb

from .mutants import BrokenFifo, WithdrawingFifo

pytestmark = pytest.mark.cocotb

SMOKE = "sim.testbenches.stream_smoke"


@pytest.mark.parametrize("preset, top", [("tiny", "stream_fifo"), ("small", "stream_register")])
def test_stream_smoke(simulator, sim_build_dir, waves, preset, top):
    dut = generated_tops(preset)[top]()
    result = run_cocotb(dut, SMOKE, simulator=simulator, build_dir=sim_build_dir, waves=waves,
                        env={"OPENRDU_SMOKE_ITEMS": "1000"})
    assert result.passed, result.summary()
    assert result.tests == 2
    stalls = result.metrics["random_stalls_lose_nothing"]
    assert stalls["items"] == 1000
    assert stalls["payload_bits"] == get_preset(preset).vector_bits
    # 60 % valid and 60 % ready: well over one cycle per item on average
    assert stalls["cycles"] > 1000


@pytest.mark.parametrize("mode", ["drop", "duplicate", "corrupt"])
def test_smoke_catches_broken_fifo(simulator, sim_build_dir, mode):
    """A FIFO that drops, duplicates or corrupts one payload fails both smoke tests."""
    result = run_cocotb(BrokenFifo(32, mode), SMOKE, simulator=simulator,
                        build_dir=sim_build_dir, env={"OPENRDU_SMOKE_ITEMS": "200"})
    assert not result.passed
    assert result.failures == 2, result.summary()


def test_smoke_monitor_catches_withdrawn_valid(simulator, sim_build_dir):
    """A FIFO that withdraws ``valid`` after a stall loses no data (the payloads all arrive, in
    order), so only the stream monitor can catch it: the stalled test fails, the full-rate one
    (never stalled) passes."""
    result = run_cocotb(WithdrawingFifo(32), SMOKE, simulator=simulator, build_dir=sim_build_dir,
                        env={"OPENRDU_SMOKE_ITEMS": "200"})
    assert not result.passed
    assert result.failures == 1, result.summary()
    failure = result.failed_tests[0]
    assert failure.startswith("random_stalls_lose_nothing") and "valid withdrawn" in failure, result.summary()
