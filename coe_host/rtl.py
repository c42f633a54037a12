"""The RTL-backed CoE mode (``openrdu coe demo``): router, switches and experts on the simulated RTL.

:class:`RtlBackend` serves the same :class:`coe_host.host.CoeHost` flow as
:class:`coe_host.host.GoldenBackend` (``CoeHost(backend="rtl").serve(prompts)`` returns the same
:class:`coe_host.backend.Served` list), but every step runs on the RTL in Icarus or Verilator:

* **route** — the router's bf16 GEMM (features × classes, fp32 logits) is compiled for the
  ``tiny`` preset (``compile_kernel("gemm", …, out_dtype="f32")``) and run on the tile of
  :class:`hdl.system.TileSystem` (AGCUs, HBM2 controllers and timing-checked HBM models). The
  weights are read from the host's HBM router region through the router's read-only segment;
  the logits must equal :meth:`coe_host.router.Router.logits` bit for bit. Both evaluate
  ``acc = +0; for k in 0..K-1: acc = RNE_fp32(acc + a[:, k]·b[k, :])`` (exact bf16 products,
  one rounding per MAC), so the golden router needed no change. The tiny preset's PMUs hold
  1024 words, which caps the router at 124 hashed features (128 needs 1032 words); the RTL demo
  trains its router with :data:`ROUTER_FEATURES` features (held-out accuracy ≈ 0.69 against
  ≈ 0.83 with the golden demo's 256; routing quality is not what this mode checks).
* **switch** — every miss of :meth:`coe_host.residency.ResidencyManager.ensure_resident` becomes
  one run of the DDR4-3200 → HBM2-2000 copy path (:class:`hdl.dma.DdrToHbmCopy`: two AGCUs, two
  memory controllers, three clocks; :mod:`sim.dma`). The DDR model is preloaded with the
  expert's image from its home lines; the AGCUs get the home shard (read-only) and the HBM
  region the manager allocated (write) as segments; after the run the destination lines are
  read back out of the simulated HBM and written into the host's HBM tier — whose expert cache
  is first filled with 0xFF (bf16 NaN), so a kernel that saw host-copied bytes instead would
  produce NaN. One extra run (``fault probe``) stores one line more than the last switched
  expert's segment bound: the store AGCU must fault before any write reaches HBM.
* **expert** — each request's FFN (``y = bf16(relu(bf16(x @ w1)) @ w2)``) runs as one fused
  kernel (``compile_kernel("ffn", "tiny", (1, d_model, ffn), act="relu")``) whose ``W1`` and
  ``W2`` are the bytes the copy left in HBM, loaded through the request's segment table
  (0: the expert's weights, read-only; 1: the request's buffers). Every kernel argument is
  checked against that table before the launch (:func:`kernel_arguments`); one outside it
  raises :class:`coe_host.memory.SegmentFault` and nothing runs. Outputs must equal
  :func:`coe_host.golden.ffn_forward` on the registry's own weight arrays (numpy, independent
  of the copy path and the compiler) and the compiler's golden model, bit for bit.

The small experts need nothing the kernel lacks: their FFN has no bias and no gate, and its
ReLU and bf16 rounding of the hidden layer are what the fused kernel computes.

Simulations are batched so that the demo takes minutes on Icarus: the router is one kernel
simulation, all switches one copy-path simulation (a reset and fresh DRAM models per copy),
and all requests' FFNs one kernel simulation (:func:`sim.kernel_jobs.run_isolated`, a reset between
kernels). To batch, :meth:`RtlBackend.serve` first routes, then plans the whole trace on the
host (residency, evictions and segment tables, in request order), runs the copies, and replays
the trace in order — each switch writing the bytes its RTL copy left in HBM into the region the
manager gave it — so that every request reads exactly the weights resident at its turn.

The kernel system (``tiny``) is built once per simulator in ``<build_root>/tiny/system_<sim>``
(``build/kernels``, shared with ``openrdu run``, under a file lock); that build takes minutes
the first time and is reused while the ``hdl/`` sources do not change.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl.params import KERNEL_MEMORY

from .backend import Served, bytes_to_words, words_to_bytes
from .experts import LINE_BYTES
from .golden import argmax_words, ffn_forward, to_bf16_words
from .memory import SegmentTable
from .residency import SEG_REQUEST, SEG_WEIGHTS

__all__ = ["RtlBackend", "run_router_rtl", "kernel_arguments", "check_arguments",
           "ROUTER_FEATURES", "PRESET", "CopyJob", "DemoResult"]

#: Hardware preset of the kernels and of the copy path's fabric side.
PRESET = "tiny"
#: Router features that fit the tiny preset's PMUs (K = 128 needs 1032 words of 1024).
ROUTER_FEATURES = 124
#: Fabric clock period (ps), the one the kernel system runs at (:data:`hdl.params.KERNEL_MEMORY`).
FABRIC_PS = KERNEL_MEMORY.fabric_ps


def _default_build_root() -> Path:
    return Path(os.environ.get("OPENRDU_BUILD", "build")) / "kernels"


def _words_to_float(words: np.ndarray) -> np.ndarray:
    """bf16 words → float32 values (exact; the kernel's bf16 rounding on entry is the identity)."""
    return (np.asarray(words, np.uint32) << 16).view(np.float32)


def kernel_arguments(expert, x_words: np.ndarray) -> list[tuple[str, int, str, int, int]]:
    """The FFN kernel's arguments as segment accesses: ``(tensor, segment, direction, byte offset,
    bytes)`` — ``W1`` then ``W2`` in the weights segment, ``X`` and ``Y`` in the request's."""
    d, f = expert.arch.d_model, expert.arch.ffn
    x_bytes = int(np.asarray(x_words).size) * 2
    out_at = -(-x_bytes // LINE_BYTES) * LINE_BYTES
    return [("W1", SEG_WEIGHTS, "load", 0, d * f * 2), ("W2", SEG_WEIGHTS, "load", d * f * 2, f * d * 2),
            ("X", SEG_REQUEST, "load", 0, x_bytes), ("Y", SEG_REQUEST, "store", out_at, x_bytes)]


def check_arguments(table: SegmentTable, arguments) -> None:
    """Translate every argument through ``table``; raises :class:`SegmentFault` for one outside
    its segment (or in a direction the segment does not permit), before anything runs."""
    for _name, index, direction, offset, nbytes in arguments:
        table.translate(index, direction, offset, nbytes)


@dataclass
class CopyJob:
    """One switch: ``lines`` lines of ``expert`` from DDR line ``src_line`` to HBM line ``dst_line``."""

    expert: str
    src_line: int
    dst_line: int
    lines: int
    image: bytes                     # the DDR bytes (the copy's source, from the home region)
    request: int                     # index of the request that switched
    result: dict = field(default_factory=dict)
    hbm_bytes: bytes = b""           # what the simulated HBM holds after the copy

    @property
    def nbytes(self) -> int:
        return self.lines * LINE_BYTES


@dataclass
class _Step:
    prompt: str
    domain: str
    expert: str
    switch: object                   # SwitchResult
    x: np.ndarray
    entries: dict                    # the request's segment table entries (index -> Segment)
    copy: CopyJob | None


@dataclass
class DemoResult:
    """What :meth:`RtlBackend.serve` did (``served`` as :meth:`CoeHost.serve` returns it)."""

    simulator: str
    served: list
    copies: list[CopyJob]
    fault_probe: dict
    router_logits_equal: bool
    router_bit_exact: bool
    router_cycles: int
    expert_runs: list
    timings: dict

    @property
    def switches(self) -> int:
        return sum(not s.hit for s in self.served)

    @property
    def bytes_copied(self) -> int:
        return sum(s.bytes_copied for s in self.served)

    @property
    def outputs_equal_numpy(self) -> bool:
        return all(s.exact for s in self.served)

    @property
    def copies_exact(self) -> bool:
        return all(c.result.get("equal") and c.hbm_bytes == c.image for c in self.copies)

    @property
    def kernels_bit_exact(self) -> bool:
        return all(r.bit_exact for r in self.expert_runs)

    @property
    def rtl_bytes_copied(self) -> int:
        """Bytes the simulated HBM accepted over all switches (its write count × 64)."""
        return sum(c.result["hbm"]["writes"] * LINE_BYTES for c in self.copies)

    @property
    def fault_probe_ok(self) -> bool:
        p = self.fault_probe
        return bool(p) and p["wr_fault"] == 1 and p["hbm"]["writes"] == 0 and not p["timed_out"]

    @property
    def ok(self) -> bool:
        return (self.outputs_equal_numpy and self.router_logits_equal and self.router_bit_exact
                and self.copies_exact and self.kernels_bit_exact and self.fault_probe_ok
                and self.rtl_bytes_copied == self.bytes_copied and len(self.copies) == self.switches)

    def summary(self) -> dict:
        return {"backend": "rtl", "sim": self.simulator, "requests": len(self.served),
                "switches": self.switches, "bytes_copied": self.bytes_copied,
                "rtl_copies": len(self.copies), "rtl_bytes_copied": self.rtl_bytes_copied,
                "router_logits_equal": self.router_logits_equal, "router_cycles": self.router_cycles,
                "copies_exact": self.copies_exact, "copy_cycles": sum(_cycles(c.result) for c in self.copies),
                "expert_cycles": sum(r.cycles for r in self.expert_runs),
                "kernels_bit_exact": self.kernels_bit_exact, "outputs_equal_numpy": self.outputs_equal_numpy,
                "fault_probe_faulted": self.fault_probe_ok, "ok": self.ok, "timings_s": self.timings}


def _cycles(copy_result: dict) -> int:
    return int(round(copy_result.get("elapsed_ps", 0) / FABRIC_PS))


class RtlBackend:
    """Backend that runs the router, the switches and the experts on the RTL simulator.

    Parameters
    ----------
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    build_root : path
        Shared kernel-system builds (default ``$OPENRDU_BUILD/kernels``, as ``openrdu run``).
    work_dir : path
        The copy path's build and the runs' job directories (default ``$OPENRDU_BUILD/coe/<sim>``).
    say : callable(str), optional
        Progress lines.
    """

    name = "rtl"

    def __init__(self, simulator: str = "verilator", *, build_root=None, work_dir=None,
                 say: Callable[[str], None] | None = None):
        if simulator not in ("icarus", "verilator"):
            raise ValueError(f"simulator must be 'icarus' or 'verilator', got {simulator!r}")
        self.simulator = simulator
        self.build_root = Path(build_root) if build_root else _default_build_root()
        default_work = Path(os.environ.get("OPENRDU_BUILD", "build")) / "coe" / simulator
        self.work_dir = Path(work_dir) if work_dir else default_work
        self.say = say or (lambda _msg: None)
        self.timings: dict[str, float] = {}
        self.router_run = None
        self.router_logits_equal = None

    # -- kernels -----------------------------------------------------------------------------------
    def _run_kernels(self, cases, tag: str):
        import warnings

        with warnings.catch_warnings():       # the systems built only to hash their parameters
            warnings.filterwarnings("ignore", message=".*created but never used")
            return self._run_kernels_quiet(cases, tag)

    def _run_kernels_quiet(self, cases, tag: str):
        from sim.kernel_jobs import ensure_build, run_isolated

        t0 = time.perf_counter()
        built = ensure_build(PRESET, self.simulator, self.build_root)
        if built["built"]:
            self.timings["system_build"] = self.timings.get("system_build", 0.0) + time.perf_counter() - t0
            self.say(f"  built the {PRESET} kernel system for {self.simulator} in "
                     f"{time.perf_counter() - t0:.0f} s ({built['dir']})")
        t1 = time.perf_counter()
        runs = run_isolated(cases, simulator=self.simulator, build_root=self.build_root,
                            run_dir=self.work_dir / tag, keep=True)
        # the simulator's own run (start-up included); a rebuild inside run_isolated (the hdl/
        # sources changed meanwhile) is wall time, not simulation
        self.timings[tag] = sum(r.sim_s for r in runs)
        self.timings[f"{tag}_wall"] = time.perf_counter() - t1
        return runs

    def route(self, router_table: SegmentTable, router, prompts: list[str]) -> np.ndarray:
        """Class of every prompt from the router GEMM on the RTL (one kernel simulation).

        Sets :attr:`router_logits_equal` (RTL logits == :meth:`Router.logits`, bit for bit) and
        :attr:`router_run`; raises :class:`AssertionError` when the logits differ.
        """
        from compiler import compile_kernel

        from .router import featurize

        k, n = router.features, len(router.classes)
        raw = router_table.load(0, 0, k * n * 2)
        weights = bytes_to_words(raw, (k, n))
        x = to_bf16_words(featurize(prompts, k))
        compiled = compile_kernel("gemm", PRESET, (len(prompts), k, n), out_dtype="f32")
        self.say(f"router: GEMM {len(prompts)}x{k}x{n} (bf16 in, fp32 logits) on {PRESET}, {self.simulator}")
        inputs = {"A": _words_to_float(x), "B": _words_to_float(weights)}
        run = self._run_kernels([(compiled, inputs)], "router")[0]
        self.router_run = run
        logits = np.asarray(run.words["C"], np.uint32)
        self.router_logits_equal = bool(np.array_equal(logits, router.logits(prompts)))
        if not self.router_logits_equal:
            raise AssertionError("router logits on the RTL differ from Router.logits")
        return argmax_words(logits)

    # -- switches ----------------------------------------------------------------------------------
    def copy_experts(self, copies: list[CopyJob], *, probe: CopyJob | None = None) -> dict:
        """Run every switch through the DDR → HBM copy path in one simulation; fill each job's
        ``result`` and ``hbm_bytes`` (read back from the simulated HBM). ``probe`` is a copy one
        line longer than its destination segment: returns its result (it must fault)."""
        from hdl.dma import DdrToHbmCopy
        from sim.dma import copy_run, run_copy

        path = DdrToHbmCopy(PRESET)
        run_dir = self.work_dir / "copies"
        run_dir.mkdir(parents=True, exist_ok=True)
        runs = []
        for i, job in enumerate(copies):
            src = run_dir / f"src{i}.npy"
            np.save(src, np.frombuffer(job.image, dtype="<u8").reshape(job.lines, 8))
            dump = run_dir / f"hbm{i}.npy"
            dump.unlink(missing_ok=True)
            runs.append(copy_run(path, f"switch{i}", job.lines, src_line=job.src_line, dst_line=job.dst_line,
                                 source=str(src.resolve()), dump=str(dump.resolve())))
        if probe is not None:
            runs.append(copy_run(path, "fault_probe", probe.lines + 1, src_line=probe.src_line,
                                 dst_line=probe.dst_line, dst_bound=probe.lines, seed=11))
        self.say(f"switches: {len(copies)} DDR4-3200 -> HBM2-2000 copies through the AGCUs "
                 f"({sum(c.nbytes for c in copies)} bytes){' + 1 fault probe' if probe else ''}")
        t0 = time.perf_counter()
        result, metrics = run_copy(runs, path=path, simulator=self.simulator,
                                   build_dir=self.work_dir / f"copy_path_{PRESET}")
        self.timings["copies"] = result.run_s          # the simulation (its build is copy_build)
        self.timings["copies_wall"] = time.perf_counter() - t0
        self.timings["copy_build"] = result.build_s
        if not result.passed:
            raise RuntimeError(f"copy simulation failed: {result.summary()}")
        for i, job in enumerate(copies):
            job.result = metrics[f"switch{i}"]
            lines = np.load(run_dir / f"hbm{i}.npy").astype("<u8")
            job.hbm_bytes = lines.tobytes()
        return metrics.get("fault_probe", {}) if probe is not None else {}

    def copy_expert(self, manager, expert, now: float = 0.0):
        """One switch on its own (one copy simulation): ``ensure_resident`` and, on a miss, the RTL
        copy whose read-back bytes replace the region's contents. Returns the SwitchResult."""
        sw = manager.ensure_resident(expert.name if hasattr(expert, "name") else expert, now)
        if not sw.hit:
            e = manager.registry[sw.expert]
            socket = manager.sockets[0]
            region = manager.resident[sw.expert].regions[socket]
            home = manager.memories[e.home[0].socket].ddr
            job = CopyJob(sw.expert, e.home[0].base, region.base, region.lines,
                          home.read(e.home[0].base * LINE_BYTES, region.lines * LINE_BYTES), -1)
            hbm = manager.memories[socket].hbm
            hbm.write(region.base * LINE_BYTES, b"\xff" * region.nbytes)
            self.copy_experts([job])
            hbm.write(region.base * LINE_BYTES, job.hbm_bytes)
        return sw

    # -- experts -----------------------------------------------------------------------------------
    def _expert_inputs(self, expert, table: SegmentTable, x_words: np.ndarray) -> dict:
        d, f = expert.arch.d_model, expert.arch.ffn
        args = kernel_arguments(expert, x_words)
        check_arguments(table, args)
        w1 = bytes_to_words(table.load(SEG_WEIGHTS, args[0][3], args[0][4]), (d, f))
        w2 = bytes_to_words(table.load(SEG_WEIGHTS, args[1][3], args[1][4]), (f, d))
        table.store(SEG_REQUEST, 0, words_to_bytes(x_words))
        x = bytes_to_words(table.load(SEG_REQUEST, 0, x_words.size * 2), x_words.shape)
        return {"X": _words_to_float(x), "W1": _words_to_float(w1), "W2": _words_to_float(w2)}

    def run_experts(self, jobs) -> list:
        """``jobs``: (expert, inputs) pairs (float inputs X, W1, W2): one kernel simulation."""
        from compiler import compile_kernel

        compiled = {}
        cases = []
        for expert, inputs in jobs:
            key = (inputs["X"].shape[0], expert.arch.d_model, expert.arch.ffn)
            if key not in compiled:
                compiled[key] = compile_kernel("ffn", PRESET, key, act="relu")
            cases.append((compiled[key], inputs))
        shapes = ", ".join("x".join(map(str, k)) + " relu" for k in compiled)
        self.say(f"experts: {len(cases)} fused FFN kernel(s) {shapes} on {PRESET}, {self.simulator}")
        return self._run_kernels(cases, "experts")

    def run_expert(self, expert, grant, socket: int, x_words: np.ndarray) -> np.ndarray:
        """One request's FFN on the RTL (one simulation), weights through the grant's segments."""
        inputs = self._expert_inputs(expert, grant.tables[socket], x_words)
        run = self.run_experts([(expert, inputs)])[0]
        return np.asarray(run.words["Y"], np.uint32)

    # -- the whole flow ----------------------------------------------------------------------------
    def serve(self, host, prompts: list[str]) -> DemoResult:
        """Route, switch and run every prompt of ``host`` (a :class:`CoeHost`) on the RTL, batched
        (see the module text). Returns a :class:`DemoResult`; ``.served`` is what
        :meth:`CoeHost.serve` returns."""
        t_start = time.perf_counter()
        classes = self.route(host.router_table, host.router, prompts)
        mem, manager = host.memory, host.manager
        steps: list[_Step] = []
        copies: list[CopyJob] = []
        for prompt, cls in zip(prompts, classes, strict=True):
            domain = host.router.classes[int(cls)]
            name = host.expert_of_domain[domain]
            expert = host.registry[name]
            sw = manager.ensure_resident(name)
            rid = host.next_request_id()
            x = host.embed(prompt)
            grant = manager.begin(rid, name, 2 * x.size * 2 + LINE_BYTES)
            try:
                table = grant.tables[0]
                check_arguments(table, kernel_arguments(expert, x))
                job = None
                if not sw.hit:
                    region = manager.resident[name].regions[0]
                    home = expert.home[0]
                    job = CopyJob(name, home.base, region.base, region.lines,
                                  mem.ddr.read(home.base * LINE_BYTES, region.lines * LINE_BYTES), len(steps))
                    copies.append(job)
                steps.append(_Step(prompt, domain, name, sw, x, dict(table.entries), job))
            finally:
                manager.end(rid, retain_kv=False)
        manager.check()
        last = copies[-1] if copies else None
        probe = self.copy_experts(copies, probe=last)
        # replay in request order on the host tiers: the expert cache starts as NaN, each switch
        # writes what its RTL copy left in the simulated HBM
        cache = mem.hbm.regions["experts"]
        mem.hbm.write(cache.base * LINE_BYTES, b"\xff" * (cache.lines * LINE_BYTES))
        jobs = []
        for step in steps:
            if step.copy is not None:
                mem.hbm.write(step.copy.dst_line * LINE_BYTES, step.copy.hbm_bytes)
            table = SegmentTable(mem.hbm)
            table.entries = dict(step.entries)
            expert = host.registry[step.expert]
            jobs.append((expert, self._expert_inputs(expert, table, step.x)))
        runs = self.run_experts(jobs)
        served = []
        for step, run in zip(steps, runs, strict=True):
            e = host.registry[step.expert]
            y = np.asarray(run.words["Y"], np.uint32)
            expected = ffn_forward(step.x, e.weights["w1"], e.weights["w2"])
            sw = step.switch
            served.append(Served(step.prompt, step.domain, step.expert, sw.hit, sw.bytes_copied, sw.evicted,
                                 y, expected))
        self.timings["total"] = time.perf_counter() - t_start
        return DemoResult(self.simulator, served, copies, probe, bool(self.router_logits_equal),
                          bool(self.router_run.bit_exact), self.router_run.cycles, runs, dict(self.timings))


def run_router_rtl(router, prompts, simulator: str = "verilator", **kwargs) -> np.ndarray:
    """The router GEMM on the tile; returns its fp32 logit words (equal to :meth:`Router.logits`,
    else AssertionError)."""
    from .memory import SocketMemory

    backend = RtlBackend(simulator, **kwargs)
    mem = SocketMemory(0, ddr_bytes=1 << 16, hbm_bytes=1 << 20, sram_bytes=1 << 16,
                       router_bytes=router.nbytes, kv_bytes=1 << 16, backing=True)
    region = mem.hbm.allocate("router", -(-router.nbytes // LINE_BYTES), owner="router")
    mem.hbm.write(region.base * LINE_BYTES, words_to_bytes(router.weights))
    table = SegmentTable(mem.hbm)
    table.grant(0, region, read=True, write=False)
    backend.route(table, router, prompts)
    return np.asarray(backend.router_run.words["C"], np.uint32)


def demo_json(result: DemoResult) -> str:
    out = result.summary()
    out["trace"] = [{"domain": s.domain, "expert": s.expert, "hit": s.hit, "bytes_copied": s.bytes_copied,
                     "evicted": list(s.evicted), "equal_numpy": s.exact} for s in result.served]
    return json.dumps(out)
