"""The kernel compiler without a simulator: every mapping is run on the units' golden models
(:mod:`compiler.emulate`) and must equal the compiler's golden model bit for bit; the golden
model must lie within the float64 error bound; bad kernels give clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from compiler import MappingError, ShapeError, compile_kernel
from compiler import gemm as gm
from compiler.emulate import emulate
from compiler.ir import reference
from compiler.kernels import bf16_words_to_float, to_bf16_words
from sim.kernels import random_inputs


def _words(compiled, seed):
    return {k: to_bf16_words(v) for k, v in random_inputs(compiled, seed=seed).items()}


@pytest.mark.parametrize("preset,shape,act,bias,fused,orders", [
    ("tiny", (6, 5, 3), "relu", True, True, ("nm",)),
    ("tiny", (9, 13, 7), "gelu", True, True, ("mn",)),
    ("tiny", (9, 13, 7), "gelu", True, False, ("nm", "mn")),
    ("small", (20, 17, 45), "silu", True, True, ("nm",)),
    ("small", (20, 17, 45), "silu", True, True, ("mn",)),
    ("small", (33, 9, 70), "none", False, True, ("nm", "mn")),
    ("small", (33, 9, 70), "relu", False, False, ("nm", "mn")),
])
def test_gemm_mapping_equals_golden(preset, shape, act, bias, fused, orders):
    compiled = compile_kernel("gemm", preset, shape, act=act, bias=bias, fused=fused, orders=orders)
    words = _words(compiled, seed=sum(shape))
    got, want = emulate(compiled, words)["C"], compiled.golden(words)["C"]
    assert got.shape == (shape[0], shape[2])
    assert np.array_equal(got, want)
    assert len(compiled.launches) == (1 if fused else 2)


@pytest.mark.parametrize("preset,shape,act,gated,fused", [
    ("tiny", (6, 5, 7), "relu", False, True),
    ("tiny", (6, 5, 7), "relu", False, False),
    ("small", (20, 12, 30), "gelu", False, True),
    ("small", (20, 12, 30), "none", True, False),
    ("small", (20, 12, 30), "none", True, True),
    ("small", (9, 16, 40), "none", True, True),
    ("quad", (6, 5, 7), "silu", True, True),       # the gated cases of the RTL test
    ("quad", (6, 5, 7), "silu", True, False),
])
def test_ffn_mapping_equals_golden(preset, shape, act, gated, fused):
    compiled = compile_kernel("ffn", preset, shape, act=act, gated=gated, fused=fused)
    words = _words(compiled, seed=7)
    got, want = emulate(compiled, words)["Y"], compiled.golden(words)["Y"]
    assert np.array_equal(got, want)
    assert len(compiled.launches) == (1 if fused else 4 if gated else 2)


def test_fused_and_unfused_ffn_goldens_agree_and_lie_within_the_fp64_bound():
    fused = compile_kernel("ffn", "small", (20, 12, 30), act="gelu")
    unfused = compile_kernel("ffn", "small", (20, 12, 30), act="gelu", fused=False)
    words = _words(fused, seed=3)
    y = fused.golden(words)["Y"]
    assert np.array_equal(y, unfused.golden(words)["Y"])
    ref, bound = reference(fused.graph, {k: bf16_words_to_float(w).astype(np.float64) for k,
                                         w in words.items()})["Y"]
    err = np.abs(bf16_words_to_float(y) - ref)
    assert np.all(err <= bound)


def test_gemm_golden_within_bound_and_a_wrong_order_is_caught():
    compiled = compile_kernel("gemm", "tiny", (7, 40, 6), act="silu", bias=True)
    words = _words(compiled, seed=11)
    floats = {k: bf16_words_to_float(w).astype(np.float64) for k, w in words.items()}
    ref, bound = reference(compiled.graph, floats)["C"]
    good = compiled.golden(words)["C"]
    assert np.all(np.abs(bf16_words_to_float(good) - ref) <= bound)
    # the bit-exact comparison notices a golden model that sums in another order (fp32 output)
    in_order = gm.gemm_golden(words["A"], words["B"], words["bias"], "none", False)
    reordered = gm.gemm_golden(words["A"][:, ::-1], words["B"][::-1], words["bias"], "none", False)
    assert not np.array_equal(reordered, in_order)
    # and the float64 check notices a golden model that drops a term
    dropped = gm.gemm_golden(words["A"][:, 1:], words["B"][1:], words["bias"], "silu", True)
    assert np.any(np.abs(bf16_words_to_float(dropped) - ref) > bound)


def test_a_kernel_too_big_for_tiny_names_the_resource_and_shortfall():
    with pytest.raises(MappingError, match=r"PMU capacity \(words\): needs 4800, the preset has 1024 "
                                           r"\(short by 3776\)") as info:
        compile_kernel("gemm", "tiny", (600, 600, 600))
    assert info.value.resource == "PMU capacity (words)" and info.value.need - info.value.have == 3776
    with pytest.raises(MappingError, match="H tile"):
        compile_kernel("ffn", "tiny", (8, 16, 600))
    with pytest.raises(MappingError, match=r"PCUs: needs 4, the preset has 2 .*fused gated FFN"):
        compile_kernel("ffn", "tiny", (6, 5, 7), gated=True)


def test_fused_and_unfused_gated_ffn_goldens_agree():
    fused = compile_kernel("ffn", "small", (20, 12, 30), gated=True)
    unfused = compile_kernel("ffn", "small", (20, 12, 30), gated=True, fused=False)
    words = _words(fused, seed=8)
    assert np.array_equal(fused.golden(words)["Y"], unfused.golden(words)["Y"])

@pytest.mark.parametrize("kernel,shape,message", [
    ("gemm", (3, 4), r"shape must be 3 positive ints M,K,N, got \(3, 4\)"),
    ("gemm", (3, 0, 4), "positive ints"),
    ("ffn", (1, 2, 3, 4), "T,D,H"),
    ("rmsnorm", (4,), "T,D"),
])
def test_bad_shapes_are_rejected(kernel, shape, message):
    with pytest.raises(ShapeError, match=message):
        compile_kernel(kernel, "tiny", shape)


def test_gated_ffn_refuses_an_activation_other_than_silu():
    with pytest.raises(ValueError, match="gated FFN .* gates with silu; activation 'gelu'"):
        compile_kernel("ffn", "small", (6, 5, 7), gated=True, act="gelu")
    assert compile_kernel("ffn", "small", (6, 5, 7), gated=True, act="silu").graph.name == "ffn_gated"


def test_unknown_kernel_and_activation():
    with pytest.raises(ValueError, match="unknown kernel 'conv'"):
        compile_kernel("conv", "tiny", (1, 2))
    with pytest.raises(ValueError, match="activation must be one of"):
        compile_kernel("gemm", "tiny", (4, 4, 4), act="tanh")


def test_missing_npz_keys_are_named(tmp_path):
    from openrdu.flows.run import load_inputs

    compiled = compile_kernel("gemm", "tiny", (6, 5, 3))
    path = tmp_path / "in.npz"
    np.savez(path, A=np.ones((6, 5), np.float32))
    with pytest.raises(ShapeError, match=r"lacks the key\(s\) B; gemm with shape 6,5,3 needs A, B \(has A\)"):
        load_inputs(str(path), compiled, 0)
    np.savez(path, A=np.ones((6, 4), np.float32), B=np.ones((5, 3), np.float32))
    arrays = load_inputs(str(path), compiled, 0)
    with pytest.raises(ShapeError, match=r"input 'A' has shape \(6, 4\), the kernel needs \(6, 5\)"):
        compiled.graph.check_inputs(arrays)


def test_pack_and_unpack_are_inverse_layouts():
    plan = gm.GemmPlan(13, 7, 10, False, "none", True, 8, 4, pcus=2, tiles=1)
    rng = np.random.default_rng(0)
    c = rng.integers(0, 1 << 16, (plan.mt * 8, plan.np_), dtype=np.uint32)
    vectors = c.reshape(plan.mt, 8, plan.np_).transpose(0, 2, 1).reshape(-1, 8)
    assert np.array_equal(gm.unpack_c(plan, vectors), c[:13, :10])
    a = rng.integers(0, 1 << 16, (13, 7), dtype=np.uint32)
    packed = gm.pack_a(plan, a)
    assert packed.shape == (plan.mt * plan.kp, 8)
    assert np.array_equal(packed.reshape(plan.mt, plan.kp, 8).transpose(0, 2, 1).reshape(-1, plan.kp)[:13], a)


def test_floorplan_draws_every_launch(tmp_path):
    from openrdu.flows.run import draw_floorplan

    compiled = compile_kernel("ffn", "small", (20, 12, 30), act="gelu", fused=False)
    path = draw_floorplan(compiled, tmp_path / "fp.png")
    assert path.stat().st_size > 10_000
    import matplotlib.image as mpimg
    height, width = mpimg.imread(path).shape[:2]
    assert width > 1.5 * height   # two launches side by side


@pytest.mark.parametrize("wbuf", [True, False])
def test_fused_ffn_with_and_without_weight_pmus(monkeypatch, wbuf):
    from compiler import ffn as ff

    plans = ff.plan_ffn
    monkeypatch.setattr(ff, "plan_ffn", lambda *a, **k: [p for p in plans(*a, **k) if p.wbuf == wbuf])
    compiled = compile_kernel("ffn", "small", (9, 16, 40), act="silu")
    assert compiled.plan["ffn"]["weights_in_pmus"] == wbuf
    words = _words(compiled, seed=5)
    assert np.array_equal(emulate(compiled, words)["Y"], compiled.golden(words)["Y"])


def test_elementwise_groups_own_whole_lines():
    from compiler.elementwise import elementwise_launch
    from compiler.kernels import kernel_tile_params
    from compiler.program import HbmAllocator

    params = kernel_tile_params("tiny")
    for vectors in (4, 6, 9, 24):
        alloc = HbmAllocator(4, 1 << 12)
        src, dst = alloc.region("S", vectors), alloc.region("D", vectors)
        launch = elementwise_launch(params, "act", "act_relu_bf16", [src], dst)
        offsets = sorted(c.offset for c in launch.kernel.units.values()
                         if getattr(c, "direction", None) == "store")
        assert all(o % 4 == 0 for o in offsets), (vectors, offsets)     # 4 vectors per line on tiny
        steps = sum(launch.pcu_steps.values())
        assert steps == vectors


@pytest.mark.parametrize("preset,shape,fused", [
    ("tiny", (6, 7), True),
    ("tiny", (6, 7), False),
    ("tiny", (9, 16), True),
    ("small", (64, 128), True),
    ("small", (37, 50), False),
])
def test_rmsnorm_mapping_equals_golden_within_the_fp64_bound(preset, shape, fused):
    compiled = compile_kernel("rmsnorm", preset, shape, fused=fused)
    words = _words(compiled, seed=sum(shape))
    got, want = emulate(compiled, words)["Y"], compiled.golden(words)["Y"]
    assert got.shape == shape
    assert np.array_equal(got, want)
    assert len(compiled.launches) == (1 if fused else 2)
    floats = {k: bf16_words_to_float(w).astype(np.float64) for k, w in words.items()}
    ref, bound = reference(compiled.graph, floats)["Y"]
    assert np.all(np.abs(bf16_words_to_float(got) - ref) <= bound)


def test_rmsnorm_effective_eps_and_the_bound_catches_a_wrong_eps():
    from compiler.rmsnorm import effective_eps

    for d, eps in ((7, 1e-6), (128, 1e-5), (64, 1e-3)):
        e, eff = effective_eps(d, eps)
        assert abs(eff - eps) <= eps * 2 ** -7          # e is a bf16: relative step 2^-8, squared
    # rows of zeros: the result is exactly zero; rows of tiny values: eps dominates, and a
    # golden model that ignored eps would leave the bound
    compiled = compile_kernel("rmsnorm", "tiny", (4, 8), eps=1e-2)
    x = np.full((4, 8), 1e-3, np.float32)
    x[0] = 0
    words = {"X": to_bf16_words(x), "g": to_bf16_words(np.ones(8, np.float32))}
    y = compiled.golden(words)["Y"]
    assert np.all(bf16_words_to_float(y[0]) == 0)
    floats = {k: bf16_words_to_float(w).astype(np.float64) for k, w in words.items()}
    ref, bound = reference(compiled.graph, floats)["Y"]
    assert np.all(np.abs(bf16_words_to_float(y) - ref) <= bound)
    no_eps = bf16_words_to_float(words["X"])[1:] / np.sqrt(np.mean(bf16_words_to_float(words["X"])[1:] ** 2,
                                                                    axis=1, keepdims=True))
    assert np.any(np.abs(no_eps - ref[1:]) > bound[1:])


def test_compilation_does_not_depend_on_the_hash_seed():
    """The same kernel compiles to the same images in every process: route ties once depended on
    the iteration order of a set of string-keyed nodes, so PYTHONHASHSEED changed placements
    (one of those placements hung the unfused FFN on small until Program Load cleared the tile's
    token counters, see docs/kernels.md)."""
    import subprocess
    import sys

    script = (
        "import hashlib\n"
        "from compiler import compile_kernel\n"
        "d = hashlib.sha256()\n"
        "for k, p, s, o in [('ffn', 'small', (32, 64, 256), dict(act='relu', fused=False)),\n"
        "                   ('gemm', 'tiny', (9, 13, 7), dict(act='gelu', bias=True, fused=False))]:\n"
        "    for launch in compile_kernel(k, p, s, **o).launches:\n"
        "        d.update(repr(launch.kernel.host_words()).encode())\n"
        "print(d.hexdigest())\n"
    )
    digests = set()
    for seed in ("0", "1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                              cwd=Path(__file__).resolve().parents[2], timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.add(proc.stdout.strip())
    assert len(digests) == 1, digests


# ------------------------------------------------------------------ attention

def _attention_check(compiled, seed):
    words = _words(compiled, seed=seed)
    got, want = emulate(compiled, words)["O"], compiled.golden(words)["O"]
    floats = {k: bf16_words_to_float(w).astype(np.float64) for k, w in words.items()}
    ref, bound = reference(compiled.graph, floats)["O"]
    return words, got, want, ref, bound


@pytest.mark.parametrize("shape,causal,block", [
    ((16, 8), False, None),        # one key block, padded query tile
    ((37, 12), True, 12),          # T not a multiple of the tile nor of the block: 4 blocks
    ((50, 20), False, 12),         # 5 blocks, D not a multiple of S
    ((45, 64), True, 12),          # the largest D, 5 blocks
    ((100, 8), True, None),        # the planner's block (28 slots), 4 blocks
])
def test_attention_mapping_equals_golden_within_the_fp64_bound(shape, causal, block):
    compiled = compile_kernel("attention", "small", shape, causal=causal, block=block)
    plan = compiled.plan["attention"]
    assert len(compiled.launches) == 1 and len(compiled.launches[0].pcus) == 8
    if shape[0] > 40:
        assert plan["blocks"] >= 4
    _, got, want, ref, bound = _attention_check(compiled, seed=sum(shape) + causal)
    assert got.shape == shape
    assert np.array_equal(got, want)
    assert np.all(np.abs(bf16_words_to_float(want) - ref) <= bound)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_and_unfused_attention_are_identical(causal):
    fused = compile_kernel("attention", "small", (40, 16), causal=causal, block=12)
    unfused = compile_kernel("attention", "small", (40, 16), causal=causal, block=12, fused=False)
    assert [launch.name for launch in unfused.launches] == ["scores", "softmax", "output"]
    words = _words(fused, seed=7)
    a, b = emulate(fused, words)["O"], emulate(unfused, words)["O"]
    assert np.array_equal(a, b)
    assert np.array_equal(a, fused.golden(words)["O"])
    assert np.array_equal(unfused.golden(words)["O"], a)


def test_attention_mask_and_order_are_caught():
    """A program without the causal mask, or a golden model that drops it, is caught: by the
    bit-exact comparison and by the float64 bound."""
    from compiler import attention as at

    compiled = compile_kernel("attention", "small", (30, 8), causal=True, block=12)
    words, got, want, ref, bound = _attention_check(compiled, seed=3)
    assert np.array_equal(got, want)
    # the same kernel with the non-causal thresholds in HBM: the hardware would not mask
    plain = compile_kernel("attention", "small", (30, 8), causal=False, block=12)
    compiled.regions["THR"].pack = plain.regions["THR"].pack
    assert not np.array_equal(emulate(compiled, words)["O"], want)
    assert np.any(np.abs(bf16_words_to_float(plain.golden(words)["O"]) - ref) > bound)
    # a golden model with the 1/sqrt(D) scale rounded differently leaves the bit-exact check
    plan = at.plan_attention(compiled.launches[0].kernel.params, 30, 8, True, 12)
    assert np.array_equal(at.attention_golden(plan, words["Q"], words["K"], words["V"]), want)
    assert not np.array_equal(at.attention_golden(plan, words["K"], words["Q"], words["V"]), want)


def test_attention_refuses_presets_and_shapes_it_does_not_fit():
    for preset, have in (("tiny", 2), ("quad", 4)):
        refusal = rf"PCUs: needs 8, the preset has {have} \(short by {8 - have}\)"
        with pytest.raises(MappingError, match=refusal):
            compile_kernel("attention", preset, (16, 8))
    with pytest.raises(MappingError, match="accumulator entries"):
        compile_kernel("attention", "small", (16, 72))
    with pytest.raises(ShapeError):
        compile_kernel("attention", "small", (16,))


def test_ffn_planner_chooses_as_measured_on_the_hbm_stack():
    """Measured on `small` (docs/kernels.md): with the HBM stack, FFN 64x128x512 streaming W1 and W2
    side by side to four pipelines took 55,238 cycles, weights through PMUs on three pipelines
    67,503 (on the single HBM port before it: 86,761 against 70,090, the other way round); the demo
    shape (one m-group, the streams one at a time) takes four streamed pipelines either way. The
    planner's cost model must choose the same way."""
    big = compile_kernel("ffn", "small", (64, 128, 512), act="gelu").plan["ffn"]
    assert not big["weights_in_pmus"] and big["pipelines"] == 4
    demo = compile_kernel("ffn", "small", (32, 64, 256), act="gelu").plan["ffn"]
    assert not demo["weights_in_pmus"] and demo["pipelines"] == 4
