"""Run PCU programs on Icarus or Verilator and compare them with the golden model.

::

    from hdl.pcu import PcuParams, PcuConfig, Stage, PatternComputeUnit
    from sim.pcu import pcu_job, run_pcu_jobs

    params = PcuParams("tiny", ops=("mov", "fmul", "fadd"), tail=False, systolic=False)
    config = PcuConfig(counters=[Counter(0, 16)], stages=[Stage("fmul", "vin0", "vin1")])
    job = pcu_job("mul", config, params, vin0=x, vin1=y, valid_p=0.7, ready_p=0.6)
    result = run_pcu_jobs(PatternComputeUnit(params), [job], simulator="verilator",
                          build_dir="build/pcu-mul")

Each job carries the configuration words (:meth:`PcuConfig.encode`), the input payloads
and the golden model's outputs (:func:`hdl.pcu.run_golden`); the cocotb bench
(:mod:`sim.testbenches.pcu_bench`) compares the two inside the simulator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hdl.pcu import PatternComputeUnit, PcuConfig, PcuParams, run_golden

from .runner import SimResult, run_cocotb

__all__ = ["pack_vector", "unpack_vector", "pcu_job", "refused_job", "run_pcu_jobs"]

BENCH = "sim.testbenches.pcu_bench"


def pack_vector(words) -> int:
    """Lane words (lane 0 first) → the integer payload of a vector stream."""
    return sum(int(w) << (32 * k) for k, w in enumerate(words))


def unpack_vector(payload: int, lanes: int) -> list[int]:
    return [(payload >> (32 * k)) & 0xFFFFFFFF for k in range(lanes)]


def pcu_job(name: str, config: PcuConfig, params: PcuParams, *, vin0=None, vin1=None, sin0=None,
            sin1=None, valid_p: float = 1.0, ready_p: float = 1.0, start_token: bool = False,
            timeout_cycles: int | None = None) -> dict:
    """One program with its inputs and the golden model's outputs, ready for the bench."""
    if start_token and config.auto_start:
        raise ValueError("start_token=True needs a configuration with auto_start=False")
    expected = run_golden(config, params, vin0=vin0, vin1=vin1, sin0=sin0, sin1=sin1)
    streams = {"vin0": vin0, "vin1": vin1, "sin0": sin0, "sin1": sin1}
    inputs = {}
    for port, count in expected["consumed"].items():
        data = np.asarray(streams[port], dtype=np.uint64).astype(np.uint32)[:count]
        inputs[port] = [pack_vector(row) for row in data] if port.startswith("v") else [int(x) for x in data]
    outputs = len(expected["vout"]) + len(expected["sout"])
    return {
        "name": name,
        "cfg": config.encode(params),
        "inputs": inputs,
        "expect": {"vout": [pack_vector(row) for row in expected["vout"]],
                   "sout": [int(x) for x in expected["sout"]]},
        "steps": expected["steps"],
        "valid_p": valid_p,
        "ready_p": ready_p,
        "start_token": start_token,
        "timeout_cycles": timeout_cycles or 400 + 40 * (expected["steps"] + outputs),
    }


def refused_job(name: str, words: list[int]) -> dict:
    """A job whose (corrupted) configuration the PCU must refuse."""
    return {"name": name, "cfg": [int(w) for w in words], "expect_refused": True}


def run_pcu_jobs(dut: PatternComputeUnit, jobs: list[dict], *, simulator: str,
                 build_dir: str | os.PathLike, waves: bool = False, seed: int | None = None) -> SimResult:
    """Build ``dut`` and run ``jobs`` in order on ``simulator``."""
    if not isinstance(dut, PatternComputeUnit):
        raise TypeError(f"dut must be a PatternComputeUnit, got {type(dut).__name__}")
    if not jobs:
        raise ValueError("no jobs to run")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    job_file = build_dir / "jobs.json"
    job_file.write_text(json.dumps(jobs))
    return run_cocotb(dut, BENCH, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed,
                      env={"OPENRDU_PCU_JOBS": str(job_file.resolve())})
