"""One DRAM channel controller: request queue, FR-FCFS scheduler, bank state, refresh, ECC.

Dataflow of :class:`MemoryController` (one clock: the DRAM command clock, tCK)::

    port.req ─▶ queue slots (address, kind, dependency) ──▶ scheduler ──▶ dfi.cmd / address
              └▶ write-data memory (ECC-encoded) ─────────────▶ write-burst engine ─▶ dfi.wrdata
    dfi.rddata ─▶ read-data memory ─▶ in-order retire ─▶ ECC decode ─▶ response FIFO ─▶ port.resp

Queue
    ``queue_depth`` slots in a circular buffer; requests enter at the tail and retire,
    with their response, strictly in request order from the head. Between the two the
    scheduler may serve them in any order. A request to the same line as an older one
    still waiting for its column command records that slot as its *dependency* and
    waits for it, so a read always sees the last write before it (and writes to one
    line land in order).

Scheduler (one command per cycle, decided from registered state, issued the next cycle)
    1. Refresh, when due (every tREFI): stop opening rows, close every bank with PREA
       as soon as each bank's tRAS/tRTP/tWR allows, then REF once tRP has passed;
       rows open again tRFC later.
    2. Otherwise FR-FCFS: the oldest request whose row is open (*first ready*) and
       whose column command meets tRCD, tCCD_S/L, tWTR_S/L (reads) or the read-to-
       write turnaround (writes) gets RD or WR.
    3. Otherwise, first come first served: the oldest request that misses and whose
       row command is allowed gets ACT (bank closed; tRP, tRFC, tRRD_S/L, tFAW) or PRE
       (another row open; tRAS, tRTP, tWR, and no waiting request hits that row).
    Timing is kept in down-counters per bank, per bank group and per channel, loaded
    with ``constraint − 1`` when a command is decided; a command is allowed when its
    counters are zero. Open-page policy: rows stay open until a miss or a refresh.

Data
    A WR decided in cycle *c* is on the bus in *c + 1*; its beats follow *CWL* cycles
    later from the write-data memory. RD data returns *CL* cycles after the RD and is
    written beat by beat into the read-data memory; the slot is then complete.

Latency (unloaded, measured from the cycle a request is offered on ``port.req``):
    row miss: ``FRONTEND_CYCLES + RCD + CL + burst_cycles``; row hit:
    ``FRONTEND_CYCLES + CL + burst_cycles``; :data:`FRONTEND_CYCLES` is the queue entry,
    the command register and the response path.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from .interface import (
    LINE_WORDS,
    Command,
    DfiSignature,
    MemoryPortSignature,
    address_fields,
    beat_bits,
    response_layout,
    stored_word_bits,
    words_per_beat,
)
from .timing import timing_preset

__all__ = ["MemoryController", "FRONTEND_CYCLES"]

#: Cycles a request spends outside the DRAM's own timing on an idle channel:
#: request → slot (1), scheduler decision → command register (1), read data → retire
#: (1), retire → decoded response in the FIFO (1), FIFO output register (1).
FRONTEND_CYCLES = 5

_RESPONSE_FIFO_DEPTH = 4


def _dec(m, sig):
    """Saturating decrement of a down-counter (default next value)."""
    m.d.sync += sig.eq(Mux(sig == 0, 0, sig - 1))


def _load(m, sig, value):
    """Load a down-counter with ``max(sig − 1, value)`` (the later of two deadlines)."""
    value = int(value)
    m.d.sync += sig.eq(Mux(sig > value + 1, sig - 1, value))


def _and_or(pairs, width):
    """One-hot multiplexer as an expression: OR of ``value`` where ``select`` is high."""
    out = Const(0, width)
    for select, value in pairs:
        out = out | Mux(select, value, 0)  # not value & select.replicate(): one wire per bit in Verilog
    return out


def _counter_bits(value: int) -> int:
    """Width of a down-counter loaded with at most ``value - 1`` (one spare bit keeps
    :func:`_load`'s comparison with ``value + 1`` meaningful)."""
    return max(1, int(value).bit_length()) + 1


class MemoryController(wiring.Component):
    """One DRAM channel controller (see the module docstring).

    Parameters
    ----------
    timing : DramTiming or str
        Timing preset (``"HBM2-2000"`` …) or a reduced copy.
    ecc : bool
        Store SECDED check bits with every 64-bit word; correct single-bit and
        report double-bit errors on reads.
    queue_depth : int
        Request slots (power of two, 2..64).

    Attributes
    ----------
    port : In(MemoryPortSignature(addr_bits))
        User port: ``port.req`` requests in, ``port.resp`` responses out, in request order
        (:mod:`hdl.memctrl.interface`). ``addr_bits`` = ``timing.line_address_bits``.
    dfi : Out(DfiSignature(timing, ecc))
        Command and data bus to the DRAM device.
    busy : Out(1)
        A request is queued or in flight.
    refreshes : Out(32)
        REF commands issued.
    ecc_corrected : Out(32)
        Words corrected (single-bit errors) in read responses.
    ecc_uncorrectable : Out(32)
        Words with a detected double-bit error in read responses.
    """

    def __init__(self, timing, *, ecc: bool = False, queue_depth: int = 32):
        timing = timing_preset(timing)
        if not isinstance(ecc, bool):
            raise TypeError(f"ecc must be a bool, got {type(ecc).__name__}")
        if isinstance(queue_depth, bool) or not isinstance(queue_depth, int):
            raise TypeError(f"queue_depth must be an int, got {type(queue_depth).__name__}")
        if not 2 <= queue_depth <= 64 or queue_depth & (queue_depth - 1):
            raise ValueError(f"queue_depth must be a power of two in [2, 64], got {queue_depth}")
        if timing.CWL < 2:
            raise ValueError(f"{timing.name}: the write-burst engine needs CWL >= 2, got {timing.CWL}")
        self.timing = timing
        self.ecc = ecc
        self.queue_depth = queue_depth
        self.addr_bits = timing.line_address_bits
        super().__init__({
            "port": In(MemoryPortSignature(self.addr_bits)),
            "dfi": Out(DfiSignature(timing, ecc)),
            "busy": Out(1),
            "refreshes": Out(32),
            "ecc_corrected": Out(32),
            "ecc_uncorrectable": Out(32),
        })

    def elaborate(self, platform):
        t = self.timing
        m = Module()
        Q = self.queue_depth
        qbits = max(1, (Q - 1).bit_length())
        BG, BPG = t.bank_groups, t.banks_per_group
        NB = BG * BPG
        fields = address_fields(t)
        bg_used = (BG - 1).bit_length()
        col_used = (t.row_lines - 1).bit_length()
        bank_used = (BPG - 1).bit_length()
        row_used = (t.rows - 1).bit_length()
        sw = stored_word_bits(self.ecc)
        line_stored = LINE_WORDS * sw
        burst = t.burst_cycles
        wpb = words_per_beat(t)
        beat = beat_bits(t, self.ecc)

        req = self.port.req
        resp = self.port.resp

        # ---------------------------------------------------------------- queue slots
        s_valid = [Signal(name=f"s{i}_valid") for i in range(Q)]
        s_write = [Signal(name=f"s{i}_write") for i in range(Q)]
        s_issued = [Signal(name=f"s{i}_issued") for i in range(Q)]   # column command decided
        s_done = [Signal(name=f"s{i}_done") for i in range(Q)]       # data complete
        s_bg = [Signal(fields["bg"], name=f"s{i}_bg") for i in range(Q)]
        s_bank = [Signal(fields["bank"], name=f"s{i}_bank") for i in range(Q)]
        s_row = [Signal(fields["row"], name=f"s{i}_row") for i in range(Q)]
        s_col = [Signal(fields["col"], name=f"s{i}_col") for i in range(Q)]
        s_addr = [Signal(self.addr_bits, name=f"s{i}_addr") for i in range(Q)]
        s_dep = [Signal(name=f"s{i}_dep") for i in range(Q)]         # waits for slot s_dep_slot
        s_dep_slot = [Signal(qbits, name=f"s{i}_dep_slot") for i in range(Q)]

        head = Signal(qbits)
        tail = Signal(qbits)
        count = Signal(range(Q + 1))

        def flat_bank(i):
            return Cat(s_bg[i][:max(bg_used, 1)] if bg_used else Const(0, 0),
                       s_bank[i][:bank_used] if bank_used else Const(0, 0))

        fb = []
        for i in range(Q):
            v = Signal(max(1, (NB - 1).bit_length()), name=f"s{i}_fb")
            m.d.comb += v.eq(flat_bank(i)) if NB > 1 else v.eq(0)
            fb.append(v)

        # ---------------------------------------------------------------- bank state
        b_open = [Signal(name=f"b{b}_open") for b in range(NB)]
        b_row = [Signal(fields["row"], name=f"b{b}_row") for b in range(NB)]
        act_wait = [Signal(_counter_bits(max(t.RP, t.RFC)), name=f"b{b}_act_wait") for b in range(NB)]
        col_wait = [Signal(_counter_bits(t.RCD), name=f"b{b}_col_wait") for b in range(NB)]
        pre_wait = [Signal(_counter_bits(max(t.RAS, t.RTP, t.write_to_precharge)), name=f"b{b}_pre_wait")
                    for b in range(NB)]
        for sigs in (act_wait, col_wait, pre_wait):
            for s in sigs:
                _dec(m, s)

        rrd_s = Signal(_counter_bits(t.RRD_S))
        rrd_l = [Signal(_counter_bits(t.RRD_L), name=f"g{g}_rrd_l") for g in range(BG)]
        faw = [Signal(_counter_bits(t.FAW), name=f"faw{k}") for k in range(4)]
        rd_wait_s = Signal(_counter_bits(max(t.ccd_s, t.write_to_read_s)))
        rd_wait_l = [Signal(_counter_bits(max(t.ccd_l, t.write_to_read_l)), name=f"g{g}_rd_wait")
                     for g in range(BG)]
        wr_wait_s = Signal(_counter_bits(max(t.ccd_s, t.read_to_write)))
        wr_wait_l = [Signal(_counter_bits(t.ccd_l), name=f"g{g}_wr_wait") for g in range(BG)]
        for s in (rrd_s, rd_wait_s, wr_wait_s, *rrd_l, *faw, *rd_wait_l, *wr_wait_l):
            _dec(m, s)

        # refresh
        refi = Signal(_counter_bits(t.REFI), init=t.REFI - 1)
        ref_pending = Signal()
        m.d.sync += refi.eq(Mux(refi == 0, t.REFI - 1, refi - 1))
        with m.If(refi == 0):
            m.d.sync += ref_pending.eq(1)

        # ---------------------------------------------------------------- memories
        wmem = m.submodules.wdata = memory.Memory(shape=line_stored + LINE_WORDS, depth=Q, init=[])
        wmem_w = wmem.write_port()
        wmem_r = wmem.read_port()
        rmem = m.submodules.rdata = memory.Memory(shape=line_stored, depth=Q, init=[])
        rmem_w = rmem.write_port(granularity=beat)
        rmem_r = rmem.read_port()

        # ---------------------------------------------------------------- enqueue
        enq = Signal()
        m.d.comb += [req.ready.eq(count < Q), enq.eq(req.valid & req.ready)]
        p = req.payload
        if self.ecc:
            from .ecc import SecdedEncoder
            enc = m.submodules.ecc_encoder = SecdedEncoder(LINE_WORDS)
            m.d.comb += enc.data.eq(p.data)
            stored_data = enc.stored
        else:
            stored_data = p.data
        m.d.comb += [wmem_w.addr.eq(tail), wmem_w.data.eq(Cat(stored_data, p.mask)),
                     wmem_w.en.eq(enq & p.write)]

        a_bg = p.addr[:bg_used] if bg_used else Const(0, 1)
        a_col = p.addr[bg_used:bg_used + col_used] if col_used else Const(0, 1)
        a_bank = p.addr[bg_used + col_used:bg_used + col_used + bank_used] if bank_used else Const(0, 1)
        a_row = p.addr[bg_used + col_used + bank_used:bg_used + col_used + bank_used + row_used]

        # youngest older slot to the same line still waiting for its column command; a slot
        # whose column command goes out this very cycle no longer counts (its s_issued rises
        # with the new slot's s_dep, so nothing would ever clear the dependency)
        issue_col = Signal()
        issue_slot = Signal(qbits)
        match = Signal(Q)
        for i in range(Q):
            m.d.comb += match[i].eq(s_valid[i] & ~s_issued[i] & (s_addr[i] == p.addr)
                                    & ~(issue_col & (issue_slot == i)))
        # age of slot i = (i - head) mod Q; pick the largest age among matches
        dep_found = Signal()
        dep_slot = Signal(qbits)
        rot = Signal(Q)
        m.d.comb += rot.eq(Cat(match, match).bit_select(head, Q))   # bit k = slot head+k
        youngest = Const(0, qbits)
        for k in range(Q):                       # highest k (youngest) wins: outermost Mux
            youngest = Mux(rot[k], k, youngest)
        m.d.comb += [dep_found.eq(rot != 0), dep_slot.eq((head + youngest)[:qbits])]

        # ---------------------------------------------------------------- slot view of banks
        def by_bank(vectors, i):
            """The bank-indexed boolean ``vectors`` (list of NB signals) for slot i."""
            vec = Cat(*vectors)
            return vec.bit_select(fb[i], 1) if NB > 1 else vec[0]

        act_ok_b = [Signal(name=f"b{b}_act_ok") for b in range(NB)]
        col_ok_b = [Signal(name=f"b{b}_col_ok") for b in range(NB)]
        pre_ok_b = [Signal(name=f"b{b}_pre_ok") for b in range(NB)]
        faw_ok = Signal()
        m.d.comb += faw_ok.eq(Cat(*[f == 0 for f in faw]) != 0)   # a tFAW window slot is free
        for b in range(NB):
            g = b % BG
            m.d.comb += [
                act_ok_b[b].eq(~b_open[b] & (act_wait[b] == 0) & (rrd_s == 0) & (rrd_l[g] == 0) & faw_ok
                               & ~ref_pending),
                col_ok_b[b].eq(b_open[b] & (col_wait[b] == 0) & ~ref_pending),
                pre_ok_b[b].eq(b_open[b] & (pre_wait[b] == 0) & ~ref_pending),
            ]
        rd_ok_g = [Signal(name=f"g{g}_rd_ok") for g in range(BG)]
        wr_ok_g = [Signal(name=f"g{g}_wr_ok") for g in range(BG)]
        for g in range(BG):
            m.d.comb += [rd_ok_g[g].eq((rd_wait_s == 0) & (rd_wait_l[g] == 0)),
                         wr_ok_g[g].eq((wr_wait_s == 0) & (wr_wait_l[g] == 0))]

        pend = [Signal(name=f"s{i}_pend") for i in range(Q)]
        hit = [Signal(name=f"s{i}_hit") for i in range(Q)]
        for i in range(Q):
            row_of_bank = Signal(fields["row"], name=f"s{i}_bank_row")
            m.d.comb += row_of_bank.eq(_and_or([(fb[i] == b, b_row[b]) for b in range(NB)], fields["row"]))
            m.d.comb += [pend[i].eq(s_valid[i] & ~s_issued[i]),
                         hit[i].eq(pend[i] & by_bank(b_open, i) & (row_of_bank == s_row[i]))]

        # a bank keeps its row open while a waiting request hits it
        bank_hit = [Signal(name=f"b{b}_has_hit") for b in range(NB)]
        for b in range(NB):
            m.d.comb += bank_hit[b].eq(Cat(*[hit[i] & (fb[i] == b) for i in range(Q)]) != 0)

        col_cand = Signal(Q)
        row_cand = Signal(Q)
        for i in range(Q):
            g_rd = Cat(*rd_ok_g).bit_select(s_bg[i][:bg_used], 1) if BG > 1 else rd_ok_g[0]
            g_wr = Cat(*wr_ok_g).bit_select(s_bg[i][:bg_used], 1) if BG > 1 else wr_ok_g[0]
            m.d.comb += [
                col_cand[i].eq(hit[i] & ~s_dep[i] & by_bank(col_ok_b, i) & Mux(s_write[i], g_wr, g_rd)),
                row_cand[i].eq(pend[i] & ~hit[i] & Mux(by_bank(b_open, i),
                                                       by_bank(pre_ok_b, i) & ~by_bank(bank_hit, i),
                                                       by_bank(act_ok_b, i))),
            ]

        def oldest(cand, name):
            """(found, slot) of the oldest candidate: rotate so the head is bit 0, lowest wins."""
            r = Signal(Q, name=f"{name}_rot")
            found = Signal(name=f"{name}_found")
            slot = Signal(qbits, name=f"{name}_slot")
            m.d.comb += [r.eq(Cat(cand, cand).bit_select(head, Q)), found.eq(r != 0)]
            lowest = Const(Q - 1, qbits)
            for k in reversed(range(Q)):            # lowest k wins: outermost Mux
                lowest = Mux(r[k], k, lowest)
            m.d.comb += slot.eq((head + lowest)[:qbits])
            return found, slot

        col_found, col_slot = oldest(col_cand, "col")
        row_found, row_slot = oldest(row_cand, "row")

        def slot_field(sigs, slot, width):
            out = Signal(width)
            m.d.comb += out.eq(_and_or([(slot == i, sigs[i]) for i in range(Q)], width))
            return out

        c_bg = slot_field(s_bg, col_slot, fields["bg"])
        c_bank = slot_field(s_bank, col_slot, fields["bank"])
        c_col = slot_field(s_col, col_slot, fields["col"])
        c_write = slot_field(s_write, col_slot, 1)
        c_fb = slot_field(fb, col_slot, len(fb[0]))
        r_bg = slot_field(s_bg, row_slot, fields["bg"])
        r_bank = slot_field(s_bank, row_slot, fields["bank"])
        r_row = slot_field(s_row, row_slot, fields["row"])
        r_fb = slot_field(fb, row_slot, len(fb[0]))
        r_open = Signal()
        m.d.comb += r_open.eq(Cat(*b_open).bit_select(r_fb, 1) if NB > 1 else b_open[0])

        # refresh sequencing
        any_open = Signal()
        all_pre_ok = Signal()
        all_act_ok = Signal()
        m.d.comb += [any_open.eq(Cat(*b_open) != 0),
                     all_pre_ok.eq(Cat(*[~b_open[b] | (pre_wait[b] == 0) for b in range(NB)]).all()),
                     all_act_ok.eq(Cat(*[act_wait[b] == 0 for b in range(NB)]).all())]

        # ---------------------------------------------------------------- command decision
        cmd = Signal(3)
        cmd_bg = Signal(fields["bg"])
        cmd_bank = Signal(fields["bank"])
        cmd_row = Signal(fields["row"])
        cmd_col = Signal(fields["col"])
        m.d.sync += [self.dfi.cmd.eq(cmd), self.dfi.bg.eq(cmd_bg), self.dfi.bank.eq(cmd_bank),
                     self.dfi.row.eq(cmd_row), self.dfi.col.eq(cmd_col)]

        rd_push = Signal()
        wr_push = Signal()
        do_prea, do_ref, do_row = Signal(), Signal(), Signal()
        # (continuous expressions, not processes: Icarus leaves an always @* block that no
        # input change has woken at X)
        m.d.comb += [
            do_prea.eq(ref_pending & any_open & all_pre_ok),
            do_ref.eq(ref_pending & ~any_open & all_act_ok),
            issue_col.eq(~ref_pending & col_found),
            do_row.eq(~ref_pending & ~col_found & row_found),
            issue_slot.eq(col_slot),
            cmd.eq(Mux(do_prea, Command.PREA, Mux(do_ref, Command.REF, Mux(
                issue_col, Mux(c_write, Command.WR, Command.RD),
                Mux(do_row, Mux(r_open, Command.PRE, Command.ACT), Command.NOP))))),
            cmd_bg.eq(Mux(issue_col, c_bg, Mux(do_row, r_bg, 0))),
            cmd_bank.eq(Mux(issue_col, c_bank, Mux(do_row, r_bank, 0))),
            cmd_row.eq(Mux(do_row, r_row, 0)),
            cmd_col.eq(Mux(issue_col, c_col, 0)),
            rd_push.eq(issue_col & ~c_write),
            wr_push.eq(issue_col & c_write),
        ]

        # the first idle tFAW window timer (claimed by an ACT)
        claimed = Signal(4)
        for k in range(4):
            earlier_busy = Cat(*[faw[j] != 0 for j in range(k)]).all() if k else Const(1)
            m.d.comb += claimed[k].eq((faw[k] == 0) & earlier_busy)

        # timing bookkeeping for the decided command
        with m.If(cmd == Command.ACT):
            for b in range(NB):
                with m.If(r_fb == b):
                    m.d.sync += [b_open[b].eq(1), b_row[b].eq(r_row)]
                    _load(m, col_wait[b], t.RCD - 1)
                    _load(m, pre_wait[b], t.RAS - 1)
            _load(m, rrd_s, t.RRD_S - 1)
            for g in range(BG):
                with m.If(r_bg[:bg_used] == g if bg_used else Const(1)):
                    _load(m, rrd_l[g], t.RRD_L - 1)
            for k in range(4):
                with m.If(claimed[k]):
                    m.d.sync += faw[k].eq(t.FAW - 1)
        with m.If(cmd == Command.PRE):
            for b in range(NB):
                with m.If(r_fb == b):
                    m.d.sync += b_open[b].eq(0)
                    _load(m, act_wait[b], t.RP - 1)
        with m.If(cmd == Command.PREA):
            for b in range(NB):
                m.d.sync += b_open[b].eq(0)
                _load(m, act_wait[b], t.RP - 1)
        with m.If(cmd == Command.REF):
            m.d.sync += [ref_pending.eq(0), self.refreshes.eq(self.refreshes + 1)]
            for b in range(NB):
                _load(m, act_wait[b], t.RFC - 1)
        with m.If(cmd == Command.RD):
            for b in range(NB):
                with m.If(c_fb == b):
                    _load(m, pre_wait[b], t.RTP - 1)
            _load(m, rd_wait_s, t.ccd_s - 1)
            _load(m, wr_wait_s, t.read_to_write - 1)
            for g in range(BG):
                with m.If(c_bg[:bg_used] == g if bg_used else Const(1)):
                    _load(m, rd_wait_l[g], t.ccd_l - 1)
        with m.If(cmd == Command.WR):
            for b in range(NB):
                with m.If(c_fb == b):
                    _load(m, pre_wait[b], t.write_to_precharge - 1)
            _load(m, wr_wait_s, t.ccd_s - 1)
            _load(m, rd_wait_s, t.write_to_read_s - 1)
            for g in range(BG):
                with m.If(c_bg[:bg_used] == g if bg_used else Const(1)):
                    _load(m, wr_wait_l[g], t.ccd_l - 1)
                    _load(m, rd_wait_l[g], t.write_to_read_l - 1)

        # ---------------------------------------------------------------- write bursts
        # delay line: the slot of a WR decided in cycle c reaches stage CWL-1 in cycle c+CWL-1,
        # when its line is read from the write-data memory; beats go out from cycle c+CWL+1.
        wl = t.CWL - 1
        dl_valid = [Signal(name=f"wdl{k}_valid") for k in range(wl + 1)]
        dl_slot = [Signal(qbits, name=f"wdl{k}_slot") for k in range(wl + 1)]
        m.d.comb += [dl_valid[0].eq(wr_push), dl_slot[0].eq(issue_slot)]
        for k in range(1, wl + 1):
            m.d.sync += [dl_valid[k].eq(dl_valid[k - 1]), dl_slot[k].eq(dl_slot[k - 1])]
        m.d.comb += wmem_r.addr.eq(dl_slot[wl])
        burst_load = Signal()
        m.d.sync += burst_load.eq(dl_valid[wl])
        w_line = Signal(line_stored)
        w_mask = Signal(LINE_WORDS)
        w_beats = Signal(range(burst + 1))
        with m.If(burst_load):
            m.d.sync += [self.dfi.wrdata_en.eq(1), self.dfi.wrdata.eq(wmem_r.data[:beat]),
                         self.dfi.wrdata_mask.eq(wmem_r.data[line_stored:line_stored + wpb]),
                         w_line.eq(wmem_r.data[:line_stored] >> beat),
                         w_mask.eq(wmem_r.data[line_stored:] >> wpb), w_beats.eq(burst - 1)]
        with m.Elif(w_beats != 0):
            m.d.sync += [self.dfi.wrdata_en.eq(1), self.dfi.wrdata.eq(w_line[:beat]),
                         self.dfi.wrdata_mask.eq(w_mask[:wpb]), w_line.eq(w_line >> beat),
                         w_mask.eq(w_mask >> wpb), w_beats.eq(w_beats - 1)]
        with m.Else():
            m.d.sync += [self.dfi.wrdata_en.eq(0), self.dfi.wrdata_mask.eq(0)]
        # the write is complete once its data has left the write-data memory
        wr_complete = Signal()
        wr_complete_slot = Signal(qbits)
        m.d.comb += [wr_complete.eq(dl_valid[wl]), wr_complete_slot.eq(dl_slot[wl])]

        # ---------------------------------------------------------------- read returns
        rdq = m.submodules.read_order = fifo.SyncFIFO(width=qbits, depth=Q)
        m.d.comb += [rdq.w_en.eq(rd_push), rdq.w_data.eq(issue_slot)]
        r_beat = Signal(range(max(burst, 2)))
        rd_complete = Signal()
        m.d.comb += [rmem_w.addr.eq(rdq.r_data), rmem_w.data.eq(Cat(*([self.dfi.rddata] * burst)))]
        m.d.comb += [rmem_w.en.eq(Cat(*[self.dfi.rddata_valid & (r_beat == k) for k in range(burst)])),
                     rd_complete.eq(self.dfi.rddata_valid & (r_beat == burst - 1)),
                     rdq.r_en.eq(rd_complete)]
        with m.If(self.dfi.rddata_valid):
            m.d.sync += r_beat.eq(Mux(r_beat == burst - 1, 0, r_beat + 1))

        # ---------------------------------------------------------------- retire in order
        out_fifo = m.submodules.responses = fifo.SyncFIFOBuffered(width=len(resp.payload.as_value()),
                                                                   depth=_RESPONSE_FIFO_DEPTH)
        in_flight = Signal()                    # a retired slot is in the decode stage
        in_flight_write = Signal()
        head_done = Signal()
        head_write = Signal()
        m.d.comb += [head_done.eq(slot_field(s_done, head, 1) & slot_field(s_valid, head, 1)),
                     head_write.eq(slot_field(s_write, head, 1))]
        retire = Signal()
        m.d.comb += [retire.eq(head_done & (out_fifo.level + in_flight < _RESPONSE_FIFO_DEPTH - 1)),
                     rmem_r.addr.eq(head)]
        m.d.sync += [in_flight.eq(retire), in_flight_write.eq(head_write)]

        rl = response_layout()
        resp_word = Signal(rl)
        if self.ecc:
            from .ecc import SecdedDecoder
            dec = m.submodules.ecc_decoder = SecdedDecoder(LINE_WORDS)
            m.d.comb += dec.stored.eq(rmem_r.data)
            r_data, r_corr, r_unc = dec.data, dec.corrected, dec.uncorrectable
        else:
            r_data, r_corr, r_unc = rmem_r.data, Const(0, LINE_WORDS), Const(0, LINE_WORDS)
        m.d.comb += [resp_word.data.eq(Mux(in_flight_write, 0, r_data)), resp_word.write.eq(in_flight_write),
                     resp_word.corrected.eq(~in_flight_write & (r_corr != 0)),
                     resp_word.uncorrectable.eq(~in_flight_write & (r_unc != 0)),
                     out_fifo.w_en.eq(in_flight), out_fifo.w_data.eq(resp_word)]
        with m.If(in_flight & ~in_flight_write):
            pop_c = sum((r_corr[k] for k in range(LINE_WORDS)), Const(0, 4))
            pop_u = sum((r_unc[k] for k in range(LINE_WORDS)), Const(0, 4))
            m.d.sync += [self.ecc_corrected.eq(self.ecc_corrected + pop_c),
                         self.ecc_uncorrectable.eq(self.ecc_uncorrectable + pop_u)]
        m.d.comb += [resp.valid.eq(out_fifo.r_rdy), resp.payload.eq(out_fifo.r_data),
                     out_fifo.r_en.eq(resp.ready)]

        # ---------------------------------------------------------------- slot updates
        for i in range(Q):
            with m.If(enq & (tail == i)):
                m.d.sync += [s_valid[i].eq(1), s_write[i].eq(p.write), s_issued[i].eq(0), s_done[i].eq(0),
                             s_bg[i].eq(a_bg), s_bank[i].eq(a_bank), s_row[i].eq(a_row), s_col[i].eq(a_col),
                             s_addr[i].eq(p.addr), s_dep[i].eq(dep_found), s_dep_slot[i].eq(dep_slot)]
            with m.If(retire & (head == i)):
                m.d.sync += s_valid[i].eq(0)
            with m.If(issue_col & (issue_slot == i)):
                m.d.sync += s_issued[i].eq(1)
            with m.If(issue_col & s_dep[i] & (s_dep_slot[i] == issue_slot)):
                m.d.sync += s_dep[i].eq(0)
            with m.If((wr_complete & (wr_complete_slot == i)) | (rd_complete & (rdq.r_data == i))):
                m.d.sync += s_done[i].eq(1)
        with m.If(enq):
            m.d.sync += tail.eq(tail + 1)
        with m.If(retire):
            m.d.sync += head.eq(head + 1)
        m.d.sync += count.eq(count + enq - retire)
        m.d.comb += self.busy.eq((count != 0) | in_flight | out_fifo.r_rdy)
        return m
