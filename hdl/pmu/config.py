"""PMU parameters and configuration: Python dataclasses ↔ configuration words.

As for the PCU (:mod:`hdl.pcu.config`), one Amaranth layout (:func:`config_layout`)
is the configuration register: the RTL slices it, :meth:`PmuConfig.encode` packs it
and :meth:`PmuConfig.decode` reads it back. Word 0 is a header (bits 31..16
:data:`CONFIG_MAGIC`, 15..8 the version, 7..0 the number of body words).

Addressing
----------
Addresses count 32-bit words. For each access the side's *address pipeline* forms

    a = alu2(alu1(offset + ctr0 + ctr1 + ctr2 [+ scalar]))

from its counter nest (each counter's start/stop/stride make it an affine term) and two
integer ops of the op table with immediates (shift, mask, add …: bit-field extracts and
tiling need no host help). The access is *dropped* unless ``range_lo <= a < range_hi``
(so a tensor can be spread over several PMUs, each keeping its own range); otherwise
lane ``l`` touches word ``(a - range_lo + buffer_base + l * lane_stride) mod capacity``.

Layouts
-------
Word ``w`` lives in bank ``((w >> bank_shift) + (w >> stripe_shift if striped)) mod banks``
at row ``w`` without those bank bits. ``stripe_shift = 0`` is the plain layout; a striped
layout with ``2**stripe_shift`` words per tile row rotates each row by one bank, so
a tile written by rows (``lane_stride = 1``) can be read by columns
(``lane_stride = 2**stripe_shift``) with every lane in a different bank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from amaranth.lib import data

from ..config_port import body_words, decode_image, encode_image
from ..counters import IDLE_COUNTER, Counter, counter_layout, nest_fields, nest_from_fields, nest_steps
from ..presets import Preset, get_preset

__all__ = ["CONFIG_MAGIC", "CONFIG_VERSION", "ADDRESS_OPS", "PmuParams", "AddressProgram", "PmuConfig",
           "config_layout", "ConfigError", "DEFAULT_MAX_BUFFERS"]

CONFIG_MAGIC = 0x9D0E
CONFIG_VERSION = 1
#: N-buffering depth a PMU is built for unless told otherwise.
DEFAULT_MAX_BUFFERS = 4
#: Integer ops of the op table an address ALU stage can apply (``op(address, imm)``).
ADDRESS_OPS = ("mov", "iadd", "isub", "ishl", "ishr", "iand", "ior", "ixor")
IMM_BITS = 16
RUN_BITS = 16


class ConfigError(ValueError):
    """A PMU configuration the hardware cannot run; the message says which field and why."""


def _log2(value: int) -> int:
    return value.bit_length() - 1


@dataclass(frozen=True)
class PmuParams:
    """Hardware parameters of one PMU (from a preset).

    Parameters
    ----------
    preset : Preset or str
        Gives ``lanes``, ``pmu_banks``, ``pmu_bank_kib``, ``fifo_depth``, ``counters``,
        ``counter_width``. The PMU needs ``pmu_banks == lanes`` (one bank per lane word)
        and a power-of-two capacity.
    max_buffers : int
        Deepest N-buffering a program may ask for (1 to 16); sets the handover counters.
    """

    preset: Preset
    max_buffers: int = DEFAULT_MAX_BUFFERS

    def __init__(self, preset: Preset | str, max_buffers: int = DEFAULT_MAX_BUFFERS):
        preset = get_preset(preset)
        if isinstance(max_buffers, bool) or not isinstance(max_buffers, int) or not 1 <= max_buffers <= 16:
            raise ValueError(f"max_buffers must be an int in [1, 16], got {max_buffers!r}")
        object.__setattr__(self, "max_buffers", max_buffers)
        if preset.lanes < 2:
            raise ValueError(f"the PMU needs at least 2 lanes, preset {preset.name!r} has {preset.lanes}")
        if preset.pmu_banks != preset.lanes:
            raise ValueError(f"the PMU needs one bank per lane: preset {preset.name!r} has "
                             f"{preset.pmu_banks} banks and {preset.lanes} lanes")
        words = preset.pmu_bank_words
        if words & (words - 1):
            raise ValueError(f"PMU bank size must be a power of two words; preset {preset.name!r} "
                             f"has {words}")
        object.__setattr__(self, "preset", preset)

    @property
    def lanes(self) -> int:
        return self.preset.lanes

    @property
    def banks(self) -> int:
        return self.preset.pmu_banks

    @property
    def bank_words(self) -> int:
        return self.preset.pmu_bank_words

    @property
    def capacity(self) -> int:
        """Words in the scratchpad."""
        return self.banks * self.bank_words

    @property
    def address_bits(self) -> int:
        return _log2(self.capacity)

    @property
    def counters(self) -> int:
        return self.preset.counters

    @property
    def counter_width(self) -> int:
        return self.preset.counter_width

    @property
    def layout(self) -> data.StructLayout:
        return config_layout(self)

    @property
    def config_words(self) -> int:
        return body_words(self.layout)


def side_layout(params: PmuParams) -> data.StructLayout:
    """One side's address program (the write and the read side have one each)."""
    return data.StructLayout({
        "enable": 1,
        "counters_used": 2,
        "counter": data.ArrayLayout(counter_layout(params.counter_width), params.counters),
        "offset": 32,
        "alu": data.ArrayLayout(data.StructLayout({"op": 3, "imm": IMM_BITS}), 2),
        "lane_stride": 32,
        "runs": RUN_BITS,
        "scalar_offset": 1,
    })


def config_layout(params: PmuParams) -> data.StructLayout:
    return data.StructLayout({
        "write": side_layout(params),
        "read": side_layout(params),
        "bank_shift": 5,
        "stripe_shift": 5,
        "range_lo": 32,
        "range_hi": 32,
        "buffers": params.max_buffers.bit_length(),
        "buffer_words": 32,
        "scalar_out": 1,
        "auto_start": 1,
    })


@dataclass(frozen=True)
class AddressProgram:
    """The access sequence of one side.

    Attributes
    ----------
    counters : list of Counter
        Loop nest, innermost first; one access per step. Counter values are summed into the address.
    offset : int
        Added to the counter sum.
    alu : list of (op, imm)
        Up to two ops of :data:`ADDRESS_OPS` applied in order as ``address = op(address, imm)``.
    lane_stride : int
        Words between the words of consecutive lanes (1: a row vector; a tile's row pitch: a column).
    runs : int
        Times the nest runs (each run fills or drains one buffer).
    scalar_offset : bool
        Read side only: pop one scalar input per run and add it to the addresses of that run.
    """

    counters: list[Counter] = field(default_factory=lambda: [Counter(0, 1)])
    offset: int = 0
    alu: list[tuple[str, int]] = field(default_factory=list)
    lane_stride: int = 1
    runs: int = 1
    scalar_offset: bool = False

    def fields(self, params: PmuParams, side: str) -> dict:
        where = f"{side} program"
        counters = nest_fields(self.counters, params.counters, params.counter_width, where, ConfigError)
        if len(self.alu) > 2:
            raise ConfigError(f"{where}: at most 2 address ALU ops, got {len(self.alu)}")
        alu = []
        for k, item in enumerate(self.alu):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ConfigError(f"{where}: alu[{k}] must be (op, imm), got {item!r}")
            op, imm = item
            if op not in ADDRESS_OPS:
                raise ConfigError(f"{where}: alu[{k}] op {op!r} is not an address op; use one of "
                                  f"{', '.join(ADDRESS_OPS)}")
            if isinstance(imm, bool) or not isinstance(imm, int) or not 0 <= imm < 1 << IMM_BITS:
                raise ConfigError(f"{where}: alu[{k}] immediate must be in [0, {(1 << IMM_BITS) - 1}], "
                                  f"got {imm!r}")
            alu.append({"op": ADDRESS_OPS.index(op), "imm": imm})
        alu += [{"op": 0, "imm": 0}] * (2 - len(alu))
        for name, value, low, high in (("offset", self.offset, 0, (1 << 32) - 1),
                                       ("lane_stride", self.lane_stride, 0, params.capacity),
                                       ("runs", self.runs, 1, (1 << RUN_BITS) - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{where}: {name} must be in [{low}, {high}], got {value!r}")
        if self.scalar_offset and side == "write":
            raise ConfigError("write program: scalar_offset is for the read side only")
        return {"enable": 1, "counters_used": len(self.counters), "counter": counters, "offset": self.offset,
                "alu": alu, "lane_stride": self.lane_stride, "runs": self.runs,
                "scalar_offset": int(self.scalar_offset)}

    @property
    def steps_per_run(self) -> int:
        """Accesses in one run."""
        return nest_steps(self.counters)


_DISABLED = {"enable": 0, "counters_used": 1, "offset": 0, "lane_stride": 0, "runs": 1, "scalar_offset": 0,
             "alu": [{"op": 0, "imm": 0}] * 2}


@dataclass(frozen=True)
class PmuConfig:
    """A PMU program: a write side and/or a read side over ``buffers`` buffers.

    Attributes
    ----------
    write, read : AddressProgram or None
        The two sides (``None``: that side idles). With both, the read side's run ``r``
        waits until the write side's run ``r`` has finished its buffer, and the write
        side's run ``r + buffers`` waits until the read side's run ``r`` has left it.
    buffers : int
        N-buffering depth, 1 to the PMU's ``max_buffers``; run ``r`` uses buffer ``r mod buffers``.
    buffer_words : int
        Words per buffer; buffer ``i`` starts at word ``i * buffer_words``. Default: the whole
        capacity divided by ``buffers``.
    stripe_shift : int
        0 for the plain layout, else log2 of the striped layout's row pitch in words
        (at least ``bank_shift + log2(lanes)``).
    bank_shift : int
        Position of the bank bits in a word address (plain layout: 0 puts consecutive words
        in consecutive banks).
    range_lo, range_hi : int
        Addresses this PMU keeps; accesses outside are dropped (default: all of them).
    scalar_out : bool
        Send lane 0 of each read vector to the scalar output instead of the vector output.
    auto_start : bool
        Start as soon as the configuration is loaded (else wait for ``start``).
    """

    write: AddressProgram | None = None
    read: AddressProgram | None = None
    buffers: int = 1
    buffer_words: int | None = None
    stripe_shift: int = 0
    bank_shift: int = 0
    range_lo: int = 0
    range_hi: int = 1 << 32
    scalar_out: bool = False
    auto_start: bool = True

    def resolved_buffer_words(self, params: PmuParams) -> int:
        return self.buffer_words if self.buffer_words is not None else params.capacity // max(1, self.buffers)

    def check(self, params: PmuParams) -> dict:
        if self.write is None and self.read is None:
            raise ConfigError("a PMU program needs a write side, a read side or both")
        if isinstance(self.buffers, bool) or not isinstance(self.buffers, int) \
                or not 1 <= self.buffers <= params.max_buffers:
            raise ConfigError(f"buffers must be in [1, {params.max_buffers}] (this PMU's max_buffers), "
                              f"got {self.buffers!r}")
        words = self.resolved_buffer_words(params)
        if isinstance(words, bool) or not isinstance(words, int) or words < 1:
            raise ConfigError(f"buffer_words must be a positive int, got {words!r}")
        if self.buffers * words > params.capacity:
            raise ConfigError(f"{self.buffers} buffers x {words} words = {self.buffers * words} words exceed "
                              f"the PMU's capacity of {params.capacity} words")
        lane_bits = _log2(params.lanes)
        if not 0 <= self.bank_shift <= params.address_bits - lane_bits:
            raise ConfigError(f"bank_shift must be in [0, {params.address_bits - lane_bits}], "
                              f"got {self.bank_shift}")
        if self.stripe_shift and not self.bank_shift + lane_bits <= self.stripe_shift <= params.address_bits:
            raise ConfigError(f"stripe_shift must be 0 (plain) or in [{self.bank_shift + lane_bits}, "
                              f"{params.address_bits}] (bank_shift + log2(lanes) .. address bits), "
                              f"got {self.stripe_shift}")
        if not 0 <= self.range_lo < self.range_hi <= 1 << 32:
            raise ConfigError(f"need 0 <= range_lo < range_hi <= 2**32, "
                              f"got [{self.range_lo}, {self.range_hi})")
        if self.write is not None and self.read is not None and self.write.runs != self.read.runs:
            raise ConfigError(f"write and read sides must run as often (each run is one buffer): "
                              f"{self.write.runs} vs {self.read.runs}")
        sides = {}
        for side, program in (("write", self.write), ("read", self.read)):
            if program is None:
                fields = dict(_DISABLED, counter=[IDLE_COUNTER] * params.counters)
            elif not isinstance(program, AddressProgram):
                raise ConfigError(f"{side} must be an AddressProgram or None, got {program!r}")
            else:
                fields = program.fields(params, side)
            sides[side] = fields
        return {
            **sides,
            "bank_shift": self.bank_shift,
            "stripe_shift": self.stripe_shift,
            "range_lo": self.range_lo,
            # 2**32 ("no upper bound") is stored as 2**32 - 1: that one address is never kept
            "range_hi": min(self.range_hi, (1 << 32) - 1),
            "buffers": self.buffers,
            "buffer_words": words,
            "scalar_out": int(self.scalar_out),
            "auto_start": int(self.auto_start),
        }

    def encode(self, params: PmuParams) -> list[int]:
        """Header word plus body words (least significant first) for the configuration port."""
        return encode_image(params.layout, self.check(params), CONFIG_MAGIC, CONFIG_VERSION)

    @classmethod
    def decode(cls, words: Sequence[int], params: PmuParams) -> PmuConfig:
        """Inverse of :meth:`encode`."""
        view = decode_image(words, params.layout, CONFIG_MAGIC, CONFIG_VERSION, "PMU", ConfigError)

        def side(v):
            if not int(v.enable):
                return None
            counters = nest_from_fields(v.counter, int(v.counters_used))
            alu = [(ADDRESS_OPS[int(v.alu[k].op)], int(v.alu[k].imm)) for k in range(2)
                   if int(v.alu[k].op) != 0]
            return AddressProgram(counters, int(v.offset), alu, int(v.lane_stride), int(v.runs),
                                  bool(int(v.scalar_offset)))

        hi = int(view.range_hi)
        return cls(write=side(view.write), read=side(view.read), buffers=int(view.buffers),
                   buffer_words=int(view.buffer_words), stripe_shift=int(view.stripe_shift),
                   bank_shift=int(view.bank_shift), range_lo=int(view.range_lo),
                   range_hi=1 << 32 if hi == (1 << 32) - 1 else hi, scalar_out=bool(int(view.scalar_out)),
                   auto_start=bool(int(view.auto_start)))
