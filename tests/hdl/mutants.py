"""Deliberately broken stream components: the smoke testbench must catch each one.

Each wraps a correct :class:`hdl.stream.StreamFifo` and breaks one promise of a
stream pass-through (drop, duplicate, corrupt) on the ``nth`` transfer.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.stream import StreamFifo


class BrokenFifo(wiring.Component):
    def __init__(self, width: int, mode: str, nth: int = 37):
        if mode not in ("drop", "duplicate", "corrupt"):
            raise ValueError(mode)
        self.width, self.mode, self.nth = width, mode, nth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = StreamFifo(self.width, 4)
        count = Signal(16)
        hit = count == self.nth
        wiring.connect(m, wiring.flipped(self.i), fifo.i)
        m.d.comb += [self.o.valid.eq(fifo.o.valid), self.o.payload.eq(fifo.o.payload),
                     fifo.o.ready.eq(self.o.ready)]
        with m.If(fifo.o.valid & fifo.o.ready):
            m.d.sync += count.eq(count + 1)
        if self.mode == "drop":          # consume the nth payload without presenting it
            with m.If(hit):
                m.d.comb += [self.o.valid.eq(0), fifo.o.ready.eq(1)]
        elif self.mode == "duplicate":   # present the nth payload twice
            seen = Signal()
            with m.If(hit & ~seen):
                m.d.comb += fifo.o.ready.eq(0)
                with m.If(self.o.ready & fifo.o.valid):
                    m.d.sync += seen.eq(1)
        else:                            # flip bit 0 of the nth payload
            with m.If(hit):
                m.d.comb += self.o.payload.eq(fifo.o.payload ^ 1)
        return m


class WithdrawingFifo(wiring.Component):
    """Breaks the stream rules: when its output has been stalled for a cycle, it drops ``valid``
    for one cycle (and offers the same payload again afterwards)."""

    def __init__(self, width: int):
        self.width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = StreamFifo(self.width, 4)
        wiring.connect(m, wiring.flipped(self.i), fifo.i)
        stalled = Signal()
        m.d.sync += stalled.eq(fifo.o.valid & ~self.o.ready & ~stalled)
        m.d.comb += [self.o.payload.eq(fifo.o.payload), self.o.valid.eq(fifo.o.valid & ~stalled),
                     fifo.o.ready.eq(self.o.ready & ~stalled)]
        return m


def mutant(module_name: str, class_name: str, old: str, new: str):
    """``class_name`` of ``module_name`` built from that module's source with the one line holding
    ``old`` changed to hold ``new`` instead: a one-line break of the real design.

    ``old`` must occur exactly once, so a mutant whose target line moved or changed fails loudly
    instead of silently testing the unbroken design.
    """
    import importlib
    import inspect
    import types

    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    if source.count(old) != 1:
        raise ValueError(f"mutant of {module_name}: {old!r} occurs {source.count(old)} times (needs 1)")
    line = next(ln for ln in source.splitlines() if old in ln)
    if line.replace(old, new).count("\n"):
        raise ValueError("a mutant changes one line")
    broken = types.ModuleType(f"{module_name}_mutant")
    broken.__package__ = module.__package__
    broken.__file__ = module.__file__
    exec(compile(source.replace(old, new), f"<{module_name} with {new!r}>", "exec"), broken.__dict__)
    return getattr(broken, class_name)
