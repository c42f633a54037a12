"""MemoryCrossbar in Amaranth's simulator: order, data, throughput, argument errors.

Channels are modelled in the testbench (in-order, random latency and random back-pressure);
each port's responses are checked against a golden memory updated in issue order.
"""

from __future__ import annotations

import random
from collections import deque

import pytest

from hdl.memctrl.crossbar import MemoryCrossbar, channel_of, line_of
from sim.pysim import run_pysim

LINE_BITS = 512


class ChannelModel:
    """One in-order channel: takes requests when ``ready``, answers after ``latency`` cycles."""

    def __init__(self, index, channels, rng, latency, ready_p):
        self.index, self.channels, self.rng = index, channels, rng
        self.latency, self.ready_p = latency, ready_p
        self.memory: dict[int, int] = {}
        self.queue: deque = deque()  # (due cycle, response payload)
        self.last_due = 0

    def accept(self, cycle, addr, write, mask, data):
        if write:
            old = self.memory.get(addr, 0)
            for w in range(8):
                if mask >> w & 1:
                    field = ((1 << 64) - 1) << (64 * w)
                    old = (old & ~field) | (data & field)
            self.memory[addr] = old
            response = {"data": 0, "write": 1, "corrected": 0, "uncorrectable": 0}
        else:
            response = {"data": self.memory.get(addr, 0), "write": 0, "corrected": 0, "uncorrectable": 0}
        due = max(self.last_due + 1, cycle + self.rng.randint(*self.latency))
        self.last_due = due
        self.queue.append((due, response))


def _golden_apply(memory, addr, write, mask, data):
    if write:
        old = memory.get(addr, 0)
        for w in range(8):
            if mask >> w & 1:
                field = ((1 << 64) - 1) << (64 * w)
                old = (old & ~field) | (data & field)
        memory[addr] = old
        return {"data": 0, "write": 1}
    return {"data": memory.get(addr, 0), "write": 0}


def run_crossbar(dut, requests, *, seed, latencies, chan_ready_p=0.7, resp_ready_p=0.7,
                 valid_p=0.8, max_cycles=20000):
    """Drive ``requests[k]`` (lists of (addr, write, mask, data)) into port k; return stats."""
    rng = random.Random(seed)
    n, channels = dut.ports, dut.channels
    models = [ChannelModel(c, channels, random.Random(seed * 31 + c), latencies[c], chan_ready_p)
              for c in range(channels)]
    golden: dict[int, int] = {}
    expected = [deque() for _ in range(n)]
    next_req = [0] * n
    got = [0] * n
    stats = {"cycles": 0, "accepted_per_cycle": []}
    errors = []

    async def bench(ctx):
        offering = [False] * n
        cycle = 0
        total = sum(len(r) for r in requests)
        while sum(got) < total:
            assert cycle < max_cycles, f"no progress: {got} of {[len(r) for r in requests]} responses"
            for k, port in enumerate(dut.requesters):
                if not offering[k] and next_req[k] < len(requests[k]) and rng.random() < valid_p:
                    addr, write, mask, data = requests[k][next_req[k]]
                    ctx.set(port.req.payload, {"addr": addr, "write": write, "mask": mask, "data": data})
                    ctx.set(port.req.valid, 1)
                    offering[k] = True
                ctx.set(port.resp.ready, int(rng.random() < resp_ready_p))
            for c, chan in enumerate(dut.channel_ports):
                model = models[c]
                ctx.set(chan.req.ready, int(rng.random() < model.ready_p))
                if model.queue and model.queue[0][0] <= cycle:
                    ctx.set(chan.resp.valid, 1)
                    ctx.set(chan.resp.payload, model.queue[0][1])
                else:
                    ctx.set(chan.resp.valid, 0)
            accepted = 0
            for k, port in enumerate(dut.requesters):
                if ctx.get(port.req.valid) and ctx.get(port.req.ready):
                    addr, write, mask, data = requests[k][next_req[k]]
                    expected[k].append(_golden_apply(golden, addr, write, mask, data))
                    next_req[k] += 1
                    offering[k] = False
                    accepted += 1
                if ctx.get(port.resp.valid) and ctx.get(port.resp.ready):
                    resp = ctx.get(port.resp.payload)
                    want = expected[k].popleft()
                    if (resp.write, resp.data) != (want["write"], want["data"]):
                        errors.append(f"port {k} response {got[k]}: got write={resp.write} "
                                      f"data={resp.data:#x}, want {want}")
                    got[k] += 1
            for c, chan in enumerate(dut.channel_ports):
                model = models[c]
                if ctx.get(chan.req.valid) and ctx.get(chan.req.ready):
                    req = ctx.get(chan.req.payload)
                    model.accept(cycle, req.addr, req.write, req.mask, req.data)
                if ctx.get(chan.resp.valid) and ctx.get(chan.resp.ready):
                    model.queue.popleft()
            stats["accepted_per_cycle"].append(accepted)
            await ctx.tick()
            for k, port in enumerate(dut.requesters):
                if not offering[k]:
                    ctx.set(port.req.valid, 0)
            cycle += 1
        stats["cycles"] = cycle

    run_pysim(dut, bench)
    assert not errors, errors[:5]
    # the channel models saw each line at its own channel: the golden memory, split by channel
    for addr, value in golden.items():
        c, local = channel_of(addr, channels, dut.interleave_lines, dut.hashed)
        assert models[c].memory.get(local, 0) == value, f"line {addr:#x} in channel {c}"
    return stats


def random_requests(rng, ports, addr_bits, count, window=24):
    """Per port: reads and writes to a small window of lines of its own (top address bits)."""
    port_bits = max(1, (ports - 1).bit_length())
    out = []
    for k in range(ports):
        base = k << (addr_bits - port_bits)
        reqs = []
        for _ in range(count):
            addr = base + rng.randrange(window)
            write = rng.random() < 0.5
            reqs.append((addr, int(write), rng.getrandbits(8) if write else 0, rng.getrandbits(LINE_BITS)))
        out.append(reqs)
    return out


@pytest.mark.parametrize("ports,channels,depth,seed,interleave,hashed",
                         [(3, 4, 4, 1, 1, False), (2, 2, 2, 2, 1, False), (4, 8, 8, 3, 1, False),
                          (1, 1, 4, 4, 1, False), (3, 4, 4, 5, 4, True), (4, 8, 8, 6, 2, True)])
def test_each_port_gets_its_own_responses_in_order_with_the_right_data(ports, channels, depth, seed,
                                                                        interleave, hashed):
    dut = MemoryCrossbar(ports, channels, 8, reorder_depth=depth, tag_depth=8, interleave_lines=interleave,
                         hashed=hashed)
    rng = random.Random(seed)
    requests = random_requests(rng, ports, dut.addr_bits, 150)
    # one slow channel and fast ones: responses of a port arrive out of order
    latencies = [(1, 3)] * channels
    latencies[channels - 1] = (10, 30)
    run_crossbar(dut, requests, seed=seed, latencies=latencies)


def test_crossed_waits_do_not_deadlock():
    """Port 0 asks channel 1 then 0, port 1 asks channel 0 then 1, channel 1 answers late:
    a shared in-order return path deadlocks here (each waits for the other's channel)."""
    dut = MemoryCrossbar(2, 2, 8, reorder_depth=2, tag_depth=4)
    line = 1 << 200
    requests = [[(1 + 2 * i, 0, 0, line) if i % 2 == 0 else (2 * i, 0, 0, line) for i in range(40)],
                [(256 + 2 * i, 0, 0, line) if i % 2 == 0 else (257 + 2 * i, 0, 0, line) for i in range(40)]]
    run_crossbar(dut, requests, seed=5, latencies=[(1, 1), (20, 25)], chan_ready_p=1.0,
                 resp_ready_p=1.0, valid_p=1.0)


def test_ports_reach_different_channels_in_the_same_cycle():
    """Four ports streaming consecutive lines through four channels: about four requests per
    cycle in steady state (one arbiter would take one)."""
    ports = channels = 4
    dut = MemoryCrossbar(ports, channels, 10, reorder_depth=16, tag_depth=32)
    requests = [[((k << 10) + i, 0, 0, 0) for i in range(200)] for k in range(ports)]
    stats = run_crossbar(dut, requests, seed=7, latencies=[(8, 8)] * channels, chan_ready_p=1.0,
                         resp_ready_p=1.0, valid_p=1.0)
    total = sum(len(r) for r in requests)
    assert total / stats["cycles"] > 3.0, stats["cycles"]


@pytest.mark.parametrize("kwargs,message", [
    ({"ports": 0}, "ports must be an int in \\[1, 64\\], got 0"),
    ({"channels": 3}, "channels must be a power of two in \\[1, 32\\], got 3"),
    ({"channel_addr_bits": 0}, "channel_addr_bits must be an int in \\[1, 40\\], got 0"),
    ({"reorder_depth": 12}, "reorder_depth must be a power of two in \\[2, 256\\], got 12"),
    ({"tag_depth": 1}, "tag_depth must be an int in \\[2, 1024\\], got 1"),
    ({"interleave_lines": 3}, "interleave_lines must be a power of two in \\[1, 65536\\], got 3"),
    ({"interleave_lines": 512}, "interleave_lines 512 is more than a channel's 256 lines"),
])
def test_arguments_are_checked(kwargs, message):
    args = {"ports": 2, "channels": 2, "channel_addr_bits": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        MemoryCrossbar(args.pop("ports"), args.pop("channels"), args.pop("channel_addr_bits"), **args)


@pytest.mark.parametrize("channels,interleave,hashed",
                         [(8, 64, True), (4, 1, False), (2, 4, True), (1, 8, True)])
def test_address_map_is_a_bijection_that_spreads_streams(channels, interleave, hashed):
    lines = list(range(0, 1 << 14, 3)) + [(1 << 23) * k + 5 for k in range(8)]
    for line in lines:
        assert line_of(*channel_of(line, channels, interleave, hashed), channels, interleave, hashed) == line
    # a block of `interleave` lines stays in one channel at consecutive channel lines
    first = [channel_of(line, channels, interleave, hashed) for line in range(interleave)]
    assert {c for c, _ in first} == {first[0][0]}
    assert [loc for _, loc in first] == list(range(first[0][1], first[0][1] + interleave))
    if hashed and channels > 1:
        # streams a power of two apart (the same low bits) start in different channels
        starts = {channel_of(k << 20, channels, interleave, hashed)[0] for k in range(channels)}
        assert len(starts) == channels


def test_the_rtl_routes_by_the_address_map():
    """Each line reaches the channel and channel line channel_of names (hashed, 4-line blocks)."""
    dut = MemoryCrossbar(2, 4, 12, reorder_depth=8, tag_depth=8, interleave_lines=4, hashed=True)
    rng = random.Random(9)
    requests = [[(k << 13 | rng.randrange(1 << 13), 1, 0xFF, rng.getrandbits(LINE_BITS)) for _ in range(60)]
                for k in range(2)]
    run_crossbar(dut, requests, seed=9, latencies=[(1, 4)] * 4)
