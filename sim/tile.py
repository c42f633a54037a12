"""Run a tile on Icarus or Verilator: host command phases and traffic on its open pins.

:func:`run_tile_phases` writes the tile's Verilog (:meth:`hdl.tile.Tile.verilog`: the
tile plus one PCU and one PMU module), builds it once per build directory and runs
the phases with :mod:`sim.testbenches.tile_bench`. :func:`phase` builds one phase record;
:func:`pin_port` names the tile port of an open pin.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth.lib import wiring

from hdl.tile import Tile, TileParams

from .runner import SimResult, run_cocotb, write_verilog

__all__ = ["phase", "pin_port", "run_tile_phases", "tile_stream_ports", "flagged"]

BENCH = "sim.testbenches.tile_bench"


def pin_port(pin: str) -> str:
    """``"agcu_w0.vout"`` → the tile port ``"agcu_w0_vout"``."""
    site, name = pin.split(".")
    return f"{site}_{name}"


def flagged(bits: int, names: list[str]) -> list[str]:
    """The names whose bit is set in ``bits`` (bit ``k`` is ``names[k]``): busy units from
    ``unit_busy`` and ``tile.unit_sites``, waiting pins from ``pin_waiting`` and ``tile.watched_pins``."""
    if bits >> len(names):
        raise ValueError(f"bits {bits:#x} beyond the {len(names)} names")
    return [name for k, name in enumerate(names) if bits >> k & 1]


def tile_stream_ports(tile: Tile) -> tuple[list[str], list[str]]:
    """The tile's open-pin stream ports: (inputs the bench drives, outputs it takes from)."""
    inputs, outputs = [], []
    for name, member in tile.signature.members.items():
        if name == "host" or not member.is_signature:
            continue
        (inputs if member.flow is wiring.In else outputs).append(name)
    return inputs, outputs


def phase(name: str, *, host=(), sources=None, sinks=None, valid_p: float = 1.0, ready_p: float = 1.0,
          until_state=(), timeout: int = 20000, quiet_cycles: int = 0) -> dict:
    """One phase of :mod:`sim.testbenches.tile_bench`; pins may be given as ``"site.pin"``."""
    for label, p in (("valid_p", valid_p), ("ready_p", ready_p)):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"{label} must be in (0, 1], got {p}")
    fix = lambda k: pin_port(k) if "." in k else k  # noqa: E731
    return {"name": name, "host": [int(w) for w in host],
            "sources": {fix(k): [int(x) for x in v] for k, v in (sources or {}).items()},
            "sinks": {fix(k): int(v) for k, v in (sinks or {}).items()},
            "valid_p": valid_p, "ready_p": ready_p, "until_state": [int(s) for s in until_state],
            "timeout": timeout, "quiet_cycles": quiet_cycles}


def run_tile_phases(params: TileParams | str, phases: list[dict], *, simulator: str,
                    build_dir: str | os.PathLike, waves: bool = False, seed: int | None = None) -> SimResult:
    """Build the tile of ``params`` and run ``phases`` on ``simulator``.

    The result's ``metrics["tile_phases"][name]`` holds, per phase, ``status``,
    ``received``, ``sent_at``, ``arrived_at``, ``busy_seen``, ``stray``, ``phase_cycles``,
    ``busy_at_end`` (bit ``k``: ``tile.unit_sites[k]``) and ``waiting_at_end`` (bit ``k``:
    ``tile.watched_pins[k]``; :func:`flagged` names them).
    """
    if not phases:
        raise ValueError("no phases to run")
    tile = Tile(params)
    inputs, outputs = tile_stream_ports(tile)
    for ph in phases:
        for port in ph["sources"]:
            if port not in inputs:
                raise ValueError(f"phase {ph['name']}: {port} is not an open input pin of this tile")
        for port in ph["sinks"]:
            if port not in outputs:
                raise ValueError(f"phase {ph['name']}: {port} is not an open output pin of this tile")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = write_verilog(tile, build_dir / "tile.v", "top")
    spec = build_dir / "phases.json"
    spec.write_text(json.dumps({"inputs": inputs, "outputs": outputs, "phases": phases}))
    return run_cocotb(source, BENCH, simulator=simulator, build_dir=build_dir, waves=waves, seed=seed,
                      env={"OPENRDU_TILE_PHASES": str(spec.resolve())})


# --------------------------------------------------------------------------- hop latency
#: Routes of the hop measurement: (source pin, sink pin, switches passed); 0, 3 and 6 link hops.
HOP_ROUTES = (
    ("agcu_w1.vout", "pmu_0_1.vin", [(0, 1)]),
    ("agcu_w2.vout", "agcu_e2.vin", [(0, 2), (1, 2), (2, 2), (3, 2)]),
    ("agcu_w3.vout", "agcu_e0.vin", [(0, 3), (0, 2), (0, 1), (0, 0), (1, 0), (2, 0), (3, 0)]),
)


def hop_kernel(params):
    """A kernel with the three :data:`HOP_ROUTES` (needs a mesh of at least 4 × 4)."""
    from hdl.kernel_image import Kernel, Route

    return Kernel(params, routes=[Route(src, [dst], via={dst: path}) for src, dst, path in HOP_ROUTES])


def hop_phases(params, payloads: dict[str, list[int]]) -> list[dict]:
    """LOAD the hop kernel, then stream ``payloads[source]`` down each route at full rate."""
    kernel = hop_kernel(params)
    count = {dst: len(payloads[src]) for src, dst, _ in HOP_ROUTES}
    from hdl.launch import LaunchState

    settled = [int(LaunchState.LOADED), int(LaunchState.REFUSED)]
    return [phase("load_hops", host=kernel.host_words()[:-1], until_state=settled),
            phase("hops", sources=payloads, sinks=count, timeout=4000)]


def hop_figures(metrics: dict) -> dict:
    """Latency of each route's first payload, cycles per link hop, and payloads per cycle per route."""
    routes = {}
    for src, dst, path in HOP_ROUTES:
        s, d = pin_port(src), pin_port(dst)
        arrived = metrics["arrived_at"][d]
        routes[f"{src} -> {dst}"] = {
            "link_hops": len(path) - 1,
            "latency_cycles": arrived[0] - metrics["sent_at"][s][0],
            "payloads_per_cycle": len(arrived) / (arrived[-1] - arrived[0] + 1),
        }
    base = next(iter(routes.values()))
    per_hop = [(r["latency_cycles"] - base["latency_cycles"]) / r["link_hops"]
               for r in routes.values() if r["link_hops"]]
    return {"routes": routes, "cycles_per_hop": per_hop}


def measure_hops(preset, simulator: str, *, build_dir, hop_register: bool | None = None, payloads: int = 64,
                 seed: int = 1, waves: bool = False) -> list[dict]:
    """Stream ``payloads`` vectors down the :data:`HOP_ROUTES` of a network-only tile at full rate.

    Returns one row per route: link hops, first-payload latency, payloads per cycle at the sink,
    cycles per hop (relative to the 0-hop route) and whether every payload arrived intact and in order.
    """
    import random

    from hdl.presets import get_preset

    p = get_preset(preset)
    if p.grid_cols < 4 or p.grid_rows < 4:
        raise ValueError(f"the hop routes need a mesh of at least 4 x 4; "
                         f"{p.name!r} is {p.grid_cols} x {p.grid_rows}")
    if hop_register is not None:
        p = p.replace(hop_register=hop_register)
    params = TileParams(p, units="none")
    rng = random.Random(seed)
    data = {src: [rng.getrandbits(p.vector_bits) for _ in range(payloads)] for src, _, _ in HOP_ROUTES}
    tag = "hopreg" if p.hop_register else "nohopreg"
    result = run_tile_phases(params, hop_phases(params, data), simulator=simulator,
                             build_dir=Path(build_dir) / f"{p.name}-{tag}-{simulator}", waves=waves)
    if not result.passed:
        raise RuntimeError(result.summary())
    metrics = result.metrics["tile_phases"]["hops"]
    figures = hop_figures(metrics)
    rows = []
    per_hop = iter(figures["cycles_per_hop"])
    for (src, dst, _), (route, f) in zip(HOP_ROUTES, figures["routes"].items(), strict=True):
        rows.append({"simulator": simulator, "preset": p.name, "hop_register": p.hop_register, "route": route,
                     **f, "cycles_per_hop": next(per_hop) if f["link_hops"] else None,
                     "intact": metrics["received"][pin_port(dst)] == data[src]})
    return rows


# --------------------------------------------------------------------------- an example kernel
def scale_bias_kernels(params, vectors: int, scale: float, bias: float):
    """Two kernels for a 2 × 2 (or larger) tile computing ``y = x · scale + bias`` on fp32 vectors.

    ``fill`` writes ``vectors`` vectors arriving on ``agcu_w0.vout`` into the PMU at (1, 0).
    ``compute`` reads them out of that PMU, through the PCU at (0, 0) (``fmul`` by a
    configuration constant) and the PCU at (1, 1) (``fadd`` of kernel argument 0, delivered on
    the scalar fabric), into the PMU at (0, 1), which buffers the run and sends it to
    ``agcu_w1.vin``. Both end with one done token (the PMUs' ``wdone`` / ``rdone``).

    Returns ``(fill, compute, golden)``; ``golden(x)`` gives the expected output words of
    ``compute`` for input words ``x`` ((vectors, lanes) uint32), from the PMU and PCU golden models.
    """
    import numpy as np

    from hdl.counters import Counter
    from hdl.kernel_image import Kernel, Route
    from hdl.pcu import PcuConfig, ScalarInput, Stage
    from hdl.pcu import run_golden as pcu_golden
    from hdl.pmu import AddressProgram, PmuConfig
    from hdl.pmu import run_golden as pmu_golden

    params = params if isinstance(params, TileParams) else TileParams(params)
    lanes = params.preset.lanes
    scale_bits = int(np.float32(scale).view(np.uint32))
    bias_bits = int(np.float32(bias).view(np.uint32))
    linear = AddressProgram([Counter(0, vectors * lanes, lanes)])
    fill = Kernel(params, units={"pmu_1_0": PmuConfig(write=linear, auto_start=False)}, routes=[
        Route("agcu_w0.vout", ["pmu_1_0.vin"]),
        Route("host.start", ["pmu_1_0.start"]),
        Route("pmu_1_0.wdone", ["host.done"]),
    ])
    times = PcuConfig(counters=[Counter(0, vectors)], stages=[Stage("fmul", "vin0", "const0")],
                      constants=[scale_bits], auto_start=False)
    plus = PcuConfig(counters=[Counter(0, vectors)], stages=[Stage("fadd", "vin0", "scalar0")],
                     scalars={0: ScalarInput(pop_level=1)}, auto_start=False)
    stage_buffer = PmuConfig(write=linear, read=linear, auto_start=False)
    compute = Kernel(params, units={
        "pmu_1_0": PmuConfig(read=linear, auto_start=False), "pcu_0_0": times, "pcu_1_1": plus,
        "pmu_0_1": stage_buffer,
    }, routes=[
        Route("pmu_1_0.vout", ["pcu_0_0.vin0"]),
        Route("pcu_0_0.vout", ["pcu_1_1.vin0"]),
        Route("pcu_1_1.vout", ["pmu_0_1.vin"]),
        Route("pmu_0_1.vout", ["agcu_w1.vin"]),
        Route("host.arg0", ["pcu_1_1.sin0"]),
        Route("host.start", ["pmu_1_0.start", "pcu_0_0.start", "pcu_1_1.start", "pmu_0_1.start"]),
        Route("pmu_0_1.rdone", ["host.done"]),
    ], arguments=[bias_bits], done_tokens=1)

    def golden(x):
        held = pmu_golden(PmuConfig(write=linear, read=linear), params.pmu, vin=x)["vout"]
        scaled = pcu_golden(times, params.pcu, vin0=held)["vout"]
        biased = pcu_golden(plus, params.pcu, vin0=scaled, sin0=[bias_bits])["vout"]
        return pmu_golden(stage_buffer, params.pmu, vin=biased)["vout"]

    return fill, compute, golden


def run_scale_bias(preset, simulator: str, *, build_dir, vectors: int = 16, seed: int = 1,
                   waves: bool = False) -> dict:
    """Launch :func:`scale_bias_kernels` on a whole tile: fill, then compute; compare with golden."""
    import numpy as np

    from hdl.launch import Command, LaunchState, command_word

    from .unit_jobs import pack_vector

    params = TileParams(preset)
    fill, compute, golden = scale_bias_kernels(params, vectors, 1.5, -0.25)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 4, (vectors, params.preset.lanes)).astype(np.float32).view(np.uint32)
    want = [pack_vector(row) for row in golden(x)]
    done = [int(LaunchState.DONE), int(LaunchState.REFUSED)]
    phases = [
        phase("load_fill", host=fill.host_words()[:-1],
              until_state=[int(LaunchState.LOADED), int(LaunchState.REFUSED)]),
        phase("fill", host=[command_word(Command.EXEC, 1)],
              sources={"agcu_w0.vout": [pack_vector(r) for r in x]}, until_state=done),
        phase("compute", host=compute.host_words(), sinks={"agcu_w1.vin": vectors}, until_state=done),
    ]
    result = run_tile_phases(params, phases, simulator=simulator,
                             build_dir=Path(build_dir) / f"{params.preset.name}-{simulator}", waves=waves)
    if not result.passed:
        raise RuntimeError(result.summary())
    m = result.metrics["tile_phases"]
    status = m["compute"]["status"]
    return {"simulator": simulator, "preset": params.preset.name, "vectors": vectors,
            "image_words": len(compute.image()), "records": len(compute.records()),
            "state": LaunchState(status["state"]).name, "kernel_cycles": status["cycles"],
            "bit_exact": m["compute"]["received"]["agcu_w1_vin"] == want,
            "build_s": round(result.build_s, 1), "run_s": round(result.run_s, 1)}


def build_tile(preset, *, build_dir, jobs: int = 2, extra_args=()) -> dict:
    """Generate a whole tile's Verilog and build it with Verilator (``--cc --build --hierarchical``).

    The PCU and PMU modules are marked as hierarchical blocks (:meth:`hdl.tile.Tile.verilog`),
    so Verilator compiles each once; flattened, a ``plasticine`` tile needs more than 20 GB.

    Returns Verilog lines and bytes, modules, generation seconds, Verilator's verilation
    and total build seconds, and the build's peak memory (MiB, from ``getrusage``).
    """
    import re
    import resource
    import subprocess
    import time

    from . import toolchain

    toolchain.activate("verilator")
    params = TileParams(preset)
    out = Path(build_dir) / params.preset.name
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    source = write_verilog(Tile(params), out / "tile.v", "top")
    generate_s = time.perf_counter() - start
    text = source.read_text()
    start = time.perf_counter()
    # -Wno-UNOPTFLAT: a hierarchical block is opaque, so Verilator assumes every path through it may be
    # combinational and reports loops (unit cfg.ready -> launch controller -> cfg.valid) that are not there
    proc = subprocess.run(["verilator", "--cc", "--build", "--hierarchical", "-j", str(jobs), "-Wno-WIDTH",
                           "-Wno-UNOPTFLAT", *extra_args,
                           "--top-module", "top", "-Mdir", str(out / "obj"), str(source)],
                          capture_output=True, text=True)
    build_s = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    (out / "build.log").write_text(log)
    walltime = re.search(r"Walltime ([\d.]+) s", log)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"preset": params.preset.name, "ok": proc.returncode == 0, "verilog_lines": text.count("\n"),
            "verilog_bytes": len(text), "modules": text.count("\nmodule "),
            "generate_s": round(generate_s, 1),
            "verilate_s": float(walltime.group(1)) if walltime else None, "build_s": round(build_s, 1),
            "peak_mib": round(peak), "log": str(out / "build.log")}
