"""The tail unit's approximations: exp, reciprocal, rsqrt, sigmoid, SiLU and GeLU (tanh form).

All seven share one datapath, written once as the micro-program
:func:`tail_program` (see :mod:`hdl.numerics.programs`); the op code selects
which inputs the shared sections see:

``exp(x)``
    Clamp x to [-104, 89] (NaN passes), ``n = rint(x·log2 e)``, Cody–Waite
    reduction ``r = x − n·LN2_HI − n·LN2_LO`` (LN2_HI has 16 significant bits,
    so ``n·LN2_HI`` is exact), a degree-6 polynomial ``p(r) ≈ e**r`` on
    ``|r| ≤ ln2/2`` (least-squares fit in relative error, coefficients rounded
    to float32, model error 0.31 ulp), evaluated by Horner's rule with float32
    multiplies and adds, then ``p · 2**n``.
``recip(x)``
    ``x = m·2**k`` with m in [1, 2); a 128-entry table (the top 7 fraction bits
    of m) gives ``1/m`` to 8 bits; two Newton–Raphson steps
    ``y ← y + y·(1 − m·y)``; scale by ``2**-k``; zeros, Infs and NaN as IEEE.
``rsqrt(x)``
    ``x = m'·2**(2h)`` with m' in [1, 4); a 128-entry table (the exponent
    parity and the top 6 fraction bits) gives ``1/√m'``; two Newton–Raphson
    steps ``y ← y + y·(½ − ½m'·y²)``; scale by ``2**-h``. Negative x → NaN,
    ±0 → ±Inf, +Inf → +0.
``sigmoid(z)``
    ``e = exp(−|z|)`` (never overflows), ``r = recip(1 + e)``;
    ``sigmoid = r`` for z ≥ 0 and ``e·r`` for z < 0.
``relu(x) = fmax(x, +0)``
    exact (NaN stays NaN, −0 → +0); here so that a systolic GEMM's drain can apply it.
``silu(x) = x·sigmoid(x)`` and ``gelu(x) = x·sigmoid(x·(A + B·x²))``
    with ``A = 2√(2/π)`` and ``B = 2·0.044715·√(2/π)``: the tanh form
    ``½x(1 + tanh(√(2/π)(x + 0.044715x³)))`` rewritten with
    ``½(1 + tanh u) = sigmoid(2u)``. The factor x is first clamped to
    ``−FLT_MAX`` so that ``f(−Inf) = −0``.

Accuracy (measured exhaustively over all finite bf16 inputs against float64
by ``tests/hdl/numerics/test_numerics_golden.py``; the table in ``docs/numerics.md``):
see :data:`ERROR_BOUNDS`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TAIL_OPCODES", "EXP_POLY", "LN2_HI", "LN2_LO", "LOG2E", "GELU_A", "GELU_B",
    "RECIP_SEEDS", "RSQRT_SEEDS", "tail_program", "ERROR_BOUNDS", "UNDERFLOW_LIMITS",
]

#: Tail op codes (the tail unit's own field; 0 passes the input through unchanged).
TAIL_OPCODES = {"none": 0, "exp": 1, "recip": 2, "rsqrt": 3, "sigmoid": 4, "silu": 5, "gelu": 6, "relu": 7}


def _f32(word: int) -> float:
    return float(np.uint32(word).view(np.float32))


#: e**r ≈ sum(EXP_POLY[k] * r**k) on |r| <= ln2/2 (float32 words written as hex so they are exact).
EXP_POLY = tuple(_f32(w) for w in (0x3F800000, 0x3F800000, 0x3EFFFFFD, 0x3E2AAA05,
                                   0x3D2AAC73, 0x3C0936AF, 0x3AB54370))
LOG2E = _f32(0x3FB8AA3B)     # float32(1/ln 2)
LN2_HI = _f32(0x3F317200)    # 45426/65536: 16 significant bits
LN2_LO = _f32(0x35BFBE8E)    # float32(ln 2 - LN2_HI)
EXP_CLAMP = (-104.0, 89.0)   # exp underflows to 0 below -103.3 and overflows above 88.73
GELU_A = float(np.float32(2 * np.sqrt(2 / np.pi)))
GELU_B = float(np.float32(2 * 0.044715 * np.sqrt(2 / np.pi)))
FLT_MAX = float(np.finfo(np.float32).max)


def _seed_table(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(w) for w in values.astype(np.float32).view(np.uint32))


#: 1/m at the midpoint of each of 128 intervals of m in [1, 2) (index: top 7 fraction bits).
RECIP_SEEDS = _seed_table(1.0 / (1.0 + (np.arange(128) + 0.5) / 128))
#: 1/sqrt(m') at the midpoints of 64 intervals of [1, 2) (index bit 6 = 0) and of [2, 4) (bit 6 = 1).
RSQRT_SEEDS = _seed_table(1.0 / np.sqrt(np.concatenate([
    1.0 + (np.arange(64) + 0.5) / 64, 2.0 * (1.0 + (np.arange(64) + 0.5) / 64)])))


def exp_section(E, x):
    """e**x (see the module docstring)."""
    lo, hi = EXP_CLAMP
    xc = E.fmin(E.fmax(x, E.f(lo)), E.f(hi))
    n = E.f2i(E.fmul(xc, E.f(LOG2E)))
    nf = E.i2f(n)
    r = E.fsub(E.fsub(xc, E.fmul(nf, E.f(LN2_HI))), E.fmul(nf, E.f(LN2_LO)))
    p = E.f(EXP_POLY[-1])
    for c in reversed(EXP_POLY[:-1]):
        p = E.fadd(E.fmul(p, r), E.f(c))
    return E.fscale(p, n)


def recip_section(E, x):
    """1/x (see the module docstring)."""
    m = E.getmant(x)
    y = E.rcp_seed(m)
    for _ in range(2):
        y = E.fadd(y, E.fmul(y, E.fsub(E.f(1.0), E.fmul(m, y))))
    return E.recip_fix(x, E.fscale(y, E.isub(E.i(0), E.getexp(x))))


def rsqrt_section(E, x):
    """1/sqrt(x) (see the module docstring)."""
    k = E.getexp(x)
    odd = E.iand(k, E.i(1))
    m2 = E.fscale(E.getmant(x), odd)
    half_m2 = E.fmul(m2, E.f(0.5))
    y = E.rsq_seed(m2)
    for _ in range(2):
        t = E.fmul(half_m2, E.fmul(y, y))
        y = E.fadd(y, E.fmul(y, E.fsub(E.f(0.5), t)))
    h = E.isra(E.isub(k, odd), E.i(1))
    return E.rsqrt_fix(x, E.fscale(y, E.isub(E.i(0), h)))


def tail_program(E, x, op):
    """The shared tail datapath: ``x`` an fp32 word, ``op`` a :data:`TAIL_OPCODES` value."""
    def is_op(name):
        return E.ieq(op, E.i(TAIL_OPCODES[name]))

    # argument of the sigmoid family
    xc = E.fmax(x, E.f(-FLT_MAX))
    z_gelu = E.fmul(xc, E.fadd(E.f(GELU_A), E.fmul(E.f(GELU_B), E.fmul(xc, xc))))
    z = E.sel(is_op("gelu"), z_gelu, x)
    # one exp: of x itself, or of -|z| for the sigmoid family
    e = exp_section(E, E.sel(is_op("exp"), x, E.fneg(E.fabs(z))))
    # one reciprocal: of x itself, or of 1 + e
    r = recip_section(E, E.sel(is_op("recip"), x, E.fadd(E.f(1.0), e)))
    s = E.sel(E.flt(z, E.f(0.0)), E.fmul(e, r), r)
    family = E.sel(is_op("sigmoid"), s, E.fmul(xc, s))
    q = rsqrt_section(E, x)
    # none and relu share the short path, so relu adds no latency
    direct = E.sel(is_op("relu"), E.fmax(x, E.f(0.0)), x)
    return E.sel(is_op("exp"), e,
           E.sel(is_op("recip"), r,
           E.sel(is_op("rsqrt"), q,
           E.sel(E.ior(is_op("none"), is_op("relu")), direct, family))))


#: Stated accuracy per tail op: maximum error in float32 ulps of the float64 reference, over all
#: finite bf16 inputs whose reference result magnitude is at least the op's underflow limit
#: (below it the result may flush to zero; see UNDERFLOW_LIMITS). Checked by the test suite.
ERROR_BOUNDS: dict[str, float] = {
    "exp": 1.1,      # measured 1.078 (x = -3.109375)
    "recip": 1.0,    # measured 0.947
    "rsqrt": 1.0,    # measured 0.898
    "sigmoid": 2.3,  # measured 2.214 (x = -0.013671875)
    "silu": 2.7,     # measured 2.610 (x = -6)
    # exp(z) has condition number |z|: the float32 rounding of z = x(A + Bx²) is amplified up to
    # 87x for x near -10 (measured 98.96 at x = -9.25); within |x| <= 3 it is a few ulp
    "gelu": 100.0,
    "relu": 0.0,     # exact
}

#: Results whose float64 reference magnitude is below this may be returned as ±0 (flush to zero
#: of an intermediate such as exp(-|z|)); above it the ulp bound of ERROR_BOUNDS holds.
UNDERFLOW_LIMITS: dict[str, float] = {
    # exp(x) < 2**-126 flushes for x < -87.34, where |silu(x)| = |x|·e**x < 2**-119.5
    "silu": 2.0**-119,
    # exp(-|z|) flushes for |z| > 87.34, i.e. x < -10.3, where |gelu(x)| < 2**-122.5
    "gelu": 2.0**-122,
}
