"""Stream FIFO and pipeline register in Amaranth's simulator: random stalls, throughput, errors."""

import random

import pytest
from amaranth.lib import data

from hdl.stream import StreamFifo, StreamRegister, vector_layout
from sim.pysim import run_pysim, stream_get, stream_put

DUTS = {
    "fifo-depth2": lambda: StreamFifo(16, 2),
    "fifo-depth5": lambda: StreamFifo(16, 5),
    "register": lambda: StreamRegister(16),
}


@pytest.mark.parametrize("stall_p", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("dut_name", list(DUTS))
def test_random_stalls_lose_nothing(dut_name, seed, stall_p):
    dut = DUTS[dut_name]()
    rng = random.Random(seed)
    sent = [rng.getrandbits(16) for _ in range(300)]
    received = []
    put_rng, get_rng = random.Random(seed * 7), random.Random(seed * 13)

    async def producer(ctx):
        for value in sent:
            await stream_put(ctx, dut.i, value, rng=put_rng, stall_p=stall_p)

    async def consumer(ctx):
        for _ in sent:
            received.append(await stream_get(ctx, dut.o, rng=get_rng, stall_p=stall_p))

    run_pysim(dut, producer, consumer)
    assert received == sent


@pytest.mark.parametrize("dut_name", list(DUTS))
def test_full_rate_one_transfer_per_cycle(dut_name):
    """With valid and ready held high, a transfer happens on every cycle after the fill latency."""
    dut = DUTS[dut_name]()
    n = 64
    transfer_cycles = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        sent = 0
        for cycle in range(n + 10):
            ctx.set(dut.i.payload, sent)
            _, _, i_ready, o_valid = await ctx.tick().sample(
                dut.i.ready, dut.o.valid)
            if i_ready:
                sent += 1
            if o_valid:
                transfer_cycles.append(cycle)

    async def dummy(ctx):
        pass

    run_pysim(dut, bench, dummy)
    assert len(transfer_cycles) >= n
    # after the first output, one output every cycle
    first = transfer_cycles[0]
    assert transfer_cycles[:n] == list(range(first, first + n))
    assert first <= 3


def test_fifo_level_counts_entries():
    dut = StreamFifo(8, 4)
    levels = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        for value in range(6):  # two more than fit
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, value)
            await ctx.tick()
            levels.append(ctx.get(dut.level))
        assert ctx.get(dut.i.ready) == 0

    run_pysim(dut, bench)
    assert levels[-1] == 4
    assert levels == sorted(levels)


@pytest.mark.parametrize("depth", [2, 4])
def test_fifo_clear_drops_every_entry(depth):
    """A full FIFO is empty the cycle after ``clear``; what comes in afterwards comes out, in order."""
    dut = StreamFifo(8, depth)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        for value in range(depth):
            await stream_put(ctx, dut.i, 0xA0 + value)
        await ctx.tick()
        seen["full"] = (ctx.get(dut.level), ctx.get(dut.i.ready), ctx.get(dut.o.valid))
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        seen["cleared"] = (ctx.get(dut.level), ctx.get(dut.o.valid), ctx.get(dut.i.ready))
        for value in (1, 2):          # at most depth: nothing reads yet
            await stream_put(ctx, dut.i, value)
        seen["after"] = [await stream_get(ctx, dut.o) for _ in range(2)]
        for _ in range(3):
            await ctx.tick()
        seen["left"] = ctx.get(dut.o.valid)

    run_pysim(dut, bench)
    assert seen["full"] == (depth, 0, 1), seen
    assert seen["cleared"] == (0, 0, 1), seen
    assert seen["after"] == [1, 2] and seen["left"] == 0, seen


def test_vector_payload():
    layout = vector_layout(4)
    dut = StreamFifo(layout, 3)
    sent = [[lane * 1000 + k for lane in range(4)] for k in range(20)]
    got = []

    async def producer(ctx):
        for words in sent:
            await stream_put(ctx, dut.i, words)

    async def consumer(ctx):
        for _ in sent:
            payload = await stream_get(ctx, dut.o)
            got.append([int(payload[lane]) for lane in range(4)])

    run_pysim(dut, producer, consumer)
    assert got == sent


@pytest.mark.parametrize("factory, error, match", [
    (lambda: StreamFifo(8, 1), ValueError, "depth must be at least 2"),
    (lambda: StreamFifo(8, 2.5), TypeError, "depth must be an int"),
    (lambda: StreamFifo("x", 4), TypeError, "shape-castable"),
    (lambda: StreamFifo(0, 4), ValueError, "at least 1 bit"),
    (lambda: StreamRegister(object()), TypeError, "shape-castable"),
    (lambda: vector_layout(0), ValueError, "lanes must be at least 1"),
    (lambda: vector_layout("4"), TypeError, "lanes must be an int"),
])
def test_constructor_errors(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_vector_layout_shape():
    assert vector_layout(8).size == 256
    assert isinstance(vector_layout(8), data.ArrayLayout)
