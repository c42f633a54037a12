"""Amaranth builders for IEEE-754 binary32 arithmetic under OpenRDU's numerics contract.

Each builder takes a :class:`~hdl.numerics.datapath.Datapath`, operand values
(32-bit words) and a ``latency``, and returns the 32-bit result valid
``latency`` advances later. They implement, bit for bit, the golden
primitives of :mod:`hdl.numerics.golden`:

* Subnormal inputs are read as zero of the same sign (flush to zero, FTZ).
* Results are rounded to nearest, ties to even (RNE), as IEEE 754 does with
  gradual underflow; a result that is then subnormal becomes zero of the same
  sign. (So a product just below 2**-126 that IEEE rounds up to 2**-126 stays
  2**-126.)
* Every NaN result is the canonical quiet NaN ``0x7FC00000``; ±Inf follow IEEE.

bf16 values travel in the low 16 bits of a 32-bit word.
"""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal, Value, signed

from .datapath import Datapath

__all__ = [
    "F32_NAN", "F32_INF", "F32_MIN_NORMAL", "F32_MAX", "BF16_NAN",
    "Unpacked", "unpack", "round_pack", "lzc",
    "fadd", "fmul", "fmax", "fmin", "fcmp", "f2i", "i2f", "fscale", "getexp", "getmant",
    "f32_to_bf16", "bf16_to_f32", "canonical",
]

F32_NAN = 0x7FC00000
F32_INF = 0x7F800000
F32_MIN_NORMAL = 0x00800000
F32_MAX = 0x7F7FFFFF
BF16_NAN = 0x7FC0

_EXP = signed(12)  # working exponent: biased, wide enough for products and scaling


class Unpacked:
    """Fields and classes of one binary32 operand after flush-to-zero.

    Attributes
    ----------
    sign : 1 bit
    exp : 8 bits, biased exponent (0 for zero and flushed subnormals)
    sig : 24 bits, significand with the hidden bit (0 for zero)
    zero, inf, nan : 1 bit each
    """

    def __init__(self, dp: Datapath, word: Value):
        word = dp.wire(word, "operand")
        self.word = word
        self.sign = word[31]
        self.exp = word[23:31]
        frac = word[0:23]
        max_exp = dp.wire(self.exp == 0xFF, "max_exp")
        frac_zero = dp.wire(frac == 0, "frac_zero")
        self.zero = dp.wire(self.exp == 0, "is_zero")
        self.inf = dp.wire(max_exp & frac_zero, "is_inf")
        self.nan = dp.wire(max_exp & ~frac_zero, "is_nan")
        self.sig = dp.wire(Mux(self.zero, 0, Cat(frac, Const(1, 1))), "sig")
        #: magnitude bits with subnormals flushed (orders finite values by |x|)
        self.mag = dp.wire(Mux(self.zero, 0, word[0:31]), "mag")


def unpack(dp: Datapath, word) -> Unpacked:
    """Fields and classes of ``word`` (see :class:`Unpacked`)."""
    return Unpacked(dp, word)


def canonical(dp: Datapath, word) -> Value:
    """``word`` with subnormals flushed to signed zero and NaNs made canonical."""
    u = Unpacked(dp, word)
    return Mux(u.nan, F32_NAN, Mux(u.zero, Cat(Const(0, 31), u.sign), u.word))


def lzc(dp: Datapath, value: Value) -> Value:
    """Number of leading zeros of ``value`` (its width when it is all zeros), as a tree."""
    value = Value.cast(value)
    width = len(value)
    if width == 1:
        return ~value[0]
    split = width // 2
    hi, lo = value[split:], value[:split]
    return dp.wire(Mux(hi.any(), lzc(dp, hi), len(hi) + lzc(dp, lo)), "lzc")


def round_pack(dp: Datapath, sign, exp, sig24, guard, sticky) -> Value:
    """Round a normalised value and pack it, with overflow to Inf and flush-to-zero.

    The value is ``(-1)**sign * sig24 / 2**23 * 2**(exp - 127)`` plus the bits
    below ``sig24``: ``guard`` (the half-ulp bit) and ``sticky`` (OR of the rest).
    ``sig24`` has its leading one in bit 23. ``exp`` is a signed biased exponent.
    """
    sig24 = dp.wire(sig24, "sig24")
    exp = dp.wire(Value.cast(exp).as_signed(), "exp")
    up = guard & (sticky | sig24[0])
    rounded = dp.wire(sig24 + up, "rounded")  # 25 bits
    carry = rounded[24]
    exp_r = dp.wire(exp + carry, "exp_rounded")
    frac = Mux(carry, 0, rounded[0:23])
    # IEEE would round 1.f * 2**-127 (biased exponent 0) to the subnormal grid; it reaches
    # 2**-126 exactly when the top 23 fraction bits are all ones, otherwise it stays subnormal.
    to_min_normal = (exp == 0) & sig24[0:23].all()
    return Mux(exp_r >= 255, Cat(Const(0, 23), Const(0xFF, 8), sign),
           Mux(exp <= 0, Cat(Const(0, 23), to_min_normal, Const(0, 7), sign),
               Cat(frac, exp_r[0:8], sign)))


def _finish(dp: Datapath, extra: int, value: Value) -> Value:
    return dp.delay(value, extra)


def fadd(dp: Datapath, a, b, *, latency: int = 2, subtract: bool | Value = False) -> Value:
    """``a + b`` (or ``a - b``), RNE, FTZ. Three cut points: align | add | normalise | round.

    ``subtract`` is a bool, or a one-bit value (read with the operands) that picks ``a - b`` at
    run time: one adder serves both ops."""
    (c_align, c_add, c_norm), extra = dp.plan(latency, 3)
    ua, ub = Unpacked(dp, a), Unpacked(dp, b)
    sa = ua.sign
    sb = (~ub.sign if subtract else ub.sign) if isinstance(subtract, bool) else \
        ub.sign ^ Value.cast(subtract)
    nan = ua.nan | ub.nan | (ua.inf & ub.inf & (sa != sb))
    inf = ua.inf | ub.inf
    inf_sign = Mux(ua.inf, sa, sb)
    both_zero = ua.zero & ub.zero
    zero_sign = sa & sb  # -0 + -0 = -0, every other exact zero sum is +0 under RNE

    swap = ub.mag > ua.mag
    e_l = Mux(swap, ub.exp, ua.exp)
    e_s = Mux(swap, ua.exp, ub.exp)
    sig_l = Mux(swap, ub.sig, ua.sig)
    sig_s = Mux(swap, ua.sig, ub.sig)
    s_l = Mux(swap, sb, sa)
    sub = sa ^ sb
    diff = (e_l - e_s)[0:8]
    shift = Mux(diff > 27, 27, diff)

    (nan, inf, inf_sign, both_zero, zero_sign, e_l, sig_l, sig_s, s_l, sub, shift) = dp.cut(
        c_align, nan, inf, inf_sign, both_zero, zero_sign, e_l, sig_l, sig_s, s_l, sub, shift)

    wide = dp.wire(Cat(Const(0, 27), Const(0, 3), sig_s) >> shift)  # sig_s << 3, aligned, 54 bits
    small = Cat(wide[27:54][0] | wide[0:27].any(), wide[28:54])  # 27 bits, sticky in bit 0
    large = Cat(Const(0, 3), sig_l)
    total = Signal(28, name="fadd_total")
    dp.m.d.comb += total.eq(Mux(sub, large - small, large + small))

    (nan, inf, inf_sign, both_zero, zero_sign, e_l, s_l, total) = dp.cut(
        c_add, nan, inf, inf_sign, both_zero, zero_sign, e_l, s_l, total)

    lz = lzc(dp, total)
    exp = e_l + 1 - lz
    shifted = (total << Mux(lz == 0, 0, lz - 1).as_unsigned())[0:27]
    norm = Mux(lz == 0, Cat(total[0] | total[1], total[2:28]), shifted)
    exact_zero = total == 0
    exp_s = Signal(_EXP, name="fadd_exp")
    dp.m.d.comb += exp_s.eq(exp)

    (nan, inf, inf_sign, both_zero, zero_sign, exact_zero, s_l, exp_s, norm) = dp.cut(
        c_norm, nan, inf, inf_sign, both_zero, zero_sign, exact_zero, s_l, exp_s, norm)

    packed = round_pack(dp, s_l, exp_s, norm[3:27], norm[2], norm[1] | norm[0])
    result = Mux(nan, F32_NAN,
             Mux(inf, Cat(Const(0, 23), Const(0xFF, 8), inf_sign),
             Mux(both_zero, Cat(Const(0, 31), zero_sign),
             Mux(exact_zero, 0, packed))))
    return _finish(dp, extra, result)


def fmul(dp: Datapath, a, b, *, latency: int = 2, sig_bits: int = 24) -> Value:
    """``a * b``, RNE, FTZ. ``sig_bits=8`` builds the small multiplier for bf16 operands
    (values whose low 16 fraction bits are zero; the product is then exact)."""
    if sig_bits not in (8, 24):
        raise ValueError(f"sig_bits must be 8 (bf16) or 24 (fp32), got {sig_bits}")
    (c_mul, c_norm), extra = dp.plan(latency, 2)
    ua, ub = Unpacked(dp, a), Unpacked(dp, b)
    sign = ua.sign ^ ub.sign
    nan = ua.nan | ub.nan | (ua.inf & ub.zero) | (ua.zero & ub.inf)
    inf = ua.inf | ub.inf
    zero = ua.zero | ub.zero
    exp = Signal(_EXP, name="fmul_exp")
    dp.m.d.comb += exp.eq(ua.exp + ub.exp - 127)
    drop = 24 - sig_bits
    product = Signal(2 * sig_bits, name="fmul_product")
    dp.m.d.comb += product.eq(ua.sig[drop:] * ub.sig[drop:])

    (sign, nan, inf, zero, exp, product) = dp.cut(c_mul, sign, nan, inf, zero, exp, product)

    p = Cat(Const(0, 2 * drop), product) if drop else product  # as a 48-bit product
    hi = p[47]
    sig24 = Mux(hi, p[24:48], p[23:47])
    guard = Mux(hi, p[23], p[22])
    sticky = Mux(hi, p[0:23].any(), p[0:22].any())
    exp_n = Signal(_EXP, name="fmul_exp_n")
    dp.m.d.comb += exp_n.eq(exp + hi)

    (sign, nan, inf, zero, exp_n, sig24, guard, sticky) = dp.cut(
        c_norm, sign, nan, inf, zero, exp_n, sig24, guard, sticky)

    packed = round_pack(dp, sign, exp_n, sig24, guard, sticky)
    result = Mux(nan, F32_NAN,
             Mux(inf, Cat(Const(0, 23), Const(0xFF, 8), sign),
             Mux(zero, Cat(Const(0, 31), sign), packed)))
    return _finish(dp, extra, result)


def _order_key(dp: Datapath, u: Unpacked) -> Value:
    """Unsigned key whose order is the numeric order of non-NaN words, with -0 < +0."""
    key = Cat(u.mag, Const(1, 1))
    return dp.wire(Mux(u.sign, ~key, key), "order_key")


def _minmax(dp: Datapath, a, b, latency: int, want_max: bool) -> Value:
    ua, ub = Unpacked(dp, a), Unpacked(dp, b)
    ka, kb = _order_key(dp, ua), _order_key(dp, ub)
    pick_a = (ka > kb) if want_max else (ka < kb)
    chosen = Mux(pick_a, ua.word, ub.word)
    result = Mux(ua.nan | ub.nan, F32_NAN, canonical(dp, chosen))
    return dp.delay(result, latency)


def fmax(dp: Datapath, a, b, *, latency: int = 1) -> Value:
    """IEEE 754-2019 ``maximum``: NaN if either is NaN; +0 is larger than -0."""
    return _minmax(dp, a, b, latency, want_max=True)


def fmin(dp: Datapath, a, b, *, latency: int = 1) -> Value:
    """IEEE 754-2019 ``minimum``: NaN if either is NaN; -0 is smaller than +0."""
    return _minmax(dp, a, b, latency, want_max=False)


def fcmp(dp: Datapath, a, b, *, relation: str, latency: int = 1) -> Value:
    """Quiet comparison ``a < b``, ``a <= b`` or ``a == b`` → 1 or 0 (32-bit); NaN compares false,
    -0 equals +0."""
    if relation not in ("lt", "le", "eq"):
        raise ValueError(f"relation must be 'lt', 'le' or 'eq', got {relation!r}")
    ua, ub = Unpacked(dp, a), Unpacked(dp, b)
    # treat both zeros as +0 so that they compare equal
    ka = Mux(ua.zero, Const(1 << 31, 32), _order_key(dp, ua))
    kb = Mux(ub.zero, Const(1 << 31, 32), _order_key(dp, ub))
    truth = {"lt": ka < kb, "le": ka <= kb, "eq": ka == kb}[relation]
    return dp.delay(Cat(truth & ~(ua.nan | ub.nan), Const(0, 31)), latency)


def f2i(dp: Datapath, a, *, latency: int = 1) -> Value:
    """binary32 → int32, RNE; NaN → 0; out-of-range values saturate to ±(2**31 - 1 | 2**31)."""
    u = Unpacked(dp, a)
    e = u.exp - 127  # unbiased; |a| in [2**e, 2**(e+1))
    shift = Signal(range(32), name="f2i_shift")
    dp.m.d.comb += shift.eq(Mux(e > 30, 0, Mux(e < -1, 31, 30 - e)))
    scaled = dp.wire(Cat(Const(0, 32), Const(0, 7), u.sig) >> shift)  # sig << 7: value * 2**(e-30)
    whole = scaled[32:64]
    half = scaled[31]
    sticky = scaled[0:31].any()
    magnitude = whole + (half & (sticky | whole[0]))  # 33 bits
    big = (e > 30) | (magnitude >= (1 << 31))
    tiny = e < -1
    pos = Mux(big, (1 << 31) - 1, Mux(tiny, 0, magnitude[0:32]))
    neg = Mux(big, Const(1 << 31, 32), (-Mux(tiny, 0, magnitude))[0:32])
    result = Mux(u.nan, 0, Mux(u.sign, neg, pos))
    return dp.delay(result, latency)


def i2f(dp: Datapath, a, *, latency: int = 2) -> Value:
    """int32 → binary32, RNE."""
    (c_norm,), extra = dp.plan(latency, 1)
    a = Value.cast(a)
    sign = a[31]
    magnitude = Signal(32, name="i2f_mag")
    dp.m.d.comb += magnitude.eq(Mux(sign, -a.as_signed(), a))
    lz = lzc(dp, magnitude)
    norm = Signal(32, name="i2f_norm")
    dp.m.d.comb += norm.eq((magnitude << lz)[0:32])
    exp = Signal(_EXP, name="i2f_exp")
    dp.m.d.comb += exp.eq(127 + 31 - lz)
    zero = magnitude == 0
    (sign, norm, exp, zero) = dp.cut(c_norm, sign, norm, exp, zero)
    packed = round_pack(dp, sign, exp, norm[8:32], norm[7], norm[0:7].any())
    return _finish(dp, extra, Mux(zero, 0, packed))


def fscale(dp: Datapath, a, n, *, latency: int = 1) -> Value:
    """``a * 2**n`` for int32 ``n`` (ldexp), rounded and flushed as the contract says."""
    u = Unpacked(dp, a)
    n = Value.cast(n).as_signed()
    n_clamped = Mux(n > 600, 600, Mux(n < -600, -600, n))
    exp = Signal(_EXP, name="fscale_exp")
    dp.m.d.comb += exp.eq(u.exp + n_clamped)
    packed = round_pack(dp, u.sign, exp, u.sig, 0, 0)
    result = Mux(u.nan, F32_NAN,
             Mux(u.inf, Value.cast(a),
             Mux(u.zero, Cat(Const(0, 31), u.sign), packed)))
    return dp.delay(result, latency)


def getexp(dp: Datapath, a, *, latency: int = 1) -> Value:
    """Unbiased exponent of ``a`` as int32 (``floor(log2|a|)`` for normal ``a``; -127 for zero,
    128 for Inf/NaN)."""
    u = Unpacked(dp, a)
    return dp.delay(_sext32(u.exp - 127), latency)


def _sext32(value: Value) -> Value:
    value = Value.cast(value).as_signed()
    return Value.cast(value)[0:32] if len(value) >= 32 else Cat(value, value[-1].replicate(32 - len(value)))


def getmant(dp: Datapath, a, *, latency: int = 1) -> Value:
    """``|a|`` scaled into [1, 2): the fraction of ``a`` with the exponent of 1.0 (1.0 for
    zero, Inf and NaN, whose results the callers replace)."""
    u = Unpacked(dp, a)
    a = Value.cast(a)
    regular = ~(u.zero | u.inf | u.nan)
    return dp.delay(Cat(Mux(regular, a[0:23], 0), Const(127, 8), Const(0, 1)), latency)


def f32_to_bf16(dp: Datapath, a, *, latency: int = 1) -> Value:
    """binary32 → bf16 (low 16 bits of the result), RNE; overflow → Inf; NaN → ``0x7FC0``."""
    u = Unpacked(dp, a)
    word = canonical(dp, a)
    rounded = (word + 0x7FFF + word[16])[16:32]
    return dp.delay(Cat(Mux(u.nan, BF16_NAN, rounded), Const(0, 16)), latency)


def bf16_to_f32(dp: Datapath, a, *, latency: int = 0) -> Value:
    """bf16 in the low 16 bits → binary32 (exact; subnormals flush, NaN canonical)."""
    a = Value.cast(a)
    return dp.delay(canonical(dp, Cat(Const(0, 16), a[0:16])), latency)

