"""PMU configuration encoder, parameters and golden model (Python only)."""

import numpy as np
import pytest

from hdl.counters import Counter
from hdl.pmu import AddressProgram, ConfigError, PmuConfig, PmuParams, run_golden
from hdl.pmu.config import CONFIG_MAGIC
from hdl.presets import get_preset

TINY = PmuParams("tiny")
LINEAR = AddressProgram([Counter(0, 64, 4)])


def test_encode_decode_round_trip():
    config = PmuConfig(write=AddressProgram([Counter(0, 16, 4), Counter(0, 64, 16)], offset=3,
                                            alu=[("ishl", 1), ("iand", 0x3FF)], lane_stride=2, runs=5),
                       read=AddressProgram([Counter(1, 9, 2)], runs=5, scalar_offset=True),
                       buffers=2, buffer_words=256, stripe_shift=3, bank_shift=1, range_lo=16,
                       range_hi=700, scalar_out=True, auto_start=False)
    words = config.encode(TINY)
    assert words[0] >> 16 == CONFIG_MAGIC and len(words) == 1 + TINY.config_words
    assert PmuConfig.decode(words, TINY) == config
    only_read = PmuConfig(read=LINEAR)
    full = PmuConfig(read=LINEAR, buffer_words=TINY.capacity)
    assert PmuConfig.decode(only_read.encode(TINY), TINY) == full


@pytest.mark.parametrize("config, message", [
    (PmuConfig(), "needs a write side, a read side or both"),
    (PmuConfig(write=LINEAR, buffers=5), r"buffers must be in \[1, 4\] \(this PMU's max_buffers\)"),
    (PmuConfig(write=LINEAR, buffers=3, buffer_words=400), "exceed the PMU's capacity of 1024 words"),
    (PmuConfig(write=LINEAR, stripe_shift=1), "stripe_shift must be 0"),
    (PmuConfig(write=LINEAR, stripe_shift=3, bank_shift=2), "stripe_shift must be 0"),
    (PmuConfig(write=LINEAR, bank_shift=9), r"bank_shift must be in \[0, 8\]"),
    (PmuConfig(write=LINEAR, range_lo=5, range_hi=5), "range_lo < range_hi"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], runs=2), read=LINEAR), "must run as often"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], alu=[("imul", 3)])), "not an address op"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], alu=[("iadd", 1 << 16)])), "immediate must be in"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], alu=[("iadd", 1)] * 3)), "at most 2 address ALU ops"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], scalar_offset=True)), "read side only"),
    (PmuConfig(write=AddressProgram([Counter(0, 4)], runs=0)), r"runs must be in \[1, 65535\]"),
    (PmuConfig(write=AddressProgram([])), "at least one counter"),
    (PmuConfig(write=AddressProgram([Counter(0, 1 << 16)])), "counters are 16 bits"),
    (PmuConfig(write=AddressProgram([Counter(0, 2)] * 4)), "4 counters given"),
])
def test_encoder_rejects_invalid_programs(config, message):
    with pytest.raises(ConfigError, match=message):
        config.encode(TINY)


def test_counter_stride_zero_is_refused():
    with pytest.raises(ValueError, match="stride must be positive"):
        AddressProgram([Counter(0, 16, 0)])


def test_max_buffers_is_a_build_option():
    deep = PmuParams("tiny", max_buffers=8)
    PmuConfig(write=LINEAR, buffers=8, buffer_words=64).encode(deep)
    with pytest.raises(ConfigError, match=r"\[1, 8\]"):
        PmuConfig(write=LINEAR, buffers=9, buffer_words=64).encode(deep)
    with pytest.raises(ValueError, match="max_buffers must be"):
        PmuParams("tiny", max_buffers=0)


def test_params_need_one_bank_per_lane():
    with pytest.raises(ValueError, match="one bank per lane"):
        PmuParams(get_preset("tiny").replace(name="odd", pmu_banks=8))
    with pytest.raises(ValueError, match="power of two"):
        PmuParams(get_preset("tiny").replace(name="odd", pmu_bank_kib=3))


def test_golden_model_flat_memory_semantics():
    lanes = TINY.lanes
    data = np.arange(8 * lanes, dtype=np.uint32).reshape(8, lanes)
    write = AddressProgram([Counter(0, 8 * lanes, lanes)])
    # a column read of the 8 x 4 matrix: lane l reads word c + 4 l (rows 0..3), then rows 4..7
    read = AddressProgram([Counter(0, 4, 1), Counter(0, 32, 16)], lane_stride=4)
    out = run_golden(PmuConfig(write=write, read=read), TINY, vin=data)["vout"]
    assert out.tolist()[0] == [0, 4, 8, 12] and out.tolist()[4] == [16, 20, 24, 28]
    # dropped accesses: only addresses in [16, 32) are kept and read back
    kept = run_golden(PmuConfig(write=write, read=AddressProgram([Counter(0, 32, 4)]), range_lo=16,
                                range_hi=32), TINY, vin=data)["vout"]
    assert kept.tolist() == data[4:8].tolist()
    with pytest.raises(ConfigError, match="touches words"):
        run_golden(PmuConfig(write=AddressProgram([Counter(0, 40, 4)]), buffers=2, buffer_words=16), TINY,
                   vin=np.zeros((10, lanes), np.uint32))


def test_pmu_in_amaranth_simulator_with_backpressure():
    """A short write-then-read program through the RTL in pysim, random stalls on both sides."""
    import random

    from hdl.pmu import PatternMemoryUnit
    from sim.pysim import run_pysim, stream_get, stream_put

    lanes = TINY.lanes
    rng = np.random.default_rng(8)
    data = rng.integers(0, 1 << 32, (12, lanes), dtype=np.uint64).astype(np.uint32)
    config = PmuConfig(write=AddressProgram([Counter(0, 12 * lanes, lanes)]),
                       read=AddressProgram([Counter(0, lanes, 1), Counter(0, 12 * lanes, lanes * lanes)],
                                           lane_stride=lanes), stripe_shift=2)
    want = run_golden(config, TINY, vin=data)["vout"]
    dut = PatternMemoryUnit(TINY)
    got = []
    put_rng, get_rng = random.Random(1), random.Random(2)

    async def producer(ctx):
        for word in config.encode(TINY):
            await stream_put(ctx, dut.cfg, word)
        for row in data:
            await stream_put(ctx, dut.vin, [int(x) for x in row], rng=put_rng, stall_p=0.4)

    async def consumer(ctx):
        for _ in range(len(want)):
            got.append([int(x) for x in await stream_get(ctx, dut.vout, rng=get_rng, stall_p=0.4)])

    run_pysim(dut, producer, consumer)
    assert len(got) == 12 and np.array_equal(np.array(got, dtype=np.uint32), want)
