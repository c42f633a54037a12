"""The routing graph, route search, kernel image encoder and CRC (pure Python, no simulator)."""

from __future__ import annotations

import random

import pytest
from amaranth import Shape
from amaranth.lib import stream, wiring

from hdl.agcu import AgcuConfig
from hdl.config_port import decode_image
from hdl.counters import Counter
from hdl.kernel_image import Kernel, Route, RouteError
from hdl.launch import Command, command_word
from hdl.network import UNIT_PINS, FabricGraph, fabric_shape, find_route, switch_layout
from hdl.network.crc import CRC_INIT, crc32_words, crc_step
from hdl.network.switch import CONFIG_MAGIC, CONFIG_VERSION
from hdl.pcu import PatternComputeUnit, PcuConfig, Stage
from hdl.pmu import AddressProgram, PatternMemoryUnit, PmuConfig
from hdl.presets import PRESETS
from hdl.tile import TileParams


@pytest.mark.parametrize("name", list(PRESETS))
def test_graph_shape_follows_the_preset(name):
    fg = FabricGraph(name)
    p = fg.preset
    assert len(fg.switches) == p.grid_cols * p.grid_rows
    mesh_links = 2 * ((p.grid_cols - 1) * p.grid_rows + p.grid_cols * (p.grid_rows - 1))
    for fabric in ("vector", "scalar", "control"):
        assert sum(fg.links(fabric).values()) == mesh_links * p.tracks(fabric)
        assert set(fg.links(fabric).values()) == {p.tracks(fabric)}
    kinds = [s.kind for s in fg.sites.values()]
    assert kinds.count("pcu") == p.num_pcus and kinds.count("pmu") == p.num_pmus
    assert kinds.count("agcu") == 2 * p.grid_rows and kinds.count("host") == 1
    # every switch output can take every input except the link it would U-turn on
    x, y = 1, 1 if p.grid_rows > 1 else 0
    for fabric in ("vector", "scalar", "control"):
        for out in fg.switch_outputs(x, y, fabric):
            choices = fg.mux_inputs(x, y, fabric, out)
            inputs = fg.switch_inputs(x, y, fabric)
            assert set(choices) == {i for i in inputs if not (i[0] == out[0] and "." not in out)}


@pytest.mark.parametrize("kind, factory", [
    ("pcu", lambda: PatternComputeUnit(TileParams("tiny").pcu)),
    ("pmu", lambda: PatternMemoryUnit(TileParams("tiny").pmu)),
])
def test_unit_pins_are_the_components_ports(kind, factory):
    unit = factory()
    lanes = TileParams("tiny").preset.lanes
    members = unit.signature.members
    for pin in UNIT_PINS[kind]:
        member = members[pin.name]
        if pin.fabric == "control":
            assert member.is_port and Shape.cast(member.shape).width == 1, pin
            assert member.flow is (wiring.In if pin.direction == "in" else wiring.Out), pin
        else:
            want = stream.Signature(fabric_shape(pin.fabric, lanes))
            assert member.signature == (want.flip() if pin.direction == "in" else want), pin


def test_find_route_is_shortest_and_multicast_shares_its_trunk():
    fg = FabricGraph("small")
    edges = find_route(fg, "agcu_w0.vout", ["agcu_e0.vin"])
    hops = [a for a, b in edges if a[0] == b[0] == "sw" and a[4] == "out"]
    assert len(hops) == 3
    tree = find_route(fg, "agcu_w0.vout", ["agcu_e0.vin", "agcu_e1.vin"])
    heads = [b for _, b in tree]
    assert len(heads) == len(set(heads)), "a node fed twice is not a tree"
    assert sum(1 for a, b in tree if a[0] == b[0] == "sw" and a[4] == "out") == 4  # trunk + one more hop
    used = {a for a, _ in edges if a[0] == "sw"} | {b for _, b in edges if b[0] == "sw"}
    detour = find_route(fg, "agcu_w1.vout", ["agcu_e0.vin"], used=set())
    assert detour
    with pytest.raises(RouteError, match="no free path"):
        find_route(fg, "agcu_w1.vout", ["agcu_e0.vin"], used=used)  # its only way in is taken


def test_route_errors_name_the_problem():
    # one more explicit path over the vector link (0, 0) -> (1, 0) than it has tracks
    tracks = FabricGraph("small").links("vector")[((0, 0), (1, 0))]
    over_link = [
        Route("agcu_w0.vout", ["agcu_e0.vin"], via={"agcu_e0.vin": [(0, 0), (1, 0), (2, 0), (3, 0)]}),
        Route("agcu_w1.vout", ["agcu_e1.vin"],
              via={"agcu_e1.vin": [(0, 1), (0, 0), (1, 0), (1, 1), (2, 1), (3, 1)]}),
        Route("pcu_0_0.vout", ["pmu_3_0.vin"], via={"pmu_3_0.vin": [(0, 0), (1, 0), (2, 0), (3, 0)]}),
    ]
    assert tracks < len(over_link)
    Kernel("small", routes=over_link[:tracks])
    with pytest.raises(RouteError, match=f"over-subscribed: capacity {tracks}"):
        Kernel("small", routes=over_link[:tracks + 1])
    # the same two paths on different fabrics share the links without conflict
    Kernel("small", routes=[
        Route("agcu_w0.vout", ["agcu_e0.vin"], via={"agcu_e0.vin": [(0, 0), (1, 0), (2, 0), (3, 0)]}),
        Route("agcu_w1.sout", ["agcu_e1.sin"],
              via={"agcu_e1.sin": [(0, 1), (0, 0), (1, 0), (1, 1), (2, 1), (3, 1)]}),
    ])
    # two tracks on the control fabric: two routes fit, a third does not
    row = [(0, 0), (1, 0), (2, 0), (3, 0)]
    two = [Route("agcu_w0.done", ["agcu_e0.start"], via={"agcu_e0.start": row}),
           Route("pcu_0_0.done", ["pmu_3_0.start"], via={"pmu_3_0.start": row})]
    Kernel("small", routes=two)
    with pytest.raises(RouteError, match="capacity 2"):
        Kernel("small", routes=[*two, Route("host.start", ["pcu_2_0.start"], via={"pcu_2_0.start": row[:3]})])
    cases = [
        (lambda: Route("agcu_w0.vout", ["agcu_e0.sin"]), "scalar fabric"),
        (lambda: Route("agcu_w0.vin", ["agcu_e0.vin"]), "cannot be a route source"),
        (lambda: Route("agcu_w0.vout", ["agcu_e0.vout"]), "cannot be a route sink"),
        (lambda: Route("nowhere.vout", ["agcu_e0.vin"]), "no site 'nowhere'"),
        (lambda: Route("agcu_w0.vout", ["agcu_e0.vin"], via={"agcu_e0.vin": [(0, 0), (2, 0), (3, 0)]}),
         "not neighbours"),
        (lambda: Route("agcu_w0.vout", ["agcu_e0.vin"], via={"agcu_e0.vin": [(1, 0), (2, 0), (3, 0)]}),
         "a path runs from switch"),
    ]
    for make, message in cases:
        with pytest.raises(RouteError, match=message):
            Kernel("small", routes=[make()])
    with pytest.raises(RouteError, match="sink of two routes"):
        Kernel("small", routes=[Route("agcu_w0.vout", ["agcu_e0.vin"]),
                                Route("agcu_w1.vout", ["agcu_e0.vin"])])
    with pytest.raises(TypeError, match="must be a PmuConfig"):
        Kernel("small", units={"pmu_1_0": PcuConfig()})
    with pytest.raises(ValueError, match="takes no program"):
        Kernel("small", units={"host": PcuConfig()})
    with pytest.raises(TypeError, match="must be a AgcuConfig"):
        Kernel(TileParams("small", agcus=True), units={"agcu_w0": PcuConfig()})
    with pytest.raises(ValueError, match="no AGCU in this tile"):
        Kernel("small", units={"agcu_w0": AgcuConfig()})
    with pytest.raises(ValueError, match="at most 4 kernel arguments"):
        Kernel("small", arguments=[1, 2, 3, 4, 5])


def test_image_records_crcs_and_switch_selects():
    params = TileParams("small")
    prog = PcuConfig(counters=[Counter(0, 4)], stages=[Stage("fadd", "vin0", "vin1")])
    pmu = PmuConfig(write=AddressProgram([Counter(0, 32, 8)]))
    k = Kernel(params, units={"pcu_2_0": prog, "pmu_1_0": pmu},
               routes=[Route("pmu_1_0.vout", ["pcu_2_0.vin0", "pcu_2_0.vin1"]),
                       Route("host.start", ["pmu_1_0.start"])], arguments=[7], done_tokens=3)
    image = k.image()
    i, addresses = 0, []
    while i < len(image):
        head, count = image[i], image[i] & 0xFFFF
        body = image[i + 1:i + 1 + count]
        assert image[i + 1 + count] == crc32_words([head, *body])
        addresses.append(head >> 16)
        endpoint = k.fg.config_endpoints[head >> 16]
        if endpoint[0] == "switch":
            x, y = endpoint[1]
            config = decode_image(body, switch_layout(k.fg, x, y), CONFIG_MAGIC, CONFIG_VERSION, "switch")
            for (fabric, out), source in k.switch_selects()[(x, y)].items():
                assert k.fg.mux_inputs(x, y, fabric, out)[int(config[f"{fabric}.{out}"]) - 1] == source
        i += count + 2
    assert addresses == sorted(addresses) and len(addresses) == len(k.records())
    assert k.fg.address_of("pcu_2_0") in addresses and k.fg.address_of("pmu_1_0") in addresses
    words = k.host_words()
    assert words[0] == command_word(Command.LOAD, len(image))
    assert words[-3:] == [command_word(Command.ARGS, 1), 7, command_word(Command.EXEC, 3)]
    # the multicast to both PCU inputs branches in the PCU's switch: one link hop, two pin outputs
    selects = k.switch_selects()[(2, 0)]
    assert selects[("vector", "pcu_2_0.vin0")] == selects[("vector", "pcu_2_0.vin1")] == "W0"


def test_crc_model_matches_zlib():
    rng = random.Random(5)
    for n in (1, 2, 7, 33):
        words = [rng.getrandbits(32) for _ in range(n)]
        state = CRC_INIT
        for w in words:
            state = crc_step(state, w)
        assert state ^ 0xFFFFFFFF == crc32_words(words)
