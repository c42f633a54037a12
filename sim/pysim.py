"""Helpers for Amaranth-simulator (pysim) testbenches of stream components.

In the style of Glasgow's ``stream_put``/``stream_get``: one testbench coroutine
per side, each using these helpers, with random idle cycles for stalls.
"""

from __future__ import annotations

import random

from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

__all__ = ["stream_put", "stream_get", "run_pysim"]


async def stream_put(ctx, stream, payload, *, rng: random.Random | None = None, stall_p: float = 0.0):
    """Offer ``payload`` on ``stream`` and wait until it is taken.

    With ``rng`` and ``stall_p`` > 0, first idles a random number of cycles
    (geometric, mean ``stall_p / (1 - stall_p)``) with ``valid`` low.
    """
    while rng is not None and rng.random() < stall_p:
        await ctx.tick()
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, rng: random.Random | None = None, stall_p: float = 0.0):
    """Accept one payload from ``stream`` and return it (random ``ready`` stalls as for put)."""
    while rng is not None and rng.random() < stall_p:
        await ctx.tick()
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_pysim(dut, *testbenches, vcd: str | None = None, period: float = 1e-8):
    """Run ``testbenches`` (async functions of ``ctx``) on ``dut`` with one clock domain."""
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = ClockDomain("sync")  # present even for purely combinational designs
    sim = Simulator(top)
    sim.add_clock(period)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
