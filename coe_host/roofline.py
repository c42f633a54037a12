"""Roofline time of one expert request: prefill, decode steps, tensor-parallel all-reduces.

One *request* is ``batch`` sequences routed to the same expert (the paper's "batch 8"), each
with a ``prompt``-token prompt, generating ``tokens`` tokens. The expert runs tensor-parallel
over ``devices`` sockets (or GPUs): each holds ``1/devices`` of the weights and of the KV cache.

Per step, per device (η = :data:`coe_host.platform.ROOFLINE_EFFICIENCY`)::

    t_step = max(FLOPs / (peak_FLOPs · η), HBM bytes / (HBM_BW · η)) + 2 · layers · t_allreduce
    decode step at context c:  FLOPs = (2·params + 4·layers·d_model·c) · batch / devices
                               bytes = (params · dtype_bytes + kv_bytes_per_token · c · batch) / devices
    prefill of P tokens:       FLOPs = (2·params·P + 2·layers·d_model·P²) · batch / devices
                               bytes = params · dtype_bytes / devices  (+ the KV it writes)
    t_allreduce = 2·(n−1)/n · message / link_BW + ALLREDUCE_LATENCY_S      (n = devices > 1)

Decode of a 7B model is HBM-bound at batch 8: every step streams all weights once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .experts import Architecture
from .platform import ALLREDUCE_LATENCY_S, GB, ROOFLINE_EFFICIENCY

__all__ = ["Device", "RequestShape", "RequestTime", "request_time", "router_time", "ROOFLINE_TEXT"]

ROOFLINE_TEXT = ("t_step = max(FLOPs/(peak x eta), HBM bytes/(HBM BW x eta)) + 2 x layers x all-reduce; "
                 f"eta = {ROOFLINE_EFFICIENCY:.2f}; decode streams all weights (bf16) + KV each step; "
                 f"all-reduce = 2(n-1)/n x B x d_model x 2 bytes / link + {ALLREDUCE_LATENCY_S * 1e6:.0f} us")


@dataclass(frozen=True)
class Device:
    """One socket or GPU as the roofline sees it."""

    name: str
    peak_tflops: float
    hbm_GBps: float
    link_GBps: float        # tensor-parallel link (inter-socket network / NVLink), per direction


@dataclass(frozen=True)
class RequestShape:
    batch: int
    prompt: int
    tokens: int


@dataclass(frozen=True)
class RequestTime:
    prefill_s: float
    decode_s: float
    allreduce_s: float
    total_s: float
    first_step_s: float
    flops: float
    hbm_bytes: float
    allreduce_bytes: float
    bound: str              # "memory" or "compute" for the decode steps

    def describe(self) -> dict:
        return {k: (round(v, 9) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _allreduce(message_bytes: float, devices: int, dev: Device) -> tuple[float, float]:
    """(seconds, bytes on the wire per device) of one ring all-reduce."""
    if devices <= 1:
        return 0.0, 0.0
    wire = 2 * (devices - 1) / devices * message_bytes
    return wire / (dev.link_GBps * GB) + ALLREDUCE_LATENCY_S, wire


def request_time(arch: Architecture, params: float, shape: RequestShape, dev: Device, devices: int,
                 *, efficiency: float = ROOFLINE_EFFICIENCY) -> RequestTime:
    """Roofline time of one request on ``devices`` tensor-parallel devices (see the module text)."""
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    flops_rate = dev.peak_tflops * 1e12 * efficiency
    bw = dev.hbm_GBps * GB * efficiency
    wbytes = params * arch.dtype_bytes
    kv_tok = arch.kv_bytes_per_token
    B, P, T = shape.batch, shape.prompt, shape.tokens
    L, d = arch.layers, arch.d_model
    act = B * d * arch.dtype_bytes          # one token's activations of the batch, bf16

    flops = hbm = wire = 0.0
    ar_total = 0.0
    # prefill: compute-bound matmuls over the prompt, weights read once, KV written
    prefill = 0.0
    if P > 0:
        f = (2 * params * P + 2 * L * d * P * P) * B / devices
        b = (wbytes + kv_tok * P * B) / devices
        ar, w = _allreduce(act * P, devices, dev)
        prefill = max(f / flops_rate, b / bw) + 2 * L * ar
        flops, hbm, wire, ar_total = flops + f, hbm + b, wire + 2 * L * w, ar_total + 2 * L * ar
    decode = 0.0
    first = 0.0
    compute_bound = 0
    for i in range(T):
        c = P + i
        f = (2 * params + 4 * L * d * c) * B / devices
        b = (wbytes + kv_tok * (c + 1) * B) / devices
        ar, w = _allreduce(act, devices, dev)
        step = max(f / flops_rate, b / bw)
        compute_bound += f / flops_rate > b / bw
        decode += step + 2 * L * ar
        if i == 0:
            first = step + 2 * L * ar
        flops, hbm, wire, ar_total = flops + f, hbm + b, wire + 2 * L * w, ar_total + 2 * L * ar
    return RequestTime(prefill_s=prefill, decode_s=decode, allreduce_s=ar_total, total_s=prefill + decode,
                       first_step_s=first, flops=flops * devices, hbm_bytes=hbm * devices,
                       allreduce_bytes=wire * devices,
                       bound="compute" if compute_bound * 2 > max(T, 1) else "memory")


def router_time(features: int, classes: int, batch: int, dev: Device,
                *, efficiency: float = ROOFLINE_EFFICIENCY) -> float:
    """Roofline time of the router GEMM (``batch`` × ``features`` · ``features`` × ``classes``, bf16)."""
    f = 2 * batch * features * classes
    b = 2 * (features * classes + batch * features)
    return max(f / (dev.peak_tflops * 1e12 * efficiency), b / (dev.hbm_GBps * GB * efficiency))
