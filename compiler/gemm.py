"""GEMM on the fabric: ``C = act(A·B + bias)`` with the PCUs' output-stationary MAC arrays.

Mapping (one launch; ``L`` lanes, ``S`` stages, ``K' = K (+1 with a bias)``)
---------------------------------------------------------------------------
A PCU in systolic mode computes one ``L × S`` tile of C over ``K'`` steps (a column of A on
``vin0``, a row of B on ``vin1``). ``P`` PCUs split the N dimension: C is cut into n-tiles
of ``S`` columns; a *block* gives each PCU ``TB`` consecutive n-tiles, and the loop nest is

    for nb in blocks:            # NB = ceil(NT / (P·TB))
      for mt in m-tiles:          # MT = ceil(M / L)
        for t in 0..TB-1:         # this PCU's n-tile (nb·P + p)·TB + t
          for k in 0..K'-1:       # one MAC-array step

* ``agcu_a`` streams Aᵀ tiles (vector (mt, k) = column k of rows mt·L…) from HBM once per
  block into ``pmu_a`` (double-buffered, one run per m-tile), which multicasts each tile TB
  times to every PCU's ``vin0`` (the read side repeats it by masking a counter away).
* ``agcu_b`` streams the B blocks (rows packed at a power-of-two stride ``RS ≥ S``) once,
  multicast to the ``P`` PMUs ``pmu_b<p>``; each keeps its own part (its write offset makes
  every other PMU's part fall outside its range) in a double buffer, one run per block, and
  feeds its PCU's ``vin1`` MT times per block.
* each PCU drains C tiles (S column vectors of fp32, through the tail for ``act`` and the
  bf16 conversion) to its own store AGCU ``agcu_c<p>``.
* A bias is one more MAC step: a row of ones appended to Aᵀ and the bias appended to B.

``pmu_b0``'s write-done tokens start ``agcu_a``'s runs (one per block); the host's start
token starts ``agcu_b`` and the stores; the last store's done token ends the launch (which
also waits until every unit is idle).

Accumulation order (what :func:`gemm_golden` follows): for every C element, an fp32 MAC
chain from +0 over k = 0…K-1 in order (exact bf16 products, one RNE rounding per step), then
``+ 1·bias`` as the last step, then the tail op, then RNE to bf16 when the output is bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.counters import Counter
from hdl.numerics.ops import golden
from hdl.pcu import PcuConfig
from hdl.pmu import AddressProgram, PmuConfig

from .elementwise import elementwise_launch
from .errors import MappingError
from .ir import KernelGraph, gemm_graph
from .mapping import COUNTER_LIMIT, DEFAULT_HBM_LINES, KernelMapping, ceil_div
from .place import place_and_route, site_counts
from .program import CompiledKernel, HbmAllocator, Launch, Region

__all__ = ["GemmPlan", "plan_gemm", "route_gemm", "gemm_launch", "gemm_programs", "gemm_roles", "a_tile_pmu",
           "b_block_pmu", "mac_pcu", "multicast_part_write", "GemmStage", "gemm_stage", "gemm_golden",
           "pack_a", "pack_b", "unpack_c", "GemmKernel", "ONE_BF16", "ORDER"]

ONE_BF16 = 0x3F80
ORDER = ("C[i,j]: fp32 MAC chain from +0 over k = 0..K-1 in order (exact bf16 products, one RNE "
         "rounding per step), then + 1*bias[j] as one more MAC step, then the activation (tail op), "
         "then RNE to bf16")


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class GemmPlan:
    """Tile sizes and unit counts of one GEMM mapping (see the module docstring)."""

    m: int
    k: int
    n: int
    bias: bool
    act: str
    out_bf16: bool
    lanes: int
    stages: int
    pcus: int       # P
    tiles: int      # TB, n-tiles per PCU per block
    order: str = "nm"       # "nm": n-blocks outermost; "mn": m-tiles outermost
    a_pitch: int | None = None   # vectors between m-tiles in the A region (default K')

    @property
    def kp(self) -> int:
        return self.k + int(self.bias)

    @property
    def pitch(self) -> int:
        return self.a_pitch if self.a_pitch is not None else self.kp

    @property
    def np_(self) -> int:
        """Columns of C as computed (N padded to whole blocks): the C region's m-tile pitch."""
        return self.nb * self.pcus * self.tiles * self.stages

    @property
    def reps(self) -> int:
        """Times pmu_a replays each A tile."""
        return self.tiles if self.order == "nm" else self.nb * self.tiles

    @property
    def mt(self) -> int:
        return ceil_div(self.m, self.lanes)

    @property
    def nt(self) -> int:
        return ceil_div(self.n, self.stages)

    @property
    def nb(self) -> int:
        return ceil_div(self.nt, self.pcus * self.tiles)

    @property
    def row_stride(self) -> int:
        return _pow2_at_least(self.stages)

    @property
    def block_words(self) -> int:
        """Words of one PCU's B block, rounded up to whole vectors."""
        return ceil_div(self.tiles * self.kp * self.row_stride, self.lanes) * self.lanes

    @property
    def a_shift(self) -> int:
        return (self.kp - 1).bit_length()

    @property
    def b_shift(self) -> int:
        return (self.tiles * self.kp - 1).bit_length()

    @property
    def steps(self) -> int:
        """MAC-array steps of each PCU."""
        return self.nb * self.mt * self.tiles * self.kp

    @property
    def useful_fraction(self) -> float:
        return (self.m * self.n) / (self.mt * self.lanes * self.nb * self.pcus * self.tiles * self.stages)

    def c_vectors(self) -> int:
        """Vectors each store AGCU writes."""
        return self.nb * self.mt * self.tiles * self.stages

    @property
    def a_traffic(self) -> int:
        """Vectors agcu_a loads."""
        return self.mt * self.kp * (self.nb if self.order == "nm" else 1)

    @property
    def b_traffic(self) -> int:
        return self.nb * self.pcus * self.block_words // self.lanes * (1 if self.order == "nm" else self.mt)

    def estimate(self, vectors_per_cycle: float = 1.6) -> int:
        """Cycles: MAC steps or memory traffic, whichever binds, plus the first fill."""
        traffic = self.a_traffic + self.b_traffic + self.mt * self.np_
        return int(max(self.steps, traffic / vectors_per_cycle) + self.pcus * self.block_words // self.lanes
                   + self.kp)

    def summary(self) -> dict:
        """The mapping choices, for a :class:`CompiledKernel`'s ``plan`` (reports)."""
        return {"pcus": self.pcus, "order": self.order, "tiles_per_block": self.tiles, "blocks": self.nb,
                "m_tiles": self.mt, "n_tiles": self.nt, "k_steps": self.kp, "mac_steps_per_pcu": self.steps,
                "useful_fraction": round(self.useful_fraction, 4)}


def _checks(plan: GemmPlan, pmu_words: int) -> list[tuple[str, int, int, str]]:
    """``(resource, need, have, detail)`` for every limit the plan exceeds."""
    p, L = plan, plan.lanes
    bad = []
    if 2 * p.kp * L > pmu_words:
        bad.append(("PMU capacity (words)", 2 * p.kp * L, pmu_words,
                    f"the double-buffered A tile of K'={p.kp} columns x {L} lanes"))
    if 2 * (p.block_words + L) > pmu_words:
        bad.append(("PMU capacity (words)", 2 * (p.block_words + L), pmu_words,
                    f"the double-buffered B block of {p.tiles} tile(s) x K'={p.kp} rows"))
    a_rep = p.tiles if p.order == "nm" else p.nb * p.tiles
    limits = [("counter range (A reads)", a_rep << p.a_shift),
              ("counter range (B reads)", (p.mt << p.b_shift) if p.order == "nm" else p.tiles * p.kp),
              ("counter range (B writes)", p.pcus * p.block_words),
              ("counter range (A loads)", p.mt * p.pitch),
              ("counter range (B loads)", p.nb * p.pcus * p.block_words // L),
              ("counter range (C stores)", p.mt * p.np_),
              ("counter range (PCU tiles)", p.mt * p.tiles if p.order == "nm" else p.nb * p.tiles)]
    for name, value in limits:
        if value >= COUNTER_LIMIT:
            bad.append((name, value, COUNTER_LIMIT - 1, "a 16-bit counter must hold it"))
    if (1 << p.a_shift) - 1 >= COUNTER_LIMIT or (1 << p.b_shift) - 1 >= COUNTER_LIMIT:
        bad.append(("address mask immediate", max(p.a_shift, p.b_shift), 16, "16-bit ALU immediates"))
    return bad


def plan_gemm(params, m: int, k: int, n: int, *, bias: bool = False, act: str = "none", out_bf16: bool = True,
              max_pcus: int | None = None, orders=("nm", "mn"), a_pitch: int | None = None) -> list[GemmPlan]:
    """Every feasible plan, cheapest (fewest MAC-array steps, then fewest PCUs) first.

    Raises
    ------
    MappingError
        When no plan fits, naming the resource of the smallest plan and its shortfall.
    """
    preset = params.preset
    fg_counts = site_counts(preset)
    pcu_cap = min(fg_counts["pcu"], fg_counts["pmu"] - 1, fg_counts["agcu"] - 2)
    if max_pcus is not None:
        pcu_cap = min(pcu_cap, max_pcus)
    if pcu_cap < 1:
        need = {"pmu": 2, "agcu": 3, "pcu": 1}
        for kind, want in need.items():
            if fg_counts[kind] < want:
                raise MappingError(f"{kind.upper()}s", want, fg_counts[kind],
                                   "a GEMM needs at least one PCU, "
                                   "two PMUs and three AGCUs")
        raise MappingError("PCUs", 1, max(0, pcu_cap))
    pmu_words = preset.pmu_banks * preset.pmu_bank_words
    plans, first_bad = [], None
    nt = ceil_div(n, preset.stages)
    for p in range(1, pcu_cap + 1):
        for tb in range(1, ceil_div(nt, p) + 1):
            for order in orders:
                plan = GemmPlan(m, k, n, bias, act, out_bf16, preset.lanes, preset.stages, p, tb, order,
                                a_pitch)
                bad = _checks(plan, pmu_words)
                if bad:
                    first_bad = first_bad or bad[0]
                    continue
                plans.append(plan)
    if not plans:
        resource, need, have, detail = first_bad
        raise MappingError(resource, need, have, f"GEMM {m}x{k}x{n}: {detail}")
    # cheapest first: MAC-array steps plus the first B block's fill, then fewer units
    plans.sort(key=lambda q: (q.estimate(), q.pcus, q.order))
    return plans


# ------------------------------------------------------------------ host layouts

def pack_a(plan: GemmPlan, a: np.ndarray) -> np.ndarray:
    """A words (M, K) → Aᵀ tile vectors (MT·K', L)."""
    L = plan.lanes
    full = np.zeros((plan.mt * L, plan.kp), np.uint32)
    full[:plan.m, :plan.k] = a
    if plan.bias:
        full[:, plan.k] = ONE_BF16
    return full.reshape(plan.mt, L, plan.kp).transpose(0, 2, 1).reshape(-1, L).copy()


def pack_b(plan: GemmPlan, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """B words (K, N) (+ bias (N,)) → the block stream (NB·P·block_words / L, L)."""
    p, S, RS, L = plan, plan.stages, plan.row_stride, plan.lanes
    ntot = p.nb * p.pcus * p.tiles
    full = np.zeros((p.kp, ntot * S), np.uint32)
    full[:p.k, :p.n] = b
    if p.bias:
        full[p.k, :p.n] = bias
    blocks = full.reshape(p.kp, p.nb, p.pcus, p.tiles, S).transpose(1, 2, 3, 0, 4)   # nb, p, t, k, j
    rows = np.zeros((p.nb, p.pcus, p.tiles, p.kp, RS), np.uint32)
    rows[..., :S] = blocks
    flat = rows.reshape(p.nb, p.pcus, -1)
    padded = np.zeros((p.nb, p.pcus, p.block_words), np.uint32)
    padded[:, :, :flat.shape[2]] = flat
    return padded.reshape(-1, L)


def unpack_c(plan: GemmPlan, vectors: np.ndarray) -> np.ndarray:
    """The C region (Cᵀ tiles: vector (mt, n) holds rows mt·L … of column n) → C words (M, N)."""
    L = plan.lanes
    arr = vectors[:plan.mt * plan.np_].reshape(plan.mt, plan.np_, L).transpose(0, 2, 1)
    return arr.reshape(plan.mt * L, plan.np_)[:plan.m, :plan.n].copy()


# ------------------------------------------------------------------ golden (hardware order)

def gemm_golden(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, act: str,
                out_bf16: bool) -> np.ndarray:
    """C words in the order of :data:`ORDER`, from op-table golden functions."""
    a = np.asarray(a, np.uint32)
    b = np.asarray(b, np.uint32)
    acc = np.zeros((a.shape[0], b.shape[1]), np.uint32)
    for kk in range(a.shape[1]):
        acc = golden("mac", acc, a[:, kk, None], b[None, kk, :])
    if bias is not None:
        acc = golden("mac", acc, np.uint32(ONE_BF16), np.asarray(bias, np.uint32)[None, :])
    if act != "none":
        acc = golden(f"tail.{act}", acc)
    if out_bf16:
        acc = golden("cvt_bf16", acc)
    return acc


# ------------------------------------------------------------------ units, routes, launch

def gemm_roles(plan: GemmPlan, prefix: str = "") -> tuple[list, list]:
    P = plan.pcus
    roles = [(f"{prefix}agcu_a", "agcu"), (f"{prefix}pmu_a", "pmu"), (f"{prefix}agcu_b", "agcu")]
    edges = [(f"{prefix}agcu_a", f"{prefix}pmu_a", 1.0)]
    for p in range(P):
        roles += [(f"{prefix}pcu{p}", "pcu"), (f"{prefix}pmu_b{p}", "pmu"), (f"{prefix}agcu_c{p}", "agcu")]
        edges += [(f"{prefix}pmu_a", f"{prefix}pcu{p}", 1.0), (f"{prefix}pmu_b{p}", f"{prefix}pcu{p}", 2.0),
                  (f"{prefix}agcu_b", f"{prefix}pmu_b{p}", 0.5), (f"{prefix}pcu{p}", f"{prefix}agcu_c{p}",
                                                                  1.0)]
    return roles, edges


def multicast_part_write(part_words: int, parts: int, index: int, lanes: int, runs: int) -> AddressProgram:
    """The write program of PMU ``index`` of the ``parts`` PMUs one multicast stream feeds, the
    stream being ``parts`` parts of ``part_words`` words in order: each PMU keeps its own part
    (its offset puts every other part outside the range ``0 … part_words``, which the PMU's
    configuration must set)."""
    return AddressProgram([Counter(0, part_words, lanes), Counter(0, parts * part_words, part_words)],
                          offset=(-index * part_words) % (1 << 32), runs=runs)


def a_tile_pmu(plan: GemmPlan, *, part: int | None = None, parts: int = 1) -> PmuConfig:
    """``pmu_a``: holds one Aᵀ tile (K' column vectors, double-buffered, one run per m-tile and,
    in the ``nm`` order, block) and replays it :attr:`GemmPlan.reps` times to the PCUs' ``vin0``
    (the read side masks the replay counter away).

    ``part``/``parts``: the PMU takes part ``part`` of a stream multicast to ``parts`` such PMUs
    (:func:`multicast_part_write`) instead of the whole stream."""
    p, L = plan, plan.lanes
    runs = p.nb * p.mt if p.order == "nm" else p.mt
    read = AddressProgram([Counter(0, p.kp), Counter(0, p.reps << p.a_shift, 1 << p.a_shift)],
                          alu=[("iand", (1 << p.a_shift) - 1), ("ishl", L.bit_length() - 1)], runs=runs)
    if part is None:
        return PmuConfig(write=AddressProgram([Counter(0, p.kp * L, L)], runs=runs), read=read, buffers=2,
                         buffer_words=p.kp * L)
    return PmuConfig(write=multicast_part_write(p.kp * L, parts, part, L, runs), read=read, buffers=2,
                     buffer_words=p.kp * L, range_lo=0, range_hi=p.kp * L)


def b_block_pmu(plan: GemmPlan, index: int) -> PmuConfig:
    """``pmu_b<index>``: keeps PCU ``index``'s part of each B block (rows at the power-of-two
    stride :attr:`GemmPlan.row_stride`) from the multicast B stream, double-buffered, and feeds
    its PCU's ``vin1`` once per m-tile."""
    p, L = plan, plan.lanes
    if p.order == "nm":
        runs = p.nb
        read = AddressProgram([Counter(0, p.kp), Counter(0, p.tiles * p.kp, p.kp),
                               Counter(0, p.mt << p.b_shift, 1 << p.b_shift)],
                              alu=[("iand", (1 << p.b_shift) - 1), ("ishl", p.row_stride.bit_length() - 1)],
                              runs=runs)
    else:
        runs = p.mt * p.nb
        read = AddressProgram([Counter(0, p.kp), Counter(0, p.tiles * p.kp, p.kp)],
                              alu=[("ishl", p.row_stride.bit_length() - 1)], runs=runs)
    return PmuConfig(write=multicast_part_write(p.block_words, p.pcus, index, L, runs), read=read, buffers=2,
                     buffer_words=p.block_words + L, range_lo=0, range_hi=p.block_words)


def mac_pcu(plan: GemmPlan) -> PcuConfig:
    """A PCU in systolic mode: one ``L × S`` tile of C per K' MAC steps, over the plan's tiles
    in its loop order, then the tail (``act``) and the bf16 conversion."""
    p = plan
    outer = [Counter(0, p.mt * p.tiles), Counter(0, p.nb)] if p.order == "nm" else \
        [Counter(0, p.nb * p.tiles), Counter(0, p.mt)]
    return PcuConfig(mode="systolic", counters=[Counter(0, p.kp), *outer], tail=p.act, to_bf16=p.out_bf16)


def gemm_programs(plan: GemmPlan, prefix: str = "", *, a_from: str | None = None,
                  c_to: str | None = None) -> tuple[dict, list, list]:
    """Role → program, and role-level routes (the host's start/done added by the caller).

    ``a_from``: a ``"role.pin"`` that feeds ``pmu_a`` instead of an ``agcu_a`` (a fused
    producer); ``c_to``: a ``"role.pin"`` the single PCU's output goes to instead of a store
    AGCU (a fused consumer). Returns ``(units, routes, starts)``: ``starts`` are the pins the
    host's start token must reach."""
    p, P, S = plan, plan.pcus, plan.stages
    r = prefix
    units: dict = {}
    routes: list = []
    starts: list = []
    nm = p.order == "nm"
    units[f"{r}pmu_a"] = a_tile_pmu(p)
    if a_from is None:
        units[f"{r}agcu_a"] = AgcuConfig("load", 0, [Counter(0, p.kp), Counter(0, p.mt * p.pitch, p.pitch)])
        routes.append((f"{r}agcu_a.vout", [f"{r}pmu_a.vin"]))
    else:
        routes.append((a_from, [f"{r}pmu_a.vin"]))
    span = P * p.block_words // p.lanes
    units[f"{r}agcu_b"] = AgcuConfig("load", 0, [Counter(0, span), Counter(0, p.nb * span, span)])
    for q in range(P):
        units[f"{r}pmu_b{q}"] = b_block_pmu(p, q)
        units[f"{r}pcu{q}"] = mac_pcu(p)
        routes.append((f"{r}pmu_b{q}.vout", [f"{r}pcu{q}.vin1"]))
        if c_to is None:
            ts = p.tiles * S
            mid = [Counter(0, p.mt * p.np_, p.np_), Counter(0, p.nb * P * ts, P * ts)]
            units[f"{r}agcu_c{q}"] = AgcuConfig("store", 0, [Counter(0, ts), *(mid if nm else mid[::-1])],
                                                offset=q * ts)
            routes.append((f"{r}pcu{q}.vout", [f"{r}agcu_c{q}.vin"]))
            starts.append(f"{r}agcu_c{q}.start")
        else:
            if P != 1:
                raise MappingError("PMU write ports", P, 1, "a fused consumer PMU takes one producer PCU")
            routes.append((f"{r}pcu{q}.vout", [c_to]))
    routes += [(f"{r}agcu_b.vout", [f"{r}pmu_b{q}.vin" for q in range(P)]),
               (f"{r}pmu_a.vout", [f"{r}pcu{q}.vin0" for q in range(P)])]
    if nm:
        # agcu_a replays the A tiles once per block, started by pmu_b0 finishing that block
        if a_from is not None:
            raise MappingError("a fused producer", None, None, "needs the m-tile-outer order")
        routes.append((f"{r}pmu_b0.wdone", [f"{r}agcu_a.start"]))
        starts.append(f"{r}agcu_b.start")
    else:
        # agcu_b streams all B blocks once per m-tile, started by pmu_a holding that tile
        routes.append((f"{r}pmu_a.wdone", [f"{r}agcu_b.start"]))
        if a_from is None:
            starts.append(f"{r}agcu_a.start")
    return units, routes, starts


def route_gemm(params, plans: list[GemmPlan]) -> tuple[GemmPlan, dict, object]:
    """Place and route the first plan the fabric can carry: ``(plan, placement, kernel)``."""
    last_error = None
    for plan in plans:
        roles, edges = gemm_roles(plan)
        try:
            units, routes, starts = gemm_programs(plan)
            routes.append(("host.start", starts))
            routes.append((f"agcu_c{plan.pcus - 1}.done", ["host.done"]))
            placed, kernel = place_and_route(params, roles, edges, units, routes)
        except MappingError as error:
            last_error = error
            continue
        return plan, placed, kernel
    raise last_error


def gemm_launch(name: str, plan: GemmPlan, placed: dict, kernel, a_region, b_region, c_region) -> Launch:
    """The launch of a routed plan with the segments of its regions (the C region holds
    ``mt · np_`` vectors)."""
    segments = {placed["agcu_a"]: [a_region.segment(read=True)],
                placed["agcu_b"]: [b_region.segment(read=True)]}
    for q in range(plan.pcus):
        segments[placed[f"agcu_c{q}"]] = [c_region.segment(read=False, write=True)]
    return Launch(name, kernel, segments, roles=placed,
                  pcu_steps={placed[f"pcu{q}"]: plan.steps for q in range(plan.pcus)},
                  pmu_words={placed["pmu_a"]: 2 * plan.kp * plan.lanes,
                             **{placed[f"pmu_b{q}"]: 2 * (plan.block_words + plan.lanes)
                                for q in range(plan.pcus)}})


# ------------------------------------------------------------------ stages and the kernel

@dataclass(frozen=True)
class GemmStage:
    """One GEMM launch of a kernel (:func:`gemm_stage`) and the plan it was routed with."""

    launch: Launch
    plan: GemmPlan


def gemm_stage(params, alloc: HbmAllocator, name: str, m: int, k: int, n: int, *, act: str, out_bf16: bool,
               bias: bool, a_input: str | None, b_input: str, out: str, a_region: Region | None = None,
               max_pcus: int | None = None, orders=("nm", "mn")) -> GemmStage:
    """One GEMM launch: A from input ``a_input`` (packed by the host) or from an existing
    C-layout region ``a_region`` (an earlier stage's output), B from input ``b_input`` (with
    the ``bias`` input when ``bias``), C into a new region ``out``."""
    L = params.preset.lanes
    pitch = None if a_region is None else a_region.vectors // ceil_div(m, L)
    plans = plan_gemm(params, m, k, n, bias=bias, act=act, out_bf16=out_bf16, max_pcus=max_pcus,
                      orders=orders, a_pitch=pitch)
    plan, placed, kernel = route_gemm(params, plans[:12])
    if a_region is None:
        a_region = alloc.region(a_input, plan.mt * plan.kp, pack=lambda w, p=plan: pack_a(p, w[a_input]))
        alloc.inputs.append(a_input)
    b_region = alloc.region(b_input, plan.nb * plan.pcus * plan.block_words // L,
                            pack=lambda w, p=plan: pack_b(p, w[b_input], w.get("bias") if bias else None))
    alloc.inputs.append(b_input)
    c_region = alloc.region(out, plan.mt * plan.np_)
    return GemmStage(gemm_launch(name, plan, placed, kernel, a_region, b_region, c_region), plan)


class GemmKernel(KernelMapping):
    """``C = act(A·B + bias)``: A (M, K), B (K, N), bias (N,) with ``bias``; C in ``out_dtype``.

    Fused: one launch (the module docstring). Unfused, with an activation or a bf16 output:
    the matmul (its bias one more MAC step) writes fp32 C to HBM, then an elementwise launch
    applies the activation and the conversion.
    """

    name = "gemm"
    shape_names = ("M", "K", "N")
    formula = "C = act(A·B + bias)"
    graph_options = ("act", "bias", "out_dtype")
    mapping_options = ("max_pcus", "orders")

    def input_names(self, *, bias: bool = False, **options) -> list[str]:
        return ["A", "B"] + (["bias"] if bias else [])

    def output_names(self, **options) -> list[str]:
        return ["C"]

    def graph(self, shape, *, act: str = "none", bias: bool = False, out_dtype: str = "bf16") -> KernelGraph:
        return gemm_graph(tuple(shape), act, bias, out_dtype)

    def compile(self, graph: KernelGraph, params, *, fused: bool = True, hbm_lines: int = DEFAULT_HBM_LINES,
                max_pcus: int | None = None, orders=("nm", "mn")) -> CompiledKernel:
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
        stage = gemm_stage(params, alloc, "matmul" if split else "gemm", m, k, n,
                           act="none" if split else act, out_bf16=False if split else out_bf16, bias=bias,
                           a_input="A", b_input="B", out="C_f32" if split else "C", max_pcus=max_pcus,
                           orders=orders)
        launches = [stage.launch]
        if split:
            out_r = alloc.region("C", alloc.regions["C_f32"].vectors)
            launches.append(elementwise_launch(params, "act", f"act_{act}_{'bf16' if out_bf16 else 'f32'}",
                                               [alloc.regions["C_f32"]], out_r))
        chosen = stage.plan

        def collect(vectors: dict) -> dict:
            return {"C": unpack_c(chosen, vectors["C"])}

        def golden(words: dict) -> dict:
            return {"C": gemm_golden(words["A"], words["B"], words.get("bias"), act, out_bf16)}

        return self.compiled_kernel(graph, params, (m, k, n), fused, launches, alloc, golden=golden,
                                    collect=collect, order=ORDER, plan={"gemm": chosen.summary()})
