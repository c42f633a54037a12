"""CRC-32 of 32-bit words, one word per cycle.

The CRC is the IEEE 802.3 CRC-32 (``zlib.crc32``) of the words as little-endian
bytes. The hardware keeps the raw shift register (initial value ``0xFFFFFFFF``,
no final inversion) and updates it once per word with an XOR network derived
here from a bitwise model of the reflected polynomial; the result is the register
inverted. Tests check both against :func:`zlib.crc32`, an independent implementation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from functools import cache

from amaranth import Cat, Value

__all__ = ["crc32_words", "CRC_INIT", "crc_step", "crc_update_value", "crc_result_value"]

POLY = 0xEDB88320  # reflected IEEE polynomial
CRC_INIT = 0xFFFFFFFF


def crc32_words(words: Iterable[int]) -> int:
    """``zlib.crc32`` of ``words`` as little-endian 32-bit values (the encoder's CRC)."""
    data = b"".join((int(w) & 0xFFFFFFFF).to_bytes(4, "little") for w in words)
    return zlib.crc32(data)


def crc_step(state: int, word: int) -> int:
    """One word through the raw CRC register, bit by bit (LSB first)."""
    for k in range(32):
        bit = (state ^ (word >> k)) & 1
        state >>= 1
        if bit:
            state ^= POLY
    return state


@cache
def _matrix() -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """For each output bit: the state bits and word bits it is the XOR of (the update is linear)."""
    rows = []
    state_cols = [crc_step(1 << i, 0) for i in range(32)]
    word_cols = [crc_step(0, 1 << i) for i in range(32)]
    for bit in range(32):
        rows.append((tuple(i for i in range(32) if state_cols[i] >> bit & 1),
                     tuple(i for i in range(32) if word_cols[i] >> bit & 1)))
    return rows


def _xor(bits: list[Value]) -> Value:
    out = bits[0]
    for b in bits[1:]:
        out = out ^ b
    return out


def crc_update_value(state: Value, word: Value) -> Value:
    """The raw register after ``word``: a 32-bit XOR network over ``state`` and ``word``."""
    out = []
    for state_bits, word_bits in _matrix():
        terms = [state[i] for i in state_bits] + [word[i] for i in word_bits]
        out.append(_xor(terms))
    return Cat(*out)


def crc_result_value(state: Value) -> Value:
    """The CRC a finished register stands for (``zlib.crc32`` convention)."""
    return ~state
