"""sim.runner: errors are clear, waves and metrics come back, both simulators build."""

import pytest

from hdl.stream import StreamRegister
from sim import toolchain
from sim.runner import SimulationError, run_cocotb, write_verilog

SMOKE = "sim.testbenches.stream_smoke"


def test_unknown_simulator(tmp_path):
    with pytest.raises(ValueError, match="valid simulators: verilator, icarus"):
        run_cocotb(StreamRegister(8), SMOKE, simulator="modelsim", build_dir=tmp_path)


def test_missing_verilog_file(tmp_path):
    if not toolchain.icarus_status().usable:
        pytest.skip("icarus unusable")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_cocotb(tmp_path / "nope.v", SMOKE, simulator="icarus", build_dir=tmp_path)


def test_write_verilog_rejects_non_components(tmp_path):
    with pytest.raises(TypeError, match="wiring.Component"):
        write_verilog("not a component", tmp_path / "x.v")


@pytest.mark.cocotb
def test_broken_verilog_is_a_simulation_error(simulator, sim_build_dir):
    bad = sim_build_dir / "bad.v"
    bad.write_text("module top(input clk; endmodule\n")
    with pytest.raises(SimulationError, match=f"{simulator} build of top failed"):
        run_cocotb(bad, SMOKE, simulator=simulator, build_dir=sim_build_dir)


@pytest.mark.cocotb
def test_waves_and_metrics(simulator, sim_build_dir):
    result = run_cocotb(StreamRegister(8), SMOKE, simulator=simulator, build_dir=sim_build_dir,
                        waves=True, seed=1234, testcase="full_rate_one_per_cycle",
                        env={"OPENRDU_SMOKE_ITEMS": "50"})
    assert result.passed, result.summary()
    assert result.tests == 1
    assert result.waves is not None and result.waves.stat().st_size > 0
    assert result.waves.suffix == (".fst" if simulator == "icarus" else ".vcd")
    metrics = result.metrics["full_rate_one_per_cycle"]
    assert metrics["items"] == 50 and metrics["cycles"] <= 54
    assert result.simulator_version


def test_required_simulators_parsing(monkeypatch):
    monkeypatch.setenv("OPENRDU_REQUIRE_SIMS", "icarus, verilator")
    assert toolchain.required_simulators() == {"icarus", "verilator"}
    monkeypatch.setenv("OPENRDU_REQUIRE_SIMS", "questa")
    with pytest.raises(ValueError, match="unknown simulator"):
        toolchain.required_simulators()


def test_verilator_builds_use_ccache_unless_told_otherwise(monkeypatch, tmp_path):
    import shutil

    monkeypatch.delenv("OBJCACHE", raising=False)
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    monkeypatch.setenv("OPENRDU_CACHE", str(tmp_path))
    env = toolchain.compiler_cache_env()
    if shutil.which("ccache") is None:
        assert env == {}
    else:
        assert env["OBJCACHE"] == "ccache" and env["CCACHE_DIR"] == str(tmp_path / "ccache")
    monkeypatch.setenv("OBJCACHE", "")          # the user's choice (here: no cache) wins
    assert toolchain.compiler_cache_env() == {}


def test_reading_a_systems_parameters_prints_no_warnings():
    """A TileSystem built only for its parameters (every kernel command does this) must not print
    Amaranth's UnusedElaboratable warnings when it is collected: a user saw a dozen between the
    result lines of one ``coe demo``. (The check runs the objects' finalisers directly: when the
    collector runs them is up to the interpreter.)"""
    import gc
    import warnings

    from amaranth import Module
    from amaranth.hdl import Fragment

    from sim.kernels import system_for

    Fragment.get(Module(), None)     # Amaranth stays quiet until a process has elaborated something
    # collect the garbage of earlier tests in this worker first: its unused elaboratables would
    # warn inside the block whenever a collection happened to run there (seen once in CI)
    gc.collect()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        system = system_for("tiny")
        assert system.agcu_names
        system.__del__()
        system.tile.__del__()
        del system
        gc.collect()                 # and the system's own parts, now garbage
    unused = [str(w.message) for w in seen if "never used" in str(w.message)]
    assert not unused, unused

