"""``openrdu bench`` and ``openrdu sweep`` on the ``tiny`` preset.

Both share one kernel-system build per simulator with the CoE RTL demo and ``openrdu run``
(``build/kernels/tiny``, made current by :func:`sim.kernel_jobs.ensure_build` under a file lock, so
concurrent tests never build it twice; a later suite run reuses it while hdl/ is unchanged).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrdu.flows.sweep import CSV_FIELDS, FAIL_FIRST_ENV, expand_spec, read_csv, run_sweep
from sim import toolchain

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "build" / "kernels"


def _usable() -> list[str]:
    sims = [s for s in toolchain.SIMULATORS if toolchain.simulator_status(s).usable]
    required = toolchain.required_simulators()
    missing = [s for s in required if s not in sims]
    if missing:
        pytest.fail(f"required simulators unusable: {missing}")
    if not sims:
        pytest.skip("no usable simulator")
    return sims


def _cli(*args, timeout=3600):
    # the environment carries the suite's unit flags (conftest); the kernel system keeps its own
    # build, shared with the other tests
    return subprocess.run([sys.executable, "-m", "openrdu", *args], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ), timeout=timeout)


# ---------------------------------------------------------------------------------------------
# the kernel table (no simulator)


def test_the_kernel_table_shows_the_roofline_and_tolerates_older_results():
    """A kernel row carries the roofline, bound and roofline fraction, fused / unfused; results
    written before the bench recorded them show dashes there."""
    from openrdu.flows.bench import table_rows

    kernel = {"available": True, "shape": [9, 13, 7], "cycles_fused": 429, "cycles_unfused": 600,
              "speedup": 600 / 429, "pcu_utilization": 0.1, "pcu_utilization_unfused": 0.08,
              "hbm_bytes_fused": 2240, "hbm_bytes_unfused": 3000, "bit_exact": True, "cycles_agree": True}
    roofline = {"roofline_cycles_fused": 84, "roofline_cycles_unfused": 1200, "bound_fused": "agcu",
                "bound_unfused": "hbm", "roofline_fraction_fused": 0.1958, "roofline_fraction_unfused": 0.5}
    header, row = table_rows({"kernels": {"gemm": {**kernel, **roofline}}})["kernels"]
    cells = dict(zip(header, row, strict=True))
    assert cells["roofline fused/unfused"] == "84 / 1,200"
    assert cells["bound fused/unfused"] == "agcu / hbm"
    assert cells["roofline fraction fused/unfused"] == "0.20 / 0.50"
    header, row = table_rows({"kernels": {"gemm": kernel}})["kernels"]
    assert dict(zip(header, row, strict=True))["roofline fused/unfused"] == "- / -"
    unavailable = {"available": False, "shape": [8, 4], "reason": "PCUs: needs 8"}
    header, row = table_rows({"kernels": {"attention": unavailable}})["kernels"]
    assert len(row) == len(header) and row[-1] == "unavailable: PCUs: needs 8"


def _speed_results(commit, workload, verilator, icarus, fifo):
    def stat(value):
        return {"median": value, "min": value, "max": value, "samples": 1}
    return {"git": {"commit": commit}, "created": "then", "tools": {"verilator_cflags": "flat, O0"},
            "sim_speed": {"workload": workload, "verilator_over_icarus": verilator / icarus,
                          "stats": {"verilator": {"cycles_per_s": stat(verilator)},
                                    "icarus": {"cycles_per_s": stat(icarus)}},
                          "units": {"items": 2000, "verilator": {"cycles_per_s": stat(fifo)}}}}


def test_the_speed_table_shows_a_baseline_beside_the_new_figures():
    """The baseline's speeds sit beside the new ones with their ratio; a baseline of another
    kernel-system workload compares on the stream FIFO only."""
    from openrdu.flows.bench import baseline_summary, table_rows

    old = _speed_results("abc123", "rmsnorm on small", 300, 20, 30_000)
    new = _speed_results("def456", "rmsnorm on small", 1500, 25, 33_000)
    new["baseline"] = baseline_summary(old)
    assert baseline_summary(new["baseline"]) == new["baseline"]       # a summary stays as it is
    header, *rows = table_rows(new)["sim_speed"]
    assert header[-2:] == ["baseline abc123", "now / baseline"]
    by = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows}
    assert by[("kernel system", "verilator")]["baseline abc123"] == "300"
    assert by[("kernel system", "verilator")]["now / baseline"] == "5.0x"
    assert by[("kernel system", "icarus")]["now / baseline"] == "1.2x"
    assert by[("kernel system", "verilator / icarus")]["baseline abc123"] == "15.0x"
    assert by[("stream FIFO (2000 items)", "verilator")]["now / baseline"] == "1.1x"
    new["baseline"] = baseline_summary(_speed_results("abc123", "gemm on small", 300, 20, 30_000))
    header, *rows = table_rows(new)["sim_speed"]
    by = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows}
    assert by[("kernel system", "verilator")]["baseline abc123"] == "-"
    assert by[("stream FIFO (2000 items)", "verilator")]["baseline abc123"] == "30,000"
    del new["baseline"]
    assert len(table_rows(new)["sim_speed"][0]) == 4                  # no baseline, no columns


def test_a_missing_baseline_is_refused_with_exit_2(tmp_path):
    run = _cli("bench", "--report-only", "--out", str(tmp_path), "--baseline", str(tmp_path / "nothing.json"),
               "--doc", "")
    assert run.returncode == 2
    assert "--baseline" in run.stdout + run.stderr and "does not exist" in run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------
# spec and CSV handling (no simulator)


SPEC = """
[sweep]
presets = ["tiny"]
simulators = ["{sim}"]
fused = [true, false]

[[kernel]]
name = "gemm"
shapes = [[6, 5, 3], [9, 13, 7]]
act = ["gelu"]
bias = [true]
"""


def test_spec_expands_to_every_combination(tmp_path):
    import tomllib

    spec = tomllib.loads(SPEC.format(sim="icarus") + '\n[[kernel]]\nname = "ffn"\nshapes = [[2, 3, 4]]\n'
                         'act = ["relu", "gelu"]\nfused = [true]\n')
    spec["sweep"]["seeds"] = [0, 1]
    points = expand_spec(spec)
    gemm = [p for p in points if p.kernel == "gemm"]
    ffn = [p for p in points if p.kernel == "ffn"]
    assert len(gemm) == 2 * 2 * 2 and len(ffn) == 2 * 2          # shapes x fused x seeds; acts x seeds
    assert len({p.key for p in points}) == len(points)
    assert {p.fused for p in ffn} == {True} and {p.fused for p in gemm} == {True, False}
    with pytest.raises(ValueError, match="preset"):
        expand_spec({"sweep": {"presets": ["nope"]}, "kernel": [{"name": "gemm", "shapes": [[1, 1, 1]]}]})
    with pytest.raises(ValueError, match="kernel"):
        expand_spec({"sweep": {"presets": ["tiny"]}, "kernel": [{"name": "conv", "shapes": [[1, 1, 1]]}]})
    with pytest.raises(ValueError, match="simulator"):
        expand_spec({"sweep": {"presets": ["tiny"], "simulators": ["vcs"]},
                     "kernel": [{"name": "gemm", "shapes": [[1, 1, 1]]}]})


def test_csv_reader_drops_a_half_written_row(tmp_path):
    path = tmp_path / "s.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerow({k: "1" for k in CSV_FIELDS} | {"key": "a", "status": "ok"})
    text = path.read_text()
    path.write_text(text + "b,tiny,icarus,gemm")                    # killed mid-row
    assert [r["key"] for r in read_csv(path)] == ["a"]


# ---------------------------------------------------------------------------------------------
# the bench


def _bench(tmp_path, *, repeats: int, kernel_sims: list[str] | None, speed_kernels: list[str] | None):
    sims = _usable()
    out = tmp_path / "bench"
    doc = tmp_path / "performance.md"
    extra = []
    if kernel_sims:
        kernel_sims = [s for s in kernel_sims if s in sims]
        extra += ["--kernel-sims", ",".join(kernel_sims)]
    if speed_kernels:
        extra += ["--speed-kernels", ",".join(speed_kernels)]
    proc = _cli("bench", "--preset", "tiny", "--repeats", str(repeats), "--sim", ",".join(sims),
                "--out", str(out), "--doc", str(doc), "--build-root", str(SHARED), "--unit-items", "300",
                "--mem-bytes", "4096", "--coe-requests", "60", "--json", *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    results = json.loads((out / "results.json").read_text())
    assert printed["sim_speed"] == results["sim_speed"]
    assert results["preset"] == "tiny" and results["repeats"] == repeats
    assert results["tools"]["cocotb"] and results["machine"]["cores"] >= 1
    for sim in sims:
        assert results["tools"]["simulators"][sim]["version"]

    speed = results["sim_speed"]
    for sim in sims:
        s = speed["stats"][sim]["cycles_per_s"]
        assert s["samples"] == repeats
        assert 0 < s["min"] <= s["median"] <= s["max"]
        assert speed["cycles_per_s"][sim] == s["median"]
    if len(sims) == 2:
        ratio = speed["cycles_per_s"]["verilator"] / speed["cycles_per_s"]["icarus"]
        assert speed["verilator_over_icarus"] == pytest.approx(ratio)
        # the same workload on both: the RTL's cycles cannot depend on the simulator
        assert speed["stats"]["verilator"]["cycles"] == speed["stats"]["icarus"]["cycles"]
    else:
        assert speed["verilator_over_icarus"] is None and speed["verilator_over_icarus_reason"]
    units = speed["units"]
    for sim in [*sims, "amaranth"]:
        s = units[sim]["cycles_per_s"]
        assert s["samples"] == repeats and 0 < s["min"] <= s["median"] <= s["max"]
    assert units["amaranth"]["cycles"] >= units["items"]              # at most one payload per cycle

    from compiler import MappingError, compile_kernel
    from openrdu.flows.bench import KERNEL_CASES

    kernels = results["kernels"]
    assert {"gemm", "ffn"} <= set(kernels)
    for name, k in kernels.items():
        if not k["available"]:                     # must be the compiler's own verdict, not a guess
            shape, options = KERNEL_CASES["tiny"][name]
            with pytest.raises(MappingError) as err:
                compile_kernel(name, "tiny", shape, **options)
            assert k["reason"] == str(err.value)
            continue
        assert k["bit_exact"] and k["cycles_agree"], name
        assert k["measured_on"] == sorted(kernel_sims or sims)
        assert 0 < k["cycles_fused"] < k["cycles_unfused"], name
        assert k["speedup"] == pytest.approx(k["cycles_unfused"] / k["cycles_fused"])
        assert 0 < k["pcu_utilization"] <= 1 and 0 < k["pcu_utilization_unfused"] <= 1
        assert k["launches_unfused"] > k["launches_fused"]
        for mode in ("fused", "unfused"):           # the compiler's roofline lies below the RTL
            assert 0 < k[f"roofline_cycles_{mode}"] <= k[f"cycles_{mode}"], (name, mode)
            assert 0 < k[f"roofline_fraction_{mode}"] <= 1 and k[f"bound_{mode}"], (name, mode)
    assert kernels["gemm"]["available"] and kernels["ffn"]["available"]
    if speed_kernels:
        assert speed["speed_kernels"] == speed_kernels
        # the speed workload's cycles are the kernel figures' cycles of the same kernels
        assert speed["stats"][sims[0]]["cycles"] == sum(
            kernels[n]["cycles_fused"] + kernels[n]["cycles_unfused"] for n in speed_kernels)

    mem = results["memory"]
    for key in ("hbm_seq", "hbm_random", "hbm_stack_seq"):
        assert mem[key]["data_ok"] and mem[key]["figures_agree"]
        assert 0 < mem[key]["achieved_GBps"] <= mem[key]["peak_GBps"]
    assert mem["hbm_seq"]["achieved_GBps"] > mem["hbm_random"]["achieved_GBps"]
    # the preset's whole stack, every port streaming: faster than one channel moving the same bytes
    stack = mem["hbm_stack_seq"]
    assert (stack["channels"], stack["ports"]) == (2, 2)
    assert stack["achieved_GBps"] > mem["hbm_seq"]["achieved_GBps"]
    assert mem["ddr_to_hbm_copy"]["bit_exact"]
    for c in results["coe"].values():
        assert c["switch_time_ratio"] == pytest.approx(c["baseline_switch_time_s"] / c["switch_time_s"])

    for plot in results["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {Path(p).name for p in results["plots"]} == {"sim_speed.png", "kernels.png"}
    text = doc.read_text()
    for name, k in kernels.items():
        assert f"| {name} |" in text
        if k["available"]:
            assert f"{k['cycles_fused']:,.0f}" in text and f"{k['speedup']:.2f}x" in text
    assert "![simulation speed]" in text

    # the report regenerates from results.json alone
    doc.unlink()
    again = _cli("bench", "--out", str(out), "--doc", str(doc), "--report-only")
    assert again.returncode == 0, again.stderr[-2000:]
    assert doc.read_text() == text


@pytest.mark.cocotb
def test_bench_on_tiny(tmp_path):
    """The suite's bench: kernel figures on Verilator, the Verilator/Icarus speed ratio on the
    RMSNorm pair run on both (the ``small`` recipe: Icarus is compared on a short workload)."""
    _bench(tmp_path, repeats=2, kernel_sims=["verilator"], speed_kernels=["rmsnorm"])


# soak: every bench kernel on both simulators, twice (about 7 minutes with a warm build on 2
# cores, most of it Icarus); the quick bench above covers the same code paths
@pytest.mark.soak
@pytest.mark.cocotb
def test_bench_on_tiny_every_kernel_on_both(tmp_path):
    _bench(tmp_path, repeats=2, kernel_sims=None, speed_kernels=None)


# ---------------------------------------------------------------------------------------------
# the sweep: 4 points, retries, an interruption, and a resume that runs only the rest


# shares the tiny Verilator build with the bench and the CoE RTL demo; the sweep itself takes ~15 s
@pytest.mark.cocotb
def test_sweep_retries_interrupts_and_resumes(tmp_path, monkeypatch):
    sims = _usable()
    sim = "verilator" if "verilator" in sims else sims[0]
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC.format(sim=sim))
    import tomllib

    points = expand_spec(tomllib.loads(spec_path.read_text()))
    assert len(points) == 4
    csv_path = tmp_path / "sweep.csv"

    # every first attempt fails: without retries each point is recorded as failed
    monkeypatch.setenv(FAIL_FIRST_ENV, "1")
    result = run_sweep(points, csv_path, build_root=SHARED, workers=2, retries=0)
    rows = read_csv(csv_path)
    assert result.failed == 4 and [r["status"] for r in rows] == ["failed"] * 4
    assert all("injected failure" in r["error"] for r in rows)

    # with one retry each point succeeds on its second attempt; Ctrl-C after two points
    seen = []

    def interrupt_after_two(done, total, row):
        seen.append(row["key"])
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(points, csv_path, build_root=SHARED, workers=2, retries=1, progress=interrupt_after_two)
    monkeypatch.delenv(FAIL_FIRST_ENV)
    first = [r for r in read_csv(csv_path) if r["status"] == "ok"]
    assert [r["key"] for r in first] == seen and len(seen) == 2
    assert all(r["attempts"] == "2" for r in first)

    # resume through the command line: only the two missing points run
    proc = _cli("sweep", str(spec_path), "--csv", str(csv_path), "--workers", "1",
                "--build-root", str(SHARED), "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["ran"] == 2 and summary["skipped"] == 2 and summary["failed"] == 0
    ok = [r for r in read_csv(csv_path) if r["status"] == "ok"]
    assert len(ok) == 4 and {r["key"] for r in ok} == {p.key for p in points}
    assert not {r["key"] for r in ok[2:]} & set(seen)
    assert all(r["attempts"] == "1" for r in ok[2:])
    assert all(r["bit_exact"] == "True" for r in ok)
    by = {(r["shape"], r["fused"]): int(r["cycles"]) for r in ok}
    for shape in {r["shape"] for r in ok}:
        assert 0 < by[(shape, "True")] < by[(shape, "False")]

    # a third run finds nothing to do
    proc = _cli("sweep", str(spec_path), "--csv", str(csv_path), "--workers", "1",
                "--build-root", str(SHARED), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ran"] == 0
