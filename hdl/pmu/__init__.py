"""The pattern memory unit (PMU): configuration format, RTL and golden model.

* :mod:`.config` — :class:`PmuParams`, :class:`AddressProgram` and :class:`PmuConfig` with its words.
* :mod:`.unit` — :class:`PatternMemoryUnit`, the Amaranth component.
* :mod:`.golden` — :func:`run_golden`, the flat-memory model.
"""

from .config import AddressProgram, ConfigError, PmuConfig, PmuParams
from .golden import run_golden
from .unit import PatternMemoryUnit

__all__ = ["AddressProgram", "ConfigError", "PmuConfig", "PmuParams", "PatternMemoryUnit", "run_golden"]
