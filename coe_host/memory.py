"""Three-tier memory of one socket (DDR, HBM, on-chip SRAM), allocation, and address translation.

Every tier is an address space of 64-byte lines split into named *regions*, each with a
first-fit allocator:

========  =======================================================================
tier      regions
========  =======================================================================
DDR       ``experts`` — the home of every expert shard of this socket
HBM       ``router`` (router weights), ``kv`` (KV caches and I/O buffers of requests),
          ``experts`` (the expert cache: shards copied from DDR)
SRAM      ``scratch`` (on-chip PMU buffers of the running kernel)
========  =======================================================================

Address translation mirrors the hardware exactly: a kernel reaches memory only through an
AGCU segment table (:class:`hdl.agcu.config.Segment`: ``base`` line, ``bound`` lines,
read/write permission), written by the host, never by the kernel. :class:`SegmentTable` holds
real ``Segment`` objects — the ones the RTL-backed mode will write to the tile's AGCUs through
``seg`` — and checks every access (or a whole AGCU run, with :func:`hdl.agcu.golden.check_run`)
the way the AGCU does: an access whose lowest or highest address lies outside
``[0, bound)`` lines, or whose direction the segment does not permit, raises
:class:`SegmentFault` and moves no data.

A tier may carry a *backing store* (a numpy byte array) so that small experts' weights really
travel DDR → HBM and kernels read them through their segments; node-scale tiers are sized only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hdl.agcu.config import AgcuConfig, AgcuParams, Segment
from hdl.agcu.golden import check_run

from .experts import LINE_BYTES, lines_of

__all__ = ["CapacityError", "SegmentFault", "Region", "Allocator", "Tier", "SocketMemory", "SegmentTable",
           "BACKING_LIMIT_BYTES"]

#: Largest tier that may carry a backing store (tests and the golden demo use a few MiB).
BACKING_LIMIT_BYTES = 256 << 20


class CapacityError(RuntimeError):
    """An allocation that does not fit its region (after every permitted eviction)."""


class SegmentFault(RuntimeError):
    """An access outside its segment, or in a direction the segment does not permit."""

    def __init__(self, index: int, direction: str, addr: int, reason: str):
        self.index, self.direction, self.addr, self.reason = index, direction, addr, reason
        super().__init__(f"segment {index}: {direction} at line offset {addr}: {reason}")


@dataclass(frozen=True)
class Region:
    """An allocation: ``lines`` lines from absolute line ``base`` of a tier's region."""

    tier: str
    region: str
    base: int
    lines: int
    owner: str

    @property
    def nbytes(self) -> int:
        return self.lines * LINE_BYTES


class Allocator:
    """First-fit allocator of lines ``[base, base + lines)`` with coalescing free list."""

    def __init__(self, base: int, lines: int):
        if lines < 0 or base < 0:
            raise ValueError(f"allocator needs base >= 0 and lines >= 0, got {base}, {lines}")
        self.base, self.lines = base, lines
        self._free: list[tuple[int, int]] = [(base, lines)] if lines else []   # sorted (start, length)
        self._used: dict[int, int] = {}                                          # start -> length

    def clone(self) -> Allocator:
        other = Allocator.__new__(Allocator)
        other.base, other.lines = self.base, self.lines
        other._free, other._used = list(self._free), dict(self._used)
        return other

    @property
    def used_lines(self) -> int:
        return sum(self._used.values())

    @property
    def free_lines(self) -> int:
        return self.lines - self.used_lines

    @property
    def largest_hole(self) -> int:
        return max((n for _, n in self._free), default=0)

    def can_fit(self, lines: int) -> bool:
        return lines == 0 or any(n >= lines for _, n in self._free)

    def allocate(self, lines: int) -> int | None:
        """First line of a new allocation of ``lines`` lines, or ``None`` if no hole fits."""
        if lines < 1:
            raise ValueError(f"allocate at least one line, got {lines}")
        for i, (start, n) in enumerate(self._free):
            if n >= lines:
                if n == lines:
                    del self._free[i]
                else:
                    self._free[i] = (start + lines, n - lines)
                self._used[start] = lines
                return start
        return None

    def release(self, start: int) -> None:
        try:
            n = self._used.pop(start)
        except KeyError:
            raise ValueError(f"line {start} is not the start of an allocation") from None
        i = bisect.bisect_left(self._free, (start, 0))
        self._free.insert(i, (start, n))
        # merge with the next and the previous hole
        if i + 1 < len(self._free) and self._free[i][0] + self._free[i][1] == self._free[i + 1][0]:
            self._free[i] = (start, self._free[i][1] + self._free[i + 1][1])
            del self._free[i + 1]
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == self._free[i][0]:
            self._free[i - 1] = (self._free[i - 1][0], self._free[i - 1][1] + self._free[i][1])
            del self._free[i]

    def check(self) -> None:
        """Raise AssertionError if holes and allocations overlap, leave the range, or miss lines."""
        spans = sorted([*self._free, *self._used.items()])
        pos = self.base
        for start, n in spans:
            assert n > 0 and start == pos, f"allocator spans broken at line {start} (expected {pos})"
            pos = start + n
        assert pos == self.base + self.lines or not spans and self.lines == 0, \
            "allocator does not cover its range"


class Tier:
    """One memory tier of a socket: named regions of lines, optional backing store."""

    def __init__(self, name: str, layout: Sequence[tuple[str, int]], *, backing: bool = False):
        self.name = name
        self.regions: dict[str, Allocator] = {}
        base = 0
        for region, lines in layout:
            if lines < 0:
                raise ValueError(f"{name}.{region}: negative size")
            self.regions[region] = Allocator(base, lines)
            base += lines
        self.capacity_lines = base
        self.owners: dict[tuple[str, int], Region] = {}
        self.data: np.ndarray | None = None
        if backing:
            if base * LINE_BYTES > BACKING_LIMIT_BYTES:
                raise ValueError(f"{name}: a backing store of {base * LINE_BYTES} bytes is over the "
                                 f"{BACKING_LIMIT_BYTES}-byte limit (node-scale tiers are sized only)")
            self.data = np.zeros(base * LINE_BYTES, dtype=np.uint8)

    @property
    def capacity_bytes(self) -> int:
        return self.capacity_lines * LINE_BYTES

    def region_lines(self, region: str) -> int:
        return self._region(region).lines

    def _region(self, region: str) -> Allocator:
        try:
            return self.regions[region]
        except KeyError:
            known = ", ".join(self.regions)
            raise KeyError(f"{self.name} has no region {region!r}; it has {known}") from None

    def allocate(self, region: str, lines: int, owner: str) -> Region:
        alloc = self._region(region)
        base = alloc.allocate(lines)
        if base is None:
            raise CapacityError(f"{self.name}.{region}: no hole of {lines} lines ({alloc.free_lines} of "
                                f"{alloc.lines} free, largest hole {alloc.largest_hole})")
        r = Region(self.name, region, base, lines, owner)
        self.owners[(region, base)] = r
        return r

    def free(self, r: Region) -> None:
        if self.owners.get((r.region, r.base)) != r:
            raise ValueError(f"{self.name}: {r} is not a live allocation")
        self._region(r.region).release(r.base)
        del self.owners[(r.region, r.base)]

    def live(self) -> list[Region]:
        return list(self.owners.values())

    def used_lines(self, region: str | None = None) -> int:
        return sum(a.used_lines for n, a in self.regions.items() if region in (None, n))

    # -- backing store (bytes, absolute byte addresses) ------------------------------------------
    def write(self, addr: int, payload: bytes) -> None:
        if self.data is None:
            return
        if addr < 0 or addr + len(payload) > len(self.data):
            raise IndexError(f"{self.name}: write of {len(payload)} bytes at {addr} leaves the tier")
        self.data[addr:addr + len(payload)] = np.frombuffer(payload, dtype=np.uint8)

    def read(self, addr: int, nbytes: int) -> bytes:
        if self.data is None:
            raise ValueError(f"{self.name} has no backing store (sized-only tier)")
        if addr < 0 or addr + nbytes > len(self.data):
            raise IndexError(f"{self.name}: read of {nbytes} bytes at {addr} leaves the tier")
        return self.data[addr:addr + nbytes].tobytes()

    def check(self) -> None:
        for name, a in self.regions.items():
            a.check()
            assert a.used_lines <= a.lines, f"{self.name}.{name} over capacity"
        assert self.used_lines() <= self.capacity_lines


class SocketMemory:
    """DDR, HBM and SRAM of one socket.

    Parameters are sizes in bytes; each is rounded down to whole lines. The HBM expert cache
    gets what the router and KV regions leave unless ``expert_cache_bytes`` is given.
    """

    def __init__(self, socket: int, *, ddr_bytes: int, hbm_bytes: int, sram_bytes: int,
                 router_bytes: int = 1 << 20, kv_bytes: int = 8 << 30, expert_cache_bytes: int | None = None,
                 backing: bool = False):
        self.socket = socket
        hbm_lines = hbm_bytes // LINE_BYTES
        router = lines_of(router_bytes)
        kv = kv_bytes // LINE_BYTES
        room = hbm_lines - router - kv
        if room < 0:
            raise ValueError(f"socket {socket}: router ({router_bytes} B) and KV ({kv_bytes} B) regions "
                             f"exceed HBM ({hbm_bytes} B)")
        cache = room if expert_cache_bytes is None else expert_cache_bytes // LINE_BYTES
        if cache > room:
            raise ValueError(f"socket {socket}: expert cache of {expert_cache_bytes} B does not fit the "
                             f"{room * LINE_BYTES} B HBM left after router and KV regions")
        self.ddr = Tier("ddr", [("experts", ddr_bytes // LINE_BYTES)], backing=backing)
        self.hbm = Tier("hbm", [("router", router), ("kv", kv), ("experts", cache),
                                ("spare", room - cache)], backing=backing)
        self.sram = Tier("sram", [("scratch", sram_bytes // LINE_BYTES)], backing=backing)

    @property
    def tiers(self) -> dict[str, Tier]:
        return {"ddr": self.ddr, "hbm": self.hbm, "sram": self.sram}

    def check(self) -> None:
        for t in self.tiers.values():
            t.check()

    def copy(self, src: Region, dst: Region) -> int:
        """Copy ``src`` (DDR) into ``dst`` (HBM) in the backing stores; returns bytes moved."""
        n = min(src.lines, dst.lines) * LINE_BYTES
        if self.ddr.data is not None and self.hbm.data is not None:
            self.hbm.write(dst.base * LINE_BYTES, self.ddr.read(src.base * LINE_BYTES, n))
        return n


class SegmentTable:
    """The segment table of one AGCU memory port (one tier), as the host writes it.

    Entries are :class:`hdl.agcu.config.Segment`; ``params`` (an :class:`AgcuParams`) sizes the
    table and the line-address width like the hardware's.
    """

    def __init__(self, tier: Tier, *, params: AgcuParams | None = None):
        self.tier = tier
        bits = max(1, (max(tier.capacity_lines, 2) - 1).bit_length())
        self.params = params or AgcuParams("small", addr_bits=bits, segments=4)
        self.entries: dict[int, Segment] = {}

    def grant(self, index: int, region: Region, *, read: bool = True, write: bool = False) -> Segment:
        """Write entry ``index``: the lines of ``region`` with the given permissions."""
        if region.tier != self.tier.name:
            raise ValueError(f"a {self.tier.name} segment cannot map a {region.tier} region")
        seg = Segment(index, region.base, region.lines, read, write)
        seg.fields(self.params)            # the hardware's range checks (ConfigError if it does not fit)
        self.entries[index] = seg
        return seg

    def revoke(self, index: int) -> None:
        self.entries.pop(index, None)

    def translate(self, index: int, direction: str, offset: int, nbytes: int) -> int:
        """Absolute byte address of an access of ``nbytes`` at byte ``offset`` in segment ``index``.

        Raises :class:`SegmentFault` like the AGCU: unwritten entry or missing permission (fault at
        the lowest address), or the highest address at or beyond ``bound`` lines.
        """
        if direction not in ("load", "store"):
            raise ValueError(f"direction must be 'load' or 'store', got {direction!r}")
        seg = self.entries.get(index)
        lo_line = offset // LINE_BYTES
        if seg is None:
            raise SegmentFault(index, direction, lo_line, "segment not written (no permission)")
        if not seg.permits(direction):
            raise SegmentFault(index, direction, lo_line, f"segment does not permit {direction}")
        if offset < 0 or nbytes < 1:
            raise SegmentFault(index, direction, lo_line, "negative offset or empty access")
        hi_line = (offset + nbytes - 1) // LINE_BYTES
        if hi_line >= seg.bound:
            raise SegmentFault(index, direction, hi_line, f"beyond bound of {seg.bound} lines")
        return seg.base * LINE_BYTES + offset

    def load(self, index: int, offset: int, nbytes: int) -> bytes:
        return self.tier.read(self.translate(index, "load", offset, nbytes), nbytes)

    def store(self, index: int, offset: int, payload: bytes) -> None:
        self.tier.write(self.translate(index, "store", offset, len(payload)), payload)

    def check_run(self, config: AgcuConfig, scalar: int = 0) -> None:
        """Check one AGCU run (kernel program) against the table with the hardware's golden check."""
        fault, addr = check_run(config, self.params, self.entries.get(config.segment), scalar)
        if fault:
            raise SegmentFault(config.segment, config.direction, addr // self.params.vectors_per_line,
                               f"AGCU run faults at vector address {addr}")
