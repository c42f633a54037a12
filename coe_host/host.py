"""The CoE host at small scale: router → switch → expert, one API over two fidelities.

:class:`CoeHost` owns a registry of small FFN experts with real bf16 weights, one socket's
three-tier memory with backing stores, a :class:`~coe_host.residency.ResidencyManager` and a
trained :class:`~coe_host.router.Router` whose weights sit in HBM. Per prompt
(:meth:`CoeHost.serve`):

1. **route** — the backend runs the router GEMM, reading its weights through a read-only
   segment on the router region;
2. **switch** — ``ensure_resident`` copies the expert DDR → HBM if missing (evicting by the
   policy; the bytes really move between the backing stores);
3. **run** — ``begin`` pins the expert and writes the request's segment table (0: the expert's
   weights, read-only; 1: the request's buffers); the backend's kernel loads its weights and
   input and stores its output only through those segments; ``end`` revokes them.

Backends: :class:`GoldenBackend` (numpy golden kernels, the fast mode) and
:class:`coe_host.rtl.RtlBackend` (the RTL-backed mode: router GEMM, DDR → HBM copies and fused
FFN kernels on the simulated RTL; it serves the whole trace batched, see :mod:`coe_host.rtl`).
"""

from __future__ import annotations

import numpy as np

from .backend import Served, bytes_to_words, words_to_bytes
from .experts import LINE_BYTES, ExpertRegistry, small_ffn_registry
from .golden import argmax_words, ffn_forward, gemm_bf16, to_bf16_words
from .memory import SegmentTable, SocketMemory
from .residency import SEG_REQUEST, SEG_WEIGHTS, Grant, ResidencyManager
from .router import Router, featurize, make_prompts, train

__all__ = ["GoldenBackend", "CoeHost", "Served", "make_backend", "run_rtl_demo"]


class GoldenBackend:
    """Fast mode: numpy golden kernels that touch memory only through their segment tables."""

    name = "golden"

    def route(self, router_table: SegmentTable, router: Router, prompts: list[str]) -> np.ndarray:
        raw = router_table.load(0, 0, router.features * len(router.classes) * 2)
        weights = bytes_to_words(raw, (router.features, len(router.classes)))
        x = to_bf16_words(featurize(prompts, router.features))
        return argmax_words(gemm_bf16(x, weights))

    def run_expert(self, expert, grant: Grant, socket: int, x_words: np.ndarray) -> np.ndarray:
        table = grant.tables[socket]
        d, f = expert.arch.d_model, expert.arch.ffn
        w1 = bytes_to_words(table.load(SEG_WEIGHTS, 0, d * f * 2), (d, f))
        w2 = bytes_to_words(table.load(SEG_WEIGHTS, d * f * 2, f * d * 2), (f, d))
        table.store(SEG_REQUEST, 0, words_to_bytes(x_words))
        x = bytes_to_words(table.load(SEG_REQUEST, 0, x_words.size * 2), x_words.shape)
        y = ffn_forward(x, w1, w2)
        out_at = -(-x_words.size * 2 // LINE_BYTES) * LINE_BYTES
        table.store(SEG_REQUEST, out_at, words_to_bytes(y))
        return bytes_to_words(table.load(SEG_REQUEST, out_at, y.size * 2), y.shape)


def make_backend(name: str, **kwargs):
    """The backend called ``name`` (``golden`` or ``rtl``; ``kwargs`` go to the RTL backend)."""
    if name == "golden":
        return GoldenBackend()
    if name == "rtl":
        from .rtl import RtlBackend

        return RtlBackend(**kwargs)
    raise ValueError(f"unknown backend {name!r}; known: golden, rtl")


class CoeHost:
    """Small-scale CoE host (one socket) with real weights; see the module text."""

    def __init__(self, experts: int = 3, *, d_model: int = 32, ffn: int = 64, cache_experts: int = 2,
                 policy: str = "lru", backend: str = "golden", seed: int = 0, train_n: int = 1500,
                 router_features: int = 256, backend_options: dict | None = None):
        self.backend = make_backend(backend, **(backend_options or {}))
        self.registry: ExpertRegistry = small_ffn_registry(experts, d_model, ffn, seed=seed)
        e0 = next(iter(self.registry))
        prompts, labels = make_prompts(train_n, seed=seed)
        self.router = train(prompts, labels, features=router_features, seed=seed)
        self.memory = SocketMemory(0, ddr_bytes=4 << 20, hbm_bytes=2 << 20, sram_bytes=1 << 20,
                                   router_bytes=self.router.nbytes, kv_bytes=64 << 10,
                                   expert_cache_bytes=cache_experts * e0.lines * LINE_BYTES, backing=True)
        self.registry.place_homes({0: self.memory}, [(0,)])
        self.manager = ResidencyManager({0: self.memory}, (0,), self.registry, policy, name="socket 0")
        region = self.memory.hbm.allocate("router", -(-self.router.nbytes // LINE_BYTES), owner="router")
        self.memory.hbm.write(region.base * LINE_BYTES, words_to_bytes(self.router.weights))
        self.router_table = SegmentTable(self.memory.hbm)
        self.router_table.grant(0, region, read=True, write=False)
        names = self.registry.names
        self.expert_of_domain = {d: names[i % len(names)] for i, d in enumerate(self.router.classes)}
        self._requests = 0
        self._rng = np.random.default_rng(seed)

    def next_request_id(self) -> str:
        """A new request's id (``q0``, ``q1``, ...), unique on this host."""
        rid = f"q{self._requests}"
        self._requests += 1
        return rid

    def embed(self, prompt: str) -> np.ndarray:
        """The request's input activations: (1, d_model) bf16 words from the prompt's hashed words."""
        d = next(iter(self.registry)).arch.d_model
        x = featurize([prompt], d + 1)[:, :d] / 4.0
        return to_bf16_words(x)

    def serve(self, prompts: list[str]) -> list[Served]:
        """Route, switch and run every prompt in order (one request each)."""
        if hasattr(self.backend, "serve"):          # the RTL backend batches its simulations
            return self.backend.serve(self, prompts).served
        out = []
        classes = self.backend.route(self.router_table, self.router, prompts)
        for prompt, cls in zip(prompts, classes, strict=True):
            domain = self.router.classes[int(cls)]
            name = self.expert_of_domain[domain]
            expert = self.registry[name]
            sw = self.manager.ensure_resident(name)
            rid = self.next_request_id()
            x = self.embed(prompt)
            grant = self.manager.begin(rid, name, 2 * x.size * 2 + LINE_BYTES)
            try:
                y = self.backend.run_expert(expert, grant, 0, x)
            finally:
                self.manager.end(rid, retain_kv=False)
            expected = ffn_forward(x, expert.weights["w1"], expert.weights["w2"])
            out.append(Served(prompt, domain, name, sw.hit, sw.bytes_copied, sw.evicted, y, expected))
        self.manager.check()
        return out


def run_rtl_demo(experts: int = 3, simulator: str = "verilator", *, prompts: int = 12, cache_experts: int = 2,
                 policy: str = "lru", seed: int = 0, build_root=None, work_dir=None, say=None):
    """``openrdu coe demo``: a :class:`CoeHost` with the RTL backend on ``prompts`` generated
    requests (seed ``seed + 1``, as the golden demo); returns the backend's
    :class:`coe_host.rtl.DemoResult`."""
    from .rtl import ROUTER_FEATURES

    host = CoeHost(experts, cache_experts=cache_experts, policy=policy, seed=seed, backend="rtl",
                   router_features=ROUTER_FEATURES,
                   backend_options={"simulator": simulator, "build_root": build_root, "work_dir": work_dir,
                                    "say": say})
    requests, _ = make_prompts(prompts, seed=seed + 1)
    return host.backend.serve(host, requests)
