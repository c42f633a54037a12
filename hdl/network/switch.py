"""A switch of the on-chip network, generated from the routing graph.

One :class:`Switch` serves all three fabrics at one mesh position. Per fabric:

* every **input** (a link track from a neighbour, or an output pin of an attached
  unit) has a FIFO of ``switch_fifo_depth`` entries;
* every **output** (a link track to a neighbour, or an input pin of an attached unit)
  has a configured *select* (which input it takes from, or none) and a credit
  counter holding the free entries of the FIFO it feeds;
* an input's head moves when every output selecting it has a credit: it is copied to
  all of them in the same cycle (multicast) and popped. An input no output selects
  holds its data.

Links between switches use credit-based flow control (:class:`LinkSignature`):
the sender transfers only with a credit, the receiver returns one per entry it
pops, so a link FIFO can never overflow and no ``ready`` crosses a hop. With
``hop_register`` both directions are registered (a hop costs two cycles; the
credit loop is four cycles, covered by a 4-entry FIFO). An output to a unit
pin feeds a pin FIFO in this switch, whose read side is an ordinary
``amaranth.lib.stream`` port to the unit.

Configuration: one image (:mod:`hdl.config_port`, magic :data:`CONFIG_MAGIC`)
holds every output's select code for the three fabrics; code 0 is "none", code
``k`` the ``k``-th entry of :meth:`FabricGraph.mux_inputs`. ``cfg_clear`` is a
synchronous reset of the whole switch: routes, FIFOs and credits (the launch
controller clears every switch at once before loading a kernel, so credit counts
stay consistent on every link). Whatever was still in the network is dropped then;
unit pins are not ready during the clear, so nothing is taken and lost in that cycle.
"""

from __future__ import annotations

from amaranth import Cat, Module, ResetInserter, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config_port import ConfigLoader, body_words, encode_image
from ..stream import vector_layout
from .graph import DIRECTIONS, FABRICS, FabricGraph

__all__ = ["LinkSignature", "Switch", "CONFIG_MAGIC", "CONFIG_VERSION", "fabric_shape", "switch_layout",
           "encode_switch", "port_member"]

CONFIG_MAGIC = 0x5A17
CONFIG_VERSION = 1


class LinkSignature(wiring.Signature):
    """One track of a switch-to-switch link, seen from the sender.

    Members
    -------
    valid : Out(1)
        A payload is transferred this cycle (the sender held a credit for it).
    payload : Out(shape)
        The payload.
    credit : In(1)
        The receiver popped one entry of its FIFO: one more credit.
    """

    def __init__(self, shape):
        super().__init__({"valid": Out(1), "payload": Out(shape), "credit": In(1)})


def fabric_shape(fabric: str, lanes: int):
    """Payload shape of ``fabric``: a vector, a 32-bit word, or a 1-bit token."""
    return {"vector": vector_layout(lanes), "scalar": 32, "control": 1}[fabric]


def port_member(fg: FabricGraph, fabric: str, side: str, port: str) -> str:
    """Name of the switch's component member for a graph port.

    ``side`` is ``"in"`` or ``"out"``; link ports become ``<fabric>_in_E0`` /
    ``<fabric>_out_E0``, pin ports ``<fabric>_from_<role>_<pin>`` (a unit output
    entering) and ``<fabric>_to_<role>_<pin>`` (a unit input leaving), where the role
    (:attr:`Site.role`: ``unit``, ``agcu_w``, ``agcu_e``, ``host``) names the site.
    """
    if port[0] in DIRECTIONS and port[1:].isdigit():
        return f"{fabric}_{side}_{port}"
    role, pin = fg.role_port(port).split(".")
    return f"{fabric}_{'from' if side == 'in' else 'to'}_{role}_{pin}"


def _or_all(values):
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out


def _field(fabric: str, output: str) -> str:
    return f"{fabric}.{output}"


def switch_layout(fg: FabricGraph, x: int, y: int) -> data.StructLayout:
    """The configuration register of switch (x, y): one select field per output and fabric."""
    fields = {}
    for fabric in FABRICS:
        for output in fg.switch_outputs(x, y, fabric):
            fields[_field(fabric, output)] = range(len(fg.mux_inputs(x, y, fabric, output)) + 1)
    return data.StructLayout(fields)


def encode_switch(fg: FabricGraph, x: int, y: int, selects: dict[tuple[str, str], str]) -> list[int]:
    """Image words of switch (x, y); ``selects`` maps ``(fabric, output) → input`` (others: none)."""
    fields = {}
    for (fabric, output), source in selects.items():
        choices = fg.mux_inputs(x, y, fabric, output)
        if source not in choices:
            raise ValueError(f"switch ({x}, {y}) {fabric} output {output} cannot take {source!r}; "
                             f"choices: {', '.join(choices)}")
        fields[_field(fabric, output)] = choices.index(source) + 1
    return encode_image(switch_layout(fg, x, y), fields, CONFIG_MAGIC, CONFIG_VERSION)


class Switch(wiring.Component):
    """The switch at mesh position (x, y), with the ports the routing graph gives it.

    Parameters
    ----------
    fg : FabricGraph
        The routing graph (and through it the preset: lanes, tracks, FIFO depth,
        ``hop_register``).
    x, y : int
        Mesh position.

    Attributes
    ----------
    <fabric>_in_<D><t> : In(LinkSignature(shape))
        Track ``t`` of the link arriving from direction ``D``.
    <fabric>_out_<D><t> : Out(LinkSignature(shape))
        Track ``t`` of the link leaving towards direction ``D``.
    <fabric>_from_<role>_<pin> : In(stream.Signature(shape))
        An output pin of an attached site (role ``unit``, ``agcu_w``, ``agcu_e`` or ``host``).
    <fabric>_to_<role>_<pin> : Out(stream.Signature(shape))
        An input pin of an attached site (from a pin FIFO).
    cfg : In(stream.Signature(32))
        Configuration image words (always accepted).
    cfg_clear : In(1)
        Synchronous reset of the switch: no routes, empty FIFOs, full credits.
    configured, cfg_error : Out(1)
        A valid image is loaded / the last header was refused.
    """

    def __init__(self, fg: FabricGraph, x: int, y: int):
        if not isinstance(fg, FabricGraph):
            raise TypeError(f"fg must be a FabricGraph, got {type(fg).__name__}")
        if (x, y) not in fg.switches:
            raise ValueError(f"no switch at ({x}, {y}) in a {fg.cols} x {fg.rows} mesh")
        self.fg, self.x, self.y = fg, x, y
        self.layout = switch_layout(fg, x, y)
        if body_words(self.layout) > 255:
            raise ValueError(f"switch ({x}, {y}) needs {body_words(self.layout)} configuration words (> 255)")
        lanes = fg.preset.lanes
        members = {}
        for fabric in FABRICS:
            shape = fabric_shape(fabric, lanes)
            for port in fg.switch_inputs(x, y, fabric):
                sig = LinkSignature(shape) if "." not in port else stream.Signature(shape)
                members[port_member(fg, fabric, "in", port)] = In(sig)
            for port in fg.switch_outputs(x, y, fabric):
                sig = LinkSignature(shape) if "." not in port else stream.Signature(shape)
                members[port_member(fg, fabric, "out", port)] = Out(sig)
        members.update({"cfg": In(stream.Signature(32)), "cfg_clear": In(1),
                        "configured": Out(1), "cfg_error": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        fg, x, y = self.fg, self.x, self.y
        depth = fg.preset.switch_fifo_depth
        hop = fg.preset.hop_register

        loader = m.submodules.config = ConfigLoader(self.layout, CONFIG_MAGIC, CONFIG_VERSION)
        wiring.connect(m, wiring.flipped(self.cfg), loader.words)
        m.d.comb += [loader.accept.eq(1), self.configured.eq(loader.configured),
                     self.cfg_error.eq(loader.error)]

        for fabric in FABRICS:
            shape = fabric_shape(fabric, fg.preset.lanes)
            width = data.Layout.cast(shape).size if isinstance(shape, data.Layout) else shape
            inputs = fg.switch_inputs(x, y, fabric)
            outputs = fg.switch_outputs(x, y, fabric)

            heads, pops = {}, {}
            for port in inputs:
                name = port_member(fg, fabric, "in", port)
                q = m.submodules[f"{name}_fifo"] = fifo.SyncFIFO(width=width, depth=depth)
                ext = getattr(self, name)
                pop = Signal(name=f"{name}_pop")
                if "." in port:  # a unit output pin: ordinary stream handshake (none while clearing)
                    m.d.comb += [q.w_data.eq(ext.payload), q.w_en.eq(ext.valid),
                                 ext.ready.eq(q.w_rdy & ~self.cfg_clear)]
                else:            # a link: credits guarantee room
                    m.d.comb += [q.w_data.eq(ext.payload), q.w_en.eq(ext.valid)]
                    if hop:
                        m.d.sync += ext.credit.eq(pop)
                    else:
                        m.d.comb += ext.credit.eq(pop)
                m.d.comb += q.r_en.eq(pop)
                heads[port], pops[port] = q, pop

            # select code per output, and which outputs take each input
            takes = {port: [] for port in inputs}    # input -> [(output, takes signal)]
            sends, has_credit = {}, {}
            for out in outputs:
                choices = fg.mux_inputs(x, y, fabric, out)
                sel = Signal(range(len(choices) + 1), name=f"{port_member(fg, fabric, 'out', out)}_sel")
                m.d.comb += sel.eq(loader.config[_field(fabric, out)] & loader.configured.replicate(len(sel)))
                member = port_member(fg, fabric, "out", out)
                credits = Signal(range(depth + 1), init=depth, name=f"{member}_credits")
                has_credit[out] = credits != 0
                sends[out] = (sel, credits, choices)
                for k, src in enumerate(choices):
                    t = Signal(name=f"{port_member(fg, fabric, 'out', out)}_takes_{k}")
                    m.d.comb += t.eq(sel == k + 1)
                    takes[src].append((out, t))

            fire = {}
            for port in inputs:
                q = heads[port]
                wanted = Signal(name=f"{port_member(fg, fabric, 'in', port)}_wanted")
                blocked = Signal(name=f"{port_member(fg, fabric, 'in', port)}_blocked")
                if takes[port]:
                    m.d.comb += [wanted.eq(Cat(t for _, t in takes[port]).any()),
                                 blocked.eq(Cat(t & ~has_credit[out] for out, t in takes[port]).any())]
                f = fire[port] = Signal(name=f"{port_member(fg, fabric, 'in', port)}_fire")
                m.d.comb += [f.eq(q.r_rdy & wanted & ~blocked), pops[port].eq(f)]

            for out in outputs:
                sel, credits, choices = sends[out]
                name = port_member(fg, fabric, "out", out)
                send = Signal(name=f"{name}_send")
                payload = Signal(width, name=f"{name}_data")
                # one-hot AND-OR multiplexer (continuous assignments only: simulators evaluate them at
                # time zero, whereas a `case` in an always block can stay X until its select changes)
                hits = [(t, src) for src in choices for o, t in takes[src] if o == out]
                m.d.comb += [send.eq(Cat(t & fire[src] for t, src in hits).any()),
                             payload.eq(_or_all([heads[src].r_data & t.replicate(width) for t, src in hits]))]
                ext = getattr(self, name)
                credit_back = Signal(name=f"{name}_credit_back")
                if "." in out:  # a unit input pin: a pin FIFO in this switch
                    q = m.submodules[f"{name}_fifo"] = fifo.SyncFIFO(width=width, depth=depth)
                    m.d.comb += [q.w_data.eq(payload), q.w_en.eq(send),
                                 ext.payload.eq(q.r_data), ext.valid.eq(q.r_rdy), q.r_en.eq(ext.ready),
                                 credit_back.eq(ext.ready & q.r_rdy)]
                else:
                    domain = m.d.sync if hop else m.d.comb
                    domain += [ext.valid.eq(send), ext.payload.eq(payload)]
                    m.d.comb += credit_back.eq(ext.credit)
                m.d.sync += credits.eq(credits - send + credit_back)
        return ResetInserter({"sync": self.cfg_clear})(m)
