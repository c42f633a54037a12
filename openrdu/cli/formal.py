"""``openrdu formal``: the formal property checks (SymbiYosys), with a summary table."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

from .common import console_for

__all__ = ["register", "cmd_formal"]


def cmd_formal(args) -> int:
    from rich.table import Table

    from hdl.formal import JOBS

    from ..flows.formal import run_job, tools_available

    console = console_for()
    jobs = [j for j in JOBS if (args.all or not j.slow) and (not args.job or j.name in args.job)]
    for solver in sorted({job.solver for job in jobs}):
        ok, reason = tools_available(solver)
        if not ok:
            console.print(f"[red]{reason}[/red]")
            return 1
    table = Table(title="Formal property checks (SymbiYosys, smtbmc)")
    for column in ("property", "guarantees", "mode", "depth", "solver", "result", "seconds"):
        table.add_column(column, justify="right" if column in ("depth", "seconds") else "left")
    results = []
    start = time.perf_counter()
    for job in jobs:
        spinner = console.status(f"{job.name}: {job.mode} depth {job.depth}") if console.is_terminal \
            else nullcontext(console.print(f"{job.name}: {job.mode} depth {job.depth}"))
        with spinner:
            result = run_job(job, Path(args.build_dir))
        results.append(result)
        if result.unfinished:
            status = "[yellow]unfinished (by design)[/yellow]"
        else:
            color = "green" if result.passed else "red"
            status = f"[{color}]{result.status}[/{color}]"
        table.add_row(job.name, job.guarantees, job.mode, str(job.depth), job.solver, status,
                      f"{result.seconds:.1f}")
    console.print(table)
    console.print(f"{len(results)} jobs in {time.perf_counter() - start:.0f} s wall time")
    failed = [r for r in results if not r.passed and not r.unfinished]
    for result in failed:
        log = result.workdir / "sby.log"
        console.print(f"[red]{result.job.name}: {result.status}[/red] (log: {log})")
        if result.counterexample:
            console.print(f"  counterexample: {result.counterexample}")
        if result.detail:
            console.print(result.detail)
    return 0 if results and not failed else 1


def register(sub) -> None:
    p = sub.add_parser("formal", help="run the formal property checks (SymbiYosys)")
    p.add_argument("--all", action="store_true", help="include the slow jobs")
    p.add_argument("--job", action="append", metavar="NAME", help="only this job (repeatable)")
    p.add_argument("--build-dir", default="build/formal", help="where the jobs' work directories go")
    p.set_defaults(func=cmd_formal)
