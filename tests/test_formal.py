"""Formal property jobs (SymbiYosys from PyPI): every quick job passes, and broken designs fail.

``make formal`` (``openrdu formal``) runs all jobs, including the slow ones, with a table.
"""

from __future__ import annotations

import os

import pytest

from hdl.formal import JOBS
from hdl.formal.agcu import AgcuSegmentHarness, formal_agcu_params
from hdl.formal.launch import LaunchCrcHarness
from hdl.formal.memctrl import DfiTimingHarness, formal_timing
from hdl.formal.network import SwitchCreditHarness, SwitchOrderHarness
from hdl.formal.streams import FifoOrderHarness, StreamRulesHarness
from hdl.formal.units import ConfigLoaderHarness
from sim.formal import FormalJob, run_job, tools_available

from .mutants import BrokenFifo, WithdrawingFifo, mutant

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


@pytest.mark.parametrize("job", [j for j in JOBS if not j.slow], ids=lambda j: j.name)
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


def test_credit_proof_fails_when_credits_start_above_the_receiver_depth(formal_dir):
    """Mutation "credit counters start at depth + 1": neighbours hold one entry fewer than counted."""
    job = FormalJob("credits_too_high", "mutant", lambda: SwitchCreditHarness(receiver_depth=3), "bmc", 10)
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample, result.detail


# ---- one-line mutations of the real RTL (tests/mutants.py: mutant): each proof must fail


def _fails(job, formal_dir):
    result = run_job(job, formal_dir)
    assert result.status == "FAIL" and result.counterexample and result.counterexample.exists(), \
        f"{job.name}: {result.status}\n{result.detail}"


def test_order_proof_fails_when_a_multicast_advances_for_one_taker(formal_dir):
    """switch.py: an input is blocked only when *every* taker lacks a credit (``.all()`` for ``.any()``),
    so a multicast advances past a full taker, which loses that payload."""
    broken = mutant("hdl.network.switch", "Switch", "for out, t in takes[port]).any()",
                    "for out, t in takes[port]).all()")
    _fails(FormalJob("switch_multicast_any", "mutant", lambda: SwitchOrderHarness(factory=broken), "bmc", 10),
           formal_dir)


def test_segment_proof_fails_for_an_off_by_one_bound_check(formal_dir):
    """agcu/unit.py: the bound check lets a run's last line equal the segment's bound (``>`` for ``>=``)."""
    broken = mutant("hdl.agcu.unit", "AddressGenerationUnit", "hi[slot_bits:] >= run_bound",
                    "hi[slot_bits:] > run_bound")
    _fails(FormalJob("agcu_bound_off_by_one", "mutant",
                     lambda: AgcuSegmentHarness(formal_agcu_params(1), factory=broken), "bmc", 15),
           formal_dir)


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
                     lambda: LaunchCrcHarness(units=True, record_contract=True, max_words=5, word_mask=0x00030003,
                                              factory=broken), "bmc", 10), formal_dir)
