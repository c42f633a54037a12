"""The compiler's front door: a kernel name, a preset and a shape → a :class:`CompiledKernel`.

:func:`compile_kernel` builds the kernel's graph (:mod:`compiler.ir`), chooses a mapping
(:mod:`compiler.gemm` …), places and routes it, lays its tensors out in HBM and returns the
launches with the golden model that evaluates in the order the mapping computes.
"""

from __future__ import annotations

import numpy as np

from hdl.numerics.golden import f32_to_bf16
from hdl.params import TileParams

from . import gemm as gm
from .elementwise import elementwise_launch
from .ir import ACTIVATIONS, KernelGraph, attention_graph, ffn_graph, gemm_graph, rmsnorm_graph
from .program import CompiledKernel, HbmAllocator

__all__ = ["KERNELS", "kernel_tile_params", "KERNEL_PCU_OPS", "compile_kernel", "kernel_graph",
           "to_bf16_words", "bf16_words_to_float",
           "SHAPE_NAMES", "INPUT_NAMES", "OUTPUT_NAME"]

#: ALU ops the kernels' PCU stages use (kept small: every op is built into every lane of every stage of
#: every PCU, and the MAC array is separate hardware, so the SIMD "mac" is not needed).
KERNEL_PCU_OPS = ("mov", "fadd", "fsub", "fmul", "fmax", "cvt_bf16", "cvt_f32")
#: What attention adds to the kernel PCUs of a preset it fits (8 PCUs or more): the mask's integer
#: compare and select, and an accumulator of ``64 + stages`` entries per lane (``o`` keeps
#: ``(ceil(D/S) + 1)·S`` fp32 entries, so D <= 64). Smaller presets keep the plain kernel PCU.
ATTENTION_PCU_OPS = ("ilt", "sel")
ATTENTION_MAX_D = 64
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
                 causal: bool = False, out_dtype: str = "bf16", eps: float = 1e-6) -> KernelGraph:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    shape = tuple(shape)
    if kernel == "gemm":
        return gemm_graph(shape, act, bias, out_dtype)
    if kernel == "ffn":
        if gated and act not in ("none", "silu"):
            raise ValueError(f"the gated FFN (SwiGLU) gates with silu; activation {act!r} is not available "
                             f"(leave --act out or give silu)")
        return ffn_graph(shape, act if act != "none" else "relu", gated)
    if kernel == "attention":
        return attention_graph(shape, causal)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
    return rmsnorm_graph(shape, float(eps))


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
                   hbm_lines: int = 1 << 22, max_pcus: int | None = None, orders=("nm", "mn"),
                   block: int | None = None) -> CompiledKernel:
    """Compile ``kernel`` for ``preset`` (``block``: attention's key-block slots, default chosen).

    Raises
    ------
    MappingError
        When the kernel does not fit (the message names the resource and the shortfall).
    ShapeError, ValueError
        For a bad shape or option.
    """
    graph = kernel_graph(kernel, shape, act=act, bias=bias, gated=gated, causal=causal, out_dtype=out_dtype,
                         eps=eps)
    params = kernel_tile_params(preset)
    if kernel == "gemm":
        return _compile_gemm(graph, params, fused, hbm_lines, max_pcus, orders)
    if kernel == "ffn":
        return _compile_ffn(graph, params, fused, hbm_lines, max_pcus, orders)
    if kernel == "rmsnorm":
        return _compile_rmsnorm(graph, params, fused, hbm_lines)
    return _compile_attention(graph, params, fused, hbm_lines, block)


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
    alloc = HbmAllocator(L, hbm_lines)
    stage = _gemm_stage(params, alloc, "matmul" if split else "gemm", m, k, n, act="none" if split else act,
                        out_bf16=False if split else out_bf16, bias=bias, a_input="A", b_input="B",
                        out="C_f32" if split else "C", max_pcus=max_pcus, orders=orders)
    launches = [stage.launch]
    if split:
        out_r = alloc.region("C", alloc.regions["C_f32"].vectors)
        launches.append(elementwise_launch(params, "act", f"act_{act}_{'bf16' if out_bf16 else 'f32'}",
                                           [alloc.regions["C_f32"]], out_r))
    chosen = stage.plan

    def collect(vectors: dict) -> dict:
        return {"C": gm.unpack_c(chosen, vectors["C"])}

    def golden(words: dict) -> dict:
        return {"C": gm.gemm_golden(words["A"], words["B"], words.get("bias"), act, out_bf16)}

    compiled = CompiledKernel("gemm", params.preset.name, (m, k, n), fused, launches, alloc.regions,
                              inputs=alloc.inputs, outputs=["C"], golden=golden, order=gm.ORDER,
                              plan={"gemm": _plan_dict(chosen)}, flops=graph.flops())
    compiled.collect = collect
    compiled.graph = graph
    return compiled


class _Stage:
    def __init__(self, launch, plan):
        self.launch, self.plan = launch, plan


def _gemm_stage(params, alloc: HbmAllocator, name: str, m: int, k: int, n: int, *, act: str, out_bf16: bool,
                bias: bool, a_input: str | None, b_input: str, out: str, a_region=None, max_pcus=None,
                orders=("nm", "mn")) -> _Stage:
    """One GEMM launch: A from input ``a_input`` (packed by the host) or from an existing
    C-layout region ``a_region`` (an earlier stage's output), B from input ``b_input`` (with
    the ``bias`` input when ``bias``), C into a new region ``out``."""
    L = params.preset.lanes
    pitch = None if a_region is None else a_region.vectors // (-(-m // L))
    plans = gm.plan_gemm(params, m, k, n, bias=bias, act=act, out_bf16=out_bf16, max_pcus=max_pcus,
                         orders=orders, a_pitch=pitch)
    plan, placed, kernel = gm.route_gemm(params, plans[:12])
    if a_region is None:
        a_region = alloc.region(a_input, plan.mt * plan.kp, pack=lambda w, p=plan: gm.pack_a(p, w[a_input]))
        alloc.inputs.append(a_input)
    b_region = alloc.region(b_input, plan.nb * plan.pcus * plan.block_words // L,
                            pack=lambda w, p=plan: gm.pack_b(p, w[b_input], w.get("bias") if bias else None))
    alloc.inputs.append(b_input)
    c_region = alloc.region(out, plan.mt * plan.np_)
    return _Stage(gm.gemm_launch(name, plan, placed, kernel, a_region, b_region, c_region), plan)


def _compile_ffn(graph: KernelGraph, params: TileParams, fused: bool, hbm_lines: int, max_pcus,
                 orders=("nm", "mn")) -> CompiledKernel:
    from . import ffn as ff

    L, S = params.preset.lanes, params.preset.stages
    t, d = graph.tensors["X"].shape
    gated = graph.name == "ffn_gated"
    h = graph.tensors["Wd" if gated else "W2"].shape[0]
    alloc = HbmAllocator(L, hbm_lines)
    if gated and not fused:
        sg = _gemm_stage(params, alloc, "gate", t, d, h, act="silu", out_bf16=True, bias=False, a_input="X",
                         b_input="Wg", out="G", max_pcus=max_pcus, orders=orders)
        su = _gemm_stage(params, alloc, "up", t, d, h, act="none", out_bf16=True, bias=False, a_input=None,
                         b_input="Wu", out="U", a_region=alloc.regions["X"], max_pcus=max_pcus, orders=orders)
        if sg.plan.np_ != su.plan.np_:
            raise AssertionError("gate and up GEMMs chose different layouts")
        hr = alloc.region("H", alloc.regions["G"].vectors)
        mul = elementwise_launch(params, "mul", "mul_bf16", [alloc.regions["G"], alloc.regions["U"]], hr)
        sd = _gemm_stage(params, alloc, "down", t, h, d, act="none", out_bf16=True, bias=False, a_input=None,
                         b_input="Wd", out="Y", a_region=hr, max_pcus=max_pcus, orders=orders)
        launches, last = [sg.launch, su.launch, mul, sd.launch], sd.plan
        plan_info = {"gate": _plan_dict(sg.plan), "up": _plan_dict(su.plan), "down": _plan_dict(sd.plan)}
        order = gm.ORDER + "; H = bf16(fp32(G) * fp32(U)) (one RNE multiply, then RNE to bf16)"

        def golden(words: dict) -> dict:
            from hdl.numerics.ops import golden as op
            g_ = gm.gemm_golden(words["X"], words["Wg"], None, "silu", True)
            u_ = gm.gemm_golden(words["X"], words["Wu"], None, "none", True)
            h_ = op("cvt_bf16", op("fmul", op("cvt_f32", g_), op("cvt_f32", u_)))
            return {"Y": gm.gemm_golden(h_, words["Wd"], None, "none", True)}

        def collect(vectors: dict) -> dict:
            return {"Y": gm.unpack_c(last, vectors["Y"])}
    elif not fused:
        act = graph.nodes[0].attrs["act"]
        s1 = _gemm_stage(params, alloc, "up", t, d, h, act=act, out_bf16=True, bias=False, a_input="X",
                         b_input="W1", out="H", max_pcus=max_pcus, orders=orders)
        s2 = _gemm_stage(params, alloc, "down", t, h, d, act="none", out_bf16=True, bias=False, a_input=None,
                         b_input="W2", out="Y", a_region=alloc.regions["H"], max_pcus=max_pcus, orders=orders)
        launches, last = [s1.launch, s2.launch], s2.plan
        plan_info = {"up": _plan_dict(s1.plan), "down": _plan_dict(s2.plan)}
        order = gm.ORDER

        def golden(words: dict) -> dict:
            h_ = gm.gemm_golden(words["X"], words["W1"], None, act, True)
            return {"Y": gm.gemm_golden(h_, words["W2"], None, "none", True)}

        def collect(vectors: dict) -> dict:
            return {"Y": gm.unpack_c(last, vectors["Y"])}
    else:
        act = "silu" if gated else graph.nodes[0].attrs["act"]
        plans = ff.plan_ffn(params, t, d, h, act, gated=gated)
        plan, placed, kernel = ff.route_ffn(params, plans)
        xr = alloc.region("X", plan.mt_pad * d, pack=lambda w: ff.pack_xt(w["X"], plan.mt_pad, L))
        n1, n2 = ("Wg", "Wd") if gated else ("W1", "W2")
        if plan.wbuf:
            wp1, wp2 = plan.w_plan(1), plan.w_plan(2)

            def pad_rows(w, k_pad):
                return np.concatenate([w, np.zeros((k_pad - w.shape[0], w.shape[1]), w.dtype)]) \
                    if k_pad > w.shape[0] else w
            w1r = alloc.region("W1", wp1.nb * wp1.block_words // L, pack=lambda w: gm.pack_b(wp1, w["W1"],
                                                                                             None))
            w2r = alloc.region("W2", wp2.nb * wp2.block_words // L,
                               pack=lambda w: gm.pack_b(wp2, pad_rows(w["W2"], plan.hp), None))
        else:
            w1r = alloc.region(n1, plan.nt1 * d, pack=lambda w: ff.pack_rows(w[n1], d, plan.nt1, S, L))
            w2r = alloc.region(n2, plan.nt2 * plan.hp,
                               pack=lambda w: ff.pack_rows(w[n2], plan.hp, plan.nt2, S, L))
        wur = alloc.region("Wu", plan.nt1 * d, pack=lambda w: ff.pack_rows(w["Wu"], d, plan.nt1, S, L)) \
            if gated else None
        yr = alloc.region("Y", plan.mt_pad * plan.dp)
        alloc.inputs += ["X", n1, n2] + (["Wu"] if gated else [])
        launches = [ff.ffn_launch(plan, placed, kernel, xr, w1r, w2r, yr, wur)]
        plan_info = {"ffn": {"pipelines": plan.pipes, "m_groups": plan.groups, "h_padded": plan.hp,
                             "weights_in_pmus": plan.wbuf, "w1_tiles_per_block": plan.tb1,
                             "w2_tiles_per_block": plan.tb2,
                             "mac_steps_per_pcu": plan.steps}}
        order = ff.ORDER + ("; H = bf16(fp32(G) * fp32(U)) with G = bf16(silu(X·Wg)), U = bf16(X·Wu)"
                            if gated else "")

        def golden(words: dict) -> dict:
            return {"Y": ff.ffn_golden(words["X"], words[n1], words[n2], act, plan.hp,
                                       wu=words["Wu"] if gated else None)}

        def collect(vectors: dict) -> dict:
            return {"Y": ff.unpack_tiles(vectors["Y"], plan.mt_pad, plan.dp, L, t, d)}
    compiled = CompiledKernel(graph.name, params.preset.name, (t, d, h), fused, launches, alloc.regions,
                              inputs=alloc.inputs, outputs=["Y"], golden=golden, order=order, plan=plan_info,
                              flops=graph.flops())
    compiled.collect = collect
    compiled.graph = graph
    return compiled


# ------------------------------------------------------------------ rmsnorm

def _compile_rmsnorm(graph: KernelGraph, params: TileParams, fused: bool, hbm_lines: int) -> CompiledKernel:
    from . import rmsnorm as rn

    t, d = graph.tensors["X"].shape
    plan = rn.plan_rmsnorm(params, t, d, graph.nodes[0].attrs["eps"])
    # the kernel realises eps' = e²/D (e a bf16 value): the reference uses the same eps'
    graph = rmsnorm_graph((t, d), eps=plan.eps_effective)
    L = params.preset.lanes
    alloc = HbmAllocator(L, hbm_lines)
    alloc.region("XT", plan.groups * (d + 1), pack=lambda w: rn.pack_xt(plan, w["X"]))
    alloc.region("X", plan.tp * plan.db, pack=lambda w: rn.pack_rows_bf16(plan, w["X"]))
    alloc.region("g", plan.db, pack=lambda w: rn.pack_g(plan, w["g"]))
    if not fused:
        alloc.region("R", plan.groups * plan.stages)
    alloc.region("Y", plan.tp * plan.db)
    alloc.inputs += ["XT", "X", "g"]
    launches = rn.rmsnorm_launches(params, plan, alloc.regions, fused)

    def golden(words: dict) -> dict:
        return {"Y": rn.rmsnorm_golden(plan, words["X"], words["g"])}

    def collect(vectors: dict) -> dict:
        return {"Y": rn.unpack_rows(plan, vectors["Y"])}

    compiled = CompiledKernel("rmsnorm", params.preset.name, (t, d), fused, launches, alloc.regions,
                              inputs=alloc.inputs, outputs=["Y"], golden=golden, order=rn.ORDER,
                              plan={"rmsnorm": {"row_groups": plan.groups, "rows_padded": plan.tp,
                                                "vectors_per_row": plan.db, "eps_requested": plan.eps,
                                                "eps_effective": plan.eps_effective,
                                                "steps": plan.steps}},
                              flops=graph.flops())
    compiled.collect = collect
    compiled.graph = graph
    return compiled


# ------------------------------------------------------------------ attention

def _compile_attention(graph: KernelGraph, params: TileParams, fused: bool, hbm_lines: int,
                       block: int | None) -> CompiledKernel:
    from . import attention as at

    t, d = graph.tensors["Q"].shape
    causal = bool(graph.nodes[0].attrs.get("causal"))
    plan = at.plan_attention(params, t, d, causal, block, fused)
    L = params.preset.lanes
    alloc = HbmAllocator(L, hbm_lines)
    alloc.region("Q", plan.nt * d, pack=lambda w: at.pack_qt(plan, w["Q"]))
    alloc.region("K", plan.nb * plan.kt * d, pack=lambda w: at.pack_k(plan, w["K"]))
    alloc.region("V", plan.nb * plan.nd * plan.keys, pack=lambda w: at.pack_v(plan, w["V"]))
    alloc.region("THR", plan.nt * plan.nb, pack=lambda w: at.pack_thr(plan))
    if not fused:
        blocks = plan.nt * plan.nb
        alloc.region("X", blocks * plan.bc)
        alloc.region("P", blocks * plan.keys)
        alloc.region("A", blocks)
    alloc.region("O", plan.nt * plan.ocols)
    alloc.inputs += ["Q", "K", "V", "THR"]
    launches = at.attention_launches(params, plan, alloc.regions, fused)

    def golden(words: dict) -> dict:
        return {"O": at.attention_golden(plan, words["Q"], words["K"], words["V"])}

    def collect(vectors: dict) -> dict:
        return {"O": at.unpack_o(plan, vectors["O"])}

    compiled = CompiledKernel("attention", params.preset.name, (t, d), fused, launches, alloc.regions,
                              inputs=alloc.inputs, outputs=["O"], golden=golden, order=at.ORDER,
                              plan={"attention": {"causal": causal, "block_slots": plan.bc,
                                                  "keys_per_block": plan.keys, "blocks": plan.nb,
                                                  "query_tiles": plan.nt, "column_tiles": plan.nd,
                                                  "steps": plan.steps}},
                              flops=graph.flops())
    compiled.collect = collect
    compiled.graph = graph
    return compiled


def _plan_dict(plan: gm.GemmPlan) -> dict:
    return {"pcus": plan.pcus, "order": plan.order, "tiles_per_block": plan.tiles, "blocks": plan.nb,
            "m_tiles": plan.mt,
            "n_tiles": plan.nt, "k_steps": plan.kp, "mac_steps_per_pcu": plan.steps,
            "useful_fraction": round(plan.useful_fraction, 4)}
