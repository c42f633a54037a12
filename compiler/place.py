"""Placement of a kernel's roles on a preset's sites, and routing through the fabric graph.

A *role* is one unit a mapping needs (``"pcu_mm0"``: the PCU of GEMM column 0) with its
site kind (``pcu``, ``pmu``, ``agcu``). :func:`place` assigns roles to free sites greedily
in the order given, each to the site nearest (Manhattan distance between switches, weighted)
to the roles it talks to that are already placed. :func:`build_kernel` turns role-level
routes into a :class:`hdl.kernel_image.Kernel`; the fabric router
(:func:`hdl.network.route_nets`, all routes together with negotiated congestion) finds the
paths, and routes the links cannot carry become a :class:`MappingError` naming the
over-subscribed links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hdl.kernel_image import Kernel, Route, RouteError
from hdl.network.graph import FabricGraph

from .errors import MappingError

__all__ = ["place", "build_kernel", "site_counts", "place_and_route"]


def site_counts(preset) -> dict[str, int]:
    """PCU, PMU and AGCU sites of a preset's fabric."""
    counts = {"pcu": 0, "pmu": 0, "agcu": 0}
    for site in FabricGraph(preset).sites.values():
        if site.kind in counts:
            counts[site.kind] += 1
    return counts


def place(fg: FabricGraph, roles: Sequence[tuple[str, str]], edges: Sequence[tuple[str, str, float]],
          *, avoid: Sequence[str] = (), rng=None) -> dict[str, str]:
    """Assign every ``(role, kind)`` a site; ``edges`` are ``(role, role, weight)`` pairs that
    exchange data. Raises :class:`MappingError` when a kind runs out."""
    free = {kind: [s for s in fg.sites.values() if s.kind == kind and s.name not in avoid]
            for kind in ("pcu", "pmu", "agcu")}
    need: dict[str, int] = {}
    for _, kind in roles:
        need[kind] = need.get(kind, 0) + 1
    for kind, n in need.items():
        if n > len(free[kind]):
            raise MappingError(f"{kind.upper()}s", n, len(free[kind]))
    neighbours: dict[str, list[tuple[str, float]]] = {}
    for a, b, w in edges:
        neighbours.setdefault(a, []).append((b, w))
        neighbours.setdefault(b, []).append((a, w))
    placed: dict[str, str] = {}
    for role, kind in roles:
        def cost(site, role=role):
            total = 0.0
            for other, w in neighbours.get(role, []):
                if other in placed:
                    o = fg.sites[placed[other]]
                    total += w * (abs(o.switch[0] - site.switch[0]) + abs(o.switch[1] - site.switch[1]))
            return total
        jitter = (lambda site: rng.random() * 1.5) if rng is not None else (lambda site: 0.0)
        best = min(free[kind], key=lambda site: cost(site) + jitter(site))
        free[kind].remove(best)
        placed[role] = best.name
    return placed


def build_kernel(params, placed: Mapping[str, str], units: Mapping[str, object],
                 routes: Sequence[tuple[str, Sequence[str]]], arguments=(), done_tokens: int = 1) -> Kernel:
    """A :class:`Kernel` from role-level programs and routes (``"role.pin"``; ``host`` is the
    launch controller)."""
    def pin(ref: str) -> str:
        role, name = ref.split(".")
        return ref if role == "host" else f"{placed[role]}.{name}"

    site_units = {placed[role]: config for role, config in units.items()}
    site_routes = [Route(pin(src), [pin(s) for s in sinks]) for src, sinks in routes]
    try:
        return Kernel(params, units=site_units, routes=site_routes, arguments=arguments,
                      done_tokens=done_tokens)
    except RouteError as error:
        raise MappingError("fabric links", None, None, f"routing failed: {error}") from error


_PLACEMENTS: dict = {}


def place_and_route(params, roles, edges, units, routes, *, attempts: int = 40, seed: int = 1):
    """Place and route, retrying with perturbed placements until the fabric carries every
    route; returns ``(placement, kernel)`` or raises the last :class:`MappingError`.

    Multicast routes are routed first (they need the most links). A placement that worked
    (or a topology that failed) is remembered per preset and topology, so re-mapping the
    same structure with other tile sizes does not search again."""
    import random

    fg = FabricGraph(params.preset)
    routes = sorted(routes, key=lambda r: -len(r[1]))
    key = (params.preset, tuple(roles), tuple((a, tuple(b)) for a, b in routes))
    known = _PLACEMENTS.get(key)
    if isinstance(known, MappingError):
        raise known
    if known is not None:
        return known, build_kernel(params, known, units, routes)
    rng = random.Random(seed)
    last = None
    for attempt in range(attempts):
        placed = place(fg, roles, edges, rng=None if attempt == 0 else rng)
        try:
            kernel = build_kernel(params, placed, units, routes)
        except MappingError as error:
            last = error
            continue
        _PLACEMENTS[key] = placed
        return placed, kernel
    _PLACEMENTS[key] = last
    raise last
