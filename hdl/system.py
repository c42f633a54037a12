# amaranth: UnusedElaboratable=no
"""A tile with its AGCUs on an HBM tier: the unit that runs kernels with operands in HBM.

:class:`TileSystem`::

    host ─▶ Tile (fabric clock): PCUs, PMUs, switches, launch controller, one AGCU per edge site
                │ <agcu>_mem (one memory port per AGCU)
                ▼
          MemoryCrossbar: blocks of 256 lines per channel, upper bits folded into the
                │         channel number, a round-robin arbiter per channel,
                │         a reorder buffer per AGCU (responses in each AGCU's request order)
                │ one port per channel
                ▼
          C × (MemoryPortBridge ─▶ MemoryController, hbm clock) ─ hbm_dfi<c> ─▶ device models

``C`` is the preset's ``hbm_channels`` (an HBM2 stack: 8). Every AGCU reaches every channel,
and up to ``C`` AGCUs are served in the same cycle.

The host writes each AGCU's segment table through ``seg`` (privileged; a kernel image
cannot), loads a kernel with :mod:`hdl.launch` commands on ``host`` and passes tensor
addresses as kernel arguments, which the AGCUs take from the scalar fabric.

The first line turns off Amaranth's UnusedElaboratable warning for the objects this module
creates: the tile a :class:`TileSystem` builds is used exactly when the system is, and a system
built only to read its parameters (agcu names, layouts) is not a mistake.
"""

import dataclasses

from amaranth import Cat, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .memctrl import DfiSignature, timing_preset
from .memctrl.stack import STACK_HASHED, STACK_INTERLEAVE_LINES, HbmStack
from .tile import Tile, TileParams

__all__ = ["TileSystem"]


class TileSystem(wiring.Component):
    """A tile with AGCUs and an HBM tier (see the module docstring).

    Parameters
    ----------
    params : TileParams, Preset or str
        The tile (``agcus`` and ``memory_addr_bits`` are set here).
    hbm : str or DramTiming
        HBM timing preset.
    channels : int, optional
        HBM channels (lines interleaved across them); default: the preset's ``hbm_channels``.
    queue_depth : int
        Request slots of each channel controller.

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

    def __init__(self, params="tiny", *, hbm="HBM2-2000", channels: int | None = None, ecc: bool = False,
                 queue_depth: int = 32):
        base = params if isinstance(params, TileParams) else TileParams(params)
        self.hbm = timing_preset(hbm)
        channels = base.preset.hbm_channels if channels is None else channels
        if isinstance(channels, bool) or not isinstance(channels, int) \
                or not 1 <= channels <= 32 or channels & (channels - 1):
            raise ValueError(f"channels must be a power of two in [1, 32], got {channels!r}")
        self.channels = channels
        self.ecc = ecc
        self.queue_depth = queue_depth
        # the stack's address map: the testbenches place data with hdl.memctrl.crossbar.channel_map
        self.interleave_lines, self.hashed = STACK_INTERLEAVE_LINES, STACK_HASHED
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
        # an AGCU holds at most `outstanding` lines in flight: its reorder buffer never fills
        stack = m.submodules.hbm = HbmStack(
            self.hbm, channels=self.channels, ports=len(self.agcu_names), ecc=self.ecc,
            queue_depth=self.queue_depth, reorder_depth=1 << (self.params.agcu.outstanding - 1).bit_length(),
            memory_domain="hbm", interleave_lines=self.interleave_lines, hashed=self.hashed)
        for k, name in enumerate(self.agcu_names):
            wiring.connect(m, getattr(tile, f"{name}_mem"), stack.requesters[k])
        for c in range(self.channels):
            wiring.connect(m, wiring.flipped(getattr(self, f"hbm_dfi{c}")), getattr(stack, f"dfi{c}"))
        return m
