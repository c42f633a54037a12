"""SECDED ECC of the memory controller: the golden model, and the RTL against it in Amaranth's simulator."""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from hdl.memctrl.ecc import (
    DATA_POSITIONS,
    SecdedDecoder,
    SecdedEncoder,
    decode_line,
    encode_line,
    secded_check_bits,
    secded_decode,
)

MASK64 = (1 << 64) - 1
EDGE_WORDS = [0, MASK64, 1, 1 << 63, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA]


def random_words(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return EDGE_WORDS + [rng.getrandbits(64) for _ in range(count)]


def flip(stored: int, *bits: int) -> tuple[int, int]:
    """(data, check) of the stored 72-bit value with ``bits`` flipped."""
    for bit in bits:
        stored ^= 1 << bit
    return stored & MASK64, stored >> 64


def store(word: int) -> int:
    return word | secded_check_bits(word) << 64


# --- golden model -----------------------------------------------------------------------------


def test_clean_words_are_ok():
    for word in random_words(1, 50):
        assert secded_decode(word, secded_check_bits(word)) == (word, "ok")


def test_check_bits_are_not_trivial():
    """A stub returning 0 (or any constant) fails here: check bits depend on every data bit."""
    assert secded_check_bits(0) == 0
    values = {secded_check_bits(1 << i) for i in range(64)}
    assert len(values) == 64 and 0 not in values
    # A single data bit flips its position's bits plus the overall parity bit.
    for i, position in enumerate(DATA_POSITIONS):
        weight = bin(position).count("1")
        assert secded_check_bits(1 << i) == position | (weight + 1 & 1) << 7
    # Linear code: check(a ^ b) == check(a) ^ check(b).
    rng = random.Random(2)
    for _ in range(50):
        a, b = rng.getrandbits(64), rng.getrandbits(64)
        assert secded_check_bits(a ^ b) == secded_check_bits(a) ^ secded_check_bits(b)
    # Every codeword has even parity and minimum distance 4 between the unit-vector codewords.
    for word in random_words(3, 20):
        assert bin(store(word)).count("1") % 2 == 0
    for a, b in itertools.combinations(range(64), 2):
        assert bin(store(1 << a) ^ store(1 << b)).count("1") >= 4


@pytest.mark.parametrize("seed", [10, 11])
def test_every_single_flip_is_corrected(seed):
    for word in random_words(seed, 4):
        stored = store(word)
        for bit in range(72):
            assert secded_decode(*flip(stored, bit)) == (word, "corrected"), (hex(word), bit)


def test_double_flips_are_uncorrectable():
    rng = random.Random(20)
    pairs = list(itertools.combinations(range(72), 2))
    # All 2556 pairs on two words, then random pairs on random words.
    cases = [(word, pair) for word in (0, 0xDEAD_BEEF_0123_4567) for pair in pairs]
    cases += [(rng.getrandbits(64), tuple(rng.sample(range(72), 2))) for _ in range(500)]
    for word, (a, b) in cases:
        data, check = flip(store(word), a, b)
        assert secded_decode(data, check) == (data, "uncorrectable"), (hex(word), a, b)


def test_line_helpers():
    rng = random.Random(30)
    words = [rng.getrandbits(64) for _ in range(8)]
    stored = encode_line(words)
    assert stored == [w | secded_check_bits(w) << 64 for w in words]
    assert decode_line(stored) == (words, 0, 0)
    damaged = list(stored)
    damaged[1] ^= 1 << 5           # data bit: corrected
    damaged[4] ^= 1 << 70          # check bit: corrected
    damaged[6] ^= 1 << 3 | 1 << 40  # double: uncorrectable, raw data back
    data, corrected, uncorrectable = decode_line(damaged)
    assert corrected == 2 and uncorrectable == 1
    assert data[:6] == words[:6] and data[7] == words[7]
    assert data[6] == damaged[6] & MASK64 != words[6]


def test_golden_argument_checks():
    with pytest.raises(ValueError):
        secded_check_bits(1 << 64)
    with pytest.raises(ValueError):
        secded_check_bits(-1)
    with pytest.raises(TypeError):
        secded_check_bits(1.0)
    with pytest.raises(ValueError):
        secded_decode(0, 256)
    with pytest.raises(ValueError):
        decode_line([1 << 72])


# --- RTL against the golden model -------------------------------------------------------------


@pytest.mark.parametrize("cls", [SecdedEncoder, SecdedDecoder])
@pytest.mark.parametrize("words, exc", [(0, ValueError), (-2, ValueError), (1.0, TypeError),
                                        ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_constructor_validation(cls, words, exc):
    with pytest.raises(exc):
        cls(words)


def run_comb(dut, bench):
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def pack(values, bits):
    return sum(v << bits * j for j, v in enumerate(values))


def unpack(value, bits, count):
    return [value >> bits * j & (1 << bits) - 1 for j in range(count)]


@pytest.mark.parametrize("words", [1, 3])
def test_encoder_matches_golden(words):
    dut = SecdedEncoder(words)
    assert dut.words == words
    groups = [random_words(40 + words, 60)[j::words] for j in range(words)]

    async def bench(ctx):
        for group in zip(*groups, strict=True):
            ctx.set(dut.data, pack(group, 64))
            got = unpack(ctx.get(dut.stored), 72, words)
            assert got == [store(w) for w in group], [hex(w) for w in group]

    run_comb(dut, bench)


STATUS = {"ok": (0, 0), "corrected": (1, 0), "uncorrectable": (0, 1)}


def decoder_cases(seed: int) -> list[int]:
    """Stored values: clean, every single flip of two words, and random double flips."""
    rng = random.Random(seed)
    cases = [store(w) for w in random_words(seed, 10)]
    for word in (rng.getrandbits(64), MASK64):
        cases += [store(word) ^ 1 << bit for bit in range(72)]
    for _ in range(150):
        a, b = rng.sample(range(72), 2)
        cases.append(store(rng.getrandbits(64)) ^ 1 << a ^ 1 << b)
    # Three flips giving a parity-1 syndrome beyond position 71 (64 ^ 8 ^ 1 = 73):
    # uncorrectable, nothing changed.
    cases.append(store(0) ^ 1 << 70 ^ 1 << 67 ^ 1 << 64)
    return cases


@pytest.mark.parametrize("words", [1, 2, 3])
def test_decoder_matches_golden(words):
    dut = SecdedDecoder(words)
    cases = decoder_cases(50 + words)
    rng = random.Random(words)
    rng.shuffle(cases)
    cases += [cases[0]] * (-len(cases) % words)  # whole groups
    # Rotate so that each case lands in a different word slot in a second pass.
    groups = [cases[i:i + words] for i in range(0, len(cases), words)]
    if words > 1:
        shifted = cases[1:] + cases[:1]
        groups += [shifted[i:i + words] for i in range(0, len(shifted), words)]

    async def bench(ctx):
        for group in groups:
            ctx.set(dut.stored, pack(group, 72))
            data = unpack(ctx.get(dut.data), 64, words)
            corrected = ctx.get(dut.corrected)
            uncorrectable = ctx.get(dut.uncorrectable)
            for j, value in enumerate(group):
                want_data, status = secded_decode(value & MASK64, value >> 64)
                got = (data[j], corrected >> j & 1, uncorrectable >> j & 1)
                assert got == (want_data, *STATUS[status]), (j, hex(value))

    run_comb(dut, bench)


def test_beyond_last_position_syndrome_is_uncorrectable():
    """Three flips with parity 1 and syndrome 73: flagged, and the data is not touched."""
    stored = store(0) ^ 1 << 70 ^ 1 << 67 ^ 1 << 64  # check bits 6, 3, 0: syndrome 64 + 8 + 1
    assert secded_decode(*flip(stored)) == (0, "uncorrectable")
