"""The compiler's front door: a kernel name, a preset and a shape → a :class:`CompiledKernel`.

:func:`compile_kernel` looks the kernel up in :mod:`compiler.registry`, builds its graph
(:mod:`compiler.ir`), and has its :class:`~compiler.mapping.KernelMapping` map it onto the
kernel tile of the preset (:func:`kernel_tile_params`): plan, place and route, lay its tensors
out in HBM, and return the launches with the golden model that evaluates in the order the
mapping computes.
"""

from __future__ import annotations

import numpy as np

from hdl.numerics.golden import f32_to_bf16
from hdl.params import TileParams

from .ir import ACTIVATIONS, KernelGraph
from .mapping import DEFAULT_HBM_LINES
from .program import CompiledKernel
from .registry import get_kernel

__all__ = ["kernel_tile_params", "KERNEL_PCU_OPS", "compile_kernel", "kernel_graph",
           "to_bf16_words", "bf16_words_to_float"]

#: ALU ops the kernels' PCU stages use (kept small: every op is built into every lane of every stage of
#: every PCU, and the MAC array is separate hardware, so the SIMD "mac" is not needed).
KERNEL_PCU_OPS = ("mov", "fadd", "fsub", "fmul", "fmax", "cvt_bf16", "cvt_f32")
#: What attention adds to the kernel PCUs of a preset it fits (8 PCUs or more): the mask's integer
#: compare and select, and an accumulator of ``64 + stages`` entries per lane (``o`` keeps
#: ``(ceil(D/S) + 1)·S`` fp32 entries, so D <= 64). Smaller presets keep the plain kernel PCU.
ATTENTION_PCU_OPS = ("ilt", "sel")
ATTENTION_MAX_D = 64

# ------------------------------------------------------------------ bf16 words

def to_bf16_words(x) -> np.ndarray:
    """float32 values → bf16 words (RNE) in the low 16 bits."""
    return f32_to_bf16(np.asarray(x, np.float32).view(np.uint32))


def bf16_words_to_float(words) -> np.ndarray:
    """bf16 words (low 16 bits) → float32 values."""
    return (np.asarray(words, np.uint32) << 16).view(np.float32)


# ------------------------------------------------------------------ the front door

def kernel_graph(kernel: str, shape, *, act: str = "none", bias: bool = False, gated: bool = False,
                 causal: bool = False, out_dtype: str = "bf16", eps: float = 1e-6) -> KernelGraph:
    """The graph of ``kernel`` for ``shape``; options the kernel does not take are ignored.

    Raises
    ------
    ValueError
        For an unknown kernel, an activation not in :data:`compiler.ir.ACTIVATIONS` (for every
        kernel) or an option value the kernel cannot take.
    ShapeError
        For a bad shape.
    """
    mapping = get_kernel(kernel)
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    options = dict(act=act, bias=bias, gated=gated, causal=causal, out_dtype=out_dtype, eps=eps)
    return mapping.graph(tuple(shape), **mapping.select(options, mapping.graph_options))


def kernel_tile_params(preset) -> TileParams:
    """The tile kernels run on: AGCUs, and PCUs with the tail unit and the MAC array; on a preset
    with room for attention (its PCU count) also the accumulator and the mask ops it needs."""
    from hdl.presets import get_preset

    from .attention import PCUS
    from .place import site_counts

    preset = get_preset(preset)
    if site_counts(preset)["pcu"] >= PCUS:
        return TileParams(preset, agcus=True, pcu_tail=True, pcu_systolic=True,
                          pcu_ops=KERNEL_PCU_OPS + ATTENTION_PCU_OPS,
                          pcu_acc_depth=ATTENTION_MAX_D + preset.stages)
    return TileParams(preset, agcus=True, pcu_tail=True, pcu_systolic=True, pcu_ops=KERNEL_PCU_OPS)


def compile_kernel(kernel: str, preset, shape, *, act: str = "none", bias: bool = False, gated: bool = False,
                   causal: bool = False, fused: bool = True, out_dtype: str = "bf16", eps: float = 1e-6,
                   hbm_lines: int = DEFAULT_HBM_LINES, max_pcus: int | None = None, orders=("nm", "mn"),
                   block: int | None = None) -> CompiledKernel:
    """Compile ``kernel`` (a name of :mod:`compiler.registry`) for ``preset``.

    Options a kernel does not take (``causal`` for gemm …) are ignored; a caller that wants to
    refuse them asks :meth:`~compiler.mapping.KernelMapping.refused_options`.

    Parameters
    ----------
    kernel : str
        ``gemm``, ``ffn``, ``attention``, ``rmsnorm`` or ``elementwise``.
    preset : Preset or str
    shape : sequence of int
        The kernel's dimensions (``get_kernel(kernel).shape_names``).
    act, bias, gated, causal, out_dtype, eps
        Graph options (see :data:`compiler.mapping.OPTION_DEFAULTS`).
    fused : bool
        One launch, or one per op with the intermediates in HBM.
    hbm_lines : int
        HBM lines the kernel may use.
    max_pcus, orders, block
        Mapping options: PCUs per GEMM at most, the GEMM loop orders the planner may choose,
        attention's key-block slots (default chosen).

    Raises
    ------
    MappingError
        When the kernel does not fit (the message names the resource and the shortfall).
    ShapeError, ValueError
        For a bad shape or option, or an unknown kernel.
    """
    mapping = get_kernel(kernel)
    graph = kernel_graph(kernel, shape, act=act, bias=bias, gated=gated, causal=causal, out_dtype=out_dtype,
                         eps=eps)
    params = kernel_tile_params(preset)
    options = dict(max_pcus=max_pcus, orders=orders, block=block)
    return mapping.compile(graph, params, fused=fused, hbm_lines=hbm_lines,
                           **mapping.select(options, mapping.mapping_options))
