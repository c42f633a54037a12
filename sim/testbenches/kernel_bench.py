"""cocotb testbench that runs compiled kernels on a :class:`hdl.system.TileSystem`.

The job (JSON file named by ``OPENRDU_KERNEL_JOB``; :func:`sim.kernels.run_compiled` writes it)::

    {"hbm": {...}, "channels": 2, "fabric_ps": 1000,
     "kernels": [{"preload": "in.npz", "out": "out.npz", "progress": "progress.json",
                  "expected_cycles": 12345,
                  "launches": [{"name": "...", "seg": [payload, ...], "host": [words], "timeout_cycles": N}],
                  "reads": [["C0", base_line, lines], ...]}, ...]}

Several kernels run in one simulation (one build, one start-up). For each, the system is
reset; the HBM device models (timing-checked) are preloaded from the
npz (arrays ``line_<base>`` of shape (n, 8) uint64); the launches run one after the other
on the same memory contents (an unfused kernel's intermediates stay in HBM between them);
each records its state, error, kernel cycles and AGCU faults. The regions in ``reads`` are
written to the ``out`` npz. While running, ``progress`` holds the cycles simulated so far.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from sim.cocotb_streams import StreamSource
from sim.dram import DramDevice
from sim.memory import timing_from_spec
from sim.metrics import record

JOB_ENV = "OPENRDU_KERNEL_JOB"
POLL = 64
PROGRESS_EVERY = 1024   # cycles between progress-file updates (Icarus on `small`: about a minute)


@cocotb.test()
async def kernel(dut):
    with open(os.environ[JOB_ENV]) as f:
        job = json.load(f)
    hbm_t = timing_from_spec(job["hbm"])
    channels = int(job["channels"])
    fabric_ps = int(job["fabric_ps"])
    Clock(dut.clk, fabric_ps, unit="ps", period_high=fabric_ps // 2).start()
    hbm_ps = round(hbm_t.tck_ns * 1000)
    Clock(dut.hbm_clk, hbm_ps, unit="ps", period_high=hbm_ps // 2).start()
    dut.host__valid.value = 0
    dut.seg__valid.value = 0
    devices = []
    all_results = []
    for entry in job["kernels"]:
        for d in devices:
            d._task.cancel()
        dut.rst.value = dut.hbm_rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = dut.hbm_rst.value = 0
        devices = [DramDevice(dut, hbm_t, prefix=f"hbm_dfi{c}", clk=dut.hbm_clk, name=f"hbm{c}")
                   for c in range(channels)]
        for d in devices:
            d.start()
        all_results.append(await _run_kernel(dut, entry, devices, channels))
    record("kernel", kernels=all_results)


def _read(handle):
    try:
        value = handle.value
        return int(value.to_unsigned()) if hasattr(value, "to_unsigned") else int(value)
    except (AttributeError, ValueError, TypeError):
        return None


def stuck_report(dut) -> dict:
    """What a launch that timed out left behind, where the simulator shows the tile's insides
    (Icarus does; the Verilator build has no public internal signals): the units still busy and,
    per unit or switch, the FIFOs that hold data (``{instance: [fifo, ...]}``)."""
    report = {"busy": [], "unconfigured": [], "holding": {}}
    try:
        tile = dut.tile
        children = list(tile)
    except (AttributeError, TypeError, RuntimeError):
        report["visible"] = False
        return report
    report["visible"] = True
    for child in children:
        name = child._name
        if not name.startswith(("pcu_", "pmu_", "agcu_", "switch_")) or "_done_tokens" in name or \
                "_wdone_" in name or "_rdone_" in name:
            continue
        for attr, key, bad in (("busy", "busy", 1), ("configured", "unconfigured", 0)):
            value = _read(getattr(child, attr, None)) if hasattr(child, attr) else None
            if value == bad:
                report[key].append(name)
        try:
            subs = list(child)
        except (TypeError, RuntimeError):
            continue
        held = []
        for sub in subs:
            if "fifo" not in sub._name or type(sub).__name__ != "HierarchyObject":
                continue
            level = None
            for attr in ("r_rdy", "r_level", "level"):
                if hasattr(sub, attr):
                    level = _read(getattr(sub, attr))
                    break
            if level:
                held.append(sub._name)
        if held:
            report["holding"][name] = sorted(held)
    return report


async def _run_kernel(dut, job, devices, channels):
    def spread(base, lines):
        """Global lines → per-channel runs (line ``l`` lives in channel ``l % channels``)."""
        for c in range(channels):
            first = (c - base) % channels
            chunk = lines[first::channels]
            if len(chunk):
                yield devices[c], (base + first) // channels, chunk

    if job.get("preload"):
        with np.load(job["preload"]) as data:
            for key in data.files:
                base = int(key.split("_")[1])
                for device, local, chunk in spread(base, data[key]):
                    device.preload(local, chunk)

    progress_path = job.get("progress")
    expected = max(1, int(job.get("expected_cycles", 1)))
    done_cycles = 0
    results = []
    for launch in job["launches"]:
        await StreamSource(dut, "seg").send(launch.get("seg", []))
        await StreamSource(dut, "host").send(launch["host"])
        limit = int(launch.get("timeout_cycles", 10_000_000))
        waited = 0
        last_report = -1
        while int(dut.state.value) not in (3, 5) and waited < limit:
            await ClockCycles(dut.clk, POLL)
            waited += POLL
            if progress_path and waited // PROGRESS_EVERY != last_report:
                last_report = waited // PROGRESS_EVERY
                with open(progress_path + ".tmp", "w") as f:
                    json.dump({"cycles": done_cycles + waited, "expected": expected,
                               "launch": launch["name"]}, f)
                os.replace(progress_path + ".tmp", progress_path)
        cycles = int(dut.cycles.value.to_unsigned())
        done_cycles += cycles
        results.append({"name": launch["name"], "state": int(dut.state.value), "error": int(dut.error.value),
                        "error_unit": int(dut.error_unit.value), "cycles": cycles,
                        "timed_out": waited >= limit, "faults": int(dut.faults.value.to_unsigned())})
        if waited >= limit:
            results[-1]["stuck"] = stuck_report(dut)
        if waited >= limit or int(dut.state.value) != 5:
            break
    await ClockCycles(dut.clk, 8)

    out = {}
    for name, base, lines in job.get("reads", []):
        data = np.zeros((lines, 8), np.uint64)
        for c in range(channels):
            first = (c - base) % channels
            count = len(range(first, lines, channels))
            if count:
                data[first::channels] = devices[c].read_lines((base + first) // channels, count)
        out[name] = data
    if job.get("out"):
        np.savez(job["out"], **out)
    stats = [d.stats() for d in devices]
    return dict(launches=results, hbm_reads=sum(s["reads"] for s in stats),
                hbm_writes=sum(s["writes"] for s in stats),
                violations=sum(s["violations"] for s in stats))
