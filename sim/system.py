"""Run kernels on a tile whose AGCUs reach HBM (:class:`hdl.system.TileSystem`).

:func:`run_system` builds the system and runs host-command runs on it
(:mod:`sim.testbenches.system_bench`); :func:`axpb_kernel` is the first kernel with its
operands in HBM — ``y = a·x + b`` streamed from HBM through two PCUs back to HBM — with
its golden model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hdl.agcu import AgcuConfig, Segment
from hdl.counters import Counter
from hdl.kernel_image import Kernel, Route
from hdl.params import KERNEL_MEMORY
from hdl.pcu import PcuConfig, ScalarInput, Stage
from hdl.pcu import run_golden as pcu_golden
from hdl.system import TileSystem

from .memory import timing_spec
from .runner import SimResult, new_run_dir, run_cocotb

__all__ = ["run_system", "segment_payload", "axpb_kernel", "lines_of_vectors", "vectors_of_lines",
           "FABRIC_PS"]

BENCH = "sim.testbenches.system_bench"
#: Fabric clock period (ps), the one the kernel system runs at (:data:`hdl.params.KERNEL_MEMORY`).
FABRIC_PS = KERNEL_MEMORY.fabric_ps


def segment_payload(system: TileSystem, agcu: str, segment: Segment) -> int:
    """A ``seg`` stream payload: segment ``segment`` for the AGCU at site ``agcu``."""
    from amaranth import Shape

    index = system.agcu_names.index(agcu)
    bits = Shape.cast(system.seg_layout.members["agcu"]).width
    return index | (segment.payload(system.params.agcu) << bits)


def lines_of_vectors(words: np.ndarray) -> list[list[str]]:
    """(vectors, lanes) uint32 → 64-byte lines of eight hex 64-bit words (vector 0 first)."""
    flat = np.ascontiguousarray(words, dtype=np.uint32).reshape(-1)
    pad = (-len(flat)) % 16
    flat = np.concatenate([flat, np.zeros(pad, np.uint32)])
    as64 = flat.view(np.uint64).reshape(-1, 8)
    return [[f"{int(w):x}" for w in row] for row in as64]


def vectors_of_lines(rows: list[list[str]], vectors: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`lines_of_vectors`."""
    as64 = np.array([[int(w, 16) for w in row] for row in rows], dtype=np.uint64).reshape(-1)
    return as64.view(np.uint32)[:vectors * lanes].reshape(vectors, lanes)


def axpb_kernel(system: TileSystem, vectors: int, scale: float, bias: float, *, src: int, dst: int):
    """``y = x · scale + bias`` on fp32 vectors: HBM → AGCU agcu_w0 → PCU (0, 0) (fmul by a
    constant) → PCU (1, 1) (fadd of kernel argument 2) → AGCU agcu_e1 → HBM.

    ``src`` and ``dst`` are vector addresses within the AGCUs' segment 0 (kernel arguments
    0 and 1, taken by the AGCUs from the scalar fabric). Returns ``(kernel, golden)``;
    ``golden(x)`` gives the expected output words from the PCU golden model.
    """
    params = system.params
    scale_bits = int(np.float32(scale).view(np.uint32))
    bias_bits = int(np.float32(bias).view(np.uint32))
    times = PcuConfig(counters=[Counter(0, vectors)], stages=[Stage("fmul", "vin0", "const0")],
                      constants=[scale_bits], auto_start=False)
    plus = PcuConfig(counters=[Counter(0, vectors)], stages=[Stage("fadd", "vin0", "scalar0")],
                     scalars={0: ScalarInput(pop_level=1)}, auto_start=False)
    load = AgcuConfig(direction="load", segment=0, counters=[Counter(0, vectors)], base_from_scalar=True)
    store = AgcuConfig(direction="store", segment=0, counters=[Counter(0, vectors)], base_from_scalar=True)
    kernel = Kernel(params, units={"agcu_w0": load, "pcu_0_0": times, "pcu_1_1": plus, "agcu_e1": store},
                    routes=[
                        Route("agcu_w0.vout", ["pcu_0_0.vin0"]),
                        Route("pcu_0_0.vout", ["pcu_1_1.vin0"]),
                        Route("pcu_1_1.vout", ["agcu_e1.vin"]),
                        Route("host.arg0", ["agcu_w0.sin"]),
                        Route("host.arg1", ["agcu_e1.sin"]),
                        Route("host.arg2", ["pcu_1_1.sin0"]),
                        Route("host.start", ["agcu_w0.start", "pcu_0_0.start", "pcu_1_1.start",
                                             "agcu_e1.start"]),
                        Route("agcu_e1.done", ["host.done"]),
                    ], arguments=[src, dst, bias_bits], done_tokens=1)

    def golden(x):
        scaled = pcu_golden(times, params.pcu, vin0=x)["vout"]
        return pcu_golden(plus, params.pcu, vin0=scaled, sin0=[bias_bits])["vout"]

    return kernel, golden


def run_system(system: TileSystem, runs: list[dict], *, simulator: str, build_dir, waves: bool = False
               ) -> tuple[SimResult, dict]:
    """Build ``system`` and run ``runs``; return the result and the per-run metrics."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    from .watchdog import watch_names

    job = {"hbm": timing_spec(system.hbm), "channels": system.channels, "ecc": system.ecc,
           "interleave_lines": system.interleave_lines, "hashed": system.hashed,
           "fabric_ps": FABRIC_PS, "watch": watch_names(system), "runs": runs}
    run_dir = new_run_dir(build_dir)
    job_file = run_dir / "job.json"
    job_file.write_text(json.dumps(job))
    result = run_cocotb(system, BENCH, simulator=simulator, build_dir=build_dir, waves=waves,
                        reuse_build=True, test_dir=run_dir,
                        env={"OPENRDU_SYSTEM_JOB": str(job_file.resolve())})
    return result, result.metrics.get("system", {}).get("runs", {})
