"""The pattern memory unit (PMU): configuration format, RTL and golden model.

* :mod:`.config` — :class:`PmuParams`, :class:`AddressProgram` and :class:`PmuConfig` with its words.
* :mod:`.unit` — :class:`PatternMemoryUnit`, the Amaranth component.
* :mod:`.golden` — :func:`run_golden`, the flat-memory model.
"""

from .config import AddressProgram, ConfigError, PmuConfig, PmuParams
from .golden import run_golden

__all__ = ["AddressProgram", "ConfigError", "PmuConfig", "PmuParams", "PatternMemoryUnit", "run_golden"]


def __getattr__(name: str):
    # the Amaranth component loads on first use: code that needs only the configuration format
    # and the golden model (the compiler, the emulator) never imports the RTL
    if name == "PatternMemoryUnit":
        from .unit import PatternMemoryUnit
        return PatternMemoryUnit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
