"""Interfaces of a memory channel: the DFI-like command/data bus and the user port.

DFI-like bus (controller → device, one command per tCK cycle)
-------------------------------------------------------------
Amaranth port ``dfi`` of :class:`DfiSignature`; in Verilog ``dfi__<member>``.

``cmd`` (3 bits, :class:`Command`), ``bg``, ``bank``, ``row``, ``col``
    The command of this cycle and its address (``row`` only for ACT, ``col``, a
    64-byte line within the open row, only for RD/WR; ``bg``/``bank`` for ACT, RD,
    WR, PRE). ``NOP`` (0) when idle.
``wrdata_en``, ``wrdata``, ``wrdata_mask``
    Write data: a WR issued in cycle *k* has its beats in cycles *k + CWL* …
    *k + CWL + burst_cycles − 1*, ``wrdata_en`` high exactly then. A beat holds
    ``words_per_beat`` stored words (lowest word in the LSBs); ``wrdata_mask`` bit *j*
    high means word *j* of the beat is written (low: the device keeps the old word).
``rddata_valid``, ``rddata`` (device → controller)
    Read data: a RD issued in cycle *k* returns its beats in cycles *k + CL* … *k + CL +
    burst_cycles − 1*, same beat layout.

A *stored word* is 64 data bits, plus 8 SECDED check bits above them (bits 64–71)
when the channel has ECC (:mod:`hdl.memctrl.ecc`). A line is 8 words.

Address mapping
---------------
A line address within a channel splits, from the least significant bits up, into
bank group, column, bank and row (:func:`split_line_address`). Consecutive lines
alternate bank groups (so a stream is paced by tCCD_S, not tCCD_L) and stay in one
row of each group for ``row_lines`` lines (row hits).

User port
---------
``req`` (stream in): ``addr`` (line address), ``write``, ``data`` (512 bits, word 0 in
the LSBs), ``mask`` (8 bits, one per 64-bit word; a write changes only the words whose
bit is set; ignored for reads). ``resp`` (stream out), one per request **in request
order**: ``data`` (reads), ``write`` (1 for a write acknowledgement), ``corrected``
(a single-bit error was corrected in this line) and ``uncorrectable`` (a double-bit
error was detected; ``data`` holds the raw stored words).
"""

from __future__ import annotations

import enum
import math

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .timing import LINE_BYTES, DramTiming

__all__ = ["Command", "DfiSignature", "request_layout", "response_layout", "split_line_address",
           "join_line_address", "address_fields", "WORD_BITS", "CHECK_BITS", "LINE_WORDS",
           "stored_word_bits", "beat_bits", "words_per_beat", "MemoryPortSignature"]

WORD_BITS = 64
CHECK_BITS = 8
LINE_WORDS = LINE_BYTES * 8 // WORD_BITS  # 8


class Command(enum.IntEnum):
    """DFI command codes."""
    NOP = 0
    ACT = 1
    RD = 2
    WR = 3
    PRE = 4
    PREA = 5
    REF = 6


def _bits(count: int) -> int:
    """Address bits for ``count`` values (at least 1, so every port exists in Verilog)."""
    return max(1, int(math.log2(count)))


def address_fields(timing: DramTiming) -> dict[str, int]:
    """Widths of the DFI address fields: ``bg``, ``bank``, ``row``, ``col``."""
    return {"bg": _bits(timing.bank_groups), "bank": _bits(timing.banks_per_group),
            "row": _bits(timing.rows), "col": _bits(timing.row_lines)}


def _used_bits(count: int) -> int:
    return int(math.log2(count))


def split_line_address(timing: DramTiming, addr: int) -> tuple[int, int, int, int]:
    """(bank group, bank, row, column) of a line address within one channel."""
    if not 0 <= addr < 1 << timing.line_address_bits:
        raise ValueError(f"line address {addr:#x} outside a {timing.name} channel "
                         f"({1 << timing.line_address_bits} lines)")
    bg = addr & (timing.bank_groups - 1)
    addr >>= _used_bits(timing.bank_groups)
    col = addr & (timing.row_lines - 1)
    addr >>= _used_bits(timing.row_lines)
    bank = addr & (timing.banks_per_group - 1)
    addr >>= _used_bits(timing.banks_per_group)
    return bg, bank, addr, col


def join_line_address(timing: DramTiming, bg: int, bank: int, row: int, col: int) -> int:
    """Inverse of :func:`split_line_address`."""
    addr = row
    addr = (addr << _used_bits(timing.banks_per_group)) | bank
    addr = (addr << _used_bits(timing.row_lines)) | col
    addr = (addr << _used_bits(timing.bank_groups)) | bg
    return addr


def stored_word_bits(ecc: bool) -> int:
    return WORD_BITS + (CHECK_BITS if ecc else 0)


def words_per_beat(timing: DramTiming) -> int:
    return LINE_WORDS // timing.burst_cycles


def beat_bits(timing: DramTiming, ecc: bool) -> int:
    return words_per_beat(timing) * stored_word_bits(ecc)


class DfiSignature(wiring.Signature):
    """The controller side of the DFI-like bus (see the module docstring)."""

    def __init__(self, timing: DramTiming, ecc: bool):
        f = address_fields(timing)
        beat = beat_bits(timing, ecc)
        super().__init__({
            "cmd": Out(3), "bg": Out(f["bg"]), "bank": Out(f["bank"]), "row": Out(f["row"]),
            "col": Out(f["col"]),
            "wrdata_en": Out(1), "wrdata": Out(beat), "wrdata_mask": Out(words_per_beat(timing)),
            "rddata_valid": In(1), "rddata": In(beat),
        })


def request_layout(addr_bits: int) -> data.StructLayout:
    """Payload of a user-port request (see the module docstring)."""
    return data.StructLayout({"addr": addr_bits, "write": 1, "mask": LINE_WORDS,
                              "data": LINE_WORDS * WORD_BITS})


def response_layout() -> data.StructLayout:
    """Payload of a user-port response."""
    return data.StructLayout({"data": LINE_WORDS * WORD_BITS, "write": 1, "corrected": 1,
                              "uncorrectable": 1})


class MemoryPortSignature(wiring.Signature):
    """A user port: ``req`` out, ``resp`` in (the requester's view; flip it for the controller)."""

    def __init__(self, addr_bits: int):
        self.addr_bits = addr_bits
        super().__init__({"req": Out(stream.Signature(request_layout(addr_bits))),
                          "resp": In(stream.Signature(response_layout()))})
