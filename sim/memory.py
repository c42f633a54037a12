"""Run the memory controllers in a simulator: traffic patterns, golden data, bandwidth figures.

:func:`run_memory_job` builds one :class:`hdl.memctrl.MemoryController` with its DRAM
device model (:mod:`sim.testbenches.memctrl_bench`) and runs a job; the helpers here make
the traffic (:func:`traffic_requests`), the expected responses from a plain dictionary
(:func:`expected_responses`, independent of the RTL) and the figures
(:func:`traffic_figures`). :func:`mem_bench` is what ``openrdu mem-bench`` prints.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from hdl.memctrl.controller import MemoryController
from hdl.memctrl.interface import LINE_WORDS, WORD_BITS
from hdl.memctrl.stack import HbmStack
from hdl.memctrl.tier import MemoryTier
from hdl.memctrl.timing import LINE_BYTES, DramTiming, timing_names, timing_preset
from hdl.params import TILE_AGCU_OUTSTANDING

from .runner import SimResult, new_run_dir, run_cocotb

__all__ = ["PATTERNS", "run_memory_job", "run_traffic", "traffic_phase", "traffic_requests",
           "stack_requests", "expected_responses", "STACK_REORDER_DEPTH",
           "traffic_figures",
           "check_responses", "mem_bench", "timing_spec"]

PATTERNS = ("seq", "random", "strided")
FULL_MASK = (1 << LINE_WORDS) - 1
BENCH = "sim.testbenches.memctrl_bench"


def timing_spec(timing: DramTiming) -> dict:
    """How a job names its timing: the preset name plus any fields changed from it."""
    base = timing_preset(timing.name)
    overrides = {}
    for name in ("bank_groups", "banks_per_group", "rows", "CL", "CWL", "RCD", "RP", "RAS", "RRD_S", "RRD_L",
                 "FAW", "WR", "WTR_S", "WTR_L", "RTP", "CCD_S", "CCD_L", "RFC", "REFI"):
        if getattr(timing, name) != getattr(base, name):
            overrides[name] = getattr(timing, name)
    return {"name": timing.name, "overrides": overrides}


def timing_from_spec(spec: dict) -> DramTiming:
    """Inverse of :func:`timing_spec`: the preset with the job's overrides applied."""
    t = timing_preset(spec["name"])
    return t.reduced(**spec["overrides"]) if spec.get("overrides") else t


def traffic_requests(timing: DramTiming, pattern: str, lines: int, *, write_fraction: float = 0.0,
                     stride_bytes: int = 4096, seed: int = 0, base: int = 0, random_masks: bool = False,
                     span_lines: int | None = None) -> list[tuple[int, int, int, int]]:
    """Requests ``(line address, write, mask, data)`` of one traffic pattern.

    Parameters
    ----------
    pattern : str
        ``seq`` (consecutive lines from ``base``), ``random`` (uniform over ``span_lines``
        lines from ``base``, default the whole channel) or ``strided`` (every
        ``stride_bytes`` bytes from ``base``, wrapping within the channel).
    lines : int
        Number of requests.
    write_fraction : float
        Chance that a request is a write (random data).
    random_masks : bool
        Writes use random non-empty word masks instead of whole lines.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    if lines < 1:
        raise ValueError(f"need at least one request, got {lines}")
    if not 0.0 <= write_fraction <= 1.0:
        raise ValueError(f"write_fraction must be in [0, 1], got {write_fraction}")
    if stride_bytes < LINE_BYTES or stride_bytes % LINE_BYTES:
        raise ValueError(f"stride must be a positive multiple of {LINE_BYTES} bytes, got {stride_bytes}")
    capacity = 1 << timing.line_address_bits
    span = capacity - base if span_lines is None else span_lines
    if not 0 <= base < capacity or span < 1 or base + span > capacity:
        raise ValueError(f"lines {base}..{base + span - 1} do not fit a {timing.name} channel "
                         f"({capacity} lines)")
    rng = random.Random(seed)
    out = []
    stride = stride_bytes // LINE_BYTES
    for k in range(lines):
        if pattern == "seq":
            addr = base + k % span
        elif pattern == "random":
            addr = base + rng.randrange(span)
        else:
            addr = base + (k * stride) % span
        write = int(rng.random() < write_fraction)
        mask = FULL_MASK
        data = 0
        if write:
            data = rng.getrandbits(LINE_WORDS * WORD_BITS)
            if random_masks:
                mask = rng.randrange(1, FULL_MASK + 1)
        out.append((addr, write, mask, data))
    return out


def stack_requests(timing: DramTiming, channels: int, ports: int, pattern: str, lines: int, *,
                   write_fraction: float = 0.0, stride_bytes: int = 4096, seed: int = 0) -> list[list]:
    """One request list per port of an :class:`hdl.memctrl.stack.HbmStack`: ``lines`` requests in all,
    ``pattern`` within the port's own region (region *k* of ``ports`` equal regions of the stack's
    line space, so the ports never touch each other's lines and each port's data can be checked
    on its own). Regions start a power of two apart when ``ports`` is one: then the stack's
    hashed address map is what keeps the streams from starting in the same channel."""
    if ports < 1 or lines < ports:
        raise ValueError(f"need at least one request per port: {lines} requests for {ports} ports")
    capacity = 1 << timing.line_address_bits
    region = capacity * channels // ports
    out = []
    for k in range(ports):
        count = lines // ports + (1 if k < lines % ports else 0)
        reqs = traffic_requests(timing, pattern, count, write_fraction=write_fraction,
                                stride_bytes=stride_bytes, seed=seed * 1009 + k,
                                span_lines=min(region, capacity))
        out.append([(k * region + a, w, m, d) for a, w, m, d in reqs])
    return out


def expected_responses(requests, initial: dict[int, list[int]] | None = None) -> list[tuple[int, int]]:
    """(write, data) the controller must answer, from a dictionary of lines (zeros when unwritten)."""
    memory = {k: list(v) for k, v in (initial or {}).items()}
    word_mask = (1 << WORD_BITS) - 1
    out = []
    for addr, write, mask, data in requests:
        line = memory.setdefault(addr, [0] * LINE_WORDS)
        if write:
            for w in range(LINE_WORDS):
                if mask >> w & 1:
                    line[w] = (data >> (w * WORD_BITS)) & word_mask
            out.append((1, 0))
        else:
            out.append((0, sum(word << (w * WORD_BITS) for w, word in enumerate(line))))
    return out


def check_responses(requests, responses, initial=None) -> list[str]:
    """Differences between recorded responses (``[write, data_hex, corrected, uncorrectable]``) and
    :func:`expected_responses`; an empty list when they agree."""
    expected = expected_responses(requests, initial)
    problems = []
    if len(responses) != len(expected):
        problems.append(f"{len(responses)} responses for {len(expected)} requests")
    for k, ((write, data), got) in enumerate(zip(expected, responses, strict=False)):
        if got[0] != write or (not write and int(got[1], 16) != data):
            problems.append(f"request {k} {requests[k][:3]}: expected {'ack' if write else hex(data)}, "
                            f"got {'ack' if got[0] else got[1]}")
            if len(problems) > 5:
                break
    return problems


def _percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def traffic_figures(timing: DramTiming, sent: list[int], received: list[int], device: dict,
                    channels: int = 1) -> dict:
    """Bandwidth and latency of one traffic run (cycles are tCK; ``channels`` channels in parallel)."""
    lines = len(received)
    cycles = max(1, max(received) - min(sent) + 1)
    seconds_ns = cycles * timing.tck_ns
    achieved = lines * LINE_BYTES / seconds_ns
    peak = timing.peak_gbps * channels
    latency = [(r - s) * timing.tck_ns for s, r in zip(sent, received, strict=True)]
    return {
        "lines": lines, "bytes": lines * LINE_BYTES, "cycles": cycles,
        "achieved_GBps": round(achieved, 3), "peak_GBps": round(peak, 3),
        "efficiency": round(achieved / peak, 4),
        "row_hit_rate": round(device.get("row_hit_rate", 0.0), 4),
        "avg_latency_ns": round(sum(latency) / len(latency), 2),
        "p99_latency_ns": round(_percentile(latency, 99), 2),
        "refreshes": device.get("refreshes", 0),
    }


#: Lines each port of a benched :class:`hdl.memctrl.stack.HbmStack` may have in flight: as many as a tile's
#: AGCU (:data:`hdl.params.TILE_AGCU_OUTSTANDING`).
STACK_REORDER_DEPTH = TILE_AGCU_OUTSTANDING


def default_build_dir(timing: DramTiming, simulator: str, ecc: bool, queue_depth: int,
                      channels: int = 1, ports: int = 0) -> Path:
    spec = timing_spec(timing)
    tag = timing.name + ("-reduced" + str(abs(hash(json.dumps(spec, sort_keys=True))) % 10**6)
                         if spec["overrides"] else "")
    tag += f"-x{channels}" if channels > 1 else ""
    tag += f"-stack{ports}" if ports else ""
    return Path("build/sim/memctrl") / f"{tag}-q{queue_depth}{'-ecc' if ecc else ''}" / simulator


def run_memory_job(timing: DramTiming | str, job: dict, *, simulator: str, ecc: bool = False,
                   queue_depth: int = 32, channels: int = 1, build_dir=None, waves: bool = False,
                   testcase=None, seed: int | None = None, ports: int = 0) -> SimResult:
    """Build (or reuse) the controller (``channels`` > 1: a :class:`MemoryTier`; ``ports`` > 0: an
    :class:`HbmStack` of ``channels`` channels and ``ports`` ports) for ``timing`` and run ``job``
    (see :mod:`sim.testbenches.memctrl_bench`)."""
    timing = timing_preset(timing)
    build_dir = Path(build_dir or default_build_dir(timing, simulator, ecc, queue_depth, channels, ports))
    build_dir.mkdir(parents=True, exist_ok=True)
    full = {"timing": timing_spec(timing), "ecc": ecc, "channels": channels, "ports": ports, **job}
    run_dir = new_run_dir(build_dir)
    job_file = run_dir / "job.json"
    job_file.write_text(json.dumps(full))
    if ports:
        controller = HbmStack(timing, channels=channels, ports=ports, ecc=ecc, queue_depth=queue_depth,
                              reorder_depth=STACK_REORDER_DEPTH)
    elif channels > 1:
        controller = MemoryTier(timing, channels=channels, ecc=ecc, queue_depth=queue_depth)
    else:
        controller = MemoryController(timing, ecc=ecc, queue_depth=queue_depth)
    return run_cocotb(controller, BENCH, simulator=simulator, build_dir=build_dir, waves=waves,
                      testcase=testcase, seed=seed, reuse_build=True, test_dir=run_dir,
                      env={"OPENRDU_MEM_JOB": str(job_file.resolve())})


def _encode_requests(requests):
    return [[a, w, m, f"{d:x}"] for a, w, m, d in requests]


def traffic_phase(name: str, requests, *, valid_p: float = 1.0, ready_p: float = 1.0, seed: int = 0,
                  timeout: int | None = None) -> dict:
    """One phase of a ``traffic`` job."""
    return {"name": name, "requests": _encode_requests(requests), "valid_p": valid_p, "ready_p": ready_p,
            "seed": seed, "timeout": timeout or 200 * len(requests) + 100_000}


def run_traffic(timing, requests, *, simulator, ecc=False, queue_depth=32, channels=1, valid_p=1.0,
                ready_p=1.0, seed=0, build_dir=None, waves=False, timeout=None) -> tuple[SimResult, dict]:
    """Run ``requests`` through one channel (or tier); return the result and its metrics."""
    timing = timing_preset(timing)
    timeout = timeout or 200 * len(requests) + 20 * timing.REFI
    job = {"traffic": [traffic_phase("run", requests, valid_p=valid_p, ready_p=ready_p, seed=seed,
                                     timeout=timeout)]}
    result = run_memory_job(timing, job, simulator=simulator, ecc=ecc, queue_depth=queue_depth,
                            channels=channels, build_dir=build_dir, waves=waves, testcase="traffic",
                            seed=seed)
    return result, result.metrics.get("traffic:run", {})


def mem_bench(tier: str, preset: str, pattern: str, nbytes: int, simulator: str, *,
              write_fraction: float = 0.0, stride_bytes: int = 4096, queue_depth: int = 32,
              seed: int = 1, waves: bool = False, channels: int = 1, ports: int = 0) -> dict:
    """One ``openrdu mem-bench`` point: the RTL controller of ``preset`` under ``pattern`` traffic.

    With ``ports`` > 0: an :class:`HbmStack` of ``channels`` channels, every port streaming its own
    region at once (:func:`stack_requests`); the figures are the whole stack's (peak: ``channels``
    channels), latencies over all ports' requests.

    Raises
    ------
    ValueError
        Unknown tier/preset/pattern, a preset of another tier, or a size below one line.
    RuntimeError
        When the simulation fails (the message names the log).
    """
    if tier not in ("hbm", "ddr"):
        raise ValueError(f"tier must be 'hbm' or 'ddr', got {tier!r}")
    timing = timing_preset(preset)
    if timing.tier != tier:
        raise ValueError(f"{timing.name} is a {timing.tier.upper()} preset; --tier {tier} presets: "
                         f"{', '.join(timing_names(tier))}")
    if nbytes < LINE_BYTES:
        raise ValueError(f"--bytes must be at least one {LINE_BYTES}-byte line, got {nbytes}")
    lines = nbytes // LINE_BYTES
    if ports:
        per_port = stack_requests(timing, channels, ports, pattern, lines, write_fraction=write_fraction,
                                  stride_bytes=stride_bytes, seed=seed)
        timeout = 200 * max(len(r) for r in per_port) + 20 * timing.REFI
        job = {"traffic": [{"name": "run", "port_requests": [_encode_requests(r) for r in per_port],
                            "valid_p": 1.0, "ready_p": 1.0, "seed": seed, "timeout": timeout}]}
        result = run_memory_job(timing, job, simulator=simulator, queue_depth=queue_depth,
                                channels=channels, ports=ports, waves=waves, testcase="traffic", seed=seed)
        if not result.passed:
            raise RuntimeError(result.summary())
        metrics = result.metrics.get("traffic:run", {})
        problems = [f"port {k}: {p}" for k, reqs in enumerate(per_port)
                    for p in check_responses(reqs, metrics["responses"][k])]
        sent = [c for port in metrics["sent"] for c in port]
        received = [c for port in metrics["received"] for c in port]
        figures = traffic_figures(timing, sent, received, metrics["device"], channels=channels)
    else:
        requests = traffic_requests(timing, pattern, lines, write_fraction=write_fraction,
                                    stride_bytes=stride_bytes, seed=seed)
        result, metrics = run_traffic(timing, requests, simulator=simulator, queue_depth=queue_depth,
                                      seed=seed, waves=waves)
        if not result.passed:
            raise RuntimeError(result.summary())
        problems = check_responses(requests, metrics["responses"])
        figures = traffic_figures(timing, metrics["sent"], metrics["received"], metrics["device"])
    return {"tier": tier, "preset": timing.name, "pattern": pattern, "sim": simulator,
            "channels": channels if ports else 1, "ports": ports or 1,
            "write_fraction": write_fraction, "stride_bytes": stride_bytes if pattern == "strided" else None,
            "queue_depth": queue_depth, **figures, "data_ok": not problems,
            "timing_violations": 0, "assumed_timings": list(timing.assumed),
            "build_s": round(result.build_s, 2), "run_s": round(result.run_s, 2),
            "sim_cycles_per_s": round(figures["cycles"] / max(result.run_s, 1e-9))}
