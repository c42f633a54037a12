"""The golden model against hand-worked IEEE facts and against float64.

The RTL is compared with the golden model elsewhere; here the golden model itself is
checked, so that a bug it shared with the RTL would still show: known results of the
contract (FTZ, RNE ties, canonical NaN, the round-up-to-min-normal case), and the
stated error bound of every tail op, measured over every finite bf16 input.
"""

import math

import numpy as np
import pytest

from hdl.numerics import accuracy, tail
from hdl.numerics.ops import ALU_OPS, OPS, TAIL_OPS, UnknownOpError, get_op, golden

NAN = 0x7FC00000
INF, NINF = 0x7F800000, 0xFF800000
ONE, NEG_ONE = 0x3F800000, 0xBF800000
MIN_NORMAL = 0x00800000


def w(x: float) -> int:
    return int(np.float32(x).view(np.uint32))


def g1(name, *operands) -> int:
    return int(golden(name, *[np.uint32(o) for o in operands]))


@pytest.mark.parametrize("name, operands, expected", [
    ("fadd", (INF, NINF), NAN),
    ("fadd", (0x80000000, 0x80000000), 0x80000000),        # -0 + -0 = -0
    ("fadd", (0x80000000, 0x00000000), 0x00000000),        # -0 + +0 = +0
    ("fadd", (ONE, NEG_ONE), 0x00000000),                  # exact cancellation: +0
    ("fadd", (0x00000001, ONE), ONE),                      # subnormal input reads as 0
    ("fadd", (ONE, 0x33800000), ONE),                      # 1 + 2**-24: tie, to even (down)
    ("fadd", (0x3F800001, 0x33800000), 0x3F800002),        # tie, to even (up)
    ("fadd", (0x7F7FFFFF, 0x73800000), INF),               # max + half ulp: overflow
    ("fadd", (0x00800001, 0x80800000), 0x00000000),        # difference is subnormal: +0
    ("fadd", (0x80800001, 0x00800000), 0x80000000),        # ... of the larger's sign
    ("fsub", (ONE, ONE), 0x00000000),
    ("fmul", (0x3F7FFFFF, MIN_NORMAL), MIN_NORMAL),        # (1-2**-24)·2**-126 rounds up to 2**-126
    ("fmul", (0x3F7FFFFE, MIN_NORMAL), 0x00000000),        # ... one ulp lower stays subnormal: 0
    ("fmul", (INF, 0x00000000), NAN),
    ("fmul", (NINF, 0x80000000), NAN),
    ("fmul", (0x7F800001, ONE), NAN),                      # signalling NaN in, canonical NaN out
    ("fmul", (0xFFFFFFFF, ONE), NAN),
    ("fmul", (0x80000000, ONE), 0x80000000),
    ("mac", (w(1.0), 0x4000, 0x4040), w(7.0)),             # 1 + 2·3 (bf16 operands)
    ("mac", (w(2.0**-30), 0x3F80, 0x3F80), w(1.0 + 2.0**-30)),  # exact product, one rounding
    ("fmax", (0x80000000, 0x00000000), 0x00000000),
    ("fmin", (0x80000000, 0x00000000), 0x80000000),
    ("fmax", (ONE, NAN), NAN),
    ("fmin", (0x7F800001, ONE), NAN),
    ("flt", (0x80000000, 0x00000000), 0),
    ("fle", (0x80000000, 0x00000000), 1),
    ("feq", (NAN, NAN), 0),
    ("feq", (0x00000001, 0x00000000), 1),                  # subnormal equals zero (FTZ)
    ("f2i", (w(2.5),), 2),
    ("f2i", (w(3.5),), 4),
    ("f2i", (w(-2.5),), (-2) & 0xFFFFFFFF),
    ("f2i", (w(0.5),), 0),
    ("f2i", (NAN,), 0),
    ("f2i", (INF,), 0x7FFFFFFF),
    ("f2i", (NINF,), 0x80000000),
    ("f2i", (w(-2.0**31),), 0x80000000),
    ("i2f", (0x7FFFFFFF,), w(2.0**31)),
    ("i2f", (0x80000000,), w(-2.0**31)),
    ("i2f", (16777217,), w(16777216.0)),                   # 2**24 + 1: tie to even
    ("fscale", (w(1.5), 3), w(12.0)),
    ("fscale", (w(1.5), (-127) & 0xFFFFFFFF), 0x00000000),  # would be subnormal: flushed
    ("fscale", (0x3FFFFFFF, (-127) & 0xFFFFFFFF), MIN_NORMAL),  # rounds up to min normal
    ("fscale", (ONE, 128), INF),
    ("cvt_bf16", (0x3F808000,), 0x3F80),                   # tie, to even (down)
    ("cvt_bf16", (0x3F818000,), 0x3F82),                   # tie, to even (up)
    ("cvt_bf16", (0x7F7FFFFF,), 0x7F80),                   # rounds to Inf
    ("cvt_bf16", (0x7F800001,), 0x7FC0),
    ("cvt_f32", (0x0001,), 0x00000000),                    # bf16 subnormal flushed
    ("cvt_f32", (0xC0A0,), w(-5.0)),
])
def test_golden_primitive_known_results(name, operands, expected):
    assert g1(name, *operands) == expected


@pytest.mark.parametrize("name, x, expected", [
    ("exp", INF, INF), ("exp", NINF, 0), ("exp", NAN, NAN), ("exp", 0, ONE), ("exp", w(100.0), INF),
    ("exp", w(-110.0), 0),
    ("recip", 0, INF), ("recip", 0x80000000, NINF), ("recip", INF, 0), ("recip", NINF, 0x80000000),
    ("recip", w(2.0), w(0.5)), ("recip", w(-4.0), w(-0.25)), ("recip", NAN, NAN),
    ("rsqrt", w(4.0), w(0.5)), ("rsqrt", w(-1.0), NAN), ("rsqrt", NINF, NAN), ("rsqrt", 0, INF),
    ("rsqrt", 0x80000000, NINF), ("rsqrt", INF, 0), ("rsqrt", w(2.0**-100), w(2.0**50)),
    ("sigmoid", INF, ONE), ("sigmoid", NINF, 0), ("sigmoid", 0, w(0.5)), ("sigmoid", NAN, NAN),
    ("silu", INF, INF), ("silu", NINF, 0x80000000), ("silu", 0, 0),
    ("gelu", INF, INF), ("gelu", NINF, 0x80000000), ("gelu", NAN, NAN), ("gelu", 0, 0),
    ("none", 0x12345678, 0x12345678),
    ("relu", w(-3.5), 0), ("relu", w(2.25), w(2.25)), ("relu", 0x80000000, 0), ("relu", NINF, 0),
    ("relu", INF, INF), ("relu", NAN, NAN),
])
def test_tail_special_values(name, x, expected):
    assert g1(f"tail.{name}", x) == expected


@pytest.mark.parametrize("name", sorted(accuracy.REFERENCES))
def test_tail_op_within_stated_error_over_all_bf16(name):
    measured = accuracy.measure(name)
    assert measured.inputs == 65280
    assert measured.mismatched_specials == 0
    assert measured.max_ulp <= tail.ERROR_BOUNDS[name], (
        f"{name}: {measured.max_ulp:.3f} ulp at x = {measured.worst_input}, "
        f"stated bound {tail.ERROR_BOUNDS[name]}")
    assert measured.max_underflow_abs <= measured.underflow_limit


def test_error_measurement_catches_a_worse_approximation(monkeypatch):
    """Dropping the cubic term must break exp's stated bound (the check can fail)."""
    monkeypatch.setattr(tail, "EXP_C3", 0.0)
    assert accuracy.measure("exp").max_ulp > tail.ERROR_BOUNDS["exp"]


def test_ulp_error_units():
    ref = np.array([1.0, 1.0, 3.0], dtype=np.float64)
    res = np.array([1.0, 1.0 + 2.0**-23, 3.0 - 2.0**-22], dtype=np.float32).view(np.uint32)
    assert np.allclose(accuracy.ulp_error(res, ref), [0.0, 1.0, 1.0])


def test_op_table_is_consistent():
    assert set(OPS) == set(ALU_OPS) | {f"tail.{n}" for n in TAIL_OPS}
    assert len({op.opcode for op in ALU_OPS.values()}) == len(ALU_OPS)
    assert len({op.opcode for op in TAIL_OPS.values()}) == len(TAIL_OPS)
    for op in ALU_OPS.values():
        assert op.build is not None and op.latency >= 0
    assert get_op("exp") is get_op("tail.exp") is TAIL_OPS["exp"]
    with pytest.raises(UnknownOpError, match="unknown op 'fdiv'"):
        get_op("fdiv")
    with pytest.raises(TypeError, match="fadd takes 2 operands"):
        golden("fadd", 1)


def test_exp_reduction_constants():
    steps = 1 << tail.EXP_TABLE_BITS
    # the low part is ln2/32 - EXP_STEP_HI rounded to float32: within half its ulp (2**-42)
    assert abs(tail.EXP_STEP_HI + tail.EXP_STEP_LO - math.log(2) / steps) <= 2.0**-42
    assert tail.EXP_SCALE == float(np.float32(steps / math.log(2)))
    # EXP_STEP_HI has at most 11 significant bits, so k·EXP_STEP_HI is exact for |k| < 2**13,
    # which holds for every k = rint(x·EXP_SCALE) of the clamped argument
    assert (int(np.float32(tail.EXP_STEP_HI).view(np.uint32)) & 0x1FFF) == 0
    assert max(abs(c) for c in tail.EXP_CLAMP) * tail.EXP_SCALE < 2**13
    table = np.array(tail.EXP2_TABLE, np.uint32).view(np.float32)
    assert np.array_equal(table, np.exp2(np.arange(steps) / steps).astype(np.float32))
