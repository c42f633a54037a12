"""Micro-programs: one description of a multi-step computation, three interpretations.

A micro-program is a plain Python function ``program(E, *inputs)`` that
computes with ``E.<op>(...)`` calls, where ``<op>`` is a name from the op
table (:mod:`hdl.numerics.ops`), and with constants ``E.f(float)`` and
``E.i(int)``. The same function is run by

* :class:`GoldenEval` — numpy arrays through the golden primitives, the bit
  exact reference;
* :class:`TimingEval` — only the cycle each value is ready, to get the
  program's latency without building hardware;
* :class:`RtlEval` — Amaranth hardware: each call instantiates that op's
  builder, and operands that became ready at different cycles are delayed to
  meet (an as-soon-as-possible schedule on a globally stalled pipeline).

So the hardware and the golden model perform the same primitive operations
in the same order by construction, and each primitive is separately proven
equal to its golden function.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from amaranth import Const, Value

from .datapath import Datapath

__all__ = ["GoldenEval", "TimingEval", "RtlEval", "RECOMPUTED_OPS"]


def _f32_word(value: float) -> int:
    return int(np.asarray(value, dtype=np.float32).view(np.uint32))


class _Eval:
    def __init__(self, table: Mapping):
        self._table = table

    def _op(self, name):
        try:
            op = self._table[name]
        except KeyError:
            raise AttributeError(f"micro-program uses unknown op {name!r}") from None
        if op.kind != "alu":
            raise AttributeError(f"micro-programs are built from ALU ops; {name!r} is a {op.kind} op")
        return op

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        op = self._op(name)
        return lambda *args: self._apply(op, args)


class GoldenEval(_Eval):
    """Run a micro-program on numpy uint32 word arrays with the golden primitives."""

    def f(self, value: float):
        return np.uint32(_f32_word(value))

    def i(self, value: int):
        return np.uint32(value & 0xFFFFFFFF)

    def _apply(self, op, args):
        if len(args) != len(op.operands):
            raise TypeError(f"{op.name} takes {len(op.operands)} operands, got {len(args)}")
        return op.golden(*args)


class TimingEval(_Eval):
    """Run a micro-program on ready times only; the result's time is the latency."""

    def f(self, value: float):
        return 0

    def i(self, value: int):
        return 0

    def _apply(self, op, args):
        return max(args, default=0) + op.latency


#: Ops cheap enough to build twice: where every operand of one is a pipeline input, a constant or
#: another such op, :class:`RtlEval` computes it again where it is read instead of delaying its
#: result (a 32-bit word) through the pipeline; the inputs are delayed anyway.
RECOMPUTED_OPS = frozenset({"ieq", "ilt", "ior", "iand", "ixor", "flt", "fle", "feq", "fmax", "fmin",
                            "fabs", "fneg", "sel"})


class _Timed:
    __slots__ = ("value", "time", "recompute", "built")

    def __init__(self, value: Value | None, time: int | None, recompute=None):
        self.value = value
        self.time = time  # None: a constant, available at any time
        # (op, operands) of a value built where it is read (see RECOMPUTED_OPS); None otherwise
        self.recompute = recompute
        self.built: dict[int, Value] = {}


class RtlEval(_Eval):
    """Build a micro-program as hardware in ``dp``; inputs are ready at cycle 0.

    Use :meth:`input` to wrap input values and :meth:`output` to get a result
    delayed to a given cycle (default: its own ready time).

    Operations are scheduled as soon as possible, and a value read later is delayed by a chain
    of registers shared by its readers. Cheap operations of inputs and constants only
    (:data:`RECOMPUTED_OPS`: op-code compares, selects, signs) are the exception: they are built
    again at each cycle they are read, from the inputs' delay lines, so that a flag read at the
    end of a long pipeline costs the logic of a compare rather than a long register chain.
    """

    def __init__(self, table: Mapping, dp: Datapath, recompute=RECOMPUTED_OPS):
        super().__init__(table)
        self._dp = dp
        self._recompute = frozenset(recompute)
        self._delayed: dict[int, list[Value]] = {}
        self._keep: list[_Timed] = []

    def input(self, value) -> _Timed:
        return _Timed(Value.cast(value), 0, recompute=())

    def f(self, value: float):
        return _Timed(Const(_f32_word(value), 32), None)

    def i(self, value: int):
        return _Timed(Const(value & 0xFFFFFFFF, 32), None)

    def at(self, timed: _Timed, time: int) -> Value:
        """``timed``'s value as seen at cycle ``time`` (delay lines shared between readers)."""
        if timed.time is None:
            return timed.value
        if time < timed.time:
            raise ValueError(f"value ready at cycle {timed.time} read at cycle {time}")
        if timed.recompute:
            if time not in timed.built:
                op, args = timed.recompute
                start = time - op.latency
                timed.built[time] = op.build(self._dp, [self.at(a, start) for a in args], op.latency)
            return timed.built[time]
        chain = self._delayed.setdefault(id(timed), [timed.value])
        if len(chain) == 1:
            self._keep.append(timed)  # keep id() unique while the chain lives
        while len(chain) <= time - timed.time:
            chain.append(self._dp.reg(chain[-1]))
        return chain[time - timed.time]

    def _apply(self, op, args):
        if len(args) != len(op.operands):
            raise TypeError(f"{op.name} takes {len(op.operands)} operands, got {len(args)}")
        start = max((a.time for a in args if a.time is not None), default=0)
        if op.name in self._recompute and all(a.time is None or a.recompute is not None for a in args):
            return _Timed(None, start + op.latency, recompute=(op, args))
        operands = [self.at(a, start) for a in args]
        return _Timed(op.build(self._dp, operands, op.latency), start + op.latency)

    def output(self, timed: _Timed, time: int | None = None) -> Value:
        return self.at(timed, timed.time if time is None else time)
