"""``openrdu bench`` and ``openrdu sweep``.

    openrdu bench [--preset small] [--repeats 3] [--sim verilator,icarus] [--out bench]
                  [--doc docs/performance.md] [--baseline RESULTS.json] [--json]
    openrdu sweep SPEC.toml [--csv bench/sweep.csv] [--workers N | --scheduler ADDRESS]
                  [--retries 2] [--max-points N] [--json]

``bench`` measures simulator speed, kernel, memory and CoE figures side by side
(:mod:`openrdu.flows.bench`), writes ``OUT/results.json`` and PNG plots, prints tables and regenerates
``docs/performance.md``. ``sweep`` runs a TOML design-space sweep (:mod:`openrdu.flows.sweep`) with one
Dask task per point, appending each finished point to the CSV (run it again to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .args import nonneg_int, positive_int

__all__ = ["register", "cmd_bench", "cmd_sweep"]

SECTIONS = ("kernels", "units", "memory", "coe")


def _console(json_mode: bool):
    from rich.console import Console

    console = Console(stderr=json_mode)
    return console if console.is_terminal else Console(stderr=json_mode, width=140)


def _sims(text: str) -> list[str]:
    sims = [s.strip() for s in text.split(",") if s.strip()]
    if text == "all":
        return ["verilator", "icarus"]
    bad = [s for s in sims if s not in ("verilator", "icarus")]
    if bad or not sims:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of verilator, icarus (or all), got {text!r}"
        )
    return sims


def _kernel_names(text: str) -> list[str]:
    from ..flows.bench import KERNEL_CASES

    names = [s.strip() for s in text.split(",") if s.strip()]
    known = sorted({n for table in KERNEL_CASES.values() for n in table})
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(known)}, got {text!r}"
        )
    return names


def _sections(text: str) -> list[str]:
    parts = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in parts if s not in SECTIONS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(SECTIONS)}, got {text!r}"
        )
    return parts


def cmd_bench(args) -> int:
    from ..flows.bench import baseline_summary, bench_table, run_bench, write_report

    console = _console(args.json)
    baseline = None
    # the default baseline is the results file a run replaces; a report-only run replaces none
    default = None if args.report_only else Path(args.out) / "results.json"
    baseline_path = Path(args.baseline) if args.baseline else default
    if args.baseline != "" and baseline_path is not None and baseline_path.exists():
        try:
            baseline = json.loads(baseline_path.read_text())
        except ValueError as error:
            console.print(f"[red]bench failed:[/red] --baseline {baseline_path} is not JSON: {error}")
            return 2
    elif args.baseline:
        console.print(f"[red]bench failed:[/red] --baseline {baseline_path} does not exist")
        return 2
    if args.report_only:
        results = json.loads((Path(args.out) / "results.json").read_text())
        if args.baseline:
            results["baseline"] = baseline_summary(baseline)
    else:

        def say(text):
            console.print(f"[dim]{text}[/dim]")

        try:
            results = run_bench(
                preset=args.preset,
                repeats=args.repeats,
                simulators=args.sim,
                build_root=args.build_root,
                out_dir=args.out,
                unit_items=args.unit_items,
                mem_bytes=args.mem_bytes,
                coe_requests=args.coe_requests,
                sections=args.sections,
                kernel_sims=args.kernel_sims,
                speed_kernels=args.speed_kernels,
                baseline=baseline,
                say=say,
            )
        except (RuntimeError, ValueError) as error:
            console.print(f"[red]bench failed:[/red] {error}")
            return 1
    if args.doc:
        from ..flows.bench import sweep_timings

        write_report(results, args.doc, sweeps=sweep_timings(args.out))
    for table in bench_table(results):
        console.print(table)
    console.print(
        f"results: {Path(args.out) / 'results.json'}"
        + (f"; plots: {', '.join(results.get('plots', []))}" if results.get("plots") else "")
        + (f"; report: {args.doc}" if args.doc else "")
    )
    if args.json:
        print(json.dumps(results, default=str))
    kernels = results.get("kernels", {}).values()
    ok = all(k["bit_exact"] and k["cycles_agree"] for k in kernels if k.get("available"))
    return 0 if ok else 1


def cmd_sweep(args) -> int:
    from rich.table import Table

    from ..flows.sweep import expand_spec, load_spec, read_csv, run_sweep

    console = _console(args.json)
    try:
        points = expand_spec(load_spec(args.spec))
    except (OSError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    except Exception as error:  # tomllib.TOMLDecodeError and friends
        console.print(f"[red]error: cannot read {args.spec}:[/red] {error}")
        return 2
    csv_path = Path(args.csv or Path("bench") / f"sweep_{Path(args.spec).stem}.csv")

    def progress(done, total, row):
        figures = (
            f"{row.get('cycles')} cycles, PCU {float(row['pcu_utilization']):.1%}"
            if row.get("status") == "ok"
            else row.get("error", "")[:120]
        )
        console.print(f"[{done}/{total}] {row['key']}: {row['status']} {figures}")

    console.print(
        f"{len(points)} points; results append to {csv_path} "
        f"({'scheduler ' + args.scheduler if args.scheduler else f'{args.workers} local worker(s)'})"
    )
    try:
        result = run_sweep(
            points,
            csv_path,
            build_root=args.build_root,
            workers=args.workers,
            scheduler=args.scheduler,
            retries=args.retries,
            max_points=args.max_points,
            progress=progress,
        )
    except KeyboardInterrupt:
        done = len(read_csv(csv_path))
        console.print(
            f"[yellow]interrupted[/yellow]: {done} point(s) are in {csv_path}; run the same command "
            f"again to finish the rest"
        )
        return 130
    import time

    record = {"spec": str(args.spec), "points": len(points), "ran": result.ran, "skipped": result.skipped,
              "failed": result.failed, "workers": result.workers, "wall_s": round(result.wall_s, 2),
              "scheduler": args.scheduler or "LocalCluster", "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(csv_path.with_suffix(".runs.jsonl"), "a") as handle:
        handle.write(json.dumps(record) + "\n")
    rows = {r["key"]: r for r in read_csv(csv_path)}
    table = Table(
        title=f"sweep {args.spec}: {result.ran} run now, {result.skipped} already in the CSV, "
        f"{result.failed} failed; {result.wall_s:.1f} s wall on {result.workers} worker(s)"
    )
    for column in ("point", "status", "cycles", "launches", "PCU util.", "HBM bytes", "sim cycles/s"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for point in points:
        r = rows.get(point.key)
        if r is None:
            table.add_row(point.key, "not run", "", "", "", "", "")
            continue
        ok = r["status"] == "ok"
        table.add_row(
            point.key,
            r["status"],
            r["cycles"],
            r["launches"],
            f"{float(r['pcu_utilization']):.1%}" if ok else "",
            r["hbm_bytes"],
            f"{float(r['sim_cycles_per_s']):,.0f}" if ok else "",
        )
    console.print(table)
    if args.json:
        print(
            json.dumps(
                {
                    "points": len(points),
                    "ran": result.ran,
                    "skipped": result.skipped,
                    "failed": result.failed,
                    "wall_s": round(result.wall_s, 2),
                    "workers": result.workers,
                    "csv": str(csv_path),
                    "rows": [rows[p.key] for p in points if p.key in rows],
                }
            )
        )
    finished = [rows.get(p.key, {}).get("status") for p in points]
    return 0 if all(s in ("ok", "unavailable") for s in finished) else 1


def register(sub) -> None:
    from hdl.presets import preset_names

    from ..flows.run import BUILD_ROOT

    p = sub.add_parser(
        "bench",
        help="simulator speed, kernel, memory and CoE figures in one run",
        description="Measure side by side: simulated cycles per wall second on Verilator, Icarus "
        "(and Amaranth's simulator for the smallest unit); kernel cycles fused vs "
        "unfused, speedup and PCU utilisation; mem-bench and coe simulate figures. "
        "Medians over --repeats with min/max; writes OUT/results.json, PNG plots "
        "and the report.",
    )
    p.add_argument(
        "--preset",
        default="small",
        choices=preset_names(),
        metavar="NAME",
        help=f"fabric preset, one of: {', '.join(preset_names())} (default small)",
    )
    p.add_argument("--repeats", type=positive_int, default=3, help="runs of each measurement (default 3)")
    p.add_argument(
        "--sim",
        type=_sims,
        default=None,
        metavar="SIMS",
        help="simulators, comma-separated or 'all' (default: every usable one)",
    )
    p.add_argument(
        "--kernel-sims",
        type=_sims,
        default=None,
        metavar="SIMS",
        help="simulators that run the whole kernel list for the kernel figures (default: all of --sim "
        "on tiny, verilator on larger presets)",
    )
    p.add_argument(
        "--speed-kernels",
        type=_kernel_names,
        default=None,
        metavar="NAMES",
        help="kernels (fused and unfused) of the simulation-speed workload, run on every simulator "
        "(default: the whole kernel list when every simulator runs it, else rmsnorm)",
    )
    p.add_argument(
        "--sections",
        type=_sections,
        default=list(SECTIONS),
        metavar="LIST",
        help=f"what to measure, comma-separated from {', '.join(SECTIONS)} (default all)",
    )
    p.add_argument("--out", default="bench", help="directory of results.json and the plots (default bench)")
    p.add_argument("--doc", default="docs/performance.md", help="report to regenerate ('' for none)")
    p.add_argument(
        "--report-only", action="store_true", help="only regenerate the report from OUT/results.json"
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="RESULTS.json",
        help="an earlier run's results, shown beside the new speeds (default: the OUT/results.json this "
        "run replaces; '' for none)",
    )
    p.add_argument(
        "--build-root",
        default=str(BUILD_ROOT),
        help=f"kernel simulator builds, shared with openrdu run (default {BUILD_ROOT})",
    )
    p.add_argument("--unit-items", type=positive_int, default=2000, help="payloads of the stream FIFO runs")
    p.add_argument("--mem-bytes", type=positive_int, default=1 << 16, help="bytes per mem-bench point")
    p.add_argument("--coe-requests", type=positive_int, default=1000, help="requests of coe simulate")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "sweep",
        help="design-space sweep (presets x parameters x kernels) on Dask",
        description="Run every point of SPEC.toml as an independent simulation on Dask "
        "distributed (an embedded LocalCluster, or --scheduler). Each finished point "
        "is appended to the CSV at once; running again skips finished points. "
        "Workers on other machines need this repository and the build root at the "
        "same paths. Spec format: see openrdu/flows/sweep.py.",
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--csv", default=None, help="results CSV (default bench/sweep_<spec>.csv)")
    p.add_argument("--workers", type=positive_int, default=2, help="local Dask worker processes (default 2)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="use an existing Dask scheduler (tcp://host:8786) instead of a LocalCluster",
    )
    p.add_argument("--retries", type=nonneg_int, default=2, help="retries of a failed point (default 2)")
    p.add_argument(
        "--max-points",
        type=positive_int,
        default=None,
        help="stop after this many points (the rest stay for a resume)",
    )
    p.add_argument(
        "--build-root",
        default=str(BUILD_ROOT),
        help=f"kernel simulator builds, shared with openrdu run (default {BUILD_ROOT})",
    )
    p.add_argument("--json", action="store_true", help="print a summary with every row as JSON on stdout")
    p.set_defaults(func=cmd_sweep)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: openrdu bench | openrdu sweep")
