"""Elementwise launches: the same PCU program over every vector of one or two HBM regions.

The unfused kernels use them for the ops between GEMMs (an activation, a bf16 conversion,
the gated FFN's product). The vectors are split into ``G`` contiguous chunks, one group of
load AGCU(s) → PCU → store AGCU per chunk, as many groups as the AGCUs allow.

:class:`ElementwiseKernel` is the stand-alone kernel ``C = A ⊙ B`` (bf16, the product in
fp32): one such launch over the row-major tensors, fused or not. It is registered so that
every mapping the compiler has goes through the one protocol, and
:func:`~compiler.kernels.compile_kernel` compiles and :mod:`compiler.emulate` runs it; it is
not *user-runnable* (``openrdu run``, the bench and the sweep do not list it): no RTL test runs
it stand-alone, and the ops the other kernels use it for (an activation of fp32 words, a bf16
conversion) have no user-facing form.
"""

from __future__ import annotations

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.numerics.ops import golden as op_golden
from hdl.pcu import PcuConfig, Stage

from .errors import MappingError
from .ir import KernelGraph, elementwise_graph
from .mapping import DEFAULT_HBM_LINES, KernelMapping, ceil_div, counter_nest
from .place import place_and_route, site_counts
from .program import CompiledKernel, HbmAllocator, Launch, Region

__all__ = ["elementwise_launch", "PROGRAMS", "program_for", "ElementwiseKernel", "ORDER"]

ORDER = "C[i,j] = bf16(fp32(A[i,j]) * fp32(B[i,j])) (one RNE multiply in fp32, then RNE to bf16)"


def _act_program(act: str, to_bf16: bool):
    def make(counters):
        return PcuConfig(counters=counters, stages=[Stage("mov", "vin0")], tail=act, to_bf16=to_bf16)
    return make


def _mul_bf16(counters):
    return PcuConfig(counters=counters, stages=[Stage("cvt_f32", "vin0"), Stage("cvt_f32", "vin1"),
                                                Stage("fmul", "stage0", "stage1")], to_bf16=True)


#: Named elementwise programs: ``(inputs, program maker)``.
PROGRAMS = {
    "mul_bf16": (2, _mul_bf16),
}


def program_for(name: str):
    """``(inputs, program maker)`` of a named program: ``"act_<act>_<bf16|f32>"`` (the
    activation of fp32 words, then the output type) or a key of :data:`PROGRAMS`."""
    if name.startswith("act_"):
        act, _, out = name[4:].partition("_")
        return 1, _act_program(act, out == "bf16")
    return PROGRAMS[name]


def elementwise_launch(params, name: str, program: str, sources: list[Region], dest: Region,
                       vectors: int | None = None, max_groups: int | None = None) -> Launch:
    """A launch applying ``program`` (``"act_gelu_bf16"``, ``"act_none_bf16"``, ``"mul_bf16"``) to
    ``vectors`` vectors of ``sources`` (default: all of the first), writing ``dest``."""
    inputs, make = program_for(program)
    if len(sources) != inputs:
        raise ValueError(f"program {program} takes {inputs} input region(s), got {len(sources)}")
    vectors = vectors if vectors is not None else sources[0].vectors
    counts = site_counts(params.preset)
    n_agcu, n_pcu = counts["agcu"], counts["pcu"]
    groups = min(n_pcu, n_agcu // (inputs + 1), max_groups or 64, vectors)
    if groups < 1:
        raise MappingError("AGCUs", inputs + 1, n_agcu,
                           "an elementwise op needs a load per input and a store")
    last = None
    vpl = max(1, 16 // params.preset.lanes)     # vectors per 64-byte line
    while groups >= 1:
        # whole lines per group: two store AGCUs never merge partial writes into one line
        per_group = -(-vectors // groups)
        chunk = -(-per_group // vpl) * vpl
        roles, edges, units, routes, starts = [], [], {}, [], []
        bounds = [(g * chunk, min(vectors, (g + 1) * chunk)) for g in range(groups)]
        bounds = [b for b in bounds if b[1] > b[0]]
        for g, (lo, hi) in enumerate(bounds):
            n = hi - lo
            roles.append((f"pcu{g}", "pcu"))
            for i in range(inputs):
                roles.append((f"ld{g}_{i}", "agcu"))
                edges.append((f"ld{g}_{i}", f"pcu{g}", 1.0))
                units[f"ld{g}_{i}"] = AgcuConfig("load", 0, counter_nest(n, "elementwise chunk"), offset=lo)
                routes.append((f"ld{g}_{i}.vout", [f"pcu{g}.vin{i}"]))
                starts.append(f"ld{g}_{i}.start")
            roles.append((f"st{g}", "agcu"))
            edges.append((f"pcu{g}", f"st{g}", 1.0))
            units[f"pcu{g}"] = make(counter_nest(n, "elementwise chunk"))
            units[f"st{g}"] = AgcuConfig("store", 0, counter_nest(n, "elementwise chunk"), offset=lo)
            routes.append((f"pcu{g}.vout", [f"st{g}.vin"]))
            starts.append(f"st{g}.start")
        routes += [("host.start", starts), (f"st{len(bounds) - 1}.done", ["host.done"])]
        try:
            placed, kernel = place_and_route(params, roles, edges, units, routes)
        except MappingError as error:
            last = error
            groups -= 1
            continue
        segments = {}
        for g in range(len(bounds)):
            for i in range(inputs):
                segments[placed[f"ld{g}_{i}"]] = [sources[i].segment(read=True)]
            segments[placed[f"st{g}"]] = [dest.segment(read=False, write=True)]
        return Launch(name, kernel, segments, roles=placed,
                      pcu_steps={placed[f"pcu{g}"]: hi - lo for g, (lo, hi) in enumerate(bounds)})
    raise last


class ElementwiseKernel(KernelMapping):
    """``C = A ⊙ B`` on bf16 tensors (T, D): one elementwise launch of ``mul_bf16`` (see the
    module docstring; fused and unfused are the same single launch)."""

    name = "elementwise"
    shape_names = ("T", "D")
    formula = "C = bf16(fp32(A) * fp32(B)), elementwise"
    user_runnable = False

    def input_names(self, **options) -> list[str]:
        return ["A", "B"]

    def output_names(self, **options) -> list[str]:
        return ["C"]

    def graph(self, shape, **graph_options) -> KernelGraph:
        return elementwise_graph(tuple(shape))

    def compile(self, graph: KernelGraph, params, *, fused: bool = True, hbm_lines: int = DEFAULT_HBM_LINES,
                **mapping_options) -> CompiledKernel:
        t, d = graph.tensors["A"].shape
        L = params.preset.lanes
        vectors = ceil_div(t * d, L)

        def rows(w):
            flat = np.zeros(vectors * L, np.uint32)
            flat[:t * d] = np.asarray(w, np.uint32).reshape(-1)
            return flat.reshape(-1, L)

        alloc = HbmAllocator(L, hbm_lines)
        a = alloc.region("A", vectors, pack=lambda w: rows(w["A"]))
        b = alloc.region("B", vectors, pack=lambda w: rows(w["B"]))
        c = alloc.region("C", vectors)
        alloc.inputs += ["A", "B"]
        launch = elementwise_launch(params, "elementwise", "mul_bf16", [a, b], c)

        def golden(words: dict) -> dict:
            product = op_golden("fmul", op_golden("cvt_f32", words["A"]), op_golden("cvt_f32", words["B"]))
            return {"C": op_golden("cvt_bf16", product)}

        def collect(out: dict) -> dict:
            return {"C": out["C"].reshape(-1)[:t * d].reshape(t, d).copy()}

        plan = {"elementwise": {"program": "mul_bf16", "vectors": vectors, "groups": len(launch.pcus)}}
        return self.compiled_kernel(graph, params, (t, d), fused, [launch], alloc, golden=golden,
                                    collect=collect, order=ORDER, plan=plan)
