"""The roofline of compiled kernels (:mod:`compiler.roofline`): bounds computed by hand from the
shape, the preset's numbers and the plan's choices; the stream counts it rests on against the
vectors the emulator moves; monotonicity, the binding resource, fused against unfused, and a
roofline for every registered kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler import compile_kernel
from compiler.emulate import emulate
from compiler.kernels import to_bf16_words
from compiler.program import Launch
from compiler.registry import KERNELS
from compiler.roofline import INFORMATION, RESOURCES, launch_roofline, roofline
from compiler.streams import route_vectors
from hdl.agcu import AgcuConfig, Segment
from hdl.counters import Counter, nest_steps
from hdl.kernel_image import Kernel, Route
from hdl.params import KERNEL_MEMORY, MemorySystem, TileParams, kernel_memory
from hdl.pcu import PcuConfig, Stage, VectorInput
from hdl.presets import get_preset

# the tiny preset's numbers, written out: 4 lanes of 4 bytes, 4 stages, 2 PCUs, 64-byte lines
LANES, STAGES, TINY_PCUS, LINE, VECTOR_BYTES = 4, 4, 2, 64, 16
TILE_INTERVAL = max(LANES, STAGES)


def lines(vectors: int) -> int:
    return math.ceil(vectors * VECTOR_BYTES / LINE)


def test_the_kernel_memory_system_moves_32_bytes_per_fabric_cycle_per_channel():
    """HBM2-2000 channels (32 bytes per 1 ns tCK each) at a 1 ns fabric clock: 32 bytes per cycle
    and channel; each channel's crossbar port takes one 64-byte line per cycle, so the devices bind.
    A preset's channel count is its own (``small``: a whole HBM2 stack, 8 channels)."""
    assert (KERNEL_MEMORY.hbm, KERNEL_MEMORY.fabric_ps) == ("HBM2-2000", 1000)
    assert kernel_memory("tiny").channels == get_preset("tiny").hbm_channels == 2
    small = kernel_memory("small")
    assert small.channels == 8
    assert small.bandwidth_limits() == {"devices": 256.0, "channel_ports": 512.0}
    assert small.bytes_per_cycle == 256.0
    assert MemorySystem("HBM2-2000", 1, 1000).bytes_per_cycle == 32.0
    assert MemorySystem("HBM2-2000", 2, 2000).bytes_per_cycle == 128.0          # a slower fabric
    assert MemorySystem("HBM2-2000", 2, 500).bytes_per_cycle == 32.0            # a faster fabric
    # a fabric four times slower than tCK: each channel port (one line per fabric cycle) binds
    assert MemorySystem("HBM2-2000", 2, 4000).bandwidth_limits() == {"devices": 256.0, "channel_ports": 128.0}


def _gemm_by_hand(m: int, k: int, n: int, plan: dict) -> dict:
    """The fused GEMM's bounds on tiny from its shape and the plan's choices (no bias)."""
    assert plan["pcus"] == 1                       # tiny: 2 PMUs leave room for one PCU
    mt, tb, nb, nm = math.ceil(m / LANES), plan["tiles_per_block"], plan["blocks"], plan["order"] == "nm"
    tiles = nb * mt * tb
    steps = tiles * k
    pcu = steps + (tiles - 1) * max(0, TILE_INTERVAL - k)
    a, b, c = mt * k, nb * tb * k, mt * nb * tb * STAGES     # region vectors (B rows at stride 4 = S)
    loads = {"a": a * (nb if nm else 1), "b": b * (1 if nm else mt), "c": c}
    return {"compute_all": math.ceil(pcu / TINY_PCUS), "compute_used": pcu,
            "hbm": lines(a) + lines(b) + lines(c), "agcu": max(loads.values())}


@pytest.mark.parametrize("shape", [(8, 8, 8), (8, 3, 8), (9, 13, 7), (16, 24, 20)])
@pytest.mark.parametrize("orders", [("nm",), ("mn",)])
def test_fused_gemm_bounds_by_hand(shape, orders):
    compiled = compile_kernel("gemm", "tiny", shape, orders=orders)
    want = _gemm_by_hand(*shape, compiled.plan["gemm"])
    r = compiled.roofline
    assert {key: r.bounds[key] for key in want} == want
    # one track per link on tiny: a link carries at most one route, so at most the busiest stream
    streams = route_vectors(compiled.launches[0].kernel)
    assert 0 < r.bounds["links"] <= max(streams.values())
    assert r.cycles == max(r.bounds[key] for key in RESOURCES) >= want["agcu"]


def test_rmsnorm_bounds_by_hand():
    """RMSNorm 6×7 on tiny: 2 groups of S = 4 rows, rows of 2 vectors (7 padded to 8)."""
    t, d = 6, 7
    groups, db = math.ceil(t / STAGES), math.ceil(d / LANES)
    rows = groups * STAGES
    ss_steps, y_steps = groups * (d + 1), rows * db       # pcu_ss: K = D + 1 = 8 >= 4, no bubbles
    xt, x, g, y, r_tiles = groups * (d + 1), rows * db, db, rows * db, groups * STAGES

    fused = compile_kernel("rmsnorm", "tiny", (t, d)).roofline
    assert fused.bounds["compute_all"] == math.ceil((ss_steps + y_steps) / TINY_PCUS) == 16
    assert fused.bounds["compute_used"] == math.ceil((ss_steps + y_steps) / 2) == 16
    assert fused.bounds["hbm"] == lines(xt) + lines(x) + lines(g) + lines(y) == 13
    assert fused.bounds["agcu"] == max(xt, x, g, y) == 16
    assert fused.bounds["links"] <= 16 and fused.cycles == 16

    unfused = compile_kernel("rmsnorm", "tiny", (t, d), fused=False).roofline
    sumsq, scale = (part for _, part in unfused.launches)
    assert (sumsq.bounds["compute_all"], sumsq.bounds["compute_used"]) == (ss_steps // 2, ss_steps)
    assert (scale.bounds["compute_all"], scale.bounds["compute_used"]) == (y_steps // 2, y_steps)
    assert sumsq.bounds["hbm"] == lines(xt) + lines(r_tiles) == 6
    assert scale.bounds["hbm"] == lines(r_tiles) + lines(x) + lines(g) + lines(y) == 11
    assert sumsq.bounds["agcu"] == scale.bounds["agcu"] == 16
    assert unfused.cycles == sumsq.cycles + scale.cycles == 32
    assert unfused.bounds["hbm"] == 6 + 11


def _two_stream_launch(tracks: int) -> Launch:
    """agcu_w0 streams 20 vectors and agcu_w1 4 vectors over the same two links into pcu_1_1
    (which holds each of the 4 for 5 steps), which stores 20 vectors through agcu_e1."""
    preset = get_preset("tiny").replace(name=f"tiny_{tracks}_tracks", vector_tracks=tracks)
    params = TileParams(preset, agcus=True)
    held = {1: VectorInput(pop_level=1)}
    units = {"agcu_w0": AgcuConfig("load", 0, [Counter(0, 20)]),
             "agcu_w1": AgcuConfig("load", 0, [Counter(0, 4)]),
             "pcu_1_1": PcuConfig(counters=[Counter(0, 5), Counter(0, 4)],
                                  stages=[Stage("fadd", "vin0", "vin1")], vectors=held),
             "agcu_e1": AgcuConfig("store", 0, [Counter(0, 20)])}
    routes = [Route("agcu_w0.vout", "pcu_1_1.vin0", via={"pcu_1_1.vin0": [(0, 0), (1, 0), (1, 1)]}),
              Route("agcu_w1.vout", "pcu_1_1.vin1", via={"pcu_1_1.vin1": [(0, 1), (0, 0), (1, 0), (1, 1)]}),
              Route("pcu_1_1.vout", "agcu_e1.vin"),
              Route("host.start", ["agcu_w0.start", "agcu_w1.start", "agcu_e1.start"]),
              Route("agcu_e1.done", "host.done")]
    segments = {"agcu_w0": [Segment(0, 0, 5)], "agcu_w1": [Segment(0, 8, 1)],
                "agcu_e1": [Segment(0, 16, 5, read=False, write=True)]}
    return Launch("two_streams", Kernel(params, units, routes), segments)


def test_link_bound_sums_the_routes_over_a_link_by_its_tracks():
    """Two routes share the links (0,0)→(1,0) and (1,0)→(1,1): (20 + 4) vectors over 2 tracks."""
    r = launch_roofline(_two_stream_launch(tracks=2))
    assert r.bounds["links"] == (20 + 4) // 2 == 12
    assert r.details["link_vectors"] == 24 and r.details["link_tracks"] == 2
    assert r.bounds["agcu"] == 20 and r.details["agcu"] in ("agcu_w0", "agcu_e1")
    assert r.bounds["compute_all"] == math.ceil(20 / TINY_PCUS) and r.bounds["compute_used"] == 20
    assert r.bounds["hbm"] == lines(20) + lines(4) + lines(20) == 11
    assert (r.cycles, r.bound) == (20, "agcu")
    with pytest.raises(ValueError, match="over-subscribed"):      # one track cannot carry both
        _two_stream_launch(tracks=1)


def test_pcu_cycles_follow_the_rtl_waits():
    """A systolic tile shorter than max(L, S) waits for the previous tile's drain; a program that
    reads the accumulator fires once per S·stage_latency + 2 cycles."""
    from compiler.roofline import pcu_cycles
    from hdl.pcu import Accumulator

    params = TileParams("tiny", agcus=True, pcu_acc_depth=8).pcu
    short = PcuConfig(mode="systolic", counters=[Counter(0, 3), Counter(0, 6)])
    assert pcu_cycles(short, params) == 18 + 5 * (TILE_INTERVAL - 3)
    long = PcuConfig(mode="systolic", counters=[Counter(0, 9), Counter(0, 6)])
    assert pcu_cycles(long, params) == 54
    paced = PcuConfig(counters=[Counter(0, 5), Counter(0, 2)],
                      stages=[Stage("mov", "vin0"), Stage("fsub", "acc", "vin0")],
                      accumulator=Accumulator("max", reset=(0,), value=0, to_vout=False))
    depth = STAGES * params.stage_latency
    assert pcu_cycles(paced, params) == 9 * (depth + 2) + 1


def _cases():
    """(kernel, preset, shape, options) for every registered kernel, fused and unfused forms."""
    return [("gemm", "tiny", (9, 13, 7), {"act": "gelu", "bias": True, "orders": ("nm",)}),
            ("gemm", "tiny", (6, 5, 3), {"act": "relu", "bias": True, "orders": ("mn",)}),
            ("ffn", "tiny", (6, 5, 7), {"act": "gelu"}), ("ffn", "quad", (6, 5, 7), {"gated": True}),
            ("attention", "small", (20, 8), {"causal": True, "block": 12}),
            ("rmsnorm", "tiny", (6, 7), {}), ("elementwise", "tiny", (5, 7), {})]


@pytest.mark.parametrize("kernel,preset,shape,options", _cases())
@pytest.mark.parametrize("fused", [True, False])
def test_stream_counts_equal_what_the_emulator_moves(kernel, preset, shape, options, fused):
    """Every vector route's count (:func:`compiler.streams.route_vectors`) is what the unit at its
    source sends when the launch is emulated, and every PCU's steps are the mapping's own count."""
    compiled = compile_kernel(kernel, preset, shape, fused=fused, **options)
    rng = np.random.default_rng(1)
    words = {name: to_bf16_words(rng.normal(0, 0.5, compiled.graph.tensors[name].shape))
             for name in compiled.graph.inputs}
    sent: dict = {}
    emulate(compiled, words, streams=sent)
    for launch in compiled.launches:
        counted = route_vectors(launch.kernel)
        assert counted and all(v > 0 for v in counted.values())
        assert counted == {pin: sent[(launch.name, pin)] for pin in counted}, launch.name
        steps = {site: nest_steps(c.counters) for site, c in launch.kernel.units.items()
                 if isinstance(c, PcuConfig)}
        assert steps == launch.pcu_steps, launch.name


@pytest.mark.parametrize("kernel,preset,shape,options", _cases())
@pytest.mark.parametrize("fused", [True, False])
def test_the_roofline_is_the_binding_bound(kernel, preset, shape, options, fused):
    """Each launch's roofline is its largest bound among RESOURCES (the binding one); a kernel's is
    the sum over its launches, at least its largest summed bound; every figure is positive."""
    r = compile_kernel(kernel, preset, shape, fused=fused, **options).roofline
    parts = [part for _, part in r.launches] or [r]
    for part in parts:
        assert part.cycles == part.bounds[part.bound] == max(part.bounds[key] for key in RESOURCES)
        assert set(part.bounds) == set(RESOURCES + INFORMATION)
        assert part.bounds["compute_used"] >= part.bounds["compute_all"] > 0
    assert r.cycles == sum(p.cycles for p in parts) >= max(r.bounds[key] for key in RESOURCES) > 0
    assert r.bound in RESOURCES and r.bounds[r.bound] <= r.cycles
    assert all(r.bounds[key] == sum(p.bounds[key] for p in parts) for key in r.bounds)
    table = r.table()
    assert table[0] == ["launch", "resource", "cycles", "binds", "from"]
    assert [row for row in table if row[1] == "roofline"][-1][2] == f"{r.cycles:,}"
    report = r.as_dict()
    assert (report["cycles"], report["bound"]) == (r.cycles, r.bound)
    assert len(report.get("launches", {"one": None})) == len(parts)


def test_every_registered_kernel_gets_a_roofline():
    covered = {kernel for kernel, *_ in _cases()}
    assert covered == set(KERNELS)
    for kernel, preset, shape, options in _cases():
        assert compile_kernel(kernel, preset, shape, **options).roofline.cycles > 0, kernel


@pytest.mark.parametrize("kernel,shapes", [
    ("gemm", [(8, 8, 8), (16, 8, 8), (16, 16, 8), (16, 16, 16), (32, 40, 24)]),
    ("ffn", [(4, 4, 4), (8, 4, 4), (8, 8, 8), (16, 12, 20)]),
    ("rmsnorm", [(4, 4), (8, 4), (8, 12), (20, 33)]),
])
@pytest.mark.parametrize("fused", [True, False])
def test_a_bigger_shape_has_a_larger_roofline(kernel, shapes, fused):
    rooflines = [compile_kernel(kernel, "tiny", shape, fused=fused).roofline for shape in shapes]
    assert all(a.cycles < b.cycles for a, b in zip(rooflines, rooflines[1:], strict=False)), \
        [r.cycles for r in rooflines]
    for key in ("compute_all", "hbm"):
        assert all(a.bounds[key] <= b.bounds[key] for a, b in zip(rooflines, rooflines[1:], strict=False))


@pytest.mark.parametrize("kernel,preset,shape,options", [
    ("gemm", "tiny", (9, 13, 7), {"act": "gelu"}), ("ffn", "tiny", (6, 5, 7), {}),
    ("ffn", "quad", (6, 5, 7), {"gated": True}), ("rmsnorm", "tiny", (6, 7), {}),
    ("attention", "small", (20, 8), {"causal": True})])
def test_unfused_kernels_load_more_images(kernel, preset, shape, options):
    """Every launch loads its own image before EXEC: the unfused launches need more host words in
    all, and (their intermediates go through HBM) move at least as many bytes."""
    fused_kernel = compile_kernel(kernel, preset, shape, **options)
    unfused_kernel = compile_kernel(kernel, preset, shape, fused=False, **options)
    fused, unfused = fused_kernel.roofline, unfused_kernel.roofline
    assert unfused.bounds["launch"] > fused.bounds["launch"] > 0
    assert unfused.bounds["hbm"] >= fused.bounds["hbm"]
    assert unfused.bounds["launch"] == sum(part.bounds["launch"] for _, part in unfused.launches)
    # one host word per cycle: LOAD, the image (an address word, the body and a CRC per record), EXEC
    for compiled in (fused_kernel, unfused_kernel):
        words = sum(launch.kernel.summary()["image_words"] + 2 for launch in compiled.launches)
        assert compiled.roofline.bounds["launch"] == words


def test_a_pmu_sends_only_the_reads_inside_its_range():
    """Reads outside ``[range_lo, range_hi)`` are dropped (as the PMU's golden model drops them)."""
    from compiler.streams import pmu_output_vectors
    from hdl.pmu import AddressProgram, PmuConfig
    from hdl.pmu import run_golden as pmu_golden

    params = TileParams("tiny").pmu
    write = AddressProgram([Counter(0, 16 * LANES, LANES)], runs=3)
    sixteen, eight = ([Counter(0, n * LANES, LANES)] for n in (16, 8))
    for lo, hi, reads, per_run in [(0, 8 * LANES, sixteen, 8), (4 * LANES, 14 * LANES, sixteen, 10),
                                   (0, 1 << 32, eight, 8)]:
        config = PmuConfig(write=write, read=AddressProgram(reads, runs=3), buffers=2,
                           buffer_words=16 * LANES, range_lo=lo, range_hi=hi)
        sent = pmu_golden(config, params, vin=np.zeros((3 * 16, LANES), np.uint32))["vout"]
        assert pmu_output_vectors(config) == len(sent) == 3 * per_run


def test_small_feeds_every_pcu_of_the_fused_ffn_and_six_of_a_gemm():
    """On `small` (two vector tracks, the congestion-aware router) the demo's fused FFN maps one
    pipeline per PCU pair on all 8 PCUs, and its roofline is no longer the link a second pipeline
    shared; a GEMM routes on 6 PCUs (the AGCU limit: two loads and one store per PCU of 8)."""
    ffn = compile_kernel("ffn", "small", (32, 64, 256), act="gelu")
    assert len(ffn.launches[0].pcu_steps) == 8
    bound = roofline(ffn)
    assert bound.bound != "links" and bound.bounds["links"] <= bound.bounds["agcu"]
    gemm = compile_kernel("gemm", "small", (256, 256, 256), act="gelu", bias=True)
    assert len(gemm.launches[0].pcu_steps) == 6
