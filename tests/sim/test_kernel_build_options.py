"""How the kernel system's Verilator model is compiled: the optimisation level of its per-cycle
code (``OPENRDU_VERILATOR_OPT``), its own model folder per level, and make variables reaching
Verilator's make."""

import shutil
import subprocess

import pytest

from sim import kernels
from sim.runner import _make_variables


def test_default_is_an_unoptimised_build(monkeypatch):
    monkeypatch.delenv("OPENRDU_VERILATOR_OPT", raising=False)
    monkeypatch.delenv("OPENRDU_VERILATOR_CFLAGS", raising=False)
    assert kernels._verilator_args() == ["-CFLAGS", "-O0"]
    assert kernels._verilator_make_vars() == {}
    assert kernels.model_folder("verilator") == "system_verilator"
    assert kernels.model_folder("verilator", waves=True) == "system_verilator-waves"


def test_an_optimised_level_compiles_the_per_cycle_code_in_its_own_folder(monkeypatch):
    monkeypatch.setenv("OPENRDU_VERILATOR_OPT", "O2")
    monkeypatch.delenv("OPENRDU_VERILATOR_CFLAGS", raising=False)
    assert kernels._verilator_args() == []
    assert kernels._verilator_make_vars() == {"OPT_FAST": "-O2"}
    assert kernels.model_folder("verilator") == "system_verilator-O2"
    assert kernels.model_folder("icarus") == "system_icarus"


def test_a_bad_level_is_refused_naming_the_allowed_ones(monkeypatch):
    monkeypatch.setenv("OPENRDU_VERILATOR_OPT", "O3")
    with pytest.raises(ValueError, match=r"OPENRDU_VERILATOR_OPT='O3' .* one of O0, O1, O2"):
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
