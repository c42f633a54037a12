"""cocotb testbench for configurable units (PCU, PMU): run a list of programs back to back.

The job file (``OPENRDU_UNIT_JOBS``, JSON written by :func:`sim.unit_jobs.write_job_file`)
names the unit's ports and lists programs::

    {"ports": {"inputs": [...], "outputs": [...], "tokens": [...], "counters": [...]},
     "jobs": [...]}

For each job the bench writes the configuration words through ``cfg``, starts the
run (``start`` token, or the configuration's auto-start), drives every input stream
and takes every output with random valid/ready stalls, and compares what came out
with the golden model's results carried in the job. It checks how often each
control token pulsed and how far each performance counter moved, and records per
job: ``cycles`` (start to last output), the counter deltas, and for each counter and
output the *span* in cycles from its first event to its last (events / span is the
steady-state rate).

A job with ``"expect_refused": true`` carries a corrupted configuration: the bench
checks that ``cfg_error`` rises, ``configured`` stays low, and nothing runs.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from sim.cocotb_streams import StreamSink, StreamSource, start_clock_and_reset
from sim.metrics import record


class _Span:
    def __init__(self):
        self.first = self.last = None
        self.events = 0

    def hit(self, cycle: int, count: int = 1):
        if self.first is None:
            self.first = cycle
        self.last = cycle
        self.events += count

    @property
    def cycles(self) -> int:
        return self.last - self.first + 1 if self.first is not None else 0


async def _refused(dut, job, name, ports):
    assert dut.cfg_error.value == 1, f"{name}: corrupted configuration was not refused"
    assert dut.configured.value == 0, f"{name}: corrupted configuration left the unit configured"
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    for _ in range(50):
        await FallingEdge(dut.clk)
        assert dut.busy.value == 0, f"{name}: the unit ran after refusing its configuration"
        for port in ports["outputs"]:
            assert getattr(dut, f"{port}__valid").value == 0, f"{name}: output after a refused configuration"
    await RisingEdge(dut.clk)  # stream models start just after a rising edge
    return {"refused": True}


async def _run_job(dut, job: dict, ports: dict, rng: random.Random, index: int):
    name = job.get("name", f"job{index}")
    cfg = StreamSource(dut, "cfg", valid_probability=job.get("valid_p", 1.0), rng=rng)
    await cfg.send(job["cfg"])
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    if job.get("expect_refused"):
        return await _refused(dut, job, name, ports)
    assert dut.cfg_error.value == 0, f"{name}: configuration refused (cfg_error)"
    assert dut.configured.value == 1, f"{name}: not configured after its image"
    await RisingEdge(dut.clk)

    tokens = {t: 0 for t in ports["tokens"]}
    counters = {c: getattr(dut, c).value.to_unsigned() for c in ports["counters"]}
    spans = {k: _Span() for k in [*ports["counters"], *ports["outputs"]]}
    clock = {"n": 0}

    async def sampler():
        previous = dict(counters)
        while True:
            await FallingEdge(dut.clk)
            clock["n"] += 1
            for t in tokens:
                tokens[t] += int(getattr(dut, t).value)
            for port in ports["outputs"]:
                if getattr(dut, f"{port}__valid").value == 1 and getattr(dut, f"{port}__ready").value == 1:
                    spans[port].hit(clock["n"])
            for c in counters:
                now = getattr(dut, c).value.to_unsigned()
                if now != previous[c]:
                    spans[c].hit(clock["n"], now - previous[c])
                    previous[c] = now

    watcher = cocotb.start_soon(sampler())
    if job.get("start_token"):
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0

    senders = []
    for port in ports["inputs"]:
        payloads = job["inputs"].get(port)
        if payloads:
            source = StreamSource(dut, port, valid_probability=job.get("valid_p", 1.0), rng=rng)
            senders.append(cocotb.start_soon(source.send(payloads)))
    limit = job.get("timeout_cycles", 20000)
    receivers = {}
    for port in ports["outputs"]:
        count = len(job["expect"].get(port, []))
        if count:
            sink = StreamSink(dut, port, ready_probability=job.get("ready_p", 1.0), rng=rng)
            receivers[port] = cocotb.start_soon(sink.receive(count, timeout_cycles=limit))
    got = {port: await task for port, task in receivers.items()}
    for task in senders:
        await task
    cycles = clock["n"]
    for _ in range(limit):  # let in-flight accesses, tokens and counters finish
        await RisingEdge(dut.clk)
        if dut.busy.value == 0:
            break
    await ClockCycles(dut.clk, 3)
    watcher.kill()

    for port, values in got.items():
        want = job["expect"][port]
        bad = [k for k, (g, w) in enumerate(zip(values, want, strict=True)) if g != w]
        if bad:
            k = bad[0]
            raise AssertionError(f"{name}: {len(bad)} of {len(want)} {port} payloads differ from the golden "
                                 f"model; first at #{k}: rtl {values[k]:#x}, golden {want[k]:#x}")
    for token, expected in job.get("tokens", {}).items():
        assert tokens[token] == expected, f"{name}: {token} pulsed {tokens[token]} times, expected {expected}"
    deltas = {c: getattr(dut, c).value.to_unsigned() - counters[c] for c in counters}
    for counter, expected in job.get("counts", {}).items():
        assert deltas[counter] == expected, \
            f"{name}: {counter} moved by {deltas[counter]}, expected {expected}"
    assert dut.busy.value == 0, f"{name}: still busy after its outputs"
    for port in ports["outputs"]:
        assert getattr(dut, f"{port}__valid").value == 0, f"{name}: extra {port} output after the run"
    return {"cycles": cycles, **deltas, "outputs": {p: len(v) for p, v in got.items()},
            "span": {k: s.cycles for k, s in spans.items()}}


@cocotb.test()
async def programs_match_golden(dut):
    """Every job's outputs equal the golden model's, under the job's stall probabilities."""
    with open(os.environ["OPENRDU_UNIT_JOBS"]) as f:
        spec = json.load(f)
    rng = random.Random(cocotb.RANDOM_SEED)
    dut.start.value = 0
    dut.cfg_clear.value = 0
    await start_clock_and_reset(dut)
    for index, job in enumerate(spec["jobs"]):
        result = await _run_job(dut, job, spec["ports"], rng, index)
        record("programs_match_golden", **{job.get("name", f"job{index}"): result})
