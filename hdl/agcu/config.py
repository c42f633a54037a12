"""AGCU parameters, kernel configuration and segment table entries.

As for the PMU (:mod:`hdl.pmu.config`), one Amaranth layout (:func:`config_layout`) is
the configuration register: the RTL slices it, :meth:`AgcuConfig.encode` packs it and
:meth:`AgcuConfig.decode` reads it back. Word 0 is a header (bits 31..16
:data:`CONFIG_MAGIC`, 15..8 the version, 7..0 the number of body words).

Addresses
---------
A *vector address* counts vectors (``lanes`` 32-bit words, ``lanes * 4`` bytes) from
the base of a *segment*. One run of a configuration visits

    v = offset [+ scalar] + ctr0 + ctr1 + ctr2

for every step of its counter nest (innermost first; ``scalar`` is one word taken
from ``sin`` at the start of the run when ``base_from_scalar`` is set). Vector ``v``
lies in the 64-byte memory line ``segment.base + v // vectors_per_line`` at slot
``v % vectors_per_line`` (slot ``s`` covers the 64-bit words ``s * lanes / 2`` …
``(s + 1) * lanes / 2 - 1`` of the line).

Segments
--------
The segment table is privileged: the host writes it through the unit's ``seg``
stream (payload :func:`segment_layout`, built by :meth:`Segment.payload`); a kernel
image only names a segment index. A segment is ``bound`` lines from line ``base``
with read and/or write permission. A run whose lowest or highest vector address
lies outside ``[0, bound * vectors_per_line)``, or whose direction the segment does
not permit, *faults* before issuing any memory request. Segments not yet written
have ``bound = 0`` and no permission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amaranth.lib import data

from ..config_port import body_words, decode_image, encode_image
from ..counters import Counter, counter_layout, counter_steps, nest_fields, nest_from_fields
from ..memctrl.interface import LINE_WORDS, WORD_BITS
from ..presets import WORD_BITS as LANE_BITS
from ..presets import Preset, get_preset

__all__ = ["CONFIG_MAGIC", "CONFIG_VERSION", "DIRECTIONS", "LINE_BYTES", "VECTORS_PER_CYCLE", "AgcuParams",
           "AgcuConfig", "Segment", "ConfigError", "config_layout", "segment_layout"]

CONFIG_MAGIC = 0xA6C0
CONFIG_VERSION = 1
#: Transfer directions, by their code in the ``direction`` field.
DIRECTIONS = ("load", "store")
#: Bytes per memory line.
LINE_BYTES = LINE_WORDS * WORD_BITS // 8
#: Width of the ``offset`` field and of a ``base_from_scalar`` scalar.
OFFSET_BITS = 32
#: Most vectors an AGCU moves per cycle: its counter nest steps at most once per cycle, one vector
#: per step on ``vin`` or ``vout``, and it issues at most one line request per cycle (its request
#: register; :mod:`hdl.agcu.unit`). The memory must keep up for it to reach this rate: a load
#: holds at most ``outstanding`` lines, so the memory's round trip can lower it further.
VECTORS_PER_CYCLE = 1


class ConfigError(ValueError):
    """An AGCU configuration or segment the hardware cannot take; the message says which field and why."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AgcuParams:
    """Hardware parameters of one AGCU.

    Parameters
    ----------
    preset : Preset or str
        Gives ``lanes`` (the vector width), ``counters`` and ``counter_width``. A vector of
        ``lanes * 4`` bytes must be a whole number of 64-bit memory words and divide a
        64-byte line: ``lanes`` in {2, 4, 8, 16}.
    addr_bits : int
        Width of the memory port's line address (1 to 58: a 64-byte line address of a
        64-bit byte address).
    segments : int
        Entries of the segment table (1 to 16).
    outstanding : int
        Line requests that may be in flight at once (2 to 256); also the depth of the
        load response buffer.
    """

    preset: Preset
    addr_bits: int
    segments: int = 4
    outstanding: int = 16

    def __init__(self, preset: Preset | str, addr_bits: int, segments: int = 4, outstanding: int = 16):
        preset = get_preset(preset)
        lanes = preset.lanes
        vector_bytes = lanes * LANE_BITS // 8
        if vector_bytes % (WORD_BITS // 8) or LINE_BYTES % vector_bytes:
            raise ValueError(f"the AGCU needs a vector of whole 64-bit words that divides a "
                             f"{LINE_BYTES}-byte line (lanes 2, 4, 8 or 16); preset {preset.name!r} has "
                             f"{lanes} lanes ({vector_bytes} bytes)")
        if not _is_int(addr_bits) or not 1 <= addr_bits <= 58:
            raise ValueError(f"addr_bits must be an int in [1, 58], got {addr_bits!r}")
        if not _is_int(segments) or not 1 <= segments <= 16:
            raise ValueError(f"segments must be an int in [1, 16], got {segments!r}")
        if not _is_int(outstanding) or not 2 <= outstanding <= 256:
            raise ValueError(f"outstanding must be an int in [2, 256], got {outstanding!r}")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "addr_bits", addr_bits)
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "outstanding", outstanding)

    @property
    def lanes(self) -> int:
        return self.preset.lanes

    @property
    def counters(self) -> int:
        return self.preset.counters

    @property
    def counter_width(self) -> int:
        return self.preset.counter_width

    @property
    def vectors_per_line(self) -> int:
        """Vectors in one 64-byte line (1, 2, 4 or 8)."""
        return LINE_BYTES * 8 // (self.lanes * LANE_BITS)

    @property
    def words_per_vector(self) -> int:
        """64-bit memory words (mask bits) one vector covers."""
        return self.lanes * LANE_BITS // WORD_BITS

    @property
    def index_bits(self) -> int:
        """Width of a segment index."""
        return max(1, (self.segments - 1).bit_length())

    @property
    def vaddr_bits(self) -> int:
        """Width of a vector address: ``offset + scalar + sum of counters`` never wraps."""
        largest = 2 * ((1 << OFFSET_BITS) - 1) + self.counters * ((1 << self.counter_width) - 1)
        return largest.bit_length()

    @property
    def layout(self) -> data.StructLayout:
        return config_layout(self)

    @property
    def config_words(self) -> int:
        return body_words(self.layout)

    @property
    def segment_layout(self) -> data.StructLayout:
        return segment_layout(self)


def config_layout(params: AgcuParams) -> data.StructLayout:
    """The configuration register of an AGCU."""
    return data.StructLayout({
        "direction": 1,
        "segment": params.index_bits,
        "counters_used": 2,
        "counter": data.ArrayLayout(counter_layout(params.counter_width), params.counters),
        "offset": OFFSET_BITS,
        "base_from_scalar": 1,
    })


def segment_layout(params: AgcuParams) -> data.StructLayout:
    """Payload of the ``seg`` stream: one segment table entry.

    ``index`` (entry), ``base`` (first line), ``bound`` (size in lines, up to
    ``2**addr_bits``), ``read`` and ``write`` (permissions).
    """
    return data.StructLayout({
        "index": params.index_bits,
        "base": params.addr_bits,
        "bound": params.addr_bits + 1,
        "read": 1,
        "write": 1,
    })


@dataclass(frozen=True)
class Segment:
    """One segment table entry (written by the host, never by a kernel image).

    Attributes
    ----------
    index : int
        Table entry, 0 to ``segments - 1``.
    base : int
        First line address of the segment.
    bound : int
        Size in lines; ``base + bound`` must not exceed ``2**addr_bits``.
    read, write : bool
        Loads / stores may use the segment.
    """

    index: int
    base: int
    bound: int
    read: bool = True
    write: bool = True

    def fields(self, params: AgcuParams) -> dict:
        """The :func:`segment_layout` fields; raises :class:`ConfigError` for an entry that does not fit."""
        if not _is_int(self.index) or not 0 <= self.index < params.segments:
            raise ConfigError(f"segment index must be in [0, {params.segments - 1}], got {self.index!r}")
        lines = 1 << params.addr_bits
        if not _is_int(self.base) or not 0 <= self.base < lines:
            raise ConfigError(f"segment {self.index}: base must be a line address in [0, {lines - 1}], "
                              f"got {self.base!r}")
        if not _is_int(self.bound) or not 0 <= self.bound <= lines - self.base:
            raise ConfigError(f"segment {self.index}: bound must be in [0, {lines - self.base}] lines "
                              f"(base + bound <= 2**{params.addr_bits}), got {self.bound!r}")
        for name in ("read", "write"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"segment {self.index}: {name} must be a bool, got {getattr(self, name)!r}")
        return {"index": self.index, "base": self.base, "bound": self.bound, "read": int(self.read),
                "write": int(self.write)}

    def payload(self, params: AgcuParams) -> int:
        """The ``seg`` stream payload as an integer."""
        return data.Layout.cast(segment_layout(params)).const(self.fields(params)).as_value().value

    def permits(self, direction: str) -> bool:
        return self.read if direction == "load" else self.write


@dataclass(frozen=True)
class AgcuConfig:
    """A kernel's AGCU program: one run per ``start`` token.

    Attributes
    ----------
    direction : str
        ``"load"`` (memory → ``vout``) or ``"store"`` (``vin`` → memory).
    segment : int
        Segment table entry the run's addresses are relative to.
    counters : list of Counter
        Loop nest, innermost first (1 to the preset's ``counters``); one vector per step.
    offset : int
        Added to the counter sum (vector units, 32 bits).
    base_from_scalar : bool
        At the start of each run take one word from ``sin`` and add it to ``offset``
        (kernel arguments such as tensor addresses arrive on the scalar fabric).
    """

    direction: str = "load"
    segment: int = 0
    counters: list[Counter] = field(default_factory=lambda: [Counter(0, 1)])
    offset: int = 0
    base_from_scalar: bool = False

    def check(self, params: AgcuParams) -> dict:
        """The :func:`config_layout` fields; raises :class:`ConfigError` naming the bad field."""
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be 'load' or 'store', got {self.direction!r}")
        if not _is_int(self.segment) or not 0 <= self.segment < params.segments:
            raise ConfigError(f"segment must be an index in [0, {params.segments - 1}] "
                              f"(this AGCU has {params.segments} segments), got {self.segment!r}")
        if not isinstance(self.counters, (list, tuple)):
            raise ConfigError(f"counters must be a list of Counter, got {self.counters!r}")
        counters = nest_fields(list(self.counters), params.counters, params.counter_width, "AGCU program",
                               ConfigError)
        if not _is_int(self.offset) or not 0 <= self.offset < 1 << OFFSET_BITS:
            raise ConfigError(f"offset must be in [0, {(1 << OFFSET_BITS) - 1}], got {self.offset!r}")
        if not isinstance(self.base_from_scalar, bool):
            raise ConfigError(f"base_from_scalar must be a bool, got {self.base_from_scalar!r}")
        return {"direction": DIRECTIONS.index(self.direction), "segment": self.segment,
                "counters_used": len(self.counters), "counter": counters, "offset": self.offset,
                "base_from_scalar": int(self.base_from_scalar)}

    def encode(self, params: AgcuParams) -> list[int]:
        """Header word plus body words (least significant first) for the configuration port."""
        return encode_image(params.layout, self.check(params), CONFIG_MAGIC, CONFIG_VERSION)

    @classmethod
    def decode(cls, words: Sequence[int], params: AgcuParams) -> AgcuConfig:
        """Inverse of :meth:`encode`."""
        view = decode_image(words, params.layout, CONFIG_MAGIC, CONFIG_VERSION, "AGCU", ConfigError)
        return cls(direction=DIRECTIONS[int(view.direction)], segment=int(view.segment),
                   counters=nest_from_fields(view.counter, int(view.counters_used)), offset=int(view.offset),
                   base_from_scalar=bool(int(view.base_from_scalar)))

    def vector_addresses(self, scalar: int = 0) -> list[int]:
        """The vector address of every step of one run (``scalar``: the word taken from ``sin``)."""
        base = self.offset + (scalar if self.base_from_scalar else 0)
        return [base + sum(values) for values, _ in counter_steps(self.counters)]

    def address_range(self, scalar: int = 0) -> tuple[int, int]:
        """Lowest and highest vector address of one run (strides are positive: starts and last values)."""
        base = self.offset + (scalar if self.base_from_scalar else 0)
        lo = base + sum(c.start for c in self.counters)
        hi = base + sum(c.start + (c.trips - 1) * c.stride for c in self.counters)
        return lo, hi
