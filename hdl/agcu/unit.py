"""The address generation and coalescing unit: a DMA engine between the tile and a memory port.

Dataflow of one AGCU (:class:`AddressGenerationUnit`)::

    start ─▶ [sin: scalar base] ─▶ check ─▶ counters ─▶ vector address ─▶ pending line ─▶ request ─▶ mem.req
                                  segment, bounds,          (+ vin data, mask: stores)   register
                                  permission
    mem.resp ─▶ line buffer ─┐
    descriptors (slots) ─────┴─▶ slot select ─▶ vout                                   (loads)

A *run* begins with a ``start`` token. With ``base_from_scalar`` the unit first takes
one word from ``sin``. It then forms the run's lowest and highest vector address from
the configuration alone (``offset [+ scalar] + Σ start`` and ``offset [+ scalar] + Σ
last value``; each counter's last value ``stop - 1 - (stop - 1 - start) mod stride`` is
computed by a small serial divider once per configuration, while ``busy``), fetches
its segment and checks both addresses and the permission. A failing run raises the
sticky ``fault``, records ``fault_addr``, issues nothing, takes nothing from ``vin`` and
still ends with a ``done`` token, so a launch completes. A counter with stride 0
(which would never finish) faults the same way.

A passing run steps the counter nest once per vector. Each vector address joins the
*pending line* when it is the previous address plus one in the same 64-byte line;
otherwise (a new line, a jump, the end of the run) the pending line is *flushed* into
the request register, which drives ``mem.req``. A store merges each vector from
``vin`` into the pending line's data and word mask; a load pushes a descriptor (first
and last slot) per line request, and the returned lines, in request order, feed
``vout`` one vector per cycle. A flush needs a *credit*: fewer than ``outstanding``
lines held (a load holds its line until its last vector left on ``vout``, a store until
its write is acknowledged), so the load line buffer can never overflow and
``mem.resp.ready`` is constantly high. In steady state one vector per cycle passes
``vin`` / ``vout`` while the memory keeps up.

``done`` pulses when the run's last request has completed: a load's last vector has
left on ``vout``, a store's last write was acknowledged.

``abort_run`` (the launch controller's ABORT) ends a run at once, without ``done``: nothing more
is issued, the pending line, an unaccepted request and the load line buffer are dropped, and
the configuration and pending start tokens are cleared. The memory still answers every request
it had taken; the unit counts them (``inflight``) and stays busy, in state DRAIN, dropping
their responses until the last has come, so none reaches a later run. The segment table is kept.
"""

from amaranth import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config_port import ConfigLoader
from ..counters import CounterChain
from ..memctrl.interface import LINE_WORDS, WORD_BITS, MemoryPortSignature
from ..stream import StreamFifo, vector_layout
from .config import CONFIG_MAGIC, CONFIG_VERSION, AgcuParams

__all__ = ["AddressGenerationUnit"]

# control states (an If/Elif chain on a state register, no m.FSM / m.Switch)
_IDLE, _PREP, _ARG, _SUM, _CHECK, _RUN, _DRAIN = range(7)
_LINE_BITS = LINE_WORDS * WORD_BITS


def _or_all(values):
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result


class AddressGenerationUnit(wiring.Component):
    """One AGCU.

    Parameters
    ----------
    params : AgcuParams
        Hardware parameters (preset, memory line address width, segments, outstanding requests).

    Attributes
    ----------
    cfg : In(stream.Signature(32))
        Kernel configuration words (:meth:`AgcuConfig.encode`); taken only while idle.
    cfg_clear : In(1)
        Abandon a partly loaded image, deconfigure and clear ``fault`` (honoured only while idle).
    abort_run : In(1)
        Stop now, in any state (the launch controller's ABORT): the run ends without ``done``,
        nothing more is issued, held lines, pending start tokens, ``fault`` and the configuration
        are dropped; ``busy`` stays high until the memory has answered every request it had
        taken (those responses are dropped). The segment table is kept.
    seg : In(stream.Signature(segment_layout(params)))
        Privileged segment table writes from the host (:meth:`Segment.payload`): entry ``index``
        becomes ``base``/``bound``/``read``/``write``. Taken only while idle; an index beyond the
        table is taken and ignored; an entry with ``base + bound > 2**addr_bits`` (which
        :class:`~hdl.agcu.config.Segment` refuses) is stored empty (bound 0, no permission), so
        every run naming it faults. Kernel images cannot write the table.
    mem : Out(MemoryPortSignature(addr_bits))
        The memory user port: line requests out, responses (one per request, in order) in.
        ``mem.resp.ready`` is always high (space is reserved before a request is issued).
    vin : In(stream.Signature(vector_layout(lanes)))
        Store data: one vector per step of a store run, in counter order.
    vout : Out(stream.Signature(vector_layout(lanes)))
        Load data: one vector per step of a load run, in counter order.
    sin : In(stream.Signature(32))
        With ``base_from_scalar``: one word per run, added to ``offset`` (vector units).
    sout : Out(stream.Signature(32))
        Unused: ``valid`` is always low (the pin exists for the fabric's AGCU site).
    start : In(1)
        Control token: one run per pulse while configured (pulses arriving during a run are counted,
        up to 255, and start the following runs; pending pulses are dropped on reconfiguration).
    done : Out(1)
        Control token: one pulse per run, when all its requests have completed (also after a fault).
    configured, cfg_error : Out(1)
        A valid configuration is loaded / the last configuration header was refused.
    busy : Out(1)
        Not idle: preparing a new configuration, a run is in progress, or an aborted run's
        requests are still being answered.
    fault : Out(1)
        A run was refused (out of its segment, no permission, or a counter with stride 0); sticky
        until ``cfg_clear`` or the next configuration.
    fault_addr : Out(params.vaddr_bits)
        Vector address of the last fault: the run's highest address for a bound fault, its lowest
        otherwise.
    requests : Out(32)
        Line requests issued since reset (performance counter).
    """

    def __init__(self, params):
        if not isinstance(params, AgcuParams):
            raise TypeError(f"params must be an AgcuParams (e.g. AgcuParams('tiny', addr_bits=23)), "
                            f"got {params!r}")
        self.params = params
        vec = vector_layout(params.lanes)
        super().__init__({
            "cfg": In(stream.Signature(32)),
            "cfg_clear": In(1),
            "abort_run": In(1),
            "seg": In(stream.Signature(params.segment_layout)),
            "mem": Out(MemoryPortSignature(params.addr_bits)),
            "vin": In(stream.Signature(vec)),
            "vout": Out(stream.Signature(vec)),
            "sin": In(stream.Signature(32)),
            "sout": Out(stream.Signature(32)),
            "start": In(1),
            "done": Out(1),
            "configured": Out(1),
            "cfg_error": Out(1),
            "busy": Out(1),
            "fault": Out(1),
            "fault_addr": Out(params.vaddr_bits),
            "requests": Out(32),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        vpl, wpv = p.vectors_per_line, p.words_per_vector
        slot_bits = (vpl - 1).bit_length()
        slot_width = max(1, slot_bits)
        vbits = p.lanes * 32
        cw, n = p.counter_width, p.counters
        abits, vabits = p.addr_bits, p.vaddr_bits

        state = Signal(range(7))
        idle = Signal()
        m.d.comb += idle.eq(state == _IDLE)

        # ------------------------------------------------------------- configuration
        # the configuration, the counters and the load return FIFOs restart from reset on abort
        loader = ConfigLoader(p.layout, CONFIG_MAGIC, CONFIG_VERSION)
        m.submodules.config = ResetInserter({"sync": self.abort_run})(loader)
        wiring.connect(m, wiring.flipped(self.cfg), loader.words)
        cfg, loaded = loader.config, loader.loaded
        store = cfg.direction
        m.d.comb += [loader.accept.eq(idle), loader.clear.eq(self.cfg_clear),
                     self.configured.eq(loader.configured), self.cfg_error.eq(loader.error),
                     self.busy.eq(~idle),
                     self.sout.valid.eq(0), self.sout.payload.eq(0)]

        # ------------------------------------------------------------- segment table
        seg_base = [Signal(abits, name=f"seg{i}_base") for i in range(p.segments)]
        seg_bound = [Signal(abits + 1, name=f"seg{i}_bound") for i in range(p.segments)]
        seg_read = [Signal(name=f"seg{i}_read") for i in range(p.segments)]
        seg_write = [Signal(name=f"seg{i}_write") for i in range(p.segments)]
        m.d.comb += self.seg.ready.eq(idle)
        entry = self.seg.payload
        # an entry past the end of the line space (base + bound > 2**addr_bits; Segment refuses it)
        # would let line addresses wrap round to the bottom of memory: it is stored empty instead
        fits = Signal()
        m.d.comb += fits.eq(entry.base + entry.bound <= (1 << abits))
        with m.If(self.seg.valid & idle):
            for i in range(p.segments):
                with m.If(entry.index == i):
                    m.d.sync += [seg_base[i].eq(entry.base), seg_bound[i].eq(Mux(fits, entry.bound, 0)),
                                 seg_read[i].eq(entry.read & fits), seg_write[i].eq(entry.write & fits)]

        # ------------------------------------------------------------- start tokens
        pending_starts = Signal(8)
        begin = Signal()
        m.d.comb += begin.eq(idle & loader.configured & ~loaded & (pending_starts != 0))
        token = self.start & loader.configured
        with m.If(~loader.configured):
            m.d.sync += pending_starts.eq(0)
        with m.Elif(token & ~begin & (pending_starts != 0xFF)):
            m.d.sync += pending_starts.eq(pending_starts + 1)
        with m.Elif(~token & begin):
            m.d.sync += pending_starts.eq(pending_starts - 1)

        # ------------------------------------------------------------- counters' last values
        # restoring division of (stop - 1 - start) by stride, one bit per cycle in state PREP
        prep_count = Signal(range(cw + 1))
        lasts, starts, hangs = [], [], []
        for k in range(n):
            c = cfg.counter[k]
            dq = Signal(cw, name=f"ctr{k}_dividend")
            rem = Signal(cw + 1, name=f"ctr{k}_rem")
            trial = Cat(dq[cw - 1], rem[:cw])
            with m.If(loaded):
                m.d.sync += [dq.eq((c.stop - 1 - c.start)[:cw]), rem.eq(0)]
            with m.Elif(state == _PREP):
                m.d.sync += [dq.eq(Cat(Const(0, 1), dq[:cw - 1])) if cw > 1 else dq.eq(0),
                             rem.eq((trial - c.stride)[:cw + 1])]
                with m.If(trial < c.stride):
                    m.d.sync += rem.eq(trial)
            active = Signal(name=f"ctr{k}_active")
            stepping = Signal(name=f"ctr{k}_stepping")   # takes more than its start value
            last = Signal(cw, name=f"ctr{k}_last")
            hang = Signal(name=f"ctr{k}_hang")
            m.d.comb += [active.eq(k < cfg.counters_used),
                         stepping.eq(active & (c.stop > c.start) & (c.stride != 0)),
                         last.eq(c.start),
                         hang.eq(active & (c.stop > c.start) & (c.stride == 0))]
            with m.If(stepping):
                m.d.comb += last.eq((c.stop - 1 - rem)[:cw])
            lasts.append(last)
            starts.append(c.start)
            hangs.append(hang)

        # ------------------------------------------------------------- run set-up registers
        scalar = Signal(32)
        base_off = Signal(33)
        lo = Signal(vabits)
        hi = Signal(vabits)
        run_base = Signal(abits)
        run_bound = Signal(abits + 1)
        run_ok = Signal()      # the segment permits the direction
        run_hang = Signal()

        ctr = CounterChain(n, cw)
        m.submodules.counters = ResetInserter({"sync": self.abort_run})(ctr)
        m.d.comb += [ctr.config.eq(cfg.counter), ctr.used.eq(cfg.counters_used), ctr.again.eq(0)]
        m.d.comb += self.sin.ready.eq(state == _ARG)

        # ------------------------------------------------------------- issue path
        vaddr = Signal(vabits)
        m.d.comb += vaddr.eq(base_off + sum(ctr.values[k] for k in range(n)))
        slot = Signal(slot_width)
        if slot_bits:
            m.d.comb += slot.eq(vaddr[:slot_bits])
        rel_line = vaddr[slot_bits:]
        phys = Signal(abits)
        m.d.comb += phys.eq((run_base + rel_line)[:abits])
        slot_mask = Signal(LINE_WORDS)
        m.d.comb += slot_mask.eq(Cat(*[(slot == w // wpv) for w in range(LINE_WORDS)]))

        pend_valid = Signal()
        pend_line = Signal(abits)
        pend_last = Signal(vabits)      # vector address of the latest vector in the pending line
        pend_first = Signal(slot_width)
        pend_end = Signal(slot_width)    # slot of the latest vector
        pend_mask = Signal(LINE_WORDS)
        pend_data = Signal(_LINE_BITS)
        req_valid = Signal()
        req_addr = Signal(abits)
        req_mask = Signal(LINE_WORDS)
        req_data = Signal(_LINE_BITS)
        held = Signal(range(p.outstanding + 1))   # lines flushed and not yet released
        steps_done = Signal()

        merge = Signal()
        flush_ok = Signal()
        can_take = Signal()
        fire = Signal()
        flush = Signal()
        m.d.comb += [
            merge.eq(pend_valid & (vaddr == pend_last + 1) & (slot != 0)),
            flush_ok.eq((~req_valid | self.mem.req.ready) & (held < p.outstanding)),
            can_take.eq(ctr.running & (merge | ~pend_valid | flush_ok)),
            fire.eq(can_take & (~store | self.vin.valid)),
            self.vin.ready.eq(can_take & store),
            ctr.step.eq(fire),
            flush.eq((fire & pend_valid & ~merge) | (steps_done & pend_valid & flush_ok)),
        ]
        with m.If(fire & ctr.last[n - 1]):
            m.d.sync += steps_done.eq(1)

        with m.If(fire):
            m.d.sync += [pend_last.eq(vaddr), pend_end.eq(slot)]
            with m.If(merge):
                m.d.sync += pend_mask.eq(pend_mask | slot_mask)
            with m.Else():
                m.d.sync += [pend_valid.eq(1), pend_line.eq(phys), pend_first.eq(slot),
                             pend_mask.eq(slot_mask)]
            with m.If(store):
                for s in range(vpl):
                    with m.If(slot == s):
                        m.d.sync += pend_data[s * vbits:(s + 1) * vbits].eq(self.vin.payload)
        with m.Elif(flush):
            m.d.sync += pend_valid.eq(0)

        req = self.mem.req
        m.d.comb += [req.valid.eq(req_valid), req.payload.addr.eq(req_addr), req.payload.write.eq(store),
                     req.payload.mask.eq(req_mask), req.payload.data.eq(req_data)]
        with m.If(flush):
            m.d.sync += [req_valid.eq(1), req_addr.eq(pend_line), req_data.eq(pend_data),
                         req_mask.eq(pend_mask | ~store.replicate(LINE_WORDS))]
        with m.Elif(req.ready):
            m.d.sync += req_valid.eq(0)
        with m.If(req.valid & req.ready):
            m.d.sync += self.requests.eq(self.requests + 1)

        # ------------------------------------------------------------- load return path
        lines = StreamFifo(_LINE_BITS, p.outstanding)
        desc_layout = data.StructLayout({"first": slot_width, "last": slot_width})
        descs = StreamFifo(desc_layout, p.outstanding)
        # emptied by their clear (pointers only, so the line buffer still maps to RAM)
        m.submodules.lines = lines
        m.submodules.descriptors = descs
        m.d.comb += [lines.clear.eq(self.abort_run), descs.clear.eq(self.abort_run)]
        resp = self.mem.resp
        dropping = Signal()      # responses to an aborted run's requests
        m.d.comb += dropping.eq(self.abort_run | (state == _DRAIN))
        m.d.comb += [resp.ready.eq(1),
                     lines.i.valid.eq(resp.valid & ~store & ~dropping), lines.i.payload.eq(resp.payload.data),
                     descs.i.valid.eq(flush & ~store), descs.i.payload.first.eq(pend_first),
                     descs.i.payload.last.eq(pend_end)]
        out_started = Signal()
        out_slot = Signal(slot_width)
        cur_slot = Signal(slot_width)
        m.d.comb += cur_slot.eq(descs.o.payload.first)
        with m.If(out_started):
            m.d.comb += cur_slot.eq(out_slot)
        line = lines.o.payload
        m.d.comb += [
            self.vout.valid.eq(lines.o.valid & descs.o.valid),
            self.vout.payload.eq(_or_all([line[s * vbits:(s + 1) * vbits] & (cur_slot == s).replicate(vbits)
                                          for s in range(vpl)])),
        ]
        sent = self.vout.valid & self.vout.ready
        pop = Signal()
        m.d.comb += [pop.eq(sent & (cur_slot == descs.o.payload.last)),
                     lines.o.ready.eq(pop), descs.o.ready.eq(pop)]
        with m.If(pop):
            m.d.sync += out_started.eq(0)
        with m.Elif(sent):
            m.d.sync += [out_started.eq(1), out_slot.eq(cur_slot + 1)]

        release = Signal()
        m.d.comb += release.eq(pop | (resp.valid & store))
        m.d.sync += held.eq(held + flush - release)
        # requests the memory has taken and not answered yet: after an abort their responses
        # still come, and DRAIN drops them
        inflight = Signal(range(p.outstanding + 1))
        m.d.sync += inflight.eq(inflight + (req.valid & req.ready) - resp.valid)

        # ------------------------------------------------------------- control
        m.d.sync += self.done.eq(0)
        with m.If(loaded | (self.cfg_clear & idle)):
            m.d.sync += self.fault.eq(0)
        with m.If(state == _IDLE):
            with m.If(loaded):
                m.d.sync += [state.eq(_PREP), prep_count.eq(cw)]
            with m.Elif(begin):
                m.d.sync += scalar.eq(0)
                with m.If(cfg.base_from_scalar):
                    m.d.sync += state.eq(_ARG)
                with m.Else():
                    m.d.sync += state.eq(_SUM)
        with m.Elif(state == _PREP):
            m.d.sync += prep_count.eq(prep_count - 1)
            with m.If(prep_count <= 1):
                m.d.sync += state.eq(_IDLE)
        with m.Elif(state == _ARG):
            with m.If(self.sin.valid):
                m.d.sync += [scalar.eq(self.sin.payload), state.eq(_SUM)]
        with m.Elif(state == _SUM):
            offset = cfg.offset + scalar
            m.d.sync += [base_off.eq(offset), lo.eq(offset + sum(starts)), hi.eq(offset + sum(lasts)),
                         run_hang.eq(Cat(*hangs).any()), run_ok.eq(0), state.eq(_CHECK)]
            for i in range(p.segments):
                with m.If(cfg.segment == i):
                    m.d.sync += [run_base.eq(seg_base[i]), run_bound.eq(seg_bound[i]),
                                 run_ok.eq(Mux(store, seg_write[i], seg_read[i]))]
        with m.Elif(state == _CHECK):
            with m.If(~run_ok | run_hang):
                m.d.sync += [self.fault.eq(1), self.fault_addr.eq(lo), self.done.eq(1), state.eq(_IDLE)]
            with m.Elif(hi[slot_bits:] >= run_bound):
                m.d.sync += [self.fault.eq(1), self.fault_addr.eq(hi), self.done.eq(1), state.eq(_IDLE)]
            with m.Else():
                m.d.comb += ctr.start.eq(1)
                m.d.sync += state.eq(_RUN)
        with m.Elif(state == _RUN):
            with m.If(steps_done & ~pend_valid & (held == 0)):
                m.d.sync += [self.done.eq(1), steps_done.eq(0), state.eq(_IDLE)]
        with m.Elif(state == _DRAIN):
            with m.If(inflight == 0):
                m.d.sync += state.eq(_IDLE)

        # ------------------------------------------------------------- abort (overrides the above)
        with m.If(self.abort_run):
            answer_due = (inflight != 0) | (req.valid & req.ready)
            m.d.sync += [state.eq(Mux(answer_due, _DRAIN, _IDLE)), self.done.eq(0), self.fault.eq(0),
                         pending_starts.eq(0), steps_done.eq(0), pend_valid.eq(0), req_valid.eq(0),
                         out_started.eq(0), held.eq(0)]
        return m
