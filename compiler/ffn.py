"""Fused FFN on the fabric: ``Y = act(X·W1)·W2`` in one launch, H kept in PMUs.

Mapping (``G`` pipelines; ``L`` lanes, ``S`` stages)
----------------------------------------------------
Pipeline ``g`` owns the m-tiles ``mg·G + g`` (``L`` rows of X each) and has two PCUs in
systolic mode and two PMUs::

    agcu_x ══▶ pmu_x<g> ──▶ pcu1<g> ──▶ pmu_h<g> ──▶ pcu2<g> ──▶ agcu_y<g>
    agcu_w1 ═══════════════▲                           ▲
    agcu_w2 ═══════════════════════════════════════════┘      (══ multicast to every pipeline)

For each m-group ``mg``: ``agcu_x`` streams the G Xᵀ tiles of the group once (each
``pmu_x<g>`` keeps its own tile, by write offset and range, and replays it once per n-tile
of H); ``agcu_w1`` streams W1 row by row (rows padded to L words, started once per m-group
by ``pmu_x0``'s write-done token) to every ``pcu1<g>``, which computes ``act(X·W1)`` for its
m-tile one ``L × S`` tile at a time and drains the columns of H (bf16) into ``pmu_h<g>`` —
exactly the Hᵀ tile the second GEMM reads; ``pmu_h<g>`` (double-buffered, so the next
m-group's H fills while this one is consumed) replays it once per n-tile of Y while
``agcu_w2`` streams W2 (started by ``pmu_h0``'s write-done) to every ``pcu2<g>``; each
``pcu2<g>`` drains Y tiles to its store AGCU. H never leaves the chip.

Each pipeline's two PCUs run one-PCU GEMMs in the m-tile-outer order
(:meth:`FfnPlan.gemm_plan`), so their PCU and PMU programs are :mod:`compiler.gemm`'s
(:func:`~compiler.gemm.mac_pcu`, :func:`~compiler.gemm.a_tile_pmu` — ``pmu_x<g>`` takes its
part of the multicast X stream —, :func:`~compiler.gemm.b_block_pmu` for the weight PMUs).

Unfused (:class:`FfnKernel`): the same FFN as GEMM launches (:func:`compiler.gemm.gemm_stage`)
with H in HBM, and for the gated form an elementwise launch for the product.

Accumulation order: as for :mod:`compiler.gemm` — every element of H and of Y is an fp32
MAC chain from +0 in k order with exact bf16 products, then the activation (H only) and RNE
to bf16; H has its columns padded to whole n-tiles (zeros: act(+0) = +0) and the second
chain runs over the padded length (the extra terms add +0·+0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.counters import Counter
from hdl.numerics.ops import golden as op_golden

from .elementwise import PROGRAMS, elementwise_launch
from .errors import MappingError
from .gemm import ORDER as GEMM_ORDER
from .gemm import GemmPlan, a_tile_pmu, b_block_pmu, gemm_golden, gemm_stage, mac_pcu, pack_b, unpack_c
from .ir import KernelGraph, ffn_graph
from .mapping import COUNTER_LIMIT, DEFAULT_HBM_LINES, KernelMapping, ceil_div
from .place import place_and_route, site_counts
from .program import CompiledKernel, HbmAllocator, Launch

__all__ = ["FfnPlan", "plan_ffn", "ffn_units", "route_ffn", "ffn_launch", "pack_xt", "pack_rows",
           "unpack_tiles", "gated_h", "ffn_golden", "FfnKernel", "ORDER"]

ORDER = ("H[i,j] = bf16(act(fp32 MAC chain from +0 over k = 0..D-1))); Y[i,j] = bf16(fp32 MAC chain from +0 "
         "over k = 0..Hp-1 of H[i,k]*W2[k,j]) with H, W2 zero-padded to Hp = whole n-tiles")


#: Vectors per fabric cycle a fused FFN's streamed weights (W1, W2 straight from their AGCUs to the
#: pipelines) reach on the kernel memory system, measured on `small` (Verilator, the HBM stack: 8
#: channels behind the crossbar, 32 lines per AGCU): one stream alone (the demo FFN 32x64x256 on
#: four pipelines, one m-group: 9,651 cycles for two 4,096-vector streams one after the other) and
#: the two side by side (FFN 64x128x512 on four pipelines, two m-groups: 55,238 cycles, three
#: slots of 32,768 vectors). Before the stack (one HBM port for all AGCUs, 16 lines in flight) they
#: were 0.75 and 1.13. One stream stays under one vector per cycle: its 32 lines in flight cover
#: the round trip only just, and the pipeline's fill and drain count in the slot.
STREAMED_WEIGHTS_RATE = {"alone": 0.85, "side_by_side": 1.78}


@dataclass(frozen=True)
class FfnPlan:
    t: int
    d: int
    h: int
    act: str
    lanes: int
    stages: int
    pipes: int     # G
    wbuf: bool = False    # W1/W2 through PMUs (packed rows, half the HBM traffic)
    tb1: int = 1          # n-tiles per W1 block (with wbuf)
    tb2: int = 1
    gated: bool = False   # SwiGLU: W1 is the pair (Wg, Wu), W2 is Wd

    @property
    def pcus_per_pipe(self) -> int:
        return 4 if self.gated else 2

    @property
    def mt(self):
        return ceil_div(self.t, self.lanes)

    @property
    def groups(self):
        return ceil_div(self.mt, self.pipes)

    @property
    def mt_pad(self):
        return self.groups * self.pipes

    @property
    def nt1(self):
        """n-tiles of H (padded to whole W1 blocks)."""
        return ceil_div(ceil_div(self.h, self.stages), self.tb1) * self.tb1

    @property
    def hp(self):
        return self.nt1 * self.stages

    @property
    def nt2(self):
        return ceil_div(ceil_div(self.d, self.stages), self.tb2) * self.tb2

    def gemm_plan(self, which: int) -> GemmPlan:
        """The one-PCU GEMM each pipeline runs for layer ``which`` (1: ``H = act(X·W1)``, 2:
        ``Y = H·W2`` over the padded H) on its ``groups`` m-tiles, in the m-tile-outer order with
        ``tb1``/``tb2`` n-tiles per weight block: its programs (:func:`compiler.gemm.mac_pcu`,
        :func:`~compiler.gemm.a_tile_pmu`, :func:`~compiler.gemm.b_block_pmu`) are the
        pipeline's, and with ``wbuf`` its B layout (:func:`compiler.gemm.pack_b`) is the weights'."""
        m = self.groups * self.lanes
        if which == 1:
            return GemmPlan(m, self.d, self.h, False, self.act, True, self.lanes, self.stages, 1, self.tb1,
                            "mn")
        return GemmPlan(m, self.hp, self.d, False, "none", True, self.lanes, self.stages, 1, self.tb2, "mn")

    def estimate(self, vectors_per_cycle: float = 1.6) -> int:
        """Cycles the plan should take: ``groups + 1`` slots (the first m-group's GEMM 1, then
        GEMM 2 of one group beside GEMM 1 of the next, then the last GEMM 2), each as long as a
        phase's MAC steps or its weight traffic, whichever is longer.

        With weights through PMUs the traffic is the packed blocks at ``vectors_per_cycle``.
        Streamed weights cross the HBM and the AGCUs at the rates :data:`STREAMED_WEIGHTS_RATE`
        gives: with one m-group the W1 and W2 streams run one after the other, each alone; with
        more they run side by side and share the memory."""
        phase = max(self.nt1 * self.d, self.nt2 * self.hp)
        if self.wbuf:
            w1, w2 = self.gemm_plan(1), self.gemm_plan(2)
            traffic = (w1.b_traffic // w1.mt + w2.b_traffic // w2.mt) / vectors_per_cycle
        else:
            w1_stream = (2 if self.gated else 1) * self.nt1 * self.d
            w2_stream = self.nt2 * self.hp
            if self.groups == 1:
                traffic = max(w1_stream, w2_stream) / STREAMED_WEIGHTS_RATE["alone"]
            else:
                traffic = (w1_stream + w2_stream) / STREAMED_WEIGHTS_RATE["side_by_side"]
        return int((self.groups + 1) * max(phase, traffic))

    @property
    def dp(self):
        return self.nt2 * self.stages

    @property
    def sx(self):
        return (self.d - 1).bit_length()

    @property
    def sh(self):
        return (self.hp - 1).bit_length()

    @property
    def steps(self) -> int:
        """MAC steps of each PCU of one stage."""
        return self.groups * max(self.nt1 * self.d, self.nt2 * self.hp)

    def summary(self) -> dict:
        """The mapping choices, for a :class:`CompiledKernel`'s ``plan`` (reports)."""
        return {"pipelines": self.pipes, "m_groups": self.groups, "h_padded": self.hp,
                "weights_in_pmus": self.wbuf, "w1_tiles_per_block": self.tb1, "w2_tiles_per_block": self.tb2,
                "mac_steps_per_pcu": self.steps}

    def check(self, pmu_words: int) -> None:
        L = self.lanes
        for resource, need, have, what in (
                ("PMU capacity (words)", 2 * self.d * L, pmu_words,
                 f"the double-buffered X tile (D={self.d})"),
                ("PMU capacity (words)", 2 * self.hp * L, pmu_words,
                 f"the double-buffered H tile (H padded to {self.hp})"),
                ("counter range", self.nt1 << self.sx, COUNTER_LIMIT - 1, "X tile replays"),
                ("counter range", self.nt2 << self.sh, COUNTER_LIMIT - 1, "H tile replays"),
                ("counter range", self.nt1 * self.d, COUNTER_LIMIT - 1, "W1 stream"),
                ("counter range", self.nt2 * self.hp, COUNTER_LIMIT - 1, "W2 stream"),
                ("counter range", self.mt_pad * self.d, COUNTER_LIMIT - 1, "X stream"),
                ("counter range", self.mt_pad * self.dp, COUNTER_LIMIT - 1, "Y stores")):
            if need > have:
                raise MappingError(resource, need, have, f"fused FFN {self.t}x{self.d}x{self.h}: {what}")
        if self.wbuf:
            for which in (1, 2):
                wp = self.gemm_plan(which)
                if 2 * (wp.block_words + L) > pmu_words:
                    raise MappingError("PMU capacity (words)", 2 * (wp.block_words + L), pmu_words,
                                       f"the double-buffered W{which} block")
                if wp.nb * wp.block_words // L >= COUNTER_LIMIT or wp.tiles * wp.kp >= COUNTER_LIMIT:
                    raise MappingError("counter range", wp.nb * wp.block_words // L, COUNTER_LIMIT - 1,
                                       f"W{which} stream")


def plan_ffn(params, t, d, h, act, gated: bool = False) -> list[FfnPlan]:
    preset = params.preset
    counts = site_counts(preset)
    per_pipe, shared = (4, 4) if gated else (2, 3)
    gmax = min(counts["pcu"] // per_pipe, counts["pmu"] // 2, counts["agcu"] - shared)
    if gmax < 1:
        for kind, need in (("pcu", per_pipe), ("pmu", 2), ("agcu", shared + 1)):
            if counts[kind] < need:
                raise MappingError(f"{kind.upper()}s", need, counts[kind],
                                   f"a fused {'gated ' if gated else ''}FFN needs {per_pipe} PCUs, 2 PMUs "
                                   f"and {shared + 1} AGCUs")
    pmu_words = preset.pmu_banks * preset.pmu_bank_words
    plans, first_error = [], None
    for g in range(gmax, 0, -1):
        for wbuf in ((False,) if gated else (True, False)):
            if wbuf and 2 * g + 2 > counts["pmu"]:
                continue
            tbs = [(1, 1)]
            if wbuf:
                tbs = [(a, b) for a in (8, 4, 2, 1) for b in (8, 4, 2, 1)]
            for tb1, tb2 in tbs:
                plan = FfnPlan(t, d, h, act, preset.lanes, preset.stages, g, wbuf, tb1, tb2, gated)
                try:
                    plan.check(pmu_words)
                except MappingError as error:
                    first_error = first_error or error
                    continue
                plans.append(plan)
                break
    if not plans:
        raise first_error
    plans.sort(key=lambda p: (p.estimate(), p.pipes))
    return plans


def ffn_units(plan: FfnPlan):
    p, L, G = plan, plan.lanes, plan.pipes
    units, routes, roles, edges = {}, [], [("agcu_x", "agcu"), ("agcu_w1", "agcu"), ("agcu_w2", "agcu")], []
    units["agcu_x"] = AgcuConfig("load", 0, [Counter(0, p.d), Counter(0, p.mt_pad * p.d, p.d)])
    first, second = p.gemm_plan(1), p.gemm_plan(2)
    w_src = {}
    if p.wbuf:
        # the weights in gemm's B-block layout, each block kept by a PMU as gemm's pmu_b0 keeps it
        for which, wp in ((1, first), (2, second)):
            span = wp.block_words // L
            units[f"agcu_w{which}"] = AgcuConfig("load", 0, [Counter(0, span), Counter(0, wp.nb * span,
                                                                                       span)])
            units[f"pmu_w{which}"] = b_block_pmu(wp, 0)
            roles.append((f"pmu_w{which}", "pmu"))
            edges.append((f"agcu_w{which}", f"pmu_w{which}", 1.0))
            routes.append((f"agcu_w{which}.vout", [f"pmu_w{which}.vin"]))
            w_src[which] = f"pmu_w{which}.vout"
    else:
        units["agcu_w1"] = AgcuConfig("load", 0, [Counter(0, p.d), Counter(0, p.nt1 * p.d, p.d)])
        units["agcu_w2"] = AgcuConfig("load", 0, [Counter(0, p.hp), Counter(0, p.nt2 * p.hp, p.hp)])
        w_src = {1: "agcu_w1.vout", 2: "agcu_w2.vout"}
    if p.gated:     # agcu_w1 streams Wg, agcu_wu streams Wu in step
        roles.append(("agcu_wu", "agcu"))
        units["agcu_wu"] = AgcuConfig("load", 0, [Counter(0, p.d), Counter(0, p.nt1 * p.d, p.d)])
    for g in range(G):
        roles += [(f"pmu_x{g}", "pmu"), (f"pcu1_{g}", "pcu"), (f"pmu_h{g}", "pmu"), (f"pcu2_{g}", "pcu"),
                  (f"agcu_y{g}", "agcu")]
        w1, w2 = ("pmu_w1", "pmu_w2") if p.wbuf else ("agcu_w1", "agcu_w2")
        edges += [("agcu_x", f"pmu_x{g}", 0.5), (f"pmu_x{g}", f"pcu1_{g}", 2.0), (w1, f"pcu1_{g}", 0.5),
                  (f"pmu_h{g}", f"pcu2_{g}", 2.0), (w2, f"pcu2_{g}", 0.5),
                  (f"pcu2_{g}", f"agcu_y{g}", 1.0)]
        if p.gated:
            # pcu1 = silu(X·Wg), pcu_u = X·Wu, pcu_m = their product (bf16 → fp32 → RNE → bf16)
            roles += [(f"pcu_u{g}", "pcu"), (f"pcu_m{g}", "pcu")]
            edges += [(f"pmu_x{g}", f"pcu_u{g}", 2.0), ("agcu_wu", f"pcu_u{g}", 0.5),
                      (f"pcu1_{g}", f"pcu_m{g}", 2.0), (f"pcu_u{g}", f"pcu_m{g}", 2.0),
                      (f"pcu_m{g}", f"pmu_h{g}", 2.0)]
            units[f"pcu_u{g}"] = mac_pcu(replace(first, act="none"))
            units[f"pcu_m{g}"] = PROGRAMS["mul_bf16"][1]([Counter(0, p.hp), Counter(0, p.groups)])
            routes += [(f"pcu1_{g}.vout", [f"pcu_m{g}.vin0"]), (f"pcu_u{g}.vout", [f"pcu_m{g}.vin1"]),
                       (f"pcu_m{g}.vout", [f"pmu_h{g}.vin"])]
        else:
            edges.append((f"pcu1_{g}", f"pmu_h{g}", 2.0))
            routes.append((f"pcu1_{g}.vout", [f"pmu_h{g}.vin"]))
        # pmu_x<g> keeps its pipeline's part of the multicast X stream and replays it per n-tile
        units[f"pmu_x{g}"] = a_tile_pmu(first, part=g, parts=G)
        units[f"pcu1_{g}"] = mac_pcu(first)
        units[f"pmu_h{g}"] = a_tile_pmu(second)
        units[f"pcu2_{g}"] = mac_pcu(second)
        units[f"agcu_y{g}"] = AgcuConfig("store", 0, [Counter(0, p.dp), Counter(0, p.groups * G * p.dp,
                                                                                G * p.dp)],
                                         offset=g * p.dp)
        x_takers = [f"pcu1_{g}.vin0"] + ([f"pcu_u{g}.vin0"] if p.gated else [])
        routes += [(f"pmu_x{g}.vout", x_takers),
                   (f"pmu_h{g}.vout", [f"pcu2_{g}.vin0"]), (f"pcu2_{g}.vout", [f"agcu_y{g}.vin"])]
    routes += [("agcu_x.vout", [f"pmu_x{g}.vin" for g in range(G)]),
               (w_src[1], [f"pcu1_{g}.vin1" for g in range(G)]),
               (w_src[2], [f"pcu2_{g}.vin1" for g in range(G)]),
               ("host.start", ["agcu_x.start"] + [f"agcu_y{g}.start" for g in range(G)]),
               ("pmu_x0.wdone", ["agcu_w1.start"] + (["agcu_wu.start"] if p.gated else [])),
               ("pmu_h0.wdone", ["agcu_w2.start"]),
               (f"agcu_y{G - 1}.done", ["host.done"])]
    if p.gated:
        routes.append(("agcu_wu.vout", [f"pcu_u{g}.vin1" for g in range(G)]))
    return roles, edges, units, routes


def route_ffn(params, plans):
    last = None
    for plan in plans:
        roles, edges, units, routes = ffn_units(plan)
        try:
            placed, kernel = place_and_route(params, roles, edges, units, routes)
        except MappingError as error:
            last = error
            continue
        return plan, placed, kernel
    raise last


def ffn_launch(plan, placed, kernel, x_region, w1_region, w2_region, y_region, wu_region=None) -> Launch:
    """The launch; gated: ``w1_region`` holds Wg, ``wu_region`` Wu and ``w2_region`` Wd."""
    G, L = plan.pipes, plan.lanes
    segments = {placed["agcu_x"]: [x_region.segment(read=True)],
                placed["agcu_w1"]: [w1_region.segment(read=True)],
                placed["agcu_w2"]: [w2_region.segment(read=True)]}
    if plan.gated:
        segments[placed["agcu_wu"]] = [wu_region.segment(read=True)]
    for g in range(G):
        segments[placed[f"agcu_y{g}"]] = [y_region.segment(read=False, write=True)]
    steps = {**{placed[f"pcu1_{g}"]: plan.groups * plan.nt1 * plan.d for g in range(G)},
             **{placed[f"pcu2_{g}"]: plan.groups * plan.nt2 * plan.hp for g in range(G)}}
    if plan.gated:
        steps.update({placed[f"pcu_u{g}"]: plan.groups * plan.nt1 * plan.d for g in range(G)})
        steps.update({placed[f"pcu_m{g}"]: plan.groups * plan.hp for g in range(G)})
    words = {**{placed[f"pmu_x{g}"]: 2 * plan.d * L for g in range(G)},
             **{placed[f"pmu_h{g}"]: 2 * plan.hp * L for g in range(G)}}
    if plan.wbuf:
        for which in (1, 2):
            words[placed[f"pmu_w{which}"]] = 2 * (plan.gemm_plan(which).block_words + L)
    return Launch("ffn", kernel, segments, roles=placed, pcu_steps=steps, pmu_words=words)


# ------------------------------------------------------------------ host layouts

def pack_xt(x: np.ndarray, tiles: int, lanes: int) -> np.ndarray:
    """X (T, D) words → Xᵀ tiles (tiles·D, L): vector (mt, k) holds rows mt·L… of column k."""
    t, d = x.shape
    full = np.zeros((tiles * lanes, d), np.uint32)
    full[:t] = x
    return full.reshape(tiles, lanes, d).transpose(0, 2, 1).reshape(-1, lanes).copy()


def pack_rows(w: np.ndarray, k_pad: int, n_tiles: int, stages: int, lanes: int) -> np.ndarray:
    """W (K, N) words → vectors (n_tiles·k_pad, L): vector (nt, k) lanes 0..S-1 = W[k, nt·S + j]."""
    k, n = w.shape
    full = np.zeros((k_pad, n_tiles * stages), np.uint32)
    full[:k, :n] = w
    out = np.zeros((n_tiles, k_pad, lanes), np.uint32)
    out[:, :, :stages] = full.reshape(k_pad, n_tiles, stages).transpose(1, 0, 2)
    return out.reshape(-1, lanes)


def unpack_tiles(vectors: np.ndarray, tiles: int, cols: int, lanes: int, rows: int, n: int) -> np.ndarray:
    """Cᵀ-tile vectors (tiles·cols, L) → C (rows, n)."""
    arr = vectors[:tiles * cols].reshape(tiles, cols, lanes).transpose(0, 2, 1).reshape(tiles * lanes, cols)
    return arr[:rows, :n].copy()


def gated_h(x, wg, wu):
    """H = bf16(fp32(bf16(silu(X·Wg))) · fp32(bf16(X·Wu))) words (the gated FFN's product)."""
    g = gemm_golden(x, wg, None, "silu", True)
    u = gemm_golden(x, wu, None, "none", True)
    return op_golden("cvt_bf16", op_golden("fmul", op_golden("cvt_f32", g), op_golden("cvt_f32", u)))


def ffn_golden(x, w1, w2, act, hp=None, wu=None):
    """Y words in the order of :data:`ORDER` (``hp``: the padded H the hardware runs over;
    ``wu``: the gated form, ``w1`` being Wg)."""
    h = gated_h(x, w1, wu) if wu is not None else gemm_golden(x, w1, None, act, True)
    if hp is not None and hp > h.shape[1]:
        h = np.concatenate([h, np.zeros((h.shape[0], hp - h.shape[1]), np.uint32)], axis=1)
        w2 = np.concatenate([w2, np.zeros((hp - w2.shape[0], w2.shape[1]), np.uint32)], axis=0)
    return gemm_golden(h, w2, None, "none", True)


# ------------------------------------------------------------------ the kernel

#: The gated form's product, as the unfused kernel's order string adds it.
_GATED_PRODUCT = "H = bf16(fp32(G) * fp32(U)) (one RNE multiply, then RNE to bf16)"


class FfnKernel(KernelMapping):
    """``Y = act(X·W1)·W2`` (act default relu) or, ``gated``, ``Y = (silu(X·Wg) ⊙ X·Wu)·Wd``:
    X (T, D), W1/Wg/Wu (D, H), W2/Wd (H, D); H is stored as bf16.

    Fused: one launch (the module docstring). Unfused: GEMM launches with H in HBM (up, down;
    gated: gate, up, the product as an elementwise launch, down).
    """

    name = "ffn"
    shape_names = ("T", "D", "H")
    formula = "Y = act(X·W1)·W2, or gated Y = (silu(X·Wg) ⊙ X·Wu)·Wd"
    graph_options = ("act", "gated")
    mapping_options = ("max_pcus", "orders")

    def input_names(self, *, gated: bool = False, **options) -> list[str]:
        return ["X", "Wg", "Wu", "Wd"] if gated else ["X", "W1", "W2"]

    def output_names(self, **options) -> list[str]:
        return ["Y"]

    def graph(self, shape, *, act: str = "none", gated: bool = False) -> KernelGraph:
        if gated and act not in ("none", "silu"):
            raise ValueError(f"the gated FFN (SwiGLU) gates with silu; activation {act!r} is not available "
                             f"(leave --act out or give silu)")
        return ffn_graph(tuple(shape), act if act != "none" else "relu", gated)

    def compile(self, graph: KernelGraph, params, *, fused: bool = True, hbm_lines: int = DEFAULT_HBM_LINES,
                max_pcus: int | None = None, orders=("nm", "mn")) -> CompiledKernel:
        t, d = graph.tensors["X"].shape
        gated = graph.name == "ffn_gated"
        h = graph.tensors["Wd" if gated else "W2"].shape[0]
        alloc = HbmAllocator(params.preset.lanes, hbm_lines)
        if fused:
            launches, golden, collect, order, plan = self._fused(graph, params, alloc, t, d, h, gated)
        elif gated:
            launches, golden, collect, order, plan = self._unfused_gated(params, alloc, t, d, h, max_pcus,
                                                                         orders)
        else:
            launches, golden, collect, order, plan = self._unfused(graph, params, alloc, t, d, h, max_pcus,
                                                                   orders)
        return self.compiled_kernel(graph, params, (t, d, h), fused, launches, alloc, golden=golden,
                                    collect=collect, order=order, plan=plan)

    # each form returns (launches, golden, collect, order, plan)

    @staticmethod
    def _unfused_gated(params, alloc: HbmAllocator, t, d, h, max_pcus, orders):
        sg = gemm_stage(params, alloc, "gate", t, d, h, act="silu", out_bf16=True, bias=False, a_input="X",
                        b_input="Wg", out="G", max_pcus=max_pcus, orders=orders)
        su = gemm_stage(params, alloc, "up", t, d, h, act="none", out_bf16=True, bias=False, a_input=None,
                        b_input="Wu", out="U", a_region=alloc.regions["X"], max_pcus=max_pcus, orders=orders)
        if sg.plan.np_ != su.plan.np_:
            raise AssertionError("gate and up GEMMs chose different layouts")
        hr = alloc.region("H", alloc.regions["G"].vectors)
        mul = elementwise_launch(params, "mul", "mul_bf16", [alloc.regions["G"], alloc.regions["U"]], hr)
        sd = gemm_stage(params, alloc, "down", t, h, d, act="none", out_bf16=True, bias=False, a_input=None,
                        b_input="Wd", out="Y", a_region=hr, max_pcus=max_pcus, orders=orders)
        last = sd.plan

        def golden(words: dict) -> dict:
            h_ = gated_h(words["X"], words["Wg"], words["Wu"])
            return {"Y": gemm_golden(h_, words["Wd"], None, "none", True)}

        def collect(vectors: dict) -> dict:
            return {"Y": unpack_c(last, vectors["Y"])}

        plan = {"gate": sg.plan.summary(), "up": su.plan.summary(), "down": sd.plan.summary()}
        order = f"{GEMM_ORDER}; {_GATED_PRODUCT}"
        return [sg.launch, su.launch, mul, sd.launch], golden, collect, order, plan

    @staticmethod
    def _unfused(graph: KernelGraph, params, alloc: HbmAllocator, t, d, h, max_pcus, orders):
        act = graph.nodes[0].attrs["act"]
        s1 = gemm_stage(params, alloc, "up", t, d, h, act=act, out_bf16=True, bias=False, a_input="X",
                        b_input="W1", out="H", max_pcus=max_pcus, orders=orders)
        s2 = gemm_stage(params, alloc, "down", t, h, d, act="none", out_bf16=True, bias=False, a_input=None,
                        b_input="W2", out="Y", a_region=alloc.regions["H"], max_pcus=max_pcus, orders=orders)
        last = s2.plan

        def golden(words: dict) -> dict:
            h_ = gemm_golden(words["X"], words["W1"], None, act, True)
            return {"Y": gemm_golden(h_, words["W2"], None, "none", True)}

        def collect(vectors: dict) -> dict:
            return {"Y": unpack_c(last, vectors["Y"])}

        plan = {"up": s1.plan.summary(), "down": s2.plan.summary()}
        return [s1.launch, s2.launch], golden, collect, GEMM_ORDER, plan

    @staticmethod
    def _fused(graph: KernelGraph, params, alloc: HbmAllocator, t, d, h, gated: bool):
        L, S = params.preset.lanes, params.preset.stages
        act = "silu" if gated else graph.nodes[0].attrs["act"]
        plan, placed, kernel = route_ffn(params, plan_ffn(params, t, d, h, act, gated=gated))
        xr = alloc.region("X", plan.mt_pad * d, pack=lambda w: pack_xt(w["X"], plan.mt_pad, L))
        n1, n2 = ("Wg", "Wd") if gated else ("W1", "W2")
        if plan.wbuf:
            wp1, wp2 = plan.gemm_plan(1), plan.gemm_plan(2)

            def pad_rows(w, k_pad):
                return np.concatenate([w, np.zeros((k_pad - w.shape[0], w.shape[1]), w.dtype)]) \
                    if k_pad > w.shape[0] else w
            w1r = alloc.region("W1", wp1.nb * wp1.block_words // L, pack=lambda w: pack_b(wp1, w["W1"], None))
            w2r = alloc.region("W2", wp2.nb * wp2.block_words // L,
                               pack=lambda w: pack_b(wp2, pad_rows(w["W2"], plan.hp), None))
        else:
            w1r = alloc.region(n1, plan.nt1 * d, pack=lambda w: pack_rows(w[n1], d, plan.nt1, S, L))
            w2r = alloc.region(n2, plan.nt2 * plan.hp,
                               pack=lambda w: pack_rows(w[n2], plan.hp, plan.nt2, S, L))
        wur = alloc.region("Wu", plan.nt1 * d, pack=lambda w: pack_rows(w["Wu"], d, plan.nt1, S, L)) \
            if gated else None
        yr = alloc.region("Y", plan.mt_pad * plan.dp)
        alloc.inputs += ["X", n1, n2] + (["Wu"] if gated else [])
        launches = [ffn_launch(plan, placed, kernel, xr, w1r, w2r, yr, wur)]
        order = ORDER + ("; H = bf16(fp32(G) * fp32(U)) with G = bf16(silu(X·Wg)), U = bf16(X·Wu)"
                         if gated else "")

        def golden(words: dict) -> dict:
            return {"Y": ffn_golden(words["X"], words[n1], words[n2], act, plan.hp,
                                    wu=words["Wu"] if gated else None)}

        def collect(vectors: dict) -> dict:
            return {"Y": unpack_tiles(vectors["Y"], plan.mt_pad, plan.dp, L, t, d)}

        return launches, golden, collect, order, {"ffn": plan.summary()}
