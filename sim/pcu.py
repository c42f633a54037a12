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
(:mod:`sim.testbenches.unit_bench`) compares the two inside the simulator, checks that
``done`` pulses once and that ``steps`` moves by the size of the counter nest.
"""

from __future__ import annotations

import os

from hdl.pcu import PatternComputeUnit, PcuConfig, PcuParams, run_golden

from .runner import SimResult
from .unit_jobs import make_job, pack_vector, refused_job, run_jobs, stream_payloads, unpack_vector

__all__ = ["PCU_PORTS", "pack_vector", "unpack_vector", "pcu_job", "refused_job", "run_pcu_jobs"]

PCU_PORTS = {"inputs": ["vin0", "vin1", "sin0", "sin1"], "outputs": ["vout", "sout"], "tokens": ["done"],
             "counters": ["steps"]}


def pcu_job(name: str, config: PcuConfig, params: PcuParams, *, vin0=None, vin1=None, sin0=None,
            sin1=None, valid_p: float = 1.0, ready_p: float = 1.0, start_token: bool = False,
            timeout_cycles: int | None = None) -> dict:
    """One program with its inputs and the golden model's outputs, ready for the bench."""
    if start_token and config.auto_start:
        raise ValueError("start_token=True needs a configuration with auto_start=False")
    expected = run_golden(config, params, vin0=vin0, vin1=vin1, sin0=sin0, sin1=sin1)
    streams = {"vin0": vin0, "vin1": vin1, "sin0": sin0, "sin1": sin1}
    inputs = {port: stream_payloads(streams[port], count, port.startswith("v"))
              for port, count in expected["consumed"].items()}
    outputs = len(expected["vout"]) + len(expected["sout"])
    return make_job(name, config.encode(params), inputs,
                    {"vout": [pack_vector(row) for row in expected["vout"]],
                     "sout": [int(x) for x in expected["sout"]]},
                    tokens={"done": 1}, counts={"steps": expected["steps"]}, valid_p=valid_p, ready_p=ready_p,
                    start_token=start_token,
                    timeout_cycles=timeout_cycles or 400 + 40 * (expected["steps"] + outputs))


def run_pcu_jobs(dut: PatternComputeUnit, jobs: list[dict], *, simulator: str,
                 build_dir: str | os.PathLike, waves: bool = False, seed: int | None = None) -> SimResult:
    """Build ``dut`` and run ``jobs`` in order on ``simulator``."""
    if not isinstance(dut, PatternComputeUnit):
        raise TypeError(f"dut must be a PatternComputeUnit, got {type(dut).__name__}")
    return run_jobs(dut, PCU_PORTS, jobs, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed)
