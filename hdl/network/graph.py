"""The routing graph: one networkx object describing a preset's fabric.

Every later pass reads this graph: :class:`hdl.network.Switch` generates its ports,
FIFOs and multiplexers from a switch's nodes; :mod:`hdl.tile` wires links and unit
pins from its edges; the route search (:func:`find_route`) and the kernel image
encoder (:mod:`hdl.kernel_image`) search and check the same edges. So a port the
router may use is exactly a port the hardware has.

Layout
------
A ``grid_cols × grid_rows`` checkerboard of *sites* (PCU where ``x + y`` is even,
PMU where it is odd) with one switch per site. Switches form a mesh: each links
to its north, east, south and west neighbour with ``tracks(fabric)`` independent
tracks per direction on each of the three fabrics (vector: ``lanes × 32`` bits,
scalar: 32 bits, control: 1-bit tokens). Edge sites attach to the border switches:
an AGCU on the west (``agcu_w<y>``) and east (``agcu_e<y>``) end of every row, and
the ``host`` (the launch controller: kernel arguments and the start / done tokens)
at switch (0, 0).

Nodes
-----
``("pin", site, pin)``
    a unit pin; an ``out`` pin is a route source, an ``in`` pin a route sink.
``("sw", x, y, fabric, "in", port)`` / ``("sw", x, y, fabric, "out", port)``
    a switch input (with its FIFO) / output (with its credit counter). ``port`` is a
    direction and track (``"E0"``) or an attached pin (``"pcu_0_0.vin0"``).

Edges (attribute ``kind``)
--------------------------
``"attach"``  pin → switch input, or switch output → pin (wires inside a site);
``"link"``    switch output → neighbour's switch input (one track of a mesh link);
``"mux"``     switch input → switch output (a choice of the output's multiplexer;
              every input reaches every output except the one it came in by).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from ..presets import Preset, get_preset

__all__ = [
    "FABRICS", "DIRECTIONS", "ARGUMENTS", "Pin", "Site", "UNIT_PINS", "FabricGraph", "RouteError",
    "find_route",
]

FABRICS = ("vector", "scalar", "control")
#: Mesh directions and their (dx, dy); y grows southwards.
DIRECTIONS = {"N": (0, -1), "E": (1, 0), "S": (0, 1), "W": (-1, 0)}
OPPOSITE = {"N": "S", "E": "W", "S": "N", "W": "E"}
#: Kernel arguments the host site delivers (scalar pins ``arg0`` …).
ARGUMENTS = 4


@dataclass(frozen=True)
class Pin:
    """One pin of a site on one fabric.

    ``direction`` is seen from the unit: ``"in"`` pins take data from the fabric
    (route sinks), ``"out"`` pins give data to it (route sources).
    """

    name: str
    fabric: str
    direction: str


def _pins(*spec: str) -> tuple[Pin, ...]:
    out = []
    for item in spec:
        name, fabric, direction = item.split(":")
        out.append(Pin(name, fabric, direction))
    return tuple(out)


#: The pins of each kind of site, in port order. The tile connects them to the
#: component ports of the same name (tested against the components' signatures).
UNIT_PINS: dict[str, tuple[Pin, ...]] = {
    "pcu": _pins("vin0:vector:in", "vin1:vector:in", "vout:vector:out", "sin0:scalar:in",
                 "sin1:scalar:in", "sout:scalar:out", "start:control:in", "done:control:out"),
    "pmu": _pins("vin:vector:in", "vout:vector:out", "sin:scalar:in", "sout:scalar:out",
                 "start:control:in", "wdone:control:out", "rdone:control:out"),
    # an AGCU: write data and read data, scalar addresses/sizes, a start token and done tokens
    "agcu": _pins("vin:vector:in", "vout:vector:out", "sin:scalar:in", "sout:scalar:out",
                  "start:control:in", "done:control:out"),
    "host": _pins(*[f"arg{k}:scalar:out" for k in range(ARGUMENTS)], "start:control:out",
                  "done:control:in"),
}


@dataclass(frozen=True)
class Site:
    """A place a unit attaches to the fabric: its kind, grid position and switch."""

    name: str
    kind: str
    x: int
    y: int
    switch: tuple[int, int]

    @property
    def pins(self) -> tuple[Pin, ...]:
        return UNIT_PINS[self.kind]

    @property
    def role(self) -> str:
        """What the site is to its switch: ``unit`` (its own PCU/PMU), ``agcu_w``, ``agcu_e`` or ``host``.

        A switch has at most one site of each role, so switch ports are named by role and
        switches with the same neighbours and roles are the same hardware module.
        """
        if self.kind in ("pcu", "pmu"):
            return "unit"
        if self.kind == "agcu":
            return "agcu_w" if self.x < 0 else "agcu_e"
        return self.kind

    def pin(self, name: str) -> Pin:
        for pin in self.pins:
            if pin.name == name:
                return pin
        raise KeyError(f"site {self.name} ({self.kind}) has no pin {name!r}; "
                       f"pins: {', '.join(p.name for p in self.pins)}")


class RouteError(ValueError):
    """A route the fabric cannot carry: unknown pins, a missing edge, or a link over capacity."""


class FabricGraph:
    """The routing graph of a preset (see the module docstring).

    Parameters
    ----------
    preset : Preset or str
        Gives the grid size, lane count and tracks per fabric.

    Attributes
    ----------
    graph : networkx.DiGraph
        Nodes and edges as described above; switch nodes carry ``fabric``, link
        edges ``capacity`` 1 (one track).
    sites : dict[str, Site]
        Every site by name, unit sites first (row by row), then AGCUs, then the host.
    """

    def __init__(self, preset: Preset | str):
        self.preset = p = get_preset(preset)
        self.cols, self.rows = p.grid_cols, p.grid_rows
        sites = {}
        for y in range(self.rows):
            for x in range(self.cols):
                kind = "pcu" if (x + y) % 2 == 0 else "pmu"
                sites[f"{kind}_{x}_{y}"] = Site(f"{kind}_{x}_{y}", kind, x, y, (x, y))
        for y in range(self.rows):
            sites[f"agcu_w{y}"] = Site(f"agcu_w{y}", "agcu", -1, y, (0, y))
            sites[f"agcu_e{y}"] = Site(f"agcu_e{y}", "agcu", self.cols, y, (self.cols - 1, y))
        sites["host"] = Site("host", "host", -1, -1, (0, 0))
        self.sites: dict[str, Site] = sites

        g = self.graph = nx.DiGraph()
        for x, y in self.switches:
            for fabric in FABRICS:
                ins, outs = self.switch_inputs(x, y, fabric), self.switch_outputs(x, y, fabric)
                for port in ins:
                    g.add_node(("sw", x, y, fabric, "in", port), fabric=fabric)
                for port in outs:
                    g.add_node(("sw", x, y, fabric, "out", port), fabric=fabric)
                for i in ins:
                    for o in outs:
                        if i[0] in DIRECTIONS and o[0] == i[0]:
                            continue  # no U-turns
                        g.add_edge(("sw", x, y, fabric, "in", i), ("sw", x, y, fabric, "out", o), kind="mux")
                for o in outs:
                    if o[0] in DIRECTIONS:
                        dx, dy = DIRECTIONS[o[0]]
                        peer = ("sw", x + dx, y + dy, fabric, "in", OPPOSITE[o[0]] + o[1:])
                        g.add_edge(("sw", x, y, fabric, "out", o), peer, kind="link", capacity=1)
        for site in sites.values():
            x, y = site.switch
            for pin in site.pins:
                node = ("pin", site.name, pin.name)
                port = f"{site.name}.{pin.name}"
                g.add_node(node, fabric=pin.fabric, direction=pin.direction)
                if pin.direction == "out":
                    g.add_edge(node, ("sw", x, y, pin.fabric, "in", port), kind="attach")
                else:
                    g.add_edge(("sw", x, y, pin.fabric, "out", port), node, kind="attach")

    # ------------------------------------------------------------------ structure
    @cached_property
    def switches(self) -> list[tuple[int, int]]:
        """Switch coordinates, row by row (the order of configuration addresses)."""
        return [(x, y) for y in range(self.rows) for x in range(self.cols)]

    def neighbours(self, x: int, y: int) -> list[str]:
        """Directions in which switch (x, y) has a neighbour."""
        return [d for d, (dx, dy) in DIRECTIONS.items()
                if 0 <= x + dx < self.cols and 0 <= y + dy < self.rows]

    def attached(self, x: int, y: int) -> list[Site]:
        """Sites attached to switch (x, y), in site order."""
        return [s for s in self.sites.values() if s.switch == (x, y)]

    def _ports(self, x, y, fabric, pin_direction):
        if fabric not in FABRICS:
            raise ValueError(f"unknown fabric {fabric!r}; fabrics: {', '.join(FABRICS)}")
        tracks = self.preset.tracks(fabric)
        ports = [f"{d}{t}" for d in self.neighbours(x, y) for t in range(tracks)]
        ports += [f"{s.name}.{p.name}" for s in self.attached(x, y) for p in s.pins
                  if p.fabric == fabric and p.direction == pin_direction]
        return ports

    def switch_inputs(self, x: int, y: int, fabric: str) -> list[str]:
        """Input ports of switch (x, y) on ``fabric``: link tracks, then attached ``out`` pins."""
        return self._ports(x, y, fabric, "out")

    def switch_outputs(self, x: int, y: int, fabric: str) -> list[str]:
        """Output ports of switch (x, y) on ``fabric``: link tracks, then attached ``in`` pins."""
        return self._ports(x, y, fabric, "in")

    def mux_inputs(self, x: int, y: int, fabric: str, output: str) -> list[str]:
        """The inputs output ``output`` can select, in select-code order (code 0 = none, k = k-th)."""
        node = ("sw", x, y, fabric, "out", output)
        return [pred[5] for pred in self.graph.predecessors(node)]

    def role_port(self, port: str) -> str:
        """A switch port by role: ``"pcu_1_1.vin0"`` → ``"unit.vin0"``; track ports are unchanged."""
        if "." not in port:
            return port
        site, pin = port.split(".")
        return f"{self.sites[site].role}.{pin}"

    def switch_key(self, x: int, y: int) -> tuple:
        """Switches with equal keys have identical ports, configuration layout and hardware."""
        return (tuple(self.neighbours(x, y)), tuple((s.role, s.kind) for s in self.attached(x, y)))

    def links(self, fabric: str) -> dict[tuple[tuple[int, int], tuple[int, int]], int]:
        """Capacity (tracks) of every directed switch-to-switch link of ``fabric``."""
        caps: dict = {}
        for a, b, kind in self.graph.edges(data="kind"):
            if kind == "link" and a[3] == fabric:
                key = ((a[1], a[2]), (b[1], b[2]))
                caps[key] = caps.get(key, 0) + 1
        return caps

    def site(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            raise RouteError(f"no site {name!r} in preset {self.preset.name!r}") from None

    def pin_node(self, ref: str, direction: str | None = None) -> tuple:
        """``"site.pin"`` → its node; checks the pin exists (and its direction, if given)."""
        if not isinstance(ref, str) or "." not in ref:
            raise RouteError(f"a pin is named 'site.pin', got {ref!r}")
        site_name, pin_name = ref.split(".", 1)
        site = self.site(site_name)
        try:
            pin = site.pin(pin_name)
        except KeyError as e:
            raise RouteError(str(e.args[0])) from None
        if direction is not None and pin.direction != direction:
            role = "source" if direction == "out" else "sink"
            raise RouteError(f"{ref} is an {pin.direction!r} pin and cannot be a route {role}")
        return ("pin", site_name, pin_name)

    @property
    def config_endpoints(self) -> list[tuple[str, object]]:
        """Configuration addresses in order: every switch, every PCU and PMU site, then every
        AGCU site (addresses exist whether or not a tile builds its AGCUs)."""
        return ([("switch", xy) for xy in self.switches]
                + [(s.kind, s.name) for s in self.sites.values() if s.kind in ("pcu", "pmu")]
                + [("agcu", s.name) for s in self.sites.values() if s.kind == "agcu"])

    def address_of(self, endpoint) -> int:
        """Configuration address of ``(x, y)`` (a switch) or a unit site name."""
        key = ("switch", tuple(endpoint)) if not isinstance(endpoint, str) else \
            (self.site(endpoint).kind, endpoint)
        try:
            return self.config_endpoints.index(key)
        except ValueError:
            raise RouteError(f"{endpoint!r} has no configuration address") from None

    def summary(self) -> dict:
        return {
            "preset": self.preset.name, "switches": len(self.switches), "sites": len(self.sites),
            "nodes": self.graph.number_of_nodes(), "edges": self.graph.number_of_edges(),
            **{f"{f}_links": sum(self.links(f).values()) for f in FABRICS},
        }


def find_route(fg: FabricGraph, source: str, sinks: Sequence[str], *,
               used: Iterable[tuple] = (), tree: Iterable[tuple] = ()) -> list[tuple[tuple, tuple]]:
    """A shortest multicast tree from pin ``source`` to every pin in ``sinks``.

    Sinks are added one by one, each by a shortest path from any node already in
    the tree (so branches share their common trunk), avoiding the switch ports in
    ``used`` (other routes'). ``tree`` holds nodes already in this route's tree (to grow
    it). Returns the new edges.

    Raises
    ------
    RouteError
        Unknown or mis-directed pins, sinks on another fabric, or no free path.
    """
    src = fg.pin_node(source, "out")
    fabric = fg.graph.nodes[src]["fabric"]
    sink_nodes = []
    for ref in sinks:
        node = fg.pin_node(ref, "in")
        if fg.graph.nodes[node]["fabric"] != fabric:
            raise RouteError(f"{ref} is on the {fg.graph.nodes[node]['fabric']} fabric, "
                             f"{source} on the {fabric} fabric")
        sink_nodes.append(node)
    if not sink_nodes:
        raise RouteError(f"route from {source} has no sinks")
    blocked = set(used)
    tree_nodes = {src, *tree}
    edges: list[tuple[tuple, tuple]] = []
    allowed = {n for n, f in fg.graph.nodes(data="fabric") if f == fabric and n not in blocked}
    for sink in sink_nodes:
        if sink in tree_nodes:
            continue
        # pins are only endpoints: never route through another pin
        keep = {n for n in allowed if n[0] != "pin" or n in tree_nodes or n == sink}
        view = fg.graph.subgraph(keep)
        try:
            # sources in a fixed order: ties between equal paths must not depend on set order
            # (string hashes differ between processes, and so would the routes)
            _, path = nx.multi_source_dijkstra(view, sorted(tree_nodes, key=repr), sink)
        except nx.NetworkXNoPath:
            raise RouteError(f"no free path from {source} to {sink[1]}.{sink[2]} "
                             f"on the {fabric} fabric") from None
        for a, b in zip(path, path[1:], strict=False):
            edges.append((a, b))
            tree_nodes.add(b)
    return edges
