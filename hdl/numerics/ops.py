"""The op table: the one list of operations that RTL decode, golden model and compiler read.

Each :class:`Op` names an operation, its op code, operand and result types,
pipeline latency, its golden function (:mod:`hdl.numerics.golden`, numpy and
ml_dtypes) and its hardware builder (:mod:`hdl.numerics.fp32`).

Two kinds:

``"alu"``
    One step of a PCU stage: every lane applies it to operands chosen by the
    configuration (:class:`hdl.numerics.units.ArithmeticUnit` decodes these
    op codes).
``"tail"``
    A transcendental of the tail unit, a micro-program over ALU ops sharing one
    datapath (:mod:`hdl.numerics.tail`; :class:`hdl.numerics.units.TailUnit`).

Types: ``"f32"`` a binary32 word, ``"bf16"`` a bf16 value in the low 16 bits of
a word, ``"i32"`` a two's complement int32 word (comparisons give 0 or 1).

Use :func:`golden` to evaluate an op on arrays of words, :data:`ALU_OPS` and
:data:`TAIL_OPS` to list them. ``python -m hdl.numerics.ops`` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from amaranth import Array, Cat, Const, Mux, Value

from . import fp32
from . import golden as g
from .programs import GoldenEval, RtlEval, TimingEval
from .tail import EXP2_TABLE, EXP_TABLE_BITS, RECIP_SEEDS, RSQRT_SEEDS, TAIL_OPCODES, tail_program

__all__ = ["Op", "OPS", "ALU_OPS", "TAIL_OPS", "UnknownOpError", "get_op", "golden", "TYPES", "SHARED_BUILDS",
           "build_ops"]

TYPES = ("f32", "bf16", "i32")
_MASK = 0xFFFFFFFF


class UnknownOpError(KeyError, ValueError):
    """An op name or op code that is not in the table."""

    def __str__(self):
        return self.args[0]


@dataclass(frozen=True)
class Op:
    """One operation.

    Attributes
    ----------
    name : str
        Table key, e.g. ``"fadd"``.
    opcode : int
        Code in the unit's op field (ALU and tail ops have separate code spaces).
    operands : tuple of str
        Operand types, in order (see :data:`TYPES`).
    result : str
        Result type.
    latency : int
        Cycles from operands to result in the default build.
    golden : callable
        ``golden(*word_arrays) -> uint32 array``.
    build : callable
        ``build(datapath, operand_values, latency) -> Value``; ``None`` for tail ops,
        which :class:`~hdl.numerics.units.TailUnit` builds as one shared datapath.
    kind : str
        ``"alu"`` or ``"tail"``.
    doc : str
        One line for tables and docs.
    """

    name: str
    opcode: int
    operands: tuple[str, ...]
    result: str
    latency: int
    golden: Callable[..., np.ndarray]
    build: Callable[..., Value] | None
    kind: str
    doc: str

    def __post_init__(self):
        for t in (*self.operands, self.result):
            if t not in TYPES:
                raise ValueError(f"op {self.name}: unknown type {t!r}; types are {', '.join(TYPES)}")
        if self.kind not in ("alu", "tail"):
            raise ValueError(f"op {self.name}: kind must be 'alu' or 'tail', got {self.kind!r}")

    @property
    def arity(self) -> int:
        return len(self.operands)


# ---------------------------------------------------------------- integer golden helpers

def _u(x):
    return g.as_words(x).astype(np.int64)


def _s(x):
    return g.as_words(x).view(np.int32).astype(np.int64)


def _w(x):
    return (np.asarray(x, dtype=np.int64) & _MASK).astype(np.uint32)


def _sel_golden(c, a, b):
    return np.where(g.as_words(c) != 0, g.as_words(a), g.as_words(b)).astype(np.uint32)


def _seed_golden(table, index):
    return np.asarray(table, dtype=np.uint32)[index]


def _rcp_seed_golden(m):
    return _seed_golden(RECIP_SEEDS, (g.as_words(m) >> 16) & 0x7F)


def _rsq_seed_golden(m):
    words = g.as_words(m)
    upper = (((words >> 23) & 0xFF) == 128).astype(np.uint32)
    return _seed_golden(RSQRT_SEEDS, (upper << 6) | ((words >> 17) & 0x3F))


def _exp2_frac_golden(k):
    return _seed_golden(EXP2_TABLE, g.as_words(k) & ((1 << EXP_TABLE_BITS) - 1))


def _recip_fix_golden(x, r):
    v = g.flush_inputs(x)
    signed_r = (g.as_words(r) & 0x7FFFFFFF) | (g.as_words(x) & 0x80000000)
    inf = np.copysign(np.float32(np.inf), v)
    zero = np.copysign(np.float32(0), v)
    special = np.where(v == 0, inf, zero)
    out = np.where(np.isnan(v) | (v == 0) | np.isinf(v), g.canonical(special), signed_r)
    return np.where(np.isnan(v), g.F32_NAN, out).astype(np.uint32)


def _rsqrt_fix_golden(x, r):
    v = g.flush_inputs(x)
    out = np.where(v == 0, g.canonical(np.copysign(np.float32(np.inf), v)),
          np.where(np.isposinf(v), np.uint32(0), g.as_words(r)))
    return np.where(np.isnan(v) | (v < 0), g.F32_NAN, out).astype(np.uint32)


# ---------------------------------------------------------------- hardware helpers

def _sext(value: Value) -> Value:
    value = Value.cast(value)
    return value[0:32] if len(value) >= 32 else Cat(value, value[-1].replicate(32 - len(value)))


def _int_build(fn):
    def build(dp, args, latency):
        return dp.delay(_sext(fn(*[Value.cast(a) for a in args]))[0:32], latency)
    return build


def _sel_build(dp, args, latency):
    c, a, b = args
    return dp.delay(Mux(Value.cast(c).any(), a, b), latency)


def _seed_build(table, index_of):
    def build(dp, args, latency):
        (m,) = args
        rom = Array(Const(w, 32) for w in table)
        return dp.delay(rom[index_of(Value.cast(m))], latency)
    return build


def _recip_fix_build(dp, args, latency):
    x, r = args
    u = fp32.unpack(dp, x)
    r = Value.cast(r)
    special = Mux(u.zero, Cat(Const(0, 23), Const(0xFF, 8), u.sign), Cat(Const(0, 31), u.sign))
    out = Mux(u.nan, fp32.F32_NAN, Mux(u.zero | u.inf, special, Cat(r[0:31], u.sign)))
    return dp.delay(out, latency)


def _rsqrt_fix_build(dp, args, latency):
    x, r = args
    u = fp32.unpack(dp, x)
    out = Mux(u.nan | (u.sign & ~u.zero), fp32.F32_NAN,
          Mux(u.zero, Cat(Const(0, 23), Const(0xFF, 8), u.sign),
          Mux(u.inf, 0, r)))
    return dp.delay(out, latency)


def _mac_build(dp, args, latency):
    acc, a, b = args
    mul_latency = 1 if latency >= 2 else 0
    product = fp32.fmul(dp, fp32.bf16_to_f32(dp, a), fp32.bf16_to_f32(dp, b),
                        sig_bits=8, latency=mul_latency)
    return fp32.fadd(dp, dp.delay(acc, mul_latency), product, latency=latency - mul_latency)


def _neg_or_abs(negate: bool):
    def build(dp, args, latency):
        word = dp.wire(fp32.canonical(dp, args[0]), "canonical")
        sign = ~word[31] if negate else Const(0, 1)
        return dp.delay(Mux(word == fp32.F32_NAN, fp32.F32_NAN, Cat(word[0:31], sign)), latency)
    return build


# ---------------------------------------------------------------- the table

def _alu(name, opcode, operands, result, latency, golden_fn, build, doc):
    return Op(name, opcode, tuple(operands), result, latency, golden_fn, build, "alu", doc)


_F, _B, _I = "f32", "bf16", "i32"

_ALU_LIST = [
    _alu("mov", 0, [_F], _F, 1, lambda a: g.as_words(a).copy(),
         lambda dp, args, lat: dp.delay(args[0], lat), "pass operand a through unchanged (any type)"),
    _alu("fadd", 1, [_F, _F], _F, 2, g.fadd,
         lambda dp, a, lat: fp32.fadd(dp, *a, latency=lat), "a + b, RNE"),
    _alu("fsub", 2, [_F, _F], _F, 2, g.fsub,
         lambda dp, a, lat: fp32.fadd(dp, *a, latency=lat, subtract=True), "a - b, RNE"),
    _alu("fmul", 3, [_F, _F], _F, 2, g.fmul,
         lambda dp, a, lat: fp32.fmul(dp, *a, latency=lat), "a * b, RNE"),
    _alu("mac", 4, [_F, _B, _B], _F, 3, g.mac, _mac_build,
         "a + b*c with bf16 b, c: exact product, one rounding (the add)"),
    _alu("fmax", 5, [_F, _F], _F, 1, g.fmax,
         lambda dp, a, lat: fp32.fmax(dp, *a, latency=lat), "IEEE maximum (NaN wins, -0 < +0)"),
    _alu("fmin", 6, [_F, _F], _F, 1, g.fmin,
         lambda dp, a, lat: fp32.fmin(dp, *a, latency=lat), "IEEE minimum (NaN wins, -0 < +0)"),
    _alu("flt", 7, [_F, _F], _I, 1, g.flt,
         lambda dp, a, lat: fp32.fcmp(dp, *a, relation="lt", latency=lat), "a < b → 1/0 (NaN: 0)"),
    _alu("fle", 8, [_F, _F], _I, 1, g.fle,
         lambda dp, a, lat: fp32.fcmp(dp, *a, relation="le", latency=lat), "a <= b → 1/0 (NaN: 0)"),
    _alu("feq", 9, [_F, _F], _I, 1, g.feq,
         lambda dp, a, lat: fp32.fcmp(dp, *a, relation="eq", latency=lat), "a == b → 1/0 (NaN: 0)"),
    _alu("fabs", 10, [_F], _F, 1, g.fabs, _neg_or_abs(False), "|a|"),
    _alu("fneg", 11, [_F], _F, 1, g.fneg, _neg_or_abs(True), "-a"),
    _alu("f2i", 12, [_F], _I, 1, g.f2i,
         lambda dp, a, lat: fp32.f2i(dp, *a, latency=lat), "fp32 → int32, RNE, saturating, NaN → 0"),
    _alu("i2f", 13, [_I], _F, 2, g.i2f,
         lambda dp, a, lat: fp32.i2f(dp, *a, latency=lat), "int32 → fp32, RNE"),
    _alu("fscale", 14, [_F, _I], _F, 1, g.fscale,
         lambda dp, a, lat: fp32.fscale(dp, *a, latency=lat), "a * 2**b (ldexp)"),
    _alu("getexp", 15, [_F], _I, 1, g.getexp,
         lambda dp, a, lat: fp32.getexp(dp, *a, latency=lat), "unbiased exponent of a"),
    _alu("getmant", 16, [_F], _F, 1, g.getmant,
         lambda dp, a, lat: fp32.getmant(dp, *a, latency=lat), "|a| scaled into [1, 2)"),
    _alu("cvt_bf16", 17, [_F], _B, 1, g.f32_to_bf16,
         lambda dp, a, lat: fp32.f32_to_bf16(dp, *a, latency=lat), "fp32 → bf16, RNE"),
    _alu("cvt_f32", 18, [_B], _F, 1, g.bf16_to_f32,
         lambda dp, a, lat: fp32.bf16_to_f32(dp, *a, latency=lat), "bf16 → fp32 (exact)"),
    _alu("sel", 19, [_I, _F, _F], _F, 1, _sel_golden, _sel_build, "b if a != 0 else c (any type)"),
    _alu("iadd", 20, [_I, _I], _I, 1, lambda a, b: _w(_u(a) + _u(b)),
         _int_build(lambda a, b: a + b), "a + b (mod 2**32)"),
    _alu("isub", 21, [_I, _I], _I, 1, lambda a, b: _w(_u(a) - _u(b)),
         _int_build(lambda a, b: a - b), "a - b (mod 2**32)"),
    _alu("imul", 22, [_I, _I], _I, 2, lambda a, b: _w((_u(a) * _u(b)) & _MASK),
         _int_build(lambda a, b: (a * b)[0:32]), "a * b, low 32 bits"),
    _alu("ishl", 23, [_I, _I], _I, 1, lambda a, b: _w(_u(a) << (_u(b) & 31)),
         _int_build(lambda a, b: (a << b[0:5])[0:32]), "a << (b mod 32)"),
    _alu("ishr", 24, [_I, _I], _I, 1, lambda a, b: _w(_u(a) >> (_u(b) & 31)),
         _int_build(lambda a, b: a >> b[0:5]), "a >> (b mod 32), logical"),
    _alu("isra", 25, [_I, _I], _I, 1, lambda a, b: _w(_s(a) >> (_u(b) & 31)),
         _int_build(lambda a, b: a.as_signed() >> b[0:5]), "a >> (b mod 32), arithmetic"),
    _alu("ilt", 26, [_I, _I], _I, 1, lambda a, b: _w(_s(a) < _s(b)),
         _int_build(lambda a, b: Cat(a.as_signed() < b.as_signed(), Const(0, 31))), "a < b signed → 1/0"),
    _alu("ieq", 27, [_I, _I], _I, 1, lambda a, b: _w(_u(a) == _u(b)),
         _int_build(lambda a, b: Cat(a == b, Const(0, 31))), "a == b → 1/0"),
    _alu("iand", 28, [_I, _I], _I, 1, lambda a, b: _w(_u(a) & _u(b)),
         _int_build(lambda a, b: a & b), "a & b"),
    _alu("ior", 29, [_I, _I], _I, 1, lambda a, b: _w(_u(a) | _u(b)),
         _int_build(lambda a, b: a | b), "a | b"),
    _alu("ixor", 30, [_I, _I], _I, 1, lambda a, b: _w(_u(a) ^ _u(b)),
         _int_build(lambda a, b: a ^ b), "a ^ b"),
    _alu("imin", 31, [_I, _I], _I, 1, lambda a, b: _w(np.minimum(_s(a), _s(b))),
         _int_build(lambda a, b: Mux(a.as_signed() < b.as_signed(), a, b)), "signed minimum"),
    _alu("imax", 32, [_I, _I], _I, 1, lambda a, b: _w(np.maximum(_s(a), _s(b))),
         _int_build(lambda a, b: Mux(a.as_signed() < b.as_signed(), b, a)), "signed maximum"),
    _alu("rcp_seed", 33, [_F], _F, 1, _rcp_seed_golden,
         _seed_build(RECIP_SEEDS, lambda m: m[16:23]), "table estimate of 1/m, m in [1, 2)"),
    _alu("rsq_seed", 34, [_F], _F, 1, _rsq_seed_golden,
         _seed_build(RSQRT_SEEDS, lambda m: Cat(m[17:23], m[23:31] == 128)),
         "table estimate of 1/sqrt(m), m in [1, 4)"),
    _alu("recip_fix", 35, [_F, _F], _F, 1, _recip_fix_golden, _recip_fix_build,
         "IEEE special cases of 1/a around a core result b"),
    _alu("rsqrt_fix", 36, [_F, _F], _F, 1, _rsqrt_fix_golden, _rsqrt_fix_build,
         "IEEE special cases of 1/sqrt(a) around a core result b"),
    _alu("exp2_frac", 37, [_I], _F, 1, _exp2_frac_golden,
         _seed_build(EXP2_TABLE, lambda k: k[0:EXP_TABLE_BITS]),
         f"table 2**(j/{1 << EXP_TABLE_BITS}), j = a mod {1 << EXP_TABLE_BITS}"),
]

ALU_OPS: Mapping[str, Op] = MappingProxyType({op.name: op for op in _ALU_LIST})


def _tail_latency() -> int:
    return tail_program(TimingEval(ALU_OPS), 0, 0)


TAIL_LATENCY = _tail_latency()

_TAIL_DOCS = {
    "none": "pass x through",
    "exp": "e**x",
    "recip": "1/x",
    "rsqrt": "1/sqrt(x)",
    "sigmoid": "1/(1 + e**-x)",
    "silu": "x * sigmoid(x)",
    "gelu": "GeLU, tanh form",
    "relu": "max(x, +0) (exact)",
}


def _tail_golden(opcode: int):
    def fn(x):
        E = GoldenEval(ALU_OPS)
        return np.asarray(tail_program(E, g.as_words(x), E.i(opcode)), dtype=np.uint32)
    return fn


TAIL_OPS: Mapping[str, Op] = MappingProxyType({
    name: Op(name, code, ("f32",), "f32", TAIL_LATENCY, _tail_golden(code), None, "tail", _TAIL_DOCS[name])
    for name, code in TAIL_OPCODES.items()
})

OPS: Mapping[str, Op] = MappingProxyType({**ALU_OPS, **{f"tail.{k}": v for k, v in TAIL_OPS.items()}})


def get_op(name: str, kind: str | None = None) -> Op:
    """Look an op up by name (``"fadd"``, or a tail op ``"exp"``/``"tail.exp"``)."""
    table = {"alu": ALU_OPS, "tail": TAIL_OPS}.get(kind) if kind else None
    if table is None:
        if name in ALU_OPS:
            return ALU_OPS[name]
        table = TAIL_OPS
        name = name.removeprefix("tail.")
    if name in table:
        return table[name]
    known = ", ".join(sorted(ALU_OPS) + sorted(TAIL_OPS))
    raise UnknownOpError(f"unknown op {name!r}; known ops: {known}")


def golden(name: str, *operands) -> np.ndarray:
    """Evaluate op ``name`` with the golden model on word arrays (broadcasting)."""
    op = get_op(name)
    if len(operands) != op.arity:
        raise TypeError(f"{op.name} takes {op.arity} operands ({', '.join(op.operands)}), "
                        f"got {len(operands)}")
    return np.asarray(op.golden(*[g.as_words(x) for x in operands]), dtype=np.uint32)


#: Ops one piece of hardware serves: the first op's builder takes a one-bit ``which`` (high for the
#: second op). fsub is fadd with b's sign flipped (IEEE: a − b = a + (−b), zeros and NaNs included).
SHARED_BUILDS = {
    ("fadd", "fsub"): lambda dp, args, latency, which: fp32.fadd(dp, *args, latency=latency,
                                                                  subtract=which),
}


def build_ops(dp, names, operands, opcode: Value, latency: int) -> dict[int, Value]:
    """Every op of ``names`` on ``operands`` (the op's first ``arity`` of them), each delayed to
    ``latency``: ``{opcode: result}``. Pairs of :data:`SHARED_BUILDS` both in ``names`` are one
    unit, told which op by ``opcode`` (read with the operands)."""
    names = list(dict.fromkeys(names))
    built: dict[int, Value] = {}
    for (first, second), build in SHARED_BUILDS.items():
        if first in names and second in names:
            a, b = ALU_OPS[first], ALU_OPS[second]
            if a.latency != b.latency or a.arity != b.arity:
                raise AssertionError(f"shared ops {first} and {second} differ in latency or arity")
            which = Value.cast(opcode) == b.opcode
            value = dp.delay(build(dp, operands[:a.arity], a.latency, which), latency - a.latency)
            built[a.opcode] = built[b.opcode] = value
            names.remove(first)
            names.remove(second)
    for name in names:
        op = ALU_OPS[name]
        built[op.opcode] = dp.delay(op.build(dp, operands[:op.arity], op.latency), latency - op.latency)
    return built


def build_tail(dp, x: Value, op: Value) -> Value:
    """Build the shared tail datapath in ``dp``; the result is ready after :data:`TAIL_LATENCY`."""
    E = RtlEval(ALU_OPS, dp)
    result = tail_program(E, E.input(x), E.input(op))
    return E.output(result, TAIL_LATENCY)


def _check_table():
    for ops in (ALU_OPS, TAIL_OPS):
        codes = [op.opcode for op in ops.values()]
        if len(set(codes)) != len(codes):
            raise AssertionError("duplicate op codes in the op table")


_check_table()


def main():  # pragma: no cover - a printout
    from rich.console import Console
    from rich.table import Table

    table = Table(title="OpenRDU op table")
    for col in ("kind", "code", "name", "operands", "result", "latency", "meaning"):
        table.add_column(col)
    for op in (*ALU_OPS.values(), *TAIL_OPS.values()):
        table.add_row(op.kind, str(op.opcode), op.name, ", ".join(op.operands), op.result,
                      str(op.latency), op.doc)
    Console(width=160).print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
