"""Micro-programs built as hardware (:class:`hdl.numerics.programs.RtlEval`).

A flag computed from the pipeline's inputs and read at the end of a long pipeline is built again
where it is read (from the inputs' delay lines) instead of being delayed as a 32-bit word; the
result must not change, only the registers.
"""

import numpy as np
import pytest
from amaranth import Const, Module, Signal

from hdl.numerics.datapath import Datapath
from hdl.numerics.ops import ALU_OPS, golden
from hdl.numerics.programs import RECOMPUTED_OPS, GoldenEval, RtlEval, TimingEval
from sim.pysim import run_pysim

from .numerics_vectors import SPECIAL_F32


def flagged_program(E, x, op):
    """A long chain on ``x``, and a choice at its end made by flags of ``op`` and the sign of x."""
    y = x
    for _ in range(6):
        y = E.fmul(y, E.f(1.5))
    negative = E.flt(x, E.f(0.0))
    pick = E.ior(E.ieq(op, E.i(1)), E.ieq(op, E.i(2)))
    return E.sel(pick, E.sel(negative, E.fneg(y), y), E.fmax(x, E.f(0.0)))


def build(recompute):
    m = Module()
    dp = Datapath(m, Const(1, 1))
    E = RtlEval(ALU_OPS, dp, recompute=recompute)
    x, op = Signal(32, name="x"), Signal(3, name="op")
    out = E.output(flagged_program(E, E.input(x), E.input(op)))
    bits = sum(len(chain[0]) * (len(chain) - 1) for chain in E._delayed.values())
    return m, x, op, out, bits


def test_recomputed_flags_cost_no_word_wide_delay_lines():
    latency = flagged_program(TimingEval(ALU_OPS), 0, 0)
    *_, bits = build(RECOMPUTED_OPS)
    *_, bits_delayed = build(())
    # recomputed: only x (32 bits) and op (3 bits) travel to the end
    assert bits <= (32 + 3) * latency
    # delayed: the flag, the sign and fmax(x, 0) travel as 32-bit words instead
    assert bits_delayed > 2 * bits


@pytest.mark.parametrize("recompute", [RECOMPUTED_OPS, ()], ids=["recomputed", "delayed"])
def test_recomputed_program_equals_golden(recompute):
    rng = np.random.default_rng(5)
    xs = np.concatenate([SPECIAL_F32, rng.integers(0, 1 << 32, 200, dtype=np.uint64).astype(np.uint32)])
    ops = rng.integers(0, 4, len(xs)).astype(np.uint32)
    latency = flagged_program(TimingEval(ALU_OPS), 0, 0)
    E = GoldenEval(ALU_OPS)
    want = np.asarray(flagged_program(E, xs, ops), dtype=np.uint32)
    m, x, op, out, _ = build(recompute)
    got = []

    async def bench(ctx):
        # the pipeline advances every cycle: feed one input per cycle, read latency cycles later
        for k in range(len(xs) + latency):
            if k < len(xs):
                ctx.set(x, int(xs[k]))
                ctx.set(op, int(ops[k]))
            await ctx.tick()
            if k + 1 >= latency:
                got.append(ctx.get(out))

    run_pysim(m, bench)
    assert np.array_equal(np.array(got[:len(xs)], dtype=np.uint32), want)
    assert np.array_equal(want[ops == 0], golden("fmax", xs[ops == 0], np.zeros(np.sum(ops == 0), np.uint32)))
