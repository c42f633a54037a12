"""Formal harness for the AGCU: a request outside its segment never reaches the memory port.

The AGCU (:class:`hdl.agcu.AddressGenerationUnit`) is checked alone. The solver drives
every input: the configuration port (any word sequence, so any program it can load),
the privileged segment table port, scalar and store-data streams, ``start`` and
``cfg_clear`` pulses, the consumer of ``vout`` and the memory (``mem.req.ready`` and the
responses). Assumed of that environment: input streams keep the stream rules, the
memory answers only requests it has taken. The host may write any segment entry: one
with ``base + bound > 2**addr_bits`` (which :class:`hdl.agcu.Segment` refuses) counts as
empty (bound 0, no permission), as the unit stores it.

The harness keeps its own view of what the unit was told, independent of the unit's
address arithmetic:

* the segment table, from the transfers it sees on ``seg``;
* the loaded configuration, by decoding the words taken on ``cfg`` with a second
  :class:`hdl.config_port.ConfigLoader` (the shared image format, proved by
  ``config_refused``);
* the run's scalar, from the word taken on ``sin``;
* the run's lowest and highest vector address, by the textbook formula ``offset
  [+ scalar] + Σ start`` and ``… + Σ (start + ⌊(stop - 1 - start) / stride⌋ · stride)``
  (the unit uses a serial divider and its own registers).

Asserted: every request the unit offers on ``mem.req`` has a line address in
``[base, base + bound)`` of the segment its program names, its direction is the
program's, and the segment permits that direction; a run that the harness finds out
of range, not permitted, or hanging (stride 0) offers no request at all and ends with
``done`` and ``fault`` high; a run the harness finds legal does not raise ``fault``.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.hdl import Assert, Assume, Cover

from ..agcu import AddressGenerationUnit, AgcuParams
from ..agcu.config import CONFIG_MAGIC, CONFIG_VERSION
from ..config_port import ConfigLoader
from ..presets import get_preset
from .streams import free, reset_at_start, stream_rules

__all__ = ["AgcuSegmentHarness", "formal_agcu_params"]


def formal_agcu_params(counters: int = 2) -> AgcuParams:
    """A small AGCU: 4 lanes (4 vectors per line), 2 counters of 4 bits, 16 lines, 2 segments,
    2 outstanding lines."""
    preset = get_preset("tiny").replace(name="formal", counters=counters, counter_width=4)
    return AgcuParams(preset, addr_bits=4, segments=2, outstanding=2)


class AgcuSegmentHarness(Elaboratable):
    """Segment, permission and fault properties of one AGCU (see the module docstring).

    Parameters
    ----------
    params : AgcuParams
        Hardware parameters (default :func:`formal_agcu_params`).
    factory : callable
        Builds the unit from ``params`` (a mutant in the tests).
    """

    def __init__(self, params: AgcuParams | None = None, factory=None, offset_bits: int | None = None):
        self.params = params or formal_agcu_params()
        self.factory = factory or AddressGenerationUnit
        self.offset_bits = offset_bits

    def elaborate(self, platform):
        m = Module()
        p = self.params
        dut = m.submodules.dut = self.factory(p)
        started = reset_at_start(m)
        for name in ("cfg", "seg", "sin"):
            port = getattr(dut, name)
            free(m, port.valid, port.payload)
            stream_rules(m, port, started, check=Assume, label=name)
        # store data and load data do not steer the unit: they stay 0 (a smaller problem)
        mem = dut.mem
        free(m, dut.vin.valid, dut.cfg_clear, dut.start, dut.vout.ready, mem.req.ready, mem.resp.valid,
             mem.resp.payload.write, mem.resp.payload.corrected, mem.resp.payload.uncorrectable)
        vin_past = Signal()
        m.d.sync += vin_past.eq(dut.vin.valid & ~dut.vin.ready)
        m.d.comb += Assume(~(started & vin_past) | dut.vin.valid, "vin_valid_holds")

        # the memory answers only requests it has taken
        waiting = Signal(range(p.outstanding + 2))
        m.d.sync += waiting.eq(waiting + (mem.req.valid & mem.req.ready) - (mem.resp.valid & mem.resp.ready))
        m.d.comb += Assume(~mem.resp.valid | (waiting != 0), "memory_answers_requests")

        # the segment table, as the host wrote it
        lines = 1 << p.addr_bits
        entry = dut.seg.payload
        fits = entry.base + entry.bound <= lines
        base = [Signal(p.addr_bits, name=f"env_seg{i}_base") for i in range(p.segments)]
        bound = [Signal(p.addr_bits + 1, name=f"env_seg{i}_bound") for i in range(p.segments)]
        readable = [Signal(name=f"env_seg{i}_read") for i in range(p.segments)]
        writable = [Signal(name=f"env_seg{i}_write") for i in range(p.segments)]
        with m.If(dut.seg.valid & dut.seg.ready):
            for i in range(p.segments):
                with m.If(entry.index == i):
                    m.d.sync += [base[i].eq(entry.base), bound[i].eq(Mux(fits, entry.bound, 0)),
                                 readable[i].eq(entry.read & fits), writable[i].eq(entry.write & fits)]

        # the program, decoded from the words the unit took
        image = m.submodules.image = ConfigLoader(p.layout, CONFIG_MAGIC, CONFIG_VERSION)
        m.d.comb += [image.words.valid.eq(dut.cfg.valid & dut.cfg.ready),
                     image.words.payload.eq(dut.cfg.payload),
                     image.accept.eq(1), image.clear.eq(dut.cfg_clear & dut.cfg.ready)]
        cfg = image.config
        if self.offset_bits is not None:
            # programs and scalars keep their vector offsets below 2**offset_bits (a smaller problem)
            m.d.comb += [Assume(cfg.offset >> self.offset_bits == 0, "offset_bounded"),
                         Assume(~dut.sin.valid | (dut.sin.payload >> self.offset_bits == 0),
                                "scalar_bounded")]
        scalar = Signal(32)
        with m.If(dut.sin.valid & dut.sin.ready):
            m.d.sync += scalar.eq(dut.sin.payload)

        # the run's segment and address range, computed here
        seg_base, seg_bound = Signal(p.addr_bits), Signal(p.addr_bits + 1)
        seg_read, seg_write = Signal(), Signal()
        for i in range(p.segments):
            with m.If(cfg.segment == i):
                m.d.comb += [seg_base.eq(base[i]), seg_bound.eq(bound[i]),
                             seg_read.eq(readable[i]), seg_write.eq(writable[i])]
        store = cfg.direction
        origin = cfg.offset + Mux(cfg.base_from_scalar, scalar, 0)
        lo_terms, hi_terms, hangs = [], [], []
        for k in range(p.counters):
            c = cfg.counter[k]
            active = k < cfg.counters_used
            steps = active & (c.stop > c.start) & (c.stride != 0)
            last = Signal(p.counter_width + 1, name=f"env_ctr{k}_last")
            span = Signal(p.counter_width, name=f"env_ctr{k}_span")
            m.d.comb += span.eq(c.stop - 1 - c.start)
            m.d.comb += last.eq(Mux(steps, c.start + (span // c.stride) * c.stride, c.start))
            lo_terms.append(c.start)
            hi_terms.append(last)
            hangs.append(active & (c.stop > c.start) & (c.stride == 0))
        lo, hi = Signal(p.vaddr_bits + 1), Signal(p.vaddr_bits + 1)
        m.d.comb += [lo.eq(origin + sum(lo_terms)), hi.eq(origin + sum(hi_terms))]
        slot_bits = (p.vectors_per_line - 1).bit_length()
        hang = Signal()
        m.d.comb += hang.eq(sum(hangs) != 0)
        permitted = Mux(store, seg_write, seg_read)
        out_of_range = Signal()
        m.d.comb += out_of_range.eq((hi >> slot_bits) >= seg_bound)   # lo <= hi, lo >= 0
        refused = Signal()
        m.d.comb += refused.eq(hang | ~permitted | out_of_range)

        req = mem.req
        addr = req.payload.addr
        past_fault = Signal()
        m.d.sync += past_fault.eq(dut.fault)
        with m.If(started):
            with m.If(req.valid):
                m.d.comb += [
                    Assert(addr >= seg_base, "request_not_below_segment"),
                    Assert(addr < seg_base + seg_bound, "request_not_beyond_segment"),
                    Assert(req.payload.write == store, "request_direction_is_the_program_s"),
                    Assert(Mux(req.payload.write, seg_write, seg_read), "segment_permits_request"),
                    Assert(~refused, "refused_run_issues_nothing"),
                ]
            with m.If(dut.done):
                m.d.comb += Assert(~refused | dut.fault, "refused_run_faults")
                m.d.comb += Assert(refused | (dut.fault == past_fault), "legal_run_does_not_fault")

        # covers: stores and loads reach memory (also the segment's last line), a range fault
        took = req.valid & req.ready
        m.d.comb += [
            Cover(started & took & req.payload.write, "store_request"),
            Cover(started & took & ~req.payload.write & (addr == seg_base + seg_bound - 1) & (seg_base != 0),
                  "load_request_to_last_line"),
            Cover(started & dut.done & dut.fault & ~past_fault & ~hang & permitted & out_of_range,
                  "out_of_range_run_faults"),
        ]
        return m
