"""Run the DDR → HBM copy path (:class:`hdl.dma.DdrToHbmCopy`) and measure its bandwidth.

:func:`copy_run` describes one run (segments and AGCU programs from the source and
destination line ranges); :func:`run_copy` builds the path and runs a list of them;
:func:`copy_bench` is the figure ``openrdu mem-bench --copy`` prints and the CoE host uses.
"""

from __future__ import annotations

import json
from pathlib import Path

from hdl.agcu import AgcuConfig, AgcuParams, Segment
from hdl.counters import Counter
from hdl.dma import DdrToHbmCopy
from hdl.memctrl.timing import LINE_BYTES, timing_preset
from hdl.params import KERNEL_MEMORY

from .memory import timing_spec
from .runner import SimResult, new_run_dir, run_cocotb

__all__ = ["copy_run", "run_copy", "copy_bench", "FABRIC_PS"]

BENCH = "sim.testbenches.copy_bench"
#: Fabric clock period (ps), the one the kernel system runs at (:data:`hdl.params.KERNEL_MEMORY`).
FABRIC_PS = KERNEL_MEMORY.fabric_ps


def _program(params: AgcuParams, direction: str, lines: int) -> AgcuConfig:
    """An AGCU run over ``lines`` consecutive lines from the segment base.

    One counter when the vector count fits the counter width; otherwise three (256-vector
    inner loop, then two halves), since every counter field must fit the width.
    """
    vectors = lines * params.vectors_per_line
    limit = (1 << params.counter_width) - 1
    if vectors <= limit:
        counters = [Counter(0, vectors)]
    else:
        half = vectors // 2
        if vectors % 512 or half > limit:
            raise ValueError(f"{lines} lines: a copy this large must be a multiple of "
                             f"{512 // params.vectors_per_line} lines and at most "
                             f"{2 * (limit // 256) * 256 // params.vectors_per_line} lines")
        counters = [Counter(0, 256), Counter(0, half, 256), Counter(0, half + 1, half)]
    return AgcuConfig(direction=direction, segment=0, counters=counters)


def copy_run(path: DdrToHbmCopy, name: str, lines: int, *, src_line: int = 0, dst_line: int = 0,
             dst_bound: int | None = None, dst_writable: bool = True, seed: int = 1,
             timeout_ns: float | None = None, source: str | None = None, dump: str | None = None) -> dict:
    """One run: copy ``lines`` lines from DDR line ``src_line`` to HBM line ``dst_line``.

    ``dst_bound`` (default ``lines``) sizes the destination segment; a smaller bound or a
    read-only destination makes the store AGCU fault. ``source`` names an .npy file of
    ``(lines, 8)`` uint64 lines to preload into DDR (default: random lines from ``seed``);
    ``dump`` names an .npy file the bench writes the destination HBM lines to after the run.
    """
    if lines < 1:
        raise ValueError(f"lines must be positive, got {lines}")
    rd, wr = path.rd_params, path.wr_params
    rd_seg = Segment(0, src_line, lines, read=True, write=False)
    wr_seg = Segment(0, dst_line, lines if dst_bound is None else dst_bound, read=False, write=dst_writable)
    timeout = timeout_ns or 400 * lines + 50_000
    return {"name": name, "lines": lines, "src_line": src_line, "dst_line": dst_line, "seed": seed,
            "rd_seg": [rd_seg.payload(rd)], "wr_seg": [wr_seg.payload(wr)],
            "rd_cfg": _program(rd, "load", lines).encode(rd),
            "wr_cfg": _program(wr, "store", lines).encode(wr),
            "timeout_ns": timeout, **({"source": str(source)} if source else {}),
            **({"dump": str(dump)} if dump else {})}


def run_copy(runs: list[dict], *, path: DdrToHbmCopy, simulator: str, build_dir=None,
             waves: bool = False) -> tuple[SimResult, dict]:
    """Build ``path`` and run ``runs`` (from :func:`copy_run`); return the result and per-run metrics."""
    tag = f"{path.preset.name}-{path.ddr.name}-{path.hbm.name}{'-ecc' if path.ecc else ''}"
    build_dir = Path(build_dir or Path("build/sim/copy") / tag / simulator)
    build_dir.mkdir(parents=True, exist_ok=True)
    job = {"ddr": timing_spec(path.ddr), "hbm": timing_spec(path.hbm), "ecc": path.ecc,
           "fabric_ps": FABRIC_PS, "runs": runs}
    run_dir = new_run_dir(build_dir)
    job_file = run_dir / "job.json"
    job_file.write_text(json.dumps(job))
    result = run_cocotb(path, BENCH, simulator=simulator, build_dir=build_dir, waves=waves, reuse_build=True,
                        test_dir=run_dir, env={"OPENRDU_COPY_JOB": str(job_file.resolve())})
    return result, result.metrics.get("copy", {}).get("runs", {})


def copy_bench(*, preset: str = "small", ddr: str = "DDR4-3200", hbm: str = "HBM2-2000",
               nbytes: int = 1 << 20,
               simulator: str = "verilator", waves: bool = False) -> dict:
    """Measured DDR → HBM bandwidth of one channel pair (the copy path), with its bottleneck.

    Raises
    ------
    RuntimeError
        When the simulation fails or the copy is not exact.
    """
    path = DdrToHbmCopy(preset, ddr=ddr, hbm=hbm)
    lines = max(1, nbytes // LINE_BYTES)
    result, runs = run_copy([copy_run(path, "copy", lines)], path=path, simulator=simulator, waves=waves)
    if not result.passed:
        raise RuntimeError(result.summary())
    run = runs["copy"]
    if run["timed_out"] or not run["equal"]:
        raise RuntimeError(f"copy failed: timed out {run['timed_out']}, "
                           f"{run['mismatched_lines']} lines differ")
    seconds_ns = run["elapsed_ps"] / 1000
    achieved = lines * LINE_BYTES / seconds_ns
    ddr_t, hbm_t = timing_preset(ddr), timing_preset(hbm)
    fabric_gbps = path.preset.lanes * 4 / (FABRIC_PS / 1000)
    limits = {"ddr_channel_peak": ddr_t.peak_gbps, "hbm_channel_peak": hbm_t.peak_gbps,
              "fabric_vector_port": fabric_gbps}
    bottleneck = min(limits, key=limits.get)
    return {"preset": path.preset.name, "ddr": ddr_t.name, "hbm": hbm_t.name, "sim": simulator,
            "bytes": lines * LINE_BYTES, "elapsed_ns": round(seconds_ns, 1),
            "copy_GBps": round(achieved, 3), "limits_GBps": {k: round(v, 3) for k, v in limits.items()},
            "bottleneck": bottleneck, "efficiency_vs_bottleneck": round(achieved / limits[bottleneck], 4),
            "bit_exact": run["equal"], "ddr_row_hit_rate": round(run["ddr"]["row_hit_rate"], 4),
            "hbm_row_hit_rate": round(run["hbm"]["row_hit_rate"], 4),
            "ddr_refreshes": run["ddr"]["refreshes"], "hbm_refreshes": run["hbm"]["refreshes"],
            "build_s": round(result.build_s, 2), "run_s": round(result.run_s, 2)}
