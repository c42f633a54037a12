"""Jobs for :mod:`sim.testbenches.unit_bench`: programs, inputs and golden outputs of a unit.

:mod:`sim.pcu` and :mod:`sim.pmu` build jobs for their unit; this module holds what they
share: payload packing, the job record, refused-configuration jobs and the runner.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from amaranth.lib import wiring

from .runner import SimResult, run_cocotb

__all__ = ["pack_vector", "unpack_vector", "stream_payloads", "make_job", "refused_job", "run_jobs"]

BENCH = "sim.testbenches.unit_bench"


def pack_vector(words) -> int:
    """Lane words (lane 0 first) → the integer payload of a vector stream."""
    return sum(int(w) << (32 * k) for k, w in enumerate(words))


def unpack_vector(payload: int, lanes: int) -> list[int]:
    return [(payload >> (32 * k)) & 0xFFFFFFFF for k in range(lanes)]


def stream_payloads(data, count: int, vector: bool) -> list[int]:
    """The first ``count`` payloads of ``data`` (rows of lane words, or scalar words)."""
    array = np.asarray(data, dtype=np.uint64).astype(np.uint32)[:count]
    return [pack_vector(row) for row in array] if vector else [int(x) for x in array]


def make_job(name: str, cfg_words: list[int], inputs: dict, expect: dict, *, tokens: dict, counts: dict,
             valid_p: float, ready_p: float, start_token: bool, timeout_cycles: int) -> dict:
    """One job record (see :mod:`sim.testbenches.unit_bench`)."""
    for label, p in (("valid_p", valid_p), ("ready_p", ready_p)):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"{label} must be in (0, 1], got {p}")
    return {"name": name, "cfg": [int(w) for w in cfg_words], "inputs": inputs, "expect": expect,
            "tokens": tokens, "counts": counts, "valid_p": valid_p, "ready_p": ready_p,
            "start_token": start_token, "timeout_cycles": timeout_cycles}


def refused_job(name: str, words: list[int]) -> dict:
    """A job whose (corrupted) configuration the unit must refuse."""
    return {"name": name, "cfg": [int(w) for w in words], "expect_refused": True}


def run_jobs(dut: wiring.Component, ports: dict, jobs: list[dict], *, simulator: str,
             build_dir: str | os.PathLike, waves: bool = False, seed: int | None = None) -> SimResult:
    """Build ``dut`` and run ``jobs`` in order on ``simulator``."""
    if not jobs:
        raise ValueError("no jobs to run")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    job_file = build_dir / "jobs.json"
    job_file.write_text(json.dumps({"ports": ports, "jobs": jobs}))
    return run_cocotb(dut, BENCH, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed,
                      env={"OPENRDU_UNIT_JOBS": str(job_file.resolve())})
