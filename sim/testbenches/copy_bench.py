"""cocotb testbench for the DDR → HBM copy path (:class:`hdl.dma.DdrToHbmCopy`).

The job (a JSON file named by ``OPENRDU_COPY_JOB``; :func:`sim.dma.run_copy` writes it)
gives the timing presets, the clock periods and a list of runs::

    {"ddr": {...}, "hbm": {...}, "ecc": false, "fabric_ps": 1000,
     "runs": [{"name": "copy", "lines": 16384, "src_line": 0, "dst_line": 0, "seed": 1,
               "rd_seg": [payload], "wr_seg": [payload], "rd_cfg": [words], "wr_cfg": [words],
               "timeout_ns": 1e7}]}

Each run resets the design, attaches fresh DRAM device models (the DDR one preloaded
with ``lines`` random lines from ``src_line``, or with the lines of the run's optional
``source`` .npy file), writes the segment tables and the
configurations, pulses ``start`` and waits for the store AGCU's ``done``. It records
the elapsed time, whether the HBM lines from ``dst_line`` equal the source, how many
HBM lines hold anything at all (and, if the run names a ``dump`` .npy path, saves the
destination lines read back from the HBM model there), both AGCUs' fault flags and request counts, and both
devices' statistics. The device models raise on any DRAM timing violation.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from sim.cocotb_streams import StreamSource
from sim.dram import DramDevice
from sim.memory import timing_from_spec
from sim.metrics import record

JOB_ENV = "OPENRDU_COPY_JOB"


def _clock(signal, period_ps):
    Clock(signal, period_ps, unit="ps", period_high=period_ps // 2).start()


@cocotb.test()
async def copy(dut):
    with open(os.environ[JOB_ENV]) as f:
        job = json.load(f)
    ddr_t, hbm_t = timing_from_spec(job["ddr"]), timing_from_spec(job["hbm"])
    ecc = bool(job.get("ecc"))
    _clock(dut.clk, job["fabric_ps"])
    _clock(dut.ddr_clk, round(ddr_t.tck_ns * 1000))
    _clock(dut.hbm_clk, round(hbm_t.tck_ns * 1000))
    for name in ("rd_cfg", "wr_cfg", "rd_seg", "wr_seg"):
        getattr(dut, f"{name}__valid").value = 0
    dut.start.value = 0
    results = {}
    for run in job["runs"]:
        dut.rst.value = dut.ddr_rst.value = dut.hbm_rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = dut.ddr_rst.value = dut.hbm_rst.value = 0
        ddr = DramDevice(dut, ddr_t, prefix="ddr_dfi", clk=dut.ddr_clk, ecc=ecc, name="ddr")
        hbm = DramDevice(dut, hbm_t, prefix="hbm_dfi", clk=dut.hbm_clk, ecc=ecc, name="hbm")
        tasks = [ddr.start(), hbm.start()]
        rng = np.random.default_rng(run["seed"])
        lines = run["lines"]
        if run.get("source"):           # given data (an .npy of (lines, 8) uint64), e.g. an expert's image
            source = np.load(run["source"]).astype(np.uint64).reshape(lines, 8)
        else:
            source = rng.integers(0, 1 << 63, size=(lines, 8), dtype=np.uint64) * np.uint64(2) + \
                rng.integers(0, 2, size=(lines, 8), dtype=np.uint64)
        ddr.preload(run["src_line"], source)
        await RisingEdge(dut.clk)
        for name in ("rd_seg", "wr_seg", "rd_cfg", "wr_cfg"):
            await StreamSource(dut, name).send(run[name])
        await ClockCycles(dut.clk, 2)
        configured = (int(dut.rd_configured.value), int(dut.wr_configured.value))
        dut.start.value = 1
        await RisingEdge(dut.clk)
        started = get_sim_time("ps")
        dut.start.value = 0
        timeout = Timer(run.get("timeout_ns", 2e7), unit="ns")
        finished = await First(RisingEdge(dut.wr_done), timeout)
        elapsed = get_sim_time("ps") - started
        timed_out = finished is timeout
        await ClockCycles(dut.clk, 4)
        copied = hbm.read_lines(run["dst_line"], lines)
        if run.get("dump"):             # the destination lines as the HBM model holds them
            np.save(run["dump"], copied)
        written_rows = sum(int(np.count_nonzero(a)) for a in hbm.storage.values())
        results[run["name"]] = {
            "timed_out": timed_out, "elapsed_ps": elapsed, "configured": configured,
            "equal": bool(np.array_equal(copied, source)),
            "mismatched_lines": int(np.count_nonzero((copied != source).any(axis=1))),
            "hbm_nonzero_words": written_rows,
            "rd_fault": int(dut.rd_fault.value), "wr_fault": int(dut.wr_fault.value),
            "rd_requests": int(dut.rd_requests.value.to_unsigned()),
            "wr_requests": int(dut.wr_requests.value.to_unsigned()),
            "ddr": ddr.stats(), "hbm": hbm.stats(),
        }
        for task in tasks:
            task.cancel()
    record("copy", runs=results)
