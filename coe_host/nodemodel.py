"""Event-driven model of Samba-CoE serving on an SN40L node, against a DGX baseline.

Workload
--------
``requests`` requests wait at time 0 (a closed backlog; requests/s = requests / makespan).
A request is ``batch`` sequences the router sends to one expert — the paper's "batch 8" — each
with a ``prompt``-token prompt, generating ``tokens`` tokens. Which expert: a Zipf law of
exponent ``skew`` over a seeded permutation of the experts (``skew`` 0: uniform).

Platforms
---------
Both are the same event-driven machine with different figures (:mod:`coe_host.platform`):

* **node**: ``sockets`` SN40L sockets in serving groups of ``sockets_per_expert`` (default: all,
  the expert tensor-parallel over the node). Every expert has its home in DDR, one shard per
  socket of its home group; HBM holds the router, a KV region and the expert cache (a
  :class:`~coe_host.residency.ResidencyManager` per group over real
  :class:`~coe_host.memory.SocketMemory` allocators). A miss copies the shards DDR → HBM at
  the measured per-pair bandwidth × DDR channels per socket, over the inter-socket network
  when the home socket is another one.
* **baseline** (DGX H100 / A100): 8 GPUs in groups of ``gpus_per_expert``; experts live in host
  memory and come over host → GPU links (64 / 32 GB/s × ``baseline_links``) when missing from
  GPU HBM (80 GB per GPU minus the same KV reserve).

Per request: the router (bf16 GEMM, roofline), then — if the expert is missing — the copy
(evicting by the policy), then the expert's prefill and decode (:mod:`coe_host.roofline`).
With ``prefetch`` a group that starts a request reserves the next one and starts its copy at
once, overlapping the running expert. Events: a group's compute becoming free; the queue is
shared, and a free group prefers, among the next few requests, one whose expert it holds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

from .experts import ExpertRegistry, sized_registry
from .memory import CapacityError, SocketMemory
from .platform import (
    GB,
    GIB,
    NodePreset,
    PairBandwidth,
    assumptions,
    gpu_baseline,
    measured_pair_bandwidth,
    node_preset,
)
from .residency import POLICIES, ResidencyManager
from .roofline import ROOFLINE_TEXT, Device, RequestShape, request_time, router_time

__all__ = ["SimConfig", "make_trace", "simulate", "BASELINES", "PaperFigures", "PAPER"]

BASELINES = ("dgx-h100", "dgx-a100")
#: Router size assumed for its HBM region and its roofline time (the trained router is smaller).
ROUTER_FEATURES, ROUTER_CLASSES = 4096, 256


@dataclass(frozen=True)
class PaperFigures:
    """SN40L paper (arXiv 2405.07518) Samba-CoE claims (docs/architecture.md, Reference figures: SN40L)."""

    switch_vs_h100: float = 15.0
    switch_vs_a100: float = 31.0
    footprint: float = 19.0
    overall_vs_h100: float = 3.7
    overall_vs_a100: float = 6.6
    batch: int = 8
    tokens: int = 20


PAPER = PaperFigures()


#: Upper limits of :class:`SimConfig` (name, limit, why): beyond them a run would not fit this
#: machine's memory or would not finish in useful time.
LIMITS = (
    ("requests", 1_000_000, "the trace and the per-request records are held in memory"),
    ("experts", 100_000, "the registry holds one descriptor per expert"),
    ("sockets", 1_024, "the node model keeps one memory model per socket"),
)


@dataclass(frozen=True)
class SimConfig:
    experts: int = 150
    params_per_expert: float = 7e9
    sockets: int = 8
    requests: int = 1000
    batch: int = 8
    tokens: int = 20
    prompt_tokens: int = 64
    baseline: str = "dgx-h100"
    policy: str = "lru"
    seed: int = 0
    skew: float = 1.0
    prefetch: bool = False
    sockets_per_expert: int | None = None
    gpus_per_expert: int = 8
    baseline_links: int = 1
    hbm_cache_gib: float | None = None      # per socket / per GPU; None: all HBM left after router + KV
    cache_experts: int | None = None        # instead: room for exactly this many experts (both platforms)
    kv_gib: float = 8.0                     # KV region per socket / per GPU
    lookahead: int = 0                      # requests a free group may look past for a resident expert
    node: str = "sn40l-node"

    def validate(self) -> None:
        """Refuse, in well under a second, every configuration the model cannot serve or this
        machine cannot hold (each message names the value and what is allowed)."""
        for name in ("experts", "sockets", "requests", "batch", "tokens", "gpus_per_expert",
                     "baseline_links"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, limit, why in LIMITS:
            if getattr(self, name) > limit:
                raise ValueError(f"{name} {getattr(self, name)} is more than the model takes "
                                 f"({limit:,}: {why})")
        if not (self.params_per_expert > 0 and math.isfinite(self.params_per_expert)):
            raise ValueError(f"params_per_expert must be positive, got {self.params_per_expert!r}")
        node = node_preset(self.node)
        need = self.experts * self.params_per_expert * 2
        have = self.sockets * node.ddr_gib * GIB
        if need > have:
            raise ValueError(f"experts {self.experts} x {self.params_per_expert:.3g} parameters need "
                             f"{need / GIB:,.0f} GiB of DDR (bf16); {self.sockets} sockets hold "
                             f"{have / GIB:,.0f} GiB: use fewer or smaller experts")
        if self.prompt_tokens < 0 or self.lookahead < 0:
            raise ValueError("prompt_tokens and lookahead must be >= 0")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; known: {', '.join(POLICIES)}")
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; known: {', '.join(BASELINES)}")
        if self.skew < 0:
            raise ValueError(f"skew must be >= 0, got {self.skew}")
        spe = self.spe
        if not 1 <= spe <= self.sockets or self.sockets % spe:
            raise ValueError(f"sockets_per_expert must divide sockets ({self.sockets}), got {spe}")
        gpus = gpu_baseline(self.baseline).gpus
        if gpus % self.gpus_per_expert:
            raise ValueError(f"gpus_per_expert must divide the baseline's {gpus} GPUs, got "
                             f"{self.gpus_per_expert}")
        if self.baseline_links > self.gpus_per_expert:
            raise ValueError(f"baseline_links ({self.baseline_links}) cannot exceed gpus_per_expert "
                             f"({self.gpus_per_expert}): one host link per GPU")
        if self.hbm_cache_gib is not None and not self.hbm_cache_gib > 0:
            raise ValueError(f"hbm_cache_gib must be positive, got {self.hbm_cache_gib}")
        if self.cache_experts is not None:
            if isinstance(self.cache_experts, bool) or not isinstance(self.cache_experts, int) \
                    or self.cache_experts < 1:
                raise ValueError(f"cache_experts must be a positive integer, got {self.cache_experts!r}")
            if self.hbm_cache_gib is not None:
                raise ValueError("give hbm_cache_gib or cache_experts, not both")
        if not self.kv_gib > 0:
            raise ValueError(f"kv_gib must be positive, got {self.kv_gib}")

    @property
    def spe(self) -> int:
        return self.sockets if self.sockets_per_expert is None else self.sockets_per_expert


def make_trace(experts: int, requests: int, *, skew: float, seed: int) -> np.ndarray:
    """Expert index of every request: Zipf(``skew``) popularity over a seeded permutation."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, experts + 1, dtype=np.float64)
    p = ranks ** -skew
    p /= p.sum()
    order = rng.permutation(experts)
    return order[rng.choice(experts, size=requests, p=p)]


@dataclass
class _Platform:
    name: str
    groups: list[ResidencyManager]
    run_s: float
    router_s: float
    kv_bytes: int
    switch_GBps: float
    derivation: list[str]
    hbm_bytes_per_request: float
    allreduce_bytes_per_request: float
    devices_per_group: int
    sram_bytes: int = 0
    stats: dict = field(default_factory=dict)


def _cache_bytes(cfg: SimConfig, expert, devices: int) -> int | None:
    if cfg.cache_experts is not None:
        return cfg.cache_experts * expert.shard_lines(devices) * 64
    return None if cfg.hbm_cache_gib is None else int(cfg.hbm_cache_gib * GIB)


def _run(platform: _Platform, registry: ExpertRegistry, trace: np.ndarray, cfg: SimConfig) -> dict:
    names = registry.names
    queue = deque(range(len(trace)))
    groups = platform.groups
    ng = len(groups)
    current: list[int | None] = [None] * ng
    reserved: list[int | None] = [None] * ng
    events = [(0.0, g, g) for g in range(ng)]
    heapq.heapify(events)
    seq = ng
    hits = switches = 0
    stall = busy = 0.0
    makespan = 0.0
    prefetch_started = 0
    window = cfg.lookahead

    def pull(g: int) -> int | None:
        if not queue:
            return None
        mgr = groups[g]
        for i in range(min(window + 1, len(queue))):
            if mgr.is_resident(names[trace[queue[i]]]):
                rid = queue[i]
                del queue[i]
                return rid
        return queue.popleft()

    while events:
        t, _, g = heapq.heappop(events)
        mgr = groups[g]
        if current[g] is not None:
            mgr.end(f"r{current[g]}")
            current[g] = None
            makespan = max(makespan, t)
        rid = reserved[g]
        reserved[g] = None
        if rid is not None:                       # prefetched: resident (maybe still copying), pinned
            name = names[trace[rid]]
            res = mgr.ensure_resident(name, t, count=False)
            mgr.unpin(name)
        else:
            rid = pull(g)
            if rid is None:
                continue
            name = names[trace[rid]]
            res = mgr.ensure_resident(name, t)
            if res.hit:
                hits += 1
            else:
                switches += 1
        start = max(t, res.ready_s)
        mgr.begin(f"r{rid}", name, platform.kv_bytes, start, sram_bytes=platform.sram_bytes)
        stall += start - t
        end = start + platform.router_s + platform.run_s
        busy += end - start
        current[g] = rid
        heapq.heappush(events, (end, seq, g))
        seq += 1
        if cfg.prefetch:
            nxt = pull(g)
            if nxt is not None:
                nname = names[trace[nxt]]
                was = mgr.is_resident(nname)
                try:
                    mgr.ensure_resident(nname, t, prefetch=True)
                except CapacityError:
                    queue.appendleft(nxt)         # no room while others are pinned: fetch on demand
                else:
                    mgr.pin(nname)
                    reserved[g] = nxt
                    if was:
                        hits += 1
                    else:
                        switches += 1
                        prefetch_started += 1
    n = len(trace)
    bytes_copied = sum(m.stats["bytes_copied"] for m in groups)
    for m in groups:
        m.check()
    return {
        "makespan_s": makespan,
        "requests_per_s": n / makespan if makespan > 0 else 0.0,
        "hbm_hit_rate": hits / n,
        "switches": switches,
        "prefetched_switches": prefetch_started,
        "evictions": sum(m.stats["evictions"] for m in groups),
        "mean_switch_stall_s": stall / n,
        "compute_utilisation": busy / (makespan * ng) if makespan > 0 else 0.0,
        "bytes_copied": bytes_copied,
        "bytes_hbm_read": platform.hbm_bytes_per_request * n,
        "bytes_allreduce": platform.allreduce_bytes_per_request * n,
        "experts_cacheable_per_group": groups[0].capacity_experts(registry[names[0]]),
        "groups": ng,
    }


def _node_platform(cfg: SimConfig, registry: ExpertRegistry, pair: PairBandwidth) -> tuple[_Platform, dict]:
    node = node_preset(cfg.node)
    if cfg.sockets != node.sockets:
        node = NodePreset(**{**asdict(node), "sockets": cfg.sockets})
    spe = cfg.spe
    groups_sock = [tuple(range(g * spe, (g + 1) * spe)) for g in range(cfg.sockets // spe)]
    cache = _cache_bytes(cfg, next(iter(registry)), spe)
    memories = {s: SocketMemory(s, ddr_bytes=int(node.ddr_gib * GIB), hbm_bytes=int(node.hbm_gib * GIB),
                                sram_bytes=int(node.sram_mib * (1 << 20)),
                                router_bytes=2 * ROUTER_FEATURES * ROUTER_CLASSES,
                                kv_bytes=int(cfg.kv_gib * GIB), expert_cache_bytes=cache)
                for s in range(cfg.sockets)}
    e0 = next(iter(registry))
    total_home = sum(e.shard_lines(spe) for e in registry) * 64 * spe
    node_ddr = cfg.sockets * node.ddr_gib * GIB
    node_count = max(1, math.ceil(total_home / node_ddr))
    if node_count > 1:
        raise ValueError(f"the experts need {total_home / GIB:.0f} GiB of DDR, one node has "
                         f"{node_ddr / GIB:.0f} GiB; the model serves one node (use fewer or smaller "
                         "experts)")
    registry.place_homes(memories, groups_sock)
    socket_GBps = node.socket_copy_GBps(pair)
    remote_GBps = min(socket_GBps, node.network_GBps)

    def copy_seconds(expert, sockets):
        worst = 0.0
        for k, target in enumerate(sockets):
            shard = expert.home[k]
            bw = socket_GBps if shard.socket == target else remote_GBps
            worst = max(worst, shard.nbytes / (bw * GB))
        return worst

    managers = [ResidencyManager(memories, gs, registry, cfg.policy, copy_seconds, name=f"node group {i}")
                for i, gs in enumerate(groups_sock)]
    dev = Device("SN40L socket", node.peak_tflops, node.hbm_peak_GBps, node.network_GBps)
    shape = RequestShape(cfg.batch, cfg.prompt_tokens, cfg.tokens)
    rt = request_time(e0.arch, e0.params, shape, dev, spe)
    rs = router_time(ROUTER_FEATURES, ROUTER_CLASSES, cfg.batch, dev)
    kv = e0.arch.kv_bytes_per_token * (cfg.prompt_tokens + cfg.tokens) * cfg.batch
    derivation = node.copy_derivation(pair, spe).split("\n")
    # on-chip buffers of the running request per socket: one layer's activations of the prompt in
    # fp32 (the largest stage buffer of a fused decoder layer: the FFN's hidden activations)
    sram = cfg.batch * max(cfg.prompt_tokens, 1) * (e0.arch.d_model + e0.arch.ffn) * 4 // spe
    sram = min(sram, int(node.sram_mib * (1 << 20)) // 2)
    plat = _Platform("node", managers, rt.total_s, rs, kv, socket_GBps * spe, derivation, rt.hbm_bytes,
                     rt.allreduce_bytes, spe, sram_bytes=sram)
    info = {"node_count": node_count, "request_time": rt, "node": node,
            "node_ddr_to_hbm_GBps": node.node_copy_GBps(pair)}
    return plat, info


def _baseline_platform(cfg: SimConfig, registry: ExpertRegistry) -> tuple[_Platform, dict]:
    gpu = gpu_baseline(cfg.baseline)
    gpe = cfg.gpus_per_expert
    cache = _cache_bytes(cfg, next(iter(registry)), gpe)
    memories = {k: SocketMemory(k, ddr_bytes=0, hbm_bytes=int(gpu.hbm_gib * GIB), sram_bytes=0,
                                router_bytes=2 * ROUTER_FEATURES * ROUTER_CLASSES,
                                kv_bytes=int(cfg.kv_gib * GIB), expert_cache_bytes=cache)
                for k in range(gpu.gpus)}
    link = gpu.host_link_GBps * cfg.baseline_links

    def copy_seconds(expert, gpus):
        return expert.shard_lines(len(gpus)) * 64 * len(gpus) / (link * GB)

    groups = [tuple(range(g * gpe, (g + 1) * gpe)) for g in range(gpu.gpus // gpe)]
    managers = [ResidencyManager(memories, gs, registry, cfg.policy, copy_seconds,
                                 name=f"{gpu.name} group {i}")
                for i, gs in enumerate(groups)]
    e0 = next(iter(registry))
    dev = Device(gpu.name, gpu.peak_tflops, gpu.hbm_GBps, gpu.nvlink_GBps)
    shape = RequestShape(cfg.batch, cfg.prompt_tokens, cfg.tokens)
    rt = request_time(e0.arch, e0.params, shape, dev, gpe)
    rs = router_time(ROUTER_FEATURES, ROUTER_CLASSES, cfg.batch, dev)
    kv = e0.arch.kv_bytes_per_token * (cfg.prompt_tokens + cfg.tokens) * cfg.batch
    derivation = [f"{gpu.name} host->GPU = {gpu.host_link_GBps:.0f} GB/s/link x {cfg.baseline_links} link(s) "
                  f"per switch = {link:.0f} GB/s"]
    plat = _Platform(gpu.name, managers, rt.total_s, rs, kv, link, derivation, rt.hbm_bytes,
                     rt.allreduce_bytes, gpe)
    # footprint: DGX nodes that hold every expert in GPU HBM (no switching): all of each GPU's HBM
    # but the router and KV regions, whatever expert cache the simulation was given
    full = SocketMemory(0, ddr_bytes=0, hbm_bytes=int(gpu.hbm_gib * GIB), sram_bytes=0,
                        router_bytes=2 * ROUTER_FEATURES * ROUTER_CLASSES, kv_bytes=int(cfg.kv_gib * GIB))
    per_group = full.hbm.region_lines("experts") // e0.shard_lines(gpe)
    per_node_capacity = per_group * len(groups)
    count_capacity = math.ceil(cfg.experts / per_node_capacity) if per_node_capacity else math.inf
    info = {"gpu": gpu, "request_time": rt, "link_GBps": link,
            "baseline_node_count": count_capacity,
            "baseline_node_count_one_expert_per_gpu": math.ceil(cfg.experts / gpu.gpus),
            "experts_per_dgx_by_capacity": per_node_capacity,
            "host_memory_fits": registry.total_bytes <= gpu.host_memory_gib * GIB}
    return plat, info


def simulate(cfg: SimConfig, *, pair: PairBandwidth | None = None) -> dict:
    """Run the node and the baseline on the same trace; return the report (JSON-ready)."""
    cfg.validate()
    pair = pair or measured_pair_bandwidth()
    reg_node = sized_registry(cfg.experts, cfg.params_per_expert)
    reg_base = sized_registry(cfg.experts, cfg.params_per_expert)
    trace = make_trace(cfg.experts, cfg.requests, skew=cfg.skew, seed=cfg.seed)
    node, ninfo = _node_platform(cfg, reg_node, pair)
    base, binfo = _baseline_platform(cfg, reg_base)
    n = _run(node, reg_node, trace, cfg)
    b = _run(base, reg_base, trace, cfg)
    e0 = next(iter(reg_node))
    expert_bytes = e0.shard_lines(cfg.spe) * 64 * cfg.spe
    switch = expert_bytes / (node.switch_GBps * GB)
    base_bytes = e0.shard_lines(cfg.gpus_per_expert) * 64 * cfg.gpus_per_expert
    base_switch = base_bytes / (base.switch_GBps * GB)
    rt_n, rt_b = ninfo["request_time"], binfo["request_time"]
    out = {
        "experts": cfg.experts, "sockets": cfg.sockets, "requests": cfg.requests, "policy": cfg.policy,
        "baseline": cfg.baseline, "batch": cfg.batch, "tokens": cfg.tokens,
        "prompt_tokens": cfg.prompt_tokens, "seed": cfg.seed, "skew": cfg.skew, "prefetch": cfg.prefetch,
        "params_per_expert": cfg.params_per_expert,
        "expert_bytes": expert_bytes, "architecture": e0.arch.describe(),
        "sockets_per_expert": cfg.spe, "gpus_per_expert": cfg.gpus_per_expert,
        "baseline_links": cfg.baseline_links, "lookahead": cfg.lookahead,
        "hbm_cache_GiB_per_device": None if cfg.hbm_cache_gib is None else cfg.hbm_cache_gib,
        "cache_experts": cfg.cache_experts,
        "kv_region_GiB_per_device": cfg.kv_gib,
        "node_ddr_to_hbm_GBps": round(ninfo["node_ddr_to_hbm_GBps"], 3),
        "switch_GBps": round(node.switch_GBps, 3),
        "pair_GBps": pair.GBps, "pair_source": pair.source,
        "baseline_host_to_gpu_GBps": base.switch_GBps,
        "switch_time_s": switch, "baseline_switch_time_s": base_switch,
        "switch_speedup": base_switch / switch,
        "request_compute_s": rt_n.total_s, "baseline_request_compute_s": rt_b.total_s,
        "router_s": node.router_s, "baseline_router_s": base.router_s,
        "requests_per_s": n["requests_per_s"], "baseline_requests_per_s": b["requests_per_s"],
        "overall_speedup": n["requests_per_s"] / b["requests_per_s"] if b["requests_per_s"] else math.inf,
        "hbm_hit_rate": n["hbm_hit_rate"], "baseline_hbm_hit_rate": b["hbm_hit_rate"],
        "switches": n["switches"], "baseline_switches": b["switches"],
        "mean_switch_stall_s": n["mean_switch_stall_s"],
        "baseline_mean_switch_stall_s": b["mean_switch_stall_s"],
        "makespan_s": n["makespan_s"], "baseline_makespan_s": b["makespan_s"],
        "compute_utilisation": n["compute_utilisation"],
        "baseline_compute_utilisation": b["compute_utilisation"],
        "experts_cacheable": n["experts_cacheable_per_group"] * n["groups"],
        "baseline_experts_cacheable": b["experts_cacheable_per_group"] * b["groups"],
        "bytes_ddr_to_hbm": n["bytes_copied"], "bytes_host_to_gpu": b["bytes_copied"],
        "bytes_hbm_read": n["bytes_hbm_read"], "baseline_bytes_hbm_read": b["bytes_hbm_read"],
        "bytes_network": n["bytes_allreduce"], "baseline_bytes_nvlink": b["bytes_allreduce"],
        "node_count": ninfo["node_count"], "baseline_node_count": binfo["baseline_node_count"],
        "baseline_node_count_one_expert_per_gpu": binfo["baseline_node_count_one_expert_per_gpu"],
        "baseline_experts_per_node_by_capacity": binfo["experts_per_dgx_by_capacity"],
        "footprint_ratio": binfo["baseline_node_count"] / ninfo["node_count"],
        "baseline_host_memory_fits": binfo["host_memory_fits"],
        "decode_bound": rt_n.bound, "baseline_decode_bound": rt_b.bound,
        "derivation": node.derivation + base.derivation,
        "roofline": ROOFLINE_TEXT,
        "node_preset": ninfo["node"].describe(), "baseline_preset": binfo["gpu"].describe(),
        "assumptions": [asdict(a) for a in assumptions(ninfo["node"])],
    }
    return out
