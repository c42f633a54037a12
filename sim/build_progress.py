"""Progress of a simulator model build, seen from its build folder.

A build of the ``small`` kernel system takes minutes; :func:`sim.runner.build_model` runs a
:class:`BuildWatcher` beside it, which looks at the folder being built every second and
reports a :class:`BuildStatus` to the reporter installed with :func:`reporting` (the
``openrdu`` commands install one that prints on stderr; with none installed nothing is
watched).

What the folder shows:

* Verilator: ``verilating`` until the makefile ``Vtop.mk`` appears (Verilog → C++), then
  ``compiling C++`` with the object files written so far out of the C++ files, then
  ``linking`` once every object exists;
* Icarus: ``compiling`` (``iverilog`` writes the image at the end);
* Amaranth (``simulator="amaranth"``, the kernel system's Verilog): ``generating Verilog``.

The estimate of the time left comes from the rate of the C++ compilation, or, before it
starts, from the previous build of the same design in the same folder
(``<build_dir>/last_build.json``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuildStatus", "BuildWatcher", "reporting", "current_reporter", "watching", "format_seconds"]

#: How often the watcher looks at the build folder (seconds).
POLL_S = 1.0


def format_seconds(seconds: float) -> str:
    """``75.2`` → ``"1m15s"``; under a minute ``"42s"``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass(frozen=True)
class BuildStatus:
    """One look at a build in progress.

    Attributes
    ----------
    simulator, design : str
        What is built (``design`` names the build folder, e.g. ``small/system_verilator``);
        ``simulator`` is ``amaranth`` while Verilog is generated.
    stage : str
        ``verilating``, ``compiling C++``, ``linking`` (Verilator), ``compiling`` (Icarus) or
        ``generating Verilog`` (Amaranth).
    done, total : int or None
        Files compiled so far and to compile (``compiling C++`` only).
    elapsed_s : float
        Seconds since the build started.
    estimate_s : float or None
        Seconds the build probably still needs (None: nothing to go on).
    """

    simulator: str
    design: str
    stage: str
    done: int | None
    total: int | None
    elapsed_s: float
    estimate_s: float | None

    def line(self) -> str:
        """One line for a log: ``building small/system_verilator (verilator): compiling C++ 12/40
        files, 3m10s elapsed, about 4m00s left``."""
        what = self.stage + (f" {self.done}/{self.total} files" if self.total else "")
        left = f", about {format_seconds(self.estimate_s)} left" if self.estimate_s is not None else ""
        elapsed = format_seconds(self.elapsed_s)
        return f"building {self.design} ({self.simulator}): {what}, {elapsed} elapsed{left}"


Reporter = Callable[[BuildStatus], None]
_REPORTER: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("openrdu_build_reporter",
                                                                            default=None)


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Within the block, model builds report their progress to ``reporter`` (from a watcher
    thread, about once a second)."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def current_reporter() -> Reporter | None:
    """The reporter :func:`reporting` installed, if any."""
    return _REPORTER.get()


def _verilator_stage(folder: Path) -> tuple[str, int | None, int | None]:
    if not (folder / "Vtop.mk").exists():
        return "verilating", None, None
    sources = {p.stem for p in folder.glob("*.cpp")}
    objects = {p.stem for p in folder.glob("*.o")} & sources
    if len(objects) >= len(sources):
        return "linking", None, None
    return "compiling C++", len(objects), len(sources)


class BuildWatcher:
    """Watch ``folder`` while a build writes it; report to ``reporter`` every :data:`POLL_S`.

    Use as a context manager around the build; on leaving, the build's duration is kept in
    ``<history_dir>/last_build.json`` (only when the build succeeded) for the next estimate.
    """

    def __init__(self, folder: Path, *, simulator: str, design: str, reporter: Reporter,
                 history_dir: Path):
        self.folder = Path(folder)
        self.simulator = simulator
        self.design = design
        self.reporter = reporter
        self.history = Path(history_dir) / "last_build.json"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"build-watch-{design}", daemon=True)
        self._start = time.monotonic()
        self._previous = self._read_history()
        self._compile_start: tuple[float, int] | None = None

    def _read_history(self) -> float | None:
        try:
            return float(json.loads(self.history.read_text())["build_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def status(self) -> BuildStatus:
        """The build as the folder shows it now."""
        now = time.monotonic()
        elapsed = now - self._start
        if self.simulator == "verilator":
            stage, done, total = _verilator_stage(self.folder)
        elif self.simulator == "icarus":
            stage, done, total = "compiling", None, None
        else:
            stage, done, total = "generating Verilog", None, None
        estimate = None
        if total:
            if self._compile_start is None:
                self._compile_start = (now, done)
            since, first = self._compile_start
            if done > first:
                estimate = (now - since) / (done - first) * (total - done)
        if estimate is None and self._previous is not None and stage != "linking":
            estimate = max(0.0, self._previous - elapsed) or None
        return BuildStatus(self.simulator, self.design, stage, done, total, elapsed, estimate)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.reporter(self.status())
            except Exception:       # a reporter that fails must not break the build
                return

    def __enter__(self) -> BuildWatcher:
        self._thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        self._stop.set()
        self._thread.join()
        if kind is None:
            try:
                self.history.parent.mkdir(parents=True, exist_ok=True)
                self.history.write_text(json.dumps({"build_s": round(time.monotonic() - self._start, 1)}))
            except OSError:
                pass
        return False


def watching(folder: Path, *, simulator: str, design: str, history_dir: Path):
    """A :class:`BuildWatcher` of ``folder`` reporting to the installed reporter, or, with none
    installed, a context that does nothing (use it around a build)."""
    reporter = current_reporter()
    if reporter is None:
        return contextlib.nullcontext()
    return BuildWatcher(folder, simulator=simulator, design=design, reporter=reporter,
                        history_dir=history_dir)
