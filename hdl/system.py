# amaranth: UnusedElaboratable=no
"""A tile with its AGCUs on an HBM tier: the unit that runs kernels with operands in HBM.

:class:`TileSystem`::

    host ─▶ Tile (fabric clock): PCUs, PMUs, switches, launch controller, one AGCU per edge site
                │ <agcu>_mem (one memory port per AGCU)
                ▼
          MemoryArbiter (round robin, responses routed back in order)
                │ MemoryPortBridge (asynchronous FIFOs)
                ▼
          MemoryTier (hbm clock): ``channels`` HBM controllers ─ hbm_dfi<c> ─▶ device models

The host writes each AGCU's segment table through ``seg`` (privileged; a kernel image
cannot), loads a kernel with :mod:`hdl.launch` commands on ``host`` and passes tensor
addresses as kernel arguments, which the AGCUs take from the scalar fabric.

The first line turns off Amaranth's UnusedElaboratable warning for the objects this module
creates: the tile a :class:`TileSystem` builds is used exactly when the system is, and a system
built only to read its parameters (agcu names, layouts) is not a mistake.
"""

import dataclasses

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import DomainRenamer
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .memctrl import DfiSignature, MemoryPortBridge, MemoryTier, timing_preset
from .memctrl.interface import MemoryPortSignature
from .tile import Tile, TileParams

__all__ = ["MemoryArbiter", "TileSystem"]


class MemoryArbiter(wiring.Component):
    """``ports`` requesters sharing one memory port, round robin, responses in order.

    The arbiter records which port each request came from and routes the in-order
    responses back. Its output may change its offer while not accepted (it feeds a FIFO,
    which does not rely on the stream rules).

    Parameters
    ----------
    ports : int
        Number of requesters (1..16).
    addr_bits : int
        Line-address width.
    in_flight : int
        Requests that may be outstanding (size of the order FIFO).

    Attributes
    ----------
    requesters : list of In(MemoryPortSignature(addr_bits))
        Port *k* of the requesters (``port0`` … in the signature).
    memory : Out(MemoryPortSignature(addr_bits))
        The shared port.
    """

    def __init__(self, ports: int, addr_bits: int, *, in_flight: int = 64):
        if isinstance(ports, bool) or not isinstance(ports, int) or not 1 <= ports <= 16:
            raise ValueError(f"ports must be an int in [1, 16], got {ports!r}")
        self.ports = ports
        self.addr_bits = addr_bits
        self.in_flight = in_flight
        members = {f"port{k}": In(MemoryPortSignature(addr_bits)) for k in range(ports)}
        members["memory"] = Out(MemoryPortSignature(addr_bits))
        super().__init__(members)

    @property
    def requesters(self):
        return [getattr(self, f"port{k}") for k in range(self.ports)]

    def elaborate(self, platform):
        m = Module()
        n = self.ports
        bits = max(1, (n - 1).bit_length())
        reqs = self.requesters
        order = m.submodules.order = fifo.SyncFIFO(width=bits, depth=self.in_flight)
        valid = Signal(n)
        m.d.comb += valid.eq(Cat(*[r.req.valid for r in reqs]))
        last = Signal(bits)
        # round robin: the first valid port after the last granted one, else the first valid one
        after = Signal(n)
        m.d.comb += after.eq(valid & Cat(Const(0, 1), *[last < k for k in range(1, n)]))
        pick_after = Const(0, bits)
        pick_any = Const(0, bits)
        for k in reversed(range(n)):
            pick_after = Mux(after[k], k, pick_after)
            pick_any = Mux(valid[k], k, pick_any)
        grant = Signal(bits)
        m.d.comb += grant.eq(Mux(after != 0, pick_after, pick_any))
        any_valid = Signal()
        m.d.comb += any_valid.eq(valid != 0)
        payload_bits = len(self.memory.req.payload.as_value())
        chosen = Const(0, payload_bits)
        for k, r in enumerate(reqs):
            chosen = chosen | (r.req.payload.as_value() & (grant == k).replicate(payload_bits))
        out = self.memory.req
        m.d.comb += [out.valid.eq(any_valid & order.w_rdy), out.payload.eq(chosen)]
        taken = Signal()
        m.d.comb += taken.eq(out.valid & out.ready)
        for k, r in enumerate(reqs):
            m.d.comb += r.req.ready.eq(taken & (grant == k))
        m.d.comb += [order.w_en.eq(taken), order.w_data.eq(grant)]
        with m.If(taken):
            m.d.sync += last.eq(grant)
        # responses, in request order, to the port that asked
        resp = self.memory.resp
        for k, r in enumerate(reqs):
            mine = Signal(name=f"resp_to{k}")
            m.d.comb += [mine.eq(order.r_rdy & (order.r_data == k)),
                         r.resp.valid.eq(resp.valid & mine), r.resp.payload.eq(resp.payload)]
        m.d.comb += [resp.ready.eq(order.r_rdy & Cat(*[r.resp.ready & (order.r_data == k)
                                                      for k, r in enumerate(reqs)]).any()),
                     order.r_en.eq(resp.valid & resp.ready)]
        return m


class TileSystem(wiring.Component):
    """A tile with AGCUs and an HBM tier (see the module docstring).

    Parameters
    ----------
    params : TileParams, Preset or str
        The tile (``agcus`` and ``memory_addr_bits`` are set here).
    hbm : str or DramTiming
        HBM timing preset.
    channels : int
        HBM channels of the tier (lines interleaved across them).

    Attributes
    ----------
    host : In(stream.Signature(32))
        Launch commands (:mod:`hdl.launch`).
    state, error, error_unit, cycles, tokens : Out
        The launch controller's status.
    seg : In(stream.Signature(agcu, entry))
        Segment-table writes: ``agcu`` indexes :attr:`agcu_names`, ``entry`` is an
        :class:`hdl.agcu.Segment` payload.
    faults : Out(number of AGCUs)
        Each AGCU's fault flag.
    unit_busy, agcu_busy, pin_waiting : Out
        The tile's (:class:`hdl.tile.Tile`): busy PCUs and PMUs (``tile.unit_sites`` order), busy
        AGCUs (:attr:`agcu_names` order) and pins where a payload waits (``tile.watched_pins``),
        so a bench can name the units and pins of a stalled kernel on any simulator.
    hbm_dfi0, … : Out(DfiSignature)
        The HBM channels' buses, in the ``hbm`` clock domain.
    """

    def __init__(self, params="tiny", *, hbm="HBM2-2000", channels: int = 1, ecc: bool = False):
        base = params if isinstance(params, TileParams) else TileParams(params)
        self.hbm = timing_preset(hbm)
        self.channels = channels
        self.ecc = ecc
        tier_bits = self.hbm.line_address_bits + (channels - 1).bit_length()
        # every other build option carries over as given
        self.params = dataclasses.replace(base, agcus=True, memory_addr_bits=tier_bits)
        self.tile = Tile(self.params)
        self.agcu_names = [s.name for s in self.tile.agcu_sites]
        self.seg_layout = data.StructLayout({"agcu": max(1, (len(self.agcu_names) - 1).bit_length()),
                                             "entry": self.params.agcu.segment_layout})
        members = {"host": In(stream.Signature(32)), "state": Out(3), "error": Out(4), "error_unit": Out(16),
                   "cycles": Out(32), "tokens": Out(16), "seg": In(stream.Signature(self.seg_layout)),
                   "faults": Out(len(self.agcu_names)),
                   "unit_busy": Out(len(self.tile.unit_sites)), "agcu_busy": Out(len(self.agcu_names)),
                   "pin_waiting": Out(len(self.tile.watched_pins))}
        for c in range(channels):
            members[f"hbm_dfi{c}"] = Out(DfiSignature(self.hbm, ecc))
        super().__init__(members)

    def verilog(self, name: str = "top") -> str:
        """Verilog of the system (the tile's unit and switch modules generated once)."""
        from amaranth.back import verilog as verilog_backend

        return verilog_backend.convert(self, name=name, emit_src=False) + self.tile.module_verilog()

    def elaborate(self, platform):
        m = Module()
        tile = m.submodules.tile = self.tile
        wiring.connect(m, wiring.flipped(self.host), tile.host)
        m.d.comb += [self.state.eq(tile.state), self.error.eq(tile.error),
                     self.error_unit.eq(tile.error_unit),
                     self.cycles.eq(tile.cycles), self.tokens.eq(tile.tokens),
                     self.unit_busy.eq(tile.unit_busy), self.agcu_busy.eq(tile.agcu_busy),
                     self.pin_waiting.eq(tile.pin_waiting)]
        # segment writes to the addressed AGCU
        for k, name in enumerate(self.agcu_names):
            port = getattr(tile, f"{name}_seg")
            m.d.comb += [port.valid.eq(self.seg.valid & (self.seg.payload.agcu == k)),
                         port.payload.eq(self.seg.payload.entry),
                         self.faults[k].eq(getattr(tile, f"{name}_fault"))]
        m.d.comb += self.seg.ready.eq(Cat(*[getattr(tile, f"{n}_seg").ready & (self.seg.payload.agcu == k)
                                            for k, n in enumerate(self.agcu_names)]).any())
        bits = self.params.memory_addr_bits
        arb = m.submodules.arbiter = MemoryArbiter(len(self.agcu_names), bits)
        for k, name in enumerate(self.agcu_names):
            wiring.connect(m, getattr(tile, f"{name}_mem"), arb.requesters[k])
        bridge = m.submodules.bridge = MemoryPortBridge(bits, "hbm")
        wiring.connect(m, arb.memory, bridge.fabric)
        tier = MemoryTier(self.hbm, channels=self.channels, ecc=self.ecc)
        tier = m.submodules.hbm = DomainRenamer("hbm")(tier)
        wiring.connect(m, bridge.memory, tier.port)
        for c in range(self.channels):
            wiring.connect(m, wiring.flipped(getattr(self, f"hbm_dfi{c}")), getattr(tier, f"dfi{c}"))
        return m
