"""SECDED ECC for 64-bit memory words: a (72,64) extended Hamming code.

Code construction
-----------------
The 64 data bits and 7 Hamming check bits occupy *positions* 1 … 71 of a Hamming
codeword: check bit *k* (0 … 6) sits at position 2\\ :sup:`k`, and data bits 0 … 63
fill the other positions in increasing order (data bit 0 at position 3, bit 1 at 5,
bit 2 at 6, bit 3 at 7, bit 4 at 9, …, bit 63 at 71). Check bit *k* is the XOR of the
data bits whose position has bit *k* set, so the XOR of the positions of all set
bits of a valid codeword is 0. Check bit 7 is the overall parity: the XOR of the 64
data bits and check bits 0 … 6, so that all 72 stored bits have even parity.

A stored word (:mod:`hdl.memctrl.interface`) is ``data | (check << 64)``: check bit
*k* is stored bit 64 + *k*.

Decoding
--------
The *syndrome* is the XOR of the positions of all set bits among the stored data
bits and check bits 0 … 6 (equivalently, the stored check bits 0 … 6 XOR those
recomputed from the stored data); the *parity* is the XOR of all 72 stored bits.

* syndrome 0, parity 0: no error (``"ok"``).
* parity 1, syndrome a position 1 … 71: one bit flipped, at that position (a data
  bit is corrected; a flipped check bit leaves the data intact) (``"corrected"``).
* parity 1, syndrome 0: check bit 7 flipped (``"corrected"``).
* parity 0, syndrome not 0: two bits flipped (``"uncorrectable"``; the data is
  returned as stored).
* parity 1, syndrome 72 … 127: only possible with three or more flips; reported
  ``"uncorrectable"`` and nothing is changed.

Three or more flipped bits may also be miscorrected or go unnoticed, as with any
SECDED code.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .interface import CHECK_BITS, WORD_BITS

__all__ = ["secded_check_bits", "secded_decode", "encode_line", "decode_line",
           "SecdedEncoder", "SecdedDecoder", "STORED_BITS", "DATA_POSITIONS"]

STORED_BITS = WORD_BITS + CHECK_BITS  # 72
_HAMMING_BITS = CHECK_BITS - 1  # 7 Hamming check bits; check bit 7 is the overall parity
_LAST_POSITION = WORD_BITS + _HAMMING_BITS  # 71

#: Codeword position (3 … 71) of each data bit 0 … 63: the positions that are not powers of two.
DATA_POSITIONS: tuple[int, ...] = tuple(p for p in range(1, _LAST_POSITION + 1) if p & (p - 1))
assert len(DATA_POSITIONS) == WORD_BITS

# _CHECK_MASKS[k]: the data bits that check bit k (0 … 6) covers.
_CHECK_MASKS: tuple[int, ...] = tuple(
    sum(1 << i for i, p in enumerate(DATA_POSITIONS) if p >> k & 1) for k in range(_HAMMING_BITS))

_WORD_MASK = (1 << WORD_BITS) - 1


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _check_int(name: str, value, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} must be in [0, 2**{bits}), got {value:#x}")


def secded_check_bits(word: int) -> int:
    """The 8 check bits (0 … 255) of a 64-bit data word (golden model).

    Bit *k* < 7 is the XOR of the data bits whose codeword position has bit *k* set;
    bit 7 makes the parity of all 72 stored bits even.
    """
    _check_int("word", word, WORD_BITS)
    check = 0
    for k in range(_HAMMING_BITS):
        bit = 0
        for i, position in enumerate(DATA_POSITIONS):
            if position >> k & 1:
                bit ^= word >> i & 1
        check |= bit << k
    overall = _parity(word) ^ _parity(check)
    return check | overall << _HAMMING_BITS


def secded_decode(word: int, check: int) -> tuple[int, str]:
    """Decode a stored word: (data word, status) (golden model).

    ``status`` is ``"ok"`` (no error), ``"corrected"`` (one of the 72 stored bits was
    flipped; the returned data is the original word) or ``"uncorrectable"`` (two flips
    detected; the returned data is ``word`` unchanged). See the module docstring.
    """
    _check_int("word", word, WORD_BITS)
    _check_int("check", check, CHECK_BITS)
    syndrome = 0
    for i, position in enumerate(DATA_POSITIONS):
        if word >> i & 1:
            syndrome ^= position
    for k in range(_HAMMING_BITS):
        if check >> k & 1:
            syndrome ^= 1 << k
    parity = _parity(word) ^ _parity(check)
    if parity == 0:
        return word, ("ok" if syndrome == 0 else "uncorrectable")
    if syndrome in DATA_POSITIONS:
        return word ^ (1 << DATA_POSITIONS.index(syndrome)), "corrected"
    if syndrome == 0 or syndrome & (syndrome - 1) == 0:
        return word, "corrected"  # a check bit (7, or 0 … 6 at a power-of-two position)
    return word, "uncorrectable"  # syndrome 72 … 127: three or more flips


def encode_line(words: Sequence[int]) -> list[int]:
    """Stored values ``word | (check << 64)`` of a line (normally 8 words, any count is accepted)."""
    return [word | secded_check_bits(word) << WORD_BITS for word in words]


def decode_line(stored: Sequence[int]) -> tuple[list[int], int, int]:
    """Decode stored 72-bit values: (data words, words corrected, words uncorrectable)."""
    data, corrected, uncorrectable = [], 0, 0
    for value in stored:
        _check_int("stored word", value, STORED_BITS)
        word, status = secded_decode(value & _WORD_MASK, value >> WORD_BITS)
        data.append(word)
        corrected += status == "corrected"
        uncorrectable += status == "uncorrectable"
    return data, corrected, uncorrectable


def _check_words(words) -> None:
    if isinstance(words, bool) or not isinstance(words, int):
        raise TypeError(f"words must be an int, got {type(words).__name__}")
    if words < 1:
        raise ValueError(f"words must be at least 1, got {words}")


def _hamming_bits(data) -> list:
    """The 7 Hamming check bits of a 64-bit data value (one reduction XOR each)."""
    return [(data & Const(mask, WORD_BITS)).xor() for mask in _CHECK_MASKS]


class SecdedEncoder(wiring.Component):
    """Combinational SECDED encoder for ``words`` 64-bit words in parallel.

    Parameters
    ----------
    words : int
        Number of words, at least 1.

    Attributes
    ----------
    data : In(64 * words)
        Data words, word *j* in bits [64 *j*, 64 *j* + 64).
    stored : Out(72 * words)
        Stored words: word *j* in bits [72 *j*, 72 *j* + 72), its data in the low 64
        bits and its check bits (:func:`secded_check_bits`) in the top 8.
    """

    def __init__(self, words: int):
        _check_words(words)
        self._words = words
        super().__init__({"data": In(WORD_BITS * words), "stored": Out(STORED_BITS * words)})

    @property
    def words(self) -> int:
        return self._words

    def elaborate(self, platform):
        m = Module()
        for j in range(self._words):
            data = self.data.word_select(j, WORD_BITS)
            hamming = Cat(*_hamming_bits(data))
            overall = data.xor() ^ hamming.xor()
            m.d.comb += self.stored.word_select(j, STORED_BITS).eq(Cat(data, hamming, overall))
        return m


class SecdedDecoder(wiring.Component):
    """Combinational SECDED decoder (checker and corrector) for ``words`` stored words.

    Parameters
    ----------
    words : int
        Number of words, at least 1.

    Attributes
    ----------
    stored : In(72 * words)
        Stored words, word *j* in bits [72 *j*, 72 *j* + 72) (data in the low 64 bits,
        check bits in the top 8).
    data : Out(64 * words)
        Data words, word *j* in bits [64 *j*, 64 *j* + 64): corrected when a single bit
        was flipped, otherwise the stored data bits as they are (also when
        ``uncorrectable``).
    corrected : Out(words)
        Bit *j*: one flipped bit (data or check) was found in word *j*; ``data`` holds
        the original word.
    uncorrectable : Out(words)
        Bit *j*: word *j* has two flipped bits (or a syndrome no single flip can give);
        its data is passed through unchanged.
    """

    def __init__(self, words: int):
        _check_words(words)
        self._words = words
        super().__init__({
            "stored": In(STORED_BITS * words),
            "data": Out(WORD_BITS * words),
            "corrected": Out(words),
            "uncorrectable": Out(words),
        })

    @property
    def words(self) -> int:
        return self._words

    def elaborate(self, platform):
        m = Module()
        for j in range(self._words):
            stored = self.stored.word_select(j, STORED_BITS)
            data = stored[:WORD_BITS]
            check = stored[WORD_BITS:]
            syndrome = Signal(_HAMMING_BITS, name=f"syndrome{j}")
            parity = Signal(name=f"parity{j}")
            m.d.comb += [
                syndrome.eq(Cat(*_hamming_bits(data)) ^ check[:_HAMMING_BITS]),
                parity.eq(stored.xor()),
            ]
            # With parity 1 and a syndrome of 72 … 127 nothing matches, nothing is corrected.
            valid = syndrome <= _LAST_POSITION
            fixed = Cat(*(data[i] ^ (parity & (syndrome == position))
                          for i, position in enumerate(DATA_POSITIONS)))
            m.d.comb += [
                self.data.word_select(j, WORD_BITS).eq(fixed),
                self.corrected[j].eq(parity & valid),
                self.uncorrectable[j].eq((~parity & (syndrome != 0)) | (parity & ~valid)),
            ]
        return m
