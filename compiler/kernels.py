"""The compiler's front door: a kernel name, a preset and a shape → a :class:`CompiledKernel`.

:func:`compile_kernel` builds the kernel's graph (:mod:`compiler.ir`), chooses a mapping
(:mod:`compiler.gemm` …), places and routes it, lays its tensors out in HBM and returns the
launches with the golden model that evaluates in the order the mapping computes.
"""

from __future__ import annotations

import numpy as np

from hdl.numerics.golden import f32_to_bf16
from hdl.tile import TileParams

from . import gemm as gm
from .elementwise import elementwise_launch
from .errors import MappingError, ShapeError
from .ir import ACTIVATIONS, KernelGraph, attention_graph, ffn_graph, gemm_graph, rmsnorm_graph
from .program import CompiledKernel, HbmAllocator, lines_to_vectors

__all__ = ["KERNELS", "kernel_tile_params", "KERNEL_PCU_OPS", "compile_kernel", "kernel_graph", "to_bf16_words", "bf16_words_to_float",
           "SHAPE_NAMES", "INPUT_NAMES", "OUTPUT_NAME"]

#: ALU ops the kernels' PCU stages use (the tile's default set plus the bf16 conversions).
KERNEL_PCU_OPS = ("mov", "fadd", "fsub", "fmul", "mac", "fmax", "fmin", "cvt_bf16", "cvt_f32", "sel", "flt")
KERNELS = ("gemm", "ffn", "attention", "rmsnorm")
SHAPE_NAMES = {"gemm": "M,K,N", "ffn": "T,D,H", "attention": "T,D", "rmsnorm": "T,D"}
OUTPUT_NAME = {"gemm": "C", "ffn": "Y", "attention": "O", "rmsnorm": "Y"}


def INPUT_NAMES(kernel: str, gated: bool = False, bias: bool = False) -> list[str]:  # noqa: N802
    return {"gemm": ["A", "B"] + (["bias"] if bias else []),
            "ffn": ["X", "Wg", "Wu", "Wd"] if gated else ["X", "W1", "W2"],
            "attention": ["Q", "K", "V"], "rmsnorm": ["X", "g"]}[kernel]


def to_bf16_words(x) -> np.ndarray:
    """float32 values → bf16 words (RNE) in the low 16 bits."""
    return f32_to_bf16(np.asarray(x, np.float32).view(np.uint32))


def bf16_words_to_float(words) -> np.ndarray:
    return (np.asarray(words, np.uint32) << 16).view(np.float32)


def kernel_graph(kernel: str, shape, *, act: str = "none", bias: bool = False, gated: bool = False,
                 causal: bool = False, out_dtype: str = "bf16") -> KernelGraph:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    shape = tuple(shape)
    if kernel == "gemm":
        return gemm_graph(shape, act, bias, out_dtype)
    if kernel == "ffn":
        return ffn_graph(shape, act if act != "none" else "relu", gated)
    if kernel == "attention":
        return attention_graph(shape, causal)
    return rmsnorm_graph(shape)


def kernel_tile_params(preset) -> TileParams:
    """The tile kernels run on: AGCUs, and PCUs with the tail unit and the MAC array."""
    return TileParams(preset, agcus=True, pcu_tail=True, pcu_systolic=True, pcu_ops=KERNEL_PCU_OPS)


_params = kernel_tile_params


def compile_kernel(kernel: str, preset, shape, *, act: str = "none", bias: bool = False, gated: bool = False,
                   causal: bool = False, fused: bool = True, out_dtype: str = "bf16",
                   hbm_lines: int = 1 << 22, max_pcus: int | None = None, orders=("nm", "mn")) -> CompiledKernel:
    """Compile ``kernel`` for ``preset``.

    Raises
    ------
    MappingError
        When the kernel does not fit (the message names the resource and the shortfall).
    ShapeError, ValueError
        For a bad shape or option.
    """
    graph = kernel_graph(kernel, shape, act=act, bias=bias, gated=gated, causal=causal, out_dtype=out_dtype)
    params = _params(preset)
    if kernel == "gemm":
        return _compile_gemm(graph, params, fused, hbm_lines, max_pcus, orders)
    raise MappingError(f"a mapping for {kernel}", None, None, "not implemented yet in this compiler")


# ------------------------------------------------------------------ gemm

def _compile_gemm(graph: KernelGraph, params: TileParams, fused: bool, hbm_lines: int, max_pcus,
                  orders=("nm", "mn")) -> CompiledKernel:
    node = graph.nodes[0]
    m, k = graph.tensors["A"].shape
    n = graph.tensors["B"].shape[1]
    bias = node.attrs.get("bias") is not None
    act = node.attrs["act"]
    out_bf16 = graph.tensors["C"].dtype == "bf16"
    L = params.preset.lanes
    # unfused: the matmul (its bias is one more MAC step) writes fp32 to HBM, then one
    # elementwise launch applies the activation and the bf16 conversion
    split = not fused and (act != "none" or out_bf16)
    plans = gm.plan_gemm(params, m, k, n, bias=bias, act="none" if split else act,
                         out_bf16=False if split else out_bf16, max_pcus=max_pcus, orders=orders)
    last = None
    for plan in plans[:12]:
        alloc = HbmAllocator(L, hbm_lines)
        a_r = alloc.region("A", plan.mt * plan.kp, pack=lambda w, p=plan: gm.pack_a(p, w["A"]))
        b_r = alloc.region("B", plan.nb * plan.pcus * plan.block_words // L,
                           pack=lambda w, p=plan: gm.pack_b(p, w["B"], w.get("bias")))
        c_r = alloc.region("C", plan.mt * plan.np_)
        try:
            launch, chosen = gm.map_gemm(params, [plan], name="gemm", a_region=a_r, b_region=b_r, c_region=c_r)
        except MappingError as error:
            last = error
            continue
        break
    else:
        raise last

    launches = [launch]
    if split:
        launch.name = "matmul"
        c_r.name = "C_f32"
        alloc.regions["C_f32"] = alloc.regions.pop("C")
        out_r = alloc.region("C", c_r.vectors)
        launches.append(elementwise_launch(params, "act", f"act_{act}_{'bf16' if out_bf16 else 'f32'}",
                                           [c_r], out_r))

    def collect(vectors: dict) -> dict:
        return {"C": gm.unpack_c(chosen, vectors["C"])}

    def golden(words: dict) -> dict:
        return {"C": gm.gemm_golden(words["A"], words["B"], words.get("bias"), act, out_bf16)}

    compiled = CompiledKernel("gemm", params.preset.name, (m, k, n), fused, launches, alloc.regions,
                              inputs=["A", "B"], outputs=["C"], golden=golden, order=gm.ORDER,
                              plan={"gemm": _plan_dict(chosen)}, flops=graph.flops())
    compiled.collect = collect
    compiled.graph = graph
    return compiled


def _plan_dict(plan: gm.GemmPlan) -> dict:
    return {"pcus": plan.pcus, "order": plan.order, "tiles_per_block": plan.tiles, "blocks": plan.nb, "m_tiles": plan.mt,
            "n_tiles": plan.nt, "k_steps": plan.kp, "mac_steps_per_pcu": plan.steps,
            "useful_fraction": round(plan.useful_fraction, 4)}
