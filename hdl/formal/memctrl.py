"""Formal harness for the DRAM channel controller: no command before its timing allows.

The controller (:class:`hdl.memctrl.MemoryController`) is checked alone, with a reduced
organisation and small timings (:func:`formal_timing`) so that every constraint matters
within a few dozen cycles. The solver drives the user port (any requests, by the stream
rules; any response back-pressure); the device returns read data ``CL`` cycles after
each RD, one beat per cycle. Data words (request data, ``rddata``) stay 0: no data bit
steers the scheduler, and constant data keeps the solver's problem small.

An independent monitor watches only the DFI command bus (``dfi.cmd``, ``bg``, ``bank``)
and keeps its own cycle counters — it does not look at the controller's down-counters.
For "B at least t after A" it asserts ``cycle(B) - cycle(A) >= t`` as seen on the bus:

* ``tRCD``: ACT → RD/WR of that bank; ``tRAS``: ACT → PRE (or PREA) of that bank;
* ``tRP``: PRE/PREA → ACT of that bank, and any PRE/PREA → REF;
* ``tRRD_S`` / ``tRRD_L``: ACT → ACT (any bank / same bank group); ``tFAW``: at most
  four ACTs in any ``FAW`` cycles;
* ``tCCD_S`` / ``tCCD_L``: RD → RD and WR → WR; RD → WR turnaround ``CL + burst + 2 - CWL``;
* ``tWTR_S`` / ``tWTR_L``: WR → RD, counted as ``CWL + burst + WTR`` (from the WR command,
  so the write data has left the bus ``WTR`` cycles before the RD);
* ``tRTP``: RD → PRE; ``tWR``: WR → PRE, counted as ``CWL + burst + WR``;
* ``tRFC``: REF → ACT and REF → REF;
* state: ACT only to a closed bank, RD/WR only to an open one, REF only with every bank
  closed;
* ``tREFI``: a REF at most ``REFI + refresh_slack`` cycles after the previous one (or
  reset) — the controller postpones no refresh, so the slack is the time to close the
  banks (``max(RAS, RTP, CWL + burst + WR) + RP``) plus its pipeline;
* write data: ``wrdata_en`` is high exactly ``CWL`` … ``CWL + burst - 1`` cycles after
  each WR.
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.hdl import Assert, Assume, Cover

from ..memctrl import MemoryController
from ..memctrl.interface import Command
from ..memctrl.timing import DramTiming, timing_preset
from .streams import free, reset_at_start, stream_rules

__all__ = ["DfiTimingHarness", "formal_timing", "refresh_slack"]


def formal_timing() -> DramTiming:
    """HBM2 reduced to 2 bank groups of 1 bank, 4 rows, and timings of a few cycles."""
    return timing_preset("HBM2-2000").reduced(
        bank_groups=2, banks_per_group=1, rows=4, RCD=3, RP=3, RAS=4, RRD_S=2, RRD_L=3, FAW=8, WR=3,
        WTR_S=2, WTR_L=3, RTP=2, CCD_S=1, CCD_L=2, CL=3, CWL=2, RFC=6, REFI=20)


def refresh_timing() -> DramTiming:
    """:func:`formal_timing` with refreshes as frequent as the rules allow (tREFI 6), so that a
    bounded check sees more than one refresh interval."""
    return formal_timing().reduced(RAS=3, RP=2, RFC=3, WR=1, REFI=6)


def refresh_slack(t: DramTiming) -> int:
    """Cycles a REF may come after its tREFI tick: the banks' last PRE constraint, then tRP."""
    return max(t.RAS, t.RTP, t.write_to_precharge) + t.RP


class DfiTimingHarness(Elaboratable):
    """Timing rules on the DFI bus of one controller (see the module docstring).

    Parameters
    ----------
    timing : DramTiming
        The controller's timing (default :func:`formal_timing`).
    queue_depth : int
        Request slots.
    factory : callable
        Builds the controller from ``(timing, queue_depth)`` (a mutant in the tests).
    monitor : DramTiming
        The timing the monitor checks (default: ``timing``; a stricter one models a
        controller that is too eager).
    """

    def __init__(self, timing: DramTiming | None = None, queue_depth: int = 2, factory=None,
                 monitor: DramTiming | None = None, rules=("spacing", "state", "refresh", "data")):
        self.rules = rules
        self.timing = timing or formal_timing()
        self.queue_depth = queue_depth
        self.factory = factory or (lambda t, q: MemoryController(t, queue_depth=q))
        self.monitor = monitor or self.timing

    def elaborate(self, platform):
        m = Module()
        t = self.monitor
        dut = m.submodules.dut = self.factory(self.timing, self.queue_depth)
        started = reset_at_start(m)
        req, resp, dfi = dut.port.req, dut.port.resp, dut.dfi
        # the data words do not steer the controller: they stay 0 (as does ``rddata``)
        free(m, req.valid, req.payload.addr, req.payload.write, req.payload.mask, resp.ready)
        stream_rules(m, req, started, check=Assume, label="req")

        burst = t.burst_cycles
        # the device: read data CL cycles after each RD, one beat per cycle
        history = max(t.CL, t.CWL) + burst + 1
        rd_at = Signal(history)      # bit j: a RD was on the bus j + 1 cycles ago
        wr_at = Signal(history)
        cmd = dfi.cmd
        is_ = {c: Signal(name=f"bus_{c.name}") for c in Command}
        for c, s in is_.items():
            m.d.comb += s.eq(started & (cmd == c))
        m.d.sync += [rd_at.eq((rd_at << 1) | is_[Command.RD]), wr_at.eq((wr_at << 1) | is_[Command.WR])]
        # a RD on the bus in cycle k returns beats in k + CL ... k + CL + burst - 1
        m.d.comb += dfi.rddata_valid.eq(rd_at[t.CL - 1:t.CL - 1 + burst].any())

        groups, per_group = t.bank_groups, t.banks_per_group
        banks = [(g, k) for g in range(groups) for k in range(per_group)]
        act, rd, wr = is_[Command.ACT], is_[Command.RD], is_[Command.WR]
        pre, prea, ref = is_[Command.PRE], is_[Command.PREA], is_[Command.REF]
        sel = {(g, k): Signal(name=f"bus_bank{g}_{k}") for g, k in banks}
        for (g, k), s in sel.items():
            m.d.comb += s.eq((dfi.bg == g) & (dfi.bank == k))
        in_group = {g: Signal(name=f"bus_group{g}") for g in range(groups)}
        for g, s in in_group.items():
            m.d.comb += s.eq(dfi.bg == g)

        saturate = max(t.RCD, t.RAS, t.RP, t.RRD_L, t.RRD_S, t.FAW, t.ccd_l, t.ccd_s, t.read_to_write,
                       t.write_to_read_l, t.write_to_read_s, t.RTP, t.write_to_precharge, t.RFC) + 1

        def since(event, name):
            """Cycles since ``event`` was last on the bus (``saturate`` before the first one)."""
            s = Signal(range(saturate + 1), init=saturate, name=f"since_{name}")
            with m.If(event):
                m.d.sync += s.eq(1)
            with m.Elif(s < saturate):
                m.d.sync += s.eq(s + 1)
            return s

        def rule(cond, name):
            m.d.comb += Assert(cond, name)

        is_open = {b: Signal(name=f"bank{b[0]}_{b[1]}_open") for b in banks}
        act_b = {b: since(act & sel[b], f"act_{b[0]}_{b[1]}") for b in banks}
        pre_b = {b: since((pre & sel[b]) | prea, f"pre_{b[0]}_{b[1]}") for b in banks}
        rd_b = {b: since(rd & sel[b], f"rd_{b[0]}_{b[1]}") for b in banks}
        wr_b = {b: since(wr & sel[b], f"wr_{b[0]}_{b[1]}") for b in banks}
        act_g = {g: since(act & in_group[g], f"act_g{g}") for g in range(groups)}
        rd_g = {g: since(rd & in_group[g], f"rd_g{g}") for g in range(groups)}
        wr_g = {g: since(wr & in_group[g], f"wr_g{g}") for g in range(groups)}
        act_any, rd_any, wr_any = since(act, "act"), since(rd, "rd"), since(wr, "wr")
        pre_any, ref_any = since(pre | prea, "pre"), since(ref, "ref")
        for b in banks:
            with m.If(act & sel[b]):
                m.d.sync += is_open[b].eq(1)
            with m.If((pre & sel[b]) | prea):
                m.d.sync += is_open[b].eq(0)

        # the last four ACTs, oldest last
        window = [Signal(range(saturate + 1), init=saturate, name=f"act_age{k}") for k in range(4)]
        with m.If(act):
            m.d.sync += window[0].eq(1)
            for k in range(1, 4):
                m.d.sync += window[k].eq(window[k - 1] + (window[k - 1] < saturate))
        with m.Else():
            for w in window:
                with m.If(w < saturate):
                    m.d.sync += w.eq(w + 1)

        if "spacing" in self.rules:
            # PREA counts for every bank: a closed bank met its tRAS/tRTP/tWR at the PRE that
            # closed it, so the rules hold for it too (and need no bank state, so they are inductive)
            for b in banks:
                g = b[0]
                with m.If(act & sel[b]):
                    rule(pre_b[b] >= t.RP, "tRP")
                    rule(act_g[g] >= t.RRD_L, "tRRD_L")
                with m.If((rd | wr) & sel[b]):
                    rule(act_b[b] >= t.RCD, "tRCD")
                with m.If((pre & sel[b]) | prea):
                    rule(act_b[b] >= t.RAS, "tRAS")
                    rule(rd_b[b] >= t.RTP, "tRTP")
                    rule(wr_b[b] >= t.write_to_precharge, "tWR")
            with m.If(act):
                rule(act_any >= t.RRD_S, "tRRD_S")
                rule(ref_any >= t.RFC, "tRFC")
                rule(window[3] >= t.FAW, "tFAW")
            for g in range(groups):
                with m.If(rd & in_group[g]):
                    rule(rd_g[g] >= t.ccd_l, "tCCD_L_read")
                    rule(wr_g[g] >= t.write_to_read_l, "tWTR_L")
                with m.If(wr & in_group[g]):
                    rule(wr_g[g] >= t.ccd_l, "tCCD_L_write")
            with m.If(rd):
                rule(rd_any >= t.ccd_s, "tCCD_S_read")
                rule(wr_any >= t.write_to_read_s, "tWTR_S")
            with m.If(wr):
                rule(wr_any >= t.ccd_s, "tCCD_S_write")
                rule(rd_any >= t.read_to_write, "read_to_write_turnaround")
            with m.If(ref):
                rule(pre_any >= t.RP, "tRP_before_REF")
                rule(ref_any >= t.RFC, "tRFC_between_REFs")

        if "state" in self.rules:
            for b in banks:
                with m.If(act & sel[b]):
                    rule(~is_open[b], "ACT_to_closed_bank")
                with m.If((rd | wr | pre) & sel[b]):
                    rule(is_open[b], "RD_WR_PRE_to_open_bank")
            with m.If(ref):
                rule(~Cat(*is_open.values()).any(), "REF_with_every_bank_closed")

        if "refresh" in self.rules:
            # refresh interval, counted from reset or the last REF
            limit = t.REFI + refresh_slack(t)
            since_ref = Signal(range(limit + 2))
            with m.If(ref):
                m.d.sync += since_ref.eq(1)
            with m.Elif(since_ref <= limit):
                m.d.sync += since_ref.eq(since_ref + 1)
            rule(since_ref <= limit, "tREFI")
            m.d.comb += Cover(ref & (since_ref >= t.REFI), "REF_due_after_tREFI")

        if "data" in self.rules:
            with m.If(started):
                rule(dfi.wrdata_en == wr_at[t.CWL - 1:t.CWL - 1 + burst].any(), "write_data_CWL_after_WR")

        # covers: the rules are not vacuous
        if "spacing" in self.rules:
            m.d.comb += [
                Cover(ref, "refresh"),
                Cover(rd & (act_any == t.RCD), "RD_tRCD_after_ACT"),
                Cover(rd & (wr_any == t.write_to_read_l), "RD_tWTR_L_after_WR"),
                Cover(act & (pre_b[banks[0]] == t.RP) & sel[banks[0]], "ACT_tRP_after_PRE"),
            ]
            if len(banks) >= 4:
                m.d.comb += Cover(act & (window[3] == t.FAW), "fifth_ACT_tFAW_after_the_first")
        return m
