"""Formal harness for PMU N-buffering: the read side never reads a buffer the write side has not finished.

The PMU (:class:`hdl.pmu.PatternMemoryUnit`, reduced: :func:`formal_pmu_params`) is
checked alone. Its program is symbolic: any configuration (``AnyConst``, chosen once),
sent as a valid image on ``cfg`` right after reset (12 body words; the image is in at
step 14); with ``fixed_address`` (the jobs) the address offset is 0 and the address
ALU ops are ``mov``, every other field (counters, runs, buffers, buffer size, range,
lane stride, layout, scalar offset, auto start …) is free. Every other input is free
every cycle (``AnySeq``): ``vin``, ``sin``, the consumers of ``vout`` and ``sout``,
``start`` and ``cfg_clear``; not even the stream rules are assumed of the inputs.

The specification (:class:`hdl.pmu.PmuConfig`): with both sides enabled, run ``r`` of
either side uses buffer ``r mod buffers``, which starts at word ``(r mod buffers) ·
buffer_words``; the read side's run ``r`` may touch its buffer only once the write
side's run ``r`` has finished it, and the write side's run ``r + buffers`` only once
the read side's run ``r`` has left it.

The harness keeps a shadow of the buffers, driven only by the run-completion tokens
on the PMU's ports (``wdone``: a write run has finished its buffer; ``rdone``: a read
run has left it) and by the start of a program:

* ``full``: how many buffers the writer has finished and the reader not yet left
  (``#wdone - #rdone``; 0 after each configuration load);
* ``wbuf``, ``rbuf``: the buffer each side is in (its count of finished runs mod
  ``buffers``, 0 at each start).

Because each side's pipeline keeps its accesses in order, an access that reaches the
banks belongs to the side's oldest unfinished run. Asserted, for every program with
both sides enabled, at every cycle in which a side addresses a bank:

* a read: ``full > 0`` — the buffer it reads was finished by the writer — and the
  access carries the buffer base of ``rbuf``;
* a write: ``full < buffers`` — the buffer it writes was left by the reader (or never
  used) — and the access carries the buffer base of ``wbuf``;
* always: ``full <= buffers``.

The buffer base is read where the unit adds it to the address (``probes``: references
to internal signals of the unit, no logic); the harness tracks it into the issue
register itself. Assumed of the program (the contract :meth:`PmuConfig.check`
enforces and the hardware trusts): with both sides enabled, both run as often.

Start tokens are free, back to back included: the first version of this harness found
that a token in the cycle in which the PMU takes the previous one (its ``pending_start``)
was accepted again and reset both buffer rings after the first run fired, so write run 1
landed in buffer 0 over run 0 before the reader had read it. The PMU now ignores it;
``tests/hdl/formal/test_formal.py`` puts the old behaviour back as a mutant and sees this proof fail.

The jobs are bounded (``bmc``), not inductive: the unit's buffer counters, counter
chains and pipelines need invariants linking them to the shadow that this harness
does not state yet.
"""

from __future__ import annotations

from amaranth import Array, Const, Elaboratable, Fragment, Module, Signal
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Assume, Cover

from ..config_port import header_word
from ..pmu import PatternMemoryUnit, PmuParams
from ..pmu.config import CONFIG_MAGIC, CONFIG_VERSION
from ..presets import get_preset
from .streams import free, reset_at_start

__all__ = ["PmuBufferHarness", "formal_pmu_params"]


def formal_pmu_params(max_buffers: int = 2) -> PmuParams:
    """A reduced PMU: 2 lanes, 2 banks, 1 counter of 4 bits, 2-entry FIFOs, up to ``max_buffers``
    buffers (a 12-word configuration image)."""
    preset = get_preset("tiny").replace(name="formal", lanes=2, pmu_banks=2, counters=1, counter_width=4,
                                        fifo_depth=2)
    return PmuParams(preset, max_buffers=max_buffers)


class PmuBufferHarness(Elaboratable):
    """N-buffering properties of one PMU (see the module docstring).

    Parameters
    ----------
    params : PmuParams
        Hardware parameters (default :func:`formal_pmu_params`).
    factory : callable
        Builds the unit from ``params`` (a mutant in the tests).
    equal_runs : bool
        Assume the program's contract that both sides run equally often (``False`` lets the
        solver load programs the encoder refuses).
    fixed_address : bool
        Fix the address offset to 0 and the address ALU ops to ``mov`` (a smaller problem).
    """

    def __init__(self, params: PmuParams | None = None, factory=None, equal_runs: bool = True,
                 fixed_address: bool = True):
        self.params = params or formal_pmu_params()
        self.factory = factory or PatternMemoryUnit
        self.equal_runs = equal_runs
        self.fixed_address = fixed_address

    def elaborate(self, platform):
        m = Module()
        p = self.params
        dut = self.factory(p)
        # elaborate the unit here so that its probes (internal signals) exist
        m.submodules.dut = Fragment.get(dut, platform)
        probes = dut.probes
        started = reset_at_start(m)
        free(m, dut.vin.valid, dut.vin.payload, dut.sin.valid, dut.sin.payload, dut.vout.ready,
             dut.sout.ready, dut.start, dut.cfg_clear)
        # the program: a symbolic configuration (chosen once), sent as an image right after reset; with
        # fixed_address the address offset is 0 and the ALU ops are `mov` (a smaller problem: addresses
        # steer only which accesses are dropped and how long an access waits for its banks)
        program = Signal(p.layout)
        m.d.comb += program.as_value().eq(AnyConst(p.layout.size))
        if self.fixed_address:
            for name in ("write", "read"):
                m.d.comb += program[name].offset.eq(0)
                for k in range(2):
                    m.d.comb += [program[name].alu[k].op.eq(0), program[name].alu[k].imm.eq(0)]
        bits = program.as_value()
        body = [bits[32 * k:32 * (k + 1)] for k in range(p.config_words)]
        image = Array([Const(header_word(CONFIG_MAGIC, CONFIG_VERSION, p.config_words), 32), *body])
        sent = Signal(range(len(image) + 1))
        with m.If(dut.cfg.valid & dut.cfg.ready):
            m.d.sync += sent.eq(sent + 1)
        m.d.comb += [dut.cfg.valid.eq(started & (sent < len(image))), dut.cfg.payload.eq(image[sent])]

        cfg = probes["cfg"]
        both = Signal()
        m.d.comb += both.eq(cfg.write.enable & cfg.read.enable)
        if self.equal_runs:
            m.d.comb += Assume(~both | (cfg.write.runs == cfg.read.runs), "both_sides_run_equally_often")

        # the shadow of the buffers
        limit = 1 << cfg.buffers.shape().width   # buffers as the field can hold (more than max_buffers)
        full = Signal(range(limit + 1))
        with m.If(probes["loaded"]):
            m.d.sync += full.eq(0)
        with m.Elif(both):
            m.d.sync += full.eq(full + dut.wdone - dut.rdone)

        # each side's buffer (index and first word), advanced by its completion token
        wbuf = Signal(range(limit), name="shadow_write_buffer")
        rbuf = Signal(range(limit), name="shadow_read_buffer")
        wbase = Signal(32, name="shadow_write_base")
        rbase = Signal(32, name="shadow_read_base")
        for name, index, first_word, done in (("write", wbuf, wbase, dut.wdone),
                                              ("read", rbuf, rbase, dut.rdone)):
            with m.If(probes[name]["start"]):
                m.d.sync += [index.eq(0), first_word.eq(0)]
            with m.Elif(done):
                with m.If(index + 1 >= cfg.buffers):
                    m.d.sync += [index.eq(0), first_word.eq(0)]
                with m.Else():
                    m.d.sync += [index.eq(index + 1), first_word.eq(first_word + cfg.buffer_words)]

        # the buffer base of the access in each side's issue register (the unit adds it one stage earlier)
        issue_base = {}
        for name in ("write", "read"):
            base = Signal(32, name=f"{name}_issue_base")
            with m.If(probes[name]["advance"]):
                m.d.sync += base.eq(probes[name]["base"])
            issue_base[name] = base

        reads, writes = probes["read"]["access"], probes["write"]["access"]
        with m.If(started & both):
            m.d.comb += Assert(full <= cfg.buffers, "never_more_full_buffers_than_buffers")
            with m.If(reads):
                m.d.comb += [
                    Assert(full != 0, "read_only_a_finished_buffer"),
                    Assert(issue_base["read"] == rbase, "read_in_its_buffer"),
                ]
            with m.If(writes):
                m.d.comb += [
                    Assert(full < cfg.buffers, "write_only_a_left_buffer"),
                    Assert(issue_base["write"] == wbase, "write_in_its_buffer"),
                ]

        # covers: a buffer is read after it was written, the reader moves to the next buffer, and the
        # writer comes back to a buffer the reader has left (the ring wraps)
        lapped = Signal()
        with m.If(probes["write"]["start"]):
            m.d.sync += lapped.eq(0)
        with m.Elif(dut.wdone & (wbuf + 1 >= cfg.buffers)):
            m.d.sync += lapped.eq(1)
        m.d.comb += [
            Cover(started & both & reads, "read_after_write"),
            Cover(started & both & reads & (rbuf == 1) & (cfg.buffer_words != 0), "read_second_buffer"),
            Cover(started & both & writes & lapped & (cfg.buffers == 2), "write_reuses_a_left_buffer"),
        ]
        return m
