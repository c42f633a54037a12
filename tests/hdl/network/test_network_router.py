"""The negotiated-congestion router (hdl.network.router), pure Python.

Each routed result is checked independently of the router: every tree edge is an edge of
the routing graph, every sink is reached from the source through the tree, and no switch
resource (a link track, counted once at either end, or a pin port) carries two nets.
"""

from __future__ import annotations

import random

import pytest

from compiler.errors import MappingError
from hdl.kernel_image import Kernel, Route, RouteError
from hdl.network.graph import DIRECTIONS, OPPOSITE, FabricGraph, find_route
from hdl.network.router import Net, route_nets

#: Three streams on ``tiny`` that a one-at-a-time shortest-path router cannot route in this
#: order (the first takes the only free way of a later one) but that fit the fabric.
GREEDY_FAILS = [("agcu_e0.vout", ["pcu_0_0.vin0"]), ("agcu_w1.vout", ["agcu_e0.vin"]),
                ("pmu_0_1.vout", ["agcu_w0.vin"])]


def _wire(node):
    """Independent of the router: a link track's input port is the neighbour's output."""
    _, x, y, fabric, side, port = node
    if side == "in" and "." not in port:
        dx, dy = DIRECTIONS[port[0]]
        return ("sw", x + dx, y + dy, fabric, "out", OPPOSITE[port[0]] + port[1:])
    return node


def _check(fg, nets, trees):
    owner = {}
    for net, edges in zip(nets, trees, strict=True):
        src = fg.pin_node(net[0], "out")
        reach, adj = {src}, {}
        for a, b in edges:
            assert fg.graph.has_edge(a, b), (a, b)
            adj.setdefault(a, []).append(b)
        stack = [src]
        while stack:
            for b in adj.get(stack.pop(), []):
                if b not in reach:
                    reach.add(b)
                    stack.append(b)
        for sink in net[1]:
            assert fg.pin_node(sink, "in") in reach, (net, sink)
        for node in {n for e in edges for n in e if n[0] == "sw"}:
            wire = _wire(node)
            assert owner.setdefault(wire, net[0]) == net[0], f"{wire} carries {owner[wire]} and {net[0]}"


def _greedy(fg, nets):
    used = set()
    for src, sinks in nets:
        edges = find_route(fg, src, sinks, used=used)
        used |= {n for e in edges for n in e if n[0] == "sw"}


def test_routes_what_one_at_a_time_shortest_paths_cannot():
    fg = FabricGraph("tiny")
    with pytest.raises(RouteError):
        _greedy(fg, GREEDY_FAILS)       # the case is a real one for the old router
    trees = route_nets(fg, [Net(s, d) for s, d in GREEDY_FAILS])
    _check(fg, GREEDY_FAILS, trees)
    # and a kernel image takes the same routes (the launch path uses this router)
    kernel = Kernel("tiny", routes=[Route(s, d) for s, d in GREEDY_FAILS])
    _check(fg, GREEDY_FAILS, kernel.trees)


def test_random_route_sets_are_legal_and_deterministic():
    fg = FabricGraph("quad")
    outs = [f"{s.name}.{p.name}" for s in fg.sites.values() for p in s.pins
            if p.fabric == "vector" and p.direction == "out" and s.kind != "host"]
    ins = [f"{s.name}.{p.name}" for s in fg.sites.values() for p in s.pins
           if p.fabric == "vector" and p.direction == "in" and s.kind != "host"]
    rng = random.Random(7)
    routed = 0
    for _ in range(60):
        k = rng.randint(2, 6)
        sinks = rng.sample(ins, 2 * k)
        nets = [(src, sinks[2 * i:2 * i + rng.randint(1, 2)]) for i, src in enumerate(rng.sample(outs, k))]
        try:
            trees = route_nets(fg, [Net(s, d) for s, d in nets])
        except RouteError as error:
            assert "over-subscribed" in str(error) or "no path" in str(error)
            continue
        routed += 1
        _check(fg, nets, trees)
        assert trees == route_nets(fg, [Net(s, d) for s, d in nets])
    assert routed >= 30


def test_an_impossible_set_names_every_over_subscribed_link():
    # three streams from the west column to the east one of tiny: the cut has two eastward tracks
    fg = FabricGraph("tiny")
    nets = [Net("agcu_w0.vout", ["agcu_e0.vin"]), Net("agcu_w1.vout", ["agcu_e1.vin"]),
            Net("pcu_0_0.vout", ["pmu_1_0.vin"])]
    with pytest.raises(RouteError) as info:
        route_nets(fg, nets, iterations=8)
    message = str(info.value)
    assert message.startswith("routing failed after 8 rip-up-and-re-route rounds; over-subscribed:")
    assert "on the vector fabric (capacity 1) wanted by 2 routes" in message
    named = [f"link ({a}) -> ({b}) on the vector fabric" for a, b in (("0, 0", "1, 0"), ("0, 1", "1, 1"))]
    assert any(n in message for n in named), message
    assert "\n" not in message


def test_explicit_paths_are_kept_and_routed_around():
    fg = FabricGraph("tiny")
    via = Route("agcu_w0.vout", ["agcu_e0.vin"], via={"agcu_e0.vin": [(0, 0), (1, 0)]})
    kernel = Kernel("tiny", routes=[via, Route("pcu_0_0.vout", ["pmu_1_0.vin"])])
    assert ("sw", 0, 0, "vector", "out", "E0") in {b for _, b in kernel.trees[0]}
    _check(fg, [("agcu_w0.vout", ["agcu_e0.vin"]), ("pcu_0_0.vout", ["pmu_1_0.vin"])], kernel.trees)


def test_bad_arguments_are_refused():
    fg = FabricGraph("tiny")
    with pytest.raises(ValueError, match="iterations must be a positive int, got 0"):
        route_nets(fg, [Net("agcu_w0.vout", ["agcu_e0.vin"])], iterations=0)
    with pytest.raises(RouteError, match="is on the scalar fabric"):
        route_nets(fg, [Net("agcu_w0.vout", ["pcu_0_0.sin0"])])


def test_gemm_on_six_pcus_of_small_routes():
    """The plan the greedy router could not route (GEMM 256x256x256 with six PCUs on small)."""
    from compiler.gemm import plan_gemm, route_gemm
    from compiler.kernels import kernel_tile_params

    params = kernel_tile_params("small")
    plans = [p for p in plan_gemm(params, 256, 256, 256, bias=True, act="gelu") if p.pcus == 6][:1]
    try:
        plan, placed, kernel = route_gemm(params, plans)
    except MappingError as error:  # pragma: no cover - the failure this test exists for
        pytest.fail(str(error))
    assert plan.pcus == 6 and len({placed[f"pcu{q}"] for q in range(6)}) == 6
