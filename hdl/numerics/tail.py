"""The tail unit's approximations: exp, reciprocal, rsqrt, sigmoid, SiLU and GeLU (tanh form).

All seven share one datapath, written once as the micro-program
:func:`tail_program` (see :mod:`hdl.numerics.programs`): one exponential
section and one Newton–Raphson section, which every op that needs them shares;
the op code selects which inputs the sections see:

``exp(x)``
    Clamp x to [-104, 89] (NaN passes), ``k = rint(x·32/ln2)``, Cody–Waite
    reduction ``r = x − k·EXP_STEP_HI − k·EXP_STEP_LO`` (the two parts of
    ln2/32; EXP_STEP_HI has 11 significant bits, so ``k·EXP_STEP_HI`` is exact),
    ``|r| ≤ ln2/64``; then ``e**r − 1 ≈ p = r + r²(½ + r/6)`` (Taylor, the
    first omitted term below 2**-30), ``T = 2**((k mod 32)/32)`` from a
    32-entry table (:data:`EXP2_TABLE`), and ``(T + T·p) · 2**(k div 32)``.
``recip(x)``
    ``x = m·2**k`` with m in [1, 2); a 128-entry table (the top 7 fraction bits
    of m) gives ``1/m`` to 8 bits; two Newton–Raphson steps
    ``y ← y + y·(1 − m·y)``; scale by ``2**-k``; zeros, Infs and NaN as IEEE.
``rsqrt(x)``
    ``x = m'·2**(2h)`` with m' in [1, 4); a 128-entry table (the exponent
    parity and the top 6 fraction bits) gives ``1/√m'``; two Newton–Raphson
    steps ``y ← y + y·(½ − ½m'·y²)``; scale by ``2**-h``. Negative x → NaN,
    ±0 → ±Inf, +Inf → +0. The same multipliers and adders as recip's steps
    (:func:`recip_rsqrt_section`): ``y²`` replaces ``y`` and ½ replaces 1.
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
    "TAIL_OPCODES", "EXP_TABLE_BITS", "EXP_SCALE", "EXP_STEP_HI", "EXP_STEP_LO", "EXP_C2", "EXP_C3",
    "EXP2_TABLE", "GELU_A", "GELU_B", "RECIP_SEEDS", "RSQRT_SEEDS", "tail_program", "ERROR_BOUNDS",
    "UNDERFLOW_LIMITS",
]

#: Tail op codes (the tail unit's own field; 0 passes the input through unchanged).
TAIL_OPCODES = {"none": 0, "exp": 1, "recip": 2, "rsqrt": 3, "sigmoid": 4, "silu": 5, "gelu": 6, "relu": 7}


def _f32(word: int) -> float:
    return float(np.uint32(word).view(np.float32))


EXP_TABLE_BITS = 5                        # the table holds 2**(j/32), j in [0, 32)
EXP_SCALE = _f32(0x4238AA3B)               # float32(32/ln 2)
EXP_STEP_HI = _f32(0x3CB18000)             # ln2/32 to 11 significant bits: k·EXP_STEP_HI is exact
EXP_STEP_LO = _f32(0xB6DE8083)             # float32(ln2/32 - EXP_STEP_HI)
EXP_C2 = 0.5                               # e**r - 1 ≈ r + C2·r² + C3·r³ (Taylor; |r| <= ln2/64
EXP_C3 = _f32(0x3E2AAAAB)                  # makes the r⁴/24 term < 2**-30)
EXP_CLAMP = (-104.0, 89.0)   # exp underflows to 0 below -103.3 and overflows above 88.73
GELU_A = float(np.float32(2 * np.sqrt(2 / np.pi)))
GELU_B = float(np.float32(2 * 0.044715 * np.sqrt(2 / np.pi)))
FLT_MAX = float(np.finfo(np.float32).max)


def _seed_table(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(w) for w in values.astype(np.float32).view(np.uint32))


#: 2**(j/32) rounded to float32, j in [0, 32): the table of exp's reconstruction.
EXP2_TABLE = _seed_table(np.exp2(np.arange(1 << EXP_TABLE_BITS) / (1 << EXP_TABLE_BITS)))
#: 1/m at the midpoint of each of 128 intervals of m in [1, 2) (index: top 7 fraction bits).
RECIP_SEEDS = _seed_table(1.0 / (1.0 + (np.arange(128) + 0.5) / 128))
#: 1/sqrt(m') at the midpoints of 64 intervals of [1, 2) (index bit 6 = 0) and of [2, 4) (bit 6 = 1).
RSQRT_SEEDS = _seed_table(1.0 / np.sqrt(np.concatenate([
    1.0 + (np.arange(64) + 0.5) / 64, 2.0 * (1.0 + (np.arange(64) + 0.5) / 64)])))


def exp_section(E, x):
    """e**x (see the module docstring)."""
    lo, hi = EXP_CLAMP
    xc = E.fmin(E.fmax(x, E.f(lo)), E.f(hi))
    k = E.f2i(E.fmul(xc, E.f(EXP_SCALE)))
    kf = E.i2f(k)
    r = E.fsub(E.fsub(xc, E.fmul(kf, E.f(EXP_STEP_HI))), E.fmul(kf, E.f(EXP_STEP_LO)))
    # e**r - 1 = r + r²(C2 + C3·r) on |r| <= ln2/64
    p = E.fadd(r, E.fmul(E.fmul(r, r), E.fadd(E.fmul(E.f(EXP_C3), r), E.f(EXP_C2))))
    t = E.exp2_frac(k)
    return E.fscale(E.fadd(t, E.fmul(t, p)), E.isra(k, E.i(EXP_TABLE_BITS)))


def recip_rsqrt_section(E, x, rsqrt):
    """1/x, or 1/sqrt(x) where ``rsqrt`` is nonzero: one Newton–Raphson datapath for both (see the
    module docstring). Each op is the same primitive, on the same values, as in a separate
    reciprocal or reciprocal square root, so sharing changes no result."""
    k = E.getexp(x)
    odd = E.sel(rsqrt, E.iand(k, E.i(1)), E.i(0))
    m = E.fscale(E.getmant(x), odd)                 # [1, 2) for recip, [1, 4) for rsqrt
    a = E.sel(rsqrt, E.fscale(m, E.i(-1)), m)         # ½m, exact
    c = E.sel(rsqrt, E.f(0.5), E.f(1.0))
    y = E.sel(rsqrt, E.rsq_seed(m), E.rcp_seed(m))
    for _ in range(2):
        # recip: y + y(1 - m·y);  rsqrt: y + y(½ - ½m·y²)
        t = E.fmul(a, E.sel(rsqrt, E.fmul(y, y), y))
        y = E.fadd(y, E.fmul(y, E.fsub(c, t)))
    h = E.sel(rsqrt, E.isra(E.isub(k, odd), E.i(1)), k)
    y = E.fscale(y, E.isub(E.i(0), h))
    return E.sel(rsqrt, E.rsqrt_fix(x, y), E.recip_fix(x, y))


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
    # one Newton–Raphson datapath: 1/sqrt(x), 1/x, or 1/(1 + e) for the sigmoid family
    rsqrt = is_op("rsqrt")
    r = recip_rsqrt_section(E, E.sel(E.ior(rsqrt, is_op("recip")), x, E.fadd(E.f(1.0), e)), rsqrt)
    # z < 0 exactly when x < 0 (z = x, or x(A + Bx²) with A + Bx² > 0 never underflowing)
    s = E.sel(E.flt(x, E.f(0.0)), E.fmul(e, r), r)
    family = E.sel(is_op("sigmoid"), s, E.fmul(xc, s))
    # none and relu share the short path, so relu adds no latency
    direct = E.sel(is_op("relu"), E.fmax(x, E.f(0.0)), x)
    return E.sel(is_op("exp"), e,
           E.sel(E.ior(rsqrt, is_op("recip")), r,
           E.sel(E.ior(is_op("none"), is_op("relu")), direct, family)))


#: Stated accuracy per tail op: maximum error in float32 ulps of the float64 reference, over all
#: finite bf16 inputs whose reference result magnitude is at least the op's underflow limit
#: (below it the result may flush to zero; see UNDERFLOW_LIMITS). Checked by the test suite.
ERROR_BOUNDS: dict[str, float] = {
    "exp": 1.0,      # measured 0.973 (x = 0.0559082)
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
