"""A segment entry past the end of the line space cannot make the AGCU wrap round memory.

:class:`hdl.agcu.Segment` refuses an entry with ``base + bound > 2**addr_bits``, but the ``seg``
stream takes raw payloads. The unit adds a run's relative line to the segment's base in
``addr_bits`` bits, so such an entry let a run that stays inside its bound reach lines at the
bottom of memory, outside its segment. The AGCU now stores such an entry empty (bound 0, no
permission): every run naming it faults and issues nothing. Checked in Amaranth's simulator.
"""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from hdl.agcu import AddressGenerationUnit, AgcuConfig, AgcuParams, ConfigError, Segment
from hdl.counters import Counter
from sim.pysim import stream_put

#: 16 lines of 4 vectors (4 lanes)
PARAMS = AgcuParams("tiny", addr_bits=4, segments=2, outstanding=4)
#: vectors 16..23: relative lines 4 and 5 of segment 0
LOAD = AgcuConfig("load", 0, [Counter(0, 8)], offset=16)


def raw_segment(base: int, bound: int) -> dict:
    """The ``seg`` fields of entry 0, read and write permitted, without :class:`Segment`'s checks."""
    return {"index": 0, "base": base, "bound": bound, "read": 1, "write": 1}


def run_load(segment: dict, max_cycles: int = 300) -> dict:
    """Write segment entry 0, load :data:`LOAD`, start one run; the line requests, fault and vectors."""
    dut = AddressGenerationUnit(PARAMS)
    out = {"requests": [], "vectors": 0}

    async def memory(ctx):     # answers each request the next cycle (zero data)
        ctx.set(dut.mem.req.ready, 1)
        ctx.set(dut.vout.ready, 1)
        due = []
        while True:
            ctx.set(dut.mem.resp.valid, bool(due))
            _, _, rv, addr, sent = await ctx.tick().sample(dut.mem.req.valid, dut.mem.req.payload.addr,
                                                           dut.vout.valid)
            if due:
                due.pop(0)
            if rv:
                out["requests"].append(int(addr))
                due.append(addr)
            out["vectors"] += int(sent)

    async def control(ctx):
        await stream_put(ctx, dut.seg, segment)
        for word in LOAD.encode(PARAMS):
            await stream_put(ctx, dut.cfg, word)
        assert ctx.get(dut.configured)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(max_cycles):
            _, _, done = await ctx.tick().sample(dut.done)
            if done:
                break
        else:
            raise AssertionError(f"no done within {max_cycles} cycles")
        await ctx.tick().repeat(5)
        out["fault"] = ctx.get(dut.fault)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(memory, background=True)
    sim.add_testbench(control)
    sim.run()
    return out


def test_segment_that_fits_serves_the_run():
    """The same run on a segment that fits: lines base + 4 and base + 5, every vector out."""
    result = run_load(Segment(0, base=8, bound=8).fields(PARAMS))
    assert not result["fault"] and result["requests"] == [12, 13] and result["vectors"] == 8


def test_segment_past_the_line_space_is_empty():
    """Base 12, bound 8 in a 16-line space: lines 16 and 17 would wrap to 0 and 1. The entry is
    stored empty, so the run faults and reaches no line at all."""
    with pytest.raises(ConfigError, match=r"bound must be in \[0, 4\] lines"):
        Segment(0, base=12, bound=8).payload(PARAMS)
    result = run_load(raw_segment(base=12, bound=8))
    assert result["requests"] == [], f"a run reached lines {result['requests']} outside its segment"
    assert result["fault"] and result["vectors"] == 0
    # an entry that ends exactly at the top of the line space is kept
    result = run_load(raw_segment(base=10, bound=6))
    assert not result["fault"] and result["requests"] == [14, 15]
