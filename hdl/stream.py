"""Small stream components shared by every unit of the fabric.

All streams follow :mod:`amaranth.lib.stream` rules: a transfer happens on a
clock edge where ``valid`` and ``ready`` are both high; once ``valid`` is high
it (and ``payload``) hold until the transfer; ``valid`` never depends on
``ready``.
"""

from __future__ import annotations

from amaranth import Module, ResetInserter, Shape, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .presets import WORD_BITS

__all__ = ["StreamFifo", "StreamRegister", "TokenCounter", "vector_layout"]


def vector_layout(lanes: int, word_bits: int = WORD_BITS) -> data.ArrayLayout:
    """Payload layout of a vector: ``lanes`` words of ``word_bits`` bits (lane 0 in the LSBs)."""
    if isinstance(lanes, bool) or not isinstance(lanes, int):
        raise TypeError(f"lanes must be an int, got {type(lanes).__name__}")
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, got {lanes}")
    return data.ArrayLayout(word_bits, lanes)


def _check_shape(payload_shape):
    try:
        shape = Shape.cast(payload_shape)
    except TypeError as e:
        raise TypeError(f"payload_shape must be a shape-castable object, got {payload_shape!r}") from e
    if shape.width < 1:
        raise ValueError(f"payload_shape must be at least 1 bit wide, got {shape.width}")


class StreamFifo(wiring.Component):
    """First-in first-out buffer between two streams, with a registered output.

    Parameters
    ----------
    payload_shape : shape-castable
        Shape (or layout) of one payload.
    depth : int
        Number of entries, at least 2.

    Attributes
    ----------
    i : In(stream.Signature(payload_shape))
        Write side: a payload is taken on each edge where ``i.valid & i.ready``;
        ``i.ready`` is low only when all ``depth`` entries are used.
    o : Out(stream.Signature(payload_shape))
        Read side, in arrival order. Full rate (one transfer per cycle) at every
        depth; no combinational path runs from ``i`` to ``o``. For ``depth >= 3``
        ``o.payload`` comes from a register (2 cycles of latency), for
        ``depth == 2`` from a 2-entry register file (1 cycle).
    level : Out(range(depth + 1))
        Entries currently held.
    clear : In(1)
        Drop every entry (and a payload taken in the same cycle): the FIFO is empty in the next
        cycle. The units drive it with their configuration clear, so vectors a kernel sent beyond
        what a unit took do not become the next kernel's data.
    """

    def __init__(self, payload_shape, depth: int):
        _check_shape(payload_shape)
        if isinstance(depth, bool) or not isinstance(depth, int):
            raise TypeError(f"depth must be an int, got {type(depth).__name__}")
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self._payload_shape = payload_shape
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
            "level": Out(range(depth + 1)),
            "clear": In(1),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._payload_shape).width
        if self._depth == 2:
            # SyncFIFOBuffered(depth=2) is a 1-entry FIFO plus an output register and
            # sustains only one transfer every two cycles; the 2-entry register file of
            # SyncFIFO sustains one per cycle.
            storage = fifo.SyncFIFO(width=width, depth=2)
        else:
            storage = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.submodules.storage = ResetInserter({"sync": self.clear})(storage)
        m.d.comb += [
            storage.w_data.eq(self.i.payload),
            storage.w_en.eq(self.i.valid),
            self.i.ready.eq(storage.w_rdy),
            self.o.payload.eq(storage.r_data),
            self.o.valid.eq(storage.r_rdy),
            storage.r_en.eq(self.o.ready),
            self.level.eq(storage.level),
        ]
        return m


class StreamRegister(wiring.Component):
    """Full-throughput pipeline register (skid buffer) for one stream.

    Cuts every combinational path between its sides: ``o.valid``/``o.payload``
    and ``i.ready`` all come from registers. It passes one payload per cycle
    when the consumer is always ready and adds one cycle of latency.

    Parameters
    ----------
    payload_shape : shape-castable
        Shape (or layout) of one payload.

    Attributes
    ----------
    i : In(stream.Signature(payload_shape))
        Input stream; ``i.ready`` is low only while the skid entry is full.
    o : Out(stream.Signature(payload_shape))
        Output stream, one cycle behind ``i``.
    """

    def __init__(self, payload_shape):
        _check_shape(payload_shape)
        self._payload_shape = payload_shape
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        main_valid = Signal()
        main_data = Signal(self._payload_shape)
        skid_valid = Signal()
        skid_data = Signal(self._payload_shape)

        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main_data),
        ]
        with m.If(self.o.ready | ~main_valid):
            # The main register is free (or being drained) this cycle.
            with m.If(skid_valid):
                m.d.sync += [main_valid.eq(1), main_data.eq(skid_data), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [main_valid.eq(self.i.valid), main_data.eq(self.i.payload)]
        with m.Elif(self.i.valid & self.i.ready):
            # Main is stalled: park the incoming payload in the skid register.
            m.d.sync += [skid_valid.eq(1), skid_data.eq(self.i.payload)]
        return m


class TokenCounter(wiring.Component):
    """Turns control pulses into a stream of tokens, so that no pulse is lost under back-pressure.

    Parameters
    ----------
    width : int
        Bits of the pending-token counter; it saturates at ``2**width - 1`` (1 to 16).

    Attributes
    ----------
    pulse : In(1)
        One token per cycle it is high (a unit's ``done``-style output).
    o : Out(stream.Signature(1))
        One transfer per token, in order; ``valid`` while tokens are pending.
    clear : In(1)
        Drop every pending token (and a pulse in the same cycle). The tile drives it with the
        launch controller's endpoint clear, so tokens a kernel left on a pin nobody routed do
        not reach the next kernel's routes.
    """

    def __init__(self, width: int = 8):
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 16:
            raise ValueError(f"width must be an int in [1, 16], got {width!r}")
        self._width = width
        super().__init__({"pulse": In(1), "o": Out(stream.Signature(1)), "clear": In(1)})

    def elaborate(self, platform):
        m = Module()
        pending = Signal(self._width)
        taken = self.o.valid & self.o.ready
        full = pending == (1 << self._width) - 1
        m.d.comb += [self.o.valid.eq(pending != 0), self.o.payload.eq(1)]
        with m.If(self.clear):
            m.d.sync += pending.eq(0)
        with m.Elif(self.pulse & ~taken & ~full):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~self.pulse & taken):
            m.d.sync += pending.eq(pending - 1)
        return m
