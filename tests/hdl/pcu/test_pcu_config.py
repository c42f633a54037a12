"""PCU configuration encoder, parameters and the counter chain (Python and Amaranth's simulator)."""

import random

import numpy as np
import pytest

from hdl.counters import Counter, CounterChain, counter_steps
from hdl.pcu import (
    Accumulator,
    ConfigError,
    PcuConfig,
    PcuParams,
    ScalarInput,
    Stage,
    VectorInput,
    run_golden,
)
from hdl.pcu.config import CONFIG_MAGIC, CONFIG_VERSION
from hdl.presets import get_preset
from sim.pysim import run_pysim

TINY = PcuParams("tiny")


def test_encode_decode_round_trip():
    config = PcuConfig(
        counters=[Counter(0, 5), Counter(2, 11, 3)],
        stages=[Stage("fmul", "vin0", "const1"), Stage("fadd", "stage0", "scalar1", shift=3),
                Stage("sel", "stage0", "stage1", "lane"), Stage("mac", "stage2", "vin1", "ctr1")],
        scalars={1: ScalarInput(pop_level=2)}, constants=[0x3F800000, 0x40000000],
        reduce="max", tail="silu", to_bf16=True, auto_start=False)
    words = config.encode(TINY)
    assert words[0] == (CONFIG_MAGIC << 16) | (CONFIG_VERSION << 8) | TINY.config_words
    assert len(words) == 1 + TINY.config_words
    back = PcuConfig.decode(words, TINY)
    assert back.stages == config.stages
    assert back.counters == config.counters
    assert back.scalars == config.scalars
    assert back.constants[:2] == config.constants and back.constants[2:] == [0, 0]
    assert (back.reduce, back.tail, back.to_bf16, back.auto_start) == ("max", "silu", True, False)
    assert back.encode(TINY) == words
    # "prev" is shorthand for the stage before (stage 0: vin0)
    with_prev = PcuConfig(stages=[Stage("fneg", "prev"), Stage("fadd", "prev", "vin1")])
    explicit = PcuConfig(stages=[Stage("fneg", "vin0"), Stage("fadd", "stage0", "vin1")])
    assert with_prev.encode(TINY) == explicit.encode(TINY)


def test_systolic_round_trip_and_defaults():
    config = PcuConfig(mode="systolic", counters=[Counter(0, 64), Counter(0, 4)])
    back = PcuConfig.decode(config.encode(TINY), TINY)
    assert back.mode == "systolic" and back.counters == config.counters
    defaults = [Stage("mov", f"stage{s - 1}" if s else "vin0") for s in range(TINY.stages)]
    assert back.stages == defaults


@pytest.mark.parametrize("config, message", [
    (PcuConfig(stages=[Stage("fdiv", "vin0", "vin1")]), "unknown op 'fdiv'"),
    (PcuConfig(stages=[Stage("imul", "vin0", "vin1")]), "op 'imul' is not built into this PCU"),
    (PcuConfig(stages=[Stage("mov"), Stage("fadd", "stage1", "vin0")]), "comes from a later stage"),
    (PcuConfig(stages=[Stage("fadd", "stage2", "vin0")]), "comes from a later stage"),
    (PcuConfig(stages=[Stage("fadd", "vin2", "vin0")]), "out of range"),
    (PcuConfig(stages=[Stage("fadd", "banana", "vin0")]), "unknown operand source 'banana'"),
    (PcuConfig(stages=[Stage("fneg", "vin0", "vin1")]), "operand b is unused and must be 'zero'"),
    (PcuConfig(stages=[Stage("fadd", "vin0", "scalar0")]), "does not declare them"),
    (PcuConfig(stages=[Stage("mov", shift=4)]), r"shift must be in \[0, 3\]"),
    (PcuConfig(stages=[Stage()] * 5), "5 stages given, this PCU has 4"),
    (PcuConfig(counters=[]), "at least one counter"),
    (PcuConfig(counters=[Counter(0, 70000)]), "counters are 16 bits"),
    (PcuConfig(counters=[Counter(0, 2)] * 4), "4 counters given"),
    (PcuConfig(constants=[1 << 32]), "constant 0 must be a 32-bit word"),
    (PcuConfig(constants=[0] * 5), "5 constants given"),
    (PcuConfig(reduce="mean"), "reduce must be one of"),
    (PcuConfig(tail="tanh"), "tail must be 'none' or one of"),
    (PcuConfig(mode="vliw"), "mode must be one of"),
    (PcuConfig(mode="systolic", reduce="add"), "no cross-lane reduction"),
    (PcuConfig(vector_output=False), "no output"),
    (PcuConfig(scalars={2: ScalarInput()}), "scalar input 2 does not exist"),
    (PcuConfig(scalars={0: ScalarInput(pop_level=2)}), "pop_level must be in"),
])
def test_encoder_rejects_invalid_programs(config, message):
    with pytest.raises(ConfigError, match=message):
        config.encode(TINY)


def test_counter_errors_are_clear():
    with pytest.raises(ValueError, match="stride must be positive"):
        Counter(0, 4, 0)
    with pytest.raises(ValueError, match="must be greater than start"):
        Counter(5, 5)
    with pytest.raises(TypeError, match="must be an int"):
        Counter(0, 4.0)


def test_build_options_are_checked():
    with pytest.raises(ValueError, match="unknown ALU op"):
        PcuParams("tiny", ops=("fadd", "fdiv"))
    with pytest.raises(ValueError, match="stages <= lanes"):
        PcuParams(get_preset("tiny").replace(name="deep", stages=6))
    assert PcuParams(get_preset("tiny").replace(name="deep", stages=6), systolic=False).stages == 6
    with pytest.raises(ConfigError, match="built without a tail unit"):
        PcuConfig(tail="exp").encode(PcuParams("tiny", tail=False))
    with pytest.raises(ConfigError, match="built without the MAC array"):
        PcuConfig(mode="systolic").encode(PcuParams("tiny", systolic=False))
    with pytest.raises(ValueError, match="Unknown preset"):
        PcuParams("huge")


def test_decode_refuses_foreign_words():
    words = PcuConfig().encode(TINY)
    with pytest.raises(ConfigError, match="not a PCU configuration"):
        PcuConfig.decode([words[0] ^ 0x10000, *words[1:]], TINY)
    with pytest.raises(ConfigError, match="version"):
        PcuConfig.decode([words[0] ^ 0x100, *words[1:]], TINY)
    with pytest.raises(ConfigError, match="body words"):
        PcuConfig.decode(words[:-1], TINY)


def test_golden_model_known_values():
    """The golden model against hand-computed results (it is the reference for the RTL)."""
    one, two, three = 0x3F800000, 0x40000000, 0x40400000
    config = PcuConfig(counters=[Counter(0, 2)], stages=[Stage("fmul", "vin0", "const0"),
                                                         Stage("fadd", "prev", "lane", shift=1)],
                       constants=[two], reduce="add")
    x = np.array([[one, two, three, one], [0, 0, 0, 0]], dtype=np.uint32)
    out = run_golden(config, TINY, vin0=x)
    f = out["vout"].view(np.float32)
    lane = np.arange(4, dtype=np.uint32).view(np.float32)  # lane index read as fp32 bits: tiny
    expected0 = np.roll(np.float32([2, 4, 6, 2]) + lane, -1)
    assert np.array_equal(f[0], expected0)
    tree = np.float32((expected0[0] + expected0[1]) + (expected0[2] + expected0[3]))
    assert out["sout"].view(np.float32)[0] == tree
    # systolic: C = A·B for a 4x2 K=2 example, columns out
    params = TINY
    config = PcuConfig(mode="systolic", counters=[Counter(0, 2)])
    bf = lambda v: (np.float32(v).view(np.uint32) >> 16)  # noqa: E731
    a = np.array([[bf(1), bf(2), bf(3), bf(4)], [bf(1), bf(1), bf(1), bf(1)]], dtype=np.uint32)
    b = np.array([[bf(1), bf(10), bf(100), bf(0)], [bf(2), bf(2), bf(2), bf(2)]], dtype=np.uint32)
    out = run_golden(config, params, vin0=a, vin1=b)
    c = out["vout"].view(np.float32)  # columns of C: C[i][j] = a0[i]*b0[j] + a1[i]*b1[j]
    assert np.array_equal(c[1], np.float32([12, 22, 32, 42]))
    assert c.shape == (4, 4)


# ------------------------------------------------------------------------- counter chain (pysim)

@pytest.mark.parametrize("seed", range(4))
def test_counter_chain_matches_python_model(seed):
    rng = random.Random(seed)
    counters = [Counter(rng.randrange(0, 4), rng.randrange(5, 12), rng.randrange(1, 4))
                for _ in range(rng.randrange(1, 4))]
    expected = list(counter_steps(counters))
    dut = CounterChain(3, 8)
    seen, dones = [], []

    async def bench(ctx):
        for k in range(3):
            c = counters[k] if k < len(counters) else Counter(0, 1)
            ctx.set(dut.config[k], {"start": c.start, "stop": c.stop, "stride": c.stride})
        ctx.set(dut.used, len(counters))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(4 * len(expected) + 10):
            step = rng.random() < 0.6
            ctx.set(dut.step, step)
            if ctx.get(dut.running) and step:
                values = tuple(ctx.get(dut.values[k]) for k in range(len(counters)))
                firsts = tuple(bool(ctx.get(dut.first[k])) for k in range(len(counters)))
                seen.append((values, firsts))
            await ctx.tick()
            dones.append(ctx.get(dut.done))

    run_pysim(dut, bench)
    assert seen == expected
    assert sum(dones) == 1


# ---------------------------------------------------------------------------------- accumulator

ACC = PcuParams("tiny", acc_depth=8)


def test_accumulator_and_held_vectors_round_trip():
    config = PcuConfig(
        counters=[Counter(0, 6), Counter(0, 3), Counter(0, 2)],
        stages=[Stage("mov", "vin1"), Stage("fsub", "acc", "vin0")],
        vectors={1: VectorInput(pop_level=1)},
        accumulator=Accumulator("scale_add", index=0, reset=(1,), emit=(1, 2), emit_at="first", scale=0,
                                value=1, to_vout=False))
    back = PcuConfig.decode(config.encode(ACC), ACC)
    assert back.accumulator == config.accumulator and back.vectors == config.vectors
    assert back.encode(ACC) == config.encode(ACC)
    plain = PcuConfig(accumulator=Accumulator("max"))
    assert PcuConfig.decode(plain.encode(ACC), ACC).accumulator == plain.accumulator
    # the acc fields exist only in a PCU built with the accumulator
    assert ACC.layout.size > TINY.layout.size and "acc" not in dict(TINY.layout)


@pytest.mark.parametrize("params, config, message", [
    (TINY, PcuConfig(accumulator=Accumulator("add")), "needs a PCU built with acc_depth > 0"),
    (TINY, PcuConfig(stages=[Stage("fadd", "acc", "vin0")]), "source 'acc' needs a PCU built with"),
    (ACC, PcuConfig(stages=[Stage("fadd", "acc", "vin0")]), "reads 'acc' but the program has no accumulator"),
    (ACC, PcuConfig(accumulator=Accumulator("mean")), "op must be one of add, max, scale_add"),
    (ACC, PcuConfig(accumulator=Accumulator("add", reset=())), "reset must name at least one counter"),
    (ACC, PcuConfig(accumulator=Accumulator("add", reset=(1,))), "tuple of counter indices in [0, 0]"),
    (ACC, PcuConfig(counters=[Counter(0, 9)], accumulator=Accumulator("add", index=0)),
     "reaches 8, the register file has 8 entries"),
    (ACC, PcuConfig(accumulator=Accumulator("scale_add")), "needed by scale_add and only by it"),
    (ACC, PcuConfig(accumulator=Accumulator("add", scale=1)), "needed by scale_add and only by it"),
    (ACC, PcuConfig(accumulator=Accumulator("add", emit_at="middle")), "emit_at must be 'first' or 'last'"),
    (ACC, PcuConfig(accumulator=Accumulator("add", value=4)), "value must be None (the last stage)"),
    (ACC, PcuConfig(mode="systolic", accumulator=Accumulator("add")), "systolic mode has no accumulator"),
    (ACC, PcuConfig(mode="systolic", vectors={0: VectorInput(1)}), "systolic mode pops both vector inputs"),
    (ACC, PcuConfig(vectors={1: VectorInput(1)}), "have a pop_level but no stage reads them"),
    (ACC, PcuConfig(stages=[Stage("mov", "vin1")], vectors={1: VectorInput(2)}),
     "pop_level must be in [0, 1]"),
    (ACC, PcuConfig(vectors={2: VectorInput(0)}), "vector input 2 does not exist"),
])
def test_accumulator_programs_are_checked(params, config, message):
    with pytest.raises(ConfigError) as err:
        config.encode(params)
    assert message in str(err.value)


def test_accumulator_golden_semantics():
    """The golden scan against a plain numpy loop: a running max per block of columns, and a
    rescaled sum indexed by a counter with a factor held per block."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (24, 4)).astype(np.float32)
    config = PcuConfig(counters=[Counter(0, 4), Counter(0, 3), Counter(0, 2)],
                       stages=[Stage("mov", "vin0")], accumulator=Accumulator("max", reset=(0, 1), emit=(0,)))
    out = run_golden(config, ACC, vin0=x.view(np.uint32))["vout"].view(np.float32)
    blocks = x.reshape(2, 3, 4, 4).max(axis=2)                     # (tile, block, lane)
    assert np.array_equal(out, np.maximum.accumulate(blocks, axis=1).reshape(6, 4))

    u = rng.normal(0, 1, (18, 4)).astype(np.float32)
    a = rng.uniform(0.1, 1, (3, 4)).astype(np.float32)
    config = PcuConfig(counters=[Counter(0, 6), Counter(0, 3)], vectors={1: VectorInput(1)},
                       stages=[Stage("mov", "vin1"), Stage("mov", "vin0")],
                       accumulator=Accumulator("scale_add", index=0, reset=(1,), emit=(1,), scale=0))
    out = run_golden(config, ACC, vin0=u.view(np.uint32), vin1=a.view(np.uint32))["vout"].view(np.float32)
    want = u[0:6].copy()
    for j in (1, 2):
        want = (want * a[j]).astype(np.float32) + u[6 * j:6 * j + 6]
    assert np.array_equal(out, want.astype(np.float32))
    # an entry used before a reset step wrote it is refused
    bad = PcuConfig(counters=[Counter(0, 6), Counter(0, 3)], stages=[Stage("mov", "vin0")],
                    accumulator=Accumulator("add", index=0, reset=(0,)))
    with pytest.raises(ValueError, match="used before a reset step wrote it"):
        run_golden(bad, ACC, vin0=u.view(np.uint32))
