"""The tile: a preset's checkerboard of PCUs and PMUs, switches between them, edge ports.

:class:`Tile` is assembled from the routing graph (:class:`hdl.network.FabricGraph`):
one :class:`hdl.network.Switch` per site, mesh links between neighbours, every unit
pin wired to its switch, and a :class:`hdl.launch.LaunchController` at the host
site that distributes configuration images to every switch and unit and runs
kernels. Sites without a unit (the AGCU sites on the west and east edges always;
every unit site with ``units="none"``) are *open*: their pins become top-level
stream ports named ``<site>_<pin>`` (``agcu_w0_vout``), so a testbench or, later,
an AGCU drives them.

Verilog
-------
With ``hierarchical=True`` (the default) each unit is a Verilog instance of one
PCU module and one PMU module generated once (:meth:`Tile.verilog`), and each
switch an instance of one module per distinct switch shape (neighbours and
attached site roles; :meth:`FabricGraph.switch_key`), as a chip flow would do; the
tile module holds the links, the instances and the launch controller.
``hierarchical=False`` elaborates the units inline (for Amaranth's simulator).

Clearing and aborting
---------------------
The launch controller's endpoint clear (Program Load, a refusal, ABORT) resets every switch
(routes, FIFOs, credits), deconfigures every unit and empties its input FIFOs (honoured by an
idle unit) and drops the tokens the control pins' token counters hold. Its ``ep_abort`` (ABORT
only) also stops units that are running: each PCU and PMU is held in reset (its memories keep
their contents, as at any reset) and each AGCU drops its run and waits for the memory's answers
to the requests it had taken (:class:`hdl.agcu.AddressGenerationUnit`, ``abort_run``).

Observing a stall
-----------------
``unit_busy`` and ``agcu_busy`` say which units are busy and ``pin_waiting`` where a payload
waits and is not taken (:attr:`Tile.watched_pins`): a kernel bench reads them at the top level
on any simulator when a launch times out.
"""

from __future__ import annotations

from amaranth import Cat, ClockSignal, Instance, Module, ResetInserter, ResetSignal, Signal, Value
from amaranth.back import verilog as verilog_backend
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .agcu import AddressGenerationUnit
from .launch import LaunchController
from .memctrl.interface import MemoryPortSignature
from .network.graph import DIRECTIONS, OPPOSITE, FabricGraph
from .network.switch import Switch, fabric_shape, port_member
from .params import DEFAULT_MEMORY_ADDR_BITS, TILE_PCU_OPS, TileParams
from .pcu import PatternComputeUnit
from .pmu import PatternMemoryUnit
from .presets import Preset
from .stream import TokenCounter

# TileParams and its defaults live in hdl.params (no elaboration code); re-exported here
__all__ = ["TileParams", "Tile", "TILE_PCU_OPS", "DEFAULT_MEMORY_ADDR_BITS", "UNIT_MODULES"]

#: Verilog module names of the unit modules a hierarchical tile instantiates.
UNIT_MODULES = {"pcu": "openrdu_pcu", "pmu": "openrdu_pmu", "agcu": "openrdu_agcu"}


def _hier_block(text: str, module: str) -> str:
    """Mark ``module`` as a Verilator hierarchical block (``verilator --hierarchical`` then
    verilates it once instead of once per instance; other tools read a comment)."""
    head = text.index(f"module {module}(")
    end = text.index(");", head) + 2
    return text[:end] + "\n  /*verilator hier_block*/" + text[end:]


def _open_port(pin, lanes):
    shape = fabric_shape(pin.fabric, lanes)
    # seen from the tile: a unit input pin leaves the tile, a unit output pin enters it
    return Out(stream.Signature(shape)) if pin.direction == "in" else In(stream.Signature(shape))


class Tile(wiring.Component):
    """A tile of a preset (see the module docstring).

    Parameters
    ----------
    params : TileParams, Preset or str
        Build parameters (a preset gives :class:`TileParams` defaults).

    Attributes
    ----------
    host : In(stream.Signature(32))
        Host command words (:mod:`hdl.launch`): LOAD an image, ARGS, EXEC, ABORT.
    state, error, error_unit, cycles, tokens : Out
        The launch controller's status (:class:`hdl.launch.LaunchController`).
    unit_busy : Out(number of unit sites)
        Per unit site (in :attr:`FabricGraph.sites` order), the unit is busy.
    agcu_busy : Out(number of AGCU sites)
        With ``agcus``: per AGCU site (:attr:`agcu_sites` order), the AGCU is busy.
    pin_waiting : Out(len(watched_pins))
        Per pin of :attr:`watched_pins`, a payload is offered there and not taken in this cycle:
        at a unit's input pin, the switch offers one the unit does not take (its input FIFO is
        full); at an output pin, the unit (or the host) offers one the fabric does not take.
    <site>_<pin> : In/Out(stream.Signature(shape))
        The pins of every open site: the tile's outputs for pins that take data from
        the fabric, inputs for pins that give data to it. Control pins carry 1-bit tokens.
    <agcu site>_mem : Out(MemoryPortSignature(memory_addr_bits))
        With ``agcus``: the AGCU's memory port (requests out, in-order responses in).
    <agcu site>_seg : In(stream.Signature(segment layout))
        With ``agcus``: the AGCU's segment table (privileged: the host, not a kernel image).
    <agcu site>_fault : Out(1)
        With ``agcus``: the AGCU's protection fault flag.
    """

    def __init__(self, params: TileParams | Preset | str):
        if not isinstance(params, TileParams):
            params = TileParams(params)
        self.params = params
        self.fg = fg = FabricGraph(params.preset)
        self.unit_sites = [s for s in fg.sites.values() if s.kind in ("pcu", "pmu")]
        # switches with equal keys are one hardware module: {key: (module name, a representative)}
        self.switch_modules: dict[tuple, tuple[str, tuple[int, int]]] = {}
        for xy in fg.switches:
            key = fg.switch_key(*xy)
            if key not in self.switch_modules:
                self.switch_modules[key] = (f"openrdu_switch{len(self.switch_modules)}", xy)
        members = {
            "host": In(stream.Signature(32)),
            "state": Out(3), "error": Out(4), "error_unit": Out(16), "cycles": Out(32), "tokens": Out(16),
            "unit_busy": Out(len(self.unit_sites)),
            "pin_waiting": Out(len(self.watched_pins)),
        }
        for site in self.open_sites:
            for pin in site.pins:
                members[f"{site.name}_{pin.name}"] = _open_port(pin, params.preset.lanes)
        if self.agcu_sites:
            members["agcu_busy"] = Out(len(self.agcu_sites))
        for site in self.agcu_sites:
            members[f"{site.name}_mem"] = Out(MemoryPortSignature(params.memory_addr_bits))
            members[f"{site.name}_seg"] = In(stream.Signature(params.agcu.segment_layout))
            members[f"{site.name}_fault"] = Out(1)
        super().__init__(members)

    @property
    def agcu_sites(self):
        """AGCU sites with a built AGCU."""
        return [s for s in self.fg.sites.values() if s.kind == "agcu" and self.params.agcus]

    @property
    def watched_pins(self) -> list[str]:
        """The pins ``pin_waiting`` reports on, as ``"site.pin"``: every pin of a built unit and of
        the host that can hold a payload back (control inputs, always taken, are left out)."""
        return [f"{site.name}.{pin.name}" for site in self.fg.sites.values()
                if site.kind == "host" or self.params.populated(site)
                for pin in site.pins if not (pin.fabric == "control" and pin.direction == "in")]

    @property
    def open_sites(self):
        return [s for s in self.fg.sites.values() if s.kind != "host" and not self.params.populated(s)]

    # ----------------------------------------------------------------- Verilog
    def verilog(self, name: str = "top") -> str:
        """Verilog of the tile as module ``name``, plus its unit modules when hierarchical."""
        text = verilog_backend.convert(self, name=name, emit_src=False)
        return text + self.module_verilog()

    def module_verilog(self) -> str:
        """Verilog of the switch and unit modules a hierarchical tile instantiates ('' when flat)."""
        text = ""
        if not self.params.hierarchical:
            return text
        for module, xy in self.switch_modules.values():
            text += verilog_backend.convert(Switch(self.fg, *xy), name=module, emit_src=False)
        kinds = []
        if self.params.units == "all":
            kinds += [("pcu", PatternComputeUnit(self.params.pcu)),
                      ("pmu", PatternMemoryUnit(self.params.pmu))]
        if self.params.agcus:
            kinds.append(("agcu", AddressGenerationUnit(self.params.agcu)))
        for kind, unit in kinds:
            text += _hier_block(verilog_backend.convert(unit, name=UNIT_MODULES[kind], emit_src=False),
                                UNIT_MODULES[kind])
        return text

    def _place(self, m, name: str, component: wiring.Component, module: str, reset=None):
        """Add ``component`` as submodule ``name``: inline, or as an instance of Verilog ``module``;
        ``reset`` (a signal) also resets it, synchronously."""
        if not self.params.hierarchical:
            m.submodules[name] = component if reset is None else ResetInserter({"sync": reset})(component)
            return component
        component._MustUse__silence = True  # only its ports are used: the module is generated once
        rst = ResetSignal() if reset is None else ResetSignal() | reset
        ports = [("i", "clk", ClockSignal()), ("i", "rst", rst)]
        for path, member, value in component.signature.flatten(component):
            direction = "i" if member.flow is wiring.In else "o"
            ports.append((direction, "__".join(str(p) for p in path), Value.cast(value)))
        m.submodules[name] = Instance(module, *ports)
        return component

    def _unit(self, m, site, abort):
        # an ABORT holds PCUs and PMUs in reset (their memories keep their contents); an AGCU has
        # an abort_run input of its own (it keeps its segment table and waits for the memory)
        if site.kind == "agcu":
            unit = AddressGenerationUnit(self.params.agcu)
            m.d.comb += unit.abort_run.eq(abort)
            return self._place(m, site.name, unit, UNIT_MODULES[site.kind])
        if site.kind == "pcu":
            unit = PatternComputeUnit(self.params.pcu)
        else:
            unit = PatternMemoryUnit(self.params.pmu)
        return self._place(m, site.name, unit, UNIT_MODULES[site.kind], reset=abort)

    def elaborate(self, platform):
        m = Module()
        fg, params = self.fg, self.params

        switches = {}
        for xy in fg.switches:
            module = self.switch_modules[fg.switch_key(*xy)][0]
            switches[xy] = self._place(m, f"switch_{xy[0]}_{xy[1]}", Switch(fg, *xy), module)
        for (x, y), sw in switches.items():
            for fabric in ("vector", "scalar", "control"):
                for port in fg.switch_outputs(x, y, fabric):
                    if "." in port:
                        continue
                    dx, dy = DIRECTIONS[port[0]]
                    peer = switches[(x + dx, y + dy)]
                    wiring.connect(m, getattr(sw, port_member(fg, fabric, "out", port)),
                                   getattr(peer, port_member(fg, fabric, "in", OPPOSITE[port[0]] + port[1:])))

        units = {}
        abort = Signal(name="ep_abort")  # the launch controller's ep_abort
        for site in self.unit_sites + self.agcu_sites:
            if params.populated(site):
                units[site.name] = self._unit(m, site, abort)
        for site in self.agcu_sites:
            agcu = units[site.name]
            wiring.connect(m, agcu.mem, wiring.flipped(getattr(self, f"{site.name}_mem")))
            wiring.connect(m, wiring.flipped(getattr(self, f"{site.name}_seg")), agcu.seg)
            m.d.comb += getattr(self, f"{site.name}_fault").eq(agcu.fault)

        present = []
        for kind, key in fg.config_endpoints:
            present.append(kind == "switch" or key in units)
        lc = m.submodules.launch = LaunchController(present)
        m.d.comb += abort.eq(lc.ep_abort)
        wiring.connect(m, wiring.flipped(self.host), lc.host)
        # the kernel ends when its done tokens arrived and every unit drained -- or an AGCU
        # faulted (its run issued nothing, so units upstream of it may never drain)
        agcu_busy = [units[site.name].busy for site in self.agcu_sites]
        agcu_fault = [units[site.name].fault for site in self.agcu_sites]
        if agcu_busy:
            m.d.comb += self.agcu_busy.eq(Cat(*agcu_busy))
            m.d.comb += lc.busy.eq((self.unit_busy.any() | Cat(*agcu_busy).any()) & ~Cat(*agcu_fault).any())
        else:
            m.d.comb += lc.busy.eq(self.unit_busy.any())
        m.d.comb += [self.state.eq(lc.state), self.error.eq(lc.error), self.error_unit.eq(lc.error_unit),
                     self.cycles.eq(lc.cycles), self.tokens.eq(lc.tokens)]
        for k, (kind, key) in enumerate(fg.config_endpoints):
            target = switches[key] if kind == "switch" else units.get(key)
            if target is None:
                continue
            wiring.connect(m, lc.ep_cfg[k], target.cfg)
            m.d.comb += [target.cfg_clear.eq(lc.ep_clear), lc.ep_configured[k].eq(target.configured)]
        for k, site in enumerate(self.unit_sites):
            if site.name in units:
                m.d.comb += self.unit_busy[k].eq(units[site.name].busy)

        watched = {name: k for k, name in enumerate(self.watched_pins)}
        for site in fg.sites.values():
            sw = switches[site.switch]
            for pin in site.pins:
                side = "in" if pin.direction == "out" else "out"
                sw_port = getattr(sw, port_member(fg, pin.fabric, side, f"{site.name}.{pin.name}"))
                if site.kind == "host":
                    ours = lc.arg[int(pin.name[3:])] if pin.name.startswith("arg") else getattr(lc, pin.name)
                elif site.name in units:
                    unit_port = getattr(units[site.name], pin.name)
                    if pin.fabric == "control" and pin.direction == "in":
                        m.d.comb += [unit_port.eq(sw_port.valid), sw_port.ready.eq(1)]
                        continue
                    if pin.fabric == "control":
                        tc = m.submodules[f"{site.name}_{pin.name}_tokens"] = TokenCounter()
                        # cleared with the endpoints: a kernel's tokens on a pin it did not route
                        # would otherwise reach the next kernel's routes from this counter
                        m.d.comb += [tc.pulse.eq(unit_port), tc.clear.eq(lc.ep_clear)]
                        ours = tc.o
                    else:
                        ours = unit_port
                else:
                    ours = wiring.flipped(getattr(self, f"{site.name}_{pin.name}"))
                if pin.direction == "out":
                    wiring.connect(m, ours, sw_port)
                else:
                    wiring.connect(m, sw_port, ours)
                k = watched.get(f"{site.name}.{pin.name}")
                if k is not None:
                    offer = ours if pin.direction == "out" else sw_port
                    m.d.comb += self.pin_waiting[k].eq(offer.valid & ~offer.ready)
        return m
