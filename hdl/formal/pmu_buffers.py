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
register itself. Nothing is assumed of the program: an image the PMU cannot run (an
N-buffering depth of 0 or above ``max_buffers``, sides that run different numbers of
times …, :func:`hdl.pmu.unit.refusals`) is refused and leaves the PMU unconfigured, so
the properties cover exactly the programs it takes. (An earlier version assumed both
sides run equally often, and the encoder refused ``buffers > max_buffers`` while the
PMU took it: ``pmu_buffers_deep`` found the writer's base growing past its ring at the
first reuse; ``tests/hdl/formal/test_formal.py`` removes the refusal and sees the proof fail.)

Start tokens are free, back to back included: the first version of this harness found
that a token in the cycle in which the PMU takes the previous one (its ``pending_start``)
was accepted again and reset both buffer rings after the first run fired, so write run 1
landed in buffer 0 over run 0 before the reader had read it. The PMU now ignores it;
``tests/hdl/formal/test_formal.py`` puts the old behaviour back as a mutant and sees this proof fail.

``pmu_buffers`` and ``pmu_buffers_deep`` are bounded (``bmc``) and give real
counterexamples (the mutation checks in ``tests/hdl/formal/test_formal.py`` use them).
``pmu_buffers_proof`` proves the same properties in every reachable state by
k-induction: with ``invariants`` the harness also asserts what ties the unit's
handover counters (``claimed``, ``ready``), run counters, counter chains, buffer rings
and pipeline stages to the shadow (:meth:`PmuBufferHarness._invariants`), which makes
the properties inductive, for every run of every lap, any number of buffers up to
``max_buffers`` and any address offsets and ALU ops. The probes it reads are
references to internal signals (``PatternMemoryUnit.probes``), no logic.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Elaboratable, Fragment, Module, Mux, Signal
from amaranth.asserts import AnyConst, Initial
from amaranth.hdl import Assert, Cover

from ..config_port import header_word
from ..pmu import PatternMemoryUnit, PmuParams
from ..pmu.config import CONFIG_MAGIC, CONFIG_VERSION
from ..pmu.unit import refusals
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
    fixed_address : bool
        Fix the address offset to 0 and the address ALU ops to ``mov`` (a smaller problem).
    fixed_alu : bool
        With ``fixed_address=False``: fix only the ALU ops to ``mov`` and leave the offsets free
        (the ops' shifters make the problem much larger; addresses only decide which accesses are
        dropped and how long one waits for its banks, so the offsets already reach every address).
    invariants : bool
        Also assert the invariants that tie the unit's handover counters, buffer rings and
        pipelines to the shadow (see :meth:`_invariants`), so that k-induction (``prove``) can
        show the properties in every reachable state, not only within a bound.
    lap_covers : bool
        Cover, instead of the first handovers, a program of ``max_buffers`` buffers with non-zero
        address offsets whose reader reads its last buffer of the second lap (run
        ``2 · buffers - 1``) and whose writer then starts a third lap (run ``2 · buffers`` back in
        buffer 0): the bound of a deep job must reach those steps.
    """

    def __init__(self, params: PmuParams | None = None, factory=None, fixed_address: bool = True,
                 fixed_alu: bool = True, lap_covers: bool = False, invariants: bool = False):
        self.params = params or formal_pmu_params()
        self.factory = factory or PatternMemoryUnit
        self.fixed_address = fixed_address
        self.fixed_alu = fixed_address or fixed_alu
        self.lap_covers = lap_covers
        self.invariants = invariants

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
        # fixed_address the address offset is 0, with fixed_alu the ALU ops are `mov` (a smaller problem:
        # addresses steer only which accesses are dropped and how long an access waits for its banks)
        program = Signal(p.layout)
        m.d.comb += program.as_value().eq(AnyConst(p.layout.size))
        for name in ("write", "read"):
            if self.fixed_address:
                m.d.comb += program[name].offset.eq(0)
            if self.fixed_alu:
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

        if self.invariants:
            self._invariants(m, dut, started, both, full, {"write": (wbuf, wbase), "read": (rbuf, rbase)},
                             issue_base)

        # covers: a buffer is read after it was written, the reader moves to the next buffer, and the
        # writer comes back to a buffer the reader has left (the ring wraps)
        lapped = Signal()
        with m.If(probes["write"]["start"]):
            m.d.sync += lapped.eq(0)
        with m.Elif(dut.wdone & (wbuf + 1 >= cfg.buffers)):
            m.d.sync += lapped.eq(1)
        if not self.lap_covers:
            m.d.comb += [
                Cover(started & both & reads, "read_after_write"),
                Cover(started & both & reads & (rbuf == 1) & (cfg.buffer_words != 0), "read_second_buffer"),
                Cover(started & both & writes & lapped & (cfg.buffers == 2), "write_reuses_a_left_buffer"),
            ]
            return m
        # runs each side has finished since the start (saturating)
        finished = {}
        for name, done in (("write", dut.wdone), ("read", dut.rdone)):
            count = finished[name] = Signal(range(4 * p.max_buffers + 1), name=f"shadow_{name}_runs")
            with m.If(probes[name]["start"]):
                m.d.sync += count.eq(0)
            with m.Elif(done & (count != 4 * p.max_buffers)):
                m.d.sync += count.eq(count + 1)
        deep = (started & both & (cfg.buffers == p.max_buffers) & (cfg.buffer_words != 0)
                & (cfg.write.offset != 0) & (cfg.read.offset != 0))
        m.d.comb += [
            Cover(deep & reads & (finished["read"] == 2 * cfg.buffers - 1), "read_last_buffer_of_second_lap"),
            Cover(deep & writes & (finished["write"] == 2 * cfg.buffers), "write_starts_third_lap"),
        ]
        return m

    def _invariants(self, m, dut, started, both, full, shadow, issue_base):
        """Invariants for k-induction (asserted, so they are checked too; each holds in every reachable
        state, and together with the properties they are inductive).

        For each side, ``L`` counts the final steps of runs in its address pipeline (fired, not yet
        completed) and ``M`` is high while a run has fired its first step but not its final one (the
        counter chain runs and is past its first step). Then the writer's started runs minus the
        reader's finished runs (``claimed``) is ``full + L_w + M_w``, the writer's finished runs minus
        the reader's started runs (``ready``) is ``full - L_r - M_r``, ``claimed <= buffers``; each
        side's ring index is its count of finished runs plus ``L`` (mod ``buffers``), and the access in
        each pipeline stage carries the base of the run the lasts ahead of it say it belongs to.
        """
        p = self.params
        probes = dut.probes
        cfg = probes["cfg"]
        buffers, words = cfg.buffers, cfg.buffer_words

        def wrap(value):      # value mod buffers, for value < 4 * buffers (buffers >= 1)
            for _ in range(3):
                value = Mux(value >= buffers, value - buffers, value)
            return value

        def ring(index):      # first word of buffer `index`
            base = Const(0, 32)
            for k in range(1, p.max_buffers):
                base = Mux(index == k, (k * words)[:32], base)
            return base

        # the register holds what the last `loaded` brought (no change without `loaded` since)
        past_cfg = Signal.like(cfg.as_value(), name="inv_past_cfg")
        m.d.sync += past_cfg.eq(cfg.as_value())
        held = Signal(name="inv_held_since_loaded")
        loaded_since = Signal(name="inv_loaded_since")
        m.d.comb += loaded_since.eq(probes["loaded"] | (held & (cfg.as_value() == past_cfg)))
        m.d.sync += held.eq(loaded_since)
        # started since the last configuration load (both sides start together)
        begun = Signal(name="inv_begun")
        with m.If(probes["loaded"]):
            m.d.sync += begun.eq(0)
        with m.Elif(probes["write"]["start"]):
            m.d.sync += begun.eq(1)

        sides = {}
        for name in ("write", "read"):
            side = probes[name]
            v, last = side["valid"], side["last"]
            lasts = [Signal(name=f"inv_{name}_last{k}") for k in range(3)]
            m.d.comb += [lasts[k].eq(v[k] & last[k]) for k in range(3)]
            in_flight = Signal(range(4), name=f"inv_{name}_finals_in_flight")
            mid = Signal(name=f"inv_{name}_mid_run")
            m.d.comb += [in_flight.eq(lasts[0] + lasts[1] + lasts[2]),
                         mid.eq(side["running"] & ~side["first"])]
            empty = ~side["running"] & ~v[0] & ~v[1] & ~v[2]
            # the youngest access in the pipeline, if it is not its run's final step, leaves the run open
            youngest_open = Mux(v[0], ~last[0], Mux(v[1], ~last[1], v[2] & ~last[2]))
            sides[name] = (lasts, in_flight, mid, empty, youngest_open)

        quiet = sides["write"][3] & sides["read"][3]
        # reset is high in the first cycle only (`reset_at_start`), so `started` is low only in the
        # first two cycles
        after_initial = Signal(init=1, reset_less=True, name="inv_after_initial")
        m.d.sync += after_initial.eq(Initial())
        m.d.comb += Assert(started | Initial() | after_initial, "inv_started_after_reset")
        with m.If(started):
            m.d.comb += [
                Assert(~probes["loading"] | ~dut.configured, "inv_loading_unconfigured"),
                Assert(~probes["pending_start"] | quiet, "inv_start_taken_when_quiet"),
                Assert(~probes["loaded"] | quiet, "inv_loaded_when_quiet"),
            ]
            # a `cfg_clear` with an image's last word changes the register without `loaded` (and leaves
            # the unit unconfigured): the unit stays quiet until the next load
            m.d.comb += Assert(loaded_since | (quiet & ~dut.configured & (full == 0)),
                               "inv_quiet_after_a_silent_change")
            with m.If(both):
                # the register only ever takes images that pass the unit's checks (it is 0 after reset,
                # with no side enabled)
                m.d.comb += Assert(~Cat(*refusals(cfg, p).values()).any(), "inv_configuration_was_checked")
            # outside both-sided programs the shadow's count of full buffers rests at 0
            m.d.comb += Assert(both | (full == 0), "inv_no_full_buffers_without_both_sides")
            # from the cycle after `loaded` (when the counters have been reset) until the register changes
            with m.If(both & loaded_since & ~probes["loaded"]):
                empty = (probes["claimed"] == 0) & (probes["ready"] == 0) & (full == 0)
                m.d.comb += Assert(begun | (quiet & empty), "inv_quiet_and_empty_until_started")
                w_flight, w_mid = sides["write"][1], sides["write"][2]
                r_flight, r_mid = sides["read"][1], sides["read"][2]
                runs_w, runs_r = probes["write"]["runs_left"], probes["read"]["runs_left"]
                with m.If(begun):
                    # runs_left counts the final steps still to fire: the writer's finished runs minus the
                    # reader's (full) is what the reader has left to fire beyond the writer
                    m.d.comb += Assert(full + w_flight + runs_w == runs_r + r_flight,
                                       "inv_full_counts_runs_left")
                    for name, runs in (("write", runs_w), ("read", runs_r)):
                        running = probes[name]["running"]
                        m.d.comb += Assert(Mux(running, runs != 0, runs == 0),
                                           f"inv_{name}_runs_left_while_running")
                m.d.comb += [
                    Assert(probes["claimed"] == full + w_flight + w_mid, "inv_claimed_counts_runs"),
                    Assert(full == probes["ready"] + r_flight + r_mid, "inv_ready_counts_runs"),
                    Assert(probes["claimed"] <= buffers, "inv_claimed_within_buffers"),
                ]
                for name in ("write", "read"):
                    lasts, in_flight, mid, _, youngest_open = sides[name]
                    count, first_word = shadow[name]
                    side = probes[name]
                    v = side["valid"]
                    m.d.comb += Assert(~youngest_open | mid, f"inv_{name}_open_run_is_mid_run")
                    # a running chain's counters lie between their start and stop (so none comes back to
                    # its start without wrapping at its last value)
                    program = cfg[name]
                    for k in range(p.counters):
                        c, value = program.counter[k], side["values"][k]
                        inside = (value == c.start) | ((value > c.start) & (value < c.stop))
                        m.d.comb += Assert(~side["running"] | (k >= program.counters_used) | inside,
                                           f"inv_{name}_counter{k}_in_range")
                    with m.If(begun):
                        m.d.comb += [
                            Assert(count < buffers, f"inv_{name}_shadow_in_ring"),
                            Assert(first_word == ring(count), f"inv_{name}_shadow_base"),
                            Assert(side["index"] == wrap(count + in_flight), f"inv_{name}_ring_index"),
                            Assert(side["ring_base"] == ring(side["index"]), f"inv_{name}_ring_base"),
                            Assert(~v[0] | (side["stage_base"][0] == ring(wrap(count + lasts[1] + lasts[2]))),
                                   f"inv_{name}_stage0_base"),
                            Assert(~v[1] | (side["stage_base"][1] == ring(wrap(count + lasts[2]))),
                                   f"inv_{name}_stage1_base"),
                            Assert(~v[2] | (issue_base[name] == first_word), f"inv_{name}_issue_base"),
                        ]
