"""Compiled kernels on the RTL (a tile with AGCUs and HBM), on both simulators.

One simulation per simulator runs every case of :data:`CASES` on the ``tiny`` preset
(:func:`sim.kernel_jobs.run_isolated`: a reset between kernels, against the kernel-system build in
``build/kernels/<preset>`` that the bench, the sweep, the CoE demo and ``openrdu run`` share,
made current once under a file lock). Each result must equal
the compiler's golden model bit for bit and lie within the float64 error bound; fused and
unfused runs of one kernel must agree, the fused one must take fewer cycles and the unfused
one must have more launches. Then the ``openrdu run`` command is run on the same build and
must honour its JSON and npz contract. A second simulation per simulator runs the gated FFN
(SwiGLU), which needs 4 PCUs, on the ``quad`` preset (:data:`QUAD_CASES`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import compile_kernel
from compiler.kernels import bf16_words_to_float, to_bf16_words
from openrdu.flows.run import JSON_FIELDS
from sim.kernel_jobs import run_isolated
from sim.kernels import random_inputs

pytestmark = pytest.mark.cocotb

#: The shared kernel-system builds (``<preset>/system_<simulator>``).
SHARED = Path(__file__).resolve().parents[2] / "build" / "kernels"

#: (kernel, shape, options); shapes are not multiples of the tiny tile (4 lanes x 4 stages)
CASES = [
    ("gemm", (6, 5, 3), {"act": "relu", "bias": True}),
    ("gemm", (9, 13, 7), {"act": "gelu", "bias": True}),
    ("gemm", (9, 13, 7), {"act": "gelu", "bias": True, "fused": False}),
    ("gemm", (5, 6, 9), {"act": "silu", "out_dtype": "f32"}),
    ("gemm", (7, 4, 5), {"act": "none", "orders": ("mn",)}),
    ("ffn", (6, 5, 7), {"act": "relu"}),
    ("ffn", (6, 5, 7), {"act": "relu", "fused": False}),
    ("rmsnorm", (6, 7), {}),
    ("rmsnorm", (6, 7), {"fused": False}),
]
#: (fused, unfused, launches of the unfused one) case pairs run on the same inputs
PAIRS = ((1, 2, 2), (5, 6, 2), (7, 8, 2))

#: The gated FFN Y = (silu(X·Wg) ⊙ X·Wu)·Wd on ``quad`` (4 PCUs: the fused pipeline has a PCU
#: each for X·Wg, X·Wu, their product and ·Wd; the graph's gate is always SiLU). Unfused it is
#: four launches: gate, up, mul, down.
QUAD_CASES = [
    ("ffn", (6, 5, 7), {"act": "silu", "gated": True}),
    ("ffn", (6, 5, 7), {"act": "silu", "gated": True, "fused": False}),
]
QUAD_PAIRS = ((0, 1, 4),)


#: The cases Icarus runs in every suite run (one GEMM, and the FFN and RMSNorm fused/unfused
#: pairs); all of them run on Icarus in the soak set. On 2 cores the whole list took 449 s on
#: Icarus (the cocotb HBM device models act every memory cycle) against 158 s on Verilator.
ICARUS_QUICK = (0, 5, 6, 7, 8)


def _check_cases(simulator: str, run_dir, indices, *, preset: str = "tiny", cases_list=CASES,
                 pairs=PAIRS) -> dict:
    """Run ``cases_list[i]`` for ``i`` in ``indices`` in one simulation and check them; returns
    ``{index: KernelRun}``."""
    cases = {}
    for seed in indices:
        kernel, shape, options = cases_list[seed]
        compiled = compile_kernel(kernel, preset, shape, **options)
        inputs = random_inputs(compiled, seed=seed)
        pair = [f for f, u, _ in pairs if u == seed]
        if pair:      # fused and unfused runs of one kernel on the same inputs
            inputs = cases[pair[0]][1]
        cases[seed] = (compiled, inputs)
    runs = dict(zip(cases, run_isolated(list(cases.values()), simulator=simulator, build_root=SHARED,
                                        run_dir=run_dir), strict=True))
    for seed, run in runs.items():
        kernel, shape, options = cases_list[seed]
        compiled = cases[seed][0]
        label = f"{kernel} {shape} {options} on {preset}"
        assert run.bit_exact, f"{label}: differs from the golden model"
        assert run.within_bound, f"{label}: error {run.max_abs_err_vs_fp64} beyond the fp64 bound"
        assert run.violations == 0, f"{label}: HBM timing violations"
        assert run.cycles > 0 and run.hbm_bytes > 0
        assert len(run.launches) == len(compiled.launches)
        assert all(launch["faults"] == 0 for launch in run.launches)
        assert 0 < run.pcu_utilization <= 1
    for fused, unfused, launches in pairs:
        if fused not in runs or unfused not in runs:
            continue
        a, b = runs[fused], runs[unfused]
        assert all(np.array_equal(a.words[k], b.words[k]) for k in a.words), "fused and unfused differ"
        assert a.cycles < b.cycles, f"{cases_list[fused]}: fused {a.cycles} cycles, unfused {b.cycles}"
        assert len(a.launches) == 1 and len(b.launches) == launches
    return runs


def test_kernels_bit_exact_on_the_rtl(simulator, sim_build_dir):
    indices = ICARUS_QUICK if simulator == "icarus" else range(len(CASES))
    _check_cases(simulator, sim_build_dir / "runs", indices)

    # the command line on the same build: npz in and out, one JSON object
    compiled = compile_kernel("gemm", "tiny", (6, 5, 3), act="relu", bias=True)
    inputs = random_inputs(compiled, seed=42)
    src, dst = sim_build_dir / "in.npz", sim_build_dir / "out.npz"
    np.savez(src, **inputs)
    env = dict(os.environ, OPENRDU_BUILD=str(SHARED.parent))
    proc = subprocess.run([sys.executable, "-m", "openrdu", "run", "gemm", "--preset", "tiny", "--shape",
                           "6,5,3", "--act", "relu", "--inputs", str(src), "--out", str(dst), "--sim",
                           simulator,
                           "--json"], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout)
    assert list(row) == list(JSON_FIELDS)
    assert row["bit_exact"] and row["sim"] == simulator and row["shape"] == [6, 5, 3] and row["fused"]
    assert row["max_abs_err_vs_fp64"] <= row["err_bound_fp64"]
    with np.load(dst) as out:
        c = out["C"]
    words = {k: to_bf16_words(v) for k, v in inputs.items()}
    assert np.array_equal(c, bf16_words_to_float(compiled.golden(words)["C"]))


@pytest.mark.soak
def test_every_kernel_case_on_icarus(sim_build_dir):
    _check_cases("icarus", sim_build_dir / "runs", range(len(CASES)))


def test_gated_ffn_on_quad(simulator, sim_build_dir):
    """The gated FFN fused (one launch, 4 PCUs) and unfused (4 launches) in one simulation."""
    runs = _check_cases(simulator, sim_build_dir / "runs", range(len(QUAD_CASES)), preset="quad",
                        cases_list=QUAD_CASES, pairs=QUAD_PAIRS)
    fused, unfused = runs[0], runs[1]
    print(f"gated FFN (6,5,7) on quad, {simulator}: fused {fused.cycles} cycles, unfused {unfused.cycles} "
          f"cycles in {len(unfused.launches)} launches")


#: Attention needs 8 PCUs (``small``): causal and not, key blocks of 12 slots (11 keys and the
#: slot that carries the running max), 4 blocks, T not a multiple of the 8-row query tile
#: or of the block, fused (one launch) and unfused (3 launches: scores, softmax, output).
SMALL_CASES = [
    ("attention", (40, 16), {"causal": True, "block": 12}),
    ("attention", (40, 16), {"causal": True, "block": 12, "fused": False}),
    ("attention", (37, 12), {"block": 12}),
    ("attention", (37, 12), {"block": 12, "fused": False}),
]
SMALL_PAIRS = ((0, 1, 3), (2, 3, 3))


# the small kernel system is a long build (Verilator ~20 min cold at -O0 on 2 cores, Icarus ~6 min)
# and Icarus simulates it at ~20 cycles/s, so this runs in the soak set (`make test-all`)
@pytest.mark.soak
def test_attention_on_small(simulator, sim_build_dir):
    """FlashAttention streaming on ``small``, fused and unfused, causal and not, in one simulation."""
    runs = _check_cases(simulator, sim_build_dir / "runs", range(len(SMALL_CASES)), preset="small",
                        cases_list=SMALL_CASES, pairs=SMALL_PAIRS)
    for (kernel, shape, options), run in zip(SMALL_CASES, runs.values(), strict=True):
        print(f"{kernel} {shape} {options} on small, {simulator}: {run.cycles} cycles, "
              f"PCU utilisation {run.pcu_utilization:.3f}, wall {run.wall_s:.0f} s")
