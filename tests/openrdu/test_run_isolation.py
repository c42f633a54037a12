"""``openrdu run`` processes that share a build cannot corrupt each other, an interrupted build is
never reused, and a result that fails its check is still reported in standard JSON (Icarus,
``tiny``; the model is the suite's shared build, ``build/kernels/tiny``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compiler import compile_kernel
from compiler.kernels import bf16_words_to_float, to_bf16_words

pytestmark = pytest.mark.cocotb

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "build"          # OPENRDU_BUILD: the models are in build/kernels/<preset>


def _openrdu(args, build_root: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, OPENRDU_BUILD=str(build_root))
    return subprocess.Popen([sys.executable, "-m", "openrdu", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, **kwargs)


def _require_icarus():
    from sim import toolchain

    status = toolchain.simulator_status("icarus")
    if not status.usable:
        if "icarus" in toolchain.required_simulators():
            pytest.fail(f"icarus is required but unusable: {status.reason}")
        pytest.skip(f"icarus unusable: {status.reason}")


def test_two_runs_at_once_each_get_their_own_results(tmp_path):
    _require_icarus()
    shapes = {"c1": (5, 7, 3), "c2": (8, 12, 6)}
    rng = np.random.default_rng(7)
    procs, inputs = {}, {}
    for name, (m, k, n) in shapes.items():
        inputs[name] = {"A": rng.normal(size=(m, k)).astype(np.float32),
                        "B": rng.normal(size=(k, n)).astype(np.float32)}
        np.savez(tmp_path / f"{name}.npz", **inputs[name])
    for name, shape in shapes.items():
        procs[name] = _openrdu(["run", "gemm", "--preset", "tiny", "--shape", ",".join(map(str, shape)),
                                "--sim", "icarus", "--json", "--inputs", str(tmp_path / f"{name}.npz"),
                                "--out", str(tmp_path / f"o{name}.npz")], SHARED)
        time.sleep(1)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=3000)
        assert proc.returncode == 0, f"{name}: {err[-3000:]}"
        row = json.loads(out)
        assert row["shape"] == list(shapes[name]) and row["bit_exact"] and row["within_bound"], row
        compiled = compile_kernel("gemm", "tiny", shapes[name])
        words = {k: to_bf16_words(v) for k, v in inputs[name].items()}
        want = bf16_words_to_float(compiled.golden(words)["C"])
        with np.load(tmp_path / f"o{name}.npz") as result:
            assert np.array_equal(result["C"], want), f"{name}: the output is not its own kernel's"


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)    # a test worker may run with SIGINT ignored


def test_an_interrupted_build_is_not_reused(tmp_path):
    """SIGINT to the run's process group while Icarus writes the image (``sim.vvp`` appeared in
    the temporary model folder): the run fails, leaves no model and no temporary folder, and the
    next run builds afresh and is bit exact. (The interrupt has to land inside the build: a try
    whose build finished first is repeated, up to three.)"""
    _require_icarus()
    from sim.kernels import _cached_verilog, system_for

    shared_verilog = SHARED / "kernels" / "tiny" / "verilog"
    _cached_verilog(system_for("tiny"), shared_verilog)      # the model is what gets interrupted
    args = ["run", "gemm", "--preset", "tiny", "--shape", "2,2,2", "--sim", "icarus", "--json"]
    for attempt in range(3):
        root = tmp_path / f"build{attempt}"
        shutil.copytree(shared_verilog, root / "kernels" / "tiny" / "verilog")
        sim_dir = root / "kernels" / "tiny" / "system_icarus"
        proc = _openrdu(args, root, start_new_session=True, preexec_fn=_default_sigint)
        deadline = time.monotonic() + 900
        while not list(sim_dir.glob(".model-*/sim.vvp")) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its image was written: {proc.communicate()[1][-2000:]}")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        if (sim_dir / "model" / "build.ok").exists():
            continue                                    # the build won the race: try again
        assert proc.returncode != 0, "the interrupted run claimed success"
        assert not list(sim_dir.glob(".model-*")), "the interrupted build's folder was left behind"
        again = _openrdu(args, root)
        out, err = again.communicate(timeout=3000)
        assert again.returncode == 0, err[-3000:]
        assert json.loads(out)["bit_exact"]
        assert (sim_dir / "model" / "build.ok").exists()
        return
    pytest.fail("three builds finished before their interrupt arrived")


def test_an_overflowing_result_is_reported_in_standard_json(tmp_path):
    _require_icarus()
    a = np.full((2, 2), 3e38, np.float32)
    np.savez(tmp_path / "big.npz", A=a, B=np.full((2, 2), 2.0, np.float32))
    proc = _openrdu(["run", "gemm", "--preset", "tiny", "--shape", "2,2,2", "--sim", "icarus", "--json",
                     "--inputs", str(tmp_path / "big.npz")], SHARED)
    out, err = proc.communicate(timeout=3000)
    assert proc.returncode == 1, err[-2000:]
    row = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert row["within_bound"] is False and row["max_abs_err_vs_fp64"] is None
    assert "overflow" in row["check"]
    assert "check failed:" in err and "overflow" in err
