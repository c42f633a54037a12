"""cocotb testbench for one arithmetic unit (:class:`hdl.numerics.units.OpUnit`).

Sends random operands (a mix of uniformly random words, values of moderate range
and the special values ±0, ±Inf, NaN, ±max, ±min normal) with random valid and
ready stalls, and compares every result with the golden model of the op table.

Environment:

``OPENRDU_OP``
    The op the DUT was built for (``mac``, ``exp``, ``fadd`` …).
``OPENRDU_ITEMS``
    Operand tuples per test (default 2000).
``OPENRDU_LATENCY``
    The DUT's latency, for the full-rate check.
"""

from __future__ import annotations

import os
import random
import struct
import time

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time

from hdl.numerics.ops import get_op, golden
from sim.cocotb_streams import StreamSink, StreamSource, start_clock_and_reset
from sim.metrics import record

PERIOD_NS = 10
SPECIALS = [0x00000000, 0x80000000, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x3F800000, 0xBF800000, 0x00000001]


def _operand(rng: random.Random, kind: str) -> int:
    roll = rng.random()
    if kind == "i32":
        return rng.getrandbits(32)
    if roll < 0.1:
        word = rng.choice(SPECIALS)
    elif roll < 0.4:
        word = rng.getrandbits(32)
    else:
        word = struct.unpack("<I", struct.pack("<f", rng.uniform(-30.0, 30.0)))[0]
    return word >> 16 if kind == "bf16" else word


def _operands(rng: random.Random, op, count: int) -> list[tuple[int, ...]]:
    return [tuple(_operand(rng, kind) for kind in op.operands) for _ in range(count)]


def _pack(operands: tuple[int, ...]) -> int:
    return sum(word << (32 * k) for k, word in enumerate(operands))


async def _run(dut, name: str, valid_p: float, ready_p: float):
    op = get_op(os.environ["OPENRDU_OP"])
    count = int(os.environ.get("OPENRDU_ITEMS", "2000"))
    rng = random.Random(cocotb.RANDOM_SEED)
    await start_clock_and_reset(dut, PERIOD_NS)
    tuples = _operands(rng, op, count)
    columns = [np.array(col, dtype=np.uint32) for col in zip(*tuples, strict=True)]
    expected = [int(x) for x in golden(op.name if op.kind == "alu" else f"tail.{op.name}", *columns)]

    source = StreamSource(dut, "i", valid_probability=valid_p, rng=rng)
    sink = StreamSink(dut, "o", ready_probability=ready_p, rng=rng)
    start_ns, start_wall = get_sim_time("ns"), time.perf_counter()
    sender = cocotb.start_soon(source.send([_pack(t) for t in tuples]))
    received = await sink.receive(count, timeout_cycles=count * 50 + 500)
    await sender
    wall = time.perf_counter() - start_wall
    cycles = round((get_sim_time("ns") - start_ns) / PERIOD_NS)
    record(name, op=op.name, items=count, cycles=cycles, wall_s=wall, cycles_per_s=cycles / wall)

    bad = [k for k, (got, want) in enumerate(zip(received, expected, strict=True)) if got != want]
    assert not bad, (
        f"{len(bad)} of {count} {op.name} results differ from the golden model; first: operands "
        + ", ".join(f"{w:#010x}" for w in tuples[bad[0]])
        + f" → rtl {received[bad[0]]:#010x}, golden {expected[bad[0]]:#010x}")
    return cycles, count


@cocotb.test()
async def random_operands_with_backpressure(dut):
    """70 % valid, 60 % ready: every result equals the golden model, in order."""
    await _run(dut, "random_operands_with_backpressure", 0.7, 0.6)


@cocotb.test()
async def full_rate(dut):
    """No stalls: equal to the golden model and one result per cycle after the latency."""
    latency = int(os.environ["OPENRDU_LATENCY"])
    cycles, count = await _run(dut, "full_rate", 1.0, 1.0)
    assert cycles <= count + latency + 2, (
        f"{count} operand tuples took {cycles} cycles; at one per cycle they take at most "
        f"{count + latency + 2}")
