"""The address generation and coalescing unit (AGCU): configuration, RTL and golden model.

* :mod:`.config` — :class:`AgcuParams`, :class:`AgcuConfig` with its words, :class:`Segment` entries.
* :mod:`.unit` — :class:`AddressGenerationUnit`, the Amaranth component (a DMA engine on a memory port).
* :mod:`.golden` — :func:`run_golden`, the model of one run (requests, vectors, memory, faults).
"""

from .config import AgcuConfig, AgcuParams, ConfigError, Segment
from .golden import AgcuResult, LineRequest, run_golden

__all__ = ["AgcuConfig", "AgcuParams", "ConfigError", "Segment", "AgcuResult", "LineRequest", "run_golden",
           "AddressGenerationUnit"]


def __getattr__(name: str):
    # the Amaranth component loads on first use: code that needs only the configuration format
    # and the golden model (the compiler, the emulator) never imports the RTL
    if name == "AddressGenerationUnit":
        from .unit import AddressGenerationUnit
        return AddressGenerationUnit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
