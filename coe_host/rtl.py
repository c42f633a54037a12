"""Hooks of the RTL-backed mode (``openrdu coe demo``) — not built yet.

The RTL-backed mode runs the same :class:`coe_host.host.CoeHost` flow as the golden mode, with
:class:`RtlBackend` in place of :class:`coe_host.host.GoldenBackend`:

* **switch** — each missing expert's weights really travel DDR → HBM: the host writes the
  source and destination segments (:meth:`coe_host.memory.SegmentTable.grant` already builds
  the :class:`hdl.agcu.config.Segment` entries, ``sim.system.segment_payload`` encodes them)
  and runs the copy path of :mod:`hdl.dma` / :mod:`sim.dma` (DDR4-3200 → HBM2-2000 through
  two AGCUs); bytes copied and switch counts must match the request trace;
* **router** — the bf16 GEMM of :class:`coe_host.router.Router` as a kernel on the tile of
  :class:`hdl.system.TileSystem` (weights in HBM, features as a kernel argument buffer),
  logits equal to :meth:`Router.logits` bit for bit;
* **expert** — the FFN of the small experts (:func:`coe_host.golden.ffn_forward`) as one fused
  kernel on the tile, its AGCUs given exactly the grant's segments (0: weights, read-only;
  1: the request's buffers), outputs equal to numpy on Icarus and Verilator.

All three need the fused GEMM/FFN kernels and the kernel compiler of issue 8 ("Kernel compiler
and fused kernels on the RTL fabric"), which do not exist yet; every entry point below raises
:class:`NotImplementedError` naming that reason, so a caller fails loudly instead of silently
falling back to the golden model.
"""

from __future__ import annotations

__all__ = ["RTL_PENDING", "RtlBackend", "run_rtl_demo", "run_router_rtl"]

RTL_PENDING = ("the RTL-backed CoE mode needs the fused GEMM/FFN kernels and the kernel compiler of "
               "issue 8 (not built yet); use the golden mode (`openrdu coe demo --backend golden`) meanwhile")


class RtlBackend:
    """Backend that runs copies and kernels on the RTL simulator (Icarus or Verilator)."""

    name = "rtl"

    def __init__(self, simulator: str = "verilator", *, build_dir: str = "build/coe"):
        self.simulator = simulator
        self.build_dir = build_dir
        raise NotImplementedError(RTL_PENDING)

    def copy_expert(self, manager, expert, now: float = 0.0):     # pragma: no cover - hook
        raise NotImplementedError(RTL_PENDING)

    def route(self, router, prompts, grant):                      # pragma: no cover - hook
        raise NotImplementedError(RTL_PENDING)

    def run_expert(self, expert, grant, x_words):                 # pragma: no cover - hook
        raise NotImplementedError(RTL_PENDING)


def run_router_rtl(router, prompts, simulator: str = "verilator"):
    """The router GEMM on the tile; must equal :meth:`coe_host.router.Router.logits`."""
    raise NotImplementedError(RTL_PENDING)


def run_rtl_demo(experts: int = 3, simulator: str = "verilator", **kwargs):
    """``openrdu coe demo``: :class:`coe_host.host.CoeHost` with :class:`RtlBackend`."""
    raise NotImplementedError(RTL_PENDING)
