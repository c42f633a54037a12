"""The top-level designs OpenRDU generates Verilog for, per preset.

``openrdu verilog``, ``make verilog`` and ``make lint`` all walk this registry,
so a component added here is generated and linted everywhere at once. Later
units (PCU, PMU, switches, the tile) register themselves here as they land.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.lib import wiring

from .presets import Preset, get_preset
from .stream import StreamFifo, StreamRegister, vector_layout

__all__ = ["TOPS", "generated_tops"]

#: name -> (one-line description, factory taking a preset)
TOPS: dict[str, tuple[str, Callable[[Preset], wiring.Component]]] = {
    "stream_fifo": (
        "unit input FIFO: lanes x 32-bit vector stream, fifo_depth entries",
        lambda p: StreamFifo(vector_layout(p.lanes), p.fifo_depth),
    ),
    "stream_register": (
        "per-hop pipeline register (skid buffer) on a lanes x 32-bit vector stream",
        lambda p: StreamRegister(vector_layout(p.lanes)),
    ),
}


def generated_tops(preset: str | Preset) -> dict[str, Callable[[], wiring.Component]]:
    """Return ``{top name: zero-argument factory}`` for every top of ``preset``."""
    preset = get_preset(preset)
    return {name: (lambda factory=factory: factory(preset)) for name, (_, factory) in TOPS.items()}
