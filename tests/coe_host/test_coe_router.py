"""CoE router: bf16 golden GEMM semantics, prompt set, and held-out routing accuracy above the floor."""

import numpy as np
import pytest

from coe_host.golden import ffn_forward, gemm_bf16, to_bf16_words
from coe_host.router import ACCURACY_FLOOR, DOMAINS, featurize, make_prompts, train_default
from hdl.numerics import golden as ng


def _mac_chain(a, b):
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.uint32)
    for k in range(a.shape[1]):
        acc = ng.mac(acc, a[:, k:k + 1], b[k:k + 1, :])
    return acc


@pytest.mark.parametrize("seed", range(6))
def test_gemm_is_the_sequential_mac_chain_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((9, 21))
    a[rng.random(a.shape) < 0.5] = 0.0                  # sparse, as bag-of-words inputs are
    a[rng.random(a.shape) < 0.1] = -0.0
    b = rng.standard_normal((21, 7)) * 10.0 ** float(rng.integers(-45, 3))   # some products underflow
    if seed % 2:
        b[4, 1] = np.inf                                # 0 * inf = NaN must not be skipped
    A, B = to_bf16_words(a), to_bf16_words(b)
    assert np.array_equal(gemm_bf16(A, B), _mac_chain(A, B))


def test_gemm_within_the_fp32_error_bound_of_float64():
    rng = np.random.default_rng(7)
    A = to_bf16_words(rng.standard_normal((5, 64)))
    B = to_bf16_words(rng.standard_normal((64, 3)))
    a = ng.float_from_words(ng.bf16_to_f32(A)).astype(np.float64)
    b = ng.float_from_words(ng.bf16_to_f32(B)).astype(np.float64)
    got = ng.float_from_words(gemm_bf16(A, B)).astype(np.float64)
    bound = 64 * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(b))
    assert np.all(np.abs(got - a @ b) <= bound)


def test_ffn_forward_shapes_and_bf16_output():
    rng = np.random.default_rng(1)
    x = to_bf16_words(rng.standard_normal((2, 8)))
    w1, w2 = to_bf16_words(rng.standard_normal((8, 16))), to_bf16_words(rng.standard_normal((16, 8)))
    y = ffn_forward(x, w1, w2)
    assert y.shape == (2, 8) and y.dtype == np.uint32 and int(y.max()) < 1 << 16


def test_prompt_set_is_labelled_deterministic_and_covers_the_domains():
    p1, l1 = make_prompts(400, seed=3)
    p2, l2 = make_prompts(400, seed=3)
    assert p1 == p2 and np.array_equal(l1, l2)
    assert len(DOMAINS) >= 8 and set(l1) == set(range(len(DOMAINS)))
    x = featurize(p1[:5], 64)
    assert x.shape == (5, 64) and np.all(x[:, -1] == 1) and np.all(x == np.round(x))


def test_router_accuracy_above_the_floor_on_held_out_prompts():
    r = train_default()
    assert r["heldout_accuracy"] >= ACCURACY_FLOOR, r
    assert r["heldout_accuracy"] <= r["oracle_accuracy"] + 0.02      # cannot beat the set's ceiling by much
    router = r["router"]
    assert router.weights.dtype == np.uint32 and int(router.weights.max()) < 1 << 16   # bf16 words
    prompts, _ = make_prompts(50, seed=99)
    assert np.array_equal(router.route(prompts), router.route(prompts))
