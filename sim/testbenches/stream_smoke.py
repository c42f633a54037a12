"""Smoke testbench for any one-in/one-out stream component (``i`` → ``o``).

Sends random payloads through the DUT and checks that exactly the same payloads
come out, in the same order: nothing lost, nothing duplicated, nothing altered; and that the
DUT's output keeps the stream rules (a :class:`~sim.cocotb_streams.StreamMonitor` watches it).
The golden model is the input list itself, which is right for a component whose
contract is "pass every payload through unchanged" (FIFOs, pipeline registers).

Environment (set by :func:`sim.runner.run_cocotb` callers):

``OPENRDU_SMOKE_ITEMS``
    Payloads per test (default 1000).
``OPENRDU_SMOKE_LATENCY``
    Upper bound on the DUT's fill latency in cycles, used by the full-rate test
    to check one transfer per cycle (default 4).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import cocotb
from cocotb.simtime import get_sim_time

from sim.cocotb_streams import StreamMonitor, StreamSink, StreamSource, start_clock_and_reset
from sim.metrics import record

PERIOD_NS = 10


def _describe_mismatch(sent: list[int], received: list[int]) -> str:
    lost = Counter(sent) - Counter(received)
    extra = Counter(received) - Counter(sent)
    first = next((i for i, (a, b) in enumerate(zip(sent, received, strict=False)) if a != b), None)
    return (f"sent {len(sent)}, received {len(received)}; lost {sum(lost.values())}, "
            f"extra/duplicated {sum(extra.values())}; first difference at index {first}")


async def _run(dut, name: str, valid_p: float, ready_p: float) -> tuple[int, list, list, list]:
    items_n = int(os.environ.get("OPENRDU_SMOKE_ITEMS", "1000"))
    rng = random.Random(cocotb.RANDOM_SEED)
    await start_clock_and_reset(dut, PERIOD_NS)
    width = len(dut.i__payload)
    items = [rng.getrandbits(width) for _ in range(items_n)]
    source = StreamSource(dut, "i", valid_probability=valid_p, rng=rng)
    sink = StreamSink(dut, "o", ready_probability=ready_p, rng=rng)
    monitor = StreamMonitor(dut, "o").start()

    start_ns, start_wall = get_sim_time("ns"), time.perf_counter()
    sender = cocotb.start_soon(source.send(items))
    received = await sink.receive(items_n, timeout_cycles=items_n * 50 + 100)
    await sender
    monitor.stop()
    wall = time.perf_counter() - start_wall
    cycles = round((get_sim_time("ns") - start_ns) / PERIOD_NS)
    record(name, items=items_n, cycles=cycles, wall_s=wall, cycles_per_s=cycles / wall,
           payload_bits=width, valid_probability=valid_p, ready_probability=ready_p)
    return cycles, items, received, monitor.violations


@cocotb.test()
async def random_stalls_lose_nothing(dut):
    """Random valid and ready stalls (each side 60 % active): output == input, in order, and the
    output keeps the stream rules."""
    _, sent, received, violations = await _run(dut, "random_stalls_lose_nothing", 0.6, 0.6)
    assert received == sent, _describe_mismatch(sent, received)
    assert not violations, f"{len(violations)} stream-rule violations on o; first: {violations[0]}"


@cocotb.test()
async def full_rate_one_per_cycle(dut):
    """No stalls: output == input and the DUT sustains one transfer per cycle."""
    latency = int(os.environ.get("OPENRDU_SMOKE_LATENCY", "4"))
    cycles, sent, received, violations = await _run(dut, "full_rate_one_per_cycle", 1.0, 1.0)
    assert received == sent, _describe_mismatch(sent, received)
    assert not violations, f"{len(violations)} stream-rule violations on o; first: {violations[0]}"
    assert cycles <= len(sent) + latency, (
        f"{len(sent)} payloads took {cycles} cycles; at one per cycle they take at most "
        f"{len(sent) + latency} (fill latency bound {latency})"
    )
