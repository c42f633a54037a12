"""cocotb testbench for :class:`hdl.pcu.PatternComputeUnit`: run a list of programs back to back.

The job file (``OPENRDU_PCU_JOBS``, JSON written by :func:`sim.pcu.write_jobs`) lists
programs. For each job the bench writes the configuration words through ``cfg``,
starts the run (``start`` token, or the configuration's auto-start), drives every
input stream and takes both outputs with random valid/ready stalls, and compares
what came out with the golden model's results carried in the job. It checks that
``done`` pulses exactly once per run and records per job: ``cycles`` from the start to
the last output, ``steps`` fired and ``fire_span``, the cycles from the first fired step
to the last (steps / fire_span is the steady-state issue rate).

A job with ``"expect_refused": true`` carries a corrupted configuration: the bench
checks that ``cfg_error`` rises, ``configured`` stays low, and nothing is emitted.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from sim.cocotb_streams import StreamSink, StreamSource, start_clock_and_reset
from sim.metrics import record


async def _count_done(dut, box):
    while True:
        await FallingEdge(dut.clk)
        if dut.done.value == 1:
            box["done"] += 1


async def _run_job(dut, job: dict, rng: random.Random, index: int):
    name = job.get("name", f"job{index}")
    cfg = StreamSource(dut, "cfg", valid_probability=job.get("valid_p", 1.0), rng=rng)
    await cfg.send(job["cfg"])
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    if job.get("expect_refused"):
        assert dut.cfg_error.value == 1, f"{name}: corrupted configuration was not refused"
        assert dut.configured.value == 0, f"{name}: corrupted configuration left the PCU configured"
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        for _ in range(50):
            await FallingEdge(dut.clk)
            assert dut.busy.value == 0 and dut.vout__valid.value == 0 and dut.sout__valid.value == 0, \
                f"{name}: the PCU ran after refusing its configuration"
        await RisingEdge(dut.clk)  # stream models start just after a rising edge
        return {"refused": True}
    assert dut.cfg_error.value == 0, f"{name}: configuration refused (cfg_error)"
    assert dut.configured.value == 1, f"{name}: not configured after its image"

    box = {"done": 0}
    done_task = cocotb.start_soon(_count_done(dut, box))
    await RisingEdge(dut.clk)
    start_steps = dut.steps.value.to_unsigned()
    if job.get("start_token"):
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0

    senders = []
    for port in ("vin0", "vin1", "sin0", "sin1"):
        payloads = job["inputs"].get(port)
        if payloads:
            source = StreamSource(dut, port, valid_probability=job.get("valid_p", 1.0), rng=rng)
            senders.append(cocotb.start_soon(source.send(payloads)))
    limit = job.get("timeout_cycles", 20000)
    receivers = {}
    for port in ("vout", "sout"):
        count = len(job["expect"][port])
        if count:
            sink = StreamSink(dut, port, ready_probability=job.get("ready_p", 1.0), rng=rng)
            receivers[port] = cocotb.start_soon(sink.receive(count, timeout_cycles=limit))
    cycles_box = {"n": 0, "first_fire": None, "last_fire": None}

    async def clock_counter():
        previous = start_steps
        while True:
            await RisingEdge(dut.clk)
            cycles_box["n"] += 1
            now = dut.steps.value.to_unsigned()
            if now != previous:  # a step fired at this edge
                if cycles_box["first_fire"] is None:
                    cycles_box["first_fire"] = cycles_box["n"]
                cycles_box["last_fire"] = cycles_box["n"]
                previous = now

    counter = cocotb.start_soon(clock_counter())
    got = {port: await task for port, task in receivers.items()}
    for task in senders:
        await task
    cycles = cycles_box["n"]
    await ClockCycles(dut.clk, 3)
    counter.cancel()
    done_task.cancel()
    steps = dut.steps.value.to_unsigned() - start_steps

    for port, values in got.items():
        want = job["expect"][port]
        bad = [k for k, (g, w) in enumerate(zip(values, want, strict=True)) if g != w]
        if bad:
            k = bad[0]
            raise AssertionError(f"{name}: {len(bad)} of {len(want)} {port} payloads differ from the golden "
                                 f"model; first at #{k}: rtl {values[k]:#x}, golden {want[k]:#x}")
    assert box["done"] == 1, f"{name}: done pulsed {box['done']} times, expected once"
    assert steps == job["steps"], f"{name}: {steps} steps fired, the counter nest has {job['steps']}"
    assert dut.vout__valid.value == 0 and dut.sout__valid.value == 0, f"{name}: extra output after the run"
    fire_span = (cycles_box["last_fire"] - cycles_box["first_fire"] + 1) if cycles_box["first_fire"] else 0
    return {"cycles": cycles, "steps": steps, "fire_span": fire_span,
            "outputs": {p: len(v) for p, v in got.items()}}


@cocotb.test()
async def programs_match_golden(dut):
    """Every job's outputs equal the golden model's, under the job's stall probabilities."""
    with open(os.environ["OPENRDU_PCU_JOBS"]) as f:
        jobs = json.load(f)
    rng = random.Random(cocotb.RANDOM_SEED)
    dut.start.value = 0
    await start_clock_and_reset(dut)
    for index, job in enumerate(jobs):
        result = await _run_job(dut, job, rng, index)
        record("programs_match_golden", **{job.get("name", f"job{index}"): result})
