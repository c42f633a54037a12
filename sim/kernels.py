# amaranth: UnusedElaboratable=no
"""Run compiled kernels (:mod:`compiler`) on the RTL: a :class:`hdl.system.TileSystem` with
HBM device models, on Icarus or Verilator.

:func:`run_compiled` packs the inputs into the kernel's HBM layout, runs its launches
(:mod:`sim.testbenches.kernel_bench`), reads the outputs back, and compares them with the
compiler's golden model (bit for bit) and with a float64 evaluation of the graph (within
the fp32 error bound). One simulator build per preset and simulator is reused by every
kernel (the hardware does not depend on the kernel).

(The first line turns off Amaranth's UnusedElaboratable warning for the systems built here only
to read their parameters, so that a command's output carries no warnings.)
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler import CompiledKernel, lines_to_vectors
from compiler.ir import reference
from compiler.kernels import bf16_words_to_float, to_bf16_words
from hdl.launch import LaunchState
from hdl.params import KERNEL_MEMORY, kernel_memory
from hdl.system import TileSystem

from .memory import timing_spec
from .runner import run_cocotb

__all__ = ["KernelRun", "run_compiled", "run_many", "prepare_model", "system_for", "HBM_PRESET",
           "FABRIC_PS", "random_inputs"]

BENCH = "sim.testbenches.kernel_bench"
#: The kernel system's memory, from the one definition in :mod:`hdl.params` (``KERNEL_MEMORY``;
#: the channel count is the preset's, :func:`hdl.params.kernel_memory`).
HBM_PRESET = KERNEL_MEMORY.hbm
FABRIC_PS = KERNEL_MEMORY.fabric_ps
LINE_BYTES = 64


def system_for(preset: str) -> TileSystem:
    from compiler.kernels import kernel_tile_params

    return TileSystem(kernel_tile_params(preset), hbm=HBM_PRESET, channels=kernel_memory(preset).channels)


def random_inputs(compiled: CompiledKernel, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Normally distributed float32 inputs of the kernel's shapes (weights scaled by 1/sqrt(fan-in))."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in compiled.graph.inputs:
        shape = compiled.graph.tensors[name].shape
        sd = scale / np.sqrt(shape[0]) if len(shape) == 2 and name not in ("A", "X", "Q", "K", "V") else scale
        out[name] = rng.normal(0.0, sd, shape).astype(np.float32)
    return out


@dataclass
class KernelRun:
    """What one run of a compiled kernel gave."""

    outputs: dict[str, np.ndarray]            # float32 values
    words: dict[str, np.ndarray]              # raw words (bf16 in the low 16 bits, or fp32)
    golden: dict[str, np.ndarray]
    launches: list[dict]
    cycles: int
    bit_exact: bool
    max_abs_err_vs_fp64: float
    err_bound_fp64: float
    within_bound: bool
    hbm_bytes: int
    violations: int
    wall_s: float
    pcu_utilization: float
    pmu_utilization: float
    sim_s: float = 0.0
    build_s: float = 0.0
    build_dir: str = ""
    waves: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def sim_cycles_per_s(self) -> float:
        return self.cycles / self.sim_s if self.sim_s else 0.0


def _as_float(words: np.ndarray, dtype: str) -> np.ndarray:
    return bf16_words_to_float(words) if dtype == "bf16" else np.asarray(words, np.uint32).view(np.float32)


def utilisation(compiled: CompiledKernel, cycles: int) -> tuple[float, float]:
    """PCU utilisation: MAC-array/SIMD steps of every PCU over (cycles × PCUs of the tile);
    PMU utilisation: words the kernel reserves in PMUs over (PMUs × capacity), averaged over
    launches weighted by their share of PCU steps."""
    from compiler.place import site_counts

    preset = compiled.launches[0].kernel.params.preset
    counts = site_counts(preset)
    n_pcu, n_pmu = counts["pcu"], counts["pmu"]
    capacity = preset.pmu_banks * preset.pmu_bank_words
    steps = sum(sum(l.pcu_steps.values()) for l in compiled.launches)
    words = max((sum(l.pmu_words.values()) for l in compiled.launches), default=0)
    pcu = steps / (max(1, cycles) * n_pcu)
    return pcu, words / (n_pmu * capacity)


def _hdl_stamp(system) -> str:
    """A hash of the system's parameters and of every hdl/ source file: the Verilog of a build
    directory with the same stamp is current."""
    import hashlib

    digest = hashlib.sha256(repr((system.params, system.hbm, system.channels, system.ecc)).encode())
    root = Path(__file__).resolve().parent.parent / "hdl"
    for path in sorted(root.rglob("*.py")):
        if "formal" not in path.relative_to(root).parts:     # proof harnesses do not change the RTL
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cached_verilog(system, verilog_dir: Path) -> Path:
    """The system's Verilog file ``<verilog_dir>/top.v``, regenerated only when the stamp changed
    (generating the Verilog of a large tile takes minutes; both simulators use the same file).
    Written atomically under a lock, with the stamp written last, so an interrupted generation is
    never taken for a current one."""
    from .build_progress import watching
    from .runner import file_lock, write_verilog

    verilog_dir = Path(verilog_dir)
    top, stamp_file = verilog_dir / "top.v", verilog_dir / "verilog.stamp"
    stamp = _hdl_stamp(system)
    with file_lock(verilog_dir / "verilog.lock"):
        if top.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return top
        stamp_file.unlink(missing_ok=True)
        with watching(verilog_dir, simulator="amaranth", design="/".join(verilog_dir.parts[-2:]),
                      history_dir=verilog_dir):
            write_verilog(system, top, "top")
        stamp_file.write_text(stamp)
    return top


#: How the Verilator model of the kernel system is built (docs/kernels.md, "Building and simulating
#: the kernel system"). Hierarchically by default: the PCU, PMU and AGCU modules are Verilator hierarchical
#: blocks (``/*verilator hier_block*/``, :meth:`hdl.tile.Tile.module_verilog`), each verilated and
#: compiled once for all its instances, so the per-cycle C++ can be compiled optimised in less time
#: than a flat build takes unoptimised. ``OPENRDU_VERILATOR_HIER=0`` builds it flat (every instance
#: verilated in place, for comparison). ``OPENRDU_VERILATOR_OPT`` is the optimisation of the
#: per-cycle code (Verilator's ``OPT_FAST``): ``O0`` is the shortest build, ``O2`` the fastest
#: simulation, ``O1`` (the default) the shortest time to a result for runs of up to ~10^6 cycles
#: (measured: docs/kernels.md). Each non-default choice has its own model folder
#: (``system_verilator-O0``, ``system_verilator-flat-O1``), so they coexist.
VERILATOR_OPT_ENV = "OPENRDU_VERILATOR_OPT"
VERILATOR_OPTS = ("O0", "O1", "O2")
DEFAULT_VERILATOR_OPT = "O1"
VERILATOR_HIER_ENV = "OPENRDU_VERILATOR_HIER"
#: Verilator arguments of a hierarchical build. ``-Wno-UNOPTFLAT``: a hierarchical block is opaque, so
#: Verilator takes every path through it for combinational and reports loops that are not there.
HIERARCHICAL_ARGS = ("--hierarchical", "-Wno-UNOPTFLAT")


def verilator_opt() -> str:
    """The optimisation level :data:`VERILATOR_OPT_ENV` asks for (default :data:`DEFAULT_VERILATOR_OPT`)."""
    value = os.environ.get(VERILATOR_OPT_ENV, DEFAULT_VERILATOR_OPT)
    if value not in VERILATOR_OPTS:
        raise ValueError(f"{VERILATOR_OPT_ENV}={value!r} is not an optimisation level; "
                         f"use one of {', '.join(VERILATOR_OPTS)}")
    return value


def verilator_hierarchical() -> bool:
    """Whether the kernel system is built hierarchically (:data:`VERILATOR_HIER_ENV`, default 1)."""
    value = os.environ.get(VERILATOR_HIER_ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{VERILATOR_HIER_ENV}={value!r} is not 0 (flat) or 1 (hierarchical)")
    return value == "1"


def verilator_build() -> str:
    """The kernel system's Verilator build in words, for reports (``hierarchical, O1``)."""
    return f"{'hierarchical' if verilator_hierarchical() else 'flat'}, {verilator_opt()}"


def _verilator_args(waves: bool = False) -> list[str]:
    """Verilator arguments of the kernel system's build. A waves build is flat: Verilator does not
    trace inside a hierarchical block (the PCU scopes of a hierarchical build's VCD are empty)."""
    return list(HIERARCHICAL_ARGS) if verilator_hierarchical() and not waves else []


def _verilator_make_vars(waves: bool = False) -> dict[str, str]:
    """Variables of the Verilator model's ``make``: ``OPT_FAST`` for the per-cycle code, ``-O0`` for a
    (flat) waves build, whose C++ is four times larger (``OPENRDU_VERILATOR_CFLAGS``, the user's flags
    for every file, wins: :func:`sim.runner.build_model`)."""
    return {"OPT_FAST": "-O0" if waves else f"-{verilator_opt()}"}


def model_folder(simulator: str, waves: bool = False) -> str:
    """The kernel system's model folder of ``simulator`` in a preset's build directory."""
    name = f"system_{simulator}"
    if simulator == "verilator":
        if not verilator_hierarchical():
            name += "-flat"
        if verilator_opt() != DEFAULT_VERILATOR_OPT or not verilator_hierarchical():
            name += f"-{verilator_opt()}"
    return name + ("-waves" if waves else "")


def prepare_model(preset: str, simulator: str, build_dir, *, waves: bool = False,
                  system: TileSystem | None = None) -> dict:
    """Make the kernel system's simulator model of ``preset`` current in ``build_dir`` (the
    Verilog in ``build_dir/verilog``, the model in ``build_dir/system_<simulator>/model``; see
    :func:`sim.runner.build_model`: atomic, under a lock, reused when current).

    ``system`` is :func:`system_for` ``(preset)`` when the caller has built it already.
    Returns ``{"built": bool, "build_s": float, "dir": str, "verilog": Path}``.
    """
    import warnings

    from .runner import build_model

    build_dir = Path(build_dir)
    with warnings.catch_warnings():                 # the system is built only to generate Verilog
        warnings.simplefilter("ignore")
        top = _cached_verilog(system if system is not None else system_for(preset), build_dir / "verilog")
    sim_dir = build_dir / model_folder(simulator, waves)
    model, build_s, built = build_model([top.resolve()], simulator=simulator, build_dir=sim_dir,
                                        build_args=_verilator_args(waves) if simulator == "verilator" else (),
                                        make_vars=_verilator_make_vars(waves), waves=waves, reuse=True)
    return {"built": built, "build_s": build_s, "dir": str(sim_dir), "verilog": top}


def run_compiled(compiled: CompiledKernel, inputs: dict[str, np.ndarray], *, simulator: str, build_dir,
                 waves: bool = False, progress: Callable[[int, int], None] | None = None,
                 timeout_cycles: int | None = None, run_dir=None, keep: bool = False) -> KernelRun:
    """Run ``compiled`` on ``inputs`` (float arrays, rounded to bf16 on entry).

    ``progress(cycles_so_far, expected_cycles)`` is called from a watcher thread while the
    simulator runs. ``timeout_cycles`` is each launch's watchdog limit (default 20 × the expected
    cycles + 100 000): a launch still running then is stopped with ABORT (:mod:`sim.watchdog`).
    Raises :class:`compiler.ShapeError` for missing or mis-shaped inputs and
    :class:`sim.runner.SimulationError` when a launch does not complete (for a timed-out one the
    message names the units that were stalled and the pins where payloads waited).
    """
    return run_many([(compiled, inputs)], simulator=simulator, build_dir=build_dir, waves=waves,
                    progress=progress, timeout_cycles=timeout_cycles, run_dir=run_dir, keep=keep)[0]


def run_many(cases: list[tuple[CompiledKernel, dict]], *, simulator: str, build_dir, waves: bool = False,
             progress: Callable[[int, int], None] | None = None, timeout_cycles: int | None = None,
             run_dir=None, keep: bool = False) -> list[KernelRun]:
    """Run several compiled kernels (all for one preset) in one simulation, one after the other
    (the system is reset between them). Returns one :class:`KernelRun` per case.

    The simulator model is shared (:func:`prepare_model` in ``build_dir``); everything the run
    writes (job, inputs, outputs, results, logs, waves) goes to a run folder of its own,
    ``run_dir`` or a new one under ``build_dir/system_<sim>/runs/``, so any number of runs can
    share the model at once. The folder is removed after a run that completed, unless ``keep`` or
    ``waves``; a failed run keeps it (its path is in the error).
    """
    import shutil

    from .runner import SimulationError, new_run_dir
    from .watchdog import watch_names

    presets = {c.preset for c, _ in cases}
    if len(presets) != 1:
        raise ValueError(f"run_many runs kernels of one preset, got {sorted(presets)}")
    preset = presets.pop()
    build_dir = Path(build_dir)
    system = system_for(preset)
    sim_dir = build_dir / model_folder(simulator)
    if run_dir is None:
        run_dir = new_run_dir(sim_dir)
    else:
        run_dir = Path(run_dir).resolve()
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
    entries, contexts = [], []
    for index, (compiled, inputs) in enumerate(cases):
        entry, ctx = _prepare(compiled, inputs, system, run_dir / f"{index}_{compiled.name}", timeout_cycles)
        entries.append(entry)
        contexts.append(ctx)
    job = {"hbm": timing_spec(system.hbm), "channels": system.channels, "fabric_ps": FABRIC_PS,
           "interleave_lines": system.interleave_lines, "hashed": system.hashed,
           "watch": watch_names(system), "kernels": entries}
    job_file = run_dir / "job.json"
    job_file.write_text(json.dumps(job))
    total_expected = sum(e["expected_cycles"] for e in entries)

    stop = threading.Event()

    def watch():
        done_before = 0
        while not stop.wait(0.5):
            cycles = 0
            for e in entries:
                try:
                    state = json.loads(Path(e["progress"]).read_text())
                except (OSError, ValueError):
                    continue
                cycles += int(state["cycles"])
            if cycles != done_before:
                done_before = cycles
                progress(cycles, total_expected)

    model = prepare_model(preset, simulator, build_dir, waves=waves, system=system)
    watcher = threading.Thread(target=watch, daemon=True) if progress else None
    if watcher:
        watcher.start()
    start = time.perf_counter()
    try:
        result = run_cocotb(model["verilog"].resolve(), BENCH, simulator=simulator, build_dir=sim_dir,
                            waves=waves, reuse_build=True,
                            verilator_args=_verilator_args(waves) if simulator == "verilator" else (),
                            make_vars=_verilator_make_vars(waves), test_dir=run_dir,
                            env={"OPENRDU_KERNEL_JOB": str(job_file.resolve())})
    finally:
        stop.set()
        if watcher:
            watcher.join()
    wall = time.perf_counter() - start
    per_kernel = result.metrics.get("kernel", {}).get("kernels", [])
    if len(per_kernel) != len(cases):
        raise SimulationError(f"the kernel bench reported {len(per_kernel)} of {len(cases)} kernels; "
                              f"see {run_dir / 'sim.log'}")
    runs = []
    total_cycles = sum(sum(r["cycles"] for r in m["launches"]) for m in per_kernel) or 1
    for (compiled, _), ctx, metrics in zip(cases, contexts, per_kernel, strict=True):
        try:
            run = _finish(compiled, ctx, metrics)
        except SimulationError as error:
            raise SimulationError(f"{error}; the run's files are in {run_dir}") from None
        cycles = max(1, run.cycles)
        run.sim_s = result.run_s * cycles / total_cycles
        run.build_s = model["build_s"]
        run.wall_s = wall * cycles / total_cycles
        run.build_dir = str(build_dir)
        run.waves = str(result.waves) if result.waves else None
        runs.append(run)
    if not keep and not waves:
        shutil.rmtree(run_dir, ignore_errors=True)
    return runs


def _prepare(compiled, inputs, system, run_dir: Path, timeout_cycles):
    graph = compiled.graph
    graph.check_inputs(inputs)
    words = {name: to_bf16_words(np.asarray(inputs[name], np.float32)) for name in graph.inputs}
    run_dir.mkdir(parents=True, exist_ok=True)
    preload = {f"line_{base}": lines for base, lines in compiled.preload(words)}
    np.savez(run_dir / "in.npz", **preload)
    seg_bits = max(1, (len(system.agcu_names) - 1).bit_length())
    expected = int(sum(max(l.pcu_steps.values(), default=0) for l in compiled.launches) * 1.1 + 2000)
    launches = []
    for launch in compiled.launches:
        segs = []
        for agcu, entries in launch.segments.items():
            index = system.agcu_names.index(agcu)
            for seg in entries:
                segs.append(index | (seg.payload(system.params.agcu) << seg_bits))
        launches.append({"name": launch.name, "seg": segs, "host": launch.kernel.host_words(),
                         "timeout_cycles": timeout_cycles or 20 * expected + 100_000})
    reads = [[name, compiled.regions[name].base, compiled.regions[name].lines] for name in compiled.outputs]
    progress_file = run_dir / "progress.json"
    progress_file.unlink(missing_ok=True)
    entry = {"preload": str((run_dir / "in.npz").resolve()), "out": str((run_dir / "out.npz").resolve()),
             "progress": str(progress_file.resolve()), "expected_cycles": expected, "launches": launches,
             "reads": reads}
    return entry, {"words": words, "run_dir": run_dir, "launches": launches}


def _finish(compiled, ctx, metrics) -> KernelRun:
    graph = compiled.graph
    runs = metrics.get("launches", [])
    bad = [r for r in runs if r["state"] != LaunchState.DONE or r["timed_out"]]
    if len(runs) != len(ctx["launches"]) or bad:
        from .runner import SimulationError
        from .watchdog import describe_failure

        if bad:
            raise SimulationError(describe_failure(compiled.name, bad))
        raise SimulationError(f"kernel {compiled.name} did not complete: {len(runs)} of "
                              f"{len(ctx['launches'])} launches ran: {runs}")
    with np.load(ctx["run_dir"] / "out.npz") as data:
        vectors = {name: lines_to_vectors(data[name], compiled.regions[name].vectors,
                                          compiled.regions[name].lanes)
                   for name in compiled.outputs}
    words = ctx["words"]
    got = compiled.collect(vectors)
    want = compiled.golden(words)
    floats_in = {name: bf16_words_to_float(w).astype(np.float64) for name, w in words.items()}
    ref = reference(graph, floats_in)
    bit_exact = all(np.array_equal(got[k], want[k]) for k in want)
    outputs, max_err, bound, within = {}, 0.0, 0.0, True
    for name in got:
        dtype = graph.tensors[name].dtype
        value = _as_float(got[name], dtype)
        outputs[name] = value
        r_val, r_bound = ref[name]
        err = np.abs(value.astype(np.float64) - r_val)
        finite = np.isfinite(r_val)
        max_err = max(max_err, float(err[finite].max(initial=0.0)))
        bound = max(bound, float(r_bound[finite].max(initial=0.0)))
        within &= bool(np.all(err[finite] <= r_bound[finite]))
    cycles = sum(r["cycles"] for r in runs)
    pcu_u, pmu_u = utilisation(compiled, cycles)
    return KernelRun(outputs=outputs, words=got, golden=want, launches=runs, cycles=cycles,
                     bit_exact=bit_exact,
                     max_abs_err_vs_fp64=max_err, err_bound_fp64=bound, within_bound=within,
                     hbm_bytes=LINE_BYTES * (metrics.get("hbm_reads", 0) + metrics.get("hbm_writes", 0)),
                     violations=metrics.get("violations", 0), wall_s=0.0,
                     pcu_utilization=pcu_u, pmu_utilization=pmu_u)
