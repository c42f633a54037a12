"""Exhaustive and large random sweeps: RTL == golden model bit for bit, on a vector-file bench.

Each unit is built once per simulator (:class:`sim.vectors.VectorBench`) and whole
vector files stream through it with random valid/ready stalls generated inside the
testbench, so Python is off the per-cycle path.

Verilator runs the full sweeps the numerics issue asks for:

* every unary and tail op over all 65 536 bf16 codes (as fp32 words), plus for the
  fp32 → bf16 convert every code with round-down, tie and round-up low halves;
* every binary and ternary ALU op over 200 000 random operand tuples plus every
  tuple of the special-value set;
* MAC chains of 4 096 terms equal to numpy's sequential float32 loop.

Icarus runs the same benches on a strided subset (it is ~100x slower per cycle).
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.numerics.ops import ALU_OPS, TAIL_OPS, golden
from hdl.numerics.units import ALU_OPCODE_BITS, TAIL_OPCODE_BITS, ArithmeticUnit, MacAccumulator, TailUnit
from sim.vectors import VectorBench

from .numerics_vectors import SPECIAL_F32, SPECIAL_I32, mismatch_report, random_operands, sequential_mac

pytestmark = pytest.mark.cocotb  # an HDL simulator path, parametrised over both simulators

RANDOM_TUPLES = 200_000
ALL_BF16 = np.arange(1 << 16, dtype=np.uint32)
UNARY_ALU = sorted(name for name, op in ALU_OPS.items() if op.arity == 1)
MULTI_ALU = sorted(name for name, op in ALU_OPS.items() if op.arity > 1)
#: Icarus keeps every k-th vector of the full sweep.
ICARUS_STRIDE = {"unary": 64, "multi": 400, "tail": 96}

_benches: dict[tuple[str, str], VectorBench] = {}


def bench(kind: str, simulator: str) -> VectorBench:
    """One build per unit and simulator, shared by every test of this module in a worker."""
    key = (kind, simulator)
    if key not in _benches:
        factory = {"alu": ArithmeticUnit, "tail": TailUnit, "mac": MacAccumulator}[kind]
        _benches[key] = VectorBench(factory(), simulator)
    return _benches[key]


def subset(columns, simulator: str, kind: str):
    if simulator == "verilator":
        return columns
    return [c[:: ICARUS_STRIDE[kind]] for c in columns]


def run_alu(simulator, name, columns, seed):
    op = ALU_OPS[name]
    count = len(columns[0])
    fields = [np.full(count, op.opcode, dtype=np.uint32), *columns]
    fields += [np.zeros(count, dtype=np.uint32)] * (3 - op.arity)
    result = bench("alu", simulator).run(fields, [ALU_OPCODE_BITS, 32, 32, 32], seed=seed, tag=name)
    assert result.cycles > count, "the random stalls never stalled"
    return result.outputs


def bf16_as_f32_words() -> np.ndarray:
    return ALL_BF16 << 16


def unary_inputs(name: str, rng) -> np.ndarray:
    """All 65 536 bf16 codes in the op's operand type, plus 20 000 random words."""
    op = ALU_OPS[name]
    if op.operands[0] == "bf16":
        exhaustive = ALL_BF16
    elif op.operands[0] == "i32":
        exhaustive = np.concatenate([ALL_BF16, ALL_BF16 << 16, SPECIAL_I32])
    elif name == "cvt_bf16":
        # each bf16 code with a low half that rounds down, ties, and rounds up (and its exact value)
        low = np.array([0x0000, 0x7FFF, 0x8000, 0x8001], dtype=np.uint32)
        exhaustive = ((ALL_BF16[:, None] << 16) | low[None, :]).ravel()
    else:
        exhaustive = bf16_as_f32_words()
    extra = random_operands(op.operands, 20_000, rng)[0]
    return np.concatenate([exhaustive, SPECIAL_F32, extra]).astype(np.uint32)


@pytest.mark.parametrize("name", UNARY_ALU)
def test_unary_alu_op_exhaustive_over_bf16(simulator, name):
    rng = np.random.default_rng(sum(map(ord, name)))
    (x,) = subset([unary_inputs(name, rng)], simulator, "unary")
    got = run_alu(simulator, name, [x], seed=len(name))
    want = golden(name, x)
    assert np.array_equal(got, want), mismatch_report(name, [x], got, want)


def special_tuples(op) -> list[np.ndarray]:
    sets = []
    for t in op.operands:
        if t == "i32":
            sets.append(SPECIAL_I32)
        elif t == "bf16":
            sets.append(np.unique(np.concatenate([SPECIAL_F32 >> 16, [0x3F81, 0x0001, 0x7F80]])))
        else:
            sets.append(SPECIAL_F32)
    grids = np.meshgrid(*sets, indexing="ij")
    return [grid.ravel().astype(np.uint32) for grid in grids]


@pytest.mark.parametrize("name", MULTI_ALU)
def test_multi_operand_alu_op_random_and_special_tuples(simulator, name):
    op = ALU_OPS[name]
    rng = np.random.default_rng(1000 + sum(map(ord, name)))
    randoms = random_operands(op.operands, RANDOM_TUPLES, rng)
    specials = special_tuples(op)
    columns = [np.concatenate([s, r]) for s, r in zip(specials, randoms, strict=True)]
    if simulator == "verilator":
        assert len(columns[0]) >= RANDOM_TUPLES + len(specials[0])
    else:
        # Icarus: every special tuple of a binary op, a stride of the rest
        head = len(specials[0]) if op.arity == 2 else 0
        columns = [np.concatenate([c[:head], c[head:][:: ICARUS_STRIDE["multi"]]]) for c in columns]
    got = run_alu(simulator, name, columns, seed=op.opcode)
    want = golden(name, *columns)
    assert np.array_equal(got, want), mismatch_report(name, columns, got, want)


@pytest.mark.parametrize("name", sorted(TAIL_OPS))
def test_tail_op_exhaustive_over_bf16(simulator, name):
    op = TAIL_OPS[name]
    (x,) = subset([bf16_as_f32_words()], simulator, "tail")
    codes = np.full(len(x), op.opcode, dtype=np.uint32)
    result = bench("tail", simulator).run([codes, x], [TAIL_OPCODE_BITS, 32], seed=op.opcode + 7, tag=name)
    want = golden(f"tail.{name}", x)
    assert np.array_equal(result.outputs, want), mismatch_report(name, [x], result.outputs, want)


def mac_chains(rng, terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four chains of ``terms`` bf16 pairs: normal values, cancelling signs, wide exponents,
    and a chain that overflows to Inf and then meets NaN-producing Inf - Inf."""
    def bf16(values):
        return (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint32)

    normal = (bf16(rng.normal(0, 1, terms)), bf16(rng.normal(0, 1, terms)))
    # each value twice, times +u and then -u' with u, u' close to 1: consecutive products nearly cancel
    pairs = np.repeat(rng.normal(0, 1, terms // 2), 2)
    alternating = np.where(np.arange(terms) % 2, -1.0, 1.0) * rng.uniform(0.99, 1.01, terms)
    cancel = (bf16(pairs), bf16(alternating))
    wide = (bf16(rng.normal(0, 1, terms) * 2.0 ** rng.integers(-60, 60, terms)),
            bf16(rng.normal(0, 1, terms) * 2.0 ** rng.integers(-60, 60, terms)))
    huge = np.full(terms, 0x7F00, dtype=np.uint32)  # 2**127
    signs = np.where(np.arange(terms) < terms // 2, 0x3F80, 0xBF80).astype(np.uint32)
    overflow = (huge, signs)
    chains = [normal, cancel, wide, overflow]
    a = np.concatenate([c[0] for c in chains])
    b = np.concatenate([c[1] for c in chains])
    last = np.zeros(len(a), dtype=np.uint32)
    last[terms - 1 :: terms] = 1
    return a, b, last


def test_mac_chains_equal_sequential_numpy_loop(simulator):
    terms = 4096 if simulator == "verilator" else 512
    a, b, last = mac_chains(np.random.default_rng(42), terms)
    result = bench("mac", simulator).run([a, b, last], [16, 16, 1], seed=3, tag="mac_chains")
    want = np.concatenate([sequential_mac(a[k : k + terms], b[k : k + terms])
                           for k in range(0, len(a), terms)])
    assert np.array_equal(result.outputs, want), mismatch_report("mac chain", [a, b], result.outputs, want)
    sums = result.outputs[terms - 1 :: terms].view(np.float32)
    assert np.isfinite(sums[0]) and sums[0] != 0  # the chains exercise what they claim to
    assert np.isnan(sums[3]) or np.isinf(sums[3])


def test_vector_bench_detects_a_wrong_result(simulator):
    """The sweep's comparison can fail: an fadd checked against fsub's golden differs."""
    rng = np.random.default_rng(9)
    columns = random_operands(("f32", "f32"), 500, rng)
    got = run_alu(simulator, "fadd", columns, seed=5)
    assert np.array_equal(got, golden("fadd", *columns))
    assert not np.array_equal(got, golden("fsub", *columns))
