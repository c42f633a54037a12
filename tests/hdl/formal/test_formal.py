"""Formal property jobs (SymbiYosys from PyPI): every job passes, and broken designs fail.

CI (``make test``) runs the quick jobs and a few mutation checks, about 4 minutes of solver time on
the 2-core reference machine; the jobs marked ``slow`` in :mod:`hdl.formal.jobs` and the other mutation
checks carry the ``soak`` marker (``make test-all``). ``make formal`` (``openrdu formal --all``) runs every
job with a table. Measure the CI share with::

    nice -n 19 .venv/bin/python -m pytest tests/hdl/formal/test_formal.py -n 0 -m "not soak" --durations=0
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from hdl.formal import JOBS, FormalJob
from hdl.formal.agcu import AgcuSegmentHarness, formal_agcu_params
from hdl.formal.jobs import PMU_BUFFERS_DEPTH
from hdl.formal.launch import LaunchCrcHarness
from hdl.formal.memctrl import DfiTimingHarness, formal_timing
from hdl.formal.network import SwitchCreditHarness, SwitchOrderHarness
from hdl.formal.pmu_buffers import PmuBufferHarness
from hdl.formal.streams import FifoOrderHarness, StreamRulesHarness
from hdl.formal.units import ConfigLoaderHarness
from openrdu.flows.formal import run_job, tools_available

from ..mutants import BrokenFifo, WithdrawingFifo, mutant

pytestmark = pytest.mark.formal


@pytest.fixture(autouse=True)
def _tools():
    ok, reason = tools_available()
    if not ok:  # make setup installs them; CI must not silently skip
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def formal_dir(tmp_path):
    return tmp_path


soak = pytest.mark.soak


def _job_param(job):
    return pytest.param(job, id=job.name, marks=[soak] if job.slow else [])


# every job that finishes; jobs known not to finish within run_job's timeout are left to `make formal`
@pytest.mark.parametrize("job", [_job_param(j) for j in JOBS if j.finishes])
def test_property_holds(job, formal_dir):
    result = run_job(job, formal_dir)
    assert result.passed, (f"{job.name}: {result.status}\n{result.detail}\n"
                           f"counterexample: {result.counterexample}")


@pytest.mark.parametrize("mode", ["drop", "duplicate", "corrupt"])
def test_order_proof_fails_for_broken_fifo(mode, formal_dir):
    job = FormalJob(f"broken_{mode}", "mutant",
                    lambda: FifoOrderHarness(4, 1, factory=lambda: BrokenFifo(1, mode, 2)), "bmc", 12)
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample and result.counterexample.exists(), result.detail


def test_stream_rules_proof_fails_when_valid_is_withdrawn(formal_dir):
    job = FormalJob("withdrawing", "mutant", lambda: StreamRulesHarness(lambda: WithdrawingFifo(4)), "prove",
                    4)
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample, result.detail


def test_refusal_proof_fails_when_loader_checks_another_magic(formal_dir):
    job = FormalJob("wrong_magic", "mutant", lambda: ConfigLoaderHarness(True, loader_magic=0x9C0F), "prove",
                    4)
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample, result.detail


@soak
def test_credit_proof_fails_when_credits_start_above_the_receiver_depth(formal_dir):
    """Mutation "credit counters start at depth + 1": neighbours hold one entry fewer than counted."""
    job = FormalJob("credits_too_high", "mutant", lambda: SwitchCreditHarness(receiver_depth=3), "bmc", 10)
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample, result.detail


# ---- one-line mutations of the real RTL (tests/hdl/mutants.py: mutant): each proof must fail


def _fails(job, formal_dir):
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample and result.counterexample.exists(), \
        f"{job.name}: {result.status}\n{result.detail}"


@soak
def test_order_proof_fails_when_a_multicast_advances_for_one_taker(formal_dir):
    """switch.py: an input is blocked only when *every* taker lacks a credit (``.all()`` for ``.any()``),
    so a multicast advances past a full taker, which loses that payload."""
    broken = mutant("hdl.network.switch", "Switch", "for out, t in takes[port]).any()",
                    "for out, t in takes[port]).all()")
    _fails(FormalJob("switch_multicast_any", "mutant", lambda: SwitchOrderHarness(factory=broken), "bmc", 10),
           formal_dir)


@soak
def test_segment_proof_fails_for_an_off_by_one_bound_check(formal_dir):
    """agcu/unit.py: the bound check lets a run's last line equal the segment's bound (``>`` for ``>=``)."""
    broken = mutant("hdl.agcu.unit", "AddressGenerationUnit", "hi[slot_bits:] >= run_bound",
                    "hi[slot_bits:] > run_bound")
    _fails(FormalJob("agcu_bound_off_by_one", "mutant",
                     lambda: AgcuSegmentHarness(formal_agcu_params(1), factory=broken), "bmc", 15),
           formal_dir)


@soak
def test_timing_proof_fails_when_trcd_is_one_cycle_short(formal_dir):
    """memctrl/controller.py: the ACT → column-command wait is loaded one cycle short."""
    broken = mutant("hdl.memctrl.controller", "MemoryController", "t.RCD - 1", "t.RCD - 2")
    _fails(FormalJob("memctrl_trcd_short", "mutant",
                     lambda: DfiTimingHarness(formal_timing(), factory=lambda t, q: broken(t, queue_depth=q),
                                              rules=("spacing", "data")), "prove", 10), formal_dir)


def test_crc_proof_fails_when_the_final_xor_is_forgotten(formal_dir):
    """launch.py: a record's CRC word is compared with the CRC register before its final XOR, so
    a wrong CRC word (the raw register) is accepted and the image configures its units."""
    broken = mutant("hdl.launch", "LaunchController", "word != crc_result_value(crc)", "word != crc")
    _fails(FormalJob("launch_raw_crc", "mutant",
                     lambda: LaunchCrcHarness(units=True, record_contract=True, max_words=5,
                                              word_mask=0x00030003, factory=broken), "bmc", 10), formal_dir)


def test_abort_proof_fails_when_exec_runs_after_an_abort(formal_dir):
    """launch.py: EXEC is also taken in ABORTED, so the kernel an ABORT cleared away runs again
    (with no configuration and a start token nobody should get)."""
    broken = mutant("hdl.launch", "LaunchController",
                    "(self.state == LaunchState.LOADED) | (self.state == LaunchState.DONE)",
                    "(self.state == LaunchState.LOADED) | (self.state == LaunchState.DONE) | "
                    "(self.state == LaunchState.ABORTED)")
    _fails(FormalJob("launch_exec_after_abort", "mutant",
                     lambda: LaunchCrcHarness(units=True, record_contract=True, max_words=5,
                                              word_mask=0x00030003, checks=("abort",), factory=broken),
                     "bmc", 10), formal_dir)


@soak
def test_buffer_proof_fails_when_the_reader_starts_with_the_writer(formal_dir):
    """pmu/unit.py: a write run's *start* instead of its finish hands its buffer to the reader
    (``w_started`` for ``w_finished`` in the ``ready`` counter), so the reader may read a buffer the
    writer is still writing."""
    broken = mutant("hdl.pmu.unit", "PatternMemoryUnit", "ready.eq(ready + w_finished - r_started)",
                    "ready.eq(ready + w_started - r_started)")
    _fails(FormalJob("pmu_reader_early", "mutant", lambda: PmuBufferHarness(factory=broken), "bmc",
                     PMU_BUFFERS_DEPTH, map_memories=False, flatten=True), formal_dir)


@soak
def test_buffer_proof_fails_when_a_start_token_during_the_start_is_taken_again(formal_dir):
    """pmu/unit.py as it was: a ``start`` in the cycle the previous one is taken starts the unit
    again and resets both buffer rings after the first run fired (the fault this proof found)."""
    broken = mutant("hdl.pmu.unit", "PatternMemoryUnit", "pending_start.eq(start & idle & ~pending_start)",
                    "pending_start.eq(start & idle)")
    _fails(FormalJob("pmu_double_start", "mutant", lambda: PmuBufferHarness(factory=broken), "bmc",
                     PMU_BUFFERS_DEPTH, map_memories=False, flatten=True), formal_dir)


def _job(name):
    return next(job for job in JOBS if job.name == name)


def test_deep_buffer_proof_fails_when_buffer_counts_past_max_buffers_are_taken(formal_dir):
    """pmu/unit.py before issue 27: the image check lets ``buffers`` above ``max_buffers`` through
    (``3`` on the harness's PMU built for 2), so the 1-bit ring index never closes the ring and the
    writer's second lap starts past its buffers; ``pmu_buffers_deep`` finds it (``write_in_its_buffer``,
    step 28)."""
    broken = mutant("hdl.pmu.unit", "PatternMemoryUnit",
                    '"buffers": (c.buffers == 0) | (c.buffers > p.max_buffers),', '"buffers": Const(0, 1),')
    deep = _job("pmu_buffers_deep")
    _fails(dataclasses.replace(deep, name="pmu_buffers_unchecked",
                               factory=lambda: PmuBufferHarness(factory=broken)), formal_dir)


def test_segment_proof_fails_when_a_segment_past_the_line_space_is_kept(formal_dir):
    """agcu/unit.py without the fit check: an entry with ``base + bound > 2**addr_bits`` is kept, and a
    run inside its bound wraps round to line 0, outside its segment."""
    broken = mutant("hdl.agcu.unit", "AddressGenerationUnit",
                    "m.d.comb += fits.eq(entry.base + entry.bound <= (1 << abits))", "m.d.comb += fits.eq(1)")
    job = _job("agcu_segments")
    _fails(dataclasses.replace(job, name="agcu_segment_wraps",
                               factory=lambda: AgcuSegmentHarness(formal_agcu_params(1), factory=broken)),
           formal_dir)
