# amaranth: UnusedElaboratable=no
"""The tile on Icarus and Verilator: streams across the mesh, and whole-tile kernel launches.

* ``small`` with ``units="none"``: every unit site is an open pin, so the bench drives
  and takes streams anywhere in the 4 × 4 mesh. Point-to-point and multicast vector
  routes, a scalar route on the same links as a vector route, and a control-token
  multicast run together under random valid and ready stalls; every sink must get
  exactly what its source sent, in order. A second kernel measures latency per link
  hop and full-rate throughput.
* ``tiny`` with every unit: a first kernel fills a PMU from an edge pin; a bit-flipped
  second image is refused (the status names the unit) and nothing runs; the intact
  image then routes the PMU's vectors through two PCUs (fmul by a constant, fadd of a
  kernel argument) into another PMU and out to an edge pin, where the result must equal
  the PCU and PMU golden models bit for bit. A last kernel leaves more ``wdone`` tokens on
  a pin it does not route than the switch FIFO holds; the next image routes that pin to an
  edge, where nothing may arrive (Program Load drops them, including the ones the tile's
  token counter held back). Before that, a kernel that can never finish (the two-PCU kernel
  without its argument) stalls with its units busy and their FIFOs full; ABORT leaves RUNNING
  for ABORTED with nothing busy and nothing coming out, and the two-PCU kernel then runs bit
  exact without a reset. Last, a kernel sends more vectors into a PMU and a PCU input than they take;
  the vectors left in their input FIFOs must not reach the next launches (Program Load empties
  them), which refill the PMU and run the two-PCU kernel bit exact again.

(The first line turns off Amaranth's UnusedElaboratable warning for the tile built only to read
its unit and pin names.)
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from hdl.kernel_image import Kernel, Route
from hdl.launch import Command, LaunchError, LaunchState, command_word
from hdl.tile import Tile, TileParams
from sim.tile import (
    HOP_ROUTES,
    flagged,
    hop_figures,
    hop_phases,
    phase,
    pin_port,
    run_tile_phases,
    scale_bias_kernels,
)
from sim.unit_jobs import pack_vector

pytestmark = pytest.mark.cocotb

LOADED, DONE, REFUSED = int(LaunchState.LOADED), int(LaunchState.DONE), int(LaunchState.REFUSED)
RUNNING, ABORTED = int(LaunchState.RUNNING), int(LaunchState.ABORTED)


def run(params, phases, simulator, build_dir, waves):
    result = run_tile_phases(params, phases, simulator=simulator, build_dir=build_dir, waves=waves)
    assert result.passed, result.summary()
    return result.metrics["tile_phases"]


def load_words(kernel: Kernel) -> list[int]:
    """LOAD (and ARGS) only: the kernel's host words without the EXEC."""
    return kernel.host_words()[:-1]


# ---------------------------------------------------------------------------- the mesh alone
def mesh_traffic_kernel(params):
    row1 = {"agcu_e1.vin": [(0, 1), (1, 1), (2, 1), (3, 1)]}
    return Kernel(params, routes=[
        Route("agcu_w0.vout", ["agcu_e3.vin"]),                                   # corner to corner
        Route("agcu_w2.vout", ["agcu_e0.vin", "agcu_e2.vin", "pmu_1_2.vin"]),     # multicast
        Route("agcu_w1.vout", ["agcu_e1.vin"], via=row1),                          # vector and scalar
        Route("agcu_w1.sout", ["agcu_e1.sin"], via={"agcu_e1.sin": row1["agcu_e1.vin"]}),  # share links
        Route("agcu_w3.done", ["agcu_e3.start", "pcu_2_2.start"]),                 # control tokens
    ])


def test_mesh_streams_point_to_point_multicast_and_shared_links(simulator, sim_build_dir, waves):
    params = TileParams("small", units="none")
    rng = random.Random(7)
    vec = lambda n: [rng.getrandbits(params.preset.vector_bits) for _ in range(n)]  # noqa: E731
    traffic = mesh_traffic_kernel(params)
    # the shared-link routes really share switch-to-switch links, on different fabrics
    links = {f: {(a[1:3], b[1:3]) for tree in traffic.trees for a, b in tree
                 if a[0] == b[0] == "sw" and a[4] == "out" and a[3] == f} for f in ("vector", "scalar")}
    assert links["vector"] & links["scalar"], "the vector and scalar routes were meant to share links"

    sent = {"agcu_w0.vout": vec(48), "agcu_w2.vout": vec(48), "agcu_w1.vout": vec(40),
            "agcu_w1.sout": [rng.getrandbits(32) for _ in range(40)], "agcu_w3.done": [1] * 24}
    expect = {"agcu_e3.vin": "agcu_w0.vout", "agcu_e0.vin": "agcu_w2.vout", "agcu_e2.vin": "agcu_w2.vout",
              "pmu_1_2.vin": "agcu_w2.vout", "agcu_e1.vin": "agcu_w1.vout", "agcu_e1.sin": "agcu_w1.sout",
              "agcu_e3.start": "agcu_w3.done", "pcu_2_2.start": "agcu_w3.done"}
    full_rate = {src: vec(64) for src, _, _ in HOP_ROUTES}
    phases = [
        phase("load_traffic", host=load_words(traffic), until_state=[LOADED, REFUSED]),
        phase("traffic", sources=sent, sinks={k: len(sent[v]) for k, v in expect.items()},
              valid_p=0.7, ready_p=0.4, timeout=6000, quiet_cycles=30),
        *hop_phases(params, full_rate),
    ]
    m = run(params, phases, simulator, sim_build_dir, waves)
    for name in ("load_traffic", "load_hops"):
        assert m[name]["status"]["state"] == LOADED, (name, m[name]["status"])
    got = m["traffic"]["received"]
    for sink, source in expect.items():
        port = sink.replace(".", "_")
        assert got[port] == sent[source], f"{sink}: order, loss or duplication in what {source} sent"
    assert m["traffic"]["stray"] == {}, f"payloads nobody routed: {m['traffic']['stray']}"

    # latency per link hop (first payload, every sink always ready) and full-rate throughput
    h = m["hops"]
    for src, dst, _ in HOP_ROUTES:
        assert h["received"][pin_port(dst)] == full_rate[src], f"{dst}: order, loss or duplication"
    figures = hop_figures(h)
    expected_hop = 1 + int(params.preset.hop_register)  # hop register + the receiving FIFO
    assert figures["cycles_per_hop"] == [expected_hop, expected_hop], figures
    for route, f in figures["routes"].items():
        assert f["payloads_per_cycle"] == 1.0, f"{route}: {f} (is the credit loop longer than the FIFO?)"


# ---------------------------------------------------------------------------- whole-tile launch
N = 16  # vectors through the kernel


def test_tile_launch_two_pcus_between_pmus_and_refused_image(simulator, sim_build_dir, waves):
    params = TileParams("tiny")
    lanes = params.preset.lanes
    rng = np.random.default_rng(11)
    data = rng.normal(0, 4, (N, lanes)).astype(np.float32).view(np.uint32)
    fill, compute, golden = scale_bias_kernels(params, N, 1.5, -0.25)
    expected = golden(data)
    want = [pack_vector(row) for row in expected]
    # the golden models against float64: within one fp32 rounding of x * 1.5 - 0.25 each step
    exact = data.view(np.float32).astype(np.float64) * 1.5 - 0.25
    assert np.allclose(expected.view(np.float32), exact, rtol=2 ** -22, atol=2 ** -126)

    # flip one bit inside the PCU at (1, 1)'s record
    image = compute.image()
    address = compute.fg.address_of("pcu_1_1")
    start = next(i for i, first in enumerate(_record_starts(image)) if first and image[i] >> 16 == address)
    corrupted = list(image)
    corrupted[start + 3] ^= 1 << 9
    refused_load = [command_word(Command.LOAD, len(corrupted)), *corrupted]
    out_ports = {"agcu_w1.vin": N}
    leave, listen = stale_token_kernels(params, N)
    # the two-PCU kernel without its argument: pcu_1_1 waits for it forever, everything before it
    # backs up (ARGS 0: no argument is left over from the earlier launches)
    hang = [command_word(Command.LOAD, len(image)), *image, command_word(Command.ARGS, 0),
            command_word(Command.EXEC, 1)]
    overfill, extra = overfill_kernel(params, N)
    stale = rng.normal(0, 4, (N + extra, lanes)).astype(np.float32).view(np.uint32)
    phases = [
        phase("load_fill", host=load_words(fill), until_state=[LOADED, REFUSED]),
        phase("fill", host=[command_word(Command.EXEC, 1)],
              sources={"agcu_w0.vout": [pack_vector(r) for r in data]},
              until_state=[DONE, REFUSED], timeout=4000),
        phase("load_corrupted", host=refused_load, until_state=[REFUSED, LOADED]),
        phase("exec_refused", host=[command_word(Command.EXEC, 1)], until_state=[REFUSED], quiet_cycles=300),
        phase("compute", host=compute.host_words(), sinks=out_ports, ready_p=0.5,
              until_state=[DONE, REFUSED], timeout=8000),
        phase("rerun", host=[command_word(Command.EXEC, 1)], sinks=out_ports, until_state=[DONE, REFUSED],
              timeout=8000),
        phase("hang", host=hang, until_state=[DONE, REFUSED], timeout=1500),
        phase("abort", host=[command_word(Command.ABORT)], until_state=[ABORTED], quiet_cycles=200),
        phase("after_abort", host=compute.host_words(), sinks=out_ports, ready_p=0.5,
              until_state=[DONE, REFUSED], timeout=8000),
        phase("leave_tokens", host=leave.host_words(),
              sources={"agcu_w0.vout": [pack_vector(r) for r in data]}, until_state=[DONE, REFUSED],
              timeout=4000),
        phase("listen", host=load_words(listen), until_state=[LOADED, REFUSED], quiet_cycles=100),
        phase("overfill", host=overfill.host_words(),
              sources={"agcu_w0.vout": [pack_vector(r) for r in stale]}, valid_p=0.7,
              until_state=[DONE, REFUSED], timeout=4000),
        phase("refill", host=fill.host_words(), sources={"agcu_w0.vout": [pack_vector(r) for r in data]},
              valid_p=0.7, until_state=[DONE, REFUSED], timeout=4000),
        phase("after_overfill", host=compute.host_words(), sinks=out_ports, ready_p=0.5,
              until_state=[DONE, REFUSED], timeout=8000),
    ]
    m = run(params, phases, simulator, sim_build_dir, waves)
    assert m["fill"]["status"]["state"] == DONE, m["fill"]["status"]
    assert m["fill"]["status"]["tokens"] == 1
    bad = m["load_corrupted"]["status"]
    assert (bad["state"], bad["error"], bad["error_unit"]) == (REFUSED, int(LaunchError.CRC), address), bad
    refused = m["exec_refused"]
    assert refused["status"]["error"] == int(LaunchError.NOT_LOADED), refused["status"]
    assert not refused["busy_seen"], "a unit ran although the image was refused"
    assert refused["stray"] == {}, f"output after a refused image: {refused['stray']}"

    done = m["compute"]
    assert done["status"]["state"] == DONE and done["status"]["error"] == 0, done["status"]
    assert done["received"]["agcu_w1_vin"] == want, "tile result differs from the PCU/PMU golden models"
    assert done["status"]["cycles"] >= N, done["status"]
    # EXEC again without reloading: the PMU still holds the data, the same result comes out
    assert m["rerun"]["received"]["agcu_w1_vin"] == want
    assert m["rerun"]["status"]["state"] == DONE

    # tokens a kernel left on a pin it did not route never reach the next kernel's routes
    assert m["leave_tokens"]["status"]["state"] == DONE, m["leave_tokens"]["status"]
    assert m["listen"]["status"]["state"] == LOADED, m["listen"]["status"]
    assert m["listen"]["stray"] == {}, f"tokens from the previous kernel arrived: {m['listen']['stray']}"

    # a kernel that never finishes: stalled with busy units and full FIFOs, until ABORT
    tile = Tile(params)
    units = [site.name for site in tile.unit_sites]
    hung = m["hang"]
    assert hung["status"]["state"] == RUNNING, hung["status"]
    stalled = flagged(hung["busy_at_end"], units)
    assert "pcu_1_1" in stalled and set(stalled) <= set(compute.units), stalled
    waiting = flagged(hung["waiting_at_end"], tile.watched_pins)
    assert "pcu_1_1.vin0" in waiting, f"pcu_1_1 waits for its argument with its vin0 FIFO full: {waiting}"
    aborted = m["abort"]
    assert aborted["status"]["state"] == ABORTED and aborted["status"]["error"] == 0, aborted["status"]
    assert aborted["busy_at_end"] == 0, flagged(aborted["busy_at_end"], units)
    assert aborted["waiting_at_end"] == 0, flagged(aborted["waiting_at_end"], tile.watched_pins)
    assert aborted["stray"] == {}, f"output after ABORT: {aborted['stray']}"
    # ... and a new kernel runs without a reset (the PMU's memory, filled before, survived the abort)
    again = m["after_abort"]
    assert again["status"]["state"] == DONE, again["status"]
    assert again["received"]["agcu_w1_vin"] == want, "the kernel after ABORT differs from the golden models"

    # vectors a kernel left in the units' input FIFOs do not poison the next launches
    assert m["overfill"]["status"]["state"] == DONE, m["overfill"]["status"]
    assert len(m["overfill"]["sent_at"]["agcu_w0_vout"]) == N + extra, "the fabric did not take every vector"
    assert m["refill"]["status"]["state"] == DONE, m["refill"]["status"]
    after = m["after_overfill"]
    assert after["status"]["state"] == DONE, after["status"]
    assert after["received"]["agcu_w1_vin"] == want, "vectors left in an input FIFO reached the next kernels"


def stale_token_kernels(params, vectors: int) -> tuple[Kernel, Kernel]:
    """``leave``: the PMU at (1, 0) writes ``vectors`` one-vector runs, one ``wdone`` each, on a pin
    no route takes (the PMU at (0, 1) takes the same vectors in one run and ends the kernel);
    ``listen``: only a route from that ``wdone`` pin to the edge pin ``agcu_e0.start``."""
    from hdl.counters import Counter
    from hdl.pmu import AddressProgram, PmuConfig

    lanes = params.preset.lanes
    assert vectors > params.preset.switch_fifo_depth, "the switch FIFO would hold every token"
    leave = Kernel(params, units={
        "pmu_1_0": PmuConfig(write=AddressProgram([Counter(0, lanes, lanes)], runs=vectors),
                             auto_start=False),
        "pmu_0_1": PmuConfig(write=AddressProgram([Counter(0, vectors * lanes, lanes)]), auto_start=False),
    }, routes=[
        Route("agcu_w0.vout", ["pmu_1_0.vin", "pmu_0_1.vin"]),
        Route("host.start", ["pmu_1_0.start", "pmu_0_1.start"]),
        Route("pmu_0_1.wdone", ["host.done"]),
    ])
    listen = Kernel(params, routes=[Route("pmu_1_0.wdone", ["agcu_e0.start"])])
    return leave, listen


def overfill_kernel(params, vectors: int) -> tuple[Kernel, int]:
    """A kernel that takes ``vectors`` vectors from ``agcu_w0.vout`` into the PMU at (1, 0) and the PCU
    at (0, 0) (its results into the PMU at (0, 1), whose ``wdone`` ends the kernel), and the number
    of extra vectors to send it: enough to fill both units' input FIFOs, few enough that the switch
    FIFOs behind them hold the rest (so the source finishes)."""
    from hdl.counters import Counter
    from hdl.pcu import PcuConfig, Stage
    from hdl.pmu import AddressProgram, PmuConfig

    lanes = params.preset.lanes
    linear = AddressProgram([Counter(0, vectors * lanes, lanes)])
    extra = params.preset.fifo_depth + 2
    assert extra - params.preset.fifo_depth <= params.preset.switch_fifo_depth
    kernel = Kernel(params, units={
        "pmu_1_0": PmuConfig(write=linear, auto_start=False),
        "pcu_0_0": PcuConfig(counters=[Counter(0, vectors)], stages=[Stage("fadd", "vin0", "vin0")],
                             auto_start=False),
        "pmu_0_1": PmuConfig(write=linear, auto_start=False),
    }, routes=[
        Route("agcu_w0.vout", ["pmu_1_0.vin", "pcu_0_0.vin0"]),
        Route("pcu_0_0.vout", ["pmu_0_1.vin"]),
        Route("host.start", ["pmu_1_0.start", "pcu_0_0.start", "pmu_0_1.start"]),
        Route("pmu_0_1.wdone", ["host.done"]),
    ])
    return kernel, extra


def _record_starts(image: list[int]) -> list[bool]:
    starts = [False] * len(image)
    i = 0
    while i < len(image):
        starts[i] = True
        i += (image[i] & 0xFFFF) + 2
    return starts
