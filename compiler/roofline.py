"""The roofline of a compiled kernel: a lower bound on its cycles for each resource, and which binds.

From the preset and the plan — every launch's unit programs and routes (counted by
:mod:`compiler.streams`), the HBM layout, and the memory system kernels run on
(:func:`hdl.params.kernel_memory` of the preset) — :func:`roofline` states for each launch how many fabric
cycles each resource needs at least. With ``L`` lanes, ``S`` stages and a 64-byte line:

``compute_all``
    ``Σ_p c_p / N``: the PCU cycles of the launch's programs over all ``N`` PCUs of the preset
    (what a mapping that spread the same work over every PCU could reach). ``c_p`` is the
    fewest cycles PCU ``p`` needs for its program: one step per cycle (a systolic step is
    ``L × S`` multiply-adds, a SIMD step one vector of ``L`` lanes through up to ``S`` stages)
    plus the waits its RTL enforces (:class:`hdl.pcu.PcuParams`)::

        systolic, K steps per tile:  c = steps + (tiles - 1) · max(0, tile_interval - K)
        SIMD reading acc:            c = (steps - 1) · acc_read_interval + 1
        otherwise:                   c = steps

    with ``tile_interval = max(L, S)`` and ``acc_read_interval = S · stage_latency + 2``.
``compute_used``
    ``Σ_p c_p / P``, the same over the ``P`` PCUs the launch uses (this plan's compute bound;
    reported, not part of the roofline).
``hbm``
    ``64 · (R + W) / BW``: ``R`` (``W``) distinct lines the launch's load (store) AGCUs touch —
    its input, output and, unfused, intermediate regions as they are laid out in HBM, each
    line once however often the plan re-reads it — over the modelled bandwidth ``BW`` in bytes
    per fabric cycle (:attr:`hdl.params.MemorySystem.bytes_per_cycle`: 32 per HBM2-2000 channel
    with a 1 ns fabric; ``small`` has 8 channels, 256 bytes per cycle).
``agcu``
    ``max_a v_a / r``: the vectors ``v_a`` AGCU ``a`` moves (steps per run × runs) over its rate
    ``r`` = :data:`hdl.agcu.config.VECTORS_PER_CYCLE` (one vector per cycle; a line request
    carries at least one vector, so the one request per cycle it can issue never binds first).
``links``
    ``max_l Σ_{routes over l} v / tracks``: per directed link of the vector fabric, the vectors
    of the routes whose trees cross it over its tracks (a track carries one vector per cycle).
``launch``
    The words the host sends to launch (LOAD with the image, ARGS, EXEC), at most one per cycle
    through the launch controller (:mod:`hdl.launch`). They arrive *before* EXEC, and a
    launch's measured cycles count from EXEC, so this is reported, not part of the roofline.

A launch's roofline is the largest of ``compute_all``, ``hbm``, ``agcu`` and ``links``
(:data:`RESOURCES`); that resource *binds*. Launches run one after the other, so an unfused
kernel's roofline is the sum of its launches' rooflines; its per-resource figures are sums
too, and its binding resource is the one that binds for the most roofline cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hdl.agcu.config import LINE_BYTES, VECTORS_PER_CYCLE
from hdl.counters import nest_steps
from hdl.params import MemorySystem, kernel_memory
from hdl.pcu import PcuConfig

from .place import site_counts
from .streams import agcu_streams, route_vectors

__all__ = ["Roofline", "RESOURCES", "INFORMATION", "roofline", "launch_roofline", "pcu_cycles"]

#: The resources whose bounds make the roofline, in the order ties are broken.
RESOURCES = ("compute_all", "hbm", "agcu", "links")
#: Bounds reported alongside (the plan's own compute bound, the image load before EXEC).
INFORMATION = ("compute_used", "launch")


@dataclass(frozen=True)
class Roofline:
    """Lower bounds on a kernel's (or one launch's) cycles, per resource (module docstring).

    Attributes
    ----------
    bounds : dict of str → int
        Cycles each resource needs at least: :data:`RESOURCES` and :data:`INFORMATION`.
    cycles : int
        The roofline: the binding bound of each launch, summed over the launches.
    bound : str
        The binding resource (for several launches: the one binding for the most cycles).
    details : dict
        The figures behind the bounds (PCU cycles, bytes, the busiest AGCU and link …).
    launches : tuple of (str, Roofline)
        Each launch's roofline by launch name (empty for the roofline of one launch).
    """

    bounds: dict[str, int]
    cycles: int
    bound: str
    details: dict = field(default_factory=dict)
    launches: tuple[tuple[str, Roofline], ...] = ()

    def fraction(self, measured_cycles: int) -> float:
        """``cycles / measured_cycles`` rounded to 4 places: 1 means the kernel runs at its roofline."""
        return round(self.cycles / max(1, measured_cycles), 4)

    def as_dict(self) -> dict:
        """Plain data for JSON reports."""
        out = {"cycles": self.cycles, "bound": self.bound, "bounds": dict(self.bounds),
               "details": dict(self.details)}
        if self.launches:
            out["launches"] = {name: part.as_dict() for name, part in self.launches}
        return out

    def table(self) -> list[list[str]]:
        """Rows for a report: a header, then per launch (and, for several, their total) one row
        per resource with its bound, whether it binds and what it is made of."""
        rows = [["launch", "resource", "cycles", "binds", "from"]]
        parts = self.launches or (("kernel", self),)
        for name, part in parts:
            rows += part._rows(name, part._origins(), "the largest of " + ", ".join(RESOURCES))
        if len(parts) > 1:
            summed = dict.fromkeys(RESOURCES + INFORMATION, "sum of the launches")
            rows += self._rows("total", summed, "sum of each launch's binding bound")
        return rows

    def _rows(self, name: str, origins: dict[str, str], roofline: str) -> list[list[str]]:
        rows = [[name, r, f"{self.bounds[r]:,}", "yes" if r == self.bound else "", origins[r]]
                for r in RESOURCES + INFORMATION]
        return rows + [[name, "roofline", f"{self.cycles:,}", self.bound, roofline]]

    def _origins(self) -> dict[str, str]:
        """What each bound of one launch is made of, in words."""
        d = self.details
        return {
            "compute_all": f"{d['pcu_cycles']:,} PCU cycles / {d['pcus']} PCUs of the preset",
            "compute_used": f"{d['pcu_cycles']:,} PCU cycles / {d['pcus_used']} PCUs used (not in the "
                            f"roofline)",
            "hbm": f"{d['hbm_bytes_needed']:,} bytes / {d['hbm_bytes_per_cycle']:g} bytes per cycle",
            "agcu": f"{d['agcu_vectors']:,} vectors on {d['agcu']} / {VECTORS_PER_CYCLE} per cycle",
            "links": f"{d['link_vectors']:,} vectors on {d['link']} / {d['link_tracks']} track(s)",
            "launch": f"{d['image_words']:,} host words before EXEC (not in the roofline)",
        }


# ------------------------------------------------------------------ the resources of one launch

def pcu_cycles(config: PcuConfig, params) -> int:
    """The fewest cycles a PCU (:class:`hdl.pcu.PcuParams` ``params``) needs for ``config`` (one
    run; the formulas of the module docstring)."""
    steps = nest_steps(config.counters)
    if config.mode == "systolic":
        k = config.counters[0].trips
        return steps + (steps // k - 1) * max(0, params.tile_interval - k)
    reads_acc = any(source == "acc" for stage in config.stages for source in (stage.a, stage.b, stage.c))
    if config.accumulator is not None and reads_acc:
        return (steps - 1) * params.acc_read_interval + 1
    return steps


def _compute(launch) -> tuple[dict, dict]:
    params = launch.kernel.params
    cycles = [pcu_cycles(c, params.pcu) for c in launch.kernel.units.values() if isinstance(c, PcuConfig)]
    work, used, every = sum(cycles), len(cycles), site_counts(params.preset)["pcu"]
    bounds = {"compute_all": math.ceil(work / every), "compute_used": math.ceil(work / used) if used else 0}
    return bounds, {"pcu_cycles": work, "pcus_used": used, "pcus": every}


def _memory(launch, memory: MemorySystem) -> tuple[dict, dict]:
    streams = agcu_streams(launch)
    lines = {direction: np.unique(np.concatenate([s.lines for s in streams if s.direction == direction] or
                                                 [np.zeros(0, np.int64)]))
             for direction in ("load", "store")}
    must_move = LINE_BYTES * sum(len(v) for v in lines.values())
    busiest = max(streams, key=lambda s: s.vectors)
    bounds = {"hbm": math.ceil(must_move / memory.bytes_per_cycle),
              "agcu": math.ceil(max(busiest.vectors, busiest.requests) / VECTORS_PER_CYCLE)}
    details = {"hbm_bytes_needed": must_move, "hbm_bytes_per_cycle": memory.bytes_per_cycle,
               "hbm_bytes_planned": LINE_BYTES * sum(s.requests for s in streams),
               "agcu": busiest.site, "agcu_vectors": busiest.vectors}
    return bounds, details


def _link_name(link: tuple) -> str:
    (x, y), (x2, y2) = link
    return f"({x},{y})->({x2},{y2})"


def _links(kernel) -> tuple[dict, dict]:
    vectors = route_vectors(kernel)
    capacity = kernel.fg.links("vector")
    load: dict[tuple, int] = {}
    for route, tree in zip(kernel.routes, kernel.trees, strict=True):
        if route.source not in vectors:
            continue
        crossed = {((a[1], a[2]), (b[1], b[2])) for a, b in tree
                   if a[0] == "sw" and b[0] == "sw" and a[4] == "out" and b[4] == "in"}
        for link in crossed:
            load[link] = load.get(link, 0) + vectors[route.source]
    if not load:
        return {"links": 0}, {"link": "none", "link_vectors": 0, "link_tracks": 0}
    link = max(load, key=lambda k: load[k] / capacity[k])
    bound = math.ceil(load[link] / capacity[link])
    details = {"link": _link_name(link), "link_vectors": load[link], "link_tracks": capacity[link]}
    return {"links": bound}, details


def launch_roofline(launch, memory: MemorySystem | None = None) -> Roofline:
    """The roofline of one :class:`compiler.program.Launch` (module docstring) on ``memory``
    (default: the preset's, :func:`hdl.params.kernel_memory`)."""
    memory = memory or kernel_memory(launch.kernel.fg.preset)
    compute, compute_details = _compute(launch)
    traffic, traffic_details = _memory(launch, memory)
    links, link_details = _links(launch.kernel)
    words = len(launch.kernel.host_words())
    bounds = {**compute, **traffic, **links, "launch": words}
    bounds = {r: bounds[r] for r in RESOURCES + INFORMATION}
    bound = max(RESOURCES, key=lambda r: (bounds[r], -RESOURCES.index(r)))
    details = {**compute_details, **traffic_details, **link_details, "image_words": words}
    return Roofline(bounds, bounds[bound], bound, details)


# ------------------------------------------------------------------ the kernel

def _summed_details(parts: list[Roofline]) -> dict:
    total = {key: sum(p.details[key] for p in parts)
             for key in ("pcu_cycles", "hbm_bytes_needed", "hbm_bytes_planned", "image_words")}
    first = parts[0].details
    return {**total, "pcus": first["pcus"], "hbm_bytes_per_cycle": first["hbm_bytes_per_cycle"]}


def roofline(compiled, memory: MemorySystem | None = None) -> Roofline:
    """The roofline of a :class:`compiler.program.CompiledKernel` on ``memory`` (module
    docstring): one launch's, or for several the sum over the launches."""
    parts = [(launch.name, launch_roofline(launch, memory)) for launch in compiled.launches]
    if len(parts) == 1:
        return parts[0][1]
    rooflines = [p for _, p in parts]
    bounds = {r: sum(p.bounds[r] for p in rooflines) for r in RESOURCES + INFORMATION}
    binding = {r: sum(p.cycles for p in rooflines if p.bound == r) for r in RESOURCES}
    bound = max(RESOURCES, key=lambda r: (binding[r], -RESOURCES.index(r)))
    return Roofline(bounds, sum(p.cycles for p in rooflines), bound, _summed_details(rooflines), tuple(parts))
