"""``openrdu bench``: one run that measures, side by side on one machine, how fast the simulators
are, what the kernels achieve, and the memory and CoE figures; writes ``bench/results.json``,
PNG plots and ``docs/performance.md``.

Sections of the results (every repeated figure is ``{"median", "min", "max", "samples"}``):

``sim_speed``
    Simulated cycles per wall second of the bench's kernel simulation (gemm and ffn, fused
    and unfused, in one simulation of the preset's kernel system) on each simulator, their
    ratio ``verilator_over_icarus``; and of the smallest unit (the unit input FIFO, random
    valid/ready stalls, the same payload count) on Verilator, Icarus and Amaranth's simulator.
    The wall time is the simulator process's (start-up, loading the model and the Python
    testbench included): what a user waits for.
``kernels``
    Per kernel: cycles fused and unfused, the fusion speedup, PCU/PMU utilisation and HBM
    bytes (fused), bit exactness, and fused and unfused the compiler's roofline
    (:mod:`compiler.roofline`: ``roofline_cycles_*``, the binding resource ``bound_*`` and
    ``roofline_fraction_*`` = roofline cycles / measured cycles). Cycles are properties of the
    RTL and must agree across simulators and repeats (``cycles_agree``). A kernel the compiler
    does not map yet is recorded with ``available: false`` and the compiler's reason.
``memory``
    ``mem-bench`` points (HBM2-2000 sequential and random reads, one channel; sequential reads of
    the preset's whole stack, ``hbm_channels`` channels with as many ports streaming at once)
    and the DDR→HBM copy bandwidth.
``coe``
    ``openrdu coe simulate --json`` on the default node: switch time vs the DGX baseline and the
    overall speedup, with and without prefetching.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["run_bench", "KERNEL_CASES", "stats", "machine_info", "write_plots", "write_report", "bench_table"]

REPO = Path(__file__).resolve().parents[2]

#: The bench's kernels per preset: name -> (shape, options). Other presets use ``"default"``.
KERNEL_CASES: dict[str, dict[str, tuple[tuple[int, ...], dict]]] = {
    "tiny": {
        "gemm": ((9, 13, 7), {"act": "gelu", "bias": True}),
        "ffn": ((6, 5, 7), {"act": "relu"}),
        "attention": ((8, 4), {}),
        "rmsnorm": ((6, 7), {}),
    },
    "default": {
        "gemm": ((32, 64, 64), {"act": "gelu", "bias": True}),
        "ffn": ((32, 64, 256), {"act": "gelu"}),
        "attention": ((32, 64), {}),
        "rmsnorm": ((64, 128), {}),
    },
}


#: The simulation-speed workload when some simulator does not run the whole kernel list.
SPEED_KERNELS = ("rmsnorm",)


def stats(values) -> dict:
    values = [float(v) for v in values]
    if not values:
        return {"median": None, "min": None, "max": None, "samples": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": len(values),
    }


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "missing"


def machine_info() -> dict:
    """The machine and the tools a run was made with."""
    from sim import toolchain
    from sim.kernels import VERILATOR_HIER_ENV, VERILATOR_OPT_ENV, verilator_build

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "hdl", "compiler", "sim"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", None
    sims = {}
    for name in toolchain.SIMULATORS:
        status = toolchain.simulator_status(name)
        sims[name] = {"usable": status.usable, "version": status.version, "reason": status.reason or ""}
    return {
        "machine": {
            "host": platform.node(),
            "os": platform.platform(),
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_GiB": mem_gib,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "tools": {
            "python": sys.version.split()[0],
            **{p: _version(p) for p in ("amaranth", "cocotb", "numpy", "dask", "distributed")},
            "simulators": sims,
            # sim.kernels builds the kernel system as sim.kernels.verilator_build() says (the
            # variables may change it); the unit (stream FIFO) builds use Verilator's default -Os
            "verilator_cflags": os.environ.get("OPENRDU_VERILATOR_CFLAGS", "")
            or f"kernel system {verilator_build()}, units -Os"
            + ("" if os.environ.get(VERILATOR_OPT_ENV) or os.environ.get(VERILATOR_HIER_ENV)
               else " (defaults)"),
        },
        "git": {"commit": commit, "dirty_rtl": dirty},
    }


# ---------------------------------------------------------------------------------------------
# measurements


def _compile_cases(preset: str):
    """[(name, fused, compiled)] of the bench kernels, and {name: reason} of unmapped ones."""
    from compiler import MappingError, compile_kernel

    table = KERNEL_CASES.get(preset, KERNEL_CASES["default"])
    cases, unavailable = [], {}
    for name, (shape, options) in table.items():
        try:
            fused = compile_kernel(name, preset, shape, fused=True, **options)
            unfused = compile_kernel(name, preset, shape, fused=False, **options)
        except MappingError as error:
            unavailable[name] = {"shape": list(shape), "options": options, "reason": str(error)}
            continue
        cases += [(name, True, fused), (name, False, unfused)]
    return cases, unavailable


def _speed_stats(samples: list[dict]) -> dict:
    return {
        "cycles": samples[0]["cycles"],
        "sim_s": stats(s["sim_s"] for s in samples),
        "cycles_per_s": stats(s["cycles"] / s["sim_s"] for s in samples),
    }


def measure_kernels(
    preset: str,
    simulators: list[str],
    repeats: int,
    build_root,
    scratch,
    say: Callable[[str], None],
    *,
    kernel_sims: list[str] | None = None,
    speed_kernels: list[str] | None = None,
) -> tuple[dict, dict, dict]:
    """Returns (kernels, kernel sim speed per simulator, builds).

    The kernel figures come from the simulators in ``kernel_sims`` (default: all of
    ``simulators``), each running every bench kernel fused and unfused in one simulation per
    repeat. The simulation speed compares every simulator on one workload: the whole kernel list,
    or only ``speed_kernels`` (fused and unfused) when given — then each simulator runs that
    workload as a separate simulation per repeat, so a simulator too slow for the whole list
    (Icarus on ``small``) is still compared on the same work.
    """
    from sim.kernel_jobs import ensure_build, run_isolated
    from sim.kernels import random_inputs

    kernel_sims = [s for s in simulators if kernel_sims is None or s in kernel_sims]
    cases, unavailable = _compile_cases(preset)
    speed_cases = None
    if speed_kernels is not None:
        table = KERNEL_CASES.get(preset, KERNEL_CASES["default"])
        unknown = sorted(set(speed_kernels) - set(table))
        if unknown:
            raise ValueError(f"unknown bench kernel(s) {', '.join(unknown)}; "
                             f"the bench's kernels: {', '.join(table)}")
        speed_cases = [case for case in cases if case[0] in speed_kernels]
        if not speed_cases:
            raise ValueError(f"none of the speed kernels {', '.join(speed_kernels)} maps onto {preset}")
    inputs = {}
    for name, fused, compiled in cases:
        if fused:
            inputs[name] = random_inputs(compiled, seed=7)
    builds, speed, per = {}, {}, {}
    for sim in simulators:
        say(f"{preset}: {sim} kernel system build (reused when current)")
        builds[sim] = ensure_build(preset, sim, build_root)
        samples, speed_samples = [], []

        def simulate(workload, label, samples_to, sim=sim):
            runs = run_isolated([(c, inputs[n]) for n, _, c in workload], simulator=sim,
                                build_root=build_root, run_dir=Path(scratch) / label)
            samples_to.append({"cycles": sum(r.cycles for r in runs), "sim_s": sum(r.sim_s for r in runs)})
            return runs

        for rep in range(repeats):
            if sim in kernel_sims:
                say(f"{preset}: kernels on {sim}, repeat {rep + 1}/{repeats}")
                runs = simulate(cases, f"kernels-{sim}-{rep}", samples)
                for (name, fused, compiled), run in zip(cases, runs, strict=True):
                    per.setdefault((name, fused), []).append((sim, compiled, run))
            if speed_cases is not None:
                say(f"{preset}: speed workload ({', '.join(speed_kernels)}) on {sim}, "
                    f"repeat {rep + 1}/{repeats}")
                runs = simulate(speed_cases, f"speed-{sim}-{rep}", speed_samples)
                if not all(r.bit_exact and r.within_bound for r in runs):
                    raise RuntimeError(f"the speed workload was not bit exact on {sim}")
        speed[sim] = _speed_stats(speed_samples if speed_cases is not None else samples)
    kernels = {}
    for name in dict.fromkeys(n for n, _, _ in cases):
        if (name, True) not in per:
            continue
        f_runs, u_runs = per[(name, True)], per[(name, False)]
        f_cycles = {r.cycles for _, _, r in f_runs}
        u_cycles = {r.cycles for _, _, r in u_runs}
        _, f_compiled, f0 = f_runs[0]
        _, u_compiled, u0 = u_runs[0]
        shape, options = KERNEL_CASES.get(preset, KERNEL_CASES["default"])[name]
        kernels[name] = {
            "available": True,
            "shape": list(shape),
            "options": options,
            "cycles_fused": stats(r.cycles for _, _, r in f_runs)["median"],
            "cycles_unfused": stats(r.cycles for _, _, r in u_runs)["median"],
            "speedup": stats(r.cycles for _, _, r in u_runs)["median"]
            / stats(r.cycles for _, _, r in f_runs)["median"],
            "pcu_utilization": f0.pcu_utilization,
            "pcu_utilization_unfused": u0.pcu_utilization,
            "pmu_utilization": f0.pmu_utilization,
            "hbm_bytes_fused": f0.hbm_bytes,
            "hbm_bytes_unfused": u0.hbm_bytes,
            "launches_fused": len(f_compiled.launches),
            "launches_unfused": len(u_compiled.launches),
            "bit_exact": all(r.bit_exact and r.within_bound for _, _, r in f_runs + u_runs),
            "cycles_agree": len(f_cycles) == 1 and len(u_cycles) == 1,
            "measured_on": sorted({s for s, _, _ in f_runs}),
            **_roofline_figures(f_compiled, u_compiled, f0.cycles, u0.cycles),
        }
    for name, info in unavailable.items():
        kernels[name] = {"available": False, **info}
    return kernels, speed, builds


def _roofline_figures(fused, unfused, fused_cycles: int, unfused_cycles: int) -> dict:
    """The roofline of the fused and the unfused kernel against their measured cycles."""
    out = {}
    for mode, compiled, cycles in (("fused", fused, fused_cycles), ("unfused", unfused, unfused_cycles)):
        roofline = compiled.roofline
        out.update({f"roofline_cycles_{mode}": roofline.cycles, f"bound_{mode}": roofline.bound,
                    f"roofline_fraction_{mode}": roofline.fraction(cycles)})
    return out


def measure_units(
    preset: str, simulators: list[str], repeats: int, items: int, build_dir, say: Callable[[str], None]
) -> dict:
    """The unit input FIFO under random stalls on each HDL simulator and on Amaranth's."""
    from .smoke import run_smoke

    out = {}
    for sim in simulators:
        samples, build_s = [], []
        for rep in range(repeats):
            say(f"{preset}: stream FIFO on {sim}, repeat {rep + 1}/{repeats}")
            rows = [
                r
                for r in run_smoke(
                    preset, [sim], items=items, seed=rep + 1, waves=False, build_root=Path(build_dir)
                )
                if r["top"] == "stream_fifo"
            ]
            if not rows or rows[0]["result"] != "pass":
                raise RuntimeError(f"stream FIFO smoke on {sim} failed: {rows}")
            samples.append(rows[0]["cycles_per_s"])
            build_s.append(rows[0]["build_s"])
        out[sim] = {"cycles_per_s": stats(samples), "build_s": stats(build_s)}
    samples = []
    for rep in range(repeats):
        say(f"{preset}: stream FIFO on amaranth pysim, repeat {rep + 1}/{repeats}")
        samples.append(pysim_fifo_speed(preset, items, seed=rep + 1))
    out["amaranth"] = {
        "cycles_per_s": stats(s["cycles_per_s"] for s in samples),
        "cycles": samples[0]["cycles"],
    }
    return out


def pysim_fifo_speed(preset: str, items: int, seed: int = 1) -> dict:
    """The stream smoke workload (random stalls, each side 60 % active) on Amaranth's simulator."""
    import random

    from amaranth.sim import Simulator

    from hdl.presets import get_preset
    from hdl.stream import StreamFifo, vector_layout

    p = get_preset(preset)
    dut = StreamFifo(vector_layout(p.lanes), p.fifo_depth)
    rng = random.Random(seed)
    width = len(dut.i.payload.as_value())
    sent = [rng.getrandbits(width) for _ in range(items)]
    got, state = [], {"cycles": 0, "done": False}

    # stream_put/stream_get of sim.pysim, on the payload's raw bits (the payload is an array layout)
    async def producer(ctx):
        r = random.Random(seed + 1)
        for value in sent:
            while r.random() < 0.4:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload.as_value(), value)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        r = random.Random(seed + 2)
        for _ in sent:
            while r.random() < 0.4:
                await ctx.tick()
            ctx.set(dut.o.ready, 1)
            (value,) = await ctx.tick().sample(dut.o.payload.as_value()).until(dut.o.valid)
            ctx.set(dut.o.ready, 0)
            got.append(int(value))
        state["done"] = True

    async def counter(ctx):
        while not state["done"]:
            await ctx.tick()
            state["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in (producer, consumer, counter):
        sim.add_testbench(bench)
    start = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - start
    if got != sent:
        raise RuntimeError("Amaranth simulation of the stream FIFO lost or reordered payloads")
    return {"cycles": state["cycles"], "wall_s": wall, "cycles_per_s": state["cycles"] / wall}


def measure_memory(simulator: str, repeats: int, nbytes: int, fabric: str, say) -> dict:
    from hdl.presets import get_preset
    from sim.dma import copy_bench
    from sim.memory import mem_bench

    out = {}
    channels = get_preset(fabric).hbm_channels
    points = [("hbm_seq", "seq", {}), ("hbm_random", "random", {})]
    if channels > 1:
        points.append(("hbm_stack_seq", "seq", {"channels": channels, "ports": channels}))
    for key, pattern, stack in points:
        rows = []
        for rep in range(repeats):
            what = f"{stack['channels']} channels x {stack['ports']} ports" if stack else "one channel"
            say(f"mem-bench HBM2-2000 {pattern} ({what}) on {simulator}, repeat {rep + 1}/{repeats}")
            rows.append(mem_bench("hbm", "HBM2-2000", pattern, nbytes, simulator, seed=1, **stack))
        first = rows[0]
        out[key] = {
            "channels": first["channels"],
            "ports": first["ports"],
            "preset": first["preset"],
            "pattern": pattern,
            "bytes": first["bytes"],
            "sim": simulator,
            "achieved_GBps": first["achieved_GBps"],
            "peak_GBps": first["peak_GBps"],
            "efficiency": first["efficiency"],
            "row_hit_rate": first["row_hit_rate"],
            "avg_latency_ns": first["avg_latency_ns"],
            "p99_latency_ns": first["p99_latency_ns"],
            "data_ok": all(r["data_ok"] for r in rows),
            "figures_agree": len({(r["achieved_GBps"], r["cycles"]) for r in rows}) == 1,
            "sim_cycles_per_s": stats(r["sim_cycles_per_s"] for r in rows),
        }
    say(f"DDR -> HBM copy on {simulator}")
    copy = copy_bench(preset=fabric, nbytes=min(nbytes, 1 << 16), simulator=simulator)
    out["ddr_to_hbm_copy"] = {
        k: copy[k]
        for k in (
            "preset",
            "ddr",
            "hbm",
            "bytes",
            "copy_GBps",
            "bottleneck",
            "efficiency_vs_bottleneck",
            "bit_exact",
            "limits_GBps",
        )
    }
    return out


def measure_coe(requests: int, say) -> dict:
    out = {}
    for label, extra in (("default", []), ("prefetch", ["--prefetch"])):
        say(f"coe simulate ({label})")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "openrdu",
                "coe",
                "simulate",
                "--json",
                "--requests",
                str(requests),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=1800,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"coe simulate failed: {proc.stderr[-1000:]}")
        r = json.loads(proc.stdout)
        out[label] = {
            "args": ["--requests", str(requests), *extra],
            "switch_time_s": r["switch_time_s"],
            "baseline_switch_time_s": r["baseline_switch_time_s"],
            "switch_time_ratio": r["baseline_switch_time_s"] / r["switch_time_s"],
            "mean_switch_stall_s": r["mean_switch_stall_s"],
            "baseline_mean_switch_stall_s": r["baseline_mean_switch_stall_s"],
            "stall_ratio": (
                r["baseline_mean_switch_stall_s"] / r["mean_switch_stall_s"]
                if r["mean_switch_stall_s"]
                else None
            ),
            "overall_speedup": r["overall_speedup"],
            "requests_per_s": r["requests_per_s"],
            "baseline_requests_per_s": r["baseline_requests_per_s"],
            "pair_GBps": r["pair_GBps"],
            "pair_source": r["pair_source"],
            "baseline": r["baseline"],
            "experts": r["experts"],
            "sockets": r["sockets"],
        }
    return out


def _ratio(a: dict, b: dict) -> dict | None:
    if not a or not b or not a.get("median") or not b.get("median"):
        return None
    return {"median": a["median"] / b["median"], "min": a["min"] / b["max"], "max": a["max"] / b["min"]}


def baseline_summary(results: dict) -> dict:
    """What a later run keeps of an earlier run's results to show beside its own: commit, date, the
    kernel system's build and the simulation speeds (a summary already made is returned as it is)."""
    if "speeds" in results:
        return results
    speed = results.get("sim_speed", {})
    return {
        "commit": results.get("git", {}).get("commit", ""),
        "created": results.get("created", ""),
        "verilator_build": results.get("tools", {}).get("verilator_cflags", ""),
        "workload": speed.get("workload"),
        "speeds": {sim: s["cycles_per_s"]["median"] for sim, s in speed.get("stats", {}).items()},
        "unit_speeds": {sim: u["cycles_per_s"]["median"] for sim, u in speed.get("units", {}).items()
                        if isinstance(u, dict) and "cycles_per_s" in u},
        "verilator_over_icarus": speed.get("verilator_over_icarus"),
    }


def run_bench(
    *,
    preset: str = "small",
    repeats: int = 3,
    simulators: list[str] | None = None,
    build_root=None,
    out_dir="bench",
    unit_items: int = 2000,
    mem_bytes: int = 1 << 16,
    coe_requests: int = 1000,
    sections=("kernels", "units", "memory", "coe"),
    kernel_sims: list[str] | None = None,
    speed_kernels: list[str] | None = None,
    baseline: dict | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> dict:
    """Run the bench and return the results dict (also written to ``out_dir/results.json``).

    ``baseline`` is an earlier run's results dict: its simulation speeds are kept beside the new
    ones (:func:`baseline_summary`), so that a change's before/after figures come out of one
    report."""
    from sim import toolchain

    from .run import BUILD_ROOT

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    build_root = Path(build_root or BUILD_ROOT)
    wanted = simulators or list(toolchain.SIMULATORS)
    usable = [s for s in wanted if toolchain.simulator_status(s).usable]
    results = {
        "preset": preset,
        "repeats": repeats,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "simulators": usable,
        "unavailable_simulators": {
            s: toolchain.simulator_status(s).reason for s in wanted if s not in usable
        },
        **machine_info(),
    }
    if baseline is not None:
        results["baseline"] = baseline_summary(baseline)
    sim_speed = {"cycles_per_s": {}, "stats": {}, "units": {}}
    if kernel_sims is None:
        # beyond tiny the whole kernel list takes Icarus hours: kernel figures from Verilator,
        # and every simulator compared on the short speed workload
        slow = preset != "tiny" and "verilator" in usable
        kernel_sims = ["verilator"] if slow else list(usable)
    if speed_kernels is None and set(usable) - set(kernel_sims):
        speed_kernels = list(SPEED_KERNELS)
    if "kernels" in sections:
        kernels, speed, builds = measure_kernels(
            preset, usable, repeats, build_root, out_dir / ".work" / "runs", say,
            kernel_sims=kernel_sims, speed_kernels=speed_kernels,
        )
        results["kernels"] = kernels
        results["builds"] = builds
        for sim, s in speed.items():
            sim_speed["cycles_per_s"][sim] = s["cycles_per_s"]["median"]
            sim_speed["stats"][sim] = s
        measured = [n for n, k in kernels.items() if k.get("available")]
        sim_speed["workload"] = (
            "one simulation of the bench kernels ("
            + ", ".join(f"{n} fused+unfused" for n in (speed_kernels or measured))
            + f") on {preset}"
        )
        sim_speed["speed_kernels"] = list(speed_kernels or measured)
        results["kernel_sims"] = sorted({s for k in kernels.values() for s in k.get("measured_on", [])})
        ratio = _ratio(
            speed.get("verilator", {}).get("cycles_per_s"), speed.get("icarus", {}).get("cycles_per_s")
        )
        sim_speed["verilator_over_icarus"] = ratio["median"] if ratio else None
        sim_speed["verilator_over_icarus_range"] = ratio
        if ratio is None:
            sim_speed["verilator_over_icarus_reason"] = "needs both simulators usable and measured"
    if "units" in sections:
        units = measure_units(preset, usable, repeats, unit_items, out_dir / ".work" / "units", say)
        sim_speed["units"] = {"unit": "stream_fifo", "items": unit_items, **units}
        ratios = {}
        for a, b in (("verilator", "icarus"), ("verilator", "amaranth"), ("icarus", "amaranth")):
            r = _ratio(units.get(a, {}).get("cycles_per_s"), units.get(b, {}).get("cycles_per_s"))
            if r:
                ratios[f"{a}_over_{b}"] = r
        sim_speed["units"]["ratios"] = ratios
    results["sim_speed"] = sim_speed
    if "memory" in sections and usable:
        primary = "verilator" if "verilator" in usable else usable[0]
        results["memory"] = measure_memory(primary, repeats, mem_bytes, preset, say)
    if "coe" in sections:
        results["coe"] = measure_coe(coe_requests, say)
    results["wall_s"] = round(time.perf_counter() - start, 1)
    results["plots"] = [str(p) for p in write_plots(results, out_dir)]
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    import shutil

    shutil.rmtree(out_dir / ".work", ignore_errors=True)
    return results


# ---------------------------------------------------------------------------------------------
# plots, table, report


def write_plots(results: dict, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    speed = results.get("sim_speed", {})
    groups = []
    if speed.get("stats"):
        groups.append(("kernel system", {s: v["cycles_per_s"] for s, v in speed["stats"].items()}))
    units = speed.get("units", {})
    unit_sims = {s: units[s]["cycles_per_s"] for s in ("verilator", "icarus", "amaranth") if s in units}
    if unit_sims:
        groups.append(("stream FIFO", unit_sims))
    if groups:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        colours = {"verilator": "#d9534f", "icarus": "#4a90d9", "amaranth": "#5cb85c"}
        width, sims = 0.25, ["verilator", "icarus", "amaranth"]
        for gi, (_label, data) in enumerate(groups):
            for si, sim in enumerate(sims):
                if sim not in data:
                    continue
                s = data[sim]
                x = gi + (si - 1) * width
                ax.bar(
                    x,
                    s["median"],
                    width,
                    color=colours[sim],
                    label=sim if gi == 0 or sim not in groups[0][1] else None,
                    yerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]],
                    capsize=3,
                )
                ax.text(x, s["median"], f"{s['median']:,.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)), [g[0] for g in groups])
        ax.set_ylabel("simulated cycles / wall s")
        ax.set_title(f"Simulation speed on {results['preset']} (median, min-max)", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "sim_speed.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    kernels = {n: k for n, k in results.get("kernels", {}).items() if k.get("available")}
    if kernels:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.4))
        names = list(kernels)
        xs = range(len(names))
        a1.bar(
            [x - 0.2 for x in xs],
            [kernels[n]["cycles_fused"] for n in names],
            0.4,
            label="fused",
            color="#d9534f",
        )
        a1.bar(
            [x + 0.2 for x in xs],
            [kernels[n]["cycles_unfused"] for n in names],
            0.4,
            label="unfused",
            color="#999999",
        )
        for x, n in zip(xs, names, strict=True):
            a1.text(
                x,
                kernels[n]["cycles_unfused"],
                f"{kernels[n]['speedup']:.2f}x",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        a1.set_xticks(list(xs), names)
        a1.set_ylabel("cycles")
        a1.set_title("fused vs unfused (label: speedup)", fontsize=9)
        a1.legend(fontsize=8)
        a2.bar(
            [x - 0.2 for x in xs],
            [100 * kernels[n]["pcu_utilization"] for n in names],
            0.4,
            label="fused",
            color="#d9534f",
        )
        a2.bar(
            [x + 0.2 for x in xs],
            [100 * kernels[n]["pcu_utilization_unfused"] for n in names],
            0.4,
            label="unfused",
            color="#999999",
        )
        a2.set_xticks(list(xs), names)
        a2.set_ylabel("PCU utilisation (%)")
        a2.set_title("PCU utilisation", fontsize=9)
        fig.suptitle(f"Kernels on {results['preset']}", fontsize=9)
        fig.tight_layout()
        path = out_dir / "kernels.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _fmt(value, pattern="{:,.0f}"):
    if value is None:
        return "-"
    return pattern.format(value)


def _range(s: dict | None, pattern="{:,.0f}") -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{pattern.format(s['median'])} ({pattern.format(s['min'])}-{pattern.format(s['max'])})"


def table_rows(results: dict) -> dict[str, list[list[str]]]:
    """The bench's tables as plain rows (header first), for the console and the report."""
    tables = {}
    speed = results.get("sim_speed", {})
    base = results.get("baseline")
    # the baseline's kernel-system speeds compare only on the same workload
    same_work = bool(base) and base.get("workload") == speed.get("workload")

    def beside(old, new):
        if old is None or not new:
            return ["-", "-"]
        return [f"{old:,.0f}", f"{new / old:.1f}x"]

    rows = [["workload", "simulator", "cycles/s median (min-max)", "samples"]]
    if base:
        rows[0] += [f"baseline {base['commit']}", "now / baseline"]
    for sim, s in speed.get("stats", {}).items():
        rows.append(["kernel system", sim, _range(s["cycles_per_s"]), str(s["cycles_per_s"]["samples"])])
        if base:
            rows[-1] += beside(base["speeds"].get(sim) if same_work else None, s["cycles_per_s"]["median"])
    units = speed.get("units", {})
    for sim in ("verilator", "icarus", "amaranth"):
        if sim in units:
            rows.append(
                [
                    f"stream FIFO ({units['items']} items)",
                    sim,
                    _range(units[sim]["cycles_per_s"]),
                    str(units[sim]["cycles_per_s"]["samples"]),
                ]
            )
            if base:
                rows[-1] += beside(base["unit_speeds"].get(sim), units[sim]["cycles_per_s"]["median"])
    ratio = speed.get("verilator_over_icarus_range")
    if speed.get("stats"):
        rows.append(
            [
                "kernel system",
                "verilator / icarus",
                _range(ratio, "{:.1f}x") if ratio else speed.get("verilator_over_icarus_reason", "-"),
                "",
            ]
        )
        if base:
            old = base.get("verilator_over_icarus") if same_work else None
            rows[-1] += [f"{old:.1f}x" if old else "-", "-"]
    for name, r in units.get("ratios", {}).items():
        rows.append(["stream FIFO", name.replace("_over_", " / "), _range(r, "{:.1f}x"), ""])
        if base:
            rows[-1] += ["-", "-"]
    tables["sim_speed"] = rows
    rows = [
        [
            "kernel",
            "shape",
            "cycles fused",
            "cycles unfused",
            "speedup",
            "PCU util. fused",
            "PCU util. unfused",
            "HBM bytes fused/unfused",
            "roofline fused/unfused",
            "bound fused/unfused",
            "roofline fraction fused/unfused",
            "bit exact",
            "status",
        ]
    ]
    for name, k in results.get("kernels", {}).items():
        if not k.get("available"):
            rows.append(
                [
                    name,
                    "x".join(map(str, k["shape"])),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    f"unavailable: {k['reason']}",
                ]
            )
            continue
        rows.append(
            [
                name,
                "x".join(map(str, k["shape"])),
                f"{k['cycles_fused']:,.0f}",
                f"{k['cycles_unfused']:,.0f}",
                f"{k['speedup']:.2f}x",
                f"{k['pcu_utilization']:.1%}",
                f"{k['pcu_utilization_unfused']:.1%}",
                f"{k['hbm_bytes_fused']:,} / {k['hbm_bytes_unfused']:,}",
                *_roofline_cells(k),
                "yes" if k["bit_exact"] else "NO",
                "ok" if k["cycles_agree"] else "cycles differ between runs",
            ]
        )
    if len(rows) > 1:
        tables["kernels"] = rows
    mem = results.get("memory")
    if mem:
        rows = [["point", "GB/s", "peak / limit", "efficiency", "avg ns", "p99 ns", "data"]]
        for key in ("hbm_seq", "hbm_random", "hbm_stack_seq"):
            if key not in mem:
                continue
            m = mem[key]
            where = (f"{m['channels']} channels, {m['ports']} ports streaming" if m.get("ports", 1) > 1
                     else "one channel")
            rows.append(
                [
                    f"{m['preset']} {m['pattern']} reads, {where}, {m['bytes'] // 1024} KiB ({m['sim']})",
                    f"{m['achieved_GBps']:.2f}",
                    f"{m['peak_GBps']:.1f}",
                    f"{m['efficiency']:.1%}",
                    f"{m['avg_latency_ns']:.1f}",
                    f"{m['p99_latency_ns']:.1f}",
                    "ok" if m["data_ok"] else "WRONG",
                ]
            )
        c = mem["ddr_to_hbm_copy"]
        rows.append(
            [
                f"{c['ddr']} -> {c['hbm']} copy, {c['bytes'] // 1024} KiB",
                f"{c['copy_GBps']:.2f}",
                f"{c['limits_GBps'][c['bottleneck']]:.1f} ({c['bottleneck']})",
                f"{c['efficiency_vs_bottleneck']:.1%}",
                "-",
                "-",
                "ok" if c["bit_exact"] else "WRONG",
            ]
        )
        tables["memory"] = rows
    coe = results.get("coe")
    if coe:
        rows = [
            [
                "node model",
                "switch s (SN40L)",
                "switch s (DGX)",
                "switch ratio",
                "stall ratio",
                "overall speedup",
            ]
        ]
        for label, c in coe.items():
            rows.append(
                [
                    f"{c['experts']} experts, {c['sockets']} sockets, {label}",
                    f"{c['switch_time_s']:.4f}",
                    f"{c['baseline_switch_time_s']:.4f}",
                    f"{c['switch_time_ratio']:.1f}x",
                    _fmt(c["stall_ratio"], "{:.1f}x"),
                    f"{c['overall_speedup']:.2f}x",
                ]
            )
        tables["coe"] = rows
    return tables


def _roofline_cells(kernel: dict) -> list[str]:
    """The roofline, bound and roofline fraction cells of a kernel row (``-`` for results
    written before the bench recorded the roofline)."""
    def pair(key, pattern):
        values = [kernel.get(f"{key}_{mode}") for mode in ("fused", "unfused")]
        return " / ".join("-" if v is None else pattern.format(v) for v in values)
    return [pair("roofline_cycles", "{:,}"), pair("bound", "{}"), pair("roofline_fraction", "{:.2f}")]


TITLES = {
    "sim_speed": "Simulation speed (simulated cycles per wall second)",
    "kernels": "Kernels: fused vs unfused",
    "memory": "Memory (RTL controllers, timing-checked DRAM models)",
    "coe": "CoE expert switching (openrdu coe simulate)",
}


def bench_table(results: dict):
    """Rich tables of the results, for the console."""
    from rich.table import Table

    out = []
    for key, rows in table_rows(results).items():
        table = Table(title=f"{TITLES[key]} - {results['preset']}")
        for i, head in enumerate(rows[0]):
            table.add_column(head, justify="left" if i == 0 else "right")
        for row in rows[1:]:
            table.add_row(*row)
        out.append(table)
    return out


def _md_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def sweep_timings(out_dir) -> list[dict]:
    """The wall-time records ``openrdu sweep`` appends to ``<csv stem>.runs.jsonl`` next to its CSV
    (one line per sweep run), for the CSVs in ``out_dir``."""
    records = []
    for path in sorted(Path(out_dir).glob("*.runs.jsonl")):
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def write_report(results: dict, path, *, sweeps: list[dict] | None = None) -> Path:
    """``docs/performance.md`` from the results (and the sweep wall-time records, if any)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m, t = results["machine"], results["tools"]
    sims = ", ".join(f"{n} {s['version']}" for n, s in t["simulators"].items() if s["usable"])
    lines = [
        "# Performance",
        "",
        "Generated by `openrdu bench` (`make bench`) from `bench/results.json`; do not edit by hand.",
        f"Preset `{results['preset']}`, {results['repeats']} repeat(s); figures are medians with (min-max).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_GiB']} GiB, {m['os']}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average'] or [])} (a shared machine: wall-clock figures "
        f"vary with the load). Tools: Python {t['python']}, amaranth {t['amaranth']}, cocotb {t['cocotb']}, "
        f"{sims}; Verilator C++ flags {t['verilator_cflags']}. Commit {results['git']['commit']}"
        f"{' (uncommitted RTL changes)' if results['git']['dirty_rtl'] else ''}; {results['created']}; "
        f"the bench took {results['wall_s']:.0f} s.",
        "",
    ]
    tables = table_rows(results)
    for key, rows in tables.items():
        lines += [f"## {TITLES[key]}", "", _md_table(rows), ""]
        if key == "sim_speed":
            speed = results["sim_speed"]
            lines += [
                f"Kernel system workload: {speed.get('workload', '-')}. The wall time is the simulator "
                "process's (start-up, model load and the Python testbench included), not the build's. "
                "The stream FIFO runs the smoke workload (random valid/ready stalls, each side 60 % "
                "active, the testbench in Python every cycle) on all three simulators.",
                "",
            ]
            base = results.get("baseline")
            if base:
                lines += [
                    f"Baseline: the bench of commit {base['commit']} ({base['created']}; Verilator build "
                    f"{base['verilator_build'] or '-'}), on the same machine kind"
                    + ("" if base.get("workload") == speed.get("workload") else
                       f"; its kernel-system workload differs ({base.get('workload')}), so only the "
                       "stream FIFO figures compare")
                    + ". Now: Verilator build " + results["tools"]["verilator_cflags"] + ".",
                    "",
                ]
            if (Path(path).parent.parent / "bench" / "sim_speed.png").exists() or "sim_speed.png" in str(
                results.get("plots")
            ):
                lines += ["![simulation speed](../bench/sim_speed.png)", ""]
        if key == "kernels":
            lines += [
                "Speedup = unfused cycles / fused cycles. PCU utilisation = MAC-array/SIMD steps of all "
                "PCUs over (cycles x PCUs of the tile). Roofline: the compiler's lower bound on the "
                "cycles and the resource that binds ([kernels.md](kernels.md), Roofline); roofline "
                "fraction = roofline / measured cycles. Cycles are the RTL's, identical on every "
                "simulator that ran them (checked: `cycles_agree`); kernel figures measured on "
                + (", ".join(results.get("kernel_sims") or results.get("simulators", [])) or "-") + ".",
                "",
            ]
            if "kernels.png" in str(results.get("plots")):
                lines += ["![kernels](../bench/kernels.png)", ""]
    if sweeps:
        rows = [["spec", "points run", "already done", "failed", "workers", "wall s", "s per point", "when"]]
        for r in sweeps:
            per = r["wall_s"] / r["ran"] if r["ran"] else None
            rows.append(
                [
                    r["spec"],
                    str(r["ran"]),
                    str(r["skipped"]),
                    str(r["failed"]),
                    str(r["workers"]),
                    f"{r['wall_s']:.1f}",
                    _fmt(per, "{:.1f}"),
                    r["created"],
                ]
            )
        lines += [
            "## Sweep wall time (`openrdu sweep`)",
            "",
            _md_table(rows),
            "",
            "Each point is one independent simulation on a Dask worker against the shared build; "
            "the wall time includes starting the LocalCluster (a few seconds).",
            "",
        ]
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
