"""Kernel figures on one preset: fused and unfused cycles, PCU utilisation, wall time.

    .venv/bin/python scripts/measure_kernels.py --preset small --sim verilator [--cases gemm,ffn,...]

Runs each case fused and unfused in one simulation (one build, reset between kernels;
:func:`sim.kernels.run_many`), checks bit-exactness and the fp64 bound, and prints one JSON
object per case on stdout (progress on stderr). The shapes are issue 8's ``small`` figures.

``--sample-cycles N`` measures simulation speed only, for runs too long to finish (the large
kernels on Icarus take hours): each case runs alone until its first launch has taken N cycles,
and the JSON object gives the simulated cycles per second between the first and the last progress
report (so the build and the model load are not counted) instead of results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

CASES = {
    "gemm": ("gemm", (256, 256, 256), {"act": "gelu", "bias": True}),
    "ffn": ("ffn", (64, 128, 512), {"act": "gelu"}),
    "ffn_gated": ("ffn", (64, 128, 512), {"gated": True}),
    "rmsnorm": ("rmsnorm", (64, 128), {}),
    "rmsnorm_256": ("rmsnorm", (256, 64), {}),
    "attention": ("attention", (256, 64), {}),
    "attention_causal": ("attention", (256, 64), {"causal": True}),
    "attention_128": ("attention", (128, 64), {}),
    # small ones: several key blocks (12 slots: 11 keys), padded query tile and key block
    "attention_small": ("attention", (40, 16), {"causal": True, "block": 12}),
    "attention_small_nc": ("attention", (37, 12), {"block": 12}),
}


def main(argv=None) -> int:
    from compiler import compile_kernel
    from sim.kernels import random_inputs, run_many

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--fused-only", action="store_true")
    ap.add_argument("--unfused-only", action="store_true")
    ap.add_argument("--build-root", default="build/kernels")
    ap.add_argument("--sample-cycles", type=int, default=None, metavar="N",
                    help="measure cycles/s over the first N cycles of each case instead of running it out")
    args = ap.parse_args(argv)
    if args.sample_cycles is not None and args.sample_cycles < 4096:
        ap.error("--sample-cycles must be at least 4096 (the bench reports progress every 1,024 cycles)")
    cases, labels = [], []
    for name in args.cases.split(","):
        kernel, shape, options = CASES[name]
        for fused in ((True,) if args.fused_only else (False,) if args.unfused_only else (True, False)):
            compiled = compile_kernel(kernel, args.preset, shape, fused=fused, **options)
            if fused or args.unfused_only:
                inputs = random_inputs(compiled, seed=1)      # the same inputs fused and unfused
            cases.append((compiled, inputs))
            labels.append((name, shape, options, fused))
            print(f"compiled {name} {shape} fused={fused}: {len(compiled.launches)} launch(es), "
                  f"plan {compiled.plan}", file=sys.stderr)

    def progress(done, expected):
        print(f"\r  {done:,} / ~{expected:,} cycles", end="", file=sys.stderr, flush=True)

    if args.sample_cycles is not None:
        return sample(cases, labels, args)
    start = time.perf_counter()
    runs = run_many(cases, simulator=args.sim, build_dir=Path(args.build_root) / args.preset,
                    progress=progress)
    wall = time.perf_counter() - start
    print(file=sys.stderr)
    for (name, shape, options, fused), run in zip(labels, runs, strict=True):
        print(json.dumps({"case": name, "shape": list(shape), "options": options, "fused": fused,
                          "preset": args.preset, "sim": args.sim, "cycles": run.cycles,
                          "launches": len(run.launches), "pcu_utilization": round(run.pcu_utilization, 4),
                          "pmu_utilization": round(run.pmu_utilization, 4), "hbm_bytes": run.hbm_bytes,
                          "bit_exact": run.bit_exact, "within_bound": run.within_bound,
                          "max_abs_err_vs_fp64": run.max_abs_err_vs_fp64,
                          "err_bound_fp64": run.err_bound_fp64,
                          "sim_s": round(run.sim_s, 1)}), flush=True)
    print(json.dumps({"total_wall_s": round(wall, 1)}))
    return 0 if all(r.bit_exact and r.within_bound for r in runs) else 1


def sample(cases, labels, args) -> int:
    """Each case alone, stopped when its first launch has taken ``args.sample_cycles`` cycles."""
    from sim.kernels import run_many
    from sim.runner import SimulationError

    for (compiled, inputs), (name, shape, options, fused) in zip(cases, labels, strict=True):
        reports: list[tuple[float, int]] = []

        def progress(done, expected, reports=reports, label=f"{name} fused={fused}"):
            reports.append((time.perf_counter(), done))
            print(f"\r  {label}: {done:,} cycles", end="", file=sys.stderr, flush=True)

        start = time.perf_counter()
        try:
            run_many([(compiled, inputs)], simulator=args.sim, build_dir=Path(args.build_root) / args.preset,
                     progress=progress, timeout_cycles=args.sample_cycles)
            ended = "completed"
        except SimulationError as error:
            if "did not complete" not in str(error):
                raise
            ended = "sample taken"
        wall = time.perf_counter() - start
        print(file=sys.stderr)
        if len(reports) < 2 or reports[-1][1] == reports[0][1]:
            print(f"{name}: too few progress reports to measure a rate", file=sys.stderr)
            return 1
        (t0, c0), (t1, c1) = reports[0], reports[-1]
        print(json.dumps({"case": name, "shape": list(shape), "options": options, "fused": fused,
                          "preset": args.preset, "sim": args.sim, "ended": ended,
                          "sampled_cycles": c1 - c0, "sample_s": round(t1 - t0, 1),
                          "sim_cycles_per_s": round((c1 - c0) / (t1 - t0), 2),
                          "startup_s": round(t0 - start, 1), "wall_s": round(wall, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
