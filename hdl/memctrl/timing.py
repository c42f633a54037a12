"""DRAM timing presets: HBM2-2000, HBM3-6400, DDR4-3200, DDR5-4800.

One :class:`DramTiming` per preset, in command-clock cycles (nCK). The controller
RTL (:mod:`hdl.memctrl.controller`), the device models (:mod:`sim.dram`), the
benchmarks and the CoE host all read these objects; nothing else holds a timing value.

Sources (values copied, not tuned):

* ``docs/architecture.md``, Reference figures: DRAM timings (JEDEC-derived, as published in
  Ramulator 2 / DRAMsim3):
  HBM2 tCK 1 ns, CL = RCD = RP = 14, tRAS 34; HBM3 tCK 0.625 ns, CL 20, RCD 31, RP 26,
  51.2 GB/s per channel; DDR5-4800 tCK 0.416 ns, CL = RCD = RP = 34, 19.2 GB/s per
  32-bit subchannel.
* DRAMsim3 ``configs/HBM2_8Gb_x128.ini`` for every other HBM2 value (tRFC 260, tREFI 3900,
  tRRD_S/L 4/6, tFAW 30, tWTR_S/L 6/8, tWR 16, tRTP_L 6, CWL 4).
* DRAMsim3 ``configs/DDR4_8Gb_x8_3200.ini`` for DDR4-3200 (22-22-22, tRAS 52, tRFC 560,
  tREFI 12480, tRRD_S/L 4/8, tFAW 34, tWTR_S/L 4/12, tWR 24, tRTP 12, tCCD_S/L 4/8, CWL 16).
* DDR5-4800 values the reference figures do not give follow JESD79-5 nanosecond figures as used by
  Ramulator 2's ``DDR5.cpp`` (16 Gb x8: tRFC1 295 ns, tREFI 3.9 µs, tRAS 32 ns, tWR 30 ns,
  tRTP 7.5 ns, tCCD_L / tRRD_L 5 ns, tWTR_S/L 2.5/10 ns), rounded up to whole nCK.
* HBM3-6400 values the reference figures do not give are **assumed**: the HBM2 nanosecond values
  above, rounded up to whole cycles of 0.625 ns (Ramulator 2's HBM3 table is a placeholder
  copy of HBM2). They are marked in ``assumed`` and reported by ``openrdu mem-bench``.

Model conventions
-----------------
* One controller cycle is one command-clock cycle (tCK).
* Every access moves one 64-byte *line*; ``burst_cycles`` is how many tCK the data bus
  needs for it (HBM2/HBM3: 2, DDR4 BL8 on 64 bits: 4, DDR5 BL16 on 32 bits: 8).
* ``bytes_per_cycle`` = data-bus width × transfers per tCK; peak bandwidth =
  ``bytes_per_cycle / tck_ns`` GB/s per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

__all__ = ["DramTiming", "TIMING_PRESETS", "timing_preset", "timing_names", "LINE_BYTES", "TIMING_FIELDS"]

#: Bytes moved by one access (one burst) on every preset.
LINE_BYTES = 64

#: The timing constraints (nCK) the controller enforces and the device model checks.
TIMING_FIELDS = ("CL", "CWL", "RCD", "RP", "RAS", "RRD_S", "RRD_L", "FAW", "WR", "WTR_S", "WTR_L",
                 "RTP", "CCD_S", "CCD_L", "RFC", "REFI")


@dataclass(frozen=True)
class DramTiming:
    """One DRAM speed grade and organisation, in command-clock cycles.

    Attributes
    ----------
    name : str
        Preset name (``"HBM2-2000"``).
    tier : str
        ``"hbm"`` or ``"ddr"``.
    tck_ns : float
        Command clock period.
    bytes_per_cycle : int
        Data moved per tCK on one channel (bus width × transfers per tCK).
    bank_groups, banks_per_group : int
        Organisation of one channel.
    row_lines : int
        64-byte lines in one row (page size / 64).
    rows : int
        Rows per bank.
    channels : int
        Channels of one device (HBM stack or DIMM) — the default channel count of a tier.
    CL .. REFI : int
        Timing constraints in nCK (see :data:`TIMING_FIELDS`).
    assumed : tuple of str
        Fields whose value is an assumption rather than a published figure.
    """

    name: str
    tier: str
    tck_ns: float
    bytes_per_cycle: int
    bank_groups: int
    banks_per_group: int
    row_lines: int
    rows: int
    channels: int
    CL: int
    CWL: int
    RCD: int
    RP: int
    RAS: int
    RRD_S: int
    RRD_L: int
    FAW: int
    WR: int
    WTR_S: int
    WTR_L: int
    RTP: int
    CCD_S: int
    CCD_L: int
    RFC: int
    REFI: int
    assumed: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.tier not in ("hbm", "ddr"):
            raise ValueError(f"tier must be 'hbm' or 'ddr', got {self.tier!r}")
        if LINE_BYTES % self.bytes_per_cycle:
            raise ValueError(f"{self.name}: bytes_per_cycle {self.bytes_per_cycle} must divide {LINE_BYTES}")
        for name in ("bank_groups", "banks_per_group", "row_lines", "rows", "channels"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{self.name}: {name} must be a power of two, got {value}")
        for name in TIMING_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.name}: {name} must be a positive int (nCK), got {value!r}")
        if self.CL + self.burst_cycles + 2 <= self.CWL:
            raise ValueError(f"{self.name}: CWL {self.CWL} too large for CL {self.CL}")
        if self.REFI <= self.RFC + self.RP:
            raise ValueError(f"{self.name}: REFI must exceed RFC + RP")

    # -- derived figures ------------------------------------------------------------------
    @property
    def burst_cycles(self) -> int:
        """tCK the data bus is busy for one 64-byte line."""
        return LINE_BYTES // self.bytes_per_cycle

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def ccd_s(self) -> int:
        """Column-to-column spacing, different bank groups (never less than a burst)."""
        return max(self.CCD_S, self.burst_cycles)

    @property
    def ccd_l(self) -> int:
        """Column-to-column spacing, same bank group (never less than a burst)."""
        return max(self.CCD_L, self.burst_cycles)

    @property
    def read_to_write(self) -> int:
        """RD → WR spacing: read data must clear the bus before write data (1 tCK turnaround)."""
        return self.CL + self.burst_cycles + 2 - self.CWL

    @property
    def write_to_read_s(self) -> int:
        """WR → RD spacing, different bank group: CWL + burst + tWTR_S."""
        return self.CWL + self.burst_cycles + self.WTR_S

    @property
    def write_to_read_l(self) -> int:
        """WR → RD spacing, same bank group: CWL + burst + tWTR_L."""
        return self.CWL + self.burst_cycles + self.WTR_L

    @property
    def write_to_precharge(self) -> int:
        """WR → PRE spacing in the same bank: CWL + burst + tWR."""
        return self.CWL + self.burst_cycles + self.WR

    @property
    def peak_gbps(self) -> float:
        """Peak bandwidth of one channel in GB/s (10^9 bytes per second)."""
        return self.bytes_per_cycle / self.tck_ns

    @property
    def channel_bytes(self) -> int:
        return self.banks * self.rows * self.row_lines * LINE_BYTES

    @property
    def line_address_bits(self) -> int:
        """Bits of a line address within one channel."""
        return int(math.log2(self.banks * self.rows * self.row_lines))

    def reduced(self, *, bank_groups: int | None = None, banks_per_group: int | None = None,
                rows: int | None = None, **timing) -> DramTiming:
        """A copy with fewer banks/rows (for formal proofs and small tests) or changed timings."""
        changes = {k: v for k, v in (("bank_groups", bank_groups), ("banks_per_group", banks_per_group),
                                     ("rows", rows)) if v is not None}
        for key in timing:
            if key not in TIMING_FIELDS:
                raise ValueError(f"unknown timing {key!r}; known: {', '.join(TIMING_FIELDS)}")
        return replace(self, **changes, **timing)

    def describe(self) -> dict:
        """Every field and derived figure, for JSON reports."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["assumed"] = list(self.assumed)
        out.update(burst_cycles=self.burst_cycles, peak_GBps=round(self.peak_gbps, 3),
                   banks=self.banks, channel_MiB=self.channel_bytes >> 20)
        return out


def _ns(value_ns: float, tck_ns: float) -> int:
    """A nanosecond constraint as whole cycles, rounded up (JEDEC rounding, 2.5 % guard)."""
    return max(1, math.ceil(value_ns / tck_ns - 0.025))


_HBM3_TCK = 0.625
_DDR5_TCK = 0.416

TIMING_PRESETS: dict[str, DramTiming] = {t.name: t for t in (
    DramTiming("HBM2-2000", "hbm", tck_ns=1.0, bytes_per_cycle=32, bank_groups=4, banks_per_group=4,
               row_lines=16, rows=32768, channels=8,
               CL=14, CWL=4, RCD=14, RP=14, RAS=34, RRD_S=4, RRD_L=6, FAW=30, WR=16, WTR_S=6, WTR_L=8,
               RTP=6, CCD_S=1, CCD_L=2, RFC=260, REFI=3900),
    DramTiming("HBM3-6400", "hbm", tck_ns=_HBM3_TCK, bytes_per_cycle=32, bank_groups=4, banks_per_group=4,
               row_lines=16, rows=32768, channels=16,
               CL=20, CWL=_ns(4, _HBM3_TCK), RCD=31, RP=26, RAS=_ns(34, _HBM3_TCK),
               RRD_S=_ns(4, _HBM3_TCK), RRD_L=_ns(6, _HBM3_TCK), FAW=_ns(30, _HBM3_TCK),
               WR=_ns(16, _HBM3_TCK), WTR_S=_ns(6, _HBM3_TCK), WTR_L=_ns(8, _HBM3_TCK), RTP=_ns(6, _HBM3_TCK),
               CCD_S=2, CCD_L=_ns(2, _HBM3_TCK), RFC=_ns(350, _HBM3_TCK), REFI=_ns(3900, _HBM3_TCK),
               assumed=("CWL", "RAS", "RRD_S", "RRD_L", "FAW", "WR", "WTR_S", "WTR_L", "RTP", "CCD_L",
                        "RFC", "REFI")),
    DramTiming("DDR4-3200", "ddr", tck_ns=0.625, bytes_per_cycle=16, bank_groups=4, banks_per_group=4,
               row_lines=128, rows=65536, channels=1,
               CL=22, CWL=16, RCD=22, RP=22, RAS=52, RRD_S=4, RRD_L=8, FAW=34, WR=24, WTR_S=4, WTR_L=12,
               RTP=12, CCD_S=4, CCD_L=8, RFC=560, REFI=12480),
    DramTiming("DDR5-4800", "ddr", tck_ns=_DDR5_TCK, bytes_per_cycle=8, bank_groups=8, banks_per_group=4,
               row_lines=64, rows=65536, channels=2,
               CL=34, CWL=32, RCD=34, RP=34, RAS=_ns(32, _DDR5_TCK), RRD_S=8, RRD_L=_ns(5, _DDR5_TCK),
               FAW=32, WR=_ns(30, _DDR5_TCK), WTR_S=_ns(2.5, _DDR5_TCK), WTR_L=_ns(10, _DDR5_TCK),
               RTP=_ns(7.5, _DDR5_TCK), CCD_S=8, CCD_L=_ns(5, _DDR5_TCK), RFC=_ns(295, _DDR5_TCK),
               REFI=_ns(3900, _DDR5_TCK)),
)}


def timing_names(tier: str | None = None) -> list[str]:
    """Preset names, optionally only those of one tier."""
    return [n for n, t in TIMING_PRESETS.items() if tier is None or t.tier == tier]


def timing_preset(name: str | DramTiming) -> DramTiming:
    """The preset called ``name`` (case-insensitive); a :class:`DramTiming` passes through.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, DramTiming):
        return name
    if not isinstance(name, str):
        raise TypeError(f"timing preset must be a name or DramTiming, got {type(name).__name__}")
    for key, value in TIMING_PRESETS.items():
        if key.lower() == name.lower():
            return value
    raise ValueError(f"unknown DRAM timing preset {name!r}; known: {', '.join(TIMING_PRESETS)}")
