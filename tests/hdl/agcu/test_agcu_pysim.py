"""The AGCU in Amaranth's simulator against its golden model, plus its configuration checks.

A Python memory model serves the ``mem`` port: a dict of 64-byte lines, requests taken
with random ``ready`` back-pressure, responses in request order after a random latency.
``vout`` is read with random stalls and ``vin`` written with random gaps. Each run is
compared with :func:`hdl.agcu.run_golden`: the vectors out (loads), the memory after
(stores: masked words only), the exact list of coalesced line requests, and faults.
"""

import random
from collections import deque

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from hdl.agcu import AddressGenerationUnit, AgcuConfig, AgcuParams, ConfigError, Segment, run_golden
from hdl.agcu.config import CONFIG_MAGIC, CONFIG_VERSION
from hdl.agcu.golden import coalesce, vector_words
from hdl.config_port import encode_image
from hdl.counters import IDLE_COUNTER, Counter
from hdl.presets import get_preset
from sim.pysim import stream_put

TINY = AgcuParams("tiny", addr_bits=23, outstanding=8)
LINE_MASK = (1 << 512) - 1


def _answer(mem: dict, line: int, write: int, mask: int, data: int) -> dict:
    """The memory's response payload to one request; a write stores the words ``mask`` selects."""
    if write:
        keep = sum(0xFFFFFFFFFFFFFFFF << (64 * w) for w in range(8) if not (mask >> w) & 1)
        mem[line] = (mem.get(line, 0) & keep) | (data & ~keep & LINE_MASK)
        return {"data": 0, "write": 1, "corrected": 0, "uncorrectable": 0}
    return {"data": mem.get(line, 0), "write": 0, "corrected": 0, "uncorrectable": 0}


def value_of(view) -> int:
    return view.as_value().value if hasattr(view, "as_value") else int(view)


def random_memory(rng: random.Random, lines) -> dict[int, int]:
    return {line: rng.getrandbits(512) for line in lines}


def simulate(params, config, segments, memory, *, vin=(), sin=(), starts=1, seed=0, latency=(1, 8),
             req_stall=0.3, vout_stall=0.3, vin_gap=0.3, clear_after=False, max_cycles=4000):
    """Load ``segments`` and ``config``, give ``starts`` start tokens, run to the last done.

    Returns a dict: ``vout`` (vector values), ``requests`` ((line, write, mask) as seen on the
    port), ``memory`` after, ``dones``, ``fault``, ``fault_addr``, ``counter`` (the ``requests``
    output), ``vin_taken``, ``cycles``, ``vout_cycles`` / ``vin_cycles`` (transfer cycles),
    ``max_inflight`` (most requests the memory held unanswered at once).
    """
    dut = AddressGenerationUnit(params)
    mem = dict(memory)
    out = {"vout": [], "requests": [], "vout_cycles": [], "vin_cycles": [], "dones": 0, "max_inflight": 0}
    rng = random.Random(seed)
    lanes = params.lanes

    async def memory_model(ctx):
        req, resp = dut.mem.req, dut.mem.resp
        queue = deque()
        cycle = last_due = 0
        while True:
            ctx.set(req.ready, rng.random() >= req_stall)
            if queue and queue[0][0] <= cycle:
                ctx.set(resp.valid, 1)
                ctx.set(resp.payload, queue[0][1])
            else:
                ctx.set(resp.valid, 0)
            _, _, rv, rr, rp, sv, sr = await ctx.tick().sample(req.valid, req.ready, req.payload,
                                                                 resp.valid, resp.ready)
            cycle += 1
            if sv and sr:
                queue.popleft()
            if rv and rr:
                line, write, mask, data = int(rp.addr), int(rp.write), int(rp.mask), value_of(rp.data)
                out["requests"].append((line, bool(write), mask))
                payload = _answer(mem, line, write, mask, data)
                last_due = max(last_due, cycle + rng.randint(*latency))
                queue.append((last_due, payload))
                out["max_inflight"] = max(out["max_inflight"], len(queue))

    async def consumer(ctx):
        cycle = 0
        while True:
            ctx.set(dut.vout.ready, rng.random() >= vout_stall)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.vout.valid, dut.vout.ready,
                                                                  dut.vout.payload)
            if valid and ready:
                out["vout"].append(value_of(payload))
                out["vout_cycles"].append(cycle)
            cycle += 1

    async def producer(ctx):
        cycle = 0
        for vector in vin:
            while rng.random() < vin_gap:
                await ctx.tick()
                cycle += 1
            ctx.set(dut.vin.valid, 1)
            ctx.set(dut.vin.payload, vector_words(vector, lanes))
            while True:
                _, _, ready = await ctx.tick().sample(dut.vin.ready)
                cycle += 1
                if ready:
                    out["vin_cycles"].append(cycle)
                    break
            ctx.set(dut.vin.valid, 0)

    async def scalars(ctx):
        for word in sin:
            await stream_put(ctx, dut.sin, word)

    async def control(ctx):
        for segment in segments:
            await stream_put(ctx, dut.seg, segment.fields(params))
        for word in config.encode(params):
            await stream_put(ctx, dut.cfg, word)
        assert ctx.get(dut.configured)
        for _ in range(starts):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
        cycles = 0
        while out["dones"] < starts:
            _, _, done = await ctx.tick().sample(dut.done)
            out["dones"] += done
            cycles += 1
            assert cycles < max_cycles, f"no done after {max_cycles} cycles ({out['dones']} of {starts})"
        out["cycles"] = cycles
        for _ in range(10):   # nothing more may come out
            _, _, done = await ctx.tick().sample(dut.done)
            assert not done
        assert not ctx.get(dut.busy) and not ctx.get(dut.vout.valid) and not ctx.get(dut.mem.req.valid)
        out["fault"], out["fault_addr"] = ctx.get(dut.fault), ctx.get(dut.fault_addr)
        out["counter"] = ctx.get(dut.requests)
        if clear_after:
            ctx.set(dut.cfg_clear, 1)
            await ctx.tick()
            ctx.set(dut.cfg_clear, 0)
            await ctx.tick()
            out["fault_after_clear"] = ctx.get(dut.fault)
            out["configured_after_clear"] = ctx.get(dut.configured)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(memory_model, background=True)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(scalars, background=True)
    sim.add_testbench(control)
    sim.run()
    out["memory"] = mem
    out["vin_taken"] = len(out["vin_cycles"])
    return out


def expect_run(params, config, segments, memory, result, *, vin=(), sin=()):
    """Compare one run of the simulation with the golden model."""
    golden = run_golden(config, params, segments, memory, vin=list(vin), sin=list(sin))
    assert result["fault"] == golden.fault
    assert result["requests"] == [(r.line, r.write, r.mask) for r in golden.requests]
    assert result["counter"] == len(golden.requests)
    assert result["vout"] == golden.vout
    assert result["memory"] == golden.memory
    assert result["vin_taken"] == golden.vin_taken
    return golden


# ------------------------------------------------------------------ loads

SEGMENTS = [Segment(0, base=0x100, bound=64), Segment(1, base=0x400, bound=16, write=False),
            Segment(2, base=0x7FFFF0, bound=16)]

LOADS = {
    # unaligned contiguous: 24 vectors from vector 2 → lines 0..6 (partial first and last)
    "contiguous": AgcuConfig("load", 0, [Counter(0, 24)], offset=2),
    # stride 3: never two consecutive addresses, one read per vector
    "strided": AgcuConfig("load", 0, [Counter(0, 48, 3)], offset=1),
    # 2-D tile: rows of 6 vectors, pitch 16
    "2d": AgcuConfig("load", 0, [Counter(0, 6), Counter(0, 80, 16)], offset=5),
    # 3-D: overlapping rows (a jump back flushes the pending line)
    "3d-overlap": AgcuConfig("load", 1, [Counter(0, 4), Counter(0, 2), Counter(0, 24, 8)], offset=3),
    # the top of the address space
    "high-segment": AgcuConfig("load", 2, [Counter(0, 64)]),
}


@pytest.mark.parametrize("name", list(LOADS))
def test_load_patterns_match_golden(name):
    config = LOADS[name]
    rng = random.Random(name)
    memory = random_memory(rng, [*range(0x100, 0x140), *range(0x400, 0x410), *range(0x7FFFF0, 0x800000)])
    result = simulate(TINY, config, SEGMENTS, memory, seed=len(name))
    golden = expect_run(TINY, config, SEGMENTS, memory, result)
    assert not result["fault"] and result["dones"] == 1
    assert golden.vout and len(golden.vout) == len(config.vector_addresses())


def test_load_coalescing_counts():
    """Contiguous aligned vectors: one read per 4 vectors; stride 3: one per vector."""
    contiguous = coalesce(AgcuConfig("load", 0, [Counter(0, 32)]).vector_addresses(), TINY)
    assert len(contiguous) == 8 and all(slots == (0, 1, 2, 3) for _, slots in contiguous)
    strided = coalesce(AgcuConfig("load", 0, [Counter(0, 48, 3)]).vector_addresses(), TINY)
    assert len(strided) == 16
    # rows of 6 from vector 5 with pitch 16: lines 1 (5..7), 2 (8..10) per row
    tile = coalesce(LOADS["2d"].vector_addresses(), TINY)
    assert [len(slots) for _, slots in tile] == [3, 3] * 5


# ------------------------------------------------------------------ stores

STORES = {
    "contiguous": AgcuConfig("store", 0, [Counter(0, 21)], offset=3),
    "strided": AgcuConfig("store", 0, [Counter(0, 40, 2)], offset=1),
    "2d": AgcuConfig("store", 0, [Counter(0, 5), Counter(0, 64, 16)], offset=6),
}


@pytest.mark.parametrize("name", list(STORES))
def test_store_patterns_match_golden(name):
    config = STORES[name]
    rng = random.Random(name)
    memory = random_memory(rng, range(0x100, 0x140))
    steps = len(config.vector_addresses())
    vin = [rng.getrandbits(32 * TINY.lanes) for _ in range(steps)]
    result = simulate(TINY, config, SEGMENTS, memory, vin=vin, seed=steps)
    golden = expect_run(TINY, config, SEGMENTS, memory, result, vin=vin)
    assert all(r.write for r in golden.requests)
    # words outside every mask keep their old contents, and some words were untouched
    touched = {(r.line, w) for r in golden.requests for w in range(8) if (r.mask >> w) & 1}
    for line, value in memory.items():
        for w in range(8):
            if (line, w) not in touched:
                assert (result["memory"][line] >> (64 * w)) & (2**64 - 1) == (value >> (64 * w)) & (2**64 - 1)
    assert len(touched) == steps * TINY.words_per_vector < 8 * len(golden.requests)


def test_store_mask_covers_only_written_words():
    config = AgcuConfig("store", 0, [Counter(0, 3)], offset=1)   # slots 1..3 of line 0
    golden = run_golden(config, TINY, SEGMENTS, {}, vin=[1, 2, 3])
    assert [(r.line, r.mask) for r in golden.requests] == [(0x100, 0b11111100)]


# ------------------------------------------------------------------ kernel arguments, several runs

def test_base_from_scalar_load_and_store_runs():
    rng = random.Random(7)
    memory = random_memory(rng, range(0x100, 0x140))
    load = AgcuConfig("load", 0, [Counter(0, 10)], offset=1, base_from_scalar=True)
    # two runs back to back, each with its own base from sin
    result = simulate(TINY, load, SEGMENTS, memory, sin=[12, 40], starts=2, seed=3)
    first = run_golden(load, TINY, SEGMENTS, memory, sin=[12])
    second = run_golden(load, TINY, SEGMENTS, memory, sin=[40])
    assert result["vout"] == first.vout + second.vout
    assert result["requests"] == [(r.line, r.write, r.mask) for r in first.requests + second.requests]
    assert result["dones"] == 2 and not result["fault"]
    assert first.vout[0] == (memory[0x103] >> 128) & (2**128 - 1)   # vector 13 = line 3, slot 1

    store = AgcuConfig("store", 0, [Counter(0, 6)], base_from_scalar=True)
    vin = [rng.getrandbits(128) for _ in range(6)]
    result = simulate(TINY, store, SEGMENTS, memory, vin=vin, sin=[30], seed=4)
    expect_run(TINY, store, SEGMENTS, memory, result, vin=vin, sin=[30])


# ------------------------------------------------------------------ protection

@pytest.mark.parametrize("direction", ["load", "store"])
def test_one_vector_past_the_bound_faults(direction):
    # segment 0 holds 64 lines = 256 vectors; vectors 200..256 end one past the bound
    config = AgcuConfig(direction, 0, [Counter(0, 57)], offset=200)
    memory = random_memory(random.Random(1), range(0x100, 0x140))
    vin = [5] * 57
    golden = run_golden(config, TINY, SEGMENTS, memory, vin=vin)
    assert golden.fault and golden.fault_addr == 256 and not golden.requests
    result = simulate(TINY, config, SEGMENTS, memory, vin=vin, clear_after=True)
    assert result["fault"] and result["fault_addr"] == 256
    assert result["requests"] == [] and result["counter"] == 0 and result["dones"] == 1
    assert result["vout"] == [] and result["vin_taken"] == 0 and result["memory"] == memory
    assert not result["fault_after_clear"] and not result["configured_after_clear"]
    # the same run ending exactly at the bound is fine
    ok = AgcuConfig(direction, 0, [Counter(0, 56)], offset=200)
    assert not run_golden(ok, TINY, SEGMENTS, memory, vin=vin).fault


def test_store_to_read_only_segment_faults():
    config = AgcuConfig("store", 1, [Counter(0, 4)])
    memory = random_memory(random.Random(2), range(0x400, 0x410))
    result = simulate(TINY, config, SEGMENTS, memory, vin=[1, 2, 3, 4])
    assert result["fault"] and result["fault_addr"] == 0 and result["dones"] == 1
    assert result["requests"] == [] and result["vin_taken"] == 0 and result["memory"] == memory
    # loads from it are allowed
    load = simulate(TINY, AgcuConfig("load", 1, [Counter(0, 4)]), SEGMENTS, memory)
    assert not load["fault"] and len(load["vout"]) == 4


def test_unwritten_segment_and_scalar_base_fault():
    # segment 3 was never written: no permission; a scalar base past the bound faults too
    result = simulate(TINY, AgcuConfig("load", 3, [Counter(0, 2)]), SEGMENTS, {})
    assert result["fault"] and result["requests"] == [] and result["dones"] == 1
    config = AgcuConfig("load", 1, [Counter(0, 8)], base_from_scalar=True)
    result = simulate(TINY, config, SEGMENTS, {}, sin=[60])
    golden = run_golden(config, TINY, SEGMENTS, {}, sin=[60])
    assert result["fault"] and golden.fault and result["fault_addr"] == golden.fault_addr == 67


def test_strided_run_ending_inside_the_bound_does_not_fault():
    """The highest address uses each counter's last value, not ``stop - 1`` (here 2 + 5 + 69 > 63)."""
    config = AgcuConfig("load", 1, [Counter(0, 6, 4), Counter(0, 70, 19)], offset=2)
    assert config.address_range() == (2, 63)
    memory = random_memory(random.Random(4), range(0x400, 0x410))
    result = simulate(TINY, config, SEGMENTS, memory, seed=8)
    expect_run(TINY, config, SEGMENTS, memory, result)
    assert not result["fault"] and len(result["vout"]) == 8
    past = AgcuConfig("load", 1, [Counter(0, 6, 4), Counter(0, 77, 19)], offset=2)
    result = simulate(TINY, past, SEGMENTS, memory, seed=8)
    assert result["fault"] and result["fault_addr"] == 2 + 4 + 76 and result["requests"] == []


class RawImage:
    """A hand-made image the encoder would refuse (kernel images are not trusted)."""

    def __init__(self, counters, offset=0, direction=0, segment=0):
        self.fields = {"direction": direction, "segment": segment, "counters_used": len(counters),
                       "counter": counters + [IDLE_COUNTER] * (TINY.counters - len(counters)),
                       "offset": offset, "base_from_scalar": 0}

    def encode(self, params):
        return encode_image(params.layout, self.fields, CONFIG_MAGIC, CONFIG_VERSION)


def test_hand_made_images_cannot_hang_or_escape():
    memory = random_memory(random.Random(6), range(0x100, 0x140))
    # stride 0 would never finish: a fault, still a done
    stuck = RawImage([{"start": 0, "stop": 4, "stride": 0}], offset=10)
    result = simulate(TINY, stuck, SEGMENTS, memory)
    assert result["fault"] and result["fault_addr"] == 10 and result["dones"] == 1 and not result["requests"]
    # stop <= start: the counter runs once at its start value, and the check uses that value
    once = RawImage([{"start": 9, "stop": 3, "stride": 1}, {"start": 0, "stop": 8, "stride": 4}], offset=1)
    result = simulate(TINY, once, SEGMENTS, memory)
    assert not result["fault"] and result["vout"] == [(memory[0x102] >> 256) & (2**128 - 1),
                                                      (memory[0x103] >> 256) & (2**128 - 1)]
    escape = RawImage([{"start": 250, "stop": 3, "stride": 1}, {"start": 0, "stop": 8, "stride": 4}],
                      offset=3)
    result = simulate(TINY, escape, SEGMENTS, memory)
    assert result["fault"] and result["fault_addr"] == 257 and not result["requests"]


# ------------------------------------------------------------------ outstanding requests, back-pressure

def test_outstanding_limit_under_vout_back_pressure():
    """One line per vector and a mostly stalled vout: never more than ``outstanding`` lines are
    held, the response buffer never overflows and nothing is lost."""
    params = AgcuParams("tiny", addr_bits=23, outstanding=4)
    memory = random_memory(random.Random(5), range(0x100, 0x140))
    config = AgcuConfig("load", 0, [Counter(0, 120, 5)])
    result = simulate(params, config, SEGMENTS, memory, latency=(1, 3), req_stall=0, vout_stall=0.85,
                      seed=9, max_cycles=20000)
    expect_run(params, config, SEGMENTS, memory, result)
    assert result["max_inflight"] <= 4
    # with memory slower than the credit loop the limit is reached
    result = simulate(params, config, SEGMENTS, memory, latency=(12, 12), req_stall=0, vout_stall=0)
    expect_run(params, config, SEGMENTS, memory, result)
    assert result["max_inflight"] == 4


# ------------------------------------------------------------------ abort

def abort_and_rerun(params, config, segments, memory, *, vin=(), abort_when=3, hold=True, seed=0):
    """Start ``config``; once the memory holds ``abort_when`` unanswered requests, raise ``abort_run``
    and keep it high until ``busy`` falls (``hold``, as the launch controller does, at least two
    cycles) or for one cycle; then load ``config`` again, without rewriting the segment table, and
    run it to its done.

    Returns what happened around the abort and the second run's vectors, requests and memory
    (with the memory as it was when the second run started, for the golden model).
    """
    dut = AddressGenerationUnit(params)
    mem = dict(memory)
    rng = random.Random(seed)
    out = {"vout": [], "requests": [], "dones": []}
    state = {"cycle": 0, "queue": 0, "phase": "first"}

    async def memory_model(ctx):
        req, resp = dut.mem.req, dut.mem.resp
        queue = deque()
        cycle = last_due = 0
        while True:
            ctx.set(req.ready, rng.random() >= 0.2)
            if queue and queue[0][0] <= cycle:
                ctx.set(resp.valid, 1)
                ctx.set(resp.payload, queue[0][1])
            else:
                ctx.set(resp.valid, 0)
            _, _, rv, rr, rp, sv = await ctx.tick().sample(req.valid, req.ready, req.payload, resp.valid)
            cycle += 1
            if sv:
                queue.popleft()
            if rv and rr:
                line, write, mask, data = int(rp.addr), int(rp.write), int(rp.mask), value_of(rp.data)
                out["requests"].append((state["phase"], (line, bool(write), mask)))
                payload = _answer(mem, line, write, mask, data)
                last_due = max(last_due, cycle + rng.randint(6, 14))   # slow: requests pile up
                queue.append((last_due, payload))
            state["queue"] = len(queue)

    async def consumer(ctx):
        while True:
            ctx.set(dut.vout.ready, rng.random() >= 0.5)
            _, _, valid, ready, payload, done = await ctx.tick().sample(dut.vout.valid, dut.vout.ready,
                                                                        dut.vout.payload, dut.done)
            if valid and ready:
                out["vout"].append((state["phase"], value_of(payload)))
            if done:
                out["dones"].append(state["phase"])

    async def producer(ctx):
        for phase in ("first", "second"):
            while state["phase"] != phase:
                await ctx.tick()
            for vector in vin:
                if state["phase"] != phase:
                    break
                while rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.vin.valid, 1)
                ctx.set(dut.vin.payload, vector_words(vector, params.lanes))
                await ctx.tick().until(dut.vin.ready | (state["phase"] != phase))
                ctx.set(dut.vin.valid, 0)

    async def control(ctx):
        for segment in segments:
            await stream_put(ctx, dut.seg, segment.fields(params))

        async def run():
            for word in config.encode(params):
                await stream_put(ctx, dut.cfg, word)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)

        await run()
        while state["queue"] < abort_when:
            await ctx.tick()
        out["queue_at_abort"] = state["queue"]
        state["phase"] = "aborting"      # a request may still be taken in the abort's first cycle
        ctx.set(dut.abort_run, 1)
        cycles = 0
        while True:
            await ctx.tick()
            state["phase"] = "abort"
            if not hold:
                ctx.set(dut.abort_run, 0)
            cycles += 1
            out.setdefault("vout_valid_in_abort", 0)
            out["vout_valid_in_abort"] |= ctx.get(dut.vout.valid) & (cycles > 1)
            if cycles >= 2 and not ctx.get(dut.busy):
                break
            assert cycles < 200, "the AGCU stayed busy after the abort"
        out["abort_cycles"] = cycles
        out["queue_when_idle"] = state["queue"]
        ctx.set(dut.abort_run, 0)
        await ctx.tick()
        out["after_abort"] = {k: ctx.get(getattr(dut, k)) for k in ("configured", "fault", "busy")}
        for _ in range(20):                         # nothing more comes out of the aborted run
            await ctx.tick()
        out["memory_at_rerun"] = dict(mem)
        state["phase"] = "second"
        await run()
        cycles = 0
        while "second" not in out["dones"]:
            await ctx.tick()
            cycles += 1
            assert cycles < 4000, "the run after the abort did not finish"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(memory_model, background=True)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(control)
    sim.run()
    out["memory"] = mem
    return out


@pytest.mark.parametrize("hold", [True, False], ids=["held", "pulse"])
@pytest.mark.parametrize("direction", ["load", "store"])
def test_abort_drops_the_run_and_waits_for_its_responses(direction, hold):
    """An abort while the memory holds several unanswered requests: no ``done``, nothing more
    issued or offered, ``busy`` until the last response came (and was dropped), the configuration
    cleared and the segment table kept; the same program loaded again then runs exactly as the
    golden model says, with no stale line in its output. ``abort_run`` held until ``busy`` falls (the
    launch controller) or a one-cycle pulse (the responses are then dropped in DRAIN)."""
    rng = random.Random(direction)
    memory = random_memory(rng, range(0x100, 0x140))
    config = AgcuConfig(direction, 0, [Counter(0, 120, 5)], offset=2)      # one line per vector
    vin = [rng.getrandbits(32 * TINY.lanes) for _ in range(24)] if direction == "store" else []
    out = abort_and_rerun(TINY, config, SEGMENTS, memory, vin=vin, hold=hold, seed=len(direction))
    assert out["queue_at_abort"] >= 3
    assert out["abort_cycles"] > 2, "the abort did not wait for the memory's answers"
    assert out["queue_when_idle"] == 0, "the AGCU went idle with responses still to come"
    assert out["dones"] == ["second"], f"done pulses: {out['dones']}"
    assert not out["vout_valid_in_abort"]
    assert out["after_abort"] == {"configured": 0, "fault": 0, "busy": 0}
    assert not [r for phase, r in out["requests"] if phase == "abort"], "a request after the abort"
    golden = run_golden(config, TINY, SEGMENTS, out["memory_at_rerun"], vin=vin)
    assert [r for phase, r in out["requests"] if phase == "second"] == \
        [(r.line, r.write, r.mask) for r in golden.requests]
    assert [v for phase, v in out["vout"] if phase == "second"] == golden.vout
    assert out["memory"] == golden.memory


# ------------------------------------------------------------------ throughput

def test_one_vector_per_cycle_when_memory_keeps_up():
    memory = random_memory(random.Random(3), range(0x100, 0x140))
    load = AgcuConfig("load", 0, [Counter(0, 96)])
    result = simulate(TINY, load, SEGMENTS, memory, latency=(4, 4), req_stall=0, vout_stall=0)
    cycles = result["vout_cycles"]
    assert len(cycles) == 96 and cycles[-1] - cycles[0] == 95
    store = AgcuConfig("store", 0, [Counter(0, 96)])
    vin = list(range(96))
    result = simulate(TINY, store, SEGMENTS, memory, vin=vin, latency=(4, 4), req_stall=0, vin_gap=0)
    cycles = result["vin_cycles"]
    assert len(cycles) == 96 and cycles[-1] - cycles[0] == 95
    expect_run(TINY, store, SEGMENTS, memory, result, vin=vin)


@pytest.mark.parametrize("preset", ["small", "plasticine"])
def test_other_vector_widths(preset):
    params = AgcuParams(preset, addr_bits=20, segments=2, outstanding=4)
    segments = [Segment(1, base=0x40, bound=32)]
    rng = random.Random(preset)
    memory = random_memory(rng, range(0x40, 0x60))
    load = AgcuConfig("load", 1, [Counter(0, 5), Counter(0, 24, 8)], offset=3)
    result = simulate(params, load, segments, memory, seed=5)
    expect_run(params, load, segments, memory, result)
    store = AgcuConfig("store", 1, [Counter(0, 7)], offset=1)
    vin = [rng.getrandbits(32 * params.lanes) for _ in range(7)]
    result = simulate(params, store, segments, memory, vin=vin, seed=6)
    expect_run(params, store, segments, memory, result, vin=vin)


# ------------------------------------------------------------------ configuration and parameters

def test_config_round_trip():
    config = AgcuConfig("store", 3, [Counter(1, 9, 2), Counter(0, 64, 16), Counter(5, 6)], offset=123456,
                        base_from_scalar=True)
    words = config.encode(TINY)
    assert words[0] >> 16 == CONFIG_MAGIC and len(words) == 1 + TINY.config_words
    assert AgcuConfig.decode(words, TINY) == config


@pytest.mark.parametrize("config, message", [
    (AgcuConfig("copy"), "direction must be 'load' or 'store'"),
    (AgcuConfig("load", 4), r"segment must be an index in \[0, 3\]"),
    (AgcuConfig("load", 0, [Counter(0, 2)] * 4), "4 counters given, this unit has 3"),
    (AgcuConfig("load", 0, []), "at least one counter"),
    (AgcuConfig("load", 0, [Counter(0, 1 << 16)]), "counters are 16 bits"),
    (AgcuConfig("load", 0, offset=1 << 32), "offset must be in"),
    (AgcuConfig("load", 0, offset=-1), "offset must be in"),
    (AgcuConfig("load", 0, base_from_scalar=1), "base_from_scalar must be a bool"),
])
def test_config_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        config.encode(TINY)


def test_decode_refuses_foreign_images():
    words = AgcuConfig().encode(TINY)
    with pytest.raises(ConfigError, match="not a AGCU configuration"):
        AgcuConfig.decode([0x9D0E0100 | (len(words) - 1), *words[1:]], TINY)
    with pytest.raises(ConfigError, match="body words"):
        AgcuConfig.decode(words[:-1], TINY)


@pytest.mark.parametrize("segment, message", [
    (Segment(4, 0, 1), r"segment index must be in \[0, 3\]"),
    (Segment(0, 1 << 23, 1), "base must be a line address"),
    (Segment(0, (1 << 23) - 4, 5), r"bound must be in \[0, 4\]"),
    (Segment(0, 0, 1, read=1), "read must be a bool"),
])
def test_segment_errors(segment, message):
    with pytest.raises(ConfigError, match=message):
        segment.payload(TINY)


def test_segment_payload_layout():
    value = Segment(2, base=0x1234, bound=0x80, read=True, write=False).payload(TINY)
    index_bits, addr_bits = TINY.index_bits, TINY.addr_bits
    assert value & 3 == 2
    assert (value >> index_bits) & ((1 << addr_bits) - 1) == 0x1234
    assert (value >> (index_bits + addr_bits)) & ((1 << (addr_bits + 1)) - 1) == 0x80
    assert (value >> (index_bits + 2 * addr_bits + 1)) & 3 == 0b01


@pytest.mark.parametrize("lanes", [1, 32])
def test_params_refuse_vector_widths(lanes):
    preset = get_preset("tiny").replace(name="odd", lanes=lanes)
    with pytest.raises(ValueError, match=f"preset 'odd' has {lanes} lanes"):
        AgcuParams(preset, addr_bits=20)


@pytest.mark.parametrize("kwargs, message", [
    ({"addr_bits": 0}, r"addr_bits must be an int in \[1, 58\]"),
    ({"addr_bits": 23.0}, r"addr_bits must be an int"),
    ({"addr_bits": 23, "segments": 0}, r"segments must be an int in \[1, 16\]"),
    ({"addr_bits": 23, "outstanding": 1}, r"outstanding must be an int in \[2, 256\]"),
])
def test_params_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgcuParams("tiny", **kwargs)


def test_unit_needs_params():
    with pytest.raises(TypeError, match="params must be an AgcuParams"):
        AddressGenerationUnit("tiny")


def test_converts_to_verilog():
    text = verilog.convert(AddressGenerationUnit(AgcuParams("tiny", addr_bits=23)), name="agcu")
    assert "module agcu" in text and "mem__req__payload" in text
