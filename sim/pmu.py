"""Run PMU programs on Icarus or Verilator and compare them with the golden model.

A job carries the configuration words (:meth:`PmuConfig.encode`), the write data and
scalars, and the golden model's read results (:func:`hdl.pmu.run_golden`); the cocotb
bench (:mod:`sim.testbenches.unit_bench`) compares them, checks that ``wdone`` and
``rdone`` pulse once per run and that the ``writes``/``reads`` counters move by the
number of accesses, and reports each counter's span, from which
:func:`bandwidth` gives vectors per cycle.
"""

from __future__ import annotations

import os

from hdl.pmu import PatternMemoryUnit, PmuConfig, PmuParams, run_golden

from .runner import SimResult
from .unit_jobs import make_job, pack_vector, refused_job, run_jobs, stream_payloads

__all__ = ["PMU_PORTS", "pmu_job", "refused_job", "run_pmu_jobs", "bandwidth"]

PMU_PORTS = {"inputs": ["vin", "sin"], "outputs": ["vout", "sout"], "tokens": ["wdone", "rdone"],
             "counters": ["writes", "reads"]}


def _accesses(program) -> int:
    return 0 if program is None else program.runs * program.steps_per_run


def pmu_job(name: str, config: PmuConfig, params: PmuParams, *, vin=None, sin=None, valid_p: float = 1.0,
            ready_p: float = 1.0, start_token: bool = False, timeout_cycles: int | None = None) -> dict:
    """One PMU program with its inputs and the golden model's outputs, ready for the bench."""
    if start_token and config.auto_start:
        raise ValueError("start_token=True needs a configuration with auto_start=False")
    expected = run_golden(config, params, vin=vin, sin=sin)
    taken = expected["consumed"]
    inputs = {"vin": stream_payloads(vin, taken["vin"], True) if taken["vin"] else [],
              "sin": stream_payloads(sin, taken["sin"], False) if taken["sin"] else []}
    writes, reads = _accesses(config.write), _accesses(config.read)
    runs = (config.write or config.read).runs
    return make_job(
        name, config.encode(params), inputs,
        {"vout": [pack_vector(row) for row in expected["vout"]], "sout": [int(x) for x in expected["sout"]]},
        tokens={"wdone": runs if config.write else 0, "rdone": runs if config.read else 0},
        counts={"writes": writes, "reads": reads}, valid_p=valid_p, ready_p=ready_p, start_token=start_token,
        timeout_cycles=timeout_cycles or 400 + 8 * params.lanes * (writes + reads))


def run_pmu_jobs(dut: PatternMemoryUnit, jobs: list[dict], *, simulator: str, build_dir: str | os.PathLike,
                 waves: bool = False, seed: int | None = None) -> SimResult:
    """Build ``dut`` and run ``jobs`` in order on ``simulator``."""
    if not isinstance(dut, PatternMemoryUnit):
        raise TypeError(f"dut must be a PatternMemoryUnit, got {type(dut).__name__}")
    return run_jobs(dut, PMU_PORTS, jobs, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed)


def bandwidth(metrics: dict, side: str) -> float | None:
    """Vectors per cycle of ``side`` (``"writes"`` or ``"reads"``) over the span of its accesses."""
    span = metrics["span"].get(side, 0)
    return metrics[side] / span if span else None
