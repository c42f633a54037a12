"""The RTL-backed CoE mode (:mod:`coe_host.rtl`, ``openrdu coe demo``).

The cocotb test serves a generated trace on 3 small FFN experts with the router GEMM, every
DDR → HBM switch and every expert's fused FFN on the simulated RTL (Icarus and Verilator), and
checks the results against models that do not share the hardware's path:

* routing: the RTL logits equal :meth:`Router.logits` (numpy golden GEMM) bit for bit;
* switches: an independent LRU replay of the routed expert sequence gives the switch count and
  the bytes the trace must have copied; the copy path simulated exactly that many copies, the
  simulated HBM accepted exactly those bytes, and what it holds equals each expert's DDR image;
* outputs: every request's output equals :func:`coe_host.golden.ffn_forward` on the registry's
  own weight arrays, and the compiler's golden model;
* isolation: a store one line past the expert's HBM segment faults in the RTL with no write.

The host-side tests (no simulator) check that the weights the kernels get are the bytes the
copies left in HBM (a corrupted copy shows up in the outputs) and that a kernel argument outside
its expert's segment faults before anything runs.

The kernel system is the shared build of ``openrdu run`` (``build/kernels/tiny``, made once
under a lock; several minutes the first time); the timings in docs/coe.md assume it exists.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from coe_host import rtl
from coe_host.experts import LINE_BYTES
from coe_host.host import CoeHost, run_rtl_demo
from coe_host.memory import SegmentFault, SegmentTable
from coe_host.residency import SEG_REQUEST, SEG_WEIGHTS
from coe_host.router import make_prompts

REPO_BUILD = rtl.Path(__file__).resolve().parents[2] / "build" / "kernels"


def _lru_switches(sequence, capacity):
    """Misses of an LRU cache of ``capacity`` experts over ``sequence`` (independent of the host)."""
    cache, misses = OrderedDict(), []
    for name in sequence:
        if name in cache:
            cache.move_to_end(name)
            misses.append(False)
            continue
        if len(cache) == capacity:
            cache.popitem(last=False)
        cache[name] = True
        misses.append(True)
    return misses


# ---------------------------------------------------------------------------------------------
# host side (no simulator): the replay feeds the kernels what the copies left in HBM


class _FakeRun:
    def __init__(self, words):
        self.words, self.cycles, self.bit_exact = words, 1, True


class _GoldenKernels(rtl.RtlBackend):
    """Kernels by the compiler's golden model, copies by the DDR image (optionally corrupted)."""

    corrupt: int | None = None

    def _run_kernels(self, cases, tag):
        from compiler.kernels import to_bf16_words

        return [_FakeRun(c.golden({k: to_bf16_words(v) for k, v in inp.items()})) for c, inp in cases]

    def copy_experts(self, copies, *, probe=None):
        for i, c in enumerate(copies):
            raw = np.frombuffer(c.image, dtype="<u2").copy()
            if i == self.corrupt:           # negate every w2 weight: y becomes -y
                e = self.experts[c.expert]
                w1 = e.arch.d_model * e.arch.ffn
                raw[w1:2 * w1] ^= 0x8000
            c.hbm_bytes = raw.tobytes()
            c.result = {"equal": True, "hbm": {"writes": c.lines}, "elapsed_ps": 0}
        return {"wr_fault": 1, "hbm": {"writes": 0}, "timed_out": False}


def _host(backend):
    host = CoeHost(3, cache_experts=2, seed=0, router_features=rtl.ROUTER_FEATURES, train_n=300)
    host.backend = backend
    backend.experts = host.registry
    return host


def test_kernels_get_the_bytes_the_copies_left_in_hbm():
    prompts, _ = make_prompts(12, seed=1)
    backend = _GoldenKernels("icarus")
    backend.corrupt = 1
    result = backend.serve(_host(backend), prompts)
    bad = result.copies[backend.corrupt]
    later = [c.request for c in result.copies if c.expert == bad.expert and c.request > bad.request]
    until = min(later, default=len(prompts))
    # exactly the requests that ran on the corrupted copy (until that expert is copied again)
    # differ from numpy; every other request, served from intact copies, equals it
    affected = {i for i in range(bad.request, until) if result.served[i].expert == bad.expert}
    assert bad.request in affected and len(affected) < len(prompts)
    assert {i for i, s in enumerate(result.served) if not s.exact} == affected


def test_a_kernel_argument_outside_its_experts_segment_faults():
    host = CoeHost(3, cache_experts=2, seed=0, router_features=rtl.ROUTER_FEATURES, train_n=100)
    expert = next(iter(host.registry))
    host.manager.ensure_resident(expert.name)
    x = host.embed("how do i bake bread")
    grant = host.manager.begin("q", expert.name, 2 * x.size * 2 + LINE_BYTES)
    table = grant.tables[0]
    args = rtl.kernel_arguments(expert, x)
    rtl.check_arguments(table, args)                                   # the real arguments fit
    bound = table.entries[SEG_WEIGHTS].bound * LINE_BYTES
    for bad, why in [
        (("W2", SEG_WEIGHTS, "load", bound - 64, 128), "beyond bound"),   # runs one line past the weights
        (("W1", SEG_WEIGHTS, "store", 0, 64), "does not permit store"),   # weights are read-only
        (("Y", SEG_REQUEST, "store", table.entries[SEG_REQUEST].bound * LINE_BYTES, 2), "beyond bound"),
    ]:
        with pytest.raises(SegmentFault, match=why):
            rtl.check_arguments(table, [*args, bad])
    # a larger expert's arguments on this grant fault in the backend before any simulation
    big = type(expert)(expert.name, type(expert.arch)(layers=1, d_model=32, ffn=128, kind="ffn"),
                       expert.params, expert.domain, expert.home, expert.weights)
    with pytest.raises(SegmentFault, match="beyond bound"):
        rtl.RtlBackend("icarus")._expert_inputs(big, table, x)
    host.manager.end("q")
    with pytest.raises(SegmentFault, match="not written"):
        rtl.check_arguments(SegmentTable(host.memory.hbm), args)


# ---------------------------------------------------------------------------------------------
# on the RTL


# Icarus takes ~500 s here on 2 cores with a cold build (its kernel-system path runs in every suite
# run through tests/compiler/test_kernels_cocotb.py), so its demo run is in the soak set (`make test-all`)
@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", [pytest.param("icarus", marks=pytest.mark.soak), "verilator"],
                         indirect=True)
def test_rtl_demo_three_experts(simulator, sim_build_dir):
    prompts = 12
    r = run_rtl_demo(3, simulator, prompts=prompts, cache_experts=2, seed=0, build_root=REPO_BUILD,
                     work_dir=sim_build_dir)
    served = r.served
    assert len(served) == prompts
    # routing: bit-exact logits and the golden router's classes
    host = CoeHost(3, cache_experts=2, seed=0, router_features=rtl.ROUTER_FEATURES)
    requests, _ = make_prompts(prompts, seed=1)
    assert r.router_logits_equal and r.router_bit_exact
    assert [s.domain for s in served] == host.router.route_names(requests)
    # switches and bytes against an independent LRU replay of the routed experts
    sequence = [host.expert_of_domain[d] for d in host.router.route_names(requests)]
    misses = _lru_switches(sequence, 2)
    assert [s.expert for s in served] == sequence
    assert [not s.hit for s in served] == misses
    assert len(set(sequence)) == 3 and sum(misses) > 3, "the trace should switch among all 3 experts"
    expert_bytes = next(iter(host.registry)).lines * LINE_BYTES
    assert r.switches == sum(misses) and r.bytes_copied == sum(misses) * expert_bytes
    assert len(r.copies) == r.switches
    assert [c.request for c in r.copies] == [i for i, m in enumerate(misses) if m]
    for c in r.copies:
        assert not c.result["timed_out"] and c.result["configured"] == [1, 1]
        assert (c.result["rd_fault"], c.result["wr_fault"]) == (0, 0)
        assert c.result["equal"] and c.hbm_bytes == c.image
        assert c.image == host.registry[c.expert].image()
    assert r.rtl_bytes_copied == r.bytes_copied
    # isolation in the RTL: one line past the expert's segment faults, nothing written
    assert r.fault_probe["wr_fault"] == 1 and r.fault_probe["hbm"]["writes"] == 0
    assert not r.fault_probe["timed_out"]
    # outputs: numpy golden on the registry's arrays, and the compiler's golden model
    for i, s in enumerate(served):
        e = host.registry[s.expert]
        x = host.embed(requests[i])
        assert np.array_equal(s.expected, rtl.ffn_forward(x, e.weights["w1"], e.weights["w2"]))
        assert s.exact, f"request {i} ({s.expert}) differs from numpy"
    assert r.kernels_bit_exact
    assert all(run.violations == 0 and all(l["faults"] == 0 for l in run.launches) for run in r.expert_runs)
    assert r.ok
