"""Formal harnesses for a network switch: credits and stream rules at every port; no loss, duplication or
reordering through a hop or a multicast (:class:`SwitchOrderHarness`).

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

from amaranth import Cat, Elaboratable, Module, Mux, Signal
from amaranth.hdl import Assert, Assume, Cover

from ..network.graph import FABRICS, FabricGraph
from ..network.switch import Switch, port_member
from ..presets import get_preset
from .streams import free, reset_at_start, stream_rules

__all__ = ["SwitchCreditHarness", "SwitchOrderHarness", "formal_fabric"]


def formal_fabric(switch_fifo_depth: int | None = None, vector_tracks: int = 1) -> FabricGraph:
    """A 2 × 2 fabric with 1-lane vectors (payload width does not matter to credits); FIFO depth of the
    preset (4) unless given; ``vector_tracks`` tracks per vector link (each with its own FIFO and
    credit counter)."""
    preset = get_preset("tiny").replace(name="formal", lanes=1, pmu_banks=1, vector_tracks=vector_tracks)
    if switch_fifo_depth is not None:
        preset = preset.replace(switch_fifo_depth=switch_fifo_depth)
    return FabricGraph(preset)


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


class SwitchOrderHarness(Elaboratable):
    """No loss, duplication, corruption or reordering through a switch, multicast included.

    Switch (x, y) is configured once by the solver (any image: any routes, any multicast),
    then its routes stay fixed (no ``cfg_clear``, no further configuration words). The
    vector fabric is checked; the scalar and control fabrics are built from the same
    generator code and idle here. Neighbours are played by the solver as in
    :class:`SwitchCreditHarness` (credits assumed of upstream links, stream rules of unit pins).

    The harness decodes the routes itself from the words the switch took (a second
    :class:`hdl.config_port.ConfigLoader`). For a symbolic index ``n`` (``AnyConst``) it
    records the ``n``-th payload entering each input, and asserts that the ``n``-th
    payload leaving every output is the ``n``-th that entered the input the output selects
    — for every taker of a multicast — and that an output never carries more payloads than
    its input received, and an unrouted output carries none — nor does an output whose code
    lies past its choices (an image no encoder makes: such a code routes nothing). A lost,
    repeated or reordered payload shifts every later index, and the solver picks the payloads,
    so it shows as a wrong value at some ``n``.

    The default fabric has 2-entry switch FIFOs (the minimum; the preset's 4 only add throughput
    across the registered hop), so full FIFOs and exhausted credits — where a multicast must wait
    for its slowest taker — come within the bound.

    ``data_bits`` bounds the payload bits the solver varies (the others stay 0): one suffices for
    the argument above, since the solver picks every payload's bit (also telling a payload from
    another input's apart).
    """

    def __init__(self, fg: FabricGraph | None = None, x: int = 0, y: int = 0, *, data_bits: int = 1,
                 counter_bits: int = 4, factory=None):
        self.fg = fg or formal_fabric(switch_fifo_depth=2)
        self.x, self.y = x, y
        self.data_bits, self.counter_bits = data_bits, counter_bits
        self.factory = factory or Switch

    def elaborate(self, platform):
        from amaranth.asserts import AnyConst, AnySeq

        from ..config_port import ConfigLoader
        from ..network.switch import CONFIG_MAGIC, CONFIG_VERSION, switch_layout

        m = Module()
        fg, x, y = self.fg, self.x, self.y
        dut = m.submodules.dut = self.factory(fg, x, y)
        depth = fg.preset.switch_fifo_depth
        started = reset_at_start(m)
        m.d.comb += dut.cfg_clear.eq(0)
        free(m, dut.cfg.valid, dut.cfg.payload)
        stream_rules(m, dut.cfg, started, check=Assume, label="cfg")
        routes = m.submodules.routes = ConfigLoader(switch_layout(fg, x, y), CONFIG_MAGIC, CONFIG_VERSION)
        m.d.comb += [routes.words.valid.eq(dut.cfg.valid & dut.cfg.ready),
                     routes.words.payload.eq(dut.cfg.payload),
                     routes.accept.eq(1), routes.clear.eq(0)]
        # configured once: the routes stay fixed afterwards
        m.d.comb += Assume(~(routes.configured & dut.cfg.valid), "routes_fixed_once_configured")

        bits = self.counter_bits
        n = Signal(bits)
        m.d.comb += n.eq(AnyConst(bits))

        for fabric in FABRICS:
            if fabric == "vector":
                continue
            for port in fg.switch_inputs(x, y, fabric):
                m.d.comb += getattr(dut, port_member(fg, fabric, "in", port)).valid.eq(0)
            for port in fg.switch_outputs(x, y, fabric):
                ext = getattr(dut, port_member(fg, fabric, "out", port))
                m.d.comb += (ext.ready if "." in port else ext.credit).eq(0)

        fabric = "vector"
        count, tracked, tracked_in = {}, {}, {}
        for port in fg.switch_inputs(x, y, fabric):
            name = port_member(fg, fabric, "in", port)
            ext = getattr(dut, name)
            # the solver picks the low data_bits of each payload; the others are constant 0 (so the
            # FIFO bits behind them are constant too: a much smaller problem)
            free(m, ext.valid)
            m.d.comb += ext.payload.as_value().eq(AnySeq(self.data_bits))
            if "." in port:
                stream_rules(m, ext, started, check=Assume, label=name)
                took = ext.valid & ext.ready
            else:
                credits = Signal(range(depth + 1), init=depth, name=f"{name}_env_credits")
                m.d.comb += Assume(~ext.valid | (credits != 0) | ~started, f"{name}_env_has_credit")
                m.d.sync += credits.eq(credits - ext.valid + ext.credit)
                took = ext.valid
            c = count[port] = Signal(bits, name=f"{name}_in_count")
            v = tracked[port] = Signal(self.data_bits, name=f"{name}_tracked")
            t = tracked_in[port] = Signal(name=f"{name}_tracked_in")
            with m.If(took):
                m.d.sync += c.eq(c + 1)
                with m.If(c == n):
                    m.d.sync += [v.eq(ext.payload.as_value()), t.eq(1)]
            m.d.comb += Assume(c != (1 << bits) - 1, f"{name}_count_never_wraps")

        sent = {}
        for port in fg.switch_outputs(x, y, fabric):
            name = port_member(fg, fabric, "out", port)
            ext = getattr(dut, name)
            if "." in port:
                free(m, ext.ready)
                took = ext.valid & ext.ready
            else:
                held = Signal(range(depth + 2), name=f"{name}_env_held")
                free(m, ext.credit)
                m.d.comb += Assume(~ext.credit | (held != 0), f"{name}_env_credit_for_entry")
                m.d.sync += held.eq(held + ext.valid - ext.credit)
                took = ext.valid
            out_count = Signal(bits, name=f"{name}_out_count")
            with m.If(took):
                m.d.sync += out_count.eq(out_count + 1)
            sent[port] = (took, out_count)
            sel = Signal(range(len(fg.mux_inputs(x, y, fabric, port)) + 1), name=f"{name}_env_sel")
            m.d.comb += sel.eq(Mux(routes.configured, routes.config[f"{fabric}.{port}"], 0))
            payload = ext.payload.as_value()
            with m.If(started):
                with m.Switch(sel):
                    with m.Case(0):
                        m.d.comb += Assert(~took, f"{name}_unrouted_is_silent")
                    for k, src in enumerate(fg.mux_inputs(x, y, fabric, port)):
                        with m.Case(k + 1):
                            m.d.comb += Assert(out_count <= count[src], f"{name}_no_output_without_input")
                            with m.If(took & (out_count == n)):
                                m.d.comb += [Assert(tracked_in[src], f"{name}_nth_out_went_in"),
                                             Assert(payload == tracked[src], f"{name}_nth_out_is_nth_in")]
                    with m.Default():  # a code past the choices (no encoder makes one) routes nothing
                        m.d.comb += Assert(~took, f"{name}_unknown_route_is_silent")

        # covers: the n-th payload (n = 1: a second one) reaches a link and a unit pin — a multicast
        ports = fg.switch_outputs(x, y, fabric)
        link = next(p for p in ports if "." not in p)
        pin = next(p for p in ports if "." in p)
        both = Signal()
        link_done, pin_done = Signal(), Signal()
        for port, flag in ((link, link_done), (pin, pin_done)):
            took, out_count = sent[port]
            with m.If(took & (out_count == n)):
                m.d.sync += flag.eq(1)
        m.d.comb += both.eq(link_done & pin_done)
        sel_link = Signal.like(routes.config[f"{fabric}.{link}"])
        sel_pin = Signal.like(routes.config[f"{fabric}.{pin}"])
        m.d.comb += [sel_link.eq(routes.config[f"{fabric}.{link}"]),
                     sel_pin.eq(routes.config[f"{fabric}.{pin}"])]
        src_index = {p: k + 1 for k, p in enumerate(fg.mux_inputs(x, y, fabric, link))}
        pin_index = {p: k + 1 for k, p in enumerate(fg.mux_inputs(x, y, fabric, pin))}
        shared = [s for s in src_index if s in pin_index]
        m.d.comb += Cover(started & both & (n == 1) & routes.configured
                          & Cat(*[(sel_link == src_index[s]) & (sel_pin == pin_index[s])
                                  for s in shared]).any(),
                          "multicast_second_payload_reaches_link_and_pin")
        return m
