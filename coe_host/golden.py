"""Golden (fast-mode) kernels of the CoE host: bf16 GEMM with fp32 accumulation, FFN, argmax.

These follow the numerics contract (docs/architecture.md, Numerics contract) through
:mod:`hdl.numerics.golden`: storage bf16, each product exact in fp32, accumulation in fp32 with
one IEEE rounding per MAC, in a fixed order —
``acc = 0; for k in 0 .. K-1: acc = acc + a[:, k] · b[k, :]`` (one MAC chain per output, as a
PCU lane accumulates). The RTL-backed mode must reproduce these bit for bit.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from hdl.numerics import golden as ng

__all__ = ["to_bf16_words", "bf16_words_to_float", "gemm_bf16", "relu_words", "ffn_forward", "argmax_words"]


def to_bf16_words(x) -> np.ndarray:
    """Float values → bf16 words (RNE via ml_dtypes) in the low 16 bits of uint32."""
    return ng.f32_to_bf16(ng.words_from_float(np.asarray(x, dtype=np.float32)))


def bf16_words_to_float(words) -> np.ndarray:
    return ng.float_from_words(ng.bf16_to_f32(words))


def gemm_bf16(a_words: np.ndarray, b_words: np.ndarray) -> np.ndarray:
    """``a @ b`` for bf16 words ``a`` (M, K) and ``b`` (K, N): fp32 words (M, N), sequential-K MACs."""
    a_words = np.asarray(a_words, dtype=np.uint32)
    b_words = np.asarray(b_words, dtype=np.uint32)
    if a_words.ndim != 2 or b_words.ndim != 2 or a_words.shape[1] != b_words.shape[0]:
        raise ValueError(f"gemm shapes do not chain: {a_words.shape} @ {b_words.shape}")
    m, k = a_words.shape
    n = b_words.shape[1]
    acc = np.zeros((m, n), dtype=np.uint32)
    a_zero = (a_words & 0x7FFF) == 0
    b_finite = ((b_words >> 7) & 0xFF) != 0xFF
    for i in range(k):
        # Skipping a MAC whose product is ±0 (a zero, b finite) is exact unless acc is -0
        # (-0 + +0 = +0): rows holding -0 are computed; the result is bit-identical to the full chain.
        if b_finite[i].all():
            rows = ~a_zero[:, i] | (acc == 0x80000000).any(axis=1)
            if not rows.any():
                continue
            if not rows.all():
                acc[rows] = ng.mac(acc[rows], a_words[rows, i:i + 1], b_words[i:i + 1, :])
                continue
        acc = ng.mac(acc, a_words[:, i:i + 1], b_words[i:i + 1, :])
    return acc


def relu_words(f32_words: np.ndarray) -> np.ndarray:
    """max(x, +0) on fp32 words (IEEE maximum: NaN propagates)."""
    return ng.fmax(f32_words, np.zeros_like(np.asarray(f32_words, dtype=np.uint32)))


def ffn_forward(x_words: np.ndarray, w1_words: np.ndarray, w2_words: np.ndarray) -> np.ndarray:
    """The small experts' FFN: ``y = bf16(relu(bf16(x @ w1)) @ w2)`` — bf16 words in and out.

    ``x`` (batch, d_model), ``w1`` (d_model, ffn), ``w2`` (ffn, d_model), all bf16 words; the
    hidden activations are rounded to bf16 (they are stored between the two GEMMs).
    """
    h = ng.f32_to_bf16(relu_words(gemm_bf16(x_words, w1_words)))
    return ng.f32_to_bf16(gemm_bf16(h, w2_words))


def argmax_words(f32_words: np.ndarray) -> np.ndarray:
    """Row-wise argmax of fp32 words (first index on ties; NaN rows give the first NaN)."""
    values = ng.flush_inputs(f32_words)
    return np.argmax(values, axis=1)


def bf16_array(words: np.ndarray) -> np.ndarray:
    """bf16 words as an ``ml_dtypes.bfloat16`` array (for images and checks)."""
    return (np.asarray(words, dtype=np.uint32) & 0xFFFF).astype(np.uint16).view(ml_dtypes.bfloat16)
