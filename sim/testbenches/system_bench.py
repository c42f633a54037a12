"""cocotb testbench for a tile with AGCUs on HBM (:class:`hdl.system.TileSystem`).

The job (JSON file named by ``OPENRDU_SYSTEM_JOB``; :func:`sim.system.run_system` writes it)::

    {"hbm": {...}, "channels": 2, "interleave_lines": 256, "hashed": true, "ecc": false, "fabric_ps": 1000,
     "runs": [{"name": "...", "preload": [[line, ["hex word" x 8], ...]],
               "seg": [payload, ...], "host": [words], "until": [5, 3], "timeout_ns": 1e6,
               "read": [[line, count], ...]}]}

Each run resets the system, attaches fresh HBM device models (timing-checked), preloads
lines, writes the segment tables, sends the host words (LOAD / ARGS / EXEC), waits until
the launch ``state`` is one of ``until`` and records the state, error, kernel cycles,
AGCU faults, the lines read back from the HBM models and the devices' statistics. A run that
times out gets the watchdog's stuck report and ABORT (:mod:`sim.watchdog`; ``stuck`` and
``abort`` in its record) before its lines are read back.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hdl.memctrl.crossbar import channel_of
from hdl.memctrl.interface import split_line_address
from sim.cocotb_streams import StreamSource
from sim.dram import DramDevice, start_devices, stop_devices
from sim.memory import timing_from_spec
from sim.metrics import record
from sim.watchdog import abort_launch, stuck_report

JOB_ENV = "OPENRDU_SYSTEM_JOB"


def _clock(signal, period_ps):
    Clock(signal, period_ps, unit="ps", period_high=period_ps // 2).start()


@cocotb.test()
async def system(dut):
    with open(os.environ[JOB_ENV]) as f:
        job = json.load(f)
    hbm_t = timing_from_spec(job["hbm"])
    channels = int(job["channels"])
    ecc = bool(job.get("ecc"))
    _clock(dut.clk, job["fabric_ps"])
    _clock(dut.hbm_clk, round(hbm_t.tck_ns * 1000))
    dut.host__valid.value = 0
    dut.seg__valid.value = 0
    results = {}
    devices = []

    address_map = (channels, int(job["interleave_lines"]), bool(job["hashed"]))

    def device_of(line):
        channel, local = channel_of(line, *address_map)
        return devices[channel], local

    for run in job["runs"]:
        stop_devices(devices)
        dut.rst.value = dut.hbm_rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = dut.hbm_rst.value = 0
        devices = [DramDevice(dut, hbm_t, prefix=f"hbm_dfi{c}", clk=dut.hbm_clk, ecc=ecc, name=f"hbm{c}")
                   for c in range(channels)]
        start_devices(devices)
        for line, words in run.get("preload", []):
            for k, row in enumerate(words):
                device, local = device_of(line + k)
                split_line_address(hbm_t, local)      # raises for a line outside the channel
                device.preload(local, np.array([[int(w, 16) for w in row]], dtype=np.uint64))
        await RisingEdge(dut.clk)
        await StreamSource(dut, "seg").send(run.get("seg", []))
        await StreamSource(dut, "host").send(run["host"])
        until = set(run.get("until", [5, 3]))
        waited = 0
        limit = int(run.get("timeout_ns", 1e6) / (job["fabric_ps"] / 1000))
        while int(dut.state.value) not in until and waited < limit:
            await ClockCycles(dut.clk, 16)
            waited += 16
        watchdog = {}
        if waited >= limit:
            watchdog["stuck"] = await stuck_report(dut, job.get("watch", {}))
            watchdog["abort"] = await abort_launch(dut)
        await ClockCycles(dut.clk, 8)
        read = {}
        for line, count in run.get("read", []):
            rows = []
            for k in range(count):
                device, local = device_of(line + k)
                rows.append([f"{int(w):x}" for w in device.read_lines(local, 1)[0]])
            read[str(line)] = rows
        stats = [d.stats() for d in devices]
        results[run["name"]] = {
            "state": int(dut.state.value), "error": int(dut.error.value),
            "error_unit": int(dut.error_unit.value), "cycles": int(dut.cycles.value.to_unsigned()),
            "timed_out": waited >= limit, "faults": int(dut.faults.value.to_unsigned()), "read": read,
            "hbm_reads": sum(s["reads"] for s in stats), "hbm_writes": sum(s["writes"] for s in stats),
            "violations": sum(s["violations"] for s in stats), **watchdog}
    record("system", runs=results)
