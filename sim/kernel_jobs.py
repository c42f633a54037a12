"""Kernel simulations that run side by side on one simulator build.

A kernel system (:func:`sim.kernels.system_for`) takes minutes to build, so every simulation of
one preset and simulator shares one build directory, ``<build_root>/<preset>/system_<sim>``
(the one ``openrdu run`` uses). :func:`ensure_build` makes it current once, under a file lock
(two processes never build one directory at once); :func:`run_isolated` then runs kernels
against that build with its own test directory (job, inputs, outputs, results, logs), so any
number of simulations of the same build can run at once.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ensure_build", "run_isolated"]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _borrow_verilog(root: Path, sim_dir: Path):
    """Copy the system's Verilog from the other simulator's directory when it is current there
    and not here (generating it takes minutes; :func:`sim.kernels._cached_verilog` then finds
    it current). The stamp covers every file under hdl/, so any hdl/ edit makes it stale."""
    import warnings

    from .kernels import _hdl_stamp, system_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        current = _hdl_stamp(system_for(root.name))
    here = sim_dir / "verilog.stamp"
    if (sim_dir / "top.v").exists() and here.exists() and here.read_text() == current:
        return
    for other in root.glob("system_*"):
        stamp = other / "verilog.stamp"
        if other == sim_dir or not other.is_dir() or not (other / "top.v").exists() or not stamp.exists():
            continue
        if stamp.read_text() == current:
            sim_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(other / "top.v", sim_dir / "top.v.new")
            (sim_dir / "top.v.new").replace(sim_dir / "top.v")
            here.write_text(current)
            return


def ensure_build(preset: str, simulator: str, build_root) -> dict:
    """Make ``<build_root>/<preset>/system_<simulator>`` current (build it when the hdl/ sources
    or the parameters changed) and return ``{"built": bool, "build_s": float, "dir": str}``.

    Holds an exclusive file lock while checking and building, so concurrent callers (sweep
    workers, a bench) wait for one build instead of building the same directory twice.
    """
    from compiler import compile_kernel

    from .kernels import random_inputs, run_many

    root = Path(build_root) / preset
    sim_dir = root / f"system_{simulator}"
    with _locked(root / f"system_{simulator}.lock"):
        if _current(sim_dir, simulator):
            return {"built": False, "build_s": 0.0, "dir": str(sim_dir)}
        _borrow_verilog(root, sim_dir)
        # build (or check) through the ordinary path: a one-launch GEMM in the shared directory
        compiled = compile_kernel("gemm", preset, (2, 2, 2))
        start = time.perf_counter()
        run = run_many([(compiled, random_inputs(compiled, 0))], simulator=simulator, build_dir=root)[0]
        if not run.bit_exact:
            raise RuntimeError(f"the build check kernel was not bit exact on {simulator} ({sim_dir})")
        return {
            "built": True,
            "build_s": run.build_s,
            "wall_s": time.perf_counter() - start,
            "dir": str(sim_dir),
        }


def _current(sim_dir: Path, simulator: str) -> bool:
    """The directory holds a simulator model built from Verilog of the current hdl/ sources:
    the Verilog's stamp (written by :func:`sim.kernels._cached_verilog`) matches, and the model
    is newer than the Verilog (the test cocotb's runner itself uses to skip a rebuild)."""
    from .kernels import _hdl_stamp, system_for

    top, stamp, binary = sim_dir / "top.v", sim_dir / "verilog.stamp", _sim_binary(sim_dir, simulator)
    if not (top.exists() and stamp.exists() and binary.exists()):
        return False
    if binary.stat().st_mtime < top.stat().st_mtime:
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stamp.read_text() == _hdl_stamp(system_for(sim_dir.parent.name))


def _sim_binary(sim_dir: Path, simulator: str) -> Path:
    return sim_dir / ("sim.vvp" if simulator == "icarus" else "top")


def run_isolated(
    cases, *, simulator: str, build_root, run_dir, timeout_cycles: int | None = None, keep: bool = False
):
    """Like :func:`sim.kernels.run_many`, but against the shared build made by :func:`ensure_build`
    and with everything the run writes in ``run_dir`` (removed afterwards unless ``keep``), so
    several of these can run at once. Returns the :class:`sim.kernels.KernelRun` list; their
    ``sim_s`` are shares (by cycles) of the simulator's wall time."""
    from cocotb_tools.runner import get_runner

    from . import toolchain
    from .kernels import BENCH, FABRIC_PS, _finish, _prepare, system_for
    from .memory import timing_spec
    from .metrics import METRICS_ENV
    from .runner import TIMESCALE, SimulationError, _log_tail, _parse_results

    presets = {c.preset for c, _ in cases}
    if len(presets) != 1:
        raise ValueError(f"one preset per run, got {sorted(presets)}")
    preset = presets.pop()
    ensure_build(preset, simulator, build_root)
    sim_dir = (Path(build_root) / preset / f"system_{simulator}").resolve()
    run_dir = Path(run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    system = system_for(preset)
    entries, contexts = [], []
    for index, (compiled, inputs) in enumerate(cases):
        entry, ctx = _prepare(compiled, inputs, system, run_dir / f"{index}_{compiled.name}", timeout_cycles)
        entries.append(entry)
        contexts.append(ctx)
    job_file = run_dir / "job.json"
    job_file.write_text(
        json.dumps(
            {
                "hbm": timing_spec(system.hbm),
                "channels": system.channels,
                "fabric_ps": FABRIC_PS,
                "kernels": entries,
            }
        )
    )
    toolchain.activate(simulator)
    runner = get_runner(simulator)
    results_xml, metrics_file, log = run_dir / "results.xml", run_dir / "metrics.json", run_dir / "sim.log"
    start = time.perf_counter()
    try:
        runner.test(
            test_module=BENCH,
            hdl_toplevel="top",
            hdl_toplevel_lang="verilog",
            build_dir=sim_dir,
            test_dir=run_dir,
            results_xml=str(results_xml),
            timescale=TIMESCALE,
            log_file=log,
            extra_env={METRICS_ENV: str(metrics_file), "OPENRDU_KERNEL_JOB": str(job_file)},
        )
    except SystemExit:
        pass
    run_s = time.perf_counter() - start
    tests, _, _ = _parse_results(results_xml)
    if tests == 0:
        raise SimulationError(f"{simulator} ran no kernel bench; last lines of {log}:\n{_log_tail(log)}")
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    per_kernel = metrics.get("kernel", {}).get("kernels", [])
    if len(per_kernel) != len(cases):
        raise SimulationError(
            f"the kernel bench reported {len(per_kernel)} of {len(cases)} kernels; "
            f"see {log}:\n{_log_tail(log)}"
        )
    runs = [
        _finish(compiled, ctx, m) for (compiled, _), ctx, m in zip(cases, contexts, per_kernel, strict=True)
    ]
    total = sum(max(1, r.cycles) for r in runs)
    for run in runs:
        run.sim_s = run.wall_s = run_s * max(1, run.cycles) / total
        run.build_dir = str(sim_dir)
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return runs

