"""Measure the PCU's systolic MAC array: steady-state utilisation and cycles per tile.

``openrdu pcu-bench`` calls :func:`measure_systolic`: back-to-back GEMM tiles
(random bf16 A and B, K a parameter) at full rate on a PCU built for the preset,
checked bit for bit against the golden model, timed in the bench.

Utilisation is MAC operations done over MAC slots offered. Every fired step makes
each of the ``lanes × stages`` PEs do one MAC, so over the span from the first
fired step to the last the steady-state utilisation is ``steps / fire_span``; the
whole-run figure (``steps / cycles``) also pays the pipeline fill and the final drain.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hdl.counters import Counter
from hdl.pcu import PatternComputeUnit, PcuConfig, PcuParams
from hdl.presets import get_preset

from .pcu import pcu_job, run_pcu_jobs

__all__ = ["measure_systolic"]


def measure_systolic(preset: str, simulator: str, *, k: int = 256, tiles: int = 8, seed: int = 1,
                     build_dir: str | os.PathLike = "build/pcu-bench", waves: bool = False) -> dict:
    """Run ``tiles`` back-to-back ``lanes × stages × k`` GEMM tiles; return the figures."""
    preset = get_preset(preset)
    if k < 1 or tiles < 1:
        raise ValueError(f"k and tiles must be at least 1, got k={k}, tiles={tiles}")
    if k > (1 << preset.counter_width) - 1 or tiles > (1 << preset.counter_width) - 1:
        raise ValueError(f"k and tiles must stay below 2**{preset.counter_width} (counter width)")
    params = PcuParams(preset, ops=("mov",), tail=False, systolic=True)
    rng = np.random.default_rng(seed)
    lanes = params.lanes
    a = (rng.normal(0, 1, (k * tiles, lanes)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint32)
    b = (rng.normal(0, 1, (k * tiles, lanes)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint32)
    config = PcuConfig(mode="systolic", counters=[Counter(0, k), Counter(0, tiles)])
    job = pcu_job("gemm_tiles", config, params, vin0=a, vin1=b)
    start = time.perf_counter()
    result = run_pcu_jobs(PatternComputeUnit(params), [job], simulator=simulator,
                          build_dir=Path(build_dir) / f"{preset.name}-{simulator}", waves=waves, seed=seed)
    wall = time.perf_counter() - start
    figures = result.metrics.get("programs_match_golden", {}).get("gemm_tiles", {})
    steps, cycles = figures.get("steps", 0), figures.get("cycles", 0)
    span = figures.get("span", {}).get("steps", 0)
    return {
        "preset": preset.name,
        "simulator": simulator,
        "pes": f"{params.lanes}x{params.stages}",
        "k": k,
        "tiles": tiles,
        "bit_exact": result.passed,
        "failures": result.failed_tests,
        "steps": steps,
        "cycles": cycles,
        "fire_span": span,
        "steady_utilization": steps / span if span else None,
        "overall_utilization": steps / cycles if cycles else None,
        "cycles_per_tile_steady": span / tiles if span else None,
        "macs": steps * params.lanes * params.stages,
        "build_s": round(result.build_s, 2),
        "run_s": round(result.run_s, 2),
        "wall_s": round(wall, 2),
    }
