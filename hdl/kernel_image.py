"""Kernel configuration → image words: unit programs, routes and arguments of one tile.

A :class:`Kernel` says what every unit runs (:class:`hdl.pcu.PcuConfig`,
:class:`hdl.pmu.PmuConfig`), which pins are connected (:class:`Route`: one source
pin, one or more sink pins, optionally the switches to pass), the kernel
arguments and how many done tokens end it. :meth:`Kernel.image` turns it into the
words of a LOAD (records with CRCs, :mod:`hdl.launch`) and
:meth:`Kernel.host_words` into the whole host command sequence.

Routes are checked against the routing graph: pins must exist and face the right
way, a path must follow graph edges, and no switch output (one track of a link,
or a unit pin) may carry two routes. Sinks without a path are routed all together by
:func:`hdl.network.router.route_nets` (negotiated congestion) around the explicit paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .agcu import AgcuConfig
from .launch import Command, command_word
from .network.crc import crc32_words
from .network.graph import ARGUMENTS, DIRECTIONS, OPPOSITE, FabricGraph, RouteError
from .network.router import Net, route_nets
from .network.switch import encode_switch
from .params import TileParams
from .pcu import PcuConfig
from .pmu import PmuConfig

__all__ = ["Route", "Kernel", "RouteError"]


@dataclass(frozen=True)
class Route:
    """A static flow: one source pin to one or more sink pins on the same fabric.

    Parameters
    ----------
    source : str
        ``"site.pin"`` of an ``out`` pin (``"pmu_1_0.vout"``, ``"host.start"``).
    sinks : sequence of str
        ``"site.pin"`` of ``in`` pins; more than one makes a multicast (the source
        advances only when every sink's path has room).
    via : mapping of sink → sequence of (x, y), optional
        The switches a sink's path passes, from the source's switch to the sink's.
        Sinks not named here are routed automatically.
    """

    source: str
    sinks: tuple[str, ...]
    via: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def __init__(self, source: str, sinks: str | Sequence[str], via: Mapping | None = None):
        sinks = (sinks,) if isinstance(sinks, str) else tuple(sinks)
        if not sinks:
            raise RouteError(f"route from {source} has no sinks")
        if len(set(sinks)) != len(sinks):
            raise RouteError(f"route from {source} names a sink twice")
        via = {k: tuple(tuple(xy) for xy in v) for k, v in (via or {}).items()}
        unknown = [k for k in via if k not in sinks]
        if unknown:
            raise RouteError(f"route from {source}: 'via' names {', '.join(unknown)}, "
                             f"which are not its sinks")
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "sinks", sinks)
        object.__setattr__(self, "via", via)


def _link_name(node) -> str:
    _, x, y, fabric, _, port = node
    dx, dy = DIRECTIONS[port[0]]
    return f"link ({x}, {y}) -> ({x + dx}, {y + dy}) on the {fabric} fabric"


class Kernel:
    """A whole-tile kernel: unit programs, routes, arguments, completion.

    Parameters
    ----------
    params : TileParams, Preset or str
        The tile it runs on.
    units : mapping of site name → PcuConfig, PmuConfig or AgcuConfig
        Programs; a site not named stays unconfigured. AGCU programs need a tile built
        with ``agcus=True``.
    routes : sequence of Route
    arguments : sequence of int
        Up to :data:`hdl.network.ARGUMENTS` 32-bit words, sent on ``host.arg0 …`` at EXEC.
    done_tokens : int
        Tokens on ``host.done`` that end the kernel (1 to 65535).

    Raises
    ------
    RouteError
        For a route the fabric cannot carry (the message names the pin, edge or link).
    ValueError, TypeError
        For programs on the wrong kind of site, bad arguments or token counts.
    """

    def __init__(self, params, units: Mapping[str, PcuConfig | PmuConfig | AgcuConfig] | None = None,
                 routes: Sequence[Route] = (), arguments: Sequence[int] = (), done_tokens: int = 1):
        self.params = params if isinstance(params, TileParams) else TileParams(params)
        self.fg = fg = FabricGraph(self.params.preset)
        self.units = dict(units or {})
        for name, config in self.units.items():
            site = fg.site(name)
            want = {"pcu": PcuConfig, "pmu": PmuConfig, "agcu": AgcuConfig}.get(site.kind)
            if want is None:
                raise ValueError(f"site {name} is an {site.kind} and takes no program")
            if not isinstance(config, want):
                raise TypeError(f"site {name} is a {site.kind.upper()}; its program must be a "
                                f"{want.__name__}, got {type(config).__name__}")
            if site.kind == "agcu" and not self.params.agcus:
                raise ValueError(f"site {name} has no AGCU in this tile "
                                 f"(build it with TileParams(agcus=True))")
        if len(arguments) > ARGUMENTS:
            raise ValueError(f"at most {ARGUMENTS} kernel arguments, got {len(arguments)}")
        self.arguments = [int(a) for a in arguments]
        for a in self.arguments:
            if not 0 <= a < 1 << 32:
                raise ValueError(f"kernel arguments are 32-bit words, got {a}")
        if isinstance(done_tokens, bool) or not isinstance(done_tokens, int) \
                or not 1 <= done_tokens < 1 << 16:
            raise ValueError(f"done_tokens must be an int in [1, 65535], got {done_tokens!r}")
        self.done_tokens = done_tokens
        self.routes = list(routes)
        taken: dict[str, str] = {}
        for route in self.routes:
            if not isinstance(route, Route):
                raise TypeError(f"routes must be Route objects, got {type(route).__name__}")
            for sink in route.sinks:
                if sink in taken:
                    raise RouteError(f"pin {sink} is the sink of two routes (from {taken[sink]} and "
                                     f"{route.source}); a pin takes one route")
                taken[sink] = route.source
        self.trees: list[list[tuple]] = []
        used: dict[tuple, int] = {}

        def claim(i: int, tree: list[tuple]) -> None:
            for node in sorted({n for edge in tree for n in edge if n[0] == "sw"}, key=repr):
                if node in used and used[node] != i:
                    other = self.routes[used[node]]
                    pin = "." in node[5]
                    where = f"pin {node[5]}" if pin else _link_name(node)
                    capacity = 1 if pin else fg.preset.tracks(node[3])
                    raise RouteError(f"{where} is over-subscribed: capacity {capacity}, wanted by the "
                                     f"routes from {other.source} and {self.routes[i].source}")
                used[node] = i

        # explicit paths first, then every automatic sink of every route together
        # (negotiated congestion, hdl.network.router), around the explicit paths
        trees: dict[int, list[tuple]] = {}
        for i, route in enumerate(self.routes):
            if route.via:
                trees[i] = self._place_via(route, used)
                claim(i, trees[i])
            else:
                trees[i] = []
        auto = [i for i, route in enumerate(self.routes) if any(s not in route.via for s in route.sinks)]
        nets = [Net(self.routes[i].source, [s for s in self.routes[i].sinks if s not in self.routes[i].via],
                    tree={n for edge in trees[i] for n in edge}) for i in auto]
        for i, edges in zip(auto, route_nets(fg, nets, blocked=set(used)), strict=True):
            trees[i] = trees[i] + edges
            claim(i, edges)
        self.trees = [trees[i] for i in range(len(self.routes))]

    # ------------------------------------------------------------------ routing
    def _place_via(self, route: Route, used: Mapping[tuple, int]) -> list[tuple]:
        """The edges of ``route``'s explicit paths (its ``via``), on free tracks."""
        fg = self.fg
        src = fg.pin_node(route.source, "out")
        fabric = fg.graph.nodes[src]["fabric"]
        edges: list[tuple] = []
        pred: dict[tuple, tuple] = {}

        def add(a, b):
            if not fg.graph.has_edge(a, b):
                raise RouteError(f"route from {route.source}: no edge {a} -> {b} in the routing graph")
            if b in pred:
                if pred[b] != a:
                    raise RouteError(f"route from {route.source}: its paths reach {b} from two places")
                return
            pred[b] = a
            edges.append((a, b))

        for sink, path in route.via.items():
            dst = fg.pin_node(sink, "in")
            if fg.graph.nodes[dst]["fabric"] != fabric:
                raise RouteError(f"{sink} is on the {fg.graph.nodes[dst]['fabric']} fabric, "
                                 f"{route.source} on the {fabric} fabric")
            s_site, d_site = fg.site(src[1]), fg.site(dst[1])
            if not path or path[0] != s_site.switch or path[-1] != d_site.switch:
                raise RouteError(f"route {route.source} -> {sink}: a path runs from switch {s_site.switch} "
                                 f"to switch {d_site.switch}, got {list(path)}")
            node = ("sw", *path[0], fabric, "in", route.source)
            add(src, node)
            for a, b in zip(path, path[1:], strict=False):
                step = (b[0] - a[0], b[1] - a[1])
                dirs = [d for d, v in DIRECTIONS.items() if v == step]
                if not dirs or b not in fg.switches:
                    raise RouteError(f"route {route.source} -> {sink}: switches {a} and {b} "
                                     f"are not neighbours")
                d = dirs[0]
                tracks = fg.preset.tracks(fabric)
                options = [("sw", *a, fabric, "out", f"{d}{t}") for t in range(tracks)]
                mine = [o for o in options if pred.get(o) == node]
                free = [o for o in options if o not in used and o not in pred]
                if mine:
                    out = mine[0]
                elif free:
                    out = free[0]
                else:
                    owner = used.get(options[0])
                    by = f" (used by the route from {self.routes[owner].source})" if owner is not None else ""
                    raise RouteError(f"{_link_name(options[0])} is over-subscribed: capacity {tracks}, "
                                     f"all tracks taken{by}")
                add(node, out)
                node = ("sw", *b, fabric, "in", OPPOSITE[d] + out[5][1:])
                add(out, node)
            out = ("sw", *path[-1], fabric, "out", sink)
            add(node, out)
            add(out, dst)
        return edges

    # ------------------------------------------------------------------ words
    def switch_selects(self) -> dict[tuple[int, int], dict[tuple[str, str], str]]:
        """For every switch a route passes: ``{(fabric, output): input}``."""
        selects: dict = {}
        for tree in self.trees:
            for a, b in tree:
                if a[0] == "sw" and b[0] == "sw" and a[4] == "in" and b[4] == "out":
                    selects.setdefault((a[1], a[2]), {})[(a[3], b[5])] = a[5]
        return selects

    def records(self) -> list[tuple[int, list[int]]]:
        """``(configuration address, endpoint image words)`` in address order."""
        fg = self.fg
        out = []
        for (x, y), selects in self.switch_selects().items():
            out.append((fg.address_of((x, y)), encode_switch(fg, x, y, selects)))
        for name, config in self.units.items():
            params = (self.params.pcu if isinstance(config, PcuConfig) else
                      self.params.agcu if isinstance(config, AgcuConfig) else self.params.pmu)
            out.append((fg.address_of(name), config.encode(params)))
        return sorted(out)

    def image(self) -> list[int]:
        """The words of a LOAD: per record, ``address << 16 | count``, the words, then their CRC-32."""
        words = []
        for address, body in self.records():
            head = (address << 16) | len(body)
            words += [head, *body, crc32_words([head, *body])]
        return words

    def host_words(self) -> list[int]:
        """LOAD the image, ARGS, EXEC: everything the host sends to launch the kernel."""
        image = self.image()
        words = [command_word(Command.LOAD, len(image)), *image]
        if self.arguments:
            words += [command_word(Command.ARGS, len(self.arguments)), *self.arguments]
        return words + [command_word(Command.EXEC, self.done_tokens)]

    def summary(self) -> dict:
        hops = {}
        for route, tree in zip(self.routes, self.trees, strict=True):
            hops[route.source] = sum(1 for a, b in tree if a[0] == "sw" and b[0] == "sw" and a[4] == "out")
        records = self.records()
        image_words = sum(len(body) + 2 for _, body in records)  # address word, body, CRC
        return {"records": len(records), "image_words": image_words, "link_hops": hops}
