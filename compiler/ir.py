"""The kernel graph IR: tensors with shapes and dtypes, ops from the op table, and a float64
reference with a running error bound.

A :class:`KernelGraph` is what a user describes: named tensors (inputs, intermediates,
outputs) and a list of :class:`Node` s in evaluation order. Each node's ``op`` is a graph op
(``matmul``, ``bias``, ``act``, ``mul``, ``rmsnorm``, ``attention``) whose PCU realisation
uses op-table operations (``mac``, ``fmul``, tail ops …). The builders :func:`gemm_graph`,
:func:`ffn_graph`, :func:`attention_graph` and :func:`rmsnorm_graph` make the kernels of the
CLI, :func:`elementwise_graph` the stand-alone elementwise product. :func:`reference`
evaluates a graph in float64 from the bf16-rounded inputs and carries, per element, the
classic forward error bound of an fp32 evaluation (γ_n·Σ|terms| for sums, the tail ops' stated
ulp errors, the bf16 roundings of stored values), so a hardware result can be checked against
float64 independently of the bit-exact golden model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ShapeError

__all__ = ["Tensor", "Node", "KernelGraph", "ACTIVATIONS", "gemm_graph", "ffn_graph", "rmsnorm_graph",
           "attention_graph", "elementwise_graph", "reference", "U32"]

#: Activations a graph may name; each is a tail op of the op table (``none`` passes through).
ACTIVATIONS = ("none", "relu", "gelu", "silu")
#: Unit roundoff of fp32 and of bf16 (round to nearest).
U32 = 2.0 ** -24
U16 = 2.0 ** -8
TINY = 2.0 ** -126
DTYPES = ("bf16", "f32")


@dataclass(frozen=True)
class Tensor:
    """A named tensor: ``shape``, element ``dtype`` (``bf16`` or ``f32``) and ``kind``
    (``input``, ``intermediate`` or ``output``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "bf16"
    kind: str = "input"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"tensor {self.name}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.kind not in ("input", "intermediate", "output"):
            raise ValueError(f"tensor {self.name}: unknown kind {self.kind!r}")
        if not self.shape or any(not isinstance(d, int) or d < 1 for d in self.shape):
            raise ShapeError(f"tensor {self.name}: every dimension must be a positive int, got {self.shape}")


@dataclass(frozen=True)
class Node:
    """One graph op: ``op`` applied to ``inputs`` (tensor names) giving ``output``."""

    op: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict = field(default_factory=dict)


@dataclass
class KernelGraph:
    """A kernel: tensors and nodes in evaluation order."""

    name: str
    tensors: dict[str, Tensor]
    nodes: list[Node]

    @property
    def inputs(self) -> list[str]:
        return [t.name for t in self.tensors.values() if t.kind == "input"]

    @property
    def outputs(self) -> list[str]:
        return [t.name for t in self.tensors.values() if t.kind == "output"]

    def check_inputs(self, arrays: dict) -> None:
        """Raise :class:`ShapeError` for a missing input or one of the wrong shape."""
        for name in self.inputs:
            if name not in arrays:
                raise ShapeError(f"{self.name}: input {name!r} is missing (inputs: {', '.join(self.inputs)})")
            shape = tuple(np.shape(arrays[name]))
            if shape != self.tensors[name].shape:
                raise ShapeError(f"{self.name}: input {name!r} has shape {shape}, the kernel needs "
                                 f"{self.tensors[name].shape}")

    def flops(self) -> int:
        total = 0
        for node in self.nodes:
            if node.op == "matmul":
                (m, k), (_, n) = self.tensors[node.inputs[0]].shape, self.tensors[node.inputs[1]].shape
                total += 2 * m * k * n
            elif node.op == "rmsnorm":
                t, d = self.tensors[node.inputs[0]].shape
                total += 4 * t * d            # square, add, two multiplies per element
            elif node.op == "attention":
                t, d = self.tensors[node.inputs[0]].shape
                total += 4 * t * t * d        # Q·Kᵀ and P·V
        return total


def _dims(shape: Sequence[int], count: int, names: str) -> tuple[int, ...]:
    if len(shape) != count or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ShapeError(f"shape must be {count} positive ints {names}, got {tuple(shape)}")
    return tuple(shape)


def _act(act: str) -> str:
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    return act


def gemm_graph(shape, act: str = "none", bias: bool = False, out_dtype: str = "bf16") -> KernelGraph:
    """``C = act(A·B + bias)``: A (M, K), B (K, N), optional bias (N,); C in ``out_dtype``."""
    m, k, n = _dims(shape, 3, "M,K,N")
    act = _act(act)
    t = {"A": Tensor("A", (m, k)), "B": Tensor("B", (k, n))}
    nodes = []
    src = "AB"
    if bias:
        t["bias"] = Tensor("bias", (n,))
    t["C"] = Tensor("C", (m, n), out_dtype, "output")
    nodes.append(Node("matmul", ("A", "B"), "C", {"bias": "bias" if bias else None, "act": act}))
    del src
    return KernelGraph("gemm", t, nodes)


def ffn_graph(shape, act: str = "relu", gated: bool = False) -> KernelGraph:
    """``Y = act(X·W1)·W2`` or, gated, ``Y = (silu(X·Wg) ⊙ X·Wu)·Wd``; H stored as bf16."""
    t_, d, h = _dims(shape, 3, "T,D,H")
    t = {"X": Tensor("X", (t_, d))}
    if gated:
        t["Wg"], t["Wu"], t["Wd"] = Tensor("Wg", (d, h)), Tensor("Wu", (d, h)), Tensor("Wd", (h, d))
        t["G"] = Tensor("G", (t_, h), "bf16", "intermediate")
        t["U"] = Tensor("U", (t_, h), "bf16", "intermediate")
        t["H"] = Tensor("H", (t_, h), "bf16", "intermediate")
        t["Y"] = Tensor("Y", (t_, d), "bf16", "output")
        nodes = [Node("matmul", ("X", "Wg"), "G", {"act": "silu"}),
                 Node("matmul", ("X", "Wu"), "U", {"act": "none"}),
                 Node("mul", ("G", "U"), "H"),
                 Node("matmul", ("H", "Wd"), "Y", {"act": "none"})]
        return KernelGraph("ffn_gated", t, nodes)
    act = _act(act)
    t["W1"], t["W2"] = Tensor("W1", (d, h)), Tensor("W2", (h, d))
    t["H"] = Tensor("H", (t_, h), "bf16", "intermediate")
    t["Y"] = Tensor("Y", (t_, d), "bf16", "output")
    nodes = [Node("matmul", ("X", "W1"), "H", {"act": act}), Node("matmul", ("H", "W2"), "Y",
                                                                  {"act": "none"})]
    return KernelGraph("ffn", t, nodes)


def rmsnorm_graph(shape, eps: float = 1e-6) -> KernelGraph:
    """``Y = X / sqrt(mean(X², axis=1) + eps) · g``: X (T, D), g (D,)."""
    t_, d = _dims(shape, 2, "T,D")
    t = {"X": Tensor("X", (t_, d)), "g": Tensor("g", (d,)), "Y": Tensor("Y", (t_, d), "bf16", "output")}
    return KernelGraph("rmsnorm", t, [Node("rmsnorm", ("X", "g"), "Y", {"eps": eps})])


def attention_graph(shape, causal: bool = False) -> KernelGraph:
    """``O = softmax(Q·Kᵀ/√d [+ causal mask])·V``, single head: Q, K, V (T, D)."""
    t_, d = _dims(shape, 2, "T,D")
    t = {"Q": Tensor("Q", (t_, d)), "K": Tensor("K", (t_, d)), "V": Tensor("V", (t_, d)),
         "O": Tensor("O", (t_, d), "bf16", "output")}
    return KernelGraph("attention", t, [Node("attention", ("Q", "K", "V"), "O", {"causal": causal})])


def elementwise_graph(shape) -> KernelGraph:
    """``C = A ⊙ B`` (bf16 inputs and output, the product in fp32): A, B, C (T, D)."""
    t_, d = _dims(shape, 2, "T,D")
    t = {"A": Tensor("A", (t_, d)), "B": Tensor("B", (t_, d)), "C": Tensor("C", (t_, d), "bf16", "output")}
    return KernelGraph("elementwise", t, [Node("mul", ("A", "B"), "C")])


# ------------------------------------------------------------------ float64 reference with bounds

#: Lipschitz constants of the activations (|f'| bound), for propagating input errors.
_LIPSCHITZ = {"none": 1.0, "relu": 1.0, "silu": 1.1, "gelu": 1.13}


def _gamma(n: int) -> float:
    return n * U32 / (1 - n * U32)


def _act64(act: str, x: np.ndarray) -> np.ndarray:
    if act == "none":
        return x
    if act == "relu":
        return np.maximum(x, 0.0)
    with np.errstate(over="ignore"):
        if act == "silu":
            return x / (1.0 + np.exp(-x))
        return x / (1.0 + np.exp(-2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))  # gelu, tanh form


def _act_bound(act: str, x: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from hdl.numerics.tail import ERROR_BOUNDS

    y = _act64(act, x)
    if act == "none":
        return y, err
    ulps = ERROR_BOUNDS.get(act, 0.0)
    # propagated input error, the approximation's stated ulps (plus one for the reference's
    # own rounding), and the flush of tiny results
    return y, _LIPSCHITZ[act] * err + (ulps + 1) * 2 * U32 * np.abs(y) + TINY


def _store(dtype: str, y: np.ndarray, err: np.ndarray) -> np.ndarray:
    return err + (U16 if dtype == "bf16" else U32) * (np.abs(y) + err) + TINY


def reference(graph: KernelGraph, inputs: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Evaluate ``graph`` in float64 from ``inputs`` (float arrays already rounded to bf16);
    return ``{tensor: (value, bound)}`` where ``bound`` bounds |fp32 evaluation - value|."""
    env = {name: (np.asarray(inputs[name], np.float64), np.zeros(np.shape(inputs[name])))
           for name in graph.inputs}
    for node in graph.nodes:
        out = graph.tensors[node.output]
        if node.op == "matmul":
            (a, ea), (b, eb) = env[node.inputs[0]], env[node.inputs[1]]
            y = a @ b
            mag = np.abs(a) @ np.abs(b)
            terms = a.shape[1]
            prop = ea @ np.abs(b) + np.abs(a) @ eb + ea @ eb
            if node.attrs.get("bias"):
                bias, eb2 = env[node.attrs["bias"]]
                y = y + bias
                mag = mag + np.abs(bias)
                prop = prop + eb2
                terms += 1
            err = _gamma(terms) * (mag + prop) + prop + terms * TINY
            y, err = _act_bound(node.attrs.get("act", "none"), y, err)
        elif node.op == "mul":
            (a, ea), (b, eb) = env[node.inputs[0]], env[node.inputs[1]]
            y = a * b
            err = np.abs(a) * eb + np.abs(b) * ea + ea * eb
            err = err + U32 * (np.abs(y) + err) + TINY
        elif node.op == "rmsnorm":
            (x, _), (g, _) = env[node.inputs[0]], env[node.inputs[1]]
            d = x.shape[1]
            ms = np.mean(x * x, axis=1, keepdims=True) + node.attrs["eps"]
            r = 1.0 / np.sqrt(ms)
            y = x * r * g
            # sum of squares (γ_d relative), the mean's scaling, eps add, rsqrt's stated ulps,
            # two multiplies: a relative bound on r, then on y
            from hdl.numerics.tail import ERROR_BOUNDS
            rel_ms = _gamma(d + 2)
            rel_r = 0.5 * rel_ms + (ERROR_BOUNDS["rsqrt"] + 1) * 2 * U32
            # the kernel's products x·r, ·sqrt(D) (a rounded constant), ·g: γ_4
            err = np.abs(y) * (rel_r + _gamma(4)) + TINY * d
        elif node.op == "attention":
            (q, _), (k, _), (v, _) = (env[n] for n in node.inputs)
            d = q.shape[1]
            s = (q @ k.T) / np.sqrt(d)
            if node.attrs.get("causal"):
                s = np.where(np.tril(np.ones(s.shape, bool)), s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p = p / p.sum(axis=1, keepdims=True)
            y = p @ v
            err = attention_bound(q, k, v, s, p, node.attrs)
        else:
            raise ValueError(f"unknown graph op {node.op!r}")
        env[node.output] = (y, _store(out.dtype, y, err))
    return env


def attention_bound(q, k, v, s, p, attrs) -> np.ndarray:
    """A forward bound for the streamed softmax·V of the attention kernel (see docs/kernels.md):
    the scores carry γ_d relative error of Σ|q||k|, exp multiplies relative errors, the running
    sum and the output accumulation each carry γ_T."""
    from hdl.numerics.tail import ERROR_BOUNDS

    t, d = q.shape
    score_err = (_gamma(d + 1) * (np.abs(q) @ np.abs(k.T)) / np.sqrt(d)
                 + U16 * np.abs(s[np.isfinite(s)]).max(initial=0))
    exp_rel = score_err * 2 + (ERROR_BOUNDS["exp"] + 2) * 2 * U32 + U16      # p stored as bf16
    rel = exp_rel * 2 + _gamma(t + 2) * 2 + (ERROR_BOUNDS["recip"] + 1) * 2 * U32
    # rel is per (query, key); a row's output is a weighted mean of V rows, so its error is
    # bounded by the row's largest relative weight error times the mean of |V|
    return np.max(rel, axis=1, keepdims=True) * (p @ np.abs(v)) + TINY * t
