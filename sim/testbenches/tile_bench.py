"""cocotb testbench for a tile (:class:`hdl.tile.Tile`): host commands plus traffic on open pins.

The phase file (``OPENRDU_TILE_PHASES``, JSON written by :func:`sim.tile.run_tile_phases`)
lists the tile's open stream ports and the phases to run in order::

    {"inputs": [...], "outputs": [...], "phases": [{
        "name": "...", "host": [command words],
        "sources": {"agcu_w0_vout": [payloads]}, "sinks": {"agcu_e0_vin": count},
        "valid_p": 1.0, "ready_p": 0.5, "until_state": [5, 3], "timeout": 20000,
        "quiet_cycles": 0}]}

Each phase sends its host words, drives its sources and takes from its sinks with random
stalls, waits for the sinks' counts and (when given) for ``state`` to reach one of
``until_state``; then, for ``quiet_cycles``, it keeps every sink ready and counts any
payload that still arrives on an open output. The bench records, per phase, what each
sink received and the cycle of each transfer at the sources and sinks, the launch
status (state, error, error_unit, cycles, tokens), whether any unit was busy, which units
were busy and at which pins a payload waited at the end of the phase (``unit_busy`` and
``pin_waiting`` as integers), and the stray payloads; the Python test compares them with
golden models.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from sim.cocotb_streams import StreamSource, start_clock_and_reset
from sim.metrics import record


class _Clock:
    def __init__(self, dut):
        self.n = 0
        self.dut = dut

    async def run(self):
        while True:
            await FallingEdge(self.dut.clk)
            self.n += 1


async def _source(dut, port, payloads, p, rng, clock, stamps):
    valid, ready, data = (getattr(dut, f"{port}__{s}") for s in ("valid", "ready", "payload"))
    index, offering = 0, False
    while index < len(payloads):
        if not offering and rng.random() < p:
            offering = True
            data.value = payloads[index]
        valid.value = int(offering)
        await FallingEdge(dut.clk)
        if offering and ready.value == 1:
            stamps.append(clock.n)
            index += 1
            offering = False
        await RisingEdge(dut.clk)
    valid.value = 0


async def _sink(dut, port, count, p, rng, clock, got, stamps, timeout):
    valid, ready, data = (getattr(dut, f"{port}__{s}") for s in ("valid", "ready", "payload"))
    waited = 0
    while len(got) < count:
        r = rng.random() < p
        ready.value = int(r)
        await FallingEdge(dut.clk)
        if r and valid.value == 1:
            got.append(int(data.value))
            stamps.append(clock.n)
        await RisingEdge(dut.clk)
        waited += 1
        if waited > timeout:
            break
    ready.value = 0


def _status(dut) -> dict:
    return {k: getattr(dut, k).value.to_unsigned()
            for k in ("state", "error", "error_unit", "cycles", "tokens")}


@cocotb.test()
async def tile_phases(dut):
    """Run every phase of the phase file; record what came out (the test checks it)."""
    with open(os.environ["OPENRDU_TILE_PHASES"]) as f:
        spec = json.load(f)
    rng = random.Random(cocotb.RANDOM_SEED)
    for port in spec["inputs"]:
        getattr(dut, f"{port}__valid").value = 0
        getattr(dut, f"{port}__payload").value = 0
    for port in spec["outputs"]:
        getattr(dut, f"{port}__ready").value = 0
    dut.host__valid.value = 0
    dut.host__payload.value = 0
    await start_clock_and_reset(dut)
    clock = _Clock(dut)
    ticker = cocotb.start_soon(clock.run())
    results = {}
    for index, phase in enumerate(spec["phases"]):
        name = phase.get("name", f"phase{index}")
        timeout = phase.get("timeout", 20000)
        begin = clock.n
        busy_seen = {"any": False}

        async def watch_busy(busy_seen=busy_seen):
            while True:
                await FallingEdge(dut.clk)
                if int(dut.unit_busy.value) != 0:
                    busy_seen["any"] = True

        watcher = cocotb.start_soon(watch_busy())
        sent = {port: [] for port in phase.get("sources", {})}
        got = {port: [] for port in phase.get("sinks", {})}
        arrived = {port: [] for port in phase.get("sinks", {})}
        tasks = []
        for port, payloads in phase.get("sources", {}).items():
            tasks.append(cocotb.start_soon(_source(dut, port, payloads, phase.get("valid_p", 1.0), rng, clock,
                                                   sent[port])))
        for port, count in phase.get("sinks", {}).items():
            tasks.append(cocotb.start_soon(_sink(dut, port, count, phase.get("ready_p", 1.0), rng, clock,
                                                 got[port], arrived[port], timeout)))
        host_cycle = clock.n
        if phase.get("host"):
            sender = cocotb.start_soon(StreamSource(dut, "host").send(phase["host"]))
            for _ in range(timeout):
                if sender.done():
                    break
                await RisingEdge(dut.clk)
            else:
                raise AssertionError(f"{name}: the tile took no host word for {timeout} cycles "
                                     f"(state {dut.state.value}, still running a kernel?)")
        for task in tasks:
            await task
        wanted = phase.get("until_state")
        waited = 0
        while wanted and dut.state.value.to_unsigned() not in wanted and waited < timeout:
            await RisingEdge(dut.clk)
            waited += 1
        stray = {}
        quiet = phase.get("quiet_cycles", 0)
        if quiet:
            for port in spec["outputs"]:
                getattr(dut, f"{port}__ready").value = 1
            for _ in range(quiet):
                await FallingEdge(dut.clk)
                for port in spec["outputs"]:
                    if getattr(dut, f"{port}__valid").value == 1:
                        stray[port] = stray.get(port, 0) + 1
                await RisingEdge(dut.clk)
            for port in spec["outputs"]:
                getattr(dut, f"{port}__ready").value = 0
        watcher.cancel()
        await FallingEdge(dut.clk)
        results[name] = {
            "status": _status(dut), "received": got,
            "sent_at": {p: [c - host_cycle for c in v] for p, v in sent.items()},
            "arrived_at": {p: [c - host_cycle for c in v] for p, v in arrived.items()},
            "busy_seen": busy_seen["any"], "stray": stray, "phase_cycles": clock.n - begin,
            "busy_at_end": int(dut.unit_busy.value), "waiting_at_end": int(dut.pin_waiting.value),
        }
        await RisingEdge(dut.clk)
    ticker.cancel()
    record("tile_phases", **results)
