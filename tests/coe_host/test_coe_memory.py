"""CoE host memory: allocators, tiers, and segment isolation (an access outside its segment faults)."""

import numpy as np
import pytest

from coe_host.experts import LINE_BYTES, small_ffn_registry
from coe_host.memory import Allocator, CapacityError, SegmentFault, SegmentTable, SocketMemory, Tier
from coe_host.residency import SEG_REQUEST, SEG_WEIGHTS, ResidencyManager
from hdl.agcu.config import AgcuConfig, Segment
from hdl.counters import Counter


def test_allocator_first_fit_and_coalescing():
    a = Allocator(100, 10)
    x, y, z = a.allocate(3), a.allocate(3), a.allocate(4)
    assert (x, y, z) == (100, 103, 106) and a.free_lines == 0 and a.allocate(1) is None
    a.release(y)
    assert a.largest_hole == 3 and not a.can_fit(4)
    a.release(x)
    assert a.largest_hole == 6          # merged with the next hole
    a.release(z)
    assert a.largest_hole == 10 and a.used_lines == 0
    a.check()
    with pytest.raises(ValueError, match="not the start"):
        a.release(105)


def test_tier_regions_are_disjoint_and_capacity_is_enforced():
    t = Tier("hbm", [("router", 2), ("kv", 4), ("experts", 8)])
    assert t.capacity_lines == 14 and t.regions["experts"].base == 6
    r = t.allocate("experts", 8, owner="e")
    assert r.base == 6 and r.nbytes == 8 * LINE_BYTES
    with pytest.raises(CapacityError, match="experts"):
        t.allocate("experts", 1, owner="f")
    t.free(r)
    with pytest.raises(ValueError, match="not a live allocation"):
        t.free(r)
    with pytest.raises(KeyError, match="no region 'sram'"):
        t.allocate("sram", 1, owner="g")


def test_socket_memory_layout_and_errors():
    m = SocketMemory(0, ddr_bytes=1 << 20, hbm_bytes=1 << 20, sram_bytes=1 << 16, router_bytes=4096,
                     kv_bytes=1 << 18, expert_cache_bytes=1 << 18)
    assert m.hbm.region_lines("experts") == (1 << 18) // 64
    assert m.hbm.region_lines("router") == 64
    with pytest.raises(ValueError, match="exceed HBM"):
        SocketMemory(0, ddr_bytes=0, hbm_bytes=1 << 16, sram_bytes=0, kv_bytes=1 << 20)
    with pytest.raises(ValueError, match="does not fit"):
        SocketMemory(0, ddr_bytes=0, hbm_bytes=1 << 20, sram_bytes=0, router_bytes=4096, kv_bytes=1 << 18,
                     expert_cache_bytes=1 << 20)
    with pytest.raises(ValueError, match="backing store"):
        SocketMemory(0, ddr_bytes=1 << 40, hbm_bytes=1 << 20, sram_bytes=0, kv_bytes=0, backing=True)


def _two_experts():
    reg = small_ffn_registry(2, 16, 32, seed=3)
    mem = SocketMemory(0, ddr_bytes=1 << 20, hbm_bytes=1 << 20, sram_bytes=1 << 16, router_bytes=4096,
                       kv_bytes=1 << 16, backing=True)
    reg.place_homes({0: mem}, [(0,)])
    mgr = ResidencyManager({0: mem}, (0,), reg, "lru")
    for e in reg:
        mgr.ensure_resident(e.name)
    return reg, mem, mgr


def test_segments_mirror_the_hardware_entries():
    reg, mem, mgr = _two_experts()
    grant = mgr.begin("q0", "ffn0", 256)
    table = grant.tables[0]
    seg = table.entries[SEG_WEIGHTS]
    assert isinstance(seg, Segment)
    r = mgr.resident["ffn0"].regions[0]
    assert (seg.base, seg.bound, seg.read, seg.write) == (r.base, r.lines, True, False)
    # the payload the RTL-backed mode writes to an AGCU's seg stream encodes without error
    assert seg.payload(table.params) > 0
    assert table.entries[SEG_REQUEST].write


def test_expert_reads_exactly_its_own_weights():
    reg, mem, mgr = _two_experts()
    grant = mgr.begin("q0", "ffn0", 256)
    table = grant.tables[0]
    image = reg["ffn0"].image()
    assert table.load(SEG_WEIGHTS, 0, len(image)) == image     # copied DDR -> HBM, read through the segment
    other = mgr.resident["ffn1"].regions[0]
    lo = table.translate(SEG_WEIGHTS, "load", 0, 1)
    hi = table.translate(SEG_WEIGHTS, "load", len(image) - 1, 1)
    assert not (lo <= other.base * 64 <= hi)                      # every reachable byte is ffn0's


@pytest.mark.parametrize("index, direction, offset, nbytes, why", [
    (SEG_WEIGHTS, "load", None, 1, "beyond bound"),               # one byte past the weights
    (SEG_WEIGHTS, "load", -64, 64, "negative"),
    (SEG_WEIGHTS, "store", 0, 64, "does not permit store"),       # weights are read-only
    (SEG_REQUEST, "load", None, 1, "beyond bound"),               # past the request's KV cache
    (2, "load", 0, 1, "not written"),                             # no third segment
])
def test_access_outside_its_segment_faults(index, direction, offset, nbytes, why):
    reg, mem, mgr = _two_experts()
    grant = mgr.begin("q0", "ffn0", 256)
    table = grant.tables[0]
    if offset is None:
        offset = table.entries[index].bound * 64
    before = mem.hbm.data.copy()
    with pytest.raises(SegmentFault, match=why):
        if direction == "load":
            table.load(index, offset, nbytes)
        else:
            table.store(index, offset, bytes(nbytes))
    assert np.array_equal(before, mem.hbm.data)                   # a faulting access moves no data


def test_agcu_runs_are_checked_like_the_hardware():
    reg, mem, mgr = _two_experts()
    grant = mgr.begin("q0", "ffn0", 256)
    table = grant.tables[0]
    vectors = table.entries[SEG_WEIGHTS].bound * table.params.vectors_per_line
    table.check_run(AgcuConfig("load", SEG_WEIGHTS, [Counter(0, vectors)]))          # the whole segment
    with pytest.raises(SegmentFault, match="AGCU run faults"):
        table.check_run(AgcuConfig("load", SEG_WEIGHTS, [Counter(0, vectors + 1)]))  # one vector too many
    with pytest.raises(SegmentFault):
        table.check_run(AgcuConfig("store", SEG_WEIGHTS, [Counter(0, 1)]))           # read-only
    with pytest.raises(SegmentFault):
        table.check_run(AgcuConfig("load", SEG_WEIGHTS, [Counter(0, 1)], base_from_scalar=True),
                        scalar=vectors)                                               # argument past the end
    table.check_run(AgcuConfig("store", SEG_REQUEST, [Counter(0, 4)]))


def test_segments_are_revoked_when_the_request_ends():
    reg, mem, mgr = _two_experts()
    grant = mgr.begin("q0", "ffn0", 256)
    mgr.end("q0")
    with pytest.raises(SegmentFault, match="not written"):
        grant.tables[0].load(SEG_WEIGHTS, 0, 1)


def test_segment_table_refuses_a_region_of_another_tier():
    reg, mem, mgr = _two_experts()
    ddr_region = mem.ddr.live()[0]
    with pytest.raises(ValueError, match="cannot map"):
        SegmentTable(mem.hbm).grant(0, ddr_region)
