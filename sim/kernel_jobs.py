"""Kernel simulations that run side by side on one simulator build.

A kernel system (:func:`sim.kernels.system_for`) takes minutes to build, so every simulation of
one preset and simulator shares one model, ``<build_root>/<preset>/system_<sim>/model`` (the one
``openrdu run`` uses), built from one Verilog file, ``<build_root>/<preset>/verilog/top.v``.
:func:`ensure_build` makes it current once, atomically and under a file lock (two processes never
build one model at once, and an interrupted build is never reused); :func:`run_isolated` then runs
kernels against that model with a run folder of its own (job, inputs, outputs, results, logs), so
any number of simulations of the same build can run at once.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["ensure_build", "run_isolated"]


def ensure_build(preset: str, simulator: str, build_root) -> dict:
    """Make ``<build_root>/<preset>/system_<simulator>`` current (build it when the hdl/ sources
    or the parameters changed) and return ``{"built": bool, "build_s": float, "dir": str}``.

    Concurrent callers (sweep workers, a bench, the test suite's workers) wait for one build
    instead of building the same model twice (:func:`sim.kernels.prepare_model`).
    """
    from .kernels import prepare_model

    start = time.perf_counter()
    model = prepare_model(preset, simulator, Path(build_root) / preset)
    return {"built": model["built"], "build_s": model["build_s"], "wall_s": time.perf_counter() - start,
            "dir": model["dir"]}


def run_isolated(cases, *, simulator: str, build_root, run_dir, timeout_cycles: int | None = None,
                 keep: bool = False):
    """:func:`sim.kernels.run_many` against the shared build of :func:`ensure_build`, with
    everything the run writes in ``run_dir`` (removed afterwards unless ``keep``). Returns the
    :class:`sim.kernels.KernelRun` list; their ``sim_s`` are shares (by cycles) of the
    simulator's wall time."""
    from .kernels import model_folder, run_many

    presets = {c.preset for c, _ in cases}
    if len(presets) != 1:
        raise ValueError(f"one preset per run, got {sorted(presets)}")
    preset = presets.pop()
    ensure_build(preset, simulator, build_root)
    runs = run_many(cases, simulator=simulator, build_dir=Path(build_root) / preset, run_dir=run_dir,
                    timeout_cycles=timeout_cycles, keep=keep)
    for run in runs:
        run.build_dir = str((Path(build_root) / preset / model_folder(simulator)).resolve())
    return runs
