"""Expert residency in HBM: switching (DDR → HBM copies), eviction policies, prefetch, KV caches.

A :class:`ResidencyManager` owns the HBM expert caches of one *serving group* — the sockets
(or GPUs) one expert runs on, tensor parallel: shard ``k`` of an expert lives on the group's
``k``-th socket. It keeps three promises, property-tested in ``tests/coe_host/test_coe_residency.py``:

* the running expert (and one reserved for the next request) is never evicted: it is *pinned*;
  a copy still in flight is never evicted either;
* a live request's KV cache is never evicted (finished requests' KV caches are retained and
  are the only ones reclaimed when the KV region is full);
* no region ever holds more than its capacity (allocations come from the tiers' allocators;
  eviction is planned on clones and applied only if it makes room — all or nothing).

Switching: :meth:`ResidencyManager.ensure_resident` hits, or plans evictions by the policy,
allocates the shards, copies them (bytes move in the backing stores when the tiers have them)
and returns when the copy is done, from the group's copy engine (one DMA stream per socket,
all sockets in parallel; copies are serialised on the engine). ``prefetch=True`` is the same
copy issued early, so that it overlaps the running expert.

Policies (``policy=``):

``lru``   least recently used (a logical clock: every access ticks it);
``lfu``   fewest requests so far (history kept across evictions), then least recent;
``cost``  GreedyDual with frequency: an entry's priority is ``L + uses × reload_s`` where
          ``reload_s`` is its DDR → HBM copy time on this group; the lowest priority goes, and
          ``L`` rises to it — experts that are dear to reload (large, remote) or popular stay,
          and aging keeps stale ones from staying forever.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .experts import Expert, ExpertRegistry, lines_of
from .memory import CapacityError, Region, SegmentTable, SocketMemory

__all__ = ["POLICIES", "Resident", "SwitchResult", "Grant", "ResidencyManager"]

POLICIES = ("lru", "lfu", "cost")

#: Segment table entries of an expert kernel (per socket): its weights shard, its request's buffers.
SEG_WEIGHTS, SEG_REQUEST = 0, 1


@dataclass
class Resident:
    name: str
    regions: dict[int, Region]
    ready_at: float
    reload_s: float
    last_use: int
    seq: int
    priority: float = 0.0
    pins: int = 0

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.regions.values())


@dataclass(frozen=True)
class SwitchResult:
    """What :meth:`ResidencyManager.ensure_resident` did."""

    expert: str
    hit: bool
    evicted: tuple[str, ...]
    bytes_copied: int
    start_s: float
    ready_s: float
    copy_s: float
    prefetch: bool = False


@dataclass
class Grant:
    """A request's view of memory: per socket, the segment table its expert's kernels get."""

    request: str
    expert: str
    kv: dict[int, Region]
    tables: dict[int, SegmentTable] = field(default_factory=dict)
    scratch: dict[int, Region] = field(default_factory=dict)      # on-chip SRAM (PMU buffers)


class ResidencyManager:
    """HBM residency of experts for one serving group.

    Parameters
    ----------
    memories : mapping socket -> SocketMemory
        The group's sockets' memories (and, for copies with data, the homes' sockets).
    sockets : sequence of int
        The group; shard ``k`` of an expert goes to ``sockets[k]``.
    registry : ExpertRegistry
    policy : str
        ``lru``, ``lfu`` or ``cost``.
    copy_seconds : callable(expert, sockets) -> float
        Time to copy the whole expert into this group (from :mod:`coe_host.nodemodel`).
    """

    def __init__(self, memories: Mapping[int, SocketMemory], sockets: Sequence[int], registry: ExpertRegistry,
                 policy: str = "lru", copy_seconds: Callable[[Expert, tuple[int, ...]], float] | None = None,
                 *, name: str = "group"):
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
        self.memories = memories
        self.sockets = tuple(sockets)
        for s in self.sockets:
            if s not in memories:
                raise ValueError(f"socket {s} of the group has no memory")
        self.registry = registry
        self.policy = policy
        self.copy_seconds = copy_seconds or (lambda e, s: 0.0)
        self.name = name
        self.resident: dict[str, Resident] = {}
        self.freq: dict[str, int] = {}
        self.copy_free_at = 0.0
        self.live: dict[str, Grant] = {}
        self.retained: OrderedDict[str, dict[int, Region]] = OrderedDict()
        self._tick = 0
        self._seq = 0
        self._age = 0.0            # GreedyDual's L
        self.stats = {"hits": 0, "misses": 0, "prefetches": 0, "evictions": 0, "bytes_copied": 0,
                      "kv_reclaimed": 0}

    # -- queries -----------------------------------------------------------------------------------
    def shard_lines(self, expert: Expert) -> int:
        return expert.shard_lines(len(self.sockets))

    def is_resident(self, name: str) -> bool:
        return name in self.resident

    def cache_lines(self) -> int:
        """Expert-cache lines of one socket of the group (the smallest)."""
        return min(self.memories[s].hbm.region_lines("experts") for s in self.sockets)

    def capacity_experts(self, expert: Expert) -> int:
        """How many experts of ``expert``'s size the cache holds at once."""
        return self.cache_lines() // self.shard_lines(expert)

    # -- policy ------------------------------------------------------------------------------------
    def _touch(self, r: Resident) -> None:
        self._tick += 1
        r.last_use = self._tick
        if self.policy == "cost":
            r.priority = self._age + self.freq.get(r.name, 0) * r.reload_s

    def eviction_order(self, now: float) -> list[Resident]:
        """Evictable residents (unpinned, copy done by ``now``), first victim first."""
        cands = [r for r in self.resident.values() if r.pins == 0 and r.ready_at <= now]
        if self.policy == "lru":
            key = lambda r: (r.last_use, r.seq)                        # noqa: E731
        elif self.policy == "lfu":
            key = lambda r: (self.freq.get(r.name, 0), r.last_use, r.seq)  # noqa: E731
        else:
            key = lambda r: (r.priority, r.last_use, r.seq)            # noqa: E731
        return sorted(cands, key=key)

    def _plan(self, lines: int, now: float) -> list[Resident]:
        """Victims that make a hole of ``lines`` on every socket of the group (all or nothing)."""
        clones = {s: self.memories[s].hbm.regions["experts"].clone() for s in self.sockets}
        if all(c.can_fit(lines) for c in clones.values()):
            return []
        victims = []
        for r in self.eviction_order(now):
            for s, reg in r.regions.items():
                clones[s].release(reg.base)
            victims.append(r)
            if all(c.can_fit(lines) for c in clones.values()):
                return victims
        cap = self.cache_lines()
        pinned = [r.name for r in self.resident.values() if r.pins or r.ready_at > now]
        raise CapacityError(f"{self.name}: no room for {lines} lines per socket in an expert cache of {cap} "
                            f"lines; pinned or in flight: {', '.join(pinned) or 'none'}")

    def _evict(self, r: Resident) -> None:
        assert r.pins == 0, f"evicting pinned expert {r.name}"
        for s, reg in r.regions.items():
            self.memories[s].hbm.free(reg)
        del self.resident[r.name]
        if self.policy == "cost":
            self._age = max(self._age, r.priority)
        self.stats["evictions"] += 1

    # -- switching ---------------------------------------------------------------------------------
    def ensure_resident(self, expert: Expert | str, now: float = 0.0, *, prefetch: bool = False,
                        count: bool = True) -> SwitchResult:
        """Make ``expert`` resident in this group's HBM; copy DDR → HBM when missing.

        ``count`` adds one request to the expert's frequency (LFU, cost); a prefetch counts its
        request too, and the later demand for it then passes ``count=False``.
        Raises :class:`CapacityError` (with nothing changed) when no eviction makes room.
        """
        e = self.registry[expert] if isinstance(expert, str) else expert
        if count:
            self.freq[e.name] = self.freq.get(e.name, 0) + 1
        r = self.resident.get(e.name)
        if r is not None:
            self._touch(r)
            if not prefetch:
                self.stats["hits"] += 1
            return SwitchResult(e.name, True, (), 0, now, max(now, r.ready_at), 0.0, prefetch)
        lines = self.shard_lines(e)
        if lines > self.cache_lines():
            raise CapacityError(f"{self.name}: expert {e.name} needs {lines} lines per socket, the expert "
                                f"cache has {self.cache_lines()}")
        victims = self._plan(lines, now)
        for v in victims:
            self._evict(v)
        regions = {}
        copied = 0
        for k, s in enumerate(self.sockets):
            mem = self.memories[s]
            regions[s] = mem.hbm.allocate("experts", lines, owner=f"expert:{e.name}:{k}")
            if k < len(e.home):
                src = e.home[k]
                home = self.memories.get(src.socket)
                if home is not None and home.ddr.data is not None and mem.hbm.data is not None:
                    payload = home.ddr.read(src.base * 64, min(src.lines, lines) * 64)
                    mem.hbm.write(regions[s].base * 64, payload)
            copied += lines * 64
        copy_s = float(self.copy_seconds(e, self.sockets))
        start = max(now, self.copy_free_at)
        ready = start + copy_s
        self.copy_free_at = ready
        self._seq += 1
        r = Resident(e.name, regions, ready, copy_s, 0, self._seq)
        self.resident[e.name] = r
        self._touch(r)
        self.stats["prefetches" if prefetch else "misses"] += 1
        self.stats["bytes_copied"] += copied
        evicted = tuple(v.name for v in victims)
        return SwitchResult(e.name, False, evicted, copied, start, ready, copy_s, prefetch)

    def pin(self, name: str) -> None:
        try:
            self.resident[name].pins += 1
        except KeyError:
            raise ValueError(f"cannot pin {name!r}: not resident in {self.name}") from None

    def unpin(self, name: str) -> None:
        r = self.resident.get(name)
        if r is None or r.pins == 0:
            raise ValueError(f"cannot unpin {name!r}: not pinned in {self.name}")
        r.pins -= 1

    # -- requests: KV caches and segment tables -------------------------------------------------
    def _alloc_kv(self, request: str, lines: int) -> dict[int, Region]:
        def fits():
            return all(self.memories[s].hbm.regions["kv"].can_fit(lines) for s in self.sockets)

        # reclaim retained (finished) KV caches, oldest first, only as far as needed — planned first
        clones = {s: self.memories[s].hbm.regions["kv"].clone() for s in self.sockets}
        reclaim = []
        if not fits():
            for rid, regs in self.retained.items():
                for s, reg in regs.items():
                    clones[s].release(reg.base)
                reclaim.append(rid)
                if all(c.can_fit(lines) for c in clones.values()):
                    break
            else:
                raise CapacityError(f"{self.name}: KV region cannot hold {lines} lines per socket for "
                                    f"{request} next to {len(self.live)} live request(s)")
        for rid in reclaim:
            for s, reg in self.retained.pop(rid).items():
                self.memories[s].hbm.free(reg)
            self.stats["kv_reclaimed"] += 1
        return {s: self.memories[s].hbm.allocate("kv", lines, owner=f"kv:{request}") for s in self.sockets}

    def begin(self, request: str, expert: str, kv_bytes: int, now: float = 0.0, *,
              sram_bytes: int = 0) -> Grant:
        """Start ``request`` on resident ``expert``: pin it, allocate its KV cache (``kv_bytes`` split
        over the group) and its on-chip SRAM buffers (``sram_bytes`` per socket, if any), and write
        the segment tables its kernels get (0: weights, read-only; 1: the request's KV cache and
        I/O buffers, read/write). Nothing changes if an allocation does not fit."""
        if request in self.live:
            raise ValueError(f"request {request!r} is already running")
        r = self.resident.get(expert)
        if r is None:
            raise ValueError(f"expert {expert!r} is not resident in {self.name}; ensure_resident first")
        if r.ready_at > now + 1e-12:
            raise ValueError(f"expert {expert!r} copy finishes at {r.ready_at}, after {now}")
        lines = max(1, lines_of(-(-int(kv_bytes) // len(self.sockets))))
        scratch_lines = lines_of(sram_bytes)
        if scratch_lines and not all(self.memories[s].sram.regions["scratch"].can_fit(scratch_lines)
                                     for s in self.sockets):
            raise CapacityError(f"{self.name}: SRAM scratch cannot hold {scratch_lines} lines for {request}")
        kv = self._alloc_kv(request, lines)
        r.pins += 1
        self._touch(r)
        grant = Grant(request, expert, kv)
        if scratch_lines:
            grant.scratch = {s: self.memories[s].sram.allocate("scratch", scratch_lines,
                                                               owner=f"sram:{request}")
                             for s in self.sockets}
        for s in self.sockets:
            table = SegmentTable(self.memories[s].hbm)
            table.grant(SEG_WEIGHTS, r.regions[s], read=True, write=False)
            table.grant(SEG_REQUEST, kv[s], read=True, write=True)
            grant.tables[s] = table
        self.live[request] = grant
        return grant

    def end(self, request: str, *, retain_kv: bool = True) -> None:
        """Finish ``request``: revoke its segments, unpin its expert, retain (or free) its KV cache."""
        grant = self.live.pop(request, None)
        if grant is None:
            raise ValueError(f"request {request!r} is not running")
        for table in grant.tables.values():
            table.entries.clear()
        for s, reg in grant.scratch.items():
            self.memories[s].sram.free(reg)
        self.unpin(grant.expert)
        if retain_kv:
            self.retained[request] = grant.kv
        else:
            for s, reg in grant.kv.items():
                self.memories[s].hbm.free(reg)

    # -- invariants --------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise AssertionError when an invariant of the module text does not hold."""
        for s in self.sockets:
            mem = self.memories[s]
            mem.check()
            owned = sum(r.regions[s].lines for r in self.resident.values())
            assert owned == mem.hbm.used_lines("experts"), f"socket {s}: expert cache accounting"
            assert owned <= mem.hbm.region_lines("experts"), f"socket {s}: expert cache over capacity"
        for g in self.live.values():
            r = self.resident.get(g.expert)
            assert r is not None and r.pins > 0, f"running expert {g.expert} not resident and pinned"
            for s, reg in g.kv.items():
                assert self.memories[s].hbm.owners.get((reg.region, reg.base)) == reg, \
                    f"live KV cache of {g.request} lost on socket {s}"
            for s, reg in g.scratch.items():
                assert self.memories[s].sram.owners.get((reg.region, reg.base)) == reg, \
                    f"SRAM buffers of {g.request} lost on socket {s}"
        pins = {}
        for g in self.live.values():
            pins[g.expert] = pins.get(g.expert, 0) + 1
        for r in self.resident.values():
            assert r.pins >= pins.get(r.name, 0), f"{r.name}: fewer pins than running requests"
