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

from .errors import MappingError
from .place import place_and_route, site_counts
from .program import Launch

__all__ = ["GemmPlan", "plan_gemm", "route_gemm", "gemm_launch", "gemm_programs", "gemm_golden", "pack_a",
           "pack_b", "unpack_c", "ONE_BF16", "ORDER"]

ONE_BF16 = 0x3F80
COUNTER_LIMIT = 1 << 16
ORDER = ("C[i,j]: fp32 MAC chain from +0 over k = 0..K-1 in order (exact bf16 products, one RNE "
         "rounding per step), then + 1*bias[j] as one more MAC step, then the activation (tail op), "
         "then RNE to bf16")


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


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
        return _ceil(self.m, self.lanes)

    @property
    def nt(self) -> int:
        return _ceil(self.n, self.stages)

    @property
    def nb(self) -> int:
        return _ceil(self.nt, self.pcus * self.tiles)

    @property
    def row_stride(self) -> int:
        return _pow2_at_least(self.stages)

    @property
    def block_words(self) -> int:
        """Words of one PCU's B block, rounded up to whole vectors."""
        return _ceil(self.tiles * self.kp * self.row_stride, self.lanes) * self.lanes

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
    nt = _ceil(n, preset.stages)
    for p in range(1, pcu_cap + 1):
        for tb in range(1, _ceil(nt, p) + 1):
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


def gemm_programs(plan: GemmPlan, prefix: str = "", *, a_from: str | None = None,
                  c_to: str | None = None) -> tuple[dict, list]:
    """Role → program, and role-level routes (the host's start/done added by the caller).

    ``a_from``: a ``"role.pin"`` that feeds ``pmu_a`` instead of an ``agcu_a`` (a fused
    producer); ``c_to``: a ``"role.pin"`` the single PCU's output goes to instead of a store
    AGCU (a fused consumer). Returns ``(units, routes, starts)``: ``starts`` are the pins the
    host's start token must reach."""
    p, L, P, S = plan, plan.lanes, plan.pcus, plan.stages
    r = prefix
    units: dict = {}
    routes: list = []
    starts: list = []
    nm = p.order == "nm"
    a_mask = [("iand", (1 << p.a_shift) - 1), ("ishl", L.bit_length() - 1)]
    runs_a = p.nb * p.mt if nm else p.mt
    units[f"{r}pmu_a"] = PmuConfig(
        write=AddressProgram([Counter(0, p.kp * L, L)], runs=runs_a),
        read=AddressProgram([Counter(0, p.kp), Counter(0, p.reps << p.a_shift, 1 << p.a_shift)], alu=a_mask,
                            runs=runs_a),
        buffers=2, buffer_words=p.kp * L)
    if a_from is None:
        units[f"{r}agcu_a"] = AgcuConfig("load", 0, [Counter(0, p.kp), Counter(0, p.mt * p.pitch, p.pitch)])
        routes.append((f"{r}agcu_a.vout", [f"{r}pmu_a.vin"]))
    else:
        routes.append((a_from, [f"{r}pmu_a.vin"]))
    span = P * p.block_words // L
    units[f"{r}agcu_b"] = AgcuConfig("load", 0, [Counter(0, span), Counter(0, p.nb * span, span)])
    runs_b = p.nb if nm else p.mt * p.nb
    for q in range(P):
        if nm:
            read = AddressProgram([Counter(0, p.kp), Counter(0, p.tiles * p.kp, p.kp),
                                   Counter(0, p.mt << p.b_shift, 1 << p.b_shift)],
                                  alu=[("iand", (1 << p.b_shift) - 1), ("ishl",
                                                                        p.row_stride.bit_length() - 1)],
                                  runs=runs_b)
        else:
            read = AddressProgram([Counter(0, p.kp), Counter(0, p.tiles * p.kp, p.kp)],
                                  alu=[("ishl", p.row_stride.bit_length() - 1)], runs=runs_b)
        units[f"{r}pmu_b{q}"] = PmuConfig(
            write=AddressProgram([Counter(0, p.block_words, L), Counter(0, P * p.block_words, p.block_words)],
                                 offset=(-q * p.block_words) % (1 << 32), runs=runs_b),
            read=read, buffers=2, buffer_words=p.block_words + L, range_lo=0, range_hi=p.block_words)
        outer = [Counter(0, p.mt * p.tiles), Counter(0, p.nb)] if nm else [Counter(0, p.nb * p.tiles),
                                                                           Counter(0, p.mt)]
        units[f"{r}pcu{q}"] = PcuConfig(mode="systolic", counters=[Counter(0, p.kp), *outer], tail=p.act,
                                        to_bf16=p.out_bf16)
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
