"""Design-space sweeps of kernel simulations on Dask distributed (``openrdu sweep SPEC.toml``).

Every point runs against the shared kernel-system build of its preset and simulator
(:func:`sim.kernel_jobs.ensure_build`) in a run folder of its own
(:func:`sim.kernel_jobs.run_isolated`), so any number of points can run at once.

A sweep (:func:`run_sweep`) expands a TOML spec into points (presets × parameters × kernels),
runs each point as one independent simulation on a Dask cluster (an embedded
``LocalCluster`` unless a scheduler address is given), retries failed points, and appends each
finished point to a CSV as soon as it finishes, so an interrupted sweep loses nothing:
running it again skips the points already in the CSV.

Spec format::

    [sweep]
    presets = ["tiny"]                 # hardware presets
    simulators = ["verilator"]         # optional (default: verilator when usable, else icarus)
    fused = [true, false]              # optional, default [true]
    seeds = [0]                        # optional input seeds
    repeats = 1                        # optional: each point this many times (rows carry `repeat`)

    [[kernel]]                         # one table per kernel family
    name = "gemm"
    shapes = [[6, 5, 3], [9, 13, 7]]
    act = ["relu"]                     # optional list; every other key is a list of values too
    bias = [true]

Every combination of the lists is one point.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SweepPoint",
    "load_spec",
    "expand_spec",
    "run_point",
    "run_sweep",
    "read_csv",
    "CSV_FIELDS",
    "SweepResult",
]

#: When set (to anything), every point's first attempt fails: exercises the retries.
FAIL_FIRST_ENV = "OPENRDU_SWEEP_FAIL_FIRST"

#: Columns of the sweep CSV (in this order).
CSV_FIELDS = (
    "key",
    "preset",
    "sim",
    "kernel",
    "shape",
    "fused",
    "options",
    "seed",
    "repeat",
    "status",
    "cycles",
    "launches",
    "pcu_utilization",
    "pmu_utilization",
    "hbm_bytes",
    "bit_exact",
    "within_bound",
    "sim_s",
    "sim_cycles_per_s",
    "wall_s",
    "attempts",
    "worker",
    "error",
)




# ---------------------------------------------------------------------------------------------
# sweep points


@dataclass(frozen=True)
class SweepPoint:
    """One independent simulation: a kernel of one shape and options on one preset and simulator."""

    preset: str
    simulator: str
    kernel: str
    shape: tuple[int, ...]
    fused: bool = True
    options: tuple[tuple[str, object], ...] = ()
    seed: int = 0
    repeat: int = 0

    def row_fields(self) -> dict:
        """The point's own columns of the sweep CSV (key, preset, sim, kernel, shape, ...)."""
        return {"key": self.key, "preset": self.preset, "sim": self.simulator, "kernel": self.kernel,
                "shape": "x".join(map(str, self.shape)), "fused": self.fused,
                "options": ";".join(f"{k}={v}" for k, v in self.options), "seed": self.seed,
                "repeat": self.repeat}

    @property
    def key(self) -> str:
        """Stable identity of the point (the resume key in the CSV)."""
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return (
            f"{self.preset}/{self.simulator}/{self.kernel}/{'x'.join(map(str, self.shape))}/"
            f"{'fused' if self.fused else 'unfused'}/{opts}/s{self.seed}/r{self.repeat}"
        )


def load_spec(path) -> dict:
    import tomllib

    with open(path, "rb") as handle:
        return tomllib.load(handle)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def expand_spec(spec: dict, default_simulator: str | None = None) -> list[SweepPoint]:
    """Every combination of the spec's lists, as :class:`SweepPoint` (in a stable order).

    Raises ``ValueError`` for a spec without presets or kernels, an unknown kernel, preset or
    simulator, or a kernel table without shapes."""
    from compiler.registry import kernel_names
    from hdl.presets import preset_names

    sweep = spec.get("sweep", {})
    presets = _as_list(sweep.get("presets", []))
    kernels = spec.get("kernel", [])
    if not presets or not kernels:
        raise ValueError("a sweep spec needs [sweep] presets = [...] and at least one [[kernel]] table")
    unknown = [p for p in presets if p not in preset_names()]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; presets: {', '.join(preset_names())}")
    if default_simulator is None:
        from .run import default_simulator as pick

        default_simulator = pick()
    simulators = _as_list(sweep.get("simulators", [default_simulator]))
    bad = [s for s in simulators if s not in ("icarus", "verilator")]
    if bad:
        raise ValueError(f"unknown simulator(s) {bad}; use icarus or verilator")
    fused_values = [bool(v) for v in _as_list(sweep.get("fused", [True]))]
    seeds = [int(v) for v in _as_list(sweep.get("seeds", [0]))]
    repeats = int(sweep.get("repeats", 1))
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    points = []
    for table in kernels:
        name = table.get("name")
        if name not in kernel_names():
            raise ValueError(f"unknown kernel {name!r}; kernels: {', '.join(kernel_names())}")
        shapes = [tuple(int(d) for d in s) for s in table.get("shapes", [])]
        if not shapes:
            raise ValueError(f"kernel {name}: needs shapes = [[...], ...]")
        option_names = sorted(k for k in table if k not in ("name", "shapes", "fused"))
        option_values = [_as_list(table[k]) for k in option_names]
        fused_here = [bool(v) for v in _as_list(table["fused"])] if "fused" in table else fused_values
        for preset, sim, shape, fused, seed, combo, rep in itertools.product(
            presets, simulators, shapes, fused_here, seeds, itertools.product(*option_values), range(repeats)
        ):
            points.append(
                SweepPoint(
                    preset, sim, name, shape, fused, tuple(zip(option_names, combo, strict=True)), seed, rep
                )
            )
    return points


def run_point(point: SweepPoint, build_root: str, scratch: str) -> dict:
    """Compile and simulate one point (run on a Dask worker); returns its CSV row.

    A mapping error (a kernel the compiler does not map yet) is a finished point with status
    ``unavailable``; simulator failures raise, so that Dask retries them."""
    import socket

    from compiler import MappingError, compile_kernel
    from sim.kernel_jobs import run_isolated
    from sim.kernels import random_inputs

    start = time.perf_counter()
    tag = hashlib.sha1(point.key.encode()).hexdigest()[:12]
    Path(scratch).mkdir(parents=True, exist_ok=True)
    with open(Path(scratch) / f"{tag}.attempts", "a+") as handle:
        handle.write("x")
        handle.seek(0)
        attempts = len(handle.read())
    inject = os.environ.get(FAIL_FIRST_ENV)
    if inject and attempts == 1:
        raise RuntimeError(f"injected failure of the first attempt of {point.key} ({FAIL_FIRST_ENV})")
    row = {
        **point.row_fields(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "attempts": attempts,
    }
    try:
        compiled = compile_kernel(
            point.kernel, point.preset, point.shape, fused=point.fused, **dict(point.options)
        )
    except MappingError as error:
        return {
            **row,
            "status": "unavailable",
            "error": str(error),
            "wall_s": round(time.perf_counter() - start, 3),
        }
    inputs = random_inputs(compiled, seed=point.seed)
    run = run_isolated(
        [(compiled, inputs)],
        simulator=point.simulator,
        build_root=build_root,
        run_dir=Path(scratch) / f"{tag}-{os.getpid()}",
    )[0]
    ok = run.bit_exact and run.within_bound
    return {
        **row,
        "status": "ok" if ok else "wrong",
        "cycles": run.cycles,
        "launches": len(compiled.launches),
        "pcu_utilization": round(run.pcu_utilization, 5),
        "pmu_utilization": round(run.pmu_utilization, 5),
        "hbm_bytes": run.hbm_bytes,
        "bit_exact": run.bit_exact,
        "within_bound": run.within_bound,
        "sim_s": round(run.sim_s, 3),
        "sim_cycles_per_s": round(run.sim_cycles_per_s, 1),
        "wall_s": round(time.perf_counter() - start, 3),
        "error": "",
    }


# ---------------------------------------------------------------------------------------------
# the CSV that survives interruptions


def read_csv(path) -> list[dict]:
    """Rows of a sweep CSV (a truncated last line, from a kill mid-write, is dropped)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("key") and row.get("status") and None not in row and None not in row.values():
                rows.append(row)
    return rows


def _repair(path: Path):
    """Drop a partly written last line (a run killed while writing it)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    text = path.read_text()
    if text.endswith("\n"):
        return
    rows = read_csv(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _append(path: Path, row: dict):
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        handle.flush()
        os.fsync(handle.fileno())


#: statuses of a finished point (resume skips them); ``failed`` points are run again
DONE = ("ok", "wrong", "unavailable")


@dataclass
class SweepResult:
    points: int
    skipped: int
    ran: int
    failed: int
    wall_s: float
    workers: int
    rows: list[dict] = field(default_factory=list)
    interrupted: bool = False


def run_sweep(
    points: list[SweepPoint],
    csv_path,
    *,
    build_root,
    workers: int = 1,
    scheduler: str | None = None,
    retries: int = 2,
    max_points: int | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> SweepResult:
    """Run the points not yet in ``csv_path`` on Dask; append each finished one to the CSV.

    Before dispatching, each (preset, simulator) build is made current once (:func:`ensure_build`).
    ``max_points`` stops after that many points (the rest stay for a resume). A failed point is
    retried ``retries`` times by Dask, then written with status ``failed`` (run again on resume).
    A ``KeyboardInterrupt`` (from Ctrl-C or from a point) stops the sweep: the CSV keeps every
    point finished so far, and the interrupt is re-raised.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    from sim.kernel_jobs import ensure_build

    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    _repair(csv_path)
    done = {r["key"] for r in read_csv(csv_path) if r["status"] in DONE}
    todo = [p for p in points if p.key not in done]
    if max_points is not None:
        todo = todo[:max_points]
    result = SweepResult(
        points=len(points),
        skipped=len(points) - len([p for p in points if p.key not in done]),
        ran=0,
        failed=0,
        wall_s=0.0,
        workers=workers,
    )
    start = time.perf_counter()
    if not todo:
        return result
    build_root = str(Path(build_root).resolve())
    for preset, sim in sorted({(p.preset, p.simulator) for p in todo}):
        ensure_build(preset, sim, build_root)
    scratch = str(csv_path.parent.resolve() / f".{csv_path.stem}-runs")
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
    try:
        result.workers = len(client.scheduler_info().get("workers", {})) or workers
        futures = {
            client.submit(
                run_point, p, build_root, scratch, key=f"point-{p.key}", retries=retries, pure=False
            ): p
            for p in todo
        }
        for future in as_completed(futures):
            point = futures[future]
            try:
                row = future.result()
            except Exception as error:  # after Dask's retries
                row = {
                    **point.row_fields(),
                    "status": "failed",
                    "error": "".join(traceback.format_exception_only(type(error), error)).strip()[-500:],
                }
                result.failed += 1
            _append(csv_path, row)
            result.ran += 1
            result.rows.append(row)
            if progress:
                progress(result.ran, len(todo), row)
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        result.wall_s = time.perf_counter() - start
        client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def summarize(rows: Iterable[dict]) -> list[dict]:
    """Rows sorted by key, for a table."""
    return sorted(rows, key=lambda r: r["key"])
