"""The network and launch controller in Amaranth's simulator (fast; no Verilog simulator needed).

The ``tiny`` tile with ``units="none"`` (four switches, every unit site an open pin):
every way the launch controller can refuse an image or command, with the status it
must report and the proof that nothing was configured (a payload offered afterwards
goes nowhere); a multicast under random stalls at the source and at each sink;
the hardware CRC network against zlib; and the token counter.
"""

from __future__ import annotations

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hdl.counters import Counter
from hdl.kernel_image import Kernel, Route
from hdl.launch import Command, LaunchController, LaunchError, LaunchState, command_word
from hdl.network.crc import CRC_INIT, crc32_words, crc_result_value, crc_update_value
from hdl.pmu import AddressProgram, PmuConfig
from hdl.pmu.config import CONFIG_MAGIC as PMU_MAGIC
from hdl.stream import TokenCounter
from hdl.tile import Tile, TileParams
from sim.pysim import stream_get, stream_put

PARAMS = TileParams("tiny", units="none", hierarchical=False)  # Amaranth simulates no Instances
LANES = PARAMS.preset.lanes


def lanes_of(value: int) -> list[int]:
    return [(value >> (32 * k)) & 0xFFFFFFFF for k in range(LANES)]


def value_of(view) -> int:
    return view.as_value().value if hasattr(view, "as_value") else int(view)


def route_kernel():
    return Kernel(PARAMS, routes=[Route("agcu_w0.vout", ["pmu_1_0.vin"])])


def record(address: int, body: list[int]) -> list[int]:
    head = (address << 16) | len(body)
    return [head, *body, crc32_words([head, *body])]


def run_tile(host_words, *, probe_payload=True, cycles=400):
    """Send ``host_words``; then offer one payload on agcu_w0.vout; return status and what arrived."""
    dut = Tile(PARAMS)
    out = {}

    async def host(ctx):
        for w in host_words:
            await stream_put(ctx, dut.host, w)
        for _ in range(12):
            await ctx.tick()
        out["status"] = {k: ctx.get(getattr(dut, k)) for k in ("state", "error", "error_unit")}
        if probe_payload:
            ctx.set(dut.agcu_w0_vout.valid, 1)
            ctx.set(dut.agcu_w0_vout.payload, lanes_of(0x1234))
            await ctx.tick()
            ctx.set(dut.agcu_w0_vout.valid, 0)
            ctx.set(dut.pmu_1_0_vin.ready, 1)
            arrived = 0
            for _ in range(40):
                await ctx.tick()
                arrived += ctx.get(dut.pmu_1_0_vin.valid)
            out["arrived"] = arrived

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.run_until(cycles * 1e-8 + len(host_words) * 2e-8)
    return out


def load(image):
    return [command_word(Command.LOAD, len(image)), *image]


def test_good_image_loads_and_routes():
    out = run_tile(load(route_kernel().image()))
    assert out["status"] == {"state": LaunchState.LOADED, "error": 0, "error_unit": 0}
    assert out["arrived"] == 1


def _refusals():
    k = route_kernel()
    image = k.image()
    first = image[0] >> 16
    fg = k.fg
    pmu_address = fg.address_of("pmu_1_0")  # a unit site with no unit when units="none"
    switch_words = image[1:1 + (image[0] & 0xFFFF)]
    flipped = list(image)
    flipped[2] ^= 1 << 5
    pmu_image = PmuConfig(write=AddressProgram([Counter(0, 8, 4)])).encode(PARAMS.pmu)
    assert pmu_image[0] >> 16 == PMU_MAGIC
    return [
        ("crc", flipped, LaunchError.CRC, first),
        ("absent endpoint", record(pmu_address, [1, 2]) + image, LaunchError.BAD_ADDRESS, pmu_address),
        ("address out of range", record(999, [1]), LaunchError.BAD_ADDRESS, 999),
        ("empty record", record(first, []) + image, LaunchError.BAD_RECORD, first),
        ("twice", image + record(first, switch_words), LaunchError.DUPLICATE, first),
        ("truncated", image[:-1], LaunchError.TRUNCATED, fg.address_of((1, 0))),  # the last record
        ("wrong kind", image + record(fg.address_of((1, 1)), pmu_image), LaunchError.UNIT_REFUSED,
         fg.address_of((1, 1))),
    ]


@pytest.mark.parametrize("name, image, error, unit", _refusals(), ids=[r[0] for r in _refusals()])
def test_refused_images_configure_nothing(name, image, error, unit):
    out = run_tile(load(image))
    status = out["status"]
    assert status["state"] == LaunchState.REFUSED and status["error"] == error, status
    if unit is not None:
        assert status["error_unit"] == unit, status
    assert out["arrived"] == 0, f"{name}: a refused image still routed a payload"


@pytest.mark.parametrize("words, error", [
    ([0x12000000], LaunchError.BAD_COMMAND),
    ([command_word(Command.EXEC, 1)], LaunchError.NOT_LOADED),
    ([command_word(Command.ARGS, 5)], LaunchError.BAD_COMMAND),
    ([command_word(Command.EXEC, 0)], LaunchError.BAD_COMMAND),
])
def test_refused_commands(words, error):
    out = run_tile(words, probe_payload=False)
    assert out["status"]["state"] == LaunchState.REFUSED and out["status"]["error"] == error


def test_multicast_under_random_stalls_keeps_order_at_every_sink():
    k = Kernel(PARAMS, routes=[Route("agcu_w0.vout", ["pmu_1_0.vin", "agcu_e1.vin", "pcu_1_1.vin1"]),
                               Route("agcu_e1.sout", ["agcu_w0.sin"])])
    dut = Tile(PARAMS)
    rng = random.Random(3)
    data = [rng.getrandbits(32 * LANES) for _ in range(30)]
    scalars = [rng.getrandbits(32) for _ in range(30)]
    got = {"pmu_1_0_vin": [], "agcu_e1_vin": [], "pcu_1_1_vin1": [], "agcu_w0_sin": []}
    loaded = {}

    async def host(ctx):
        for w in load(k.image()):
            await stream_put(ctx, dut.host, w)
        for _ in range(8):
            await ctx.tick()
        loaded["state"] = ctx.get(dut.state)
        loaded["go"] = True

    def source(port, values, vector):
        async def testbench(ctx):
            while not loaded.get("go"):
                await ctx.tick()
            for v in values:
                await stream_put(ctx, getattr(dut, port), lanes_of(v) if vector else v, rng=rng, stall_p=0.3)
        return testbench

    def sink(port, count):
        async def testbench(ctx):
            for _ in range(count):
                got[port].append(value_of(await stream_get(ctx, getattr(dut, port), rng=rng, stall_p=0.6)))
        return testbench

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(source("agcu_w0_vout", data, True))
    sim.add_testbench(source("agcu_e1_sout", scalars, False))
    for port in got:
        sim.add_testbench(sink(port, 30))
    sim.run_until(2500e-8)
    assert loaded["state"] == LaunchState.LOADED
    for port in ("pmu_1_0_vin", "agcu_e1_vin", "pcu_1_1_vin1"):
        assert got[port] == data, port
    assert got["agcu_w0_sin"] == scalars


class _CrcHarness(wiring.Component):
    def __init__(self):
        super().__init__({"state": In(32), "word": In(32), "update": Out(32), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.update.eq(crc_update_value(self.state, self.word)),
                     self.result.eq(crc_result_value(self.state))]
        return m


def test_hardware_crc_network_matches_zlib():
    dut = _CrcHarness()
    rng = random.Random(9)
    words = [rng.getrandbits(32) for _ in range(20)]

    async def bench(ctx):
        state = CRC_INIT
        for n, w in enumerate(words, 1):
            ctx.set(dut.state, state)
            ctx.set(dut.word, w)
            await ctx.delay(1e-9)
            state = ctx.get(dut.update)
            ctx.set(dut.state, state)
            await ctx.delay(1e-9)
            assert ctx.get(dut.result) == crc32_words(words[:n])

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def test_token_counter_keeps_every_pulse_under_back_pressure():
    dut = TokenCounter(width=4)
    rng = random.Random(2)
    pulses = [rng.random() < 0.6 for _ in range(200)]
    taken = {"n": 0}

    async def pulser(ctx):
        for p in pulses:
            ctx.set(dut.pulse, int(p))
            await ctx.tick()
        ctx.set(dut.pulse, 0)

    async def taker(ctx):
        for _ in range(400):
            ctx.set(dut.o.ready, int(rng.random() < 0.7))
            taken["n"] += ctx.get(dut.o.valid) & ctx.get(dut.o.ready)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(pulser)
    sim.add_testbench(taker)
    sim.run()
    assert taken["n"] == sum(pulses)
    with pytest.raises(ValueError):
        TokenCounter(width=0)


def test_token_counter_clear_drops_pending_tokens():
    """Tokens held under back-pressure are gone after ``clear``; counting starts again from zero."""
    dut = TokenCounter(width=4)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.pulse, 1)
        for _ in range(5):
            await ctx.tick()
        ctx.set(dut.pulse, 0)
        seen["before"] = ctx.get(dut.o.valid)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        seen["after"] = ctx.get(dut.o.valid)
        ctx.set(dut.pulse, 1)          # two new tokens, then count what comes out
        await ctx.tick()
        await ctx.tick()
        ctx.set(dut.pulse, 0)
        ctx.set(dut.o.ready, 1)
        n = 0
        for _ in range(10):
            n += ctx.get(dut.o.valid)
            await ctx.tick()
        seen["out"] = n

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"before": 1, "after": 0, "out": 2}, seen


# ---------------------------------------------------------------------------- ABORT
def _launch_image():
    """Records for endpoints 0 and 2 of a three-address controller (address 1 has no endpoint)."""
    return record(0, [0x11, 0x12]) + record(2, [0x21, 0x22, 0x23])


def _abort_bench(present=(True, False, True)):
    """A bare launch controller whose endpoints always take words and report ``configured``."""
    dut = LaunchController(list(present))

    async def endpoints(ctx):
        for ep in dut.ep_cfg:
            ctx.set(ep.ready, 1)
        ctx.set(dut.ep_configured, (1 << len(present)) - 1)

    return dut, endpoints


def test_abort_stops_a_running_kernel_and_clears_every_endpoint():
    """EXEC whose done tokens never come; only ABORT is taken while RUNNING. ABORT drops the
    pending argument and start offers, holds ``ep_abort`` and ``ep_clear`` until no unit is busy,
    then reports ABORTED with no error; EXEC is refused until a new LOAD, which runs normally."""
    dut, endpoints = _abort_bench()
    seen = {}

    async def bench(ctx):
        await endpoints(ctx)
        for w in load(_launch_image()) + [command_word(Command.ARGS, 2), 0xA, 0xB,
                                          command_word(Command.EXEC, 2)]:
            await stream_put(ctx, dut.host, w)
        await ctx.tick()
        assert ctx.get(dut.state) == LaunchState.RUNNING
        ctx.set(dut.arg[0].ready, 1)               # argument 0 is taken; argument 1 and start wait
        await ctx.tick()
        ctx.set(dut.arg[0].ready, 0)
        ctx.set(dut.done.valid, 1)                 # one done token of the two
        await ctx.tick()
        ctx.set(dut.done.valid, 0)
        seen["pending"] = (ctx.get(dut.arg[0].valid), ctx.get(dut.arg[1].valid), ctx.get(dut.start.valid))
        # while RUNNING only ABORT is taken (the others wait for the end of the run)
        ctx.set(dut.host.valid, 1)
        refused_ready = {}
        for cmd in (Command.LOAD, Command.ARGS, Command.EXEC):
            ctx.set(dut.host.payload, command_word(cmd, 1))
            refused_ready[cmd.name] = ctx.get(dut.host.ready)
        seen["ready_while_running"] = refused_ready
        ctx.set(dut.host.payload, command_word(Command.ABORT))
        seen["abort_ready"] = ctx.get(dut.host.ready)
        ctx.set(dut.busy, 1)                       # some unit is still busy after the abort
        await ctx.tick()
        ctx.set(dut.host.valid, 0)
        cycles_at_abort = ctx.get(dut.cycles)
        trace = []
        for _ in range(6):
            ctx.set(dut.done.valid, 1)             # late tokens are not counted
            trace.append((ctx.get(dut.ep_abort), ctx.get(dut.ep_clear), ctx.get(dut.state),
                          ctx.get(dut.arg[1].valid), ctx.get(dut.start.valid),
                          sum(ctx.get(ep.valid) for ep in dut.ep_cfg)))
            await ctx.tick()
        ctx.set(dut.done.valid, 0)
        seen["while_busy"] = trace
        ctx.set(dut.busy, 0)
        for _ in range(3):
            await ctx.tick()
        seen["after"] = {k: ctx.get(getattr(dut, k)) for k in ("state", "error", "error_unit", "tokens",
                                                                "ep_abort", "ep_clear")}
        seen["cycles_frozen"] = ctx.get(dut.cycles) == cycles_at_abort
        await stream_put(ctx, dut.host, command_word(Command.EXEC, 1))
        await ctx.tick()
        seen["exec_after_abort"] = (ctx.get(dut.state), ctx.get(dut.error))
        # a new kernel loads and runs without a reset
        for w in load(_launch_image()) + [command_word(Command.EXEC, 1)]:
            await stream_put(ctx, dut.host, w)
        await ctx.tick()
        seen["rerun_offers"] = (ctx.get(dut.start.valid), ctx.get(dut.arg[0].valid))
        ctx.set(dut.start.ready, 1)
        ctx.set(dut.done.valid, 1)
        await ctx.tick()
        ctx.set(dut.done.valid, 0)
        for _ in range(2):
            await ctx.tick()
        seen["rerun"] = (ctx.get(dut.state), ctx.get(dut.tokens))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(2000e-8)              # bounded: a controller that never takes a word fails, not hangs
    assert "rerun" in seen, f"the bench did not get through (a host word was never taken): {seen}"
    assert seen["pending"] == (0, 1, 1), seen["pending"]
    assert seen["ready_while_running"] == {"LOAD": 0, "ARGS": 0, "EXEC": 0}, seen["ready_while_running"]
    assert seen["abort_ready"] == 1
    # every cycle of the abort: endpoints cleared and units stopped, the old offers gone, no
    # endpoint offered a word, the state still RUNNING (the abort is not finished while busy)
    running = int(LaunchState.RUNNING)
    assert seen["while_busy"] == [(1, 1, running, 0, 0, 0)] * 6, seen["while_busy"]
    assert seen["after"] == {"state": LaunchState.ABORTED, "error": LaunchError.NONE, "error_unit": 0,
                             "tokens": 1, "ep_abort": 0, "ep_clear": 0}, seen["after"]
    assert seen["cycles_frozen"]
    assert seen["exec_after_abort"] == (LaunchState.REFUSED, LaunchError.NOT_LOADED)
    assert seen["rerun_offers"] == (1, 1), "the rerun's start and its (kept) argument 0 are offered"
    assert seen["rerun"] == (LaunchState.DONE, 1)


@pytest.mark.parametrize("before", ["empty", "loaded", "done", "refused"])
def test_abort_between_commands_clears_for_two_cycles(before):
    """ABORT in any state between commands: ``ep_abort`` and ``ep_clear`` for exactly two cycles
    when no unit is busy, then ABORTED with no error (a refusal's error is cleared)."""
    dut, endpoints = _abort_bench()
    prologue = {"empty": [], "loaded": load(_launch_image()),
                "done": load(_launch_image()) + [command_word(Command.EXEC, 1)],
                "refused": [command_word(Command.EXEC, 0)]}[before]
    seen = {}

    async def bench(ctx):
        await endpoints(ctx)
        ctx.set(dut.start.ready, 1)
        ctx.set(dut.done.valid, 1)                 # a kernel run by "done" ends at once
        for w in prologue:
            await stream_put(ctx, dut.host, w)
        for _ in range(8):
            await ctx.tick()
        ctx.set(dut.done.valid, 0)
        seen["before"] = ctx.get(dut.state)
        await stream_put(ctx, dut.host, command_word(Command.ABORT))
        pulses = []
        for _ in range(5):
            pulses.append((ctx.get(dut.ep_abort), ctx.get(dut.ep_clear)))
            await ctx.tick()
        seen["pulses"] = pulses
        seen["after"] = (ctx.get(dut.state), ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(1000e-8)
    assert "after" in seen, f"the bench did not get through (a host word was never taken): {seen}"
    want = {"empty": LaunchState.EMPTY, "loaded": LaunchState.LOADED, "done": LaunchState.DONE,
            "refused": LaunchState.REFUSED}[before]
    assert seen["before"] == want, seen
    assert seen["pulses"] == [(1, 1), (1, 1), (0, 0), (0, 0), (0, 0)], seen["pulses"]
    assert seen["after"] == (LaunchState.ABORTED, LaunchError.NONE), seen["after"]


def test_abort_unroutes_a_loaded_tile():
    """On the tile (switches only): after ABORT a loaded route carries nothing."""
    out = run_tile(load(route_kernel().image()) + [command_word(Command.ABORT)])
    assert out["status"] == {"state": LaunchState.ABORTED, "error": 0, "error_unit": 0}, out["status"]
    assert out["arrived"] == 0, "a route survived the ABORT"


def test_command_word_checks_its_arguments():
    assert command_word(Command.ABORT) == 0xA4 << 24
    with pytest.raises(TypeError, match="hdl.launch.Command"):
        command_word(0xA4, 0)
    with pytest.raises(ValueError, match="24 bits"):
        command_word(Command.EXEC, 1 << 24)
