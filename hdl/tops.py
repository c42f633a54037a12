"""The top-level designs OpenRDU generates Verilog for, per preset.

``openrdu verilog``, ``make verilog`` and ``make lint`` all walk this registry,
so a component added here is generated and linted everywhere at once; the stream
smoke test (``openrdu smoke``, ``make demo``) runs on the tops marked ``stream``.
The tile top is hierarchical (:meth:`hdl.tile.Tile.verilog`): one PCU and one PMU
module, instantiated at every site.

The PCU top is its structure (configuration loader, counters, SIMD stages with
a small op set, MAC array); the ``alu`` and ``tail`` tops hold the rest of its
logic (every ALU op of a stage lane; the transcendental tail), so that linting
all three covers a full PCU without generating one (a full ``small`` PCU is
~400 k lines of Verilog: build it with :class:`hdl.pcu.PcuParams` when needed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.lib import wiring

from .agcu import AddressGenerationUnit, AgcuParams
from .dma import DdrToHbmCopy
from .memctrl import MemoryController, timing_preset
from .network import FabricGraph, Switch
from .numerics.units import ArithmeticUnit, TailUnit
from .pcu import PatternComputeUnit, PcuParams
from .pmu import PatternMemoryUnit
from .presets import Preset, get_preset
from .stream import StreamFifo, StreamRegister, vector_layout
from .tile import Tile, TileParams

__all__ = ["Top", "TOPS", "generated_tops", "stream_tops"]


_HBM2_LINE_BITS = timing_preset("HBM2-2000").line_address_bits


@dataclass(frozen=True)
class Top:
    """A generated top: what it is, how to build it for a preset, and whether it is a plain stream
    pass-through (input ``i``, output ``o``) that the stream smoke test can check."""

    description: str
    factory: Callable[[Preset], wiring.Component]
    stream: bool = False
    #: presets for which this top is too big for routine linting (``openrdu lint`` skips it
    #: unless named with ``--top``; ``openrdu tile-build`` builds it hierarchically instead)
    heavy: tuple[str, ...] = ()


TOPS: dict[str, Top] = {
    "stream_fifo": Top("unit input FIFO: lanes x 32-bit vector stream, fifo_depth entries",
                       lambda p: StreamFifo(vector_layout(p.lanes), p.fifo_depth), stream=True),
    "stream_register": Top("per-hop pipeline register (skid buffer) on a lanes x 32-bit vector stream",
                           lambda p: StreamRegister(vector_layout(p.lanes)), stream=True),
    "pcu": Top("PCU structure: config loader, counters, SIMD stages (mov/fadd/mac), MAC array",
               lambda p: PatternComputeUnit(PcuParams(p, ops=("mov", "fadd", "mac"), tail=False,
                                                      systolic=p.stages <= p.lanes))),
    "pmu": Top("PMU: banked scratchpad, read/write address pipelines, N-buffering, striped layout",
               lambda p: PatternMemoryUnit(p)),
    "alu": Top("one PCU stage lane with every ALU op of the op table",
               lambda p: ArithmeticUnit()),
    "tail": Top("one lane of the PCU tail: exp, recip, rsqrt, sigmoid, SiLU, GeLU",
                lambda p: TailUnit()),
    "switch": Top("the network switch of an inner mesh position: three fabrics, credits, multicast",
                  lambda p: Switch(FabricGraph(p), min(1, p.grid_cols - 1), min(1, p.grid_rows - 1))),
    "tile": Top("the whole tile: PCUs, PMUs, switches, launch controller (unit modules generated once)",
                lambda p: Tile(TileParams(p)), heavy=("plasticine",)),
    "agcu": Top("AGCU: DMA engine with affine addresses, coalescing, segments (on an HBM2 channel's port)",
                lambda p: AddressGenerationUnit(AgcuParams(p, addr_bits=_HBM2_LINE_BITS))),
    "memctrl": Top("one HBM2-2000 channel controller with SECDED (FR-FCFS, open page, refresh); "
                   "the same for every fabric preset", lambda p: MemoryController("HBM2-2000", ecc=True)),
    "copy_path": Top("DDR4 -> HBM2 copy path: two AGCUs, two controllers, three clocks (built by its tests)",
                     lambda p: DdrToHbmCopy(p), heavy=("tiny", "quad", "small", "plasticine")),
}


def generated_tops(preset: str | Preset) -> dict[str, Callable[[], wiring.Component]]:
    """Return ``{top name: zero-argument factory}`` for every top of ``preset``."""
    preset = get_preset(preset)
    return {name: (lambda top=top: top.factory(preset)) for name, top in TOPS.items()}


def stream_tops(preset: str | Preset) -> dict[str, Callable[[], wiring.Component]]:
    """The tops the stream smoke test runs on."""
    return {name: factory for name, factory in generated_tops(preset).items() if TOPS[name].stream}
