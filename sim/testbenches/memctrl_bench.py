"""cocotb testbench for one memory channel: MemoryController (hdl.memctrl) + DramDevice (sim.dram).

The job (a JSON file named by ``OPENRDU_MEM_JOB``; :func:`sim.memory.run_memory_job` writes it)::

    {"timing": {"name": "HBM2-2000", "overrides": {...}}, "ecc": false, "channels": 1,
     "traffic": [{"name": "seq", "requests": [[addr, write, mask, data_hex], ...],
                  "valid_p": 1.0, "ready_p": 1.0, "timeout": 100000}, ...],
     "latency": {"miss_addr": 0, "hit_addr": 4},
     "ecc_case": {"lines": [...], "single": [[line, word, bit]], "double": [[line, word, b1, b2]]}}

Tests (each runs only when its key is present):

``traffic``   for each phase (after a reset, with fresh device models): offers the
              requests in order (random gaps ``valid_p``) and takes the responses
              (random back-pressure ``ready_p``); records each request's accept cycle,
              each response's cycle and payload, and the devices' statistics (summed
              over channels). The device models raise on any timing violation.

With ``channels`` > 1 the design is a :class:`hdl.memctrl.MemoryTier` with one
device model per ``dfi<c>`` bus. With ``ports`` (> 0) it is an
:class:`hdl.memctrl.stack.HbmStack` with ports ``port0`` … and a phase gives
``"port_requests"`` (one request list per port) instead of ``"requests"``: every port offers
and takes at once, and the record holds per-port lists.
``latency``   one read to a closed bank, then one read to the same row, on an idle
              channel; records front-end latencies and the device's ACT → data latency.
``ecc``       writes lines, flips stored bits in the device, reads them back; records
              the responses' corrected/uncorrectable flags and the controller's counters.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from hdl.memctrl.interface import request_layout, response_layout
from sim.dram import DramDevice, start_devices, stop_devices
from sim.memory import timing_from_spec
from sim.metrics import record

JOB_ENV = "OPENRDU_MEM_JOB"


def _job():
    with open(os.environ[JOB_ENV]) as f:
        return json.load(f)


def _timing(job):
    return timing_from_spec(job["timing"])


def _offsets(layout):
    return {name: (field.offset, field.width) for name, field in layout}


class Channel:
    """Clock, reset, device model and the request/response drivers of one channel."""

    def __init__(self, dut, job):
        self.dut = dut
        self.job = job
        self.timing = _timing(job)
        self.ecc = bool(job.get("ecc"))
        self.channels = int(job.get("channels", 1))
        self.ports = int(job.get("ports", 0))
        self.port_names = [f"port{k}" for k in range(self.ports)] if self.ports else ["port"]
        channel_bits = (self.channels - 1).bit_length()
        self.req_fields = _offsets(request_layout(self.timing.line_address_bits + channel_bits))
        self.resp_fields = _offsets(response_layout())
        self.cycle = 0
        self.devices = []
        self._clocked = False

    async def start(self):
        """(Re)start: reset the design and attach fresh device models."""
        dut = self.dut
        if not self._clocked:
            period_ps = round(self.timing.tck_ns * 1000)
            Clock(dut.clk, period_ps, unit="ps", period_high=period_ps // 2).start()
            cocotb.start_soon(self._count())
            self._clocked = True
        stop_devices(self.devices)
        dut.rst.value = 1
        for name in self.port_names:
            getattr(dut, f"{name}__req__valid").value = 0
            getattr(dut, f"{name}__resp__ready").value = 0
        prefixes = (["dfi"] if self.channels == 1 and not self.ports
                    else [f"dfi{c}" for c in range(self.channels)])
        # "device_overrides" gives the device model other timings than the controller's
        # (a negative test: the model must then report the violation)
        device_timing = self.timing.reduced(**self.job.get("device_overrides", {}))
        self.devices = [DramDevice(dut, device_timing, prefix=p, ecc=self.ecc, name=p) for p in prefixes]
        self.device = self.devices[0]
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        start_devices(self.devices)
        await RisingEdge(dut.clk)

    def stats(self) -> dict:
        """Device statistics, summed over channels (row hit rate over all column commands)."""
        all_stats = [d.stats() for d in self.devices]
        out = dict(all_stats[0])
        for key in ("reads", "writes", "refreshes", "row_hits", "row_misses", "violations"):
            out[key] = sum(s[key] for s in all_stats)
        columns = out["row_hits"] + out["row_misses"]
        out["row_hit_rate"] = out["row_hits"] / columns if columns else 0.0
        out["first_read_after_act"] = [v for s in all_stats for v in s["first_read_after_act"]]
        return out

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    def pack(self, addr, write, mask, data):
        f = self.req_fields
        return ((addr << f["addr"][0]) | (write << f["write"][0]) | (mask << f["mask"][0])
                | (data << f["data"][0]))

    def unpack(self, value):
        return {name: (value >> off) & ((1 << width) - 1) for name, (off, width) in self.resp_fields.items()}

    async def send(self, payloads, valid_p, rng, stamps, port="port"):
        dut = self.dut
        valid_h, ready_h = getattr(dut, f"{port}__req__valid"), getattr(dut, f"{port}__req__ready")
        payload_h = getattr(dut, f"{port}__req__payload")
        index, offering = 0, False
        while index < len(payloads):
            if not offering and (valid_p >= 1.0 or rng.random() < valid_p):
                offering = True
                payload_h.value = payloads[index]
            valid_h.value = int(offering)
            await FallingEdge(dut.clk)
            if offering and ready_h.value == 1:
                stamps.append(self.cycle)
                index += 1
                offering = False
            await RisingEdge(dut.clk)
        valid_h.value = 0

    async def receive(self, count, ready_p, rng, stamps, payloads, timeout, port="port"):
        dut = self.dut
        valid_h, ready_h = getattr(dut, f"{port}__resp__valid"), getattr(dut, f"{port}__resp__ready")
        payload_h = getattr(dut, f"{port}__resp__payload")
        waited = 0
        while len(payloads) < count:
            ready = ready_p >= 1.0 or rng.random() < ready_p
            ready_h.value = int(ready)
            await FallingEdge(dut.clk)
            if ready and valid_h.value == 1:
                stamps.append(self.cycle)
                payloads.append(payload_h.value.to_unsigned())
            await RisingEdge(dut.clk)
            waited += 1
            if waited > timeout:
                raise TimeoutError(f"{port}: {len(payloads)} of {count} responses after {waited} cycles")
        ready_h.value = 0

    async def transact(self, requests, *, valid_p=1.0, ready_p=1.0, seed=0, timeout=200_000, port="port"):
        """Run ``requests`` ([(addr, write, mask, data)]) on ``port``.

        Returns (accept cycles, response cycles, decoded responses)."""
        rng = random.Random(seed)
        payloads = [self.pack(*r) for r in requests]
        sent, got, responses = [], [], []
        sender = cocotb.start_soon(self.send(payloads, valid_p, rng, sent, port))
        await self.receive(len(payloads), ready_p, random.Random(seed + 1), got, responses, timeout, port)
        await sender
        return sent, got, [self.unpack(v) for v in responses]

    async def transact_all(self, per_port, **kwargs):
        """Run one request list on every port at once; returns one (sent, got, responses) per port."""
        seed = kwargs.pop("seed", 0)
        tasks = [cocotb.start_soon(self.transact(reqs, seed=seed + 7 * k, port=name, **kwargs))
                 for k, (name, reqs) in enumerate(zip(self.port_names, per_port, strict=True))]
        return [await task for task in tasks]


def _decode_requests(spec):
    return [(a, w, m, int(d, 16)) for a, w, m, d in spec]


@cocotb.test()
async def traffic(dut):
    job = _job()
    if "traffic" not in job:
        return
    ch = Channel(dut, job)
    for spec in job["traffic"]:
        await ch.start()
        options = {"valid_p": spec.get("valid_p", 1.0), "ready_p": spec.get("ready_p", 1.0),
                   "seed": spec.get("seed", 0), "timeout": spec.get("timeout", 200_000)}
        if "port_requests" in spec:
            per_port = [_decode_requests(r) for r in spec["port_requests"]]
            results = await ch.transact_all(per_port, **options)
        else:
            results = [await ch.transact(_decode_requests(spec["requests"]), **options)]
        await ClockCycles(dut.clk, 4)
        for device in ch.devices:
            device.check_refresh()
        refreshes = int(dut.refreshes.value.to_unsigned()) if hasattr(dut, "refreshes") else None
        lists = {"sent": [r[0] for r in results], "received": [r[1] for r in results],
                 "responses": [[[x["write"], f"{x['data']:x}", x["corrected"], x["uncorrectable"]]
                                for x in r[2]] for r in results]}
        if "port_requests" not in spec:
            lists = {key: value[0] for key, value in lists.items()}
        record(f"traffic:{spec.get('name', 'traffic')}", **lists,
               device=ch.stats(), refreshes=refreshes, busy_after=int(dut.busy.value))


@cocotb.test()
async def latency(dut):
    job = _job()
    if "latency" not in job:
        return
    ch = Channel(dut, job)
    await ch.start()
    spec = job["latency"]
    results = {}
    for label in ("miss", "hit"):
        addr = spec[f"{label}_addr"]
        await ClockCycles(dut.clk, 2)
        sent, got, _ = await ch.transact([(addr, 0, 0xFF, 0)])
        results[label] = got[0] - sent[0]
    stats = ch.stats()
    record("latency", miss_cycles=results["miss"], hit_cycles=results["hit"], device=stats)


@cocotb.test()
async def ecc(dut):
    job = _job()
    if "ecc_case" not in job:
        return
    ch = Channel(dut, job)
    await ch.start()
    spec = job["ecc_case"]
    lines = spec["lines"]
    writes = [(addr, 1, 0xFF, int(data, 16)) for addr, data in lines]
    await ch.transact(writes)
    await ClockCycles(dut.clk, ch.timing.CWL + 8)
    for line, word, bit in spec["single"]:
        ch.device.inject_error(line, word, [bit])
    for line, word, b1, b2 in spec["double"]:
        ch.device.inject_error(line, word, [b1, b2])
    _, _, responses = await ch.transact([(addr, 0, 0xFF, 0) for addr, _ in lines])
    await ClockCycles(dut.clk, 2)
    record("ecc", responses=[[f"{r['data']:x}", r["corrected"], r["uncorrectable"]] for r in responses],
           corrected=int(dut.ecc_corrected.value.to_unsigned()),
           uncorrectable=int(dut.ecc_uncorrectable.value.to_unsigned()))
