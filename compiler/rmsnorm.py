"""RMSNorm on the fabric: ``Y = X · rsqrt(mean(X², axis=1) + eps) · g`` (X is T × D).

Mapping (``L`` lanes, ``S`` stages; ``Tp`` = T rounded up to whole groups of S rows)
------------------------------------------------------------------------------------
The sum of squares of S rows is the diagonal of an ``L × S`` MAC-array tile whose A column
and B row are the *same* vector (lane ``i`` = ``x[t0 + i, k]``, lanes ``S..L-1`` zero), so one
load AGCU multicasts it to both inputs of a systolic PCU::

    agcu_xt ══▶ pcu_ss (systolic, tail rsqrt) ──▶ pmu_d ──sout──▶ pcu_y ──▶ agcu_y
    agcu_x  ────────────────────────────────────────────────────▶ ▲ vin0
    agcu_g  ──▶ pmu_g ─────────────────────────────────────────▶ ▲ vin1

``pcu_ss`` runs ``D + 1`` MAC steps per group: the D columns of X, then one vector holding
``e = bf16(sqrt(D·eps))`` in lanes ``0..S-1`` (so the diagonal gains ``e²``); the tail applies
``rsqrt`` to the drained tile, so column ``j``, lane ``j`` holds ``r'_t = rsqrt(Σ_k x[t,k]² + e²)``
for ``t = t0 + j``. ``pmu_d`` (double-buffered) writes the S columns and reads the diagonal
word ``j·(L+1)`` of each as a scalar (``scalar_out``), one per row. ``pcu_y`` holds that
scalar for the row's ``D/L`` vectors and computes, per lane, ``((fp32(x)·r')·c)·g`` with
``c = fp32(sqrt(D))`` (since ``rsqrt(ss/D + eps) = sqrt(D)·rsqrt(ss + D·eps)``), rounded to
bf16. ``pmu_g`` holds g (fp32 words) and replays it once per row (a masked counter).

Unfused (two launches): ``sumsq`` writes the drained rsqrt tiles to HBM (region ``R``);
``scale`` loads them into ``pmu_d`` and runs the same second half. Same numerics.

Numerics: ``eps`` enters as ``e²`` with ``e`` a bf16 value, so the kernel's effective
epsilon is ``eps' = e²/D`` (within 0.4 % of the requested one); the compiled kernel's graph
and its fp64 reference use ``eps'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.counters import Counter
from hdl.numerics.ops import golden
from hdl.pcu import PcuConfig, ScalarInput, Stage
from hdl.pmu import AddressProgram, PmuConfig

from .errors import MappingError
from .ir import KernelGraph, rmsnorm_graph
from .mapping import DEFAULT_HBM_LINES, KernelMapping, ceil_div, counter_nest, f32_word
from .place import place_and_route, site_counts
from .program import CompiledKernel, HbmAllocator, Launch

__all__ = ["RmsnormPlan", "plan_rmsnorm", "effective_eps", "rmsnorm_launches", "pack_xt", "pack_rows_bf16",
           "pack_g", "unpack_rows", "rmsnorm_golden", "RmsnormKernel", "ORDER"]

ORDER = ("ss[t] = fp32 MAC chain from +0 over k = 0..D-1 of x[t,k]*x[t,k], then + e*e "
         "(e = bf16(sqrt(D*eps))); r[t] = rsqrt(ss[t]) (tail); "
         "Y[t,d] = bf16(((fp32(x[t,d]) * r[t]) * fp32(sqrt(D))) * g[d]), "
         "each product RNE in fp32")


def effective_eps(d: int, eps: float) -> tuple[int, float]:
    """``(e word, eps')``: the bf16 ``e`` nearest ``sqrt(d·eps)`` and the epsilon it realises."""
    from hdl.numerics.golden import f32_to_bf16

    e = int(f32_to_bf16(np.array([f32_word(float(np.sqrt(d * eps)))], np.uint32))[0])
    e_val = float(np.array([e << 16], np.uint32).view(np.float32)[0])
    return e, e_val * e_val / d


@dataclass(frozen=True)
class RmsnormPlan:
    """The mapping of one RMSNorm: ``groups`` groups of ``S`` rows, ``db`` vectors per row."""

    t: int
    d: int
    eps: float
    lanes: int
    stages: int

    @property
    def groups(self) -> int:
        return ceil_div(self.t, self.stages)

    @property
    def tp(self) -> int:
        return self.groups * self.stages

    @property
    def db(self) -> int:
        return ceil_div(self.d, self.lanes)

    @property
    def dp(self) -> int:
        return self.db * self.lanes

    @property
    def g_shift(self) -> int:
        return max(1, (self.db * self.lanes - 1).bit_length())

    @property
    def e_word(self) -> int:
        return effective_eps(self.d, self.eps)[0]

    @property
    def eps_effective(self) -> float:
        return effective_eps(self.d, self.eps)[1]

    @property
    def steps(self) -> dict:
        return {"pcu_ss": self.groups * (self.d + 1), "pcu_y": self.tp * self.db}

    def summary(self) -> dict:
        """The mapping choices, for a :class:`CompiledKernel`'s ``plan`` (reports)."""
        return {"row_groups": self.groups, "rows_padded": self.tp, "vectors_per_row": self.db,
                "eps_requested": self.eps, "eps_effective": self.eps_effective, "steps": self.steps}


def plan_rmsnorm(params, t: int, d: int, eps: float) -> RmsnormPlan:
    preset = params.preset
    plan = RmsnormPlan(t, d, eps, preset.lanes, preset.stages)
    counts = site_counts(preset)
    for kind, need in (("pcu", 2), ("pmu", 2), ("agcu", 4)):
        if counts[kind] < need:
            raise MappingError(f"{kind.upper()}s", need, counts[kind],
                               "RMSNorm needs 2 PCUs, 2 PMUs, 4 AGCUs")
    limit = (1 << preset.counter_width) - 1
    for what, need in (("counter range (row steps, T·D/L)", plan.tp * plan.db),
                       ("counter range (group steps, D+1)", plan.d + 1),
                       ("counter range (g replay, Tp·2^shift)", plan.tp << plan.g_shift)):
        if need > limit:
            raise MappingError(what, need, limit, f"RMSNorm {t}x{d}: split the rows into several kernels")
    pmu_words = preset.pmu_banks * preset.pmu_bank_words
    for what, need in (("PMU words (rsqrt tiles, double-buffered)", 2 * (plan.stages + 1) * plan.lanes),
                       ("PMU words (g)", plan.dp)):
        if need > pmu_words:
            raise MappingError(what, need, pmu_words, f"RMSNorm {t}x{d}")
    return plan


# ------------------------------------------------------------------ host layouts

def pack_xt(plan: RmsnormPlan, x: np.ndarray) -> np.ndarray:
    """X words (T, D) → per group of S rows: D column vectors (lanes 0..S-1 = rows) and the e
    vector: (groups·(D+1), L)."""
    L, S = plan.lanes, plan.stages
    full = np.zeros((plan.groups, plan.d + 1, L), np.uint32)
    xp = np.zeros((plan.tp, plan.d), np.uint32)
    xp[:plan.t] = x
    full[:, :plan.d, :S] = xp.reshape(plan.groups, S, plan.d).transpose(0, 2, 1)
    full[:, plan.d, :S] = plan.e_word
    return full.reshape(-1, L)


def pack_rows_bf16(plan: RmsnormPlan, x: np.ndarray) -> np.ndarray:
    """X words (T, D) → row-major vectors (Tp·D/L, L), zero-padded."""
    full = np.zeros((plan.tp, plan.dp), np.uint32)
    full[:plan.t, :plan.d] = x
    return full.reshape(-1, plan.lanes)


def pack_g(plan: RmsnormPlan, g: np.ndarray) -> np.ndarray:
    """g bf16 words (D,) → fp32 words (D/L, L), zero-padded."""
    full = np.zeros(plan.dp, np.uint32)
    full[:plan.d] = (np.asarray(g, np.uint32) & 0xFFFF) << 16
    return full.reshape(-1, plan.lanes)


def unpack_rows(plan: RmsnormPlan, vectors: np.ndarray) -> np.ndarray:
    return vectors[:plan.tp * plan.db].reshape(plan.tp, plan.dp)[:plan.t, :plan.d].copy()


def rmsnorm_golden(plan: RmsnormPlan, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Y words in the order of :data:`ORDER`, from op-table golden functions."""
    x = np.asarray(x, np.uint32)
    acc = np.zeros(x.shape[0], np.uint32)
    for k in range(x.shape[1]):
        acc = golden("mac", acc, x[:, k], x[:, k])
    acc = golden("mac", acc, np.uint32(plan.e_word), np.uint32(plan.e_word))
    r = golden("tail.rsqrt", acc)
    c = np.uint32(f32_word(float(np.sqrt(plan.d))))
    y = golden("fmul", golden("cvt_f32", x), r[:, None])
    y = golden("fmul", y, c)
    y = golden("fmul", y, ((np.asarray(g, np.uint32) & 0xFFFF) << 16)[None, :])
    return golden("cvt_bf16", y)


# ------------------------------------------------------------------ programs and launches

def _sumsq_units(plan: RmsnormPlan) -> tuple[dict, list]:
    units = {"agcu_xt": AgcuConfig("load", 0, counter_nest(plan.groups * (plan.d + 1), "rmsnorm Xᵀ stream")),
             "pcu_ss": PcuConfig(mode="systolic", counters=[Counter(0, plan.d + 1), Counter(0, plan.groups)],
                                 tail="rsqrt", to_bf16=False)}
    routes = [("agcu_xt.vout", ["pcu_ss.vin0", "pcu_ss.vin1"])]
    return units, routes


def _scale_units(plan: RmsnormPlan) -> tuple[dict, list]:
    L, S = plan.lanes, plan.stages
    mask = (1 << plan.g_shift) - 1
    units = {
        "pmu_d": PmuConfig(write=AddressProgram([Counter(0, S * L, L)], runs=plan.groups),
                           read=AddressProgram([Counter(0, S * (L + 1), L + 1)], runs=plan.groups),
                           # a read vector spans L words past the diagonal word
                           buffers=2, buffer_words=(S + 1) * L, scalar_out=True),
        "agcu_g": AgcuConfig("load", 0, [Counter(0, plan.db)]),
        "pmu_g": PmuConfig(write=AddressProgram([Counter(0, plan.dp, L)]),
                           read=AddressProgram([Counter(0, plan.dp, L),
                                                Counter(0, plan.tp << plan.g_shift, 1 << plan.g_shift)],
                                               alu=[("iand", mask)]),
                           buffers=1),
        "agcu_x": AgcuConfig("load", 0, counter_nest(plan.tp * plan.db, "rmsnorm X stream")),
        "pcu_y": PcuConfig(counters=[Counter(0, plan.db), Counter(0, plan.tp)],
                           stages=[Stage("cvt_f32", "vin0"), Stage("fmul", "stage0", "scalar0"),
                                   Stage("fmul", "prev", "const0"), Stage("fmul", "prev", "vin1")],
                           scalars={0: ScalarInput(pop_level=1)},
                           constants=[f32_word(float(np.sqrt(plan.d)))], to_bf16=True),
        "agcu_y": AgcuConfig("store", 0, counter_nest(plan.tp * plan.db, "rmsnorm Y stream")),
    }
    routes = [("pmu_d.sout", ["pcu_y.sin0"]), ("agcu_g.vout", ["pmu_g.vin"]), ("pmu_g.vout", ["pcu_y.vin1"]),
              ("agcu_x.vout", ["pcu_y.vin0"]), ("pcu_y.vout", ["agcu_y.vin"])]
    return units, routes


_SCALE_ROLES = [("pcu_y", "pcu"), ("pmu_d", "pmu"), ("pmu_g", "pmu"), ("agcu_x", "agcu"), ("agcu_g", "agcu"),
                ("agcu_y", "agcu")]
_SCALE_EDGES = [("pmu_d", "pcu_y", 1.0), ("pmu_g", "pcu_y", 1.0), ("agcu_x", "pcu_y", 1.0),
                ("agcu_g", "pmu_g", 0.5), ("pcu_y", "agcu_y", 1.0)]


def rmsnorm_launches(params, plan: RmsnormPlan, regions: dict, fused: bool) -> list[Launch]:
    """The launch(es) over ``regions`` (``XT``, ``X``, ``g``, ``Y`` and, unfused, ``R``)."""
    ss_units, ss_routes = _sumsq_units(plan)
    sc_units, sc_routes = _scale_units(plan)
    starts = ["agcu_x.start", "agcu_g.start", "agcu_y.start"]
    scale_seg = {"agcu_x": regions["X"].segment(read=True), "agcu_g": regions["g"].segment(read=True),
                 "agcu_y": regions["Y"].segment(read=False, write=True)}
    if fused:
        roles = [("pcu_ss", "pcu"), ("agcu_xt", "agcu"), *_SCALE_ROLES]
        edges = [("agcu_xt", "pcu_ss", 2.0), ("pcu_ss", "pmu_d", 1.0), *_SCALE_EDGES]
        units = {**ss_units, **sc_units}
        routes = ss_routes + [("pcu_ss.vout", ["pmu_d.vin"])] + sc_routes + [
            ("host.start", ["agcu_xt.start", *starts]), ("agcu_y.done", ["host.done"])]
        placed, kernel = place_and_route(params, roles, edges, units, routes)
        segments = {placed[r]: [s] for r, s in scale_seg.items()}
        segments[placed["agcu_xt"]] = [regions["XT"].segment(read=True)]
        return [Launch("rmsnorm", kernel, segments, roles=placed,
                       pcu_steps={placed[u]: n for u, n in plan.steps.items()},
                       pmu_words={placed["pmu_d"]: 2 * (plan.stages + 1) * plan.lanes,
                                  placed["pmu_g"]: plan.dp})]
    # unfused: the rsqrt tiles go to HBM and come back
    roles = [("pcu_ss", "pcu"), ("agcu_xt", "agcu"), ("agcu_r", "agcu")]
    r_nest = counter_nest(plan.groups * plan.stages, "rmsnorm rsqrt tiles")
    units = {**ss_units, "agcu_r": AgcuConfig("store", 0, r_nest)}
    routes = ss_routes + [("pcu_ss.vout", ["agcu_r.vin"]), ("host.start", ["agcu_xt.start", "agcu_r.start"]),
                          ("agcu_r.done", ["host.done"])]
    placed, kernel = place_and_route(params, roles, [("agcu_xt", "pcu_ss", 2.0), ("pcu_ss", "agcu_r", 1.0)],
                                     units, routes)
    first = Launch("sumsq", kernel, {placed["agcu_xt"]: [regions["XT"].segment(read=True)],
                                     placed["agcu_r"]: [regions["R"].segment(read=False, write=True)]},
                   roles=placed, pcu_steps={placed["pcu_ss"]: plan.steps["pcu_ss"]})
    roles = [("agcu_r", "agcu"), *_SCALE_ROLES]
    units = {**sc_units, "agcu_r": AgcuConfig("load", 0, r_nest)}
    routes = sc_routes + [("agcu_r.vout", ["pmu_d.vin"]), ("host.start", ["agcu_r.start", *starts]),
                          ("agcu_y.done", ["host.done"])]
    placed, kernel = place_and_route(params, roles, [("agcu_r", "pmu_d", 1.0), *_SCALE_EDGES], units, routes)
    segments = {placed[r]: [s] for r, s in scale_seg.items()}
    segments[placed["agcu_r"]] = [regions["R"].segment(read=True)]
    second = Launch("scale", kernel, segments, roles=placed, pcu_steps={placed["pcu_y"]: plan.steps["pcu_y"]},
                    pmu_words={placed["pmu_d"]: 2 * (plan.stages + 1) * plan.lanes, placed["pmu_g"]: plan.dp})
    return [first, second]


# ------------------------------------------------------------------ the kernel

class RmsnormKernel(KernelMapping):
    """``Y = X · rsqrt(mean(X², axis=1) + eps) · g``: X (T, D), g (D,) (see the module docstring).

    The compiled kernel's graph carries the epsilon the hardware realises (``eps' = e²/D``), so
    its float64 reference is the one the result is checked against.
    """

    name = "rmsnorm"
    shape_names = ("T", "D")
    formula = "Y = X · rsqrt(mean(X², axis=1) + eps) · g"
    graph_options = ("eps",)

    def input_names(self, **options) -> list[str]:
        return ["X", "g"]

    def output_names(self, **options) -> list[str]:
        return ["Y"]

    def graph(self, shape, *, eps: float = 1e-6) -> KernelGraph:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ValueError(f"eps must be a number in (0, 1), got {eps!r}")
        return rmsnorm_graph(tuple(shape), float(eps))

    def compile(self, graph: KernelGraph, params, *, fused: bool = True,
                hbm_lines: int = DEFAULT_HBM_LINES) -> CompiledKernel:
        t, d = graph.tensors["X"].shape
        plan = plan_rmsnorm(params, t, d, graph.nodes[0].attrs["eps"])
        # the kernel realises eps' = e²/D (e a bf16 value): the reference uses the same eps'
        graph = rmsnorm_graph((t, d), eps=plan.eps_effective)
        alloc = HbmAllocator(params.preset.lanes, hbm_lines)
        alloc.region("XT", plan.groups * (d + 1), pack=lambda w: pack_xt(plan, w["X"]))
        alloc.region("X", plan.tp * plan.db, pack=lambda w: pack_rows_bf16(plan, w["X"]))
        alloc.region("g", plan.db, pack=lambda w: pack_g(plan, w["g"]))
        if not fused:
            alloc.region("R", plan.groups * plan.stages)
        alloc.region("Y", plan.tp * plan.db)
        alloc.inputs += ["XT", "X", "g"]
        launches = rmsnorm_launches(params, plan, alloc.regions, fused)

        def golden(words: dict) -> dict:
            return {"Y": rmsnorm_golden(plan, words["X"], words["g"])}

        def collect(vectors: dict) -> dict:
            return {"Y": unpack_rows(plan, vectors["Y"])}

        return self.compiled_kernel(graph, params, (t, d), fused, launches, alloc, golden=golden,
                                    collect=collect, order=ORDER, plan={"rmsnorm": plan.summary()})
