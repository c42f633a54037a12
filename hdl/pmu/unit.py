"""The pattern memory unit: banked scratchpad, address pipelines, N-buffering, striped layouts.

Dataflow of one PMU (:class:`PatternMemoryUnit`)::

    vin ─▶ FIFO ─▶ write address pipeline ─▶ write arbiter ─▶ ┌──────────────┐
                   counters → +offset → alu1 → alu2/range       │ banks × SRAM │
    sin ─▶ FIFO ─▶ read address pipeline  ─▶ read arbiter  ─▶ └──────────────┘ ─▶ collect
                                                                   ─▶ FIFO ─▶ vout / sout

Each side is a globally stalled pipeline of three registers: the step (counter
values summed with the offset [+ scalar], write data), ALU op 1, and the *issue*
register (ALU op 2, the range check and the buffer base applied on the way in).
An access in the issue register holds one word per lane; each lane's word
maps to a bank and a row (:mod:`hdl.pmu.config`: plain or striped layout). Every
cycle each bank serves the lowest pending lane that maps to it (one read port and
one write port per bank, so reads and writes proceed concurrently), so an access
whose lanes hit distinct banks takes one cycle and one with ``k`` lanes in the same
bank takes ``k``. Read data returns one cycle later and is collected per lane; a
complete vector goes to the output FIFO.

N-buffering: run ``r`` of either side uses buffer ``r mod buffers``. Two counters
hand buffers over: ``claimed`` (runs the writer has started minus runs the reader
has finished) gates the start of a write run, ``ready`` (runs the writer has
finished minus runs the reader has started) gates the start of a read run. A
write run counts as finished when its last access has been written, so no read
ever sees a half-written buffer.

Refused images: the hardware takes only images it can run (:func:`refusals`): an
N-buffering depth of 0 or above ``max_buffers``, a buffer size of 0 or one whose
buffers exceed the capacity, a bank or stripe shift that would map two words to one
bank row, two sides that run different numbers of times, a side with 0 runs, or a
counter that would never end its run raises ``cfg_error`` like a bad header, and the
PMU stays unconfigured.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config_port import ConfigLoader
from ..counters import CounterChain, chain_never_ends
from ..numerics.datapath import Datapath
from ..numerics.ops import ALU_OPS
from ..presets import Preset
from ..stream import StreamFifo, vector_layout
from .config import ADDRESS_OPS, CONFIG_MAGIC, CONFIG_VERSION, PmuParams

__all__ = ["PatternMemoryUnit", "refusals"]


def refusals(c, p: PmuParams) -> dict:
    """Why the PMU refuses the configuration register value ``c`` (a view of ``p.layout``).

    Each entry is high when its rule is broken; the loader refuses a body when any is. These are
    the encoder's rules (:meth:`PmuConfig.check`) whose breach the hardware could not survive:
    a buffer ring the run index never closes (the base would grow without bound), buffers that
    overlap, a layout that maps two words to one bank row, a reader waiting for a run the writer
    never makes (neither side would ever finish), a counter that never ends its run. The other
    encoder rules are harmless to the hardware and not checked here (see ``docs/config-checks.md``).
    A side with 0 runs is refused too: it would run once and leave its run counter wrapped round
    (``runs_left`` at 65535), which no encoded program does.

    Parameters
    ----------
    c : data.View
        A configuration register value (:func:`hdl.pmu.config.config_layout`).
    p : PmuParams
        The PMU's parameters.

    Returns
    -------
    dict of str to Value
        Rule name → 1 when the value breaks it.
    """
    lane_bits = (p.lanes - 1).bit_length()
    # buffer_words <= capacity // buffers for every count the field can hold (no multiplier)
    too_big = [(c.buffers == b) & (c.buffer_words > p.capacity // b)
               for b in range(1, 1 << len(c.buffers))]
    both = c.write.enable & c.read.enable
    rules = {
        "buffers": (c.buffers == 0) | (c.buffers > p.max_buffers),
        "buffer_words": (c.buffer_words == 0) | Cat(*too_big).any(),
        "bank_shift": c.bank_shift > p.address_bits - lane_bits,
        "stripe_shift": (c.stripe_shift != 0) & ((c.stripe_shift < c.bank_shift + lane_bits)
                                                 | (c.stripe_shift > p.address_bits)),
        "equal_runs": both & (c.write.runs != c.read.runs),
    }
    for name in ("write", "read"):
        side = c[name]
        rules[f"{name}_counters"] = side.enable & chain_never_ends(side.counter, side.counters_used)
        # 0 runs would run once and leave the run counter wrapped round
        rules[f"{name}_runs"] = side.enable & (side.runs == 0)
    return rules


class PatternMemoryUnit(wiring.Component):
    """One PMU.

    Parameters
    ----------
    params : PmuParams, Preset or str
        Hardware parameters (a preset is taken as :class:`PmuParams` with default options).

    Attributes
    ----------
    cfg : In(stream.Signature(32))
        Configuration words (:meth:`PmuConfig.encode`); taken only while the PMU is idle.
    cfg_clear : In(1)
        Abandon a partly loaded image, deconfigure and empty the input FIFOs (honoured only while
        idle; the tile's launch controller uses it at Program Load and when it refuses an image).
    vin : In(stream.Signature(vector_layout(lanes)))
        Write data: one vector per write access, in the write program's order.
    vout : Out(stream.Signature(vector_layout(lanes)))
        Read data: one vector per read access that is not dropped, in the read program's order.
    sin : In(stream.Signature(32))
        Scalar input: with ``scalar_offset``, one value per read run added to its addresses.
    sout : Out(stream.Signature(32))
        Scalar output: with ``scalar_out``, lane 0 of each read vector (``vout`` then stays idle).
    start : In(1)
        Control token: start both sides (when configured and idle).
    wdone, rdone : Out(1)
        Control tokens: a write run has finished its buffer / a read run has left its buffer.
    configured, cfg_error, busy : Out(1)
        Status: a valid configuration is loaded / the last header or image was refused (a bad
        header, or a body breaking one of :func:`refusals`) / a side is running,
        an access is in flight or a read result waits to be taken (no reconfiguration while busy).
    writes, reads : Out(32)
        Accesses completed since reset (performance counters; dropped ones included).
    """

    def __init__(self, params: PmuParams | Preset | str):
        if not isinstance(params, PmuParams):
            params = PmuParams(params)
        self.params = params
        vec = vector_layout(params.lanes)
        super().__init__({
            "cfg": In(stream.Signature(32)),
            "cfg_clear": In(1),
            "vin": In(stream.Signature(vec)),
            "vout": Out(stream.Signature(vec)),
            "sin": In(stream.Signature(32)),
            "sout": Out(stream.Signature(32)),
            "start": In(1),
            "wdone": Out(1),
            "rdone": Out(1),
            "configured": Out(1),
            "cfg_error": Out(1),
            "busy": Out(1),
            "writes": Out(32),
            "reads": Out(32),
        })

    # ------------------------------------------------------------------ elaborate
    def elaborate(self, platform):
        p = self.params
        m = Module()
        vec = vector_layout(p.lanes)

        wctr = m.submodules.write_counters = CounterChain(p.counters, p.counter_width)
        rctr = m.submodules.read_counters = CounterChain(p.counters, p.counter_width)
        running = wctr.running | rctr.running
        inflight = Signal()      # accesses still in a pipeline or arbiter
        unread = Signal()        # read results not yet taken from the output FIFO
        # idle (and so reconfigurable) only when nothing is left anywhere: a new image changes
        # how the output FIFO is presented (vout or sout), which must not happen under an offer
        idle = ~running & ~inflight & ~unread
        loader = m.submodules.config = ConfigLoader(
            p.layout, CONFIG_MAGIC, CONFIG_VERSION, check=lambda c: ~Cat(*refusals(c, p).values()).any())
        wiring.connect(m, wiring.flipped(self.cfg), loader.words)
        m.d.comb += loader.clear.eq(self.cfg_clear)
        cfg, loaded = loader.config, loader.loaded
        # formal hooks: references to internal signals for hdl/formal/pmu_buffers.py (no logic added)
        self.probes = {"cfg": cfg, "loaded": loaded, "loading": loader.loading, "idle": idle}
        m.d.comb += [loader.accept.eq(idle), self.configured.eq(loader.configured),
                     self.cfg_error.eq(loader.error), self.busy.eq(~idle)]

        # ------------------------------------------------------------- memories
        banks = []
        for b in range(p.banks):
            mem = memory.Memory(shape=32, depth=p.bank_words, init=[])
            m.submodules[f"bank{b}"] = mem
            banks.append((mem.write_port(), mem.read_port()))

        vin_fifo = m.submodules.vin_fifo = StreamFifo(vec, p.preset.fifo_depth)
        sin_fifo = m.submodules.sin_fifo = StreamFifo(32, p.preset.fifo_depth)
        out_depth = max(4, p.preset.fifo_depth)
        out_fifo = m.submodules.out_fifo = StreamFifo(vec, out_depth)
        m.d.comb += unread.eq(out_fifo.level != 0)
        wiring.connect(m, wiring.flipped(self.vin), vin_fifo.i)
        wiring.connect(m, wiring.flipped(self.sin), sin_fifo.i)
        # the endpoint clear also empties the input FIFOs: what a kernel sent beyond what this PMU
        # took must not become the next kernel's data (the output FIFO is empty when idle)
        m.d.comb += [vin_fifo.clear.eq(self.cfg_clear & idle), sin_fifo.clear.eq(self.cfg_clear & idle)]

        # vector or scalar output from the read FIFO
        m.d.comb += [
            self.vout.payload.eq(out_fifo.o.payload),
            self.sout.payload.eq(out_fifo.o.payload[0:32]),
            self.vout.valid.eq(out_fifo.o.valid & ~cfg.scalar_out),
            self.sout.valid.eq(out_fifo.o.valid & cfg.scalar_out),
            out_fifo.o.ready.eq(Mux(cfg.scalar_out, self.sout.ready, self.vout.ready)),
        ]

        # ------------------------------------------------------------- buffer handover
        claimed = Signal(range(p.max_buffers + 1))
        ready = Signal(range(p.max_buffers + 1))
        w_started, w_finished, r_started, r_finished = (Signal(name=n) for n in
                                                         ("w_run_started", "w_run_finished",
                                                          "r_run_started", "r_run_finished"))
        m.d.sync += [claimed.eq(claimed + w_started - r_finished), ready.eq(ready + w_finished - r_started)]
        with m.If(loaded):
            m.d.sync += [claimed.eq(0), ready.eq(0)]
        m.d.comb += [self.wdone.eq(w_finished), self.rdone.eq(r_finished)]

        # start both enabled sides
        start = self.configured & (self.start | (loaded & cfg.auto_start))
        pending_start = Signal()
        # a token in the cycle the previous one is taken (the unit still looks idle) is not a
        # second start: it would reset both buffer rings after the first run fired
        m.d.sync += pending_start.eq(start & idle & ~pending_start)
        self.probes.update({"pending_start": pending_start, "claimed": claimed, "ready": ready})
        for ctr, side in ((wctr, cfg.write), (rctr, cfg.read)):
            m.d.comb += [ctr.config.eq(side.counter), ctr.used.eq(side.counters_used),
                         ctr.start.eq(pending_start & side.enable)]

        # a side alone (no partner) never waits for buffers
        w_inflight = self._side(m, "write", wctr, cfg, banks, data_in=vin_fifo.o, scalar=None,
                                gate_first=(claimed < cfg.buffers) | ~cfg.read.enable, run_started=w_started,
                                run_finished=w_finished, counter=self.writes, out_fifo=None)
        r_inflight = self._side(m, "read", rctr, cfg, banks, data_in=None, scalar=sin_fifo.o,
                                gate_first=(ready > 0) | ~cfg.write.enable, run_started=r_started,
                                run_finished=r_finished,
                                counter=self.reads, out_fifo=out_fifo)
        m.d.comb += inflight.eq(w_inflight | r_inflight)
        return m

    # ------------------------------------------------------------------ one side
    def _side(self, m, name, ctr, cfg, banks, *, data_in, scalar, gate_first, run_started, run_finished,
              counter, out_fifo):
        p = self.params
        lanes = p.lanes
        lane_bits = (lanes - 1).bit_length()
        side = getattr(cfg, name)
        is_read = out_fifo is not None
        abits = p.address_bits

        advance = Signal(name=f"{name}_advance")
        dp = Datapath(m, advance)

        # fire: a step of the counter nest enters the pipeline
        first_of_run = ctr.first[p.counters - 1]
        need_data = data_in is not None
        pop_scalar = Const(0, 1)
        if scalar is not None:
            pop_scalar = side.scalar_offset & first_of_run
        inputs_ok = Const(1, 1)
        if need_data:
            inputs_ok = inputs_ok & data_in.valid
        if scalar is not None:
            inputs_ok = inputs_ok & (~pop_scalar | scalar.valid)
        fire = Signal(name=f"{name}_fire")
        m.d.comb += fire.eq(advance & ctr.running & inputs_ok & (~first_of_run | gate_first))
        # runs: the chain reloads itself after a final step while runs remain
        final = ctr.last[p.counters - 1]
        runs_left = Signal(16, name=f"{name}_runs_left")
        m.d.comb += ctr.again.eq(runs_left > 1)
        with m.If(ctr.start):
            m.d.sync += runs_left.eq(side.runs)
        with m.Elif(fire & final):
            m.d.sync += runs_left.eq(runs_left - 1)
        m.d.comb += [ctr.step.eq(fire), run_started.eq(fire & first_of_run)]
        if need_data:
            m.d.comb += data_in.ready.eq(fire)
        held_scalar = Signal(32, name=f"{name}_scalar")
        scalar_now = Const(0, 32)
        if scalar is not None:
            m.d.comb += scalar.ready.eq(fire & pop_scalar)
            with m.If(fire & pop_scalar):
                m.d.sync += held_scalar.eq(scalar.payload)
            scalar_now = Mux(side.scalar_offset, Mux(pop_scalar, scalar.payload, held_scalar), 0)

        # buffer base of the current run (advances when a run's final step fires)
        buf_index = Signal(range(p.max_buffers), name=f"{name}_buffer")
        buf_base = Signal(32, name=f"{name}_buffer_base")
        with m.If(fire & final):
            with m.If(buf_index + 1 >= cfg.buffers):
                m.d.sync += [buf_index.eq(0), buf_base.eq(0)]
            with m.Else():
                m.d.sync += [buf_index.eq(buf_index + 1), buf_base.eq(buf_base + cfg.buffer_words)]
        with m.If(ctr.start):
            m.d.sync += [buf_index.eq(0), buf_base.eq(0)]

        # valid of stage 0 (step register), stage 1 (ALU op 1) and the issue register
        _, v0, v1, issue_valid = dp.valid_delay(fire, 3)
        # stage 0: step register
        linear = side.offset + sum(ctr.values[k] for k in range(p.counters)) + scalar_now
        a0 = dp.reg(linear[0:32], f"{name}_a0")
        last0 = dp.reg(final, f"{name}_last0")
        base0 = dp.reg(buf_base, f"{name}_base0")
        data0 = dp.reg(data_in.payload, f"{name}_data0") if need_data else None

        def alu(stage, value):
            # ADDRESS_OPS fills the 3-bit op field, so every code selects an op
            results = [ALU_OPS[op].build(dp, [value, side.alu[stage].imm][:ALU_OPS[op].arity], 0)
                       for op in ADDRESS_OPS]
            return dp.select(side.alu[stage].op, results, f"{name}_alu{stage}")

        # stage 1: ALU op 1;  stage 2: ALU op 2, range check, buffer base
        a1 = dp.reg(alu(0, a0), f"{name}_a1")
        last1, base1 = dp.reg(last0, f"{name}_last1"), dp.reg(base0, f"{name}_base1")
        data1 = dp.reg(data0, f"{name}_data1") if need_data else None
        a_final = alu(1, a1)
        keep = (a_final >= cfg.range_lo) & (a_final < cfg.range_hi)
        local = (a_final - cfg.range_lo + base1)[0:32]
        # stage 3: the issue register
        issue_keep = dp.reg(keep, f"{name}_keep")
        issue_addr = dp.reg(local, f"{name}_addr")
        issue_last = dp.reg(last1, f"{name}_last")
        issue_data = dp.reg(data1, f"{name}_data") if need_data else None

        # per-lane word address → bank and row
        mask = (1 << abits) - 1
        lane_bank, lane_row = [], []
        for lane in range(lanes):
            w = Signal(abits, name=f"{name}_w{lane}")
            m.d.comb += w.eq((issue_addr + side.lane_stride * lane)[0:abits] & mask)
            plain = (w >> cfg.bank_shift)[0:lane_bits] if lane_bits else Const(0, 1)
            rotate = Mux(cfg.stripe_shift != 0, (w >> cfg.stripe_shift)[0:max(1, lane_bits)], 0)
            bank = Signal(max(1, lane_bits), name=f"{name}_bank{lane}")
            m.d.comb += bank.eq((plain + rotate)[0:max(1, lane_bits)])
            low_mask = (Const(1, abits) << cfg.bank_shift) - 1
            row = Signal(abits - lane_bits, name=f"{name}_row{lane}")
            m.d.comb += row.eq((((w >> (cfg.bank_shift + lane_bits)) << cfg.bank_shift) | (w & low_mask))
                               [0:abits - lane_bits])
            lane_bank.append(bank)
            lane_row.append(row)

        # arbiter: pending lanes of the access in the issue register
        pending = Signal(lanes, name=f"{name}_pending")
        fresh = Signal(name=f"{name}_fresh")   # the issue register holds a new access: all lanes pending
        active = Mux(fresh, Mux(issue_keep, Const((1 << lanes) - 1, lanes), 0), pending)
        room = Const(1, 1)
        if is_read:
            returning = Signal(name=f"{name}_returning")   # an access completes next cycle
            room = (out_fifo.level + returning) < out_fifo.depth
        served = []
        for b, (wport, rport) in enumerate(banks):
            chosen = Signal(range(lanes), name=f"{name}_bank{b}_lane")
            hit = Signal(name=f"{name}_bank{b}_hit")
            for lane in reversed(range(lanes)):  # lowest pending lane wins
                with m.If(issue_valid & room & active[lane] & (lane_bank[lane] == b)):
                    m.d.comb += [chosen.eq(lane), hit.eq(1)]
            row = dp.select(chosen, lane_row, f"{name}_bank{b}_row")
            if is_read:
                m.d.comb += [rport.addr.eq(row), rport.en.eq(hit)]
            else:
                word = dp.select(chosen, [issue_data[32 * lane:32 * (lane + 1)] for lane in range(lanes)],
                                 f"{name}_bank{b}_data")
                m.d.comb += [wport.addr.eq(row), wport.data.eq(word), wport.en.eq(hit)]
            served.append((chosen, hit))
        served_mask = Signal(lanes, name=f"{name}_served")
        bits = []
        for lane in range(lanes):
            bits.append(Cat(*[hit & (chosen == lane) for chosen, hit in served]).any())
        m.d.comb += served_mask.eq(Cat(*bits))
        remaining = active & ~served_mask
        complete = Signal(name=f"{name}_complete")
        m.d.comb += complete.eq(issue_valid & room & (remaining == 0))
        m.d.comb += advance.eq(~issue_valid | complete)
        with m.If(advance):
            m.d.sync += fresh.eq(v1)
        with m.Else():
            m.d.sync += [fresh.eq(0), pending.eq(remaining)]
        with m.If(complete):
            m.d.sync += counter.eq(counter + 1)
        m.d.comb += run_finished.eq(complete & issue_last)

        if is_read:
            # read data comes back one cycle after the bank was addressed
            r_lane = [Signal(range(lanes), name=f"{name}_bank{b}_lane_d") for b in range(len(banks))]
            r_hit = [Signal(name=f"{name}_bank{b}_hit_d") for b in range(len(banks))]
            for b, (chosen, hit) in enumerate(served):
                m.d.sync += [r_lane[b].eq(chosen), r_hit[b].eq(hit)]
            m.d.sync += returning.eq(complete & issue_keep)
            collect = [Signal(32, name=f"{name}_collect{lane}") for lane in range(lanes)]
            vector = []
            for lane in range(lanes):
                word = Signal(32, name=f"{name}_lane{lane}_word")
                m.d.comb += word.eq(collect[lane])
                for b, (_, rport) in enumerate(banks):
                    with m.If(r_hit[b] & (r_lane[b] == lane)):
                        m.d.comb += word.eq(rport.data)
                m.d.sync += collect[lane].eq(word)
                vector.append(word)
            m.d.comb += [out_fifo.i.valid.eq(returning), out_fifo.i.payload.eq(Cat(*vector))]

        self.probes[name] = {"start": ctr.start, "advance": advance, "base": base1, "running": ctr.running,
                             "first": first_of_run, "values": ctr.values, "runs_left": runs_left,
                             "index": buf_index,
                             "ring_base": buf_base,
                             "valid": [v0, v1, issue_valid], "last": [last0, last1, issue_last],
                             "stage_base": [base0, base1],
                             "access": Cat(*[hit for _, hit in served]).any()}
        inflight = Signal(name=f"{name}_inflight")
        m.d.comb += inflight.eq(v0 | v1 | issue_valid | (returning if is_read else 0))
        return inflight
