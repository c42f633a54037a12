"""Residency and eviction: policy orders, and the invariants property-tested with hypothesis —
the running (or reserved, or still copying) expert is never evicted, a live KV cache is never
evicted, and no region ever holds more than its capacity."""

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coe_host.experts import Architecture, Expert, ExpertRegistry, small_ffn_registry
from coe_host.memory import CapacityError, SocketMemory
from coe_host.residency import POLICIES, ResidencyManager

LINE = 64


def _registry(sizes_lines: list[int], shards: int) -> ExpertRegistry:
    """Experts whose shards are ``sizes_lines`` lines on each of ``shards`` sockets (bf16 params)."""
    arch = Architecture(layers=1, d_model=8, ffn=8, kind="ffn")
    return ExpertRegistry(Expert(f"e{i}", arch, float(n * shards * LINE // 2), "d")
                          for i, n in enumerate(sizes_lines))


def _memories(sockets: int, cache_lines: int, kv_lines: int) -> dict[int, SocketMemory]:
    return {s: SocketMemory(s, ddr_bytes=1 << 16, hbm_bytes=(cache_lines + kv_lines + 1) * LINE,
                            sram_bytes=4 * LINE, router_bytes=LINE, kv_bytes=kv_lines * LINE,
                            expert_cache_bytes=cache_lines * LINE)
            for s in range(sockets)}


def _manager(sizes, policy="lru", cache_lines=8, kv_lines=8, sockets=1, copy=None):
    reg = _registry(sizes, sockets)
    mems = _memories(sockets, cache_lines, kv_lines)
    return reg, ResidencyManager(mems, tuple(range(sockets)), reg, policy, copy)


def _touch(mgr, names):
    for n in names:
        mgr.ensure_resident(n)


def test_lru_evicts_the_least_recently_used():
    reg, mgr = _manager([4, 4, 4], "lru")
    _touch(mgr, ["e0", "e1", "e0"])
    res = mgr.ensure_resident("e2")
    assert res.evicted == ("e1",) and not res.hit and res.bytes_copied == 4 * LINE


def test_lfu_evicts_the_least_frequently_used():
    reg, mgr = _manager([4, 4, 4], "lfu")
    _touch(mgr, ["e0", "e0", "e1"])
    assert mgr.ensure_resident("e2").evicted == ("e1",)
    _touch(mgr, ["e1"])                                   # e1 comes back: history keeps its count (2)
    assert not mgr.is_resident("e2")                      # e2 (1 use) went, not e0 (2 uses)


def test_cost_policy_keeps_the_expert_dearer_to_reload():
    reload = {"e0": 10.0, "e1": 1.0, "e2": 1.0}
    reg, mgr = _manager([4, 4, 4], "cost", copy=lambda e, s: reload[e.name])
    _touch(mgr, ["e0", "e1"])                             # equal use counts, e0 older but 10x dearer
    assert mgr.ensure_resident("e2", now=100.0).evicted == ("e1",)
    reg, mgr = _manager([4, 4, 4], "lru", copy=lambda e, s: reload[e.name])
    _touch(mgr, ["e0", "e1"])
    assert mgr.ensure_resident("e2", now=100.0).evicted == ("e0",)  # LRU does not care


def test_switch_timing_serialises_copies_on_the_engine():
    reg, mgr = _manager([4, 4, 4], "lru", cache_lines=12, copy=lambda e, s: 2.0)
    a = mgr.ensure_resident("e0", now=0.0)
    b = mgr.ensure_resident("e1", now=0.5)                # prefetch-like: the engine is busy until 2.0
    assert (a.start_s, a.ready_s) == (0.0, 2.0) and (b.start_s, b.ready_s) == (2.0, 4.0)
    assert mgr.ensure_resident("e1", now=1.0).ready_s == 4.0   # a hit still waits for the copy


def test_running_expert_is_never_evicted():
    reg, mgr = _manager([4, 4], "lru", cache_lines=4)
    mgr.ensure_resident("e0")
    mgr.begin("r0", "e0", LINE)
    with pytest.raises(CapacityError, match="pinned or in flight: e0"):
        mgr.ensure_resident("e1")
    assert mgr.is_resident("e0") and not mgr.is_resident("e1")
    mgr.end("r0")
    assert mgr.ensure_resident("e1").evicted == ("e0",)


def test_in_flight_copy_is_never_evicted():
    reg, mgr = _manager([4, 4], "lru", cache_lines=4, copy=lambda e, s: 1.0)
    mgr.ensure_resident("e0", now=0.0)                    # copying until 1.0
    with pytest.raises(CapacityError):
        mgr.ensure_resident("e1", now=0.5)
    assert mgr.ensure_resident("e1", now=1.0).evicted == ("e0",)


def test_expert_larger_than_the_cache_is_refused():
    reg, mgr = _manager([9], "lru", cache_lines=8)
    with pytest.raises(CapacityError, match="needs 9 lines"):
        mgr.ensure_resident("e0")


def test_kv_caches_live_are_kept_finished_are_reclaimed():
    reg, mgr = _manager([2], "lru", kv_lines=4)
    mgr.ensure_resident("e0")
    mgr.begin("r0", "e0", 2 * LINE)
    mgr.begin("r1", "e0", 2 * LINE)
    with pytest.raises(CapacityError, match="KV region"):
        mgr.begin("r2", "e0", LINE)                       # both live: nothing may go
    mgr.end("r0")                                          # retained, reclaimable
    mgr.begin("r2", "e0", LINE)
    assert mgr.stats["kv_reclaimed"] == 1 and "r1" in mgr.live
    mgr.check()


def test_sram_buffers_live_with_their_request():
    reg, mgr = _manager([2], "lru")
    mgr.ensure_resident("e0")
    g = mgr.begin("r0", "e0", LINE, sram_bytes=3 * LINE)
    assert g.scratch[0].lines == 3 and g.scratch[0].tier == "sram"
    with pytest.raises(CapacityError, match="SRAM"):
        mgr.begin("r1", "e0", LINE, sram_bytes=2 * LINE)      # 4-line SRAM: nothing allocated
    assert "r1" not in mgr.live and mgr.memories[0].hbm.used_lines("kv") == 1
    mgr.end("r0")
    assert mgr.memories[0].sram.used_lines() == 0


def test_sharded_expert_occupies_every_socket_of_the_group():
    reg, mgr = _manager([3, 3], "lru", cache_lines=6, sockets=4)
    res = mgr.ensure_resident("e0")
    assert res.bytes_copied == 4 * 3 * LINE
    assert set(mgr.resident["e0"].regions) == {0, 1, 2, 3}
    mgr.check()


def test_backing_store_copy_moves_the_real_weights():
    reg = small_ffn_registry(2, 8, 16, seed=1)
    mem = SocketMemory(0, ddr_bytes=1 << 16, hbm_bytes=1 << 16, sram_bytes=LINE, router_bytes=LINE,
                       kv_bytes=1 << 12, backing=True)
    reg.place_homes({0: mem}, [(0,)])
    mgr = ResidencyManager({0: mem}, (0,), reg, "lru")
    for e in reg:
        mgr.ensure_resident(e.name)
        r = mgr.resident[e.name].regions[0]
        assert mem.hbm.read(r.base * LINE, r.lines * LINE) == e.image()


# ---------------------------------------------------------------------------------------------
# property tests

_run = st.tuples(st.just("run"), st.integers(0, 5), st.integers(1, 3))       # start a request (expert, KV)
_end = st.tuples(st.just("end"), st.integers(0, 7), st.just(0))               # end the k-th live request
_prefetch = st.tuples(st.just("prefetch"), st.integers(0, 5), st.just(0))     # reserve + copy early
_release = st.tuples(st.just("release"), st.integers(0, 7), st.just(0))       # drop the k-th reservation
_wait = st.tuples(st.just("wait"), st.integers(1, 4), st.just(0))             # time passes
ops = st.lists(st.one_of(_run, _run, _run, _end, _end, _prefetch, _release, _wait), min_size=8, max_size=60)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 5), min_size=6, max_size=6), cache=st.integers(5, 14),
       kv=st.integers(3, 8), sockets=st.integers(1, 3), policy=st.sampled_from(POLICIES),
       copy_time=st.sampled_from([0.0, 0.5, 2.0]), program=ops)
def test_residency_invariants(sizes, cache, kv, sockets, policy, copy_time, program):
    reg, mgr = _manager(sizes, policy, cache_lines=cache, kv_lines=kv, sockets=sockets,
                        copy=lambda e, s: copy_time * e.shard_lines(len(s)))
    now = 0.0
    live: list[tuple[str, str]] = []          # (request, expert)
    reserved: list[str] = []                  # pinned for a next request
    serial = 0

    def protected():
        names = {e for _, e in live} | set(reserved)
        names |= {n for n, r in mgr.resident.items() if r.ready_at > now}
        return names

    for op, a, b in program:
        before = set(mgr.resident)
        guarded = protected()
        if op in ("run", "prefetch"):
            name = f"e{a}"
            try:
                res = mgr.ensure_resident(name, now, prefetch=op == "prefetch")
            except CapacityError:
                event("capacity error")
                assert set(mgr.resident) == before                    # all or nothing
            else:
                event(f"evictions: {min(len(res.evicted), 2)}")
                assert not set(res.evicted) & guarded, "evicted a running, reserved or in-flight expert"
                assert set(res.evicted) <= before
                if op == "prefetch":
                    mgr.pin(name)
                    reserved.append(name)
                else:
                    now = max(now, res.ready_s)                      # wait for the copy, then run
                    rid = f"r{serial}"
                    serial += 1
                    try:
                        mgr.begin(rid, name, b * LINE * sockets, now, sram_bytes=(b - 1) * LINE)
                    except CapacityError:
                        pass                                          # KV region full of live caches
                    else:
                        live.append((rid, name))
        elif op == "end" and live:
            rid, _ = live.pop(a % len(live))
            mgr.end(rid)
        elif op == "release" and reserved:
            mgr.unpin(reserved.pop(a % len(reserved)))
        elif op == "wait":
            now += a
        mgr.check()                                                   # capacity, accounting, live KV
        for _, e in live:
            assert mgr.is_resident(e) and mgr.resident[e].pins > 0
        for e in reserved:
            assert mgr.is_resident(e)
        for s in mgr.sockets:
            mem = mgr.memories[s]
            assert mem.hbm.used_lines("experts") <= cache
            assert mem.hbm.used_lines("kv") <= kv
            scratch = sum(g.scratch[s].lines for g in mgr.live.values() if g.scratch)
            assert mem.sram.used_lines() == scratch <= 4
            live_kv = sum(g.kv[s].lines for g in mgr.live.values())
            assert live_kv <= mem.hbm.used_lines("kv")
