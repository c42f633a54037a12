"""Each ALU op as a stream unit in Amaranth's simulator, against the golden model.

Special-value cross products plus random operands, with random back-pressure on both
sides; latency as configured; constructor errors. (The large random and exhaustive
sweeps run on Verilator in test_numerics_vectors.py.)
"""

import random

import numpy as np
import pytest

from hdl.numerics.ops import ALU_OPS, UnknownOpError, golden
from hdl.numerics.units import ArithmeticUnit, MacAccumulator, OpUnit
from sim.pysim import run_pysim, stream_get, stream_put

from .numerics_vectors import (
    SPECIAL_F32,
    SPECIAL_I32,
    cross,
    mismatch_report,
    random_operands,
    sequential_mac,
)


def _stream_through(dut, payloads, *, seed=1, stall_p=0.3):
    """Send ``payloads`` through ``dut`` with random stalls on both sides; return the outputs."""
    received = []
    put_rng, get_rng = random.Random(seed), random.Random(seed + 1000)

    async def producer(ctx):
        for payload in payloads:
            await stream_put(ctx, dut.i, payload, rng=put_rng, stall_p=stall_p)

    async def consumer(ctx):
        for _ in payloads:
            received.append(await stream_get(ctx, dut.o, rng=get_rng, stall_p=stall_p))

    run_pysim(dut, producer, consumer)
    return np.array(received, dtype=np.uint64).astype(np.uint32)


def _operands(op, rng):
    specials = [SPECIAL_I32 if t == "i32" else SPECIAL_F32 for t in op.operands]
    if op.arity == 1:
        base = [np.concatenate(specials)]
    elif op.arity == 2:
        base = cross(np.unique(np.concatenate(specials)), 2)
    else:
        base = [rng.choice(s, 400).astype(np.uint32) for s in specials]
    extra = random_operands(op.operands, 150, rng)
    return [np.concatenate([b, e]) for b, e in zip(base, extra, strict=True)]


@pytest.mark.parametrize("name", sorted(ALU_OPS))
def test_alu_op_matches_golden_with_backpressure(name):
    op = ALU_OPS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    columns = _operands(op, rng)
    payloads = [{k: int(c[i]) for k, c in zip("abc", columns, strict=False)} for i in range(len(columns[0]))]
    got = _stream_through(OpUnit(name), payloads, seed=len(name))
    want = golden(name, *columns)
    assert np.array_equal(got, want), mismatch_report(name, columns, got, want)


def test_shared_adder_switches_between_fadd_and_fsub_item_by_item():
    """fadd and fsub are one adder in an ALU lane; interleaved op codes must each give their op."""
    rng = np.random.default_rng(11)
    a, b = cross(np.unique(SPECIAL_F32), 2)
    a = np.concatenate([a, random_operands(["f32"], 300, rng)[0]])
    b = np.concatenate([b, random_operands(["f32"], 300, rng)[0]])
    names = rng.choice(["fadd", "fsub"], len(a))
    payloads = [{"op": ALU_OPS[n].opcode, "a": int(x), "b": int(y), "c": 0}
                for n, x, y in zip(names, a, b, strict=True)]
    got = _stream_through(ArithmeticUnit(), payloads, seed=4)
    want = np.where(names == "fadd", golden("fadd", a, b), golden("fsub", a, b))
    assert np.array_equal(got, want), mismatch_report("fadd/fsub", [a, b], got, want)


@pytest.mark.parametrize("latency", [0, 1, 3, 5])
@pytest.mark.parametrize("name", ["fadd", "fmul", "mac", "i2f"])
def test_latency_parameter_keeps_results_and_sets_latency(name, latency):
    op = ALU_OPS[name]
    rng = np.random.default_rng(latency)
    columns = random_operands(op.operands, 60, rng)
    dut = OpUnit(name, latency=latency)
    assert dut.latency == latency
    first_output = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {k: int(c[0]) for k, c in zip("abc", columns, strict=False)})
        for cycle in range(latency + 3):
            if ctx.get(dut.o.valid):
                first_output.append(cycle)
                break
            await ctx.tick()
            ctx.set(dut.i.valid, 0)

    run_pysim(dut, bench)
    assert first_output == [latency]
    payloads = [{k: int(c[i]) for k, c in zip("abc", columns, strict=False)} for i in range(60)]
    got = _stream_through(OpUnit(name, latency=latency), payloads, seed=latency)
    assert np.array_equal(got, golden(name, *columns))


def test_mac_accumulator_equals_sequential_numpy_loop():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1 << 16, 120, dtype=np.uint32) & 0xBFFF  # keep exponents moderate
    b = rng.integers(0, 1 << 16, 120, dtype=np.uint32) & 0xBFFF
    payloads = [{"a": int(x), "b": int(y), "last": int(k == 119)}
                for k, (x, y) in enumerate(zip(a, b, strict=True))]
    got = _stream_through(MacAccumulator(), payloads, seed=3, stall_p=0.4)
    want = sequential_mac(a, b)
    assert np.array_equal(got, want), mismatch_report("mac chain", [a, b], got, want)


def test_constructor_errors_are_clear():
    with pytest.raises(UnknownOpError, match="unknown op 'fdiv'; known ops: .*fadd"):
        OpUnit("fdiv")
    with pytest.raises(TypeError, match="op must be an op name"):
        OpUnit(3)
    with pytest.raises(ValueError, match="latency must be at least 0"):
        OpUnit("fadd", latency=-1)
    with pytest.raises(TypeError, match="latency must be an int"):
        OpUnit("fadd", latency=1.5)
    with pytest.raises(ValueError, match="fixed latency"):
        OpUnit("exp", latency=3)
    with pytest.raises(ValueError, match="at least 1"):
        MacAccumulator(latency=0)
