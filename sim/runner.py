"""Run a cocotb testbench against an Amaranth component (or Verilog) on Icarus or Verilator.

One helper does it all::

    from sim.runner import run_cocotb
    result = run_cocotb(StreamFifo(32, 4), "sim.testbenches.stream_smoke",
                        simulator="verilator", build_dir="build/sim/fifo")
    assert result.passed, result.summary()

It writes Verilog with :func:`amaranth.back.verilog.convert`, builds it with
cocotb's ``get_runner`` (timescale 1 ns/1 ps), runs the test module, and returns a
:class:`SimResult` with pass/fail counts, build and run times, the waveform path when asked for
(Icarus: FST, Verilator: VCD, both in the test directory) and any metrics the testbench recorded
with :func:`sim.metrics.record`.

Builds are atomic (:func:`build_model`): the simulator model is built in a temporary folder next
to ``<build_dir>/model`` and renamed into place only when the build succeeded, under a file lock,
with a ``build.ok`` key (a hash of the sources, the simulator and its arguments) written last. An
interrupted or failed build is never reused, and two processes that build the same design wait
for one build. Results, logs and waves go to ``test_dir`` (default ``build_dir``), so several runs
can share one model, each in a folder of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from hdl.module_sharing import share_identical_modules

from . import toolchain
from .build_progress import watching
from .metrics import METRICS_ENV

__all__ = ["SimResult", "SimulationError", "write_verilog", "run_cocotb", "build_model", "file_lock",
           "new_run_dir", "VERILATOR_WAIVERS", "MODEL_DIR"]

#: Verilator warnings we switch off for Amaranth-generated Verilog, each with its reason.
#: Used by the runner's builds and by ``make lint``; keep it short.
VERILATOR_WAIVERS: dict[str, str] = {
    "-Wno-WIDTH": "Amaranth emits implicit width extensions/truncations in its assignments",
}

TIMESCALE = ("1ns", "1ps")

#: The simulator model's folder inside a build directory (replaced whole by each build).
MODEL_DIR = "model"
#: Written last into a finished model folder: the key of the build it holds.
BUILD_OK = "build.ok"

#: Extra C++ flags for every file of a Verilator model build (unset: Verilator's defaults, and
#: the kernel system's own choice, :mod:`sim.kernels`).
VERILATOR_CFLAGS_ENV = "OPENRDU_VERILATOR_CFLAGS"
#: Extra C++ flags for the builds that choose no optimisation of their own (all but the kernel
#: system's); the test suite sets ``-O0``: its unit designs are large and their runs short.
VERILATOR_UNIT_CFLAGS_ENV = "OPENRDU_VERILATOR_UNIT_CFLAGS"

_PORT_RE = re.compile(
    r"^\s*(?:input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[[^\]]*\]\s*)?(\w+)\s*;", re.M)


def toplevel_ports(verilog_text: str, toplevel: str) -> list[str]:
    """Names of the ports of module ``toplevel`` in ``verilog_text`` (Amaranth's output style)."""
    match = re.search(rf"^module\s+\\?{re.escape(toplevel)}\s*\(", verilog_text, re.M)
    if not match:
        raise ValueError(f"module {toplevel!r} not found")
    body = verilog_text[match.end():]
    return _PORT_RE.findall(body[:body.index("endmodule")])


def _verilator_port_access(sources: list[Path], toplevel: str, build_dir: Path) -> list[str]:
    """Build arguments that make only the toplevel's ports visible to cocotb.

    cocotb's runner passes ``--public-flat-rw``, which makes every signal of the design
    public; for Amaranth designs (one flat module) that multiplies Verilator's C++ and
    its compile time (a 49 k-line PCU: 85 s → 23 s without it). Waves still record
    every signal.
    """
    for source in sources:
        text = source.read_text(errors="replace")
        try:
            ports = toplevel_ports(text, toplevel)
        except ValueError:
            continue
        control = build_dir / "ports.vlt"
        control.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{toplevel}" -var "{port}"\n' for port in ports))
        return ["--no-public-flat-rw", str(control)]
    return []


class SimulationError(RuntimeError):
    """The simulator could not build or run the design (not a failing test)."""


@dataclass
class SimResult:
    """Outcome of one :func:`run_cocotb` call.

    Attributes
    ----------
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    simulator_version : str
        The simulator's own version line.
    test_module : str
        The cocotb module that ran.
    tests, failures : int
        cocotb test cases run and failed (from the results XML).
    build_s, run_s : float
        Wall seconds spent building and simulating.
    build_dir : Path
        Where the results, logs and waves are (the run's test directory).
    waves : Path or None
        Waveform file, when ``waves=True`` and the simulator wrote one.
    metrics : dict
        Values recorded by the testbench with :func:`sim.metrics.record`.
    failed_tests : list of str
        Names of failing cocotb tests with their messages.
    """

    simulator: str
    simulator_version: str
    test_module: str
    tests: int
    failures: int
    build_s: float
    run_s: float
    build_dir: Path
    waves: Path | None = None
    metrics: dict = field(default_factory=dict)
    failed_tests: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.tests > 0 and self.failures == 0

    def summary(self) -> str:
        state = "passed" if self.passed else "FAILED"
        text = (f"{self.test_module} on {self.simulator}: {state} "
                f"({self.tests - self.failures}/{self.tests} tests; build {self.build_s:.2f} s, "
                f"run {self.run_s:.2f} s; logs in {self.build_dir})")
        for failure in self.failed_tests:
            text += f"\n  {failure}"
        return text


def write_verilog(component: wiring.Component, path: str | os.PathLike, name: str = "top") -> Path:
    """Write ``component`` as a Verilog module called ``name`` to ``path``; return the path.

    A component with a ``verilog(name)`` method (a hierarchical design such as
    :class:`hdl.tile.Tile`, whose unit modules are generated once) writes what it returns.
    Identical modules (the lanes of a PCU, the channels of an HBM stack) are written once
    (:func:`hdl.module_sharing.share_identical_modules`).
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"Expected an amaranth.lib.wiring.Component, got {type(component).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    custom = getattr(component, "verilog", None)
    text = custom(name) if callable(custom) else verilog.convert(component, name=name, emit_src=False)
    text, _ = share_identical_modules(text)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.write_text(text)
        partial.replace(path)            # atomic: a reader sees the old file or the whole new one
    finally:
        partial.unlink(missing_ok=True)
    return path


def new_run_dir(build_dir: str | os.PathLike) -> Path:
    """A new, empty run folder ``<build_dir>/runs/<time>-<pid>-<id>`` for one run's job file,
    results, logs and waves (never shared with another run)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(build_dir).resolve() / "runs" / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the ``with`` block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_key(sources: Sequence[Path], simulator: str, toplevel: str, build_args: Sequence[str],
               waves: bool, version: str) -> str:
    digest = hashlib.sha256(json.dumps([simulator, version, toplevel, list(build_args), waves,
                                        list(TIMESCALE)]).encode())
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _model_file(model_dir: Path, simulator: str, toplevel: str) -> Path:
    return model_dir / ("sim.vvp" if simulator == "icarus" else toplevel)


def _remove_stale_partials(build_dir: Path) -> None:
    """Temporary model folders of builds whose process is gone (killed without clean-up)."""
    for stale in build_dir.glob(f".{MODEL_DIR}-*"):
        try:
            pid = int(stale.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def _make_variables(variables: Mapping[str, str]):
    """Pass ``variables`` to the ``make`` that cocotb's runner starts (through ``MAKEFLAGS``, where
    make reads them as command-line definitions, e.g. Verilator's ``OPT_FAST``)."""
    if not variables:
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    defs = " ".join(f"{k}={v}" for k, v in variables.items())
    has_definitions = old is not None and f" {old} ".find(" -- ") >= 0
    os.environ["MAKEFLAGS"] = f"{old} {defs}" if has_definitions else f"{old or ''} -- {defs}".lstrip()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def _design_name(build_dir: Path) -> str:
    """A build folder's name for progress lines: its last two parts (``small/system_verilator``)."""
    return "/".join(build_dir.parts[-2:])


def build_model(sources: Sequence[Path], *, simulator: str, build_dir: Path, toplevel: str = "top",
                build_args: Sequence[str] = (), waves: bool = False, reuse: bool = False,
                internal_signals: bool = False, log_file: Path | None = None,
                make_vars: Mapping[str, str] | None = None) -> tuple[Path, float, bool]:
    """Build the simulator model of ``sources`` into ``<build_dir>/model``, atomically.

    Under a lock on ``<build_dir>/model.lock``: with ``reuse``, a model whose ``build.ok`` key
    matches (same sources, simulator, arguments, waves) is kept; otherwise the model is built in
    ``<build_dir>/.model-<pid>-<id>`` and renamed to ``model`` once complete, replacing the old
    one. A failed or interrupted build leaves the old model (or none) and removes its folder.

    Returns
    -------
    (model_dir, build_s, built)
        The model folder, the seconds spent building (0 when reused) and whether it was built.
    """
    from cocotb_tools.runner import get_runner

    status = toolchain.activate(simulator)
    build_dir = Path(build_dir).resolve()
    model_dir = build_dir / MODEL_DIR
    args = list(build_args)
    if simulator == "verilator":
        args = list(VERILATOR_WAIVERS) + args
        # the user's flags for every build; else the unit flags for builds that choose no
        # optimisation of their own (every build but the kernel system's)
        cflags = os.environ.get(VERILATOR_CFLAGS_ENV) or ("" if make_vars else
                                                          os.environ.get(VERILATOR_UNIT_CFLAGS_ENV))
        if cflags:
            args += ["-CFLAGS", cflags]
    make_vars = dict(make_vars or {}) if simulator == "verilator" else {}
    if os.environ.get(VERILATOR_CFLAGS_ENV):
        make_vars = {}          # the user's C++ flags decide (they come after OPT_FAST in the rules)
    key = _build_key(sources, simulator, toplevel,
                     args + (["+public"] if internal_signals else [])
                     + [f"make:{k}={v}" for k, v in sorted(make_vars.items())], waves, status.version or "")
    with file_lock(build_dir / f"{MODEL_DIR}.lock"):
        ok = model_dir / BUILD_OK
        current = ok.exists() and ok.read_text() == key
        if reuse and current and _model_file(model_dir, simulator, toplevel).exists():
            return model_dir, 0.0, False
        _remove_stale_partials(build_dir)
        partial = build_dir / f".{MODEL_DIR}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        partial.mkdir(parents=True)
        log = log_file or build_dir / "build.log"
        try:
            extra = []
            if simulator == "verilator" and not internal_signals:
                extra = _verilator_port_access(sources, toplevel, partial)
            start = time.perf_counter()
            try:
                with watching(partial, simulator=simulator, design=_design_name(build_dir),
                              history_dir=build_dir), _make_variables(make_vars):
                    get_runner(simulator).build(
                        sources=list(sources), hdl_toplevel=toplevel, build_dir=partial,
                        build_args=args + extra, timescale=TIMESCALE, waves=waves, always=True,
                        log_file=log)
            except (SystemExit, Exception) as e:  # cocotb's runner reports build failures as SystemExit
                raise SimulationError(
                    f"{simulator} build of {toplevel} failed ({e}); last lines of {log}:\n{_log_tail(log)}"
                ) from None
            if not _model_file(partial, simulator, toplevel).exists():
                raise SimulationError(f"{simulator} build of {toplevel} wrote no model; see {log}")
            build_s = time.perf_counter() - start
            (partial / BUILD_OK).write_text(key)
            if model_dir.exists():
                old = build_dir / f".{MODEL_DIR}-{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
                model_dir.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            partial.rename(model_dir)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
    return model_dir, build_s, True


def _parse_results(xml_path: Path) -> tuple[int, int, list[str]]:
    if not xml_path.exists():
        return 0, 0, []
    tests = failures = 0
    failed = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        tests += 1
        problems = case.findall("failure") + case.findall("error")
        if problems:
            failures += 1
            message = problems[0].get("message") or (problems[0].text or "").strip()
            failed.append(f"{case.get('name')}: {message.splitlines()[0] if message else 'failed'}")
    return tests, failures, failed


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_cocotb(
    design: wiring.Component | str | os.PathLike | Sequence[str | os.PathLike],
    test_module: str,
    *,
    simulator: str,
    build_dir: str | os.PathLike,
    toplevel: str = "top",
    testcase: str | Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
    verbose: bool = False,
    internal_signals: bool = False,
    reuse_build: bool = False,
    verilator_args: Sequence[str] = (),
    make_vars: Mapping[str, str] | None = None,
    test_dir: str | os.PathLike | None = None,
) -> SimResult:
    """Build ``design`` and run the cocotb ``test_module`` against it.

    Parameters
    ----------
    design : Component, path or list of paths
        An Amaranth component (written to ``build_dir/<toplevel>.v``) or Verilog file(s).
    test_module : str
        Importable module holding ``@cocotb.test()`` functions.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    build_dir : path
        Directory for this build (the model goes to ``build_dir/model``, see :func:`build_model`);
        use one per design and parametrisation.
    toplevel : str
        Name of the top Verilog module.
    testcase : str or list of str, optional
        Run only these cocotb tests.
    env : mapping, optional
        Extra environment for the testbench (parameters such as item counts).
    waves : bool
        Record a waveform in the test directory (Icarus: ``<toplevel>.fst``; Verilator:
        ``dump.vcd``). A waves build is a model of its own (``build_dir/model`` of
        ``<build_dir>-waves`` when ``reuse_build``).
    seed : int, optional
        cocotb random seed (``COCOTB_RANDOM_SEED``); random when omitted.
    verbose : bool
        Stream simulator output to the console instead of log files.
    internal_signals : bool
        Verilator only: let the testbench reach every internal signal (cocotb's default,
        much slower to build). By default only the toplevel's ports are visible.
    verilator_args : sequence of str
        Extra Verilator build arguments (e.g. ``--hierarchical`` for designs with
        ``hier_block`` modules).
    make_vars : mapping of str to str, optional
        Variables of the Verilator model's ``make`` (see :func:`build_model`); part of the
        build's key, so they must match those the model was built with for it to be reused.
    reuse_build : bool
        Keep the existing model when it was built from the same sources and arguments (several
        runs against one design, e.g. benchmark patterns or kernels); the Verilog file is then
        only rewritten when its text differs.
    test_dir : path, optional
        Where the run's results, logs, metrics and waves go (default ``build_dir``). Runs that
        share one model at the same time need one each.

    Raises
    ------
    SimulationError
        When the build fails or the simulator produced no results.
    RuntimeError
        When the simulator is not usable (the message says why).
    """
    from cocotb_tools.runner import get_runner

    status = toolchain.activate(simulator)
    build_dir = Path(build_dir).resolve()
    if waves and reuse_build:
        build_dir = build_dir.with_name(build_dir.name + "-waves")
    build_dir.mkdir(parents=True, exist_ok=True)
    test_dir = Path(test_dir).resolve() if test_dir is not None else build_dir
    test_dir.mkdir(parents=True, exist_ok=True)

    if isinstance(design, wiring.Component):
        target = build_dir / f"{toplevel}.v"
        if reuse_build and target.exists():
            fresh = write_verilog(design, build_dir / f"{toplevel}.v.new", toplevel)
            if fresh.read_text() == target.read_text():
                fresh.unlink()
            else:
                fresh.replace(target)
            sources = [target]
        else:
            sources = [write_verilog(design, target, toplevel)]
    elif isinstance(design, (str, os.PathLike)):
        sources = [Path(design).resolve()]
    else:
        sources = [Path(p).resolve() for p in design]
    for source in sources:
        if not source.exists():
            raise FileNotFoundError(f"Verilog source {source} does not exist")

    sim_log = test_dir / "sim.log"
    results_xml = test_dir / "results.xml"
    metrics_file = test_dir / "metrics.json"
    for stale in (results_xml, metrics_file):
        stale.unlink(missing_ok=True)

    model_dir, build_s, _ = build_model(
        sources, simulator=simulator, build_dir=build_dir, toplevel=toplevel,
        build_args=verilator_args if simulator == "verilator" else (), waves=waves, reuse=reuse_build,
        internal_signals=internal_signals, make_vars=make_vars)

    runner = get_runner(simulator)
    test_env = {METRICS_ENV: str(metrics_file), **(env or {})}
    # cocotb rewrites the assertions of every module imported after it starts (pytest's rewriting,
    # default "*.py"): hdl, compiler and sim, ~4 s of every simulation's start-up on this machine.
    # Only the testbench's own assertions need the better messages.
    if "COCOTB_REWRITE_ASSERTION_FILES" not in os.environ:
        test_env["COCOTB_REWRITE_ASSERTION_FILES"] = test_module.rpartition(".")[2] + ".py"
    plusargs = []
    wave_file = None
    if waves:
        wave_file = test_dir / (f"{toplevel}.fst" if simulator == "icarus" else "dump.vcd")
        if simulator == "icarus":
            plusargs.append(f"+dumpfile_path={wave_file}")
    start = time.perf_counter()
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=model_dir,
            test_dir=test_dir,
            testcase=testcase,
            results_xml=str(results_xml),
            extra_env=test_env,
            seed=seed,
            waves=waves,
            plusargs=plusargs,
            timescale=TIMESCALE,
            log_file=None if verbose else sim_log,
        )
    except SystemExit:
        pass  # failing tests: the results file says which
    run_s = time.perf_counter() - start

    tests, failures, failed = _parse_results(results_xml)
    if tests == 0:
        raise SimulationError(
            f"{simulator} ran no cocotb test from {test_module}; last lines of {sim_log}:\n"
            f"{_log_tail(sim_log)}"
        )
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    if wave_file is not None and not wave_file.exists():
        wave_file = None
    return SimResult(
        simulator=simulator,
        simulator_version=status.version or "",
        test_module=test_module,
        tests=tests,
        failures=failures,
        build_s=build_s,
        run_s=run_s,
        build_dir=test_dir,
        waves=wave_file,
        metrics=metrics,
        failed_tests=failed,
    )
