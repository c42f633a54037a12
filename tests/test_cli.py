"""The openrdu command line as a user runs it: version, Verilog, lint, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hdl.presets import preset_names
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


@pytest.mark.parametrize("preset", preset_names())
def test_verilog_writes_every_top(tmp_path, preset):
    proc = run("verilog", "--preset", preset, "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for top in TOPS:
        text = (tmp_path / f"{preset}_{top}.v").read_text()
        assert f"module {preset}_{top}(" in text


def test_generated_verilog_is_lint_clean(tmp_path):
    status = toolchain.verilator_status()
    if not status.usable:
        if "verilator" in toolchain.required_simulators():
            pytest.fail(status.reason)
        pytest.skip(f"verilator unusable: {status.reason}")
    proc = run("lint", "--preset", "all", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every generated top is clean" in proc.stdout


def test_lint_reports_findings(tmp_path):
    """The lint path fails on Verilog with a real problem (so a clean result means something)."""
    from coe_host.cli import lint_verilog

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
