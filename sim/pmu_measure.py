"""Measure PMU bandwidth per access pattern (``openrdu pmu-bench``).

Each pattern runs at full rate (no stalls at the ports) on a PMU of the preset,
checked against the golden model; bandwidth is accesses over the cycles from the
first to the last access of that side (vectors per cycle, 1.0 is the peak of one
read and one write per cycle).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hdl.counters import Counter
from hdl.pmu import AddressProgram, PatternMemoryUnit, PmuConfig, PmuParams

from .pmu import bandwidth, pmu_job, run_pmu_jobs

__all__ = ["patterns", "measure_patterns"]


def patterns(params: PmuParams) -> dict[str, tuple[str, PmuConfig, int]]:
    """``{name: (description, config, write vectors)}`` for the benchmark patterns."""
    lanes = params.lanes
    tile = lanes * lanes
    tiles = max(1, min(16, params.capacity // (2 * tile)))
    vectors = tiles * lanes
    span = vectors * lanes
    linear = AddressProgram([Counter(0, span, lanes)])
    pitch = 4 * lanes                           # a (vectors / 4) x 4·lanes word matrix
    rows = span // pitch
    tiled = AddressProgram([Counter(0, lanes * pitch, pitch), Counter(0, pitch, lanes),
                            Counter(0, rows * pitch, lanes * pitch)])
    by_rows = AddressProgram([Counter(0, tile, lanes), Counter(0, tiles * tile, tile)])
    by_columns = AddressProgram([Counter(0, lanes, 1), Counter(0, tiles * tile, tile)], lane_stride=lanes)
    stripe = (lanes - 1).bit_length()
    half = span // 2
    runs = 8
    per_run = max(1, vectors // runs)
    buffered = AddressProgram([Counter(0, per_run * lanes, lanes)], runs=runs)
    return {
        "linear": ("write and read consecutive vectors", PmuConfig(write=linear, read=linear), vectors),
        "strided": ("read every other vector", PmuConfig(write=linear, read=AddressProgram(
            [Counter(0, span, 2 * lanes)])), vectors),
        "tiled_2d": (f"read {lanes}x{lanes} tiles of a {rows}x{pitch} matrix",
                     PmuConfig(write=linear, read=tiled), vectors),
        "transpose_striped": ("write tiles by rows, read by columns, striped layout",
                              PmuConfig(write=by_rows, read=by_columns, stripe_shift=stripe), vectors),
        "transpose_plain": ("write tiles by rows, read by columns, plain layout (bank conflicts)",
                            PmuConfig(write=by_rows, read=by_columns), vectors),
        "interleave_half": ("keep and read back one half of the address range (the other PMU's half dropped)",
                            PmuConfig(write=linear, read=AddressProgram([Counter(0, half, lanes)],
                                                                        offset=half),
                                      range_lo=half, range_hi=span), vectors),
        "double_buffered": (f"{runs} runs through 2 buffers, writer and reader overlapped",
                            PmuConfig(write=buffered, read=buffered, buffers=2, buffer_words=per_run * lanes),
                            per_run * runs),
    }


def measure_patterns(preset: str, simulator: str, *, seed: int = 1,
                     build_dir: str | os.PathLike = "build/pmu-bench", waves: bool = False) -> list[dict]:
    """Run every pattern of :func:`patterns`; return one row per pattern."""
    params = PmuParams(preset)
    rng = np.random.default_rng(seed)
    jobs, meta = [], {}
    for name, (description, config, vectors) in patterns(params).items():
        data = rng.integers(0, 1 << 32, (vectors, params.lanes), dtype=np.uint64).astype(np.uint32)
        jobs.append(pmu_job(name, config, params, vin=data))
        meta[name] = description
    result = run_pmu_jobs(PatternMemoryUnit(params), jobs, simulator=simulator, waves=waves, seed=seed,
                          build_dir=Path(build_dir) / f"{params.preset.name}-{simulator}")
    figures = result.metrics.get("programs_match_golden", {})
    rows = []
    for name, description in meta.items():
        f = figures.get(name)
        rows.append({
            "preset": params.preset.name, "simulator": simulator, "pattern": name, "description": description,
            "bit_exact": f is not None and result.passed,
            "writes": f and f["writes"], "reads": f and f["reads"],
            "write_vectors_per_cycle": f and bandwidth(f, "writes"),
            "read_vectors_per_cycle": f and bandwidth(f, "reads"),
            "cycles": f and f["cycles"],
        })
    if not result.passed:
        rows.append({"preset": params.preset.name, "simulator": simulator, "pattern": "FAILED",
                     "description": "; ".join(result.failed_tests), "bit_exact": False})
    return rows
