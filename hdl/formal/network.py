"""Formal harness for a network switch: credits and stream rules at every port.

The switch is checked alone, with every neighbour played by the solver:

* an upstream neighbour sends on a link only while it holds a credit (its counter
  starts at the FIFO depth, drops per transfer, rises per ``credit`` pulse) — assumed;
* a downstream neighbour returns a credit only for an entry it holds — assumed;
* attached units offer and take streams by the stream rules — assumed;
* the configuration port takes any word sequence (any routes, multicast included);
* ``cfg_clear`` may come at any time and resets the neighbours' counters with the
  switch (the contract: the launch controller clears every switch at once); like a
  reset, it may withdraw an offer on a unit pin.

Asserted: on every output link the switch's outstanding transfers (sent minus credits
back) stay within ``[0, switch_fifo_depth]`` — it never sends without a credit, so a
full receiver never receives, and never gets more credits than it spent; every unit
pin the switch drives keeps the stream rules.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Signal
from amaranth.hdl import Assert, Assume, Cover

from ..network.graph import FABRICS, FabricGraph
from ..network.switch import Switch, port_member
from ..presets import get_preset
from .streams import free, reset_at_start, stream_rules

__all__ = ["SwitchCreditHarness", "formal_fabric"]


def formal_fabric() -> FabricGraph:
    """A 2 × 2 fabric with 1-lane vectors (payload width does not matter to credits)."""
    return FabricGraph(get_preset("tiny").replace(name="formal", lanes=1, pmu_banks=1))


class SwitchCreditHarness(Elaboratable):
    """Credits and stream rules of switch (x, y) of ``fg`` (see the module docstring).

    ``receiver_depth`` is the FIFO depth the neighbours really have (default: the preset's,
    which the switch's credit counters start from); a smaller one models a switch whose
    credit counters start too high, which the proof must catch.
    """

    def __init__(self, fg: FabricGraph | None = None, x: int = 0, y: int = 0,
                 receiver_depth: int | None = None):
        self.fg = fg or formal_fabric()
        self.x, self.y = x, y
        self.receiver_depth = receiver_depth or self.fg.preset.switch_fifo_depth

    def elaborate(self, platform):
        m = Module()
        fg = self.fg
        dut = m.submodules.dut = Switch(fg, self.x, self.y)
        depth = self.receiver_depth
        started = reset_at_start(m)
        free(m, dut.cfg.valid, dut.cfg.payload, dut.cfg_clear)
        stream_rules(m, dut.cfg, started, check=Assume, label="cfg")
        clear = dut.cfg_clear
        # a clear is a reset: the offers it withdraws are not stream-rule violations
        cleared = Signal()
        m.d.sync += cleared.eq(clear)
        checked = Signal()
        m.d.comb += checked.eq(started & ~cleared)
        for fabric in FABRICS:
            for port in fg.switch_inputs(self.x, self.y, fabric):
                name = port_member(fg, fabric, "in", port)
                ext = getattr(dut, name)
                if "." in port:
                    free(m, ext.valid, ext.payload)
                    stream_rules(m, ext, started, check=Assume, label=name)
                    continue
                # the upstream neighbour: sends only with a credit
                credits = Signal(range(depth + 1), init=depth, name=f"{name}_env_credits")
                free(m, ext.valid, ext.payload)
                m.d.comb += Assume(~ext.valid | (credits != 0) | ~started, f"{name}_env_has_credit")
                with m.If(clear):
                    m.d.sync += credits.eq(depth)
                with m.Else():
                    m.d.sync += credits.eq(credits - ext.valid + ext.credit)
            for port in fg.switch_outputs(self.x, self.y, fabric):
                name = port_member(fg, fabric, "out", port)
                ext = getattr(dut, name)
                if "." in port:
                    free(m, ext.ready)
                    stream_rules(m, ext, checked, check=Assert, label=name)
                    continue
                # the downstream neighbour: holds what it received, returns credits for it
                held = Signal(range(depth + 2), name=f"{name}_env_held")
                free(m, ext.credit)
                m.d.comb += Assume(~ext.credit | (held != 0), f"{name}_env_credit_for_entry")
                with m.If(clear):
                    m.d.sync += held.eq(0)
                with m.Else():
                    m.d.sync += held.eq(held + ext.valid - ext.credit)
                with m.If(started & ~clear):
                    m.d.comb += Assert(~ext.valid | (held != depth), f"{name}_no_send_when_full")
                m.d.comb += Assert(held <= depth, f"{name}_outstanding_within_depth")
                if fabric == "vector" and port.startswith("E"):
                    m.d.comb += Cover(started & ext.valid & (held == depth - 1), f"{name}_fills")
        # a multicast: one unit output copied to a link and a unit pin in the same cycle
        ports = fg.switch_outputs(self.x, self.y, "vector")
        links = [getattr(dut, port_member(fg, "vector", "out", p)) for p in ports if "." not in p]
        pins = [getattr(dut, port_member(fg, "vector", "out", p)) for p in ports if "." in p]
        if links and pins:
            m.d.comb += Cover(started & links[0].valid & pins[0].valid, "multicast_link_and_pin")
        return m
