"""Memory controllers, tiers and the DDR → HBM copy path on Icarus and Verilator.

Every run has the DRAM device model (:mod:`sim.dram`) check each command against the
preset's timing; a violation fails the run with the constraint's name. Read data is
compared with a dictionary model of memory (:func:`sim.memory.expected_responses`),
never with the RTL's own output.
"""

from __future__ import annotations

import random

import pytest

from hdl.memctrl import FRONTEND_CYCLES, join_line_address, timing_preset
from hdl.memctrl.ecc import secded_decode
from sim.memory import (
    check_responses,
    run_memory_job,
    traffic_figures,
    traffic_phase,
    traffic_requests,
)

pytestmark = pytest.mark.cocotb


def _phase_metrics(result, name):
    metrics = result.metrics.get(f"traffic:{name}")
    assert metrics, f"no metrics for phase {name}: {result.summary()}"
    return metrics


def _assert_latency(timing, metrics):
    """Unloaded latency: (tRCD + tCL + burst) tCK for a miss, (tCL + burst) tCK for a hit."""
    burst = timing.burst_cycles
    device = metrics["device"]
    # DFI view, measured by the device model: ACT → last beat of the first read
    assert device["first_read_after_act"][0] == timing.RCD + timing.CL + burst
    # request to response on the user port: the same plus the controller's fixed pipeline
    assert metrics["miss_cycles"] == FRONTEND_CYCLES + timing.RCD + timing.CL + burst
    assert metrics["hit_cycles"] == FRONTEND_CYCLES + timing.CL + burst
    miss_ns = (metrics["miss_cycles"] - FRONTEND_CYCLES) * timing.tck_ns
    assert miss_ns == pytest.approx((timing.RCD + timing.CL + burst) * timing.tck_ns)


def _assert_traffic(timing, result, name, requests, *, refreshes=False):
    metrics = _phase_metrics(result, name)
    assert len(metrics["received"]) == len(requests), f"{name}: not every request completed"
    assert check_responses(requests, metrics["responses"]) == [], name
    assert metrics["device"]["violations"] == 0
    assert metrics["busy_after"] == 0
    reads = sum(1 for r in requests if not r[1])
    assert metrics["device"]["reads"] == reads and metrics["device"]["writes"] == len(requests) - reads
    if refreshes:
        assert metrics["device"]["refreshes"] >= 1, f"{name}: no refresh happened"
    return metrics


def _channel_job(timing, phases, *, latency=True, ecc_case=None):
    job = {"traffic": phases}
    if latency:
        # line 0 then line bank_groups (same bank, row and bank group, next column): miss, then hit
        job["latency"] = {"miss_addr": 0, "hit_addr": timing.bank_groups}
    if ecc_case:
        job["ecc_case"] = ecc_case
    return job


def test_hbm2_channel(simulator, sim_build_dir, waves):
    """HBM2-2000: unloaded latency, a streaming phase across a refresh, random traffic under
    random back-pressure (a quarter of the lines hit by several requests, random word masks)."""
    t = timing_preset("HBM2-2000")
    stream = traffic_requests(t, "seq", 2200, write_fraction=0.5, seed=11)
    rand = traffic_requests(t, "random", 1200, write_fraction=0.5, random_masks=True, seed=12,
                            span_lines=256)
    strided = traffic_requests(t, "strided", 200, write_fraction=0.3, stride_bytes=4096, seed=13)
    # two lines of one open row, requests at random gaps: a request often arrives in the very
    # cycle its line's older request gets its column command (the dependency it records then
    # must not wait for that command; it once did, forever)
    rng = random.Random(14)
    same_line = []
    for _ in range(400):
        write = int(rng.random() < 0.5)
        same_line.append((rng.choice((0, t.bank_groups)), write, rng.randrange(1, 256) if write else 255,
                          rng.getrandbits(512) if write else 0))
    job = _channel_job(t, [traffic_phase("seq", stream),
                           traffic_phase("random", rand, valid_p=0.7, ready_p=0.5, seed=5),
                           traffic_phase("strided", strided, ready_p=0.8, seed=6),
                           traffic_phase("same_line", same_line, valid_p=0.4, ready_p=0.9, seed=7,
                                         timeout=40_000)])
    result = run_memory_job(t, job, simulator=simulator, build_dir=sim_build_dir, waves=waves)
    assert result.passed, result.summary()
    _assert_latency(t, result.metrics["latency"])
    seq = _assert_traffic(t, result, "seq", stream, refreshes=True)
    _assert_traffic(t, result, "random", rand)
    _assert_traffic(t, result, "strided", strided)
    _assert_traffic(t, result, "same_line", same_line)
    figures = traffic_figures(t, seq["sent"], seq["received"], seq["device"])
    assert figures["row_hit_rate"] > 0.8          # open-page policy keeps streaming rows open


def test_ddr4_channel_with_ecc(simulator, sim_build_dir, waves):
    """DDR4-3200 with SECDED: latency, injected single-bit errors corrected and counted,
    double-bit errors reported, and ECC-protected traffic (a refresh included)."""
    t = timing_preset("DDR4-3200")
    rng = random.Random(21)
    lines = [(join_line_address(t, k % 4, k // 4 % 4, 3 + k, 5), rng.getrandbits(512)) for k in range(10)]
    single = [[lines[0][0], 0, 5], [lines[1][0], 7, 63], [lines[2][0], 3, 66], [lines[3][0], 2, 71],
              [lines[3][0], 5, 0]]
    double = [[lines[4][0], 1, 3, 40], [lines[5][0], 6, 64, 12]]
    ecc_case = {"lines": [[a, f"{d:x}"] for a, d in lines], "single": single, "double": double}
    stream = traffic_requests(t, "seq", 3300, write_fraction=0.5, seed=22)
    rand = traffic_requests(t, "random", 600, write_fraction=0.5, random_masks=True, seed=23, span_lines=128)
    job = _channel_job(t, [traffic_phase("seq", stream),
                           traffic_phase("random", rand, valid_p=0.6, ready_p=0.6, seed=7)],
                       ecc_case=ecc_case)
    result = run_memory_job(t, job, simulator=simulator, ecc=True, queue_depth=16, build_dir=sim_build_dir,
                            waves=waves)
    assert result.passed, result.summary()
    _assert_latency(t, result.metrics["latency"])
    _assert_traffic(t, result, "seq", stream, refreshes=True)
    _assert_traffic(t, result, "random", rand)

    ecc = result.metrics["ecc"]
    by_line = {a: d for a, d in lines}
    flipped_single = {s[0] for s in single}
    flipped_double = {d[0] for d in double}
    for (addr, _), (data_hex, corrected, uncorrectable) in zip(lines, ecc["responses"], strict=True):
        data = int(data_hex, 16)
        if addr in flipped_double:
            assert uncorrectable == 1 and corrected == 0, f"line {addr:#x}: double-bit error not reported"
        elif addr in flipped_single:
            assert (corrected, uncorrectable) == (1, 0), f"line {addr:#x}"
            assert data == by_line[addr], f"line {addr:#x}: single-bit error not corrected"
        else:
            assert (corrected, uncorrectable) == (0, 0) and data == by_line[addr]
    assert ecc["corrected"] == len(single)          # counted per word
    assert ecc["uncorrectable"] == len(double)
    # the golden decoder agrees that those flips are (un)correctable
    word = by_line[lines[4][0]] >> 64 & (2**64 - 1)
    from hdl.memctrl.ecc import secded_check_bits
    assert secded_decode(word ^ (1 << 3) ^ (1 << 40), secded_check_bits(word))[1] == "uncorrectable"


def test_device_model_catches_an_early_command(sim_build_dir):
    """The same controller against a device that needs one more cycle of tRCD must fail,
    naming tRCD: the timing checks can fail. (The device model is Python, the same on both
    simulators; Icarus builds in a second, so this runs there only.)"""
    from sim import toolchain
    simulator = "icarus"
    if not toolchain.simulator_status(simulator).usable:
        pytest.skip("icarus unusable")
    t = timing_preset("HBM2-2000")
    job = {"latency": {"miss_addr": 0, "hit_addr": t.bank_groups}, "device_overrides": {"RCD": t.RCD + 1}}
    result = run_memory_job(t, job, simulator=simulator, build_dir=sim_build_dir, testcase="latency")
    assert not result.passed
    assert any("tRCD" in failure for failure in result.failed_tests), result.summary()


def test_two_channel_tier(simulator, sim_build_dir, waves):
    """Two HBM2 channels interleaved by line: responses in request order, both channels used."""
    t = timing_preset("HBM2-2000")
    tier_lines = 2 << t.line_address_bits
    rng = random.Random(31)
    requests = []
    for _ in range(500):
        addr = rng.randrange(256) if rng.random() < 0.7 else rng.randrange(tier_lines)
        write = int(rng.random() < 0.5)
        requests.append((addr, write, rng.randrange(1, 256) if write else 255,
                         rng.getrandbits(512) if write else 0))
    stream = [(k, 0, 255, 0) for k in range(300)]
    job = {"traffic": [traffic_phase("random", requests, valid_p=0.8, ready_p=0.6, seed=3),
                       traffic_phase("seq", stream)]}
    result = run_memory_job(t, job, simulator=simulator, channels=2, queue_depth=8, build_dir=sim_build_dir,
                            waves=waves)
    assert result.passed, result.summary()
    _assert_traffic(t, result, "random", requests)
    seq = _assert_traffic(t, result, "seq", stream)
    # 300 lines over two channels in far fewer cycles than one channel needs (2 tCK a line)
    assert seq["received"][-1] - seq["sent"][0] < 300 * t.burst_cycles * 0.75


def test_hbm_stack_serves_every_port_in_its_order(simulator, sim_build_dir, waves):
    """An HbmStack of two channels and three ports: all ports at once, random gaps and back-pressure,
    random reads and partial writes in each port's region; every port's responses equal a plain
    dictionary's, every command passes the timing checker, and two streaming ports whose blocks
    lie in different channels are served side by side (more than one channel's rate)."""
    t = timing_preset("HBM2-2000")
    region = (2 << t.line_address_bits) // 3
    rng = random.Random(5)
    mixed = []
    for k in range(3):   # 80 requests in the first 64 lines of each port's region: lines are reused
        reqs = []
        for _ in range(80):
            write = int(rng.random() < 0.5)
            reqs.append((k * region + rng.randrange(64), write, rng.randrange(1, 256) if write else 255,
                         rng.getrandbits(512) if write else 0))
        mixed.append(reqs)
    # ports 0 and 1 stream 120 lines each from lines a channel apart: the hashed map puts their
    # blocks in different channels; port 2 rests
    stream = [[(k << t.line_address_bits) + i for i in range(120)] for k in range(2)]
    stream = [[(a, 0, 255, 0) for a in reqs] for reqs in stream] + [[]]
    job = {"traffic": [
        {"name": "mixed", "port_requests": [_encode(r) for r in mixed], "valid_p": 0.8, "ready_p": 0.6,
         "seed": 3, "timeout": 100_000},
        {"name": "seq", "port_requests": [_encode(r) for r in stream], "valid_p": 1.0, "ready_p": 1.0,
         "seed": 4, "timeout": 100_000}]}
    result = run_memory_job(t, job, simulator=simulator, channels=2, ports=3, queue_depth=8,
                            build_dir=sim_build_dir, waves=waves)
    assert result.passed, result.summary()
    for name, per_port in (("mixed", mixed), ("seq", stream)):
        metrics = result.metrics[f"traffic:{name}"]
        assert metrics["device"]["violations"] == 0
        for k, reqs in enumerate(per_port):
            assert check_responses(reqs, metrics["responses"][k]) == [], (name, k)
    seq = result.metrics["traffic:seq"]
    first = min(min(s) for s in seq["sent"] if s)
    last = max(max(r) for r in seq["received"] if r)
    # 240 lines: one channel at its peak needs 2 tCK a line (480 cycles); two side by side, half
    assert last - first < 240 * t.burst_cycles * 0.75, last - first


def _encode(requests):
    return [[a, w, m, f"{d:x}"] for a, w, m, d in requests]
