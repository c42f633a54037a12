"""``openrdu run``: compile a fused kernel for a preset and run it on the RTL.

    openrdu run KERNEL --preset NAME --shape DIMS [--act A] [--inputs IN.npz] [--out OUT.npz]
                [--sim icarus|verilator] [--unfused] [--waves] [--seed N] [--json] [--floorplan PNG]
                [--timeout-cycles N]

The flow is :func:`openrdu.flows.run.run_kernel`; ``--json`` prints one object with the fields of
:data:`openrdu.flows.run.JSON_FIELDS`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..flows.run import (
    JSON_FIELDS,
    UsageError,
    check_output_paths,
    default_simulator,
    draw_floorplan,
    json_safe,
    read_npz,
    roofline_line,
    run_kernel,
    write_npz,
)
from .args import nonneg_int, positive_int

__all__ = ["register", "cmd_run"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be comma-separated positive ints such as 64,128,512, "
                                         f"got {text!r}") from None
    if any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"every dimension must be positive, got {text!r}")
    return dims


#: ``openrdu run`` flags of kernel options (the option names of :mod:`compiler.mapping`).
OPTION_FLAGS = {"act": "--act", "bias": "--bias", "gated": "--gated", "causal": "--causal", "eps": "--eps",
                "out_dtype": "--out-dtype"}


def _check_kernel_options(args) -> None:
    """Refuse a flag the kernel does not take (``--causal`` on gemm, ``--eps`` on ffn ...): the
    kernel's own list of options (:attr:`compiler.mapping.KernelMapping.options`) decides."""
    from compiler.registry import get_kernel

    kernel = get_kernel(args.kernel)
    given = [name for name in OPTION_FLAGS if getattr(args, name) not in (None, False)]
    refused = [OPTION_FLAGS[name] for name in given if name not in kernel.options]
    if refused:
        takes = [OPTION_FLAGS[name] for name in kernel.options if name in OPTION_FLAGS]
        raise UsageError(f"{', '.join(refused)} does not apply to {args.kernel} (it takes: "
                         f"{', '.join(takes) or 'none of the kernel options'})")


def _refuse(message) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_run(args) -> int:
    from rich.console import Console

    from compiler import MappingError, ShapeError
    from sim.runner import SimulationError

    # everything a user can get wrong is checked before the (possibly long) simulation
    try:
        _check_kernel_options(args)
        out_path, plan_path = check_output_paths(args.out, args.floorplan, args.inputs)
        input_arrays = read_npz(args.inputs) if args.inputs is not None else None
    except UsageError as error:
        return _refuse(error)
    show = not args.json and sys.stdout.isatty()
    progress_cb, bar = None, None
    if show:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       TextColumn("{task.completed:,.0f} cycles"),
                       TimeElapsedColumn(), console=Console())
        task = bar.add_task(f"{args.kernel} on {args.sim or default_simulator()}", total=None)

        def progress_cb(done, expected):
            bar.update(task, completed=done, total=max(expected, done))
    try:
        if bar:
            bar.start()
        compiled, run, row = run_kernel(args.kernel, preset=args.preset, shape=args.shape,
                                        act=args.act or "none",
                                        simulator=args.sim, fused=not args.unfused, inputs=args.inputs,
                                        seed=args.seed, waves=args.waves,
                                        gated=args.gated, causal=args.causal,
                                        bias=True if args.bias else None,
                                        out_dtype=args.out_dtype or "bf16",
                                        eps=1e-6 if args.eps is None else args.eps, progress=progress_cb,
                                        timeout_cycles=args.timeout_cycles, input_arrays=input_arrays)
    except (MappingError, ShapeError, UsageError, ValueError, FileNotFoundError) as error:
        if bar:
            bar.stop()
        return _refuse(error)
    except SimulationError as error:
        if bar:
            bar.stop()
        print(f"simulation failed: {error}", file=sys.stderr)
        return 1
    finally:
        if bar:
            bar.stop()
    if out_path is not None:
        key = compiled.outputs[0]
        write_npz(out_path, {key: next(iter(run.outputs.values()))})
    if plan_path is not None:
        draw_floorplan(compiled, plan_path)
    if args.json:
        print(json.dumps(json_safe({k: row[k] for k in JSON_FIELDS}), allow_nan=False))
    else:
        _print_row(row, run, compiled, args, out_path, plan_path)
    if not (run.bit_exact and run.within_bound):
        print(f"check failed: {row['check']}", file=sys.stderr)
    return 0 if run.bit_exact and run.within_bound else 1


def _print_row(row, run, compiled, args, out_path, plan_path):
    from rich.console import Console
    from rich.table import Table

    console = Console()
    dims = "x".join(map(str, row["shape"]))
    table = Table(title=f"{row['kernel']} {dims} on {row['preset']} ({row['sim']}, "
                        f"{'fused' if row['fused'] else 'unfused'})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("cycles", "launches", "pcu_utilization", "pmu_utilization", "hbm_bytes", "bit_exact",
                "within_bound", "max_abs_err_vs_fp64", "err_bound_fp64", "wall_s", "build_s",
                "sim_cycles_per_s"):
        value = row[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(roofline_line(row))
    console.print(f"order: {compiled.order}")
    console.print(f"check: {row['check']}")
    if out_path is not None:
        console.print(f"wrote {out_path}")
    if plan_path is not None:
        console.print(f"floorplan: {plan_path}")
    if run.waves:
        console.print(f"waves: {run.waves}")


def register(sub) -> argparse.ArgumentParser:
    from compiler.ir import ACTIVATIONS
    from compiler.registry import get_kernel, kernel_names
    from hdl.presets import DEFAULT_PRESET, preset_names

    kernels = kernel_names()

    p = sub.add_parser("run", help="compile a fused kernel and run it on the RTL fabric",
                       description="Compile KERNEL for a preset, run it on Icarus or Verilator with its "
                                   "operands in the HBM model, and check the result bit for bit against the "
                                   "golden "
                                   "model "
                                   "and against float64 within the fp32 error bound. Shapes: " +
                                   "; ".join(f"{k} {get_kernel(k).shape_text}" for k in kernels) + ".")
    p.add_argument("kernel", choices=kernels, metavar="KERNEL", help=f"one of: {', '.join(kernels)}")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=preset_names(), metavar="NAME",
                   help=f"fabric preset (default {DEFAULT_PRESET})")
    p.add_argument("--shape", required=True, type=_shape, metavar="DIMS", help="comma-separated dimensions")
    p.add_argument("--act", default=None, choices=ACTIVATIONS, metavar="A",
                   help=f"gemm, ffn: activation, one of: {', '.join(ACTIVATIONS)} (default none; ffn relu)")
    p.add_argument("--inputs", metavar="IN.npz", help="float32 inputs (default: random, see --seed)")
    p.add_argument("--out", metavar="OUT.npz",
                   help="write the result (key C for gemm, Y otherwise; O for attention)")
    p.add_argument("--sim", choices=("icarus", "verilator"), default=None,
                   help="simulator (default: verilator when usable, else icarus)")
    p.add_argument("--unfused", action="store_true", help="one launch per op, intermediates through HBM")
    p.add_argument("--waves", action="store_true", help="record a waveform in the build directory")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--floorplan", metavar="PNG", help="draw the used units and routes")
    p.add_argument("--timeout-cycles", type=positive_int, default=None, metavar="N",
                   help="watchdog: a launch not finished after N fabric cycles is stopped with ABORT and "
                        "the run fails (exit 1) naming the stalled units (default: 20 x the expected "
                        "cycles + 100000)")
    p.add_argument("--gated", action="store_true", help="ffn: the SwiGLU form (X, Wg, Wu, Wd)")
    p.add_argument("--causal", action="store_true", help="attention: causal mask")
    p.add_argument("--eps", type=float, default=None,
                   help="rmsnorm: epsilon (default 1e-6; realised as e²/D with e a bf16 value)")
    p.add_argument("--bias", action="store_true", help="gemm: add a random bias (with --inputs: key 'bias')")
    p.add_argument("--out-dtype", default=None, choices=("bf16", "f32"),
                   help="gemm: output type (default bf16)")
    p.set_defaults(func=cmd_run)
    return p
