"""Elementwise launches: the same PCU program over every vector of one or two HBM regions.

The unfused kernels use them for the ops between GEMMs (an activation, a bf16 conversion,
the gated FFN's product). The vectors are split into ``G`` contiguous chunks, one group of
load AGCU(s) → PCU → store AGCU per chunk, as many groups as the AGCUs allow.
"""

from __future__ import annotations

from hdl.agcu import AgcuConfig
from hdl.counters import Counter
from hdl.pcu import PcuConfig, Stage

from .errors import MappingError
from .place import place_and_route, site_counts
from .program import Launch, Region

__all__ = ["elementwise_launch", "PROGRAMS"]

COUNTER_LIMIT = 1 << 16


def _nest(n: int) -> list[Counter]:
    # one counter: an AGCU address is the sum of its counters' values, so a longer stream would
    # need an outer counter counting past the counter width too
    if n < COUNTER_LIMIT:
        return [Counter(0, n)]
    raise MappingError("counter range (elementwise chunk)", n, COUNTER_LIMIT - 1, "split the tensor")


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
                units[f"ld{g}_{i}"] = AgcuConfig("load", 0, _nest(n), offset=lo)
                routes.append((f"ld{g}_{i}.vout", [f"pcu{g}.vin{i}"]))
                starts.append(f"ld{g}_{i}.start")
            roles.append((f"st{g}", "agcu"))
            edges.append((f"pcu{g}", f"st{g}", 1.0))
            units[f"pcu{g}"] = make(_nest(n))
            units[f"st{g}"] = AgcuConfig("store", 0, _nest(n), offset=lo)
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
