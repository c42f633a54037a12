"""The machines the CoE host models: an SN40L node and the DGX baselines, with every figure named.

Everything the node model (:mod:`coe_host.nodemodel`) knows about hardware comes from here:

* :func:`measured_pair_bandwidth` — the DDR → HBM copy bandwidth of one DDR4-3200 → HBM2-2000
  channel pair measured on our RTL (``docs/data/ddr_to_hbm_copy.json``, written by
  ``openrdu mem-bench --copy``), with :data:`MEASURED_PAIR_GBPS` as the documented fallback.
* :class:`NodePreset` — an SN40L node: sockets, per-socket DDR/HBM channel counts (the DRAM
  presets of :mod:`hdl.memctrl.timing`), capacities, peak bf16 FLOPs, inter-socket network.
  :meth:`NodePreset.copy_derivation` prints how the per-pair figure becomes a node figure.
* :class:`GpuPreset` — a DGX node (8 GPUs) whose experts come over host → GPU links.
* :class:`Assumption` — a named assumption with its value and why it was chosen;
  :func:`assumptions` lists every one of them for the CLI and the report.

Units: bandwidths in GB/s (10^9 bytes/s, as ``DramTiming.peak_gbps``); capacities in GiB
(2^30 bytes: DRAM devices are binary-sized); parameter counts and FLOPs are plain numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from hdl.memctrl.timing import DramTiming, timing_preset

__all__ = ["GIB", "GB", "MEASURED_PAIR_GBPS", "COPY_JSON", "Assumption", "PairBandwidth",
           "measured_pair_bandwidth", "NodePreset", "GpuPreset", "NODE_PRESETS", "GPU_BASELINES",
           "node_preset", "gpu_baseline", "ROOFLINE_EFFICIENCY", "ALLREDUCE_LATENCY_S", "assumptions"]

GIB = 1 << 30
GB = 10 ** 9

#: DDR → HBM copy bandwidth of one DDR4-3200 → HBM2-2000 channel pair through two AGCUs, GB/s,
#: as measured on Verilator (``openrdu mem-bench --copy --bytes 1048576``, docs/memory.md):
#: 1 MiB in 44.194 µs, DDR-bound at 92.7 % of the DDR4 channel's 25.6 GB/s. Used only when
#: :data:`COPY_JSON` is missing or unreadable; it equals that file's ``copy_GBps``.
MEASURED_PAIR_GBPS = 23.727

#: Where ``openrdu mem-bench --copy`` keeps its measurement.
COPY_JSON = Path(__file__).resolve().parent.parent / "docs" / "data" / "ddr_to_hbm_copy.json"

#: Fraction of peak FLOPs and of peak HBM bandwidth a fused decoder reaches, on every platform
#: (docs/architecture.md, Reference figures: SN40L: a fused decoder layer uses ~85 % of HBM
#: bandwidth on the SN40L; the same fraction is applied to the GPUs so that the comparison does
#: not hinge on it).
ROOFLINE_EFFICIENCY = 0.85

#: Fixed cost of one tensor-parallel all-reduce (synchronisation, launch), every platform.
ALLREDUCE_LATENCY_S = 5e-6


@dataclass(frozen=True)
class Assumption:
    """A figure the model uses that is not measured on our RTL."""

    name: str
    value: str
    why: str


@dataclass(frozen=True)
class PairBandwidth:
    """The per-channel-pair DDR → HBM copy bandwidth and where it came from."""

    GBps: float
    source: str
    ddr: str
    hbm: str
    measured: bool


def measured_pair_bandwidth(path: Path | str | None = None) -> PairBandwidth:
    """The measured copy bandwidth of one channel pair (``docs/data/ddr_to_hbm_copy.json``).

    Falls back to :data:`MEASURED_PAIR_GBPS` (the same measurement, copied here) when the file
    is missing or does not hold a positive ``copy_GBps``; ``source`` says which was used.
    """
    path = COPY_JSON if path is None else Path(path)
    try:
        data = json.loads(path.read_text())
        value = float(data["copy_GBps"])
        if not value > 0 or not math.isfinite(value):
            raise ValueError(f"copy_GBps must be positive, got {value}")
        try:
            shown = str(path.relative_to(COPY_JSON.parent.parent.parent))
        except ValueError:
            shown = str(path)
        return PairBandwidth(value, f"measured on RTL, {data.get('sim', '?')}: {shown}",
                             str(data.get("ddr", "DDR4-3200")), str(data.get("hbm", "HBM2-2000")), True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return PairBandwidth(MEASURED_PAIR_GBPS,
                             f"fallback constant coe_host.platform.MEASURED_PAIR_GBPS ({path} unusable: "
                             f"{exc})",
                             "DDR4-3200", "HBM2-2000", False)


@dataclass(frozen=True)
class NodePreset:
    """An SN40L-class node (docs/architecture.md, Reference figures: SN40L), per socket unless said
    otherwise.

    Attributes
    ----------
    sockets : int
        RDU sockets in the node (8).
    ddr, hbm : str
        DRAM timing presets (:mod:`hdl.memctrl.timing`) of the two tiers; the measured copy pair
        is DDR4-3200 → HBM2-2000.
    ddr_channels, hbm_channels : int
        Channels per socket. 8 DDR4-3200 channels give 8 × 25.6 = 204.8 GB/s peak, the SN40L's
        "~200 GB/s DDR"; 64 HBM2-2000 channels (8 stacks × 8) give 2.048 TB/s, its "~1.8–2 TB/s".
    ddr_gib, hbm_gib, sram_mib : float
        Capacities: up to 1.5 TB DDR, 64 GB HBM, 520 MB on-chip SRAM (docs/architecture.md,
        Reference figures: SN40L).
    peak_tflops : float
        bf16 TFLOPS per socket (638).
    network_GBps : float
        Inter-socket (peer-to-peer) bandwidth of one socket, each direction.
    """

    name: str = "sn40l-node"
    sockets: int = 8
    ddr: str = "DDR4-3200"
    hbm: str = "HBM2-2000"
    ddr_channels: int = 8
    hbm_channels: int = 64
    ddr_gib: float = 1536.0
    hbm_gib: float = 64.0
    sram_mib: float = 520.0
    peak_tflops: float = 638.0
    network_GBps: float = 100.0

    @property
    def ddr_timing(self) -> DramTiming:
        return timing_preset(self.ddr)

    @property
    def hbm_timing(self) -> DramTiming:
        return timing_preset(self.hbm)

    @property
    def ddr_peak_GBps(self) -> float:
        """DDR peak per socket."""
        return self.ddr_channels * self.ddr_timing.peak_gbps

    @property
    def hbm_peak_GBps(self) -> float:
        """HBM peak per socket."""
        return self.hbm_channels * self.hbm_timing.peak_gbps

    @property
    def copy_pairs(self) -> int:
        """DDR → HBM channel pairs per socket: each DDR channel streams into its own HBM channel."""
        return min(self.ddr_channels, self.hbm_channels)

    def socket_copy_GBps(self, pair: PairBandwidth | None = None) -> float:
        pair = pair or measured_pair_bandwidth()
        return pair.GBps * self.copy_pairs

    def node_copy_GBps(self, pair: PairBandwidth | None = None) -> float:
        return self.socket_copy_GBps(pair) * self.sockets

    def copy_derivation(self, pair: PairBandwidth | None = None,
                        sockets_per_expert: int | None = None) -> str:
        """How the measured per-pair figure becomes the node's (and one expert's) copy bandwidth."""
        pair = pair or measured_pair_bandwidth()
        per_socket = self.socket_copy_GBps(pair)
        lines = [
            f"channel pair {pair.ddr} -> {pair.hbm}: {pair.GBps:.3f} GB/s ({pair.source})",
            f"socket DDR->HBM = {pair.GBps:.2f} GB/s/pair x {self.copy_pairs} DDR channels per socket "
            f"= {per_socket:.1f} GB/s (DDR peak {self.ddr_peak_GBps:.1f} GB/s, "
            f"{pair.GBps / self.ddr_timing.peak_gbps:.1%} of it)",
            f"node DDR->HBM = {pair.GBps:.2f} GB/s/pair x {self.copy_pairs} DDR channels per socket "
            f"x {self.sockets} sockets = {self.node_copy_GBps(pair):.1f} GB/s",
        ]
        if sockets_per_expert is not None and sockets_per_expert != self.sockets:
            lines.append(f"one expert sharded over {sockets_per_expert} socket(s) loads at "
                         f"{per_socket * sockets_per_expert:.1f} GB/s")
        return "\n".join(lines)

    def describe(self) -> dict:
        return {"name": self.name, "sockets": self.sockets, "ddr": self.ddr, "hbm": self.hbm,
                "ddr_channels_per_socket": self.ddr_channels, "hbm_channels_per_socket": self.hbm_channels,
                "ddr_GiB_per_socket": self.ddr_gib, "hbm_GiB_per_socket": self.hbm_gib,
                "sram_MiB_per_socket": self.sram_mib, "peak_tflops_per_socket": self.peak_tflops,
                "ddr_peak_GBps_per_socket": round(self.ddr_peak_GBps, 1),
                "hbm_peak_GBps_per_socket": round(self.hbm_peak_GBps, 1),
                "network_GBps_per_socket": self.network_GBps}


@dataclass(frozen=True)
class GpuPreset:
    """A DGX node: ``gpus`` GPUs whose experts come from host memory over PCIe.

    ``host_link_GBps`` is the host → GPU figure the paper compares with (64 GB/s H100,
    32 GB/s A100: one PCIe Gen5 / Gen4 x16 link, one direction).
    """

    name: str
    gpus: int
    hbm_gib: float
    hbm_GBps: float
    peak_tflops: float
    host_link_GBps: float
    nvlink_GBps: float
    host_memory_gib: float
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> dict:
        return {"name": self.name, "gpus": self.gpus, "hbm_GiB_per_gpu": self.hbm_gib,
                "hbm_GBps_per_gpu": self.hbm_GBps, "peak_tflops_per_gpu": self.peak_tflops,
                "host_link_GBps": self.host_link_GBps, "nvlink_GBps_per_gpu": self.nvlink_GBps,
                "host_memory_GiB": self.host_memory_gib}


NODE_PRESETS = {p.name: p for p in (NodePreset(),)}

GPU_BASELINES = {g.name: g for g in (
    GpuPreset("dgx-h100", gpus=8, hbm_gib=80.0, hbm_GBps=3350.0, peak_tflops=989.0, host_link_GBps=64.0,
              nvlink_GBps=450.0, host_memory_gib=2048.0,
              notes=("H100 SXM5: 80 GB HBM3 at 3.35 TB/s, 989 dense bf16 TFLOPS, NVLink 4 900 GB/s "
                     "bidirectional; PCIe Gen5 x16 host link 64 GB/s (the paper's figure)",)),
    GpuPreset("dgx-a100", gpus=8, hbm_gib=80.0, hbm_GBps=2039.0, peak_tflops=312.0, host_link_GBps=32.0,
              nvlink_GBps=300.0, host_memory_gib=2048.0,
              notes=("A100 SXM4 80 GB: HBM2e at 2.039 TB/s, 312 dense bf16 TFLOPS, NVLink 3 600 GB/s "
                     "bidirectional; PCIe Gen4 x16 host link 32 GB/s (the paper's figure)",)),
)}


def node_preset(name: str = "sn40l-node") -> NodePreset:
    try:
        return NODE_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown node preset {name!r}; known: {', '.join(NODE_PRESETS)}") from None


def gpu_baseline(name: str) -> GpuPreset:
    try:
        return GPU_BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(GPU_BASELINES)}") from None


def assumptions(node: NodePreset | None = None) -> list[Assumption]:
    """Every figure of the node model that is not measured on our RTL, with its reason."""
    node = node or NodePreset()
    pair = measured_pair_bandwidth()
    return [
        Assumption("DDR->HBM per channel pair", f"{pair.GBps:.3f} GB/s",
                   f"measured, not assumed ({pair.source}); every pair of the node is taken to reach it"),
        Assumption("DDR channels per socket", f"{node.ddr_channels} x {node.ddr}",
                   f"{node.ddr_channels} x {node.ddr_timing.peak_gbps:.1f} = {node.ddr_peak_GBps:.1f} GB/s "
                   "matches the SN40L's ~200 GB/s DDR per socket (SN40L figures, docs/architecture.md)"),
        Assumption("HBM channels per socket", f"{node.hbm_channels} x {node.hbm}",
                   f"{node.hbm_peak_GBps / 1000:.3f} TB/s peak matches the SN40L's ~1.8-2 TB/s; "
                   "at least one HBM channel per DDR channel, so copies stay DDR-bound as measured"),
        Assumption("copy engines", "one AGCU pair per DDR channel",
                   "the measured path uses two AGCUs per pair; an SN40L socket has far more AGCUs"),
        Assumption("capacities per socket", f"DDR {node.ddr_gib:.0f} GiB, HBM {node.hbm_gib:.0f} GiB, "
                   f"SRAM {node.sram_mib:.0f} MiB",
                   "SN40L figures, docs/architecture.md (1.5 TB DDR, 64 GB HBM, 520 MB SRAM)"),
        Assumption("peak compute per socket", f"{node.peak_tflops:.0f} bf16 TFLOPS",
                   "SN40L figures, docs/architecture.md"),
        Assumption("inter-socket network", f"{node.network_GBps:.0f} GB/s per socket per direction",
                   "not among the SN40L figures of docs/architecture.md; enters the bandwidth term of "
                   "the tensor-parallel all-reduces "
                   "(it matters in prefill, whose messages are prompt x batch x d_model) and copies from "
                   "another socket's DDR (none with the default placement)"),
        Assumption("roofline efficiency", f"{ROOFLINE_EFFICIENCY:.0%} of peak FLOPs and HBM bandwidth",
                   "SN40L figures, docs/architecture.md (fused decoder layer ~85 % of HBM BW); "
                   "the same on the GPUs"),
        Assumption("all-reduce latency", f"{ALLREDUCE_LATENCY_S * 1e6:.0f} us per tensor-parallel all-reduce",
                   "2 per layer per step; the same on every platform, so it hardly moves the ratios"),
        Assumption("GPU figures", "H100 80 GB 3.35 TB/s 989 TFLOPS; A100 80 GB 2.039 TB/s 312 TFLOPS",
                   "vendor data sheets (SXM, dense bf16)"),
        Assumption("host->GPU per switch", "64 GB/s (H100), 32 GB/s (A100) x --baseline-links (default 1)",
                   "the paper's figures; it compares a whole switch with one link's bandwidth"),
    ]
