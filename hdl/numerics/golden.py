"""Golden model of OpenRDU arithmetic: numpy float32 and ``ml_dtypes.bfloat16``.

Every function takes and returns arrays of 32-bit words (``numpy.uint32``),
the way values travel through the fabric, and does its arithmetic with
numpy's IEEE float32 operations (or ml_dtypes' bf16 conversion); the only
things applied on top are the contract's flush-to-zero of subnormal inputs and
results and the canonical NaN. Nothing here rounds by hand.

bf16 values travel in the low 16 bits of a word.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "F32_NAN", "BF16_NAN", "as_words", "as_f32", "canonical", "flush_inputs",
    "fadd", "fsub", "fmul", "mac", "fmax", "fmin", "flt", "fle", "feq", "fabs", "fneg",
    "f2i", "i2f", "fscale", "getexp", "getmant", "f32_to_bf16", "bf16_to_f32",
    "words_from_float", "float_from_words",
]

def _bfloat16():
    """ml_dtypes' bfloat16, imported on first use: loading ml_dtypes takes ~0.6 s, which every process
    importing the op table paid (every simulation's testbench), most without converting anything."""
    import ml_dtypes

    return ml_dtypes.bfloat16


F32_NAN = np.uint32(0x7FC00000)
BF16_NAN = np.uint32(0x7FC0)
_TINY = np.float32(np.finfo(np.float32).tiny)  # 2**-126, smallest normal


def as_words(x) -> np.ndarray:
    """uint32 array from anything integer-like (words) — broadcasts scalars."""
    return np.asarray(x, dtype=np.int64).astype(np.uint32) if not (
        isinstance(x, np.ndarray) and x.dtype == np.uint32) else x


def as_f32(words) -> np.ndarray:
    return as_words(words).view(np.float32)


def words_from_float(x) -> np.ndarray:
    """The binary32 words of float values (rounded to float32 by numpy)."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def float_from_words(words) -> np.ndarray:
    return as_f32(words).copy()


def canonical(values) -> np.ndarray:
    """float32 values → words with subnormals flushed to signed zero and NaN canonical."""
    values = np.asarray(values, dtype=np.float32)
    flushed = np.where(np.abs(values) < _TINY, np.copysign(np.float32(0), values), values)
    words = flushed.astype(np.float32).view(np.uint32)
    return np.where(np.isnan(values), F32_NAN, words).astype(np.uint32)


def flush_inputs(words) -> np.ndarray:
    """Operand words as float32 values, subnormals read as signed zero."""
    values = as_f32(words)
    return np.where(np.abs(values) < _TINY, np.copysign(np.float32(0), values), values).astype(np.float32)


def _binary(op, a, b):
    with np.errstate(all="ignore"):
        return canonical(op(flush_inputs(a), flush_inputs(b)))


def fadd(a, b):
    """a + b (float32, RNE)."""
    return _binary(np.add, a, b)


def fsub(a, b):
    """a - b (float32, RNE)."""
    return _binary(np.subtract, a, b)


def fmul(a, b):
    """a * b (float32, RNE)."""
    return _binary(np.multiply, a, b)


def bf16_to_f32(a):
    """bf16 in the low 16 bits → float32 word (exact, subnormals flushed, NaN canonical)."""
    halves = (as_words(a) & 0xFFFF).astype(np.uint16).view(_bfloat16())
    return canonical(halves.astype(np.float32))


def f32_to_bf16(a):
    """float32 → bf16 (RNE, by ml_dtypes) in the low 16 bits of the word; NaN → 0x7FC0."""
    values = flush_inputs(a)
    with np.errstate(all="ignore"):
        halves = values.astype(_bfloat16())
    back = halves.astype(np.float32)
    words = halves.view(np.uint16).astype(np.uint32)
    # bf16 has float32's exponent range, so a normal float32 never rounds to a bf16 subnormal;
    # the flush below only guards that claim.
    words = np.where(np.abs(back) < _TINY, words & 0x8000, words)
    return np.where(np.isnan(values), BF16_NAN, words).astype(np.uint32)


def mac(acc, a, b):
    """acc + a*b with bf16 a, b (low 16 bits) and float32 acc: the product is exact, one rounding."""
    return fadd(acc, fmul(bf16_to_f32(a), bf16_to_f32(b)))


def _order_key(words):
    """int64 keys ordering non-NaN words numerically with -0 < +0 (after input flush)."""
    values = flush_inputs(words)
    bits = values.view(np.uint32).astype(np.int64)
    magnitude = bits & 0x7FFFFFFF
    return np.where(bits >> 31 == 1, -magnitude - 1, magnitude)


def _minmax(a, b, pick_a_when):
    a, b = as_words(a), as_words(b)
    nan = np.isnan(as_f32(a)) | np.isnan(as_f32(b))
    ka, kb = _order_key(a), _order_key(b)
    chosen = np.where(pick_a_when(ka, kb), a, b)
    return np.where(nan, F32_NAN, canonical(flush_inputs(chosen))).astype(np.uint32)


def fmax(a, b):
    """IEEE 754-2019 maximum: NaN-propagating, -0 < +0."""
    return _minmax(a, b, np.greater)


def fmin(a, b):
    """IEEE 754-2019 minimum: NaN-propagating, -0 < +0."""
    return _minmax(a, b, np.less)


def _compare(op, a, b):
    with np.errstate(all="ignore"):
        return op(flush_inputs(a), flush_inputs(b)).astype(np.uint32)


def flt(a, b):
    """1 where a < b else 0 (NaN: 0; -0 == +0)."""
    return _compare(np.less, a, b)


def fle(a, b):
    """1 where a <= b else 0."""
    return _compare(np.less_equal, a, b)


def feq(a, b):
    """1 where a == b else 0."""
    return _compare(np.equal, a, b)


def fabs(a):
    """|a| (NaN canonical)."""
    return canonical(np.abs(flush_inputs(a)))


def fneg(a):
    """-a (NaN canonical)."""
    return canonical(np.negative(flush_inputs(a)))


def f2i(a):
    """float32 → int32 word, RNE (numpy rint); NaN → 0; saturating."""
    with np.errstate(all="ignore"):
        values = flush_inputs(a).astype(np.float64)
        rounded = np.rint(values)
    rounded = np.where(np.isnan(rounded), 0.0, rounded)
    clipped = np.clip(rounded, -(2.0**31), 2.0**31 - 1)
    return clipped.astype(np.int64).astype(np.uint32)


def i2f(a):
    """int32 word → float32, RNE."""
    return canonical(as_words(a).view(np.int32).astype(np.float32))


def fscale(a, n):
    """a * 2**n (numpy ldexp on float32) with n an int32 word."""
    values = flush_inputs(a)
    exponents = np.clip(as_words(n).view(np.int32), -600, 600)
    with np.errstate(all="ignore"):
        return canonical(np.ldexp(values, exponents).astype(np.float32))


def getexp(a):
    """Unbiased exponent field of a as an int32 word (-127 for zero, 128 for Inf/NaN)."""
    words = flush_inputs(a).view(np.uint32)
    return (((words >> 23) & 0xFF).astype(np.int64) - 127).astype(np.uint32)


def getmant(a):
    """|a| scaled into [1, 2) (numpy frexp); 1.0 for zero, Inf and NaN."""
    values = flush_inputs(a)
    regular = np.isfinite(values) & (values != 0)
    with np.errstate(all="ignore"):
        fraction, _ = np.frexp(np.abs(values))
        return canonical(np.where(regular, fraction * np.float32(2), np.float32(1)).astype(np.float32))
