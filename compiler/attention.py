"""Attention on the fabric: ``O = softmax(Q·Kᵀ/√D [+ causal mask])·V``, FlashAttention streaming.

Mapping (``L`` lanes, ``S`` stages; a query tile is ``L`` rows in the lanes)
---------------------------------------------------------------------------
Keys go in *blocks* of ``Bc`` slots: ``Bc - 1`` real keys and one **dummy slot** (the last),
whose step the ``max`` PCU uses to put the block's running maximum into its output stream
(a PCU has one vector output; the dummy slot is what lets one stream carry both the masked
scores and the maxima). Per query tile ``qt`` and block ``j``::

    agcu_q ─▶ pmu_q ─▶ qk ◀─ agcu_k            S_j = Q_t·K_jᵀ (MAC array, fp32), one vector per slot
                        │
    agcu_thr ─────────▶ max                    x = sel(thr < slot, -inf, s); m_j = running max
                        ├─▶ pmu_s ─▶ exp ─▶ pmu_p ─▶ pv ◀─ agcu_v      P_j = bf16(exp(c·x − c·m_j))
                        └─▶ pmu_m ─┬─▶ ▲         │           U_j = P_j·[1 ‖ V_j] (ones tile first)
                                   └─▶ alpha ─▶ o ◀─┘      α_j = exp(c·m_{j-1} − c·m_j) (fp32)
                                                o ─┬─▶ recip            O_j = α_j·O_{j-1} + U_j
                                                   └─▶ norm ◀─ recip ─▶ agcu_o   O·(1/l), bf16

* ``qk`` (systolic): ``vin0`` = the columns of ``Q_tᵀ`` (``pmu_q`` replays them once per key
  tile of S slots), ``vin1`` = K rows (``agcu_k``, once per query tile, started by
  ``pmu_q``'s write-done tokens); each tile drains as S score vectors (lane = query).
* ``max`` (SIMD + accumulator ``max``, reads ``acc``): ``thr`` (one int vector per block from
  ``agcu_thr``, held) masks slot ``c`` when ``c > thr`` (keys after the query — causal —, keys
  ≥ T and the dummy slot); the last stage emits ``x`` except at the dummy slot, where it emits
  the accumulator (the running max ``m_j``). The scale ``c = fp32(1/√D)`` is applied later
  (``fmul`` by ``c > 0`` is monotone, so ``max(c·x) = c·max(x)``).
* ``pmu_s`` keeps the block's Bc vectors and gives exp the Bc−1 real ones; ``pmu_m`` keeps
  only the dummy slot (address range) and multicasts ``m_j`` to ``exp`` (held per block) and
  ``alpha``.
* ``exp`` (SIMD): ``bf16(exp(c·x − c·m_j))`` (tail ``exp``; masked: exp(−inf) = +0).
* ``alpha`` (SIMD + accumulator ``max``, reads ``acc`` = ``m_{j−1}``): ``exp(c·m_{j−1} − c·m_j)``
  in fp32 (a bf16 α would perturb the weights of earlier blocks).
* ``pmu_p`` replays ``P_j`` once per d-tile (``nd = ⌈D/S⌉ + 1`` tiles, the first a tile of
  ones giving the row sum ``l``); ``pv`` (systolic) streams ``[1 ‖ V_j]`` rows from ``agcu_v``.
* ``o`` (SIMD + accumulator ``scale_add``, ``nd·S`` entries): ``O_j = α_j·O_{j−1} + U_j``,
  emitted after the last block: ``[l, l, l, l, O_0 … O_{D−1}]`` per query tile.
* ``recip`` (SIMD + accumulator, emits the first vector of a tile, tail ``recip``): ``1/l``;
  ``norm`` (SIMD, ``1/l`` held per tile): ``bf16(O·(1/l))`` to ``agcu_o`` (the S leading
  vectors of each tile are ``l/l``; the layout skips them).

Unfused: three launches with the intermediates in HBM — ``scores`` (qk, max → X: the max
stream, Bc fp32 vectors per block), ``softmax`` (exp, alpha → P, A) and ``output`` (pv, o,
recip, norm → O; ``pmu_a`` holds one query tile's α and its write-done tokens start
``agcu_v``). Same programs, same numerics: the outputs are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.counters import Counter
from hdl.numerics.ops import golden
from hdl.pcu import Accumulator, PcuConfig, Stage, VectorInput
from hdl.pmu import AddressProgram, PmuConfig

from .errors import MappingError
from .ir import KernelGraph, attention_graph
from .mapping import DEFAULT_HBM_LINES, KernelMapping, ceil_div, counter_nest, f32_word
from .place import place_and_route, site_counts
from .program import CompiledKernel, HbmAllocator, Launch

__all__ = ["AttentionPlan", "plan_attention", "attention_launches", "attention_golden", "pack_qt", "pack_k",
           "pack_v", "pack_thr", "unpack_o", "AttentionKernel", "ORDER", "PCUS"]

ORDER = ("keys in blocks of Bc-1 (plus a masked dummy slot); per query tile and block j: "
         "s = fp32 MAC chain from +0 over d = 0..D-1 of q[d]*k[d]; x = -inf where key > query (causal) "
         "or key >= T, else s; m_j = fmax scan of x over the slots of blocks 0..j in order; "
         "P = bf16(exp(fmul(x, c) - fmul(m_j, c))), c = fp32(1/sqrt(D)); "
         "alpha_j = exp(fmul(m_{j-1}, c) - fmul(m_j, c)); U_j = fp32 MAC chain from +0 over the block's "
         "Bc-1 keys of P*[1 | V]; O_0 = U_0, O_j = fadd(fmul(O_{j-1}, alpha_j), U_j) (l = the ones column); "
         "out = bf16(fmul(O, recip(l)))")

NEG_INF = 0xFF800000
ONE_BF16 = 0x3F80
#: PCUs of the fused mapping (every unfused launch uses at most four of them).
PCUS = 8


@dataclass(frozen=True)
class AttentionPlan:
    t: int
    d: int
    causal: bool
    lanes: int
    stages: int
    bc: int           # slots per key block (Bc - 1 keys and the dummy slot)

    @property
    def keys(self) -> int:
        """Real keys per block."""
        return self.bc - 1

    @property
    def nb(self) -> int:
        return ceil_div(self.t, self.keys)

    @property
    def nt(self) -> int:
        return ceil_div(self.t, self.lanes)

    @property
    def kt(self) -> int:
        """Key tiles (of S slots) per block."""
        return self.bc // self.stages

    @property
    def nd(self) -> int:
        """Column tiles of [1 | V]: the ones tile and ⌈D/S⌉ tiles of V."""
        return ceil_div(self.d, self.stages) + 1

    @property
    def ocols(self) -> int:
        """Accumulator entries of ``o`` (and vectors per query tile of the output)."""
        return self.nd * self.stages

    @property
    def scale_word(self) -> int:
        return f32_word(1.0 / np.sqrt(self.d))

    @property
    def q_shift(self) -> int:
        return max(1, (self.d * self.lanes - 1).bit_length())

    @property
    def p_shift(self) -> int:
        return max(1, (self.keys * self.lanes - 1).bit_length())

    @property
    def steps(self) -> dict:
        blocks = self.nt * self.nb
        return {"qk": blocks * self.kt * self.d, "max": blocks * self.bc, "exp": blocks * self.keys,
                "alpha": blocks, "pv": blocks * self.nd * self.keys, "o": blocks * self.ocols,
                "recip": self.nt * self.ocols, "norm": self.nt * self.ocols}

    def summary(self) -> dict:
        """The mapping choices, for a :class:`CompiledKernel`'s ``plan`` (reports)."""
        return {"causal": self.causal, "block_slots": self.bc, "keys_per_block": self.keys, "blocks": self.nb,
                "query_tiles": self.nt, "column_tiles": self.nd, "steps": self.steps}

    def key_of_slot(self) -> np.ndarray:
        """(nb, bc) key index of every slot; -1 for the dummy slot and keys ≥ T."""
        j = np.arange(self.nb)[:, None]
        c = np.arange(self.bc)[None, :]
        key = j * self.keys + c
        return np.where((c < self.keys) & (key < self.t), key, -1)

    def thresholds(self) -> np.ndarray:
        """(nt, nb, L) int: slot ``c`` of block ``j`` is masked for lane ``i`` iff ``c > thr``."""
        q = np.arange(self.nt * self.lanes).reshape(self.nt, 1, self.lanes)
        last = np.minimum(q, self.t - 1) if self.causal else np.full_like(q, self.t - 1)
        j = np.arange(self.nb).reshape(1, self.nb, 1)
        return np.clip(last - j * self.keys, -1, self.keys - 1)


def _choose_block(t: int, lanes: int, stages: int) -> int:
    best = None
    for bc in range(2 * stages, 8 * stages + 1, stages):
        if bc - 1 < max(lanes, stages):
            continue
        slots = ceil_div(t, bc - 1) * bc
        key = (slots, -bc)
        if best is None or key < best[0]:
            best = (key, bc)
    return best[1]


def plan_attention(params, t: int, d: int, causal: bool, block: int | None = None,
                   fused: bool = True) -> AttentionPlan:
    preset = params.preset
    counts = site_counts(preset)
    for kind, need in (("pcu", PCUS), ("pmu", 4), ("agcu", 5)):
        if counts[kind] < need:
            raise MappingError(f"{kind.upper()}s", need, counts[kind],
                               f"{'fused' if fused else 'unfused'} attention needs {PCUS} PCUs (qk, max, "
                               f"alpha, exp, pv, o, recip, norm; the unfused launches use the same "
                               f"units and the attention ALU ops of such a tile), 4 PMUs and 5 AGCUs")
    L, S = preset.lanes, preset.stages
    bc = block if block is not None else _choose_block(t, L, S)
    if bc % S or bc < 2 * S:
        raise MappingError("key block slots", bc, None,
                           f"must be a multiple of {S} (stages), at least {2 * S}")
    plan = AttentionPlan(t, d, causal, L, S, bc)
    depth = params.pcu.acc_depth
    if plan.ocols > depth:
        raise MappingError("PCU accumulator entries (o: (ceil(D/S)+1)*S)", plan.ocols, depth,
                           f"attention D={d}: the kernel PCUs are built with acc_depth={depth}, so D <= "
                           f"{(depth // S - 1) * S}")
    limit = (1 << preset.counter_width) - 1
    for what, need in (("counter range (Q replay, blocks << shift)", plan.nb << plan.q_shift),
                       ("counter range (Q replay, key tiles << shift)", plan.kt << plan.q_shift),
                       ("counter range (P replay, d-tiles << shift)", plan.nd << plan.p_shift),
                       ("counter range (blocks)", plan.nb), ("counter range (query tiles)", plan.nt),
                       ("counter range (K loop)", d),
                       ("counter range (Q stream, nt*D)", plan.nt * d),
                       ("counter range (K stream, nb*(Bc/S)*D)", plan.nb * plan.kt * d),
                       ("counter range (V stream, nb*nd*(Bc-1))", plan.nb * plan.nd * plan.keys),
                       ("counter range (O stream, nt*nd*S)", plan.nt * plan.ocols),
                       ("PMU runs (blocks)", plan.nt * plan.nb),
                       *([] if fused else [("counter range (X stream of the unfused form, nt*nb*Bc)",
                                            plan.nt * plan.nb * plan.bc)])):
        if need > limit:
            raise MappingError(what, need, limit,
                               f"attention {t}x{d}: split the sequence into several kernels")
    pmu_words = preset.pmu_banks * preset.pmu_bank_words
    for what, need in (("PMU words (Q tile, double-buffered)", 2 * d * L),
                       ("PMU words (scores, double-buffered)", 2 * plan.bc * L),
                       ("PMU words (P, double-buffered)", 2 * (1 << plan.p_shift))):
        if need > pmu_words:
            raise MappingError(what, need, pmu_words, f"attention {t}x{d}")
    return plan


# ------------------------------------------------------------------ host layouts

def pack_qt(plan: AttentionPlan, q: np.ndarray) -> np.ndarray:
    """Q words (T, D) → per query tile the D columns (lane = row): (nt·D, L)."""
    L = plan.lanes
    full = np.zeros((plan.nt * L, plan.d), np.uint32)
    full[:plan.t] = q
    return full.reshape(plan.nt, L, plan.d).transpose(0, 2, 1).reshape(-1, L)


def pack_k(plan: AttentionPlan, k: np.ndarray) -> np.ndarray:
    """K words (T, D) → per block, per key tile, per d: a row of S slots (lanes 0..S-1):
    (nb·kt·D, L); dummy and padding slots are zero."""
    L, S = plan.lanes, plan.stages
    kk = np.zeros((plan.t + 1, plan.d), np.uint32)
    kk[:plan.t] = k
    slots = kk[plan.key_of_slot()]                         # (nb, bc, D); key -1 → the zero row
    out = np.zeros((plan.nb, plan.kt, plan.d, L), np.uint32)
    out[..., :S] = slots.reshape(plan.nb, plan.kt, S, plan.d).transpose(0, 1, 3, 2)
    return out.reshape(-1, L)


def ones_v(plan: AttentionPlan, v: np.ndarray) -> np.ndarray:
    """[1 ‖ V] as bf16 words per real key slot: (nb, Bc-1, nd·S); padding keys are zero."""
    S = plan.stages
    vx = np.zeros((plan.t + 1, plan.ocols), np.uint32)
    vx[:plan.t, :S] = ONE_BF16
    vx[:plan.t, S:S + plan.d] = v
    return vx[plan.key_of_slot()[:, :plan.keys]]


def pack_v(plan: AttentionPlan, v: np.ndarray) -> np.ndarray:
    """V words (T, D) → per block, per column tile of [1 ‖ V], per key: a row of S values:
    (nb·nd·(Bc-1), L)."""
    L, S = plan.lanes, plan.stages
    vx = ones_v(plan, v).reshape(plan.nb, plan.keys, plan.nd, S).transpose(0, 2, 1, 3)
    out = np.zeros((plan.nb, plan.nd, plan.keys, L), np.uint32)
    out[..., :S] = vx
    return out.reshape(-1, L)


def pack_thr(plan: AttentionPlan) -> np.ndarray:
    """The mask thresholds (int32 words), one vector per (query tile, block): (nt·nb, L)."""
    return plan.thresholds().astype(np.int64).astype(np.uint32).reshape(-1, plan.lanes)


def unpack_o(plan: AttentionPlan, vectors: np.ndarray) -> np.ndarray:
    """(nt·ocols, L) column vectors → O words (T, D)."""
    L, S = plan.lanes, plan.stages
    tiles = vectors[:plan.nt * plan.ocols].reshape(plan.nt, plan.ocols, L)[:, S:S + plan.d]
    return tiles.transpose(0, 2, 1).reshape(plan.nt * L, plan.d)[:plan.t].copy()


# ------------------------------------------------------------------ golden model

def attention_golden(plan: AttentionPlan, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """O words in the order of :data:`ORDER`, from op-table golden functions (all query tiles at
    once: axis 0 is the query row)."""
    L, S = plan.lanes, plan.stages
    rows = plan.nt * L
    qq = np.zeros((rows, plan.d), np.uint32)
    qq[:plan.t] = q
    kk = np.zeros((plan.t + 1, plan.d), np.uint32)
    kk[:plan.t] = k
    key = plan.key_of_slot()                                          # (nb, bc)
    vx = ones_v(plan, v)                                              # (nb, bc-1, ocols)
    thr = plan.thresholds().transpose(0, 2, 1).reshape(rows, plan.nb)  # (rows, nb)
    c = np.uint32(plan.scale_word)
    acc = a_acc = o = None          # the accumulators of max, alpha and o
    for j in range(plan.nb):
        kj = kk[key[j]]                                               # (bc, D)
        s = np.zeros((rows, plan.bc), np.uint32)
        for dd in range(plan.d):
            s = golden("mac", s, qq[:, dd:dd + 1], kj[None, :, dd])
        masked = np.arange(plan.bc)[None, :] > thr[:, j:j + 1]
        x = np.where(masked, np.uint32(NEG_INF), s)
        for slot in range(plan.bc):
            if slot == plan.keys:
                m = acc                  # the dummy slot emits the entry before its update
            acc = x[:, slot].copy() if (j == 0 and slot == 0) else golden("fmax", acc, x[:, slot])
        cm = golden("fmul", m, c)
        p = golden("cvt_bf16", golden("tail.exp", golden("fsub", golden("fmul", x[:, :plan.keys], c),
                                                          cm[:, None])))
        u = np.zeros((rows, plan.ocols), np.uint32)
        for kk_ in range(plan.keys):
            u = golden("mac", u, p[:, kk_:kk_ + 1], vx[j, kk_][None, :])
        if j == 0:
            o, a_acc = u, m
        else:
            alpha = golden("tail.exp", golden("fsub", golden("fmul", a_acc, c), cm))
            a_acc = golden("fmax", a_acc, m)
            o = golden("fadd", golden("fmul", o, alpha[:, None]), u)
    r = golden("tail.recip", o[:, 0])
    out = golden("cvt_bf16", golden("fmul", o[:, S:S + plan.d], r[:, None]))
    return out[:plan.t]


# ------------------------------------------------------------------ unit programs

def _pcus(plan: AttentionPlan) -> dict:
    D = plan.d
    nb, nt, bc, keys = plan.nb, plan.nt, plan.bc, plan.keys
    c = plan.scale_word
    return {
        "qk": PcuConfig(mode="systolic", counters=[Counter(0, D), Counter(0, plan.kt * nb), Counter(0, nt)]),
        "max": PcuConfig(counters=[Counter(0, bc), Counter(0, nb), Counter(0, nt)],
                         vectors={1: VectorInput(pop_level=1)},
                         stages=[Stage("ilt", "vin1", "ctr0"), Stage("sel", "stage0", "const0", "vin0"),
                                 Stage("ilt", "ctr0", "const1"), Stage("sel", "stage2", "stage1", "acc")],
                         constants=[NEG_INF, bc - 1],
                         accumulator=Accumulator("max", reset=(0, 1), to_vout=False, value=1)),
        "exp": PcuConfig(counters=[Counter(0, keys), Counter(0, nb), Counter(0, nt)],
                         vectors={1: VectorInput(pop_level=1)},
                         stages=[Stage("fmul", "vin0", "const0"), Stage("fmul", "vin1", "const0"),
                                 Stage("fsub", "stage0", "stage1")],
                         constants=[c], tail="exp", to_bf16=True),
        "alpha": PcuConfig(counters=[Counter(0, nb), Counter(0, nt)],
                           stages=[Stage("mov", "vin0"), Stage("fmul", "acc", "const0"),
                                   Stage("fmul", "vin0", "const0"), Stage("fsub", "stage1", "stage2")],
                           constants=[c], tail="exp",
                           accumulator=Accumulator("max", reset=(0,), to_vout=False, value=0)),
        "pv": PcuConfig(mode="systolic",
                        counters=[Counter(0, keys), Counter(0, plan.nd * nb), Counter(0, nt)]),
        "o": PcuConfig(counters=[Counter(0, plan.ocols), Counter(0, nb), Counter(0, nt)],
                       vectors={1: VectorInput(pop_level=1)},
                       stages=[Stage("mov", "vin1"), Stage("mov", "vin0")],
                       accumulator=Accumulator("scale_add", index=0, reset=(1,), emit=(1,),
                                               scale=0, value=1)),
        "recip": PcuConfig(counters=[Counter(0, plan.ocols), Counter(0, nt)], stages=[Stage("mov", "vin0")],
                           accumulator=Accumulator("max", reset=(0,), emit=(0,), emit_at="first"),
                           tail="recip"),
        "norm": PcuConfig(counters=[Counter(0, plan.ocols), Counter(0, nt)],
                          vectors={1: VectorInput(pop_level=1)}, stages=[Stage("fmul", "vin0", "vin1")],
                          to_bf16=True),
    }


def _pmu_q(plan: AttentionPlan) -> PmuConfig:
    L, sh = plan.lanes, plan.q_shift
    return PmuConfig(write=AddressProgram([Counter(0, plan.d * L, L)], runs=plan.nt),
                     read=AddressProgram([Counter(0, plan.d * L, L), Counter(0, plan.kt << sh, 1 << sh),
                                          Counter(0, plan.nb << sh, 1 << sh)], alu=[("iand", (1 << sh) - 1)],
                                         runs=plan.nt),
                     buffers=2, buffer_words=plan.d * L)


def _pmu_s(plan: AttentionPlan) -> PmuConfig:
    L, runs = plan.lanes, plan.nt * plan.nb
    return PmuConfig(write=AddressProgram([Counter(0, plan.bc * L, L)], runs=runs),
                     read=AddressProgram([Counter(0, plan.keys * L, L)], runs=runs),
                     buffers=2, buffer_words=plan.bc * L)


def _pmu_m(plan: AttentionPlan) -> PmuConfig:
    L, runs, at = plan.lanes, plan.nt * plan.nb, plan.keys * plan.lanes
    return PmuConfig(write=AddressProgram([Counter(0, plan.bc * L, L)], runs=runs),
                     read=AddressProgram([Counter(0, 1)], offset=at, runs=runs),
                     buffers=2, buffer_words=L, range_lo=at, range_hi=at + L)


def _pmu_p(plan: AttentionPlan) -> PmuConfig:
    L, sh, runs = plan.lanes, plan.p_shift, plan.nt * plan.nb
    return PmuConfig(write=AddressProgram([Counter(0, plan.keys * L, L)], runs=runs),
                     read=AddressProgram([Counter(0, plan.keys * L, L), Counter(0, plan.nd << sh, 1 << sh)],
                                         alu=[("iand", (1 << sh) - 1)], runs=runs),
                     buffers=2, buffer_words=plan.keys * L)


def _loads(plan: AttentionPlan) -> dict:
    return {"agcu_q": AgcuConfig("load", 0, counter_nest(plan.nt * plan.d, "attention Q stream")),
            "agcu_k": AgcuConfig("load", 0, counter_nest(plan.nb * plan.kt * plan.d, "attention K stream")),
            "agcu_thr": AgcuConfig("load", 0, counter_nest(plan.nt * plan.nb, "attention mask thresholds")),
            "agcu_v": AgcuConfig("load", 0, counter_nest(plan.nb * plan.nd * plan.keys,
                                                         "attention V stream"))}


def _store_o(plan: AttentionPlan) -> AgcuConfig:
    return AgcuConfig("store", 0, counter_nest(plan.nt * plan.ocols, "attention O stream"))


_FUSED_ROLES = [("qk", "pcu"), ("max", "pcu"), ("pmu_q", "pmu"), ("agcu_q", "agcu"), ("agcu_k", "agcu"),
                ("agcu_thr", "agcu"), ("pmu_s", "pmu"), ("pmu_m", "pmu"), ("exp", "pcu"), ("alpha", "pcu"),
                ("pmu_p", "pmu"), ("pv", "pcu"), ("agcu_v", "agcu"), ("o", "pcu"), ("recip", "pcu"),
                ("norm", "pcu"), ("agcu_o", "agcu")]
_FUSED_EDGES = [("agcu_q", "pmu_q", 0.5), ("pmu_q", "qk", 1.0), ("agcu_k", "qk", 1.0), ("qk", "max", 1.0),
                ("agcu_thr", "max", 0.5), ("max", "pmu_s", 1.0), ("max", "pmu_m", 1.0), ("pmu_s", "exp", 1.0),
                ("pmu_m", "exp", 1.0), ("pmu_m", "alpha", 1.0), ("exp", "pmu_p", 1.0), ("pmu_p", "pv", 1.0),
                ("agcu_v", "pv", 1.0), ("pv", "o", 1.0), ("alpha", "o", 1.0), ("o", "recip", 1.0),
                ("o", "norm", 1.0), ("recip", "norm", 1.0), ("norm", "agcu_o", 1.0)]
_FUSED_ROUTES = [("agcu_q.vout", ["pmu_q.vin"]), ("pmu_q.vout", ["qk.vin0"]), ("agcu_k.vout", ["qk.vin1"]),
                 ("qk.vout", ["max.vin0"]), ("agcu_thr.vout", ["max.vin1"]),
                 ("max.vout", ["pmu_s.vin", "pmu_m.vin"]), ("pmu_s.vout", ["exp.vin0"]),
                 ("pmu_m.vout", ["exp.vin1", "alpha.vin0"]), ("exp.vout", ["pmu_p.vin"]),
                 ("pmu_p.vout", ["pv.vin0"]), ("agcu_v.vout", ["pv.vin1"]), ("pv.vout", ["o.vin0"]),
                 ("alpha.vout", ["o.vin1"]), ("o.vout", ["recip.vin0", "norm.vin0"]),
                 ("recip.vout", ["norm.vin1"]), ("norm.vout", ["agcu_o.vin"]),
                 ("host.start", ["agcu_q.start", "agcu_thr.start", "agcu_o.start"]),
                 ("pmu_q.wdone", ["agcu_k.start", "agcu_v.start"]), ("agcu_o.done", ["host.done"])]


def _launch(name: str, params, plan: AttentionPlan, roles, edges, units: dict, routes, segs: dict,
            words: dict | None = None) -> Launch:
    """Place and route one launch; ``segs`` (each AGCU's segment) and ``words`` (PMU words used)
    are keyed by role, the launch's by site."""
    placed, kernel = place_and_route(params, roles, edges, units, routes)
    return Launch(name, kernel, {placed[r]: [seg] for r, seg in segs.items()}, roles=placed,
                  pcu_steps={placed[r]: n for r, n in plan.steps.items() if r in units},
                  pmu_words={placed[r]: w for r, w in (words or {}).items()})


def attention_launches(params, plan: AttentionPlan, regions: dict, fused: bool) -> list[Launch]:
    """The launch(es) over ``regions`` (``Q``, ``K``, ``V``, ``THR``, ``O`` and, unfused, ``X``,
    ``P``, ``A``)."""
    L = plan.lanes
    pcus = _pcus(plan)
    loads = _loads(plan)
    if fused:
        units = {**pcus, **loads, "agcu_o": _store_o(plan), "pmu_q": _pmu_q(plan), "pmu_s": _pmu_s(plan),
                 "pmu_m": _pmu_m(plan), "pmu_p": _pmu_p(plan)}
        segs = {"agcu_q": regions["Q"].segment(read=True), "agcu_k": regions["K"].segment(read=True),
                "agcu_thr": regions["THR"].segment(read=True), "agcu_v": regions["V"].segment(read=True),
                "agcu_o": regions["O"].segment(read=False, write=True)}
        words = {"pmu_q": 2 * plan.d * L, "pmu_s": 2 * plan.bc * L, "pmu_m": 2 * L,
                 "pmu_p": 2 * plan.keys * L}
        return [_launch("attention", params, plan, _FUSED_ROLES, _FUSED_EDGES, units, _FUSED_ROUTES, segs,
                        words)]

    blocks = plan.nt * plan.nb
    # 1. scores: qk, max → X (the max stream: Bc fp32 vectors per block)
    units = {"qk": pcus["qk"], "max": pcus["max"], "pmu_q": _pmu_q(plan), "agcu_q": loads["agcu_q"],
             "agcu_k": loads["agcu_k"], "agcu_thr": loads["agcu_thr"],
             "agcu_x": AgcuConfig("store", 0, counter_nest(blocks * plan.bc, "attention X stream"))}
    roles = [("qk", "pcu"), ("max", "pcu"), ("pmu_q", "pmu"), ("agcu_q", "agcu"), ("agcu_k", "agcu"),
             ("agcu_thr", "agcu"), ("agcu_x", "agcu")]
    edges = [e for e in _FUSED_EDGES if e[0] in units and e[1] in units] + [("max", "agcu_x", 1.0)]
    routes = [("agcu_q.vout", ["pmu_q.vin"]), ("pmu_q.vout", ["qk.vin0"]), ("agcu_k.vout", ["qk.vin1"]),
              ("qk.vout", ["max.vin0"]), ("agcu_thr.vout", ["max.vin1"]), ("max.vout", ["agcu_x.vin"]),
              ("host.start", ["agcu_q.start", "agcu_thr.start", "agcu_x.start"]),
              ("pmu_q.wdone", ["agcu_k.start"]), ("agcu_x.done", ["host.done"])]
    segs = {"agcu_q": regions["Q"].segment(read=True), "agcu_k": regions["K"].segment(read=True),
            "agcu_thr": regions["THR"].segment(read=True),
            "agcu_x": regions["X"].segment(read=False, write=True)}
    first = _launch("scores", params, plan, roles, edges, units, routes, segs, {"pmu_q": 2 * plan.d * L})

    # 2. softmax: exp, alpha → P (bf16), A (fp32)
    span = blocks * plan.bc
    units = {"exp": pcus["exp"], "alpha": pcus["alpha"],
             "agcu_xs": AgcuConfig("load", 0, [Counter(0, plan.keys), Counter(0, span, plan.bc)]),
             "agcu_xm": AgcuConfig("load", 0, [Counter(0, span, plan.bc)], offset=plan.keys),
             "agcu_p": AgcuConfig("store", 0, counter_nest(blocks * plan.keys, "attention P stream")),
             "agcu_a": AgcuConfig("store", 0, counter_nest(blocks, "attention alpha stream"))}
    roles = [("exp", "pcu"), ("alpha", "pcu"), ("agcu_xs", "agcu"), ("agcu_xm", "agcu"), ("agcu_p", "agcu"),
             ("agcu_a", "agcu")]
    edges = [("agcu_xs", "exp", 1.0), ("agcu_xm", "exp", 1.0), ("agcu_xm", "alpha", 1.0),
             ("exp", "agcu_p", 1.0), ("alpha", "agcu_a", 1.0)]
    routes = [("agcu_xs.vout", ["exp.vin0"]), ("agcu_xm.vout", ["exp.vin1", "alpha.vin0"]),
              ("exp.vout", ["agcu_p.vin"]), ("alpha.vout", ["agcu_a.vin"]),
              ("host.start", ["agcu_xs.start", "agcu_xm.start", "agcu_p.start", "agcu_a.start"]),
              ("agcu_p.done", ["host.done"])]
    segs = {"agcu_xs": regions["X"].segment(read=True), "agcu_xm": regions["X"].segment(read=True),
            "agcu_p": regions["P"].segment(read=False, write=True),
            "agcu_a": regions["A"].segment(read=False, write=True)}
    second = _launch("softmax", params, plan, roles, edges, units, routes, segs)

    # 3. output: pv, o, recip, norm → O
    units = {"pv": pcus["pv"], "o": pcus["o"], "recip": pcus["recip"], "norm": pcus["norm"],
             "agcu_p": AgcuConfig("load", 0, counter_nest(blocks * plan.keys, "attention P stream")),
             "pmu_p": _pmu_p(plan),
             "agcu_a": AgcuConfig("load", 0, counter_nest(blocks, "attention alpha stream")),
             "pmu_a": PmuConfig(write=AddressProgram([Counter(0, plan.nb * L, L)], runs=plan.nt),
                                read=AddressProgram([Counter(0, plan.nb * L, L)], runs=plan.nt),
                                buffers=2, buffer_words=plan.nb * L),
             "agcu_v": loads["agcu_v"], "agcu_o": _store_o(plan)}
    roles = [("pv", "pcu"), ("o", "pcu"), ("pmu_p", "pmu"), ("agcu_p", "agcu"), ("agcu_v", "agcu"),
             ("pmu_a", "pmu"), ("agcu_a", "agcu"), ("recip", "pcu"), ("norm", "pcu"), ("agcu_o", "agcu")]
    edges = [("agcu_p", "pmu_p", 0.5), ("pmu_p", "pv", 1.0), ("agcu_v", "pv", 1.0), ("pv", "o", 1.0),
             ("agcu_a", "pmu_a", 0.5), ("pmu_a", "o", 1.0), ("o", "recip", 1.0), ("o", "norm", 1.0),
             ("recip", "norm", 1.0), ("norm", "agcu_o", 1.0)]
    routes = [("agcu_p.vout", ["pmu_p.vin"]), ("pmu_p.vout", ["pv.vin0"]), ("agcu_v.vout", ["pv.vin1"]),
              ("pv.vout", ["o.vin0"]), ("agcu_a.vout", ["pmu_a.vin"]), ("pmu_a.vout", ["o.vin1"]),
              ("o.vout", ["recip.vin0", "norm.vin0"]), ("recip.vout", ["norm.vin1"]),
              ("norm.vout", ["agcu_o.vin"]),
              ("host.start", ["agcu_p.start", "agcu_a.start", "agcu_o.start"]),
              ("pmu_a.wdone", ["agcu_v.start"]), ("agcu_o.done", ["host.done"])]
    segs = {"agcu_p": regions["P"].segment(read=True), "agcu_a": regions["A"].segment(read=True),
            "agcu_v": regions["V"].segment(read=True), "agcu_o": regions["O"].segment(read=False, write=True)}
    third = _launch("output", params, plan, roles, edges, units, routes, segs,
                    {"pmu_p": 2 * plan.keys * L, "pmu_a": 2 * plan.nb * L})
    return [first, second, third]


# ------------------------------------------------------------------ the kernel

class AttentionKernel(KernelMapping):
    """``O = softmax(Q·Kᵀ/√D [+ causal mask])·V``, one head: Q, K, V, O (T, D) (see the module
    docstring; ``block``: key-block slots, default the planner's)."""

    name = "attention"
    shape_names = ("T", "D")
    formula = "O = softmax(Q·Kᵀ/√D [+ causal mask])·V"
    graph_options = ("causal",)
    mapping_options = ("block",)

    def input_names(self, **options) -> list[str]:
        return ["Q", "K", "V"]

    def output_names(self, **options) -> list[str]:
        return ["O"]

    def graph(self, shape, *, causal: bool = False) -> KernelGraph:
        return attention_graph(tuple(shape), causal)

    def compile(self, graph: KernelGraph, params, *, fused: bool = True, hbm_lines: int = DEFAULT_HBM_LINES,
                block: int | None = None) -> CompiledKernel:
        t, d = graph.tensors["Q"].shape
        causal = bool(graph.nodes[0].attrs.get("causal"))
        plan = plan_attention(params, t, d, causal, block, fused)
        alloc = HbmAllocator(params.preset.lanes, hbm_lines)
        alloc.region("Q", plan.nt * d, pack=lambda w: pack_qt(plan, w["Q"]))
        alloc.region("K", plan.nb * plan.kt * d, pack=lambda w: pack_k(plan, w["K"]))
        alloc.region("V", plan.nb * plan.nd * plan.keys, pack=lambda w: pack_v(plan, w["V"]))
        alloc.region("THR", plan.nt * plan.nb, pack=lambda w: pack_thr(plan))
        if not fused:
            blocks = plan.nt * plan.nb
            alloc.region("X", blocks * plan.bc)
            alloc.region("P", blocks * plan.keys)
            alloc.region("A", blocks)
        alloc.region("O", plan.nt * plan.ocols)
        alloc.inputs += ["Q", "K", "V", "THR"]
        launches = attention_launches(params, plan, alloc.regions, fused)

        def golden(words: dict) -> dict:
            return {"O": attention_golden(plan, words["Q"], words["K"], words["V"])}

        def collect(vectors: dict) -> dict:
            return {"O": unpack_o(plan, vectors["O"])}

        return self.compiled_kernel(graph, params, (t, d), fused, launches, alloc, golden=golden,
                                    collect=collect, order=ORDER, plan={"attention": plan.summary()})
