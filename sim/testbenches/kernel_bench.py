"""cocotb testbench that runs compiled kernels on a :class:`hdl.system.TileSystem`.

The job (JSON file named by ``OPENRDU_KERNEL_JOB``; :func:`sim.kernels.run_compiled` writes it)::

    {"hbm": {...}, "channels": 2, "interleave_lines": 256, "hashed": true, "fabric_ps": 1000,
     "watch": {"unit_busy": [...], "agcu_busy": [...], "pin_waiting": [...]},
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

Watchdog: a launch still not finished ``timeout_cycles`` after its host words were sent (or
whose host words the tile did not take in that time) gets a stuck report (the units busy
and the pins with a payload waiting, by the names in ``watch``) and is stopped with ``ABORT``
(:mod:`sim.watchdog`); the record says so (``timed_out``, ``limit``, ``stuck``, ``abort``) and
the kernel's remaining launches are not run.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from hdl.launch import LaunchState
from hdl.memctrl.crossbar import channel_map
from sim.cocotb_streams import StreamSource
from sim.dram import DramDevice, start_devices, stop_devices
from sim.memory import timing_from_spec
from sim.metrics import record
from sim.watchdog import abort_launch, state_name, stuck_report

JOB_ENV = "OPENRDU_KERNEL_JOB"
POLL = 64
PROGRESS_EVERY = 1024   # cycles between progress-file updates (Icarus on `small`: about a minute)


@cocotb.test()
async def kernel(dut):
    with open(os.environ[JOB_ENV]) as f:
        job = json.load(f)
    hbm_t = timing_from_spec(job["hbm"])
    channels = int(job["channels"])
    # the stack's address map (hdl.memctrl.crossbar): where each global line lives
    address_map = (channels, int(job["interleave_lines"]), bool(job["hashed"]))
    fabric_ps = int(job["fabric_ps"])
    Clock(dut.clk, fabric_ps, unit="ps", period_high=fabric_ps // 2).start()
    hbm_ps = round(hbm_t.tck_ns * 1000)
    Clock(dut.hbm_clk, hbm_ps, unit="ps", period_high=hbm_ps // 2).start()
    dut.host__valid.value = 0
    dut.seg__valid.value = 0
    devices = []
    all_results = []
    for entry in job["kernels"]:
        stop_devices(devices)
        dut.rst.value = dut.hbm_rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = dut.hbm_rst.value = 0
        devices = [DramDevice(dut, hbm_t, prefix=f"hbm_dfi{c}", clk=dut.hbm_clk, name=f"hbm{c}")
                   for c in range(channels)]
        start_devices(devices)
        all_results.append(await _run_kernel(dut, entry, devices, address_map, job.get("watch", {})))
    record("kernel", kernels=all_results)


async def _run_kernel(dut, job, devices, address_map, watch):

    def runs(base, count):
        """Global lines ``base`` … ``base + count - 1`` as runs (device, first channel line, first index,
        length) of consecutive channel lines (the stack's map, :func:`channel_map`)."""
        channel, local = channel_map(np.arange(base, base + count, dtype=np.int64), *address_map)
        breaks = np.flatnonzero((np.diff(channel) != 0) | (np.diff(local) != 1)) + 1
        starts = np.concatenate(([0], breaks))
        ends = np.concatenate((breaks, [count]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            yield devices[int(channel[s])], int(local[s]), s, e - s

    def spread(base, lines):
        for device, local, first, length in runs(base, len(lines)):
            yield device, local, lines[first:first + length]

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
    finished = (LaunchState.REFUSED, LaunchState.DONE)
    for launch in job["launches"]:
        await StreamSource(dut, "seg").send(launch.get("seg", []))
        # the watchdog covers the host words too: a tile that stops taking them also hangs
        sender = cocotb.start_soon(StreamSource(dut, "host").send(launch["host"]))
        limit = int(launch.get("timeout_cycles", 10_000_000))
        waited = 0
        last_report = -1
        while not (sender.done() and int(dut.state.value) in finished) and waited < limit:
            await ClockCycles(dut.clk, POLL)
            waited += POLL
            if progress_path and waited // PROGRESS_EVERY != last_report:
                last_report = waited // PROGRESS_EVERY
                with open(progress_path + ".tmp", "w") as f:
                    json.dump({"cycles": done_cycles + waited, "expected": expected,
                               "launch": launch["name"]}, f)
                os.replace(progress_path + ".tmp", progress_path)
        timed_out = waited >= limit
        if timed_out:
            stuck = await stuck_report(dut, watch)
            if not sender.done():       # the tile stopped taking host words: no command can follow
                sender.cancel()
                dut.host__valid.value = 0
                abort = {"state": state_name(int(dut.state.value)), "cycles": 0, "taken": False,
                         "why": "the tile did not take every host word, so ABORT could not be sent"}
            else:
                abort = await abort_launch(dut)
        cycles = int(dut.cycles.value.to_unsigned())
        done_cycles += cycles
        results.append({"name": launch["name"], "state": int(dut.state.value), "error": int(dut.error.value),
                        "error_unit": int(dut.error_unit.value), "cycles": cycles,
                        "timed_out": timed_out, "faults": int(dut.faults.value.to_unsigned())})
        if timed_out:
            results[-1].update(limit=limit, stuck=stuck, abort=abort)
        if timed_out or int(dut.state.value) != LaunchState.DONE:
            break
    await ClockCycles(dut.clk, 8)

    out = {}
    for name, base, lines in job.get("reads", []):
        data = np.zeros((lines, 8), np.uint64)
        for device, local, first, length in runs(base, lines):
            data[first:first + length] = device.read_lines(local, length)
        out[name] = data
    if job.get("out"):
        np.savez(job["out"], **out)
    stats = [d.stats() for d in devices]
    return dict(launches=results, hbm_reads=sum(s["reads"] for s in stats),
                hbm_writes=sum(s["writes"] for s in stats),
                violations=sum(s["violations"] for s in stats))
