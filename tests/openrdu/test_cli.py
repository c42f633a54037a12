"""The openrdu command line as a user runs it: version, Verilog, lint, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hdl.presets import get_preset, preset_names
from hdl.tops import TOPS
from sim import toolchain

OPENRDU = Path(sys.executable).parent / "openrdu"


def run(*args, cwd=None):
    return subprocess.run([str(OPENRDU), *args], capture_output=True, text=True, cwd=cwd)


def test_console_script_installed():
    assert OPENRDU.exists(), "pip install -e . should provide the openrdu console script"


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("openrdu 0.1.0") and "amaranth 0.5" in proc.stdout


def test_unknown_preset_exits_2_listing_presets():
    proc = run("verilog", "--preset", "nope")
    assert proc.returncode == 2
    assert "nope" in proc.stderr
    for name in preset_names():
        assert name in proc.stderr


def test_unknown_simulator_exits_2_listing_simulators():
    proc = run("smoke", "--sim", "modelsim")
    assert proc.returncode == 2
    assert "icarus" in proc.stderr and "verilator" in proc.stderr


def test_bad_item_count_exits_2():
    proc = run("smoke", "--items", "0")
    assert proc.returncode == 2 and "positive integer" in proc.stderr


#: Tops too big for routine linting (the plasticine tile: 64 PCUs, 64 PMUs, 128 switches): soak only.
HEAVY = {preset: [t for t in TOPS if preset in TOPS[t].heavy] for preset in preset_names()}


#: The small and plasticine presets' tops take minutes to generate and lint on 2 cores (small:
#: 85 s and 157 s in CI); they run in the soak set (`make test-all`, `make lint`), tiny in every
#: run — the same generators at a smaller size. quad (tiny with a 2 x 4 grid) adds nothing
#: new to these generators either, so it is in the soak set too.
PRESETS_QUICK = [pytest.param(p, marks=pytest.mark.soak) if p != "tiny" else p for p in preset_names()]


@pytest.mark.parametrize("preset", PRESETS_QUICK)
def test_verilog_writes_every_top(tmp_path, preset):
    tops = [t for t in TOPS if t not in HEAVY.get(preset, [])]
    proc = run("verilog", "--preset", preset, "-o", str(tmp_path), *[a for t in tops for a in ("--top", t)])
    assert proc.returncode == 0, proc.stderr
    for top in tops:
        text = (tmp_path / f"{preset}_{top}.v").read_text()
        assert f"module {preset}_{top}(" in text
    if "tile" in tops:  # hierarchical: the unit modules come with the tile, instantiated per site
        text = (tmp_path / f"{preset}_tile.v").read_text()
        assert "module openrdu_pcu(" in text and "module openrdu_pmu(" in text
        assert text.count("openrdu_pcu pcu_") == get_preset(preset).num_pcus


def _need_verilator():
    status = toolchain.verilator_status()
    if not status.usable:
        if "verilator" in toolchain.required_simulators():
            pytest.fail(status.reason)
        pytest.skip(f"verilator unusable: {status.reason}")


@pytest.mark.parametrize("preset", PRESETS_QUICK)
def test_generated_verilog_is_lint_clean(tmp_path, preset):
    """Every top of every preset, including the tiny and small tiles (`openrdu verilog --preset small`)."""
    _need_verilator()
    proc = run("lint", "--preset", preset, "-o", str(tmp_path))  # skips the heavy tops by itself
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every generated top is clean" in proc.stdout


@pytest.mark.soak
def test_plasticine_tile_is_lint_clean(tmp_path):
    _need_verilator()
    proc = run("lint", "--preset", "plasticine", "--top", "tile", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every generated top is clean" in proc.stdout


def test_lint_reports_findings(tmp_path):
    """The lint path fails on Verilog with a real problem (so a clean result means something)."""
    from openrdu.flows.verilog import lint_verilog

    if not toolchain.verilator_status().usable:
        pytest.skip("verilator unusable")
    bad = tmp_path / "bad_top.v"
    bad.write_text("module bad_top(input a, output y); assign y = b; endmodule\n")
    [(path, ok, text)] = lint_verilog([bad])
    assert not ok and "b" in text


@pytest.mark.cocotb
def test_smoke_json(simulator, tmp_path):
    proc = run("smoke", "--sim", simulator, "--preset", "tiny", "--items", "100", "--json",
               "--build-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["top"] for r in rows} == {name for name, top in TOPS.items() if top.stream}
    for r in rows:
        assert r["result"] == "pass" and r["simulator"] == simulator
        assert r["cycles_per_s"] > 0 and r["cycles_random_stalls"] > 100


@pytest.mark.cocotb
def test_pcu_bench_reports_utilisation(simulator, tmp_path):
    proc = run("pcu-bench", "--preset", "tiny", "--sim", simulator, "--k", "12", "--tiles", "3", "--json",
               "--build-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["bit_exact"] and row["steps"] == 36 and row["pes"] == "4x4"
    assert 0.9 < row["steady_utilization"] <= 1.0 and row["overall_utilization"] < row["steady_utilization"]
    assert row["cycles_per_tile_steady"] == pytest.approx(row["fire_span"] / 3)
    assert row["fire_span"] >= row["steps"]


def test_pcu_bench_rejects_bad_sizes():
    proc = run("pcu-bench", "--k", "0")
    assert proc.returncode == 2 and "positive integer" in proc.stderr


@pytest.mark.cocotb
def test_pmu_bench_reports_bandwidth(simulator, tmp_path):
    proc = run("pmu-bench", "--preset", "tiny", "--sim", simulator, "--json", "--build-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["pattern"]: r for r in json.loads(proc.stdout)}
    assert all(r["bit_exact"] for r in rows.values())
    assert rows["transpose_striped"]["read_vectors_per_cycle"] == 1.0
    assert rows["transpose_plain"]["read_vectors_per_cycle"] < 0.3  # four lanes in one bank
    assert rows["linear"]["write_vectors_per_cycle"] == 1.0


@pytest.mark.cocotb
def test_net_bench_reports_latency_per_hop(tmp_path):
    """Icarus only: the small mesh builds in a second there (Verilator takes minutes)."""
    if not toolchain.simulator_status("icarus").usable:
        pytest.skip("icarus unusable")
    proc = run("net-bench", "--preset", "small", "--sim", "icarus", "--hop-register", "both", "--json",
               "--build-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 6 and all(r["intact"] for r in rows)
    for r in rows:
        assert r["payloads_per_cycle"] == 1.0
        if r["link_hops"]:
            assert r["cycles_per_hop"] == (2.0 if r["hop_register"] else 1.0)


def test_net_bench_rejects_a_mesh_too_small(tmp_path):
    proc = run("net-bench", "--preset", "tiny", "--sim", "icarus", "--build-dir", str(tmp_path))
    assert proc.returncode != 0 and "at least 4 x 4" in (proc.stdout + proc.stderr)


@pytest.mark.cocotb
def test_tile_build_compiles_the_hierarchical_tile(tmp_path):
    """`openrdu tile-build`: the tile with its PCU and PMU as Verilator hierarchical blocks."""
    _need_verilator()
    proc = run("tile-build", "--preset", "tiny", "--json", "--build-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["ok"] and row["verilog_lines"] > 10_000 and row["build_s"] > 0
    objects = tmp_path / "tiny" / "obj"
    assert (objects / "Vopenrdu_pcu").is_dir() and (objects / "Vopenrdu_pmu").is_dir(), \
        "the units were not built as hierarchical blocks"


def test_mem_bench_json_on_icarus(tmp_path):
    """A small seq run on Icarus: the figures the issue names, consistent with each other."""
    if not toolchain.simulator_status("icarus").usable:
        pytest.skip("icarus unusable")
    proc = run("mem-bench", "--tier", "ddr", "--preset", "DDR4-3200", "--pattern", "seq",
               "--bytes", "65536", "--sim", "icarus", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    for key in ("achieved_GBps", "peak_GBps", "efficiency", "row_hit_rate", "avg_latency_ns",
                "p99_latency_ns"):
        assert key in row
    assert row["preset"] == "DDR4-3200" and row["data_ok"] and row["bytes"] == 65536
    assert row["peak_GBps"] == pytest.approx(25.6)
    assert row["efficiency"] == pytest.approx(row["achieved_GBps"] / row["peak_GBps"], rel=1e-3)
    assert 0.0 < row["efficiency"] <= 1.0 and row["row_hit_rate"] > 0.9


@pytest.mark.parametrize("args, message", [
    (("--tier", "hbm", "--preset", "DDR4-3200"), "not a HBM preset"),
    (("--tier", "ddr", "--preset", "GDDR7"), "unknown DRAM timing preset"),
])
def test_mem_bench_rejects_bad_presets(args, message):
    proc = run("mem-bench", *args)
    assert proc.returncode == 2
    assert message in proc.stdout + proc.stderr
    assert "DDR4-3200" in proc.stdout + proc.stderr      # the valid choices are named


def test_mem_bench_rejects_bad_write_fraction():
    proc = run("mem-bench", "--write-fraction", "1.5")
    assert proc.returncode == 2 and "[0, 1]" in proc.stderr


def test_python_sources_pass_ruff():
    """`make lint`'s Python half, in the suite so that CI catches what it finds (the repository's
    ruff settings in pyproject.toml; the same directories as the Makefile)."""
    repo = Path(__file__).resolve().parents[2]
    dirs = ["hdl", "compiler", "sim", "coe_host", "openrdu", "tests", "scripts"]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", *dirs], cwd=repo, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
