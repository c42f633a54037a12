"""How the kernel system's Verilator model is built: hierarchically or flat
(``OPENRDU_VERILATOR_HIER``), the optimisation level of its per-cycle code (``OPENRDU_VERILATOR_OPT``),
its own model folder per choice, and make variables reaching Verilator's make."""

import shutil
import subprocess

import pytest

from sim import kernels
from sim.runner import _make_variables


def _clear(monkeypatch):
    for name in ("OPENRDU_VERILATOR_OPT", "OPENRDU_VERILATOR_CFLAGS", "OPENRDU_VERILATOR_HIER"):
        monkeypatch.delenv(name, raising=False)


def test_default_is_a_hierarchical_build_with_optimised_per_cycle_code(monkeypatch):
    _clear(monkeypatch)
    assert kernels._verilator_args() == ["--hierarchical", "-Wno-UNOPTFLAT"]
    assert kernels._verilator_make_vars() == {"OPT_FAST": "-O1"}
    assert kernels.verilator_build() == "hierarchical, O1"
    assert kernels.model_folder("verilator") == "system_verilator"
    assert kernels.model_folder("verilator", waves=True) == "system_verilator-waves"
    assert kernels.model_folder("icarus") == "system_icarus"
    # a waves build is flat and unoptimised (no tracing inside hierarchical blocks)
    assert kernels._verilator_args(waves=True) == []
    assert kernels._verilator_make_vars(waves=True) == {"OPT_FAST": "-O0"}


def test_other_levels_and_flat_builds_have_their_own_folders(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("OPENRDU_VERILATOR_OPT", "O0")
    assert kernels._verilator_make_vars() == {"OPT_FAST": "-O0"}
    assert kernels.model_folder("verilator") == "system_verilator-O0"
    assert kernels.model_folder("icarus") == "system_icarus"
    monkeypatch.setenv("OPENRDU_VERILATOR_HIER", "0")
    assert kernels._verilator_args() == []
    assert kernels.verilator_build() == "flat, O0"
    assert kernels.model_folder("verilator") == "system_verilator-flat-O0"
    monkeypatch.delenv("OPENRDU_VERILATOR_OPT")
    assert kernels.model_folder("verilator", waves=True) == "system_verilator-flat-O1-waves"


@pytest.mark.parametrize("name, value, message", [
    ("OPENRDU_VERILATOR_OPT", "O3", r"OPENRDU_VERILATOR_OPT='O3' .* one of O0, O1, O2"),
    ("OPENRDU_VERILATOR_HIER", "yes", r"OPENRDU_VERILATOR_HIER='yes' is not 0 \(flat\) or 1"),
])
def test_a_bad_setting_is_refused_naming_the_allowed_ones(monkeypatch, name, value, message):
    _clear(monkeypatch)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        kernels.model_folder("verilator")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("outer", [None, "-j2", "-j2 -- OTHER=1"])
def test_make_variables_reach_make_as_command_line_definitions(monkeypatch, tmp_path, outer):
    (tmp_path / "Makefile").write_text("OPT_FAST = -Os\nall:\n\t@echo $(OPT_FAST) $(OTHER)\n")
    if outer is None:
        monkeypatch.delenv("MAKEFLAGS", raising=False)
    else:
        monkeypatch.setenv("MAKEFLAGS", outer)
    with _make_variables({"OPT_FAST": "-O2"}):
        out = subprocess.run(["make", "-s", "-C", str(tmp_path)], capture_output=True, text=True).stdout
    assert out.split()[0] == "-O2"
    import os
    assert os.environ.get("MAKEFLAGS") == outer       # restored


def test_a_run_reuses_the_optimised_model_prepare_model_built(monkeypatch, tmp_path):
    """run_many builds (or reuses) the model twice: in prepare_model and in run_cocotb. Both must
    ask for the same make variables, or the second call's key differs and the O2 model is rebuilt
    (without OPT_FAST) at every run."""
    from compiler import compile_kernel

    monkeypatch.setenv("OPENRDU_VERILATOR_OPT", "O2")
    monkeypatch.delenv("OPENRDU_VERILATOR_CFLAGS", raising=False)
    calls = []

    def fake_build_model(sources, **kwargs):
        calls.append(kwargs.get("make_vars"))
        raise RuntimeError("stop after the build step")

    monkeypatch.setattr(kernels, "_cached_verilog", lambda system, d: tmp_path / "top.v")
    monkeypatch.setattr("sim.runner.build_model", fake_build_model)
    compiled = compile_kernel("gemm", "tiny", (9, 13, 7))
    with pytest.raises(RuntimeError, match="stop after"):
        kernels.prepare_model("tiny", "verilator", tmp_path)
    monkeypatch.setattr(kernels, "prepare_model", lambda *a, **k: {"verilog": tmp_path / "top.v"})
    (tmp_path / "top.v").write_text("module top; endmodule\n")
    with pytest.raises(RuntimeError, match="stop after"):
        kernels.run_many([(compiled, kernels.random_inputs(compiled))], simulator="verilator",
                         build_dir=tmp_path)
    assert calls == [{"OPT_FAST": "-O2"}, {"OPT_FAST": "-O2"}]
