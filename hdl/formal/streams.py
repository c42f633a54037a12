"""Formal harnesses for stream interfaces: transfer rules and no loss, duplication or reordering.

The rules of :mod:`amaranth.lib.stream`: once ``valid`` is high, ``valid`` and
``payload`` hold until the transfer (``valid & ready`` at a clock edge). A harness
*assumes* them of the environment driving a unit's inputs and *asserts* them of the
unit's outputs; every input the harness does not drive is free, so the solver
explores every environment that follows the rules.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, ResetSignal, Signal, Value
from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cover

from ..stream import StreamFifo, StreamRegister

__all__ = ["reset_at_start", "free", "stream_rules", "StreamRulesHarness", "FifoOrderHarness"]


def free(m: Module, *signals) -> None:
    """Drive each signal from a fresh free variable every cycle (the solver picks its values).

    Amaranth ties undriven signals to their initial value, so a unit input left undriven
    in a harness would be constant 0 and the properties vacuous; the covers catch that.
    """
    for signal in signals:
        value = Value.cast(signal)
        m.d.comb += value.eq(AnySeq(len(value)))


def reset_at_start(m: Module) -> Signal:
    """Reset is high in the first cycle only; return a signal that is high from the second cycle on."""
    m.d.comb += Assume(ResetSignal() == Initial())
    started = Signal()
    m.d.sync += started.eq(1)
    return started


def stream_rules(m: Module, stream, started, *, check, label: str):
    """Apply ``check`` (``Assert`` for a unit's output, ``Assume`` for its environment) to the
    stream rules of ``stream``: a pending offer keeps ``valid`` and ``payload``."""
    past_valid, past_ready = Signal(name=f"{label}_past_valid"), Signal(name=f"{label}_past_ready")
    past_payload = Signal(len(Value.cast(stream.payload)), name=f"{label}_past_payload")
    m.d.sync += [past_valid.eq(stream.valid), past_ready.eq(stream.ready), past_payload.eq(stream.payload)]
    with m.If(started & past_valid & ~past_ready):
        m.d.comb += [check(stream.valid, f"{label}_valid_holds"),
                     check(Value.cast(stream.payload) == past_payload, f"{label}_payload_holds")]


def stream_environment(m: Module, dut) -> Signal:
    """Drive a stream unit's ``i`` and ``o.ready`` freely, assume the rules of ``i``, reset at the
    start; return the "started" signal."""
    free(m, dut.i.valid, dut.i.payload, dut.o.ready)
    started = reset_at_start(m)
    stream_rules(m, dut.i, started, check=Assume, label="i")
    return started


class StreamRulesHarness(Elaboratable):
    """A stream unit (input ``i``, output ``o``) whose output keeps the rules when its input does.

    Parameters
    ----------
    factory : callable
        Builds the unit.
    """

    def __init__(self, factory):
        self.factory = factory

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.factory()
        started = stream_environment(m, dut)
        stream_rules(m, dut.o, started, check=Assert, label="o")
        # covers: an output transfer, and a stalled output (the rule had something to check)
        stalled = Signal()
        m.d.sync += stalled.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += [Cover(started & dut.o.valid & dut.o.ready, "o_transfer"),
                     Cover(started & stalled & dut.o.valid & dut.o.ready, "o_transfer_after_stall")]
        return m


class FifoOrderHarness(Elaboratable):
    """A :class:`StreamFifo`: the ``n``-th payload out is the ``n``-th payload in, for a symbolic ``n``;
    nothing comes out that did not go in; the fill level counts exactly what is inside.

    Parameters
    ----------
    depth, width : int
        FIFO size. One bit of payload suffices: the tracked index is symbolic and the solver
        picks the payloads, so a lost, duplicated or reordered payload shows as a wrong bit.
    """

    def __init__(self, depth: int = 4, width: int = 8, counter_bits: int = 6, factory=None):
        self.depth, self.width, self.counter_bits = depth, width, counter_bits
        self.factory = factory or (lambda: StreamFifo(width, depth))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.factory()
        started = stream_environment(m, dut)
        bits = self.counter_bits
        n = Signal(bits)
        m.d.comb += n.eq(AnyConst(bits))
        ins, outs = Signal(bits), Signal(bits)
        tracked, tracked_in = Signal(self.width), Signal()
        took_in = dut.i.valid & dut.i.ready
        took_out = dut.o.valid & dut.o.ready
        with m.If(took_in):
            m.d.sync += ins.eq(ins + 1)
            with m.If(ins == n):
                m.d.sync += [tracked.eq(dut.i.payload), tracked_in.eq(1)]
        with m.If(took_out):
            m.d.sync += outs.eq(outs + 1)
        m.d.comb += Assume(ins != (1 << bits) - 1)  # counters never wrap within the bound
        with m.If(started):
            m.d.comb += [
                Assert(outs <= ins, "no_output_without_input"),
            ]
            if hasattr(dut, "level"):
                m.d.comb += [Assert(ins - outs == dut.level, "level_counts_contents"),
                             Assert(dut.level <= self.depth, "level_within_depth")]
            with m.If(took_out & (outs == n)):
                m.d.comb += [Assert(tracked_in, "nth_out_went_in"),
                             Assert(dut.o.payload == tracked, "nth_out_is_nth_in")]
        m.d.comb += Cover(started & took_out & (outs == n) & (n == 3), "fourth_payload_out")
        if hasattr(dut, "level"):
            m.d.comb += Cover(started & (dut.level == self.depth), "fifo_full")
        return m


def register_harness(width: int = 8) -> StreamRulesHarness:
    return StreamRulesHarness(lambda: StreamRegister(width))


def fifo_rules_harness(depth: int = 4, width: int = 8) -> StreamRulesHarness:
    return StreamRulesHarness(lambda: StreamFifo(width, depth))
