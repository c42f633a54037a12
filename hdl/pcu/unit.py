"""The pattern compute unit: header (FIFOs, counters) → body (SIMD stages or MAC array) → tail.

Dataflow of one PCU (:class:`PatternComputeUnit`)::

    vin0, vin1 ─▶ FIFO ─┐                      ┌─▶ SIMD stages ─┬─▶ reduce tree ─▶ sout
    sin0, sin1 ─▶ FIFO ─┼─▶ join ─▶ step reg ──┤                │
    counters ───────────┘   (fire)             └─▶ MAC array ───┴─▶ tail ─▶ bf16 ─▶ vout

The whole unit is one globally stalled pipeline: every register loads when
``advance`` is high, and ``advance`` is low only while an output register holds
a result its consumer has not taken. A *step* (one iteration of the counter
nest) fires when the pipeline advances, the counters are running and every
input the program reads has a value.

SIMD mode: stage ``s`` sees its operands ``s × stage_latency`` cycles after the
step fired; each lane applies the stage's op (every op of :attr:`PcuParams.ops`
is built, the configured one is selected); the result may be rotated across
lanes. Results of earlier stages and the step's inputs travel along delay lines
so any stage can read them.

Accumulator (built when ``acc_depth > 0``): after the last stage, each lane has a
register file of ``acc_depth`` fp32 entries and a single-cycle update unit (``add``,
``max`` or ``scale_add``) at one pipeline position, so back-to-back steps may update
the same entry. The step's entry is also read at position 0 as the ``acc`` operand
source; a program that reads it fires one step at a time (the next step waits until
the previous update is written).

Systolic mode: an output-stationary ``lanes × stages`` array of single-cycle
MACs (bf16 × bf16 + fp32, one rounding). A values enter lane ``i`` skewed by
``i`` cycles and move right; B values enter column ``j`` skewed by ``j`` and
move down, so PE ``(i, j)`` sees the ``k``-th pair ``i + j`` cycles after step
``k`` fired and accumulates in input order (the order of a sequential fp32 loop).
At the last step of a tile each PE copies its sum to a shadow register and starts
the next tile from +0; the shadows leave as ``stages`` column vectors while the
next tile computes, so back-to-back tiles need no drain bubble. Two tiles must
end at least ``max(lanes, stages)`` cycles apart (a tile with a shorter K loop
gets bubbles).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config_port import ConfigLoader
from ..counters import CounterChain, chain_never_ends
from ..numerics.datapath import Datapath
from ..numerics.ops import ALU_OPS, TAIL_LATENCY, build_ops, build_tail
from ..presets import Preset
from ..stream import StreamFifo, vector_layout
from .config import (
    ACC_OPS,
    CONFIG_MAGIC,
    CONFIG_VERSION,
    SCALAR_INPUTS,
    SOURCE_KINDS,
    VECTOR_INPUTS,
    PcuParams,
)

__all__ = ["PatternComputeUnit"]


class PatternComputeUnit(wiring.Component):
    """One PCU.

    Parameters
    ----------
    params : PcuParams, Preset or str
        Hardware parameters; a preset (name) is taken with the default build options.
    **options
        Build options for :class:`PcuParams` when ``params`` is a preset (``ops``, ``tail``,
        ``systolic``, ``constants``).

    Attributes
    ----------
    cfg : In(stream.Signature(32))
        Configuration words (:meth:`PcuConfig.encode`): a header, then the body. Taken only
        while no run is in progress.
    cfg_clear : In(1)
        Abandon a partly loaded image, deconfigure and empty the input FIFOs (honoured only while
        idle; the tile's launch controller uses it at Program Load and when it refuses an image).
    vin0, vin1 : In(stream.Signature(vector_layout(lanes)))
        Vector inputs, one 32-bit word per lane (bf16 values in the low 16 bits).
    sin0, sin1 : In(stream.Signature(32))
        Scalar inputs.
    vout : Out(stream.Signature(vector_layout(lanes)))
        Vector results: one per step (SIMD) or ``stages`` per tile (systolic, the columns of C).
    sout : Out(stream.Signature(32))
        Cross-lane reduction results, one per step.
    start : In(1)
        Control token: start a run of the counter nest (when configured and idle).
    done : Out(1)
        Control token: high for one cycle after the final step of a run fired.
    configured : Out(1)
        A valid configuration is loaded.
    cfg_error : Out(1)
        The last configuration image was refused: a wrong magic, version or length in its header,
        or a counter nest that would never end (a used counter with stride 0).
    busy : Out(1)
        A run is in progress or its results are still on their way out; configuration words are
        taken only while it is low.
    steps : Out(32)
        Steps fired since reset (a performance counter).
    """

    def __init__(self, params: PcuParams | Preset | str, **options):
        if not isinstance(params, PcuParams):
            params = PcuParams(params, **options)
        elif options:
            raise TypeError("pass build options either in PcuParams or as keywords, not both")
        self.params = params
        vec = vector_layout(params.lanes)
        super().__init__({
            "cfg": In(stream.Signature(32)),
            "cfg_clear": In(1),
            "vin0": In(stream.Signature(vec)),
            "vin1": In(stream.Signature(vec)),
            "sin0": In(stream.Signature(32)),
            "sin1": In(stream.Signature(32)),
            "vout": Out(stream.Signature(vec)),
            "sout": Out(stream.Signature(32)),
            "start": In(1),
            "done": Out(1),
            "configured": Out(1),
            "cfg_error": Out(1),
            "busy": Out(1),
            "steps": Out(32),
        })

    # ------------------------------------------------------------------ elaborate
    def elaborate(self, platform):
        p = self.params
        m = Module()
        lanes, stages = p.lanes, p.stages
        vec = vector_layout(lanes)

        counters = m.submodules.counters = CounterChain(p.counters, p.counter_width)
        running = counters.running
        # an image whose counter nest never ends is refused: the run could not stop and the unit,
        # busy for good, could not be reconfigured (other fields outside the encoder's rules only
        # select 0 or are ignored: see docs/config-checks.md)
        loader = m.submodules.config = ConfigLoader(
            p.layout, CONFIG_MAGIC, CONFIG_VERSION,
            check=lambda c: ~chain_never_ends(c.counter, c.counters_used))
        wiring.connect(m, wiring.flipped(self.cfg), loader.words)
        m.d.comb += loader.clear.eq(self.cfg_clear)
        cfg = loader.config
        pending_start = loader.loaded & cfg.auto_start
        m.d.comb += [
            loader.accept.eq(~self.busy),
            self.configured.eq(loader.configured),
            self.cfg_error.eq(loader.error),
            counters.config.eq(cfg.counter),
            counters.used.eq(cfg.counters_used),
            counters.start.eq(self.configured & (self.start | pending_start)),
            self.done.eq(counters.done),
        ]

        # ---------------------------------------------------------------- header: FIFOs and join
        # the endpoint clear also empties the input FIFOs: what a kernel sent beyond what this PCU
        # took must not become the next kernel's data
        vins, sins = [], []
        for k, port in enumerate((self.vin0, self.vin1)):
            fifo = StreamFifo(vec, p.preset.fifo_depth)
            m.submodules[f"vin{k}_fifo"] = fifo
            wiring.connect(m, wiring.flipped(port), fifo.i)
            m.d.comb += fifo.clear.eq(self.cfg_clear & ~self.busy)
            vins.append(fifo.o)
        for k, port in enumerate((self.sin0, self.sin1)):
            fifo = StreamFifo(32, p.preset.fifo_depth)
            m.submodules[f"sin{k}_fifo"] = fifo
            wiring.connect(m, wiring.flipped(port), fifo.i)
            m.d.comb += fifo.clear.eq(self.cfg_clear & ~self.busy)
            sins.append(fifo.o)

        advance = Signal()
        dp = Datapath(m, advance)
        systolic = cfg.mode == 1

        # an input is popped at steps where counters 0..level-1 are at their first value (level
        # 0: every step) and its value is held for the other steps
        firsts = [Const(1, 1), *[counters.first[j] for j in range(p.counters)]]

        def popped(used, level, name):
            return used & dp.select(level, firsts, f"{name}_pop_level_first")

        vpops = [popped(cfg.vin_used[k], cfg.vin_pop[k], f"vin{k}") for k in range(VECTOR_INPUTS)]
        pops = [popped(cfg.scalar[k].used, cfg.scalar[k].pop_level, f"scalar{k}")
                for k in range(SCALAR_INPUTS)]
        needs = vpops + pops
        sources = vins + sins

        # systolic tiles must end max(lanes, stages) cycles apart (shadow and drain timing)
        spacing = p.tile_interval
        since_last = Signal(range(spacing + 1), init=spacing)
        tile_ok = ~systolic | ~counters.last[0] | (since_last >= spacing - 1)

        inputs_ok = Const(1, 1)
        for need, src in zip(needs, sources, strict=True):
            inputs_ok = inputs_ok & (~need | src.valid)
        lat = p.stage_latency
        depth = p.stages * lat
        acc_on = p.acc_depth > 0
        # busy until the last step has left every pipeline and both outputs were taken: a new
        # configuration must not meet results still in flight (their tail, conversion, outputs)
        longest = (depth + 2 * p.reduce_levels + (TAIL_LATENCY if p.tail else 0) + lanes + stages + 2
                   + int(acc_on))
        quiet = Signal(range(longest + 1), init=longest)
        # a program reading the acc source fires when the previous step's update is written:
        # quiet > depth, so steps fire p.acc_read_interval (depth + 2) cycles apart
        acc_ok = (~cfg.acc.read | (quiet >= p.acc_read_interval - 1)) if acc_on else Const(1, 1)
        fire = Signal()
        m.d.comb += fire.eq(advance & running & inputs_ok & tile_ok & acc_ok)
        m.d.comb += counters.step.eq(fire)
        for need, src in zip(needs, sources, strict=True):
            m.d.comb += src.ready.eq(fire & need)
        with m.If(fire):
            m.d.sync += self.steps.eq(self.steps + 1)
        with m.If(advance):
            with m.If(fire & counters.last[0]):
                m.d.sync += since_last.eq(0)
            with m.Elif(since_last != spacing):
                m.d.sync += since_last.eq(since_last + 1)

        # ---------------------------------------------------------------- step register (position 0)
        def now(pop, source, name):
            """The input's payload on a popping step, else the value it held since."""
            held = Signal(Value.cast(source.payload).shape(), name=f"{name}_held")
            with m.If(fire & pop):
                m.d.sync += held.eq(source.payload)
            return Mux(pop, source.payload, held)

        scalar_now = [now(pops[k], sins[k], f"scalar{k}") for k in range(SCALAR_INPUTS)]
        vin_now = [now(vpops[k], vins[k], f"vin{k}") for k in range(VECTOR_INPUTS)]
        p0_valid = Signal()
        with m.If(advance):
            m.d.sync += p0_valid.eq(fire)
        p0_vin = [dp.reg(v, f"p0_vin{k}") for k, v in enumerate(vin_now)]
        p0_scalar = [dp.reg(v, f"p0_scalar{k}") for k, v in enumerate(scalar_now)]
        p0_ctr = [dp.reg(counters.values[k], f"p0_ctr{k}") for k in range(p.counters)]
        p0_first = dp.reg(counters.first[0], "p0_first")
        p0_last = dp.reg(counters.last[0], "p0_last")
        if acc_on:
            acfg = cfg.acc
            reset_now = Const(1, 1)
            emit_now = Const(1, 1)
            for c in range(p.counters):
                edge = Mux(acfg.emit_first, counters.each_first[c], counters.each_last[c])
                reset_now = reset_now & (~acfg.reset[c] | counters.each_first[c])
                emit_now = emit_now & (~acfg.emit[c] | edge)
            chosen = dp.select(acfg.index, [counters.values[k] for k in range(p.counters)], "acc_index_ctr")
            index_now = Mux(acfg.indexed, chosen, 0)
            p0_acc_reset = dp.reg(reset_now, "p0_acc_reset")
            p0_acc_emit = dp.reg(emit_now, "p0_acc_emit")
            index_bits = max(1, (p.acc_depth - 1).bit_length())
            # an entry past the register file (the encoder refuses such an index counter; a raw image
            # can hold one) is neither read (+0, as on a reset step) nor written: entry 0 is addressed
            # instead, so no access leaves the file
            inside = index_now < p.acc_depth
            p0_acc_inside = dp.reg(inside, "p0_acc_inside")
            p0_acc_index = dp.reg(Mux(inside, Cat(index_now, Const(0, index_bits))[:index_bits], 0),
                                  "p0_acc_index")

        # ---------------------------------------------------------------- SIMD body

        def line(value, name):
            taps = [Value.cast(value)]
            for d in range(depth):
                taps.append(dp.reg(taps[-1], f"{name}_d{d + 1}"))
            return taps

        vin_line = [line(v, f"vin{k}") for k, v in enumerate(p0_vin)]
        if acc_on:
            files = []
            for lane in range(lanes):
                mem = Memory(shape=32, depth=p.acc_depth, init=[])
                m.submodules[f"acc_file{lane}"] = mem
                files.append(mem)
            # the acc operand source: the step's entry before its update, +0 on a reset step
            src_ports = [f.read_port(domain="comb") for f in files]
            for port in src_ports:
                m.d.comb += port.addr.eq(p0_acc_index)
            acc_src = Cat(*[Mux(p0_acc_reset | ~p0_acc_inside, 0, port.data) for port in src_ports])
            acc_line = line(acc_src, "acc_src")
            acc_flags = line(Cat(p0_acc_reset, p0_acc_emit, p0_acc_inside, p0_acc_index), "acc_flags")
        scalar_line = [line(v, f"scalar{k}") for k, v in enumerate(p0_scalar)]
        ctr_line = [line(v, f"ctr{k}") for k, v in enumerate(p0_ctr)]
        valid_line = dp.valid_delay(p0_valid, depth)

        stage_out = []          # stage_out[s] = list of lane results, at position (s + 1) * lat
        stage_lines = []        # stage_lines[s][d] = stage s results delayed by d more cycles
        shift_bits = max(1, (lanes - 1).bit_length())
        # each lane's index as a register that holds it from reset on (a constant would be folded
        # into the lane's module and make every lane a module of its own)
        lane_ids = []
        for lane in range(lanes):
            lane_id = Signal(range(max(2, lanes)), name=f"lane_id{lane}", init=lane)
            m.d.sync += lane_id.eq(lane_id)
            lane_ids.append(lane_id)
        for s in range(stages):
            here = s * lat
            scfg = cfg.stage[s]
            lane_results = []
            for lane in range(lanes):
                # the lane's own values arrive as signals of the same names in every lane, so the
                # lanes of a stage are one Verilog module (hdl.module_sharing)
                choices = {
                    (SOURCE_KINDS["zero"], 0): Const(0, 32),
                    (SOURCE_KINDS["lane"], 0): dp.wire(lane_ids[lane], "lane_index"),
                }
                for k in range(VECTOR_INPUTS):
                    choices[(SOURCE_KINDS["vin"], k)] = dp.wire(vin_line[k][here][32 * lane:32 * (lane + 1)],
                                                               f"vin{k}")
                for k in range(SCALAR_INPUTS):
                    choices[(SOURCE_KINDS["scalar"], k)] = scalar_line[k][here]
                for k in range(p.constants):
                    choices[(SOURCE_KINDS["const"], k)] = cfg.const[k]
                for k in range(p.counters):
                    choices[(SOURCE_KINDS["ctr"], k)] = ctr_line[k][here]
                if acc_on:
                    choices[(SOURCE_KINDS["acc"], 0)] = dp.wire(acc_line[here][32 * lane:32 * (lane + 1)],
                                                               "acc")
                for e in range(s):
                    choices[(SOURCE_KINDS["stage"], e)] = dp.wire(stage_lines[e][here - (e + 1) * lat][lane],
                                                                 f"stage{e}")
                # each lane of each stage is its own module (see Datapath.child)
                ldp = dp.child(f"s{s}_l{lane}")
                lm = ldp.m
                operands = []
                for k in range(3):
                    operand = Signal(32, name=f"op{'abc'[k]}")
                    with lm.Switch(Cat(scfg.src[k].index, scfg.src[k].kind)):
                        for (kind, index), value in choices.items():
                            with lm.Case(index | (kind << len(scfg.src[k].index))):
                                lm.d.comb += operand.eq(value)
                        with lm.Default():  # not produced by the encoder
                            lm.d.comb += operand.eq(0)
                    operands.append(operand)
                # every op of the set is built; the configured one is selected (all padded to lat)
                built = build_ops(ldp, p.ops, operands, scfg.op, lat)
                result = Signal(32, name="result")
                with lm.Switch(scfg.op):
                    for opcode, value in built.items():
                        with lm.Case(opcode):
                            lm.d.comb += result.eq(value)
                    with lm.Default():  # an op outside this PCU's set: refused by the encoder
                        lm.d.comb += result.eq(0)
                lane_results.append(result)
            rotated = []
            for lane in range(lanes):
                rotated.append(dp.select((scfg.shift + lane)[:shift_bits], lane_results, f"s{s}_l{lane}_out")
                               if lanes > 1 else lane_results[0])
            stage_out.append(rotated)
            remaining = depth - (s + 1) * lat
            taps = [Cat(*rotated)]
            for d in range(remaining):
                taps.append(dp.reg(taps[-1], f"s{s}_line_d{d + 1}"))
            stage_lines.append([[t[32 * i:32 * (i + 1)] for i in range(lanes)] for t in taps])

        simd_vec = Cat(*stage_out[-1])
        simd_valid = valid_line[depth]
        stage_valid = simd_valid
        if acc_on:
            simd_valid, simd_vec = self._accumulator(m, dp, cfg, advance, files, acc_flags[depth],
                                                     stage_lines, simd_valid, simd_vec)

        # ---------------------------------------------------------------- systolic body
        if p.systolic:
            drain_valid, drain_vec = self._mac_array(m, dp, advance, p0_valid, p0_vin, p0_first, p0_last)
        else:
            drain_valid, drain_vec = Const(0, 1), Const(0, 32 * lanes)
        body_valid = Mux(systolic, drain_valid, simd_valid)
        body_vec = Mux(systolic, drain_vec, simd_vec)

        # ---------------------------------------------------------------- reduction tree (SIMD)
        level_values = list(stage_out[-1])
        red_valid = stage_valid
        for level in range(p.reduce_levels):
            nxt = []
            for i in range(0, len(level_values), 2):
                a, b = dp.wire(level_values[i], "a"), dp.wire(level_values[i + 1], "b")
                ndp = dp.child(f"reduce{level}_{i // 2}")
                add = ALU_OPS["fadd"].build(ndp, [a, b], 2)
                mx = ndp.delay(ALU_OPS["fmax"].build(ndp, [a, b], 1), 1)
                nxt.append(ndp.wire(Mux(cfg.reduce == 2, mx, add), "sum"))
            level_values = nxt
            red_valid = dp.valid_delay(red_valid, 2)[-1]
        reduced = level_values[0]

        # ---------------------------------------------------------------- tail and conversion
        tail_on = cfg.tail != 0
        if p.tail:
            tail_vec = Cat(*[self._isolated(dp, f"tail{i}", build_tail, body_vec[32 * i:32 * (i + 1)],
                                            cfg.tail)
                             for i in range(lanes)])
            tail_valid = dp.valid_delay(body_valid, TAIL_LATENCY)[-1]
            post_vec = Mux(tail_on, tail_vec, body_vec)
            post_valid = Mux(tail_on, tail_valid, body_valid)
        else:
            post_vec, post_valid = body_vec, body_valid
        # the bf16 (the low half of each lane; the high half is zero) from a module per lane
        def to_bf16(d, x):
            return ALU_OPS["cvt_bf16"].build(d, [x], 0)[:16]
        converted = Cat(*[Cat(self._isolated(dp, f"cvt{i}", to_bf16, post_vec[32 * i:32 * (i + 1)]),
                              Const(0, 16))
                          for i in range(lanes)])
        final_vec = Mux(cfg.to_bf16, converted, post_vec)

        # ---------------------------------------------------------------- output registers
        m.d.comb += advance.eq((~self.vout.valid | self.vout.ready) & (~self.sout.valid | self.sout.ready))

        with m.If(fire):
            m.d.sync += quiet.eq(0)
        with m.Elif(advance & (quiet != longest)):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += self.busy.eq(running | (quiet != longest) | self.vout.valid | self.sout.valid)
        for port, valid, value, enable in ((self.vout, post_valid, final_vec, cfg.vout_enable),
                                           (self.sout, red_valid, reduced, cfg.sout_enable & ~systolic)):
            with m.If(advance):
                m.d.sync += [port.valid.eq(valid & enable), port.payload.eq(value)]
            with m.Elif(port.ready):
                m.d.sync += port.valid.eq(0)
        return m

    @staticmethod
    def _isolated(dp, name, build, *args):
        """``build(datapath, *args)`` in its own submodule ``name``; its result as a signal."""
        # the arguments arrive as signals of fixed names, so that the submodules of all lanes are
        # one Verilog module (hdl.module_sharing)
        args = [dp.wire(a, f"arg{k}") for k, a in enumerate(args)]
        sub = dp.child(name)
        return sub.wire(build(sub, *args), "result")

    # ------------------------------------------------------------------ the accumulator
    def _accumulator(self, m, dp, cfg, advance, files, flags, stage_lines, valid, simd_vec):
        """The per-lane update at position ``depth`` (``flags``: reset, emit, the entry lies in the
        file, then the entry index; ``valid``: a step is there); returns the SIMD path's (valid, vector).
        An entry outside the file reads as +0 and is not written."""
        p = self.params
        stages, lat = p.stages, p.stage_latency
        depth = stages * lat
        reset, emit, inside, index = flags[0], flags[1], flags[2], flags[3:]
        update = Signal()
        m.d.comb += update.eq(advance & valid & (cfg.acc.op != ACC_OPS["none"]))
        news = []
        for lane, mem in enumerate(files):
            rd = mem.read_port(domain="comb")
            wr = mem.write_port()
            # the lane's values as signals of fixed names: one Verilog module for all lanes
            at_depth = [dp.wire(stage_lines[e][depth - (e + 1) * lat][lane], f"stage{e}")
                        for e in range(stages)]
            stored = dp.wire(rd.data, "stored")
            adp = dp.child(f"acc_l{lane}")
            x = adp.select(cfg.acc.value, at_depth, "value")
            y = adp.select(cfg.acc.scale, at_depth, "scale")
            old = Mux(inside, stored, 0)
            added = ALU_OPS["fadd"].build(adp, [old, x], 0)
            largest = ALU_OPS["fmax"].build(adp, [old, x], 0)
            scaled = ALU_OPS["fadd"].build(adp, [ALU_OPS["fmul"].build(adp, [old, y], 0), x], 0)
            new = Signal(32, name="new")
            with adp.m.Switch(cfg.acc.op):
                with adp.m.Case(ACC_OPS["add"]):
                    adp.m.d.comb += new.eq(added)
                with adp.m.Case(ACC_OPS["max"]):
                    adp.m.d.comb += new.eq(largest)
                with adp.m.Default():
                    adp.m.d.comb += new.eq(scaled)
            value = adp.wire(Mux(reset, x, new), "update")
            m.d.comb += [rd.addr.eq(index), wr.addr.eq(index), wr.data.eq(value), wr.en.eq(update & inside)]
            news.append(value)
        out_valid = dp.valid_delay(valid & emit, 1)[-1]
        out_vec = dp.reg(Cat(*news), "acc_out")
        use = (cfg.acc.op != ACC_OPS["none"]) & cfg.acc.to_vout
        plain_valid = dp.valid_delay(valid, 1)[-1]
        plain_vec = dp.reg(simd_vec, "acc_plain")
        # one register after the update whatever the program, so both paths have one latency
        return Mux(use, out_valid, plain_valid), Mux(use, out_vec, plain_vec)

    # ------------------------------------------------------------------ the MAC array
    def _mac_array(self, m, dp, advance, p0_valid, p0_vin, p0_first, p0_last):
        p = self.params
        lanes, stages = p.lanes, p.stages
        mac = ALU_OPS["mac"]
        # skewed entries: A lane i (with the step's valid/first/last) delayed by i, B column j by j
        a_in = [[None] * stages for _ in range(lanes)]
        b_in = [[None] * stages for _ in range(lanes)]
        for i in range(lanes):
            bundle = Cat(p0_vin[0][32 * i:32 * i + 16], p0_valid, p0_first, p0_last)
            for d in range(i):
                bundle = dp.reg(bundle, f"skew_a{i}_{d}")
            a_in[i][0] = bundle
        for j in range(stages):
            value = p0_vin[1][32 * j:32 * j + 16]
            for d in range(j):
                value = dp.reg(value, f"skew_b{j}_{d}")
            b_in[0][j] = value

        shadows = [[None] * stages for _ in range(lanes)]
        drain_events = []
        for i in range(lanes):
            for j in range(stages):
                # the PE's inputs as signals of fixed names: one Verilog module for all PEs
                a_bundle, b = dp.wire(a_in[i][j], "a_in"), dp.wire(b_in[i][j], "b_in")
                a, valid, first, last = a_bundle[0:16], a_bundle[16], a_bundle[17], a_bundle[18]
                pe = dp.child(f"pe{i}_{j}")  # each PE is its own module (see Datapath.child)
                acc = Signal(32, name="acc")
                shadow = Signal(32, name="shadow")
                total = mac.build(pe, [Mux(first, 0, acc), Cat(a, Const(0, 16)), Cat(b, Const(0, 16))], 0)
                with pe.m.If(advance & valid):
                    pe.m.d.sync += acc.eq(total)
                    with pe.m.If(last):
                        pe.m.d.sync += shadow.eq(total)
                if j + 1 < stages:
                    a_in[i][j + 1] = pe.reg(a_bundle, "a_out")
                if i + 1 < lanes:
                    b_in[i + 1][j] = pe.reg(b, "b_out")
                shadows[i][j] = shadow
                if i == lanes - 1:
                    drain_events.append(valid & last)

        # column j is complete the cycle after the bottom PE of column j took its last step
        drain_valid = Signal()
        drain_col = Signal(range(stages))
        with m.If(advance):
            m.d.sync += drain_valid.eq(0)
            for j, event in enumerate(drain_events):
                with m.If(event):
                    m.d.sync += [drain_valid.eq(1), drain_col.eq(j)]
        columns = [Cat(*[shadows[i][j] for i in range(lanes)]) for j in range(stages)]
        return drain_valid, dp.select(drain_col, columns, "drain_column")
