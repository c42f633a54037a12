"""Build parameters of a tile, without the tile: :class:`TileParams` and its defaults.

The compiler, the emulator and the host need a tile's parameters (the preset, the PCUs' ops,
whether AGCUs are built …) but not its Amaranth elaboration; this module imports only the
presets and the units' configuration formats (:mod:`hdl.pcu.config`, :mod:`hdl.pmu.config`,
:mod:`hdl.agcu.config`), never a unit's RTL, the tile or a back-end. :mod:`hdl.tile`
re-exports :class:`TileParams`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .agcu.config import AgcuParams
from .memctrl.timing import LINE_BYTES, DramTiming, timing_preset
from .pcu.config import PcuParams
from .pmu.config import PmuParams
from .presets import Preset, get_preset

__all__ = ["TileParams", "TILE_PCU_OPS", "DEFAULT_MEMORY_ADDR_BITS", "MemorySystem", "KERNEL_MEMORY",
           "kernel_memory"]

#: Line-address width of the AGCUs' memory ports unless told otherwise: one HBM2 channel.
DEFAULT_MEMORY_ADDR_BITS = timing_preset("HBM2-2000").line_address_bits

#: Lines each AGCU of a tile may have in flight. The round trip from an AGCU through the crossbar,
#: a clock bridge and an HBM2-2000 controller and back is about 40 fabric cycles (``small``: 16
#: lines streamed 0.79 vectors of half a line per cycle), so 32 lines keep a load at one vector
#: per cycle.
TILE_AGCU_OUTSTANDING = 32

#: ALU ops of a tile's PCUs unless told otherwise: enough for element-wise kernels while
#: keeping a ``small`` tile's Verilog near half a million lines.
TILE_PCU_OPS = ("mov", "fadd", "fmul")


@dataclass(frozen=True)
class TileParams:
    """Build parameters of a tile.

    Parameters
    ----------
    preset : Preset or str
        Grid, lanes, stages, PMU size, tracks, FIFO depths.
    units : str
        ``"all"``: a PCU or PMU at every unit site; ``"none"``: only the network (every
        unit site open, for testing the fabric alone).
    pcu_ops : sequence of str
        ALU ops of every PCU stage (see :class:`hdl.pcu.PcuParams`).
    pcu_tail, pcu_systolic : bool
        Build the PCUs' transcendental tail / systolic MAC array.
    pcu_acc_depth : int
        Entries per lane of every PCU's accumulator register file (0: none; see
        :class:`hdl.pcu.PcuParams`).
    hierarchical : bool
        Instantiate units as separately generated Verilog modules (see module docstring).
    agcus : bool
        Build an AGCU (:class:`hdl.agcu.AddressGenerationUnit`) at every AGCU site; each then
        has a memory port ``<site>_mem``, a segment-table port ``<site>_seg`` and a
        ``<site>_fault`` flag on the tile instead of open pins.
    memory_addr_bits : int
        Line-address width of those memory ports.
    """

    preset: Preset
    units: str = "all"
    pcu_ops: tuple[str, ...] = TILE_PCU_OPS
    pcu_tail: bool = False
    pcu_systolic: bool = False
    pcu_acc_depth: int = 0
    hierarchical: bool = True
    agcus: bool = False
    memory_addr_bits: int = DEFAULT_MEMORY_ADDR_BITS

    def __init__(self, preset: Preset | str, units: str = "all", pcu_ops=TILE_PCU_OPS,
                 pcu_tail: bool = False, pcu_systolic: bool = False, hierarchical: bool = True,
                 agcus: bool = False, memory_addr_bits: int = DEFAULT_MEMORY_ADDR_BITS,
                 pcu_acc_depth: int = 0):
        preset = get_preset(preset)
        if units not in ("all", "none"):
            raise ValueError(f"units must be 'all' or 'none', got {units!r}")
        for name, value in (("pcu_tail", pcu_tail), ("pcu_systolic", pcu_systolic),
                            ("hierarchical", hierarchical), ("agcus", agcus)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "pcu_ops", tuple(pcu_ops))
        object.__setattr__(self, "pcu_tail", pcu_tail)
        object.__setattr__(self, "pcu_systolic", pcu_systolic)
        object.__setattr__(self, "pcu_acc_depth", pcu_acc_depth)
        object.__setattr__(self, "hierarchical", hierarchical)
        object.__setattr__(self, "agcus", agcus)
        object.__setattr__(self, "memory_addr_bits", memory_addr_bits)
        _ = self.pcu  # validates the PCU options now
        if agcus:
            _ = self.agcu  # and the AGCU's (lanes, address width)

    @property
    def pcu(self) -> PcuParams:
        return PcuParams(self.preset, ops=self.pcu_ops, tail=self.pcu_tail, systolic=self.pcu_systolic,
                         acc_depth=self.pcu_acc_depth)

    @property
    def pmu(self) -> PmuParams:
        return PmuParams(self.preset)

    @property
    def agcu(self) -> AgcuParams:
        return AgcuParams(self.preset, addr_bits=self.memory_addr_bits, outstanding=TILE_AGCU_OUTSTANDING)

    def populated(self, site) -> bool:
        """Whether a unit is built at ``site`` (a :class:`hdl.network.Site`)."""
        if site.kind == "agcu":
            return self.agcus
        return self.units == "all" and site.kind in ("pcu", "pmu")


@dataclass(frozen=True)
class MemorySystem:
    """The HBM a tile's AGCUs share in a :class:`hdl.system.TileSystem`, and the fabric clock.

    Parameters
    ----------
    hbm : str
        DRAM timing preset of every channel (:func:`hdl.memctrl.timing_preset`).
    channels : int
        Channels of the tier; lines are interleaved across them.
    fabric_ps : int
        Period of the fabric clock (the tile's cycles) in picoseconds; the channels run at the
        preset's ``tck_ns``.
    """

    hbm: str
    channels: int
    fabric_ps: int

    @property
    def timing(self) -> DramTiming:
        return timing_preset(self.hbm)

    @property
    def hbm_cycles_per_fabric_cycle(self) -> float:
        """Memory clock cycles (tCK) in one fabric cycle."""
        return self.fabric_ps / (self.timing.tck_ns * 1000)

    def bandwidth_limits(self) -> dict[str, float]:
        """Bytes per fabric cycle each stage of the memory path can carry at most.

        ``devices``
            ``channels × bytes_per_cycle`` per tCK (the data buses at their peak,
            :class:`hdl.memctrl.timing.DramTiming`), in fabric cycles.
        ``channel_ports``
            The AGCUs reach the channels through a :class:`hdl.memctrl.crossbar.MemoryCrossbar`
            with one port per channel; each channel's bridge takes one line request per fabric
            cycle and its controller one per tCK.
        """
        ratio = self.hbm_cycles_per_fabric_cycle
        return {"devices": self.channels * self.timing.bytes_per_cycle * ratio,
                "channel_ports": self.channels * LINE_BYTES * min(1.0, ratio)}

    @property
    def bytes_per_cycle(self) -> float:
        """The modelled HBM bandwidth in bytes per fabric cycle: the least of
        :meth:`bandwidth_limits` (HBM2-2000, 1 ns fabric: 32 bytes per cycle per channel)."""
        return min(self.bandwidth_limits().values())


#: The memory kernels run on: its HBM timing and fabric clock; the channel count here is the
#: presets' default, a preset's own is ``Preset.hbm_channels`` (:func:`kernel_memory`).
KERNEL_MEMORY = MemorySystem("HBM2-2000", channels=2, fabric_ps=1000)


def kernel_memory(preset: Preset | str) -> MemorySystem:
    """The memory system of ``preset``'s kernel system: :data:`KERNEL_MEMORY` with the preset's
    ``hbm_channels`` (``sim.kernels`` builds its :class:`hdl.system.TileSystem` from it; the
    compiler's roofline reads its bandwidth)."""
    return MemorySystem(KERNEL_MEMORY.hbm, channels=get_preset(preset).hbm_channels,
                        fabric_ps=KERNEL_MEMORY.fabric_ps)
