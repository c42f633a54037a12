"""Run one compiled kernel on the RTL (the flow behind ``openrdu run``; options in :mod:`openrdu.cli.run`).

    openrdu run KERNEL --preset NAME --shape DIMS [--act A] [--inputs IN.npz] [--out OUT.npz]
                [--sim icarus|verilator] [--unfused] [--waves] [--seed N] [--json] [--floorplan PNG]
                [--timeout-cycles N]

KERNEL is gemm (DIMS M,K,N; npz keys A, B, optional bias), ffn (T,D,H; X, W1, W2 or, with
``--gated``, X, Wg, Wu, Wd), attention (T,D; Q, K, V) or rmsnorm (T,D; X, g). Inputs are
float32 and rounded to bf16 (RNE) on entry; without ``--inputs`` they are random (``--seed``).
The output npz holds the result under ``Y`` (gemm: ``C``). ``--json`` prints one object with
the fields of :data:`JSON_FIELDS`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["JSON_FIELDS", "BUILD_ROOT", "UsageError", "load_inputs", "read_npz", "check_output_paths",
           "write_npz", "json_safe", "check_summary", "run_kernel", "roofline_fields", "roofline_line",
           "draw_floorplan", "default_simulator", "demo_ffn", "DEMO_FFN_SHAPE"]

JSON_FIELDS = ("kernel", "preset", "sim", "shape", "fused", "cycles", "launches", "pcu_utilization",
               "pmu_utilization", "hbm_bytes", "bit_exact", "max_abs_err_vs_fp64", "err_bound_fp64", "wall_s",
               "sim_cycles_per_s", "within_bound", "check", "roofline_cycles", "bound", "roofline_fraction")
#: Where kernel simulations build and run (``$OPENRDU_BUILD/kernels``, default ``build/kernels``):
#: one simulator build per preset, reused by every kernel.
BUILD_ROOT = Path(os.environ.get("OPENRDU_BUILD", "build")) / "kernels"


def default_simulator() -> str:
    """Verilator when it is usable, else Icarus."""
    from sim import toolchain

    return "verilator" if toolchain.simulator_status("verilator").usable else "icarus"


class UsageError(ValueError):
    """A bad argument, found before anything was simulated (the command exits with status 2)."""


def read_npz(path, what: str = "--inputs") -> dict:
    """The arrays of the ``.npz`` archive ``path`` as float32, refusing anything else with a
    :class:`UsageError` that names the file or the array: a folder, a missing file, an ``.npy``
    or text file, arrays of strings or objects, complex arrays (their imaginary part would be
    dropped)."""
    import zipfile

    import numpy as np

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {path} is a folder; give an .npz file (numpy.savez)")
    if not p.exists():
        raise UsageError(f"{what} {path} does not exist; give an .npz file (numpy.savez)")
    with open(p, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise UsageError(f"{what} {path} is not an .npz archive (its first bytes are {magic!r}); write one "
                         f"with numpy.savez(path, A=..., B=...)")
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise UsageError(f"{what} {path} is not an .npz archive ({error}); write one with "
                         f"numpy.savez") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise UsageError(f"{what} {path} holds one array (an .npy file), not an .npz archive of named "
                         f"arrays; write one with numpy.savez(path, A=..., B=...)")
    arrays = {}
    with data:
        for key in data.files:
            try:
                value = data[key]
            except ValueError as error:
                raise UsageError(f"{what} {path}: array {key!r} cannot be read without pickle ({error}); "
                                 f"store numbers") from None
            if np.iscomplexobj(value):
                raise UsageError(f"{what} {path}: array {key!r} is complex ({value.dtype}); the kernels take "
                                 f"real numbers")
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
                    or value.dtype == np.bool_):
                raise UsageError(f"{what} {path}: array {key!r} has dtype {value.dtype}; the kernels take "
                                 f"real numbers (float or int)")
            arrays[key] = np.asarray(value, np.float32)
    return arrays


def load_inputs(path: str | None, compiled, seed: int, arrays: dict | None = None) -> dict:
    """Arrays from an npz (float32; ``arrays`` when the file was already read), or random ones of
    the kernel's shapes."""
    from compiler import ShapeError
    from sim.kernels import random_inputs

    if path is None:
        return random_inputs(compiled, seed=seed)
    if arrays is None:
        arrays = read_npz(path)
    missing = [n for n in compiled.graph.inputs if n not in arrays]
    if missing:
        raise ShapeError(f"{path} lacks the key(s) {', '.join(missing)}; {compiled.name} with shape "
                         f"{','.join(map(str, compiled.shape))} needs {', '.join(compiled.graph.inputs)} "
                         f"(has {', '.join(arrays) or 'nothing'})")
    return arrays


def _probe_writable(path: Path, what: str) -> None:
    import os
    import uuid

    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".openrdu-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"{what} {path}: cannot write in {parent} ({error.strerror or error})") from None
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")


#: File types ``--floorplan`` can write (matplotlib's savefig formats).
FLOORPLAN_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_output_paths(out: str | None, floorplan: str | None, inputs: str | None) -> tuple[Path | None,
                                                                                             Path | None]:
    """Check ``--out`` and ``--floorplan`` before anything runs; return the paths that will be
    written (``--out o`` becomes ``o.npz``).

    Raises
    ------
    UsageError
        A path that cannot be written, has the wrong suffix, or is the ``--inputs`` file.
    """
    out_path = plan_path = None
    if out is not None:
        out_path = Path(out)
        if out_path.suffix == "":
            out_path = out_path.with_name(out_path.name + ".npz")
        elif out_path.suffix.lower() != ".npz":
            raise UsageError(f"--out {out}: the result is written as an .npz archive; give a name ending "
                             f"in .npz")
        if inputs is not None and Path(inputs).exists() and out_path.exists() \
                and out_path.resolve() == Path(inputs).resolve():
            raise UsageError(f"--out {out} is the --inputs file; writing the result would overwrite the "
                             f"inputs (give another name)")
        _probe_writable(out_path, "--out")
    if floorplan is not None:
        plan_path = Path(floorplan)
        if plan_path.suffix.lower() not in FLOORPLAN_SUFFIXES:
            kind = plan_path.suffix or "(none)"
            raise UsageError(f"--floorplan {floorplan}: unknown picture type {kind!r}; use one of "
                             f"{', '.join(FLOORPLAN_SUFFIXES)}")
        _probe_writable(plan_path, "--floorplan")
    return out_path, plan_path


def write_npz(path: Path, arrays: dict) -> Path:
    """Write ``arrays`` to ``path`` atomically (a temporary file renamed into place); return it."""
    import os
    import uuid

    import numpy as np

    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.partial")
    try:
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None`` (JSON has no Infinity or NaN)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def check_summary(run) -> str:
    """One line: both checks passed, or why one failed."""
    import math

    if run.bit_exact and run.within_bound:
        return "ok: bit exact against the golden model and within the float64 error bound"
    parts = []
    if not run.bit_exact:
        parts.append("the result differs from the golden model (not bit exact)")
    if not run.within_bound:
        err = run.max_abs_err_vs_fp64
        if not math.isfinite(err):
            parts.append("the result is not finite where the float64 reference is (the inputs overflow "
                         "fp32/bf16: keep |values| well below 3.4e38)")
        else:
            parts.append(f"max |error| vs float64 {err:.3g} exceeds the fp32 error bound "
                         f"{run.err_bound_fp64:.3g}")
    return "; ".join(parts)


def run_kernel(kernel: str, *, preset: str, shape, act: str = "none", simulator: str | None = None,
               fused: bool = True, inputs: str | None = None, seed: int = 0, waves: bool = False,
               gated: bool = False, causal: bool = False, bias: bool | None = None, out_dtype: str = "bf16",
               eps: float = 1e-6, progress=None, build_root: Path = BUILD_ROOT,
               timeout_cycles: int | None = None, input_arrays: dict | None = None):
    """Compile and run; returns ``(compiled, run, row)`` where ``row`` has :data:`JSON_FIELDS`.

    ``input_arrays`` are the arrays of ``inputs`` when the caller has read the file already
    (:func:`read_npz`); otherwise the file is read here, once.

    ``timeout_cycles`` is each launch's watchdog limit (:func:`sim.kernels.run_compiled`): a launch
    still running then is aborted and :class:`sim.runner.SimulationError` names what was stalled."""

    from compiler import compile_kernel
    from sim.kernels import run_compiled

    simulator = simulator or default_simulator()
    if inputs is not None and input_arrays is None:
        input_arrays = read_npz(inputs)         # refuse a bad file before compiling
    if bias is None and kernel == "gemm" and input_arrays is not None:
        bias = "bias" in input_arrays
    start = time.perf_counter()
    compiled = compile_kernel(kernel, preset, shape, act=act, bias=bool(bias), gated=gated, causal=causal,
                              fused=fused, out_dtype=out_dtype, eps=eps)
    arrays = load_inputs(inputs, compiled, seed, arrays=input_arrays)
    run = run_compiled(compiled, arrays, simulator=simulator, build_dir=build_root / compiled.preset,
                       waves=waves, progress=progress, timeout_cycles=timeout_cycles)
    wall = time.perf_counter() - start
    row = {"kernel": kernel + ("_gated" if gated else "") + ("_causal" if causal else ""),
           "preset": compiled.preset, "sim": simulator, "shape": list(compiled.shape), "fused": fused,
           "cycles": run.cycles, "launches": len(compiled.launches),
           "pcu_utilization": round(run.pcu_utilization, 4), "pmu_utilization": round(run.pmu_utilization, 4),
           "hbm_bytes": run.hbm_bytes, "bit_exact": run.bit_exact,
           "max_abs_err_vs_fp64": run.max_abs_err_vs_fp64, "err_bound_fp64": run.err_bound_fp64,
           "wall_s": round(wall, 2), "sim_cycles_per_s": round(run.sim_cycles_per_s, 1)}
    row.update({"within_bound": run.within_bound, "check": check_summary(run),
                **roofline_fields(compiled.roofline, run.cycles),
                "timing_violations": run.violations,
                "build_s": round(run.build_s, 1), "order": compiled.order, "plan": compiled.plan,
                "roofline": compiled.roofline.as_dict(), "waves": run.waves})
    return compiled, run, row


def roofline_fields(roofline, cycles: int) -> dict:
    """``roofline_cycles``, ``bound`` and ``roofline_fraction`` (= roofline_cycles / cycles, 4
    places) of a kernel measured at ``cycles`` (:class:`compiler.roofline.Roofline`)."""
    return {"roofline_cycles": roofline.cycles, "bound": roofline.bound,
            "roofline_fraction": roofline.fraction(cycles)}


def roofline_line(row: dict) -> str:
    """One line for the console: the roofline, what binds and how close the run came."""
    return (f"roofline: {row['roofline_cycles']:,} cycles, bound by {row['bound']}; measured "
            f"{row['cycles']:,} cycles, roofline fraction {row['roofline_fraction']:.4f}")


def draw_floorplan(compiled, path) -> Path:
    """The grid with the units each launch uses and its routes (one panel per launch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    launches = compiled.launches
    fg = launches[0].kernel.fg
    cols, rows = fg.preset.grid_cols, fg.preset.grid_rows
    fig, axes = plt.subplots(1, len(launches), figsize=(4.2 * len(launches) + 1, 4.4), squeeze=False)
    colours = {"pcu": "#d9534f", "pmu": "#4a90d9", "agcu": "#5cb85c"}
    fabric_style = {"vector": ("#333333", 2.0), "scalar": ("#e69f00", 1.2), "control": ("#999999", 0.8)}
    for ax, launch in zip(axes[0], launches, strict=True):
        used = {site: role for role, site in launch.roles.items()}
        for site in fg.sites.values():
            if site.kind == "host":
                continue
            x, y = site.x, site.y
            on = site.name in launch.kernel.units
            colour = colours[site.kind] if on else "#eeeeee"
            ax.add_patch(Rectangle((x - 0.4, y - 0.4), 0.8, 0.8, facecolor=colour, edgecolor="black", lw=0.6,
                                   alpha=0.85 if on else 1.0))
            label = used.get(site.name, site.name) if on else site.kind
            ax.text(x, y - 0.25, label, ha="center", va="center", fontsize=5.5, zorder=5,
                    color="white" if on else "#888888", fontweight="bold" if on else "normal")
        lane = {"vector": 0.0, "scalar": 0.1, "control": 0.2}
        for tree in launch.kernel.trees:
            for a, b in tree:
                if a[0] == "sw" and b[0] == "sw" and a[4] == "out" and b[4] == "in":
                    fabric = a[3]
                    colour, width = fabric_style[fabric]
                    dx, dy = b[1] - a[1], b[2] - a[2]
                    # each direction of a link on its own side, each fabric on its own lane
                    off = 0.08 + lane[fabric]
                    px, py = -dy * off, dx * off
                    ax.annotate("", xy=(b[1] + px - 0.3 * dx, b[2] + py - 0.3 * dy),
                                xytext=(a[1] + px + 0.3 * dx, a[2] + py + 0.3 * dy),
                                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width,
                                            "mutation_scale": 7}, zorder=4)
        ax.set_xlim(-1.7, cols + 0.7)
        ax.set_ylim(rows + 0.2, -1.0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{launch.name}: {len(launch.pcus)} PCU, {len(launch.pmus)} PMU, "
                     f"{sum(1 for s in launch.kernel.units if s.startswith('agcu'))} AGCU", fontsize=8)
    fig.suptitle(f"{compiled.name} {'x'.join(map(str, compiled.shape))} on {compiled.preset} "
                 f"({'fused' if compiled.fused else 'unfused'}); arrows: vector (black), scalar (orange), "
                 f"control (grey) links", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


#: The kernel of ``make demo`` (on the small preset): T, D, H.
DEMO_FFN_SHAPE = (32, 64, 256)


def demo_ffn(console, *, preset: str = "small", shape=DEMO_FFN_SHAPE, act: str = "gelu", seed: int = 1,
             simulator: str | None = None, waves: bool = False, build_root: Path = BUILD_ROOT) -> bool:
    """Run the FFN fused and unfused on one simulator and print cycles, utilisation, speedup and
    bit-exactness; returns whether both were bit exact and within the fp64 bound."""
    import numpy as np
    from rich.table import Table

    from compiler import compile_kernel
    from sim.kernels import random_inputs, run_many

    simulator = simulator or default_simulator()
    fused = compile_kernel("ffn", preset, shape, act=act)
    unfused = compile_kernel("ffn", preset, shape, act=act, fused=False)
    inputs = random_inputs(fused, seed=seed)
    console.print(f"FFN Y = {act}(X·W1)·W2, T,D,H = {','.join(map(str, shape))}, on {preset} with "
                  f"{simulator} "
                  f"(the first run builds the simulator model)")
    text = f"{simulator}: fused and unfused FFN"
    with console.status(text) if console.is_terminal else _Null() as status:
        runs = run_many([(fused, inputs), (unfused, inputs)], simulator=simulator,
                        build_dir=build_root / preset, waves=waves,
                        progress=_cycle_reporter(console, status, text))
    table = Table(title=f"fused vs unfused FFN on {preset} ({simulator})")
    for col in ("mode", "launches", "cycles", "PCU util.", "PMU util.", "HBM bytes", "bit exact",
                "max |err| vs fp64", "bound", "sim cycles/s"):
        table.add_column(col, justify="right")
    for name, compiled, run in (("fused", fused, runs[0]), ("unfused", unfused, runs[1])):
        table.add_row(name, str(len(compiled.launches)), f"{run.cycles:,}", f"{run.pcu_utilization:.1%}",
                      f"{run.pmu_utilization:.1%}", f"{run.hbm_bytes:,}", "yes" if run.bit_exact else "NO",
                      f"{run.max_abs_err_vs_fp64:.3g}", f"{run.err_bound_fp64:.3g}",
                      f"{run.sim_cycles_per_s:,.0f}")
    console.print(table)
    same = np.array_equal(runs[0].words["Y"], runs[1].words["Y"])
    console.print(f"speedup of fusion: {runs[1].cycles / runs[0].cycles:.2f}x; fused and unfused outputs "
                  f"{'identical' if same else 'DIFFER'}; HBM traffic "
                  f"{runs[1].hbm_bytes / max(1, runs[0].hbm_bytes):.1f}x "
                  f"lower fused")
    return all(r.bit_exact and r.within_bound for r in runs) and same


def _cycle_reporter(console, status, text: str, every_s: float = 30.0):
    """A ``progress(cycles, expected)`` callback: updates the spinner's text on a terminal, and
    prints a line every ``every_s`` seconds in a log, so a long run is never silent."""
    from sim.build_progress import format_seconds

    clock = {}      # the first report starts the clock (the model may be built before it)

    def progress(done: int, expected: int) -> None:
        now = time.monotonic()
        start = clock.setdefault("start", now)
        first = clock.setdefault("first", done)
        last = clock.setdefault("last", now)
        elapsed = now - start
        line = f"{text}: {done:,} of about {max(done, expected):,} cycles, {format_seconds(elapsed)} elapsed"
        # the rate since the first report (not since 0: the clock starts there), once it means something
        if elapsed >= 2.0 and done > first and expected > done:
            line += f", about {format_seconds(elapsed / (done - first) * (expected - done))} left"
        if status is not None and hasattr(status, "update"):
            status.update(line)
        elif now - last >= every_s:
            clock["last"] = now
            console.print(line)

    return progress


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
