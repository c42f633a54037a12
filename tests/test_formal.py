"""Formal property jobs (SymbiYosys from PyPI): every quick job passes, and broken designs fail.

``make formal`` (``openrdu formal``) runs all jobs, including the slow ones, with a table.
"""

from __future__ import annotations

import os

import pytest

from hdl.formal import JOBS
from hdl.formal.network import SwitchCreditHarness
from hdl.formal.streams import FifoOrderHarness, StreamRulesHarness
from hdl.formal.units import ConfigLoaderHarness
from sim.formal import FormalJob, run_job, tools_available

from .mutants import BrokenFifo, WithdrawingFifo

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
