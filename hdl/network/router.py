"""Negotiated-congestion routing of all of a kernel's streams together (PathFinder).

:func:`route_nets` routes every net (one source pin, its sink pins) of a kernel over the
routing graph of :class:`~hdl.network.graph.FabricGraph` at once, the way FPGA routers do
(McMurchie and Ebeling, "PathFinder", FPGA 1995):

* every switch port of the graph (a link track's output or input, a pin's port) is a
  resource that carries one net;
* each iteration rips up and re-routes the nets that share a resource; a net's multicast
  tree grows sink by sink by the cheapest path from any node already in it, where a
  resource costs ``(1 + history) · (1 + present · sharers)``: ``sharers`` are the other nets
  on it now, ``present`` grows each iteration, and ``history`` grows on every resource that
  stayed shared, so nets negotiate who leaves a contested link;
* it stops when no resource is shared, or fails after ``iterations`` with a
  :class:`~hdl.network.graph.RouteError` naming every over-subscribed link, its capacity
  and the nets that want it.

The greedy router it replaces (:func:`~hdl.network.graph.find_route` one net at a time,
around the ones already placed) fails whenever an early net takes the only free way of a
later one; PathFinder lets the early net move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from .graph import DIRECTIONS, OPPOSITE, FabricGraph, RouteError

__all__ = ["Net", "route_nets", "link_name", "resources_of", "DEFAULT_ITERATIONS"]

#: Rip-up-and-re-route iterations before :func:`route_nets` gives up.
DEFAULT_ITERATIONS = 40


@dataclass
class Net:
    """One stream to route.

    Parameters
    ----------
    source : str
        The driving pin, ``"site.pin"`` (an ``out`` pin).
    sinks : sequence of str
        The pins it must reach (``in`` pins on the same fabric).
    tree : set of tuple
        Graph nodes already in this net's tree (fixed paths given by the caller); the net
        grows from them and from its source.
    """

    source: str
    sinks: Sequence[str]
    tree: set = field(default_factory=set)


def link_name(node: tuple) -> str:
    """A switch port node ``("sw", x, y, fabric, "out", "E0")`` → the link it drives, by name;
    a pin's port → ``pin <site.pin>``."""
    _, x, y, fabric, _, port = node
    if "." in port:
        return f"pin {port}"
    dx, dy = DIRECTIONS[port[0]]
    return f"link ({x}, {y}) -> ({x + dx}, {y + dy}) on the {fabric} fabric"


def _resource(node: tuple) -> tuple:
    """The resource a switch node stands for: a link track's input port is the same wire
    as the neighbour's output port, so both map to the output."""
    if node[4] == "in" and "." not in node[5]:
        _, x, y, fabric, _, port = node
        # the track arrives from direction port[0]; its driver is the neighbour's output
        dx, dy = DIRECTIONS[port[0]]
        return ("sw", x + dx, y + dy, fabric, "out", OPPOSITE[port[0]] + port[1:])
    return node


def route_nets(fg: FabricGraph, nets: Sequence[Net], *, blocked: Iterable[tuple] = (),
               iterations: int = DEFAULT_ITERATIONS) -> list[list[tuple[tuple, tuple]]]:
    """Route every net of ``nets`` so that no two share a switch port.

    Parameters
    ----------
    fg : FabricGraph
    nets : sequence of Net
        In priority order (the first iteration routes them in this order).
    blocked : iterable of tuple
        Switch nodes no net may use (held by fixed paths of other routes).
    iterations : int
        Rip-up-and-re-route rounds before giving up.

    Returns
    -------
    list of list of (node, node)
        Per net, the edges it adds to its tree (source pin → … → every sink pin).

    Raises
    ------
    RouteError
        For unknown or mis-directed pins, sinks on another fabric, a sink no path reaches,
        or, after ``iterations`` rounds, the over-subscribed links (each with its capacity
        and the nets that want it).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    g = fg.graph
    blocked = {_resource(n) for n in blocked}
    sources, sink_nodes = [], []
    for net in nets:
        src = fg.pin_node(net.source, "out")
        fabric = g.nodes[src]["fabric"]
        nodes = []
        for ref in net.sinks:
            node = fg.pin_node(ref, "in")
            if g.nodes[node]["fabric"] != fabric:
                raise RouteError(f"{ref} is on the {g.nodes[node]['fabric']} fabric, "
                                 f"{net.source} on the {fabric} fabric")
            nodes.append(node)
        sources.append(src)
        sink_nodes.append(nodes)

    history: dict[tuple, float] = {}
    occupancy: dict[tuple, int] = {}
    trees: list[list[tuple]] = [[] for _ in nets]   # per net: its edges
    owned: list[set] = [set() for _ in nets]        # per net: the resources it holds
    present = 0.5

    def route_one(i: int) -> None:
        net = nets[i]
        tree_nodes = {sources[i], *net.tree}
        edges: list[tuple] = []
        mine: set = set()
        for sink in sink_nodes[i]:
            if sink in tree_nodes:
                continue

            def weight(u, v, _data, sink=sink):
                if v[0] == "pin":
                    return 1 if v == sink else None    # pins are only endpoints
                r = _resource(v)
                if r in blocked:
                    return None
                if r in mine:
                    return 0.01
                return (1.0 + history.get(r, 0.0)) * (1.0 + present * occupancy.get(r, 0))

            try:
                # sources in a fixed order: ties must not depend on set order
                _, path = nx.multi_source_dijkstra(g, sorted(tree_nodes, key=repr), sink, weight=weight)
            except nx.NetworkXNoPath:
                raise RouteError(f"no path from {net.source} to {sink[1]}.{sink[2]} on the "
                                 f"{g.nodes[sink]['fabric']} fabric") from None
            for a, b in zip(path, path[1:], strict=False):
                edges.append((a, b))
                tree_nodes.add(b)
                if b[0] == "sw":
                    mine.add(_resource(b))
        trees[i] = edges
        owned[i] = mine
        for r in mine:
            occupancy[r] = occupancy.get(r, 0) + 1

    def rip_up(i: int) -> None:
        for r in owned[i]:
            occupancy[r] -= 1
        owned[i] = set()
        trees[i] = []

    for i in range(len(nets)):
        route_one(i)
    for _ in range(iterations):
        shared = {r for r, n in occupancy.items() if n > 1}
        if not shared:
            return trees
        for r in shared:
            history[r] = history.get(r, 0.0) + occupancy[r] - 1
        present *= 2
        for i in range(len(nets)):
            if owned[i] & shared:
                rip_up(i)
                route_one(i)
    shared = {r for r, n in occupancy.items() if n > 1}
    if not shared:
        return trees
    raise RouteError(_congestion_report(fg, nets, owned, shared, iterations))


def _congestion_report(fg: FabricGraph, nets: Sequence[Net], owned: Sequence[set], shared: set,
                       iterations: int) -> str:
    """One line: every over-subscribed link, its tracks and the nets that want it."""
    links: dict[tuple, set] = {}
    for r in shared:
        _, x, y, fabric, _, port = r
        key = (x, y, fabric, port if "." in port else port[0])
        for i, held in enumerate(owned):
            if r in held:
                links.setdefault(key, set()).add(nets[i].source)
    parts = []
    for (x, y, fabric, port), sources in sorted(links.items(), key=lambda kv: (-len(kv[1]), repr(kv[0]))):
        if "." in port:
            parts.append(f"pin {port} (capacity 1) wanted by {len(sources)} routes: "
                         f"{', '.join(sorted(sources))}")
        else:
            tracks = fg.preset.tracks(fabric)
            name = link_name(("sw", x, y, fabric, "out", f"{port}0"))
            # nets on any track of this link
            users = {nets[i].source for i, held in enumerate(owned)
                     for t in range(tracks) if ("sw", x, y, fabric, "out", f"{port}{t}") in held}
            parts.append(f"{name} (capacity {tracks}) wanted by {len(users)} routes: "
                         f"{', '.join(sorted(users))}")
    return (f"routing failed after {iterations} rip-up-and-re-route rounds; over-subscribed: "
            + "; ".join(parts))


def resources_of(edges: Iterable[tuple[tuple, tuple]]) -> set:
    """The switch resources a list of tree edges holds."""
    return {_resource(n) for e in edges for n in e if n[0] == "sw"}
