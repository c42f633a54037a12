"""Named hardware parameter sets: the one place presets live.

Every later component (PCU, PMU, switches, tile), the compiler, the CLI and the
tests read their parameters from a :class:`Preset` obtained here, so that a
preset name means the same fabric everywhere.

=============  =========  =============  ===========  ======  ====  ==============
preset         grid       PCU            PMU          tracks  HBM   notes
=============  =========  =============  ===========  ======  ====  ==============
``tiny``       2 × 2      4 lanes × 4    4 × 1 KiB    1       2     unit tests, Icarus
``quad``       2 × 4      4 lanes × 4    4 × 1 KiB    1       2     ``tiny`` with 4 PCUs (gated FFN)
``small``      4 × 4      8 lanes × 4    8 × 4 KiB    2       8     default; kernels
``plasticine`` 16 × 8     16 lanes × 6   16 × 16 KiB  1       2     Plasticine (ISCA 2017)
=============  =========  =============  ===========  ======  ====  ==============

*tracks*: vector tracks per link direction; *HBM*: HBM2 channels of the kernel system
(``hbm_channels``; an HBM2 stack has 8).

The grid is a checkerboard of units: half of the ``grid_cols × grid_rows``
sites are PCUs and half are PMUs (Plasticine: 16 × 8 sites, 64 PCUs, 64 PMUs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Preset", "PRESETS", "DEFAULT_PRESET", "UnknownPresetError", "get_preset", "preset_names"]

#: Width of one lane, one scalar and one configuration word, in bits.
WORD_BITS = 32


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class Preset:
    """A named, validated set of fabric parameters.

    Parameters
    ----------
    name : str
        Preset name (used in file names and reports).
    grid_cols, grid_rows : int
        Size of the unit checkerboard; ``grid_cols * grid_rows`` sites, half PCUs,
        half PMUs. Each in [1, 64]; at least 2 sites in total.
    lanes : int
        SIMD lanes of a PCU and vector width (in 32-bit words) of the vector
        fabric. A power of two in [1, 64] (the cross-lane reduction tree has
        ``log2(lanes)`` levels).
    stages : int
        Pipeline stages of a PCU body, in [1, 16].
    pmu_banks : int
        SRAM banks per PMU, a power of two in [1, 64].
    pmu_bank_kib : int
        Capacity of one PMU bank in KiB, in [1, 1024].
    fifo_depth : int
        Depth of unit input FIFOs in entries, in [2, 1024].
    counters : int
        Nested counters per PCU/PMU header, in [1, 3].
    counter_width : int
        Width of each counter in bits, in [4, 32].
    vector_tracks, scalar_tracks, control_tracks : int
        Capacity of each switch-to-switch link per direction on the vector, scalar and control
        fabrics: the number of independent routes (tracks) it carries, each in [1, 8].
    switch_fifo_depth : int
        Entries of each switch input FIFO (and of the pin FIFO in front of each unit input), in
        [2, 64]. Credit-based flow control runs at full rate when it covers the credit round
        trip: 4 cycles with ``hop_register``, 2 without.
    hop_register : bool
        Put a pipeline register on every switch-to-switch hop (data forward, credits back).
    clock_mhz : float
        Nominal clock used to turn cycles into time, in (0, 10000].
    hbm_channels : int
        HBM channels the tile's AGCUs reach through a crossbar in a kernel system
        (:class:`hdl.system.TileSystem`; lines interleaved across them), a power of two in
        [1, 32]. An HBM2 stack has 8 channels of 32 GB/s.
    """

    name: str
    grid_cols: int
    grid_rows: int
    lanes: int
    stages: int
    pmu_banks: int
    pmu_bank_kib: int
    fifo_depth: int = 8
    counters: int = 3
    counter_width: int = 16
    vector_tracks: int = 1
    scalar_tracks: int = 1
    control_tracks: int = 2
    switch_fifo_depth: int = 4
    hop_register: bool = True
    clock_mhz: float = 1000.0
    hbm_channels: int = 2

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Preset name must be a non-empty string, got {self.name!r}")

        def check_int(field: str, low: int, high: int, power_of_two: bool = False):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"Preset {self.name!r}: {field} must be an int, got {type(value).__name__}"
                )
            if not low <= value <= high or (power_of_two and not _is_power_of_two(value)):
                kind = "a power of two" if power_of_two else "an integer"
                raise ValueError(
                    f"Preset {self.name!r}: {field} must be {kind} in [{low}, {high}], got {value}"
                )

        check_int("grid_cols", 1, 64)
        check_int("grid_rows", 1, 64)
        if self.grid_cols * self.grid_rows < 2:
            raise ValueError(
                f"Preset {self.name!r}: grid_cols * grid_rows must be at least 2 "
                f"(one PCU and one PMU), got {self.grid_cols * self.grid_rows}"
            )
        check_int("lanes", 1, 64, power_of_two=True)
        check_int("stages", 1, 16)
        check_int("pmu_banks", 1, 64, power_of_two=True)
        check_int("pmu_bank_kib", 1, 1024)
        check_int("fifo_depth", 2, 1024)
        check_int("counters", 1, 3)
        check_int("counter_width", 4, 32)
        for tracks in ("vector_tracks", "scalar_tracks", "control_tracks"):
            check_int(tracks, 1, 8)
        check_int("switch_fifo_depth", 2, 64)
        check_int("hbm_channels", 1, 32, power_of_two=True)
        if not isinstance(self.hop_register, bool):
            raise TypeError(f"Preset {self.name!r}: hop_register must be a bool")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)):
            raise TypeError(f"Preset {self.name!r}: clock_mhz must be a number")
        if not 0 < self.clock_mhz <= 10_000:
            raise ValueError(
                f"Preset {self.name!r}: clock_mhz must be in (0, 10000], got {self.clock_mhz}"
            )

    # Derived figures -----------------------------------------------------------------

    @property
    def sites(self) -> int:
        """Number of unit sites in the checkerboard."""
        return self.grid_cols * self.grid_rows

    @property
    def num_pcus(self) -> int:
        """PCUs in the checkerboard (sites where ``(col + row)`` is even)."""
        return (self.sites + 1) // 2

    @property
    def num_pmus(self) -> int:
        """PMUs in the checkerboard (sites where ``(col + row)`` is odd)."""
        return self.sites // 2

    @property
    def vector_bits(self) -> int:
        """Width of one vector (``lanes`` 32-bit words)."""
        return self.lanes * WORD_BITS

    @property
    def pmu_bank_words(self) -> int:
        """32-bit words per PMU bank."""
        return self.pmu_bank_kib * 1024 * 8 // WORD_BITS

    @property
    def pmu_kib(self) -> int:
        """Capacity of one PMU in KiB."""
        return self.pmu_banks * self.pmu_bank_kib

    def tracks(self, fabric: str) -> int:
        """Tracks per link direction on ``fabric`` (``"vector"``, ``"scalar"`` or ``"control"``)."""
        if fabric not in ("vector", "scalar", "control"):
            raise ValueError(f"unknown fabric {fabric!r}; fabrics: vector, scalar, control")
        return getattr(self, f"{fabric}_tracks")

    def replace(self, **changes) -> Preset:
        """Return a copy with some fields changed (validated like a new preset)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            valid = ", ".join(f.name for f in dataclasses.fields(self))
            raise ValueError(f"Unknown preset field(s) {', '.join(unknown)}; valid fields: {valid}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("tiny", grid_cols=2, grid_rows=2, lanes=4, stages=4, pmu_banks=4, pmu_bank_kib=1,
               fifo_depth=4),
        Preset("quad", grid_cols=2, grid_rows=4, lanes=4, stages=4, pmu_banks=4, pmu_bank_kib=1,
               fifo_depth=4),
        # two vector tracks per link: with one, the fused FFN routes only half its pipelines;
        # a whole HBM2 stack (8 channels): each of the 8 AGCUs can stream one vector per cycle
        Preset("small", grid_cols=4, grid_rows=4, lanes=8, stages=4, pmu_banks=8, pmu_bank_kib=4,
               fifo_depth=8, vector_tracks=2, hbm_channels=8),
        Preset("plasticine", grid_cols=16, grid_rows=8, lanes=16, stages=6, pmu_banks=16,
               pmu_bank_kib=16, fifo_depth=16),
    )
}

#: The preset used when a command is given none.
DEFAULT_PRESET = "small"


class UnknownPresetError(ValueError):
    """Raised for a preset name that is not in :data:`PRESETS`."""


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str | Preset) -> Preset:
    """Return the preset called ``name`` (a :class:`Preset` is passed through).

    Raises
    ------
    UnknownPresetError
        If there is no such preset; the message lists the valid names.
    """
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UnknownPresetError(
            f"Unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"
        ) from None
