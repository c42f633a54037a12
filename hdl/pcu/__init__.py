"""The pattern compute unit (PCU): configuration format, RTL and golden model.

* :mod:`.config` — :class:`PcuParams` (hardware parameters), :class:`PcuConfig` (a program) and
  its word encoding.
* :mod:`.unit` — :class:`PatternComputeUnit`, the Amaranth component.
* :mod:`.golden` — :func:`run_golden`, the bit-exact model built on the op table's golden functions.
"""

from .config import Accumulator, ConfigError, PcuConfig, PcuParams, ScalarInput, Stage, VectorInput
from .golden import run_golden

__all__ = ["Accumulator", "ConfigError", "PcuConfig", "PcuParams", "ScalarInput", "Stage", "VectorInput",
           "PatternComputeUnit", "run_golden"]


def __getattr__(name: str):
    # the Amaranth component loads on first use: code that needs only the configuration format
    # and the golden model (the compiler, the emulator) never imports the RTL
    if name == "PatternComputeUnit":
        from .unit import PatternComputeUnit
        return PatternComputeUnit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
