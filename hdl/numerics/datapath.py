"""Globally stalled pipelines: registers with one enable, delay lines and cut points.

Every arithmetic unit of OpenRDU is built inside a :class:`Datapath`: a module
plus one *advance* signal. Each register of the datapath loads when ``advance``
is high, so the whole pipeline moves one step or holds still together; the
unit wrappers (:mod:`hdl.numerics.units`) drive ``advance`` from the output
stream's ``ready`` and carry ``valid`` along a delay line of the same length.

Arithmetic builders (:mod:`hdl.numerics.fp32`) are written as combinational
phases with *cut points* between them. :meth:`Datapath.plan` spreads a
requested latency over a builder's cut points, and :meth:`Datapath.cut`
registers the values crossing an active cut. Latency beyond the number of cut
points becomes output registers (useful for retiming in synthesis).
"""

from __future__ import annotations

from amaranth import Module, Signal, Value

__all__ = ["Datapath"]


class Datapath:
    """Register factory for a pipeline that advances all at once.

    Parameters
    ----------
    m : Module
        Module the registers and logic go into.
    advance : Value
        One bit; when high, every register of this datapath loads its input.
    """

    def __init__(self, m: Module, advance: Value):
        if not isinstance(m, Module):
            raise TypeError(f"m must be an amaranth Module, got {type(m).__name__}")
        self.m = m
        self.advance = Value.cast(advance)
        self._count = 0

    def child(self, name: str) -> Datapath:
        """A datapath in a new submodule ``name`` of this one, with the same ``advance``.

        The submodule becomes its own Verilog module. Big units split this way compile much
        faster in Icarus, whose elaboration searches a scope's signal list linearly for every
        reference (a flat PCU of ``small`` took it more than half an hour).
        """
        sub = Module()
        self.m.submodules[name] = sub
        return Datapath(sub, self.advance)

    def reg(self, value, name: str | None = None) -> Signal:
        """One register stage on ``value`` (no reset: data registers follow ``valid``)."""
        value = Value.cast(value)
        self._count += 1
        signal = Signal(value.shape(), name=name or f"pipe{self._count}", reset_less=True)
        with self.m.If(self.advance):
            self.m.d.sync += signal.eq(value)
        return signal

    def valid_delay(self, value, cycles: int) -> list[Signal]:
        """A delay line for a control bit (``valid``): registers *with* reset, so a pipeline
        is empty after reset. Returns the taps ``[value, after 1, …, after cycles]``."""
        taps = [Value.cast(value)]
        for _ in range(cycles):
            self._count += 1
            bit = Signal(name=f"valid{self._count}")
            with self.m.If(self.advance):
                self.m.d.sync += bit.eq(taps[-1])
            taps.append(bit)
        return taps

    def select(self, index, values, name: str | None = None) -> Signal:
        """``values[index]`` as a signal, 0 for an index past the end (every case covered, so the
        Verilog has no incomplete case statements whatever ``len(values)`` is)."""
        width = max(len(Value.cast(v)) for v in values)
        self._count += 1
        out = Signal(width, name=name or f"select{self._count}")
        with self.m.Switch(index):
            for k, value in enumerate(values):
                with self.m.Case(k):
                    self.m.d.comb += out.eq(value)
            with self.m.Default():
                self.m.d.comb += out.eq(0)
        return out

    def wire(self, value, name: str | None = None) -> Signal:
        """``value`` as a named combinational signal, so that several readers share one copy
        of its logic (Amaranth does not merge repeated expressions)."""
        value = Value.cast(value)
        self._count += 1
        signal = Signal(value.shape(), name=name or f"wire{self._count}")
        self.m.d.comb += signal.eq(value)
        return signal

    def delay(self, value, cycles: int) -> Value:
        """``value`` delayed by ``cycles`` register stages (``cycles == 0`` returns it)."""
        if cycles < 0:
            raise ValueError(f"cannot delay by a negative number of cycles ({cycles})")
        value = Value.cast(value)
        for _ in range(cycles):
            value = self.reg(value)
        return value

    def cut(self, active: bool, *values):
        """Register ``values`` when ``active`` (a cut point in use), else pass them through.

        Returns a tuple of the same length as ``values``.
        """
        if not active:
            return values
        return tuple(self.reg(v) for v in values)

    @staticmethod
    def plan(latency: int, points: int) -> tuple[list[bool], int]:
        """Spread ``latency`` register stages over ``points`` cut points.

        Returns ``(active, extra)``: which cut points hold a register, and how
        many registers go after the last phase (when ``latency > points``).
        Cuts are spaced evenly so that the combinational phases between them
        are of similar length.
        """
        if isinstance(latency, bool) or not isinstance(latency, int):
            raise TypeError(f"latency must be an int, got {type(latency).__name__}")
        if latency < 0:
            raise ValueError(f"latency must be at least 0, got {latency}")
        used = min(latency, points)
        active = [False] * points
        for k in range(used):
            active[((k + 1) * (points + 1)) // (used + 1) - 1] = True
        return active, latency - used

