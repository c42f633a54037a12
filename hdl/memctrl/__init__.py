"""Off-chip memory: DRAM timing presets, channel controllers, tiers, SECDED ECC.

* :mod:`.timing` — :class:`DramTiming` presets (HBM2-2000, HBM3-6400, DDR4-3200, DDR5-4800).
* :mod:`.interface` — the DFI-like bus, the user port, the address mapping.
* :mod:`.controller` — :class:`MemoryController`, one channel (FR-FCFS, open page, refresh).
* :mod:`.tier` — :class:`MemoryTier` (channels interleaved) and :class:`MemoryPortBridge`.
* :mod:`.crossbar` — :class:`MemoryCrossbar`, many requesters to interleaved channels, each
  requester's responses in its order.
* :mod:`.stack` — :class:`HbmStack`, the channel controllers of a stack behind a crossbar.
* :mod:`.ecc` — SECDED (72, 64) encoder/decoder and its golden model.
"""

from .interface import Command, DfiSignature, MemoryPortSignature, join_line_address, split_line_address
from .timing import LINE_BYTES, TIMING_PRESETS, DramTiming, timing_names, timing_preset

__all__ = ["FRONTEND_CYCLES", "MemoryController", "Command", "DfiSignature", "MemoryPortSignature",
           "join_line_address", "split_line_address", "MemoryPortBridge", "MemoryTier", "LINE_BYTES",
           "TIMING_PRESETS", "DramTiming", "timing_names", "timing_preset"]

#: Names of the RTL modules, loaded on first use: code that needs only the timing presets and
#: the port's constants (the AGCU's configuration format, the compiler) never imports the RTL.
_RTL = {"FRONTEND_CYCLES": ".controller", "MemoryController": ".controller", "MemoryPortBridge": ".tier",
        "MemoryTier": ".tier"}


def __getattr__(name: str):
    if name in _RTL:
        from importlib import import_module
        return getattr(import_module(_RTL[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
