"""Operand sets for the numerics tests: special values, their cross products, random words.

Shared by the pysim, vector-file and cocotb tests so that every path sees the
same awkward cases.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from hdl.numerics import golden as g

#: fp32 words every binary op must get right in every pairing.
SPECIAL_F32 = np.array([
    0x00000000, 0x80000000,  # ±0
    0x00000001, 0x807FFFFF,  # subnormals (read as ±0)
    0x00800000, 0x80800000,  # ±min normal
    0x00800001, 0x00FFFFFF,  # just above min normal
    0x7F7FFFFF, 0xFF7FFFFF,  # ±max
    0x7F000000, 0xFF000000,  # 2**127: sums overflow
    0x7F800000, 0xFF800000,  # ±Inf
    0x7FC00000, 0x7F800001, 0xFFFFFFFF,  # NaNs (canonical, signalling, negative)
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F7FFFFF,  # ±1 and neighbours: cancellation
    0x33800000, 0x33800001, 0x34000000,  # 2**-24 (half ulp of 1), ties when added to 1
    0x3F000000, 0x3EFFFFFF, 0x3FC00000,  # 0.5, 1.5: f2i ties
    0x4B000000, 0x4B000001, 0x4EFFFFFF, 0x4F000000, 0xCF000000, 0xCF000001,  # int range edges
    0x40490FDB, 0xC0490FDB, 0x3FFFFFFF, 0x1F800000, 0x20000000,  # pi, ~2, products near 2**-126
], dtype=np.uint32)

#: int32 words for the integer ops.
SPECIAL_I32 = np.array([0, 1, 2, 31, 32, 33, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE,
                        0x12345678, 0x0000FFFF, 0xFFFF0000, 0xAAAAAAAA, 0x55555555], dtype=np.uint32)


def cross(values: np.ndarray, arity: int) -> list[np.ndarray]:
    """All ``arity``-tuples of ``values`` as operand columns."""
    grids = np.meshgrid(*([values] * arity), indexing="ij")
    return [grid.ravel().astype(np.uint32) for grid in grids]


def random_operands(op_types, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` operand tuples typed by ``op_types``: a third uniform random words, a third
    finite values of moderate range (exponents within 2**±20, often close to each other, so
    additions cancel and round), a third bf16 values."""
    columns = []
    third = count // 3
    shared_exp = rng.integers(107, 148, count - 2 * third)
    for t in op_types:
        raw = rng.integers(0, 1 << 32, third, dtype=np.uint64).astype(np.uint32)
        if t == "i32":
            small = rng.integers(-64, 64, count - third).astype(np.int64).astype(np.uint32)
            columns.append(np.concatenate([raw, small]))
            continue
        exps = shared_exp + rng.integers(-2, 3, shared_exp.size)
        near = ((rng.integers(0, 2, shared_exp.size, dtype=np.uint32) << 31)
                | (exps.astype(np.uint32) << 23)
                | rng.integers(0, 1 << 23, shared_exp.size, dtype=np.uint32))
        bf = rng.normal(0, 4, third).astype(np.float32).astype(ml_dtypes.bfloat16)
        bf_words = bf.view(np.uint16).astype(np.uint32)
        if t == "f32":
            bf_words = bf_words << 16
        if t == "bf16":
            raw &= 0xFFFF
            near >>= 16
        columns.append(np.concatenate([raw, near.astype(np.uint32), bf_words]))
    return columns


def bf16_words_of(values) -> np.ndarray:
    """bf16 bit patterns (low 16 bits) of float values."""
    return np.asarray(values, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.uint32)


def sequential_mac(a_bf16: np.ndarray, b_bf16: np.ndarray) -> np.ndarray:
    """numpy's plain float32 loop ``acc = acc + a*b`` with a, b bf16; every partial sum as a word."""
    a = a_bf16.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    b = b_bf16.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    acc = np.float32(0)
    out = np.empty(a.size, dtype=np.uint32)
    with np.errstate(over="ignore", invalid="ignore"):  # chains may overflow to Inf on purpose
        for k in range(a.size):
            acc = np.float32(acc + a[k] * b[k])
            out[k] = np.float32(acc).view(np.uint32)
    return out


def mismatch_report(label: str, columns, got, want) -> str:
    """Which results differ from the golden model, with the first few operand tuples."""
    bad = np.nonzero(got != want)[0]
    lines = [f"{label}: {len(bad)} of {len(want)} results differ from the golden model"]
    for k in bad[:6]:
        operands = ", ".join(f"{int(c[k]):#010x}" for c in columns)
        lines.append(f"  ({operands}) -> rtl {int(got[k]):#010x}, golden {int(want[k]):#010x}")
    return "\n".join(lines)


__all__ = ["mismatch_report", "SPECIAL_F32", "SPECIAL_I32", "cross", "random_operands", "bf16_words_of",
           "sequential_mac", "g"]
