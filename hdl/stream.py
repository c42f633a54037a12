"""Small stream components shared by every unit of the fabric.

All streams follow :mod:`amaranth.lib.stream` rules: a transfer happens on a
clock edge where ``valid`` and ``ready`` are both high; once ``valid`` is high
it (and ``payload``) hold until the transfer; ``valid`` never depends on
``ready``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
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
        w_en, w_rdy, r_en, r_rdy = Signal(), Signal(), Signal(), Signal()
        r_data = Signal(width)
        m.d.comb += [
            w_en.eq(self.i.valid),
            self.i.ready.eq(w_rdy),
            self.o.payload.eq(r_data),
            self.o.valid.eq(r_rdy),
            r_en.eq(self.o.ready),
        ]
        do_write = w_en & w_rdy
        # The clear resets pointers, counts and valid flags only, never the memory or its read
        # port, so the storage still maps to block or distributed RAM.
        if self._depth == 2:
            # a 2-entry register file read combinationally (as Amaranth's SyncFIFO): one
            # transfer per cycle; SyncFIFOBuffered(depth=2) would sustain one every two cycles
            self._queue(m, width, 2, do_write, r_rdy & r_en, self.i.payload, r_data, "comb",
                        w_rdy, r_rdy, self.level)
            return m
        # a (depth - 1)-entry memory with a synchronous read port, then the output register
        # (as Amaranth's SyncFIFOBuffered): the payload comes from a register
        inner_depth = self._depth - 1
        inner_level = Signal(range(inner_depth + 1))
        inner_r_rdy = Signal()
        do_inner_read = inner_r_rdy & (~r_rdy | r_en)
        self._queue(m, width, inner_depth, do_write, do_inner_read, self.i.payload, r_data, "sync",
                    w_rdy, inner_r_rdy, inner_level)
        # (the clear as an If of its own, around the rest: tied to 0 inside a three-way chain it
        # becomes a casez that Verilator's lint flags; and an undriven clear, X on Icarus, leaves
        # the FIFO working instead of poisoning it)
        with m.If(self.clear):
            m.d.sync += r_rdy.eq(0)
        with m.Else():
            with m.If(do_inner_read):
                m.d.sync += r_rdy.eq(1)
            with m.Elif(r_en):
                m.d.sync += r_rdy.eq(0)
        m.d.comb += self.level.eq(inner_level + r_rdy)
        return m

    def _queue(self, m, width, depth, do_write, do_read, w_data, r_data, read_domain, w_rdy, r_rdy, level):
        """A circular buffer of ``depth`` entries: ``level`` entries held, a read port in
        ``read_domain`` at the oldest; the clear empties it in one cycle."""
        storage = m.submodules.storage = Memory(shape=width, depth=depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain=read_domain)
        produce, consume = Signal(range(depth)), Signal(range(depth))

        def incr(pointer):
            return Mux(pointer == depth - 1, 0, pointer + 1)

        m.d.comb += [
            w_rdy.eq(level != depth),
            r_rdy.eq(level != 0),
            w_port.addr.eq(produce), w_port.data.eq(w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), r_data.eq(r_port.data),
        ]
        if read_domain == "sync":
            m.d.comb += r_port.en.eq(do_read)
        with m.If(self.clear):
            m.d.sync += [produce.eq(0), consume.eq(0), level.eq(0)]
        with m.Else():
            with m.If(do_write):
                m.d.sync += produce.eq(incr(produce))
            with m.If(do_read):
                m.d.sync += consume.eq(incr(consume))
            with m.If(do_write & ~do_read):
                m.d.sync += level.eq(level + 1)
            with m.If(do_read & ~do_write):
                m.d.sync += level.eq(level - 1)


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
