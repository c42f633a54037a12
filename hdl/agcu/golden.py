"""Golden model of an AGCU run: protection check, coalesced line requests, vectors and memory.

:func:`run_golden` interprets one run of an :class:`AgcuConfig` against a segment table
and a memory of 64-byte lines (a dict from line address to the 512-bit line value,
word 0 in the least significant bits; absent lines read as 0).

Coalescing rule (the hardware's, exactly): the run's vectors are taken in counter
order; a vector joins the pending line request when its address is the previous
vector's address plus one *and* lies in the same line; anything else (a new line,
a jump, a repeat) flushes the pending request and starts a new one, and the end of
the run flushes the last. A load issues one read per request and feeds every
vector of the request from the returned line; a store issues one write per request
whose mask covers exactly the words of its vectors.

Protection: before any request the run's lowest and highest vector address and the
segment's permission for the direction are checked (:func:`check_run`). A faulting
run issues no request, moves no data and still completes (``done``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..memctrl.interface import LINE_WORDS, WORD_BITS
from ..presets import WORD_BITS as LANE_BITS
from .config import AgcuConfig, AgcuParams, Segment

__all__ = ["LineRequest", "AgcuResult", "coalesce", "check_run", "run_golden", "vector_words", "vector_value"]

_LINE_MASK = (1 << (LINE_WORDS * WORD_BITS)) - 1


@dataclass(frozen=True)
class LineRequest:
    """One memory request: ``line`` (physical line address), ``write``, ``mask`` (one bit per
    64-bit word; every word for a read), ``data`` (write data, 0 for a read; unmasked words 0)
    and the vector ``slots`` of the line it serves, in order."""

    line: int
    write: bool
    mask: int
    data: int
    slots: tuple[int, ...]


@dataclass
class AgcuResult:
    """What one run does.

    Attributes
    ----------
    requests : list of LineRequest
        The line requests in issue order (empty after a fault).
    vout : list of int
        Load: the vectors sent on ``vout``, each ``lanes * 32`` bits with lane 0 in the LSBs.
    memory : dict
        The memory after the run (a new dict; the input is not changed).
    fault : bool
        The run faulted (nothing was transferred).
    fault_addr : int or None
        The offending vector address: the run's lowest address for a permission fault,
        its highest for a bound fault.
    vin_taken, sin_taken : int
        Vectors taken from ``vin`` (store) and words from ``sin`` (``base_from_scalar``).
    """

    requests: list[LineRequest] = field(default_factory=list)
    vout: list[int] = field(default_factory=list)
    memory: dict[int, int] = field(default_factory=dict)
    fault: bool = False
    fault_addr: int | None = None
    vin_taken: int = 0
    sin_taken: int = 0


def vector_value(vector, lanes: int) -> int:
    """A vector given as an int or a sequence of ``lanes`` 32-bit words, as an int (lane 0 in the LSBs)."""
    if isinstance(vector, int):
        if not 0 <= vector < 1 << (lanes * LANE_BITS):
            raise ValueError(f"vector {vector:#x} does not fit {lanes} lanes")
        return vector
    words = list(vector)
    if len(words) != lanes:
        raise ValueError(f"a vector has {lanes} lanes, got {len(words)} words")
    return sum((int(w) & 0xFFFFFFFF) << (LANE_BITS * k) for k, w in enumerate(words))


def vector_words(value: int, lanes: int) -> list[int]:
    """The ``lanes`` 32-bit words of a vector value."""
    return [(value >> (LANE_BITS * k)) & 0xFFFFFFFF for k in range(lanes)]


def coalesce(addresses: Sequence[int], params: AgcuParams) -> list[tuple[int, tuple[int, ...]]]:
    """Group a run's vector addresses into line requests: ``(relative line, slots)`` in order."""
    vpl = params.vectors_per_line
    groups: list[tuple[int, list[int]]] = []
    previous = None
    for a in addresses:
        line, slot = divmod(a, vpl)
        if previous is not None and a == previous + 1 and slot != 0:
            groups[-1][1].append(slot)
        else:
            groups.append((line, [slot]))
        previous = a
    return [(line, tuple(slots)) for line, slots in groups]


def _segment_table(segments, params: AgcuParams) -> dict[int, Segment]:
    if segments is None:
        return {}
    items = segments.values() if isinstance(segments, Mapping) else segments
    table = {}
    for seg in items:
        if not isinstance(seg, Segment):
            raise TypeError(f"segments must hold Segment entries, got {seg!r}")
        seg.fields(params)
        table[seg.index] = seg
    return table


def check_run(config: AgcuConfig, params: AgcuParams, segment: Segment | None,
              scalar: int = 0) -> tuple[bool, int | None]:
    """``(fault, fault_addr)`` of one run against its segment (``None``: an unwritten entry)."""
    lo, hi = config.address_range(scalar)
    if segment is None or not segment.permits(config.direction):
        return True, lo
    if hi >= segment.bound * params.vectors_per_line:
        return True, hi
    return False, None


def run_golden(config: AgcuConfig, params: AgcuParams, segments=None, memory: Mapping[int, int] | None = None,
               vin=None, sin: Sequence[int] | None = None) -> AgcuResult:
    """Run ``config`` once.

    Parameters
    ----------
    segments : sequence or mapping of Segment
        The segment table (entries not given were never written: no permission).
    memory : mapping of int to int
        Line address → 512-bit line value before the run.
    vin : sequence
        Store data: one vector per step (int or ``lanes`` words each).
    sin : sequence of int
        Scalar inputs; with ``base_from_scalar`` the first one is taken.

    Raises
    ------
    ConfigError
        For an invalid configuration or segment (:class:`hdl.agcu.config.ConfigError`).
    ValueError
        If ``vin`` or ``sin`` holds fewer items than the run takes.
    """
    config.check(params)
    table = _segment_table(segments, params)
    lanes, wpv = params.lanes, params.words_per_vector
    vbits = lanes * LANE_BITS
    result = AgcuResult(memory=dict(memory or {}))
    scalar = 0
    if config.base_from_scalar:
        if not sin:
            raise ValueError("base_from_scalar needs one word on sin")
        scalar = int(sin[0]) & 0xFFFFFFFF
        result.sin_taken = 1
    fault, addr = check_run(config, params, table.get(config.segment), scalar)
    if fault:
        result.fault, result.fault_addr = True, addr
        return result
    seg = table[config.segment]
    addresses = config.vector_addresses(scalar)
    store = config.direction == "store"
    if store:
        vin = [] if vin is None else list(vin)
        if len(vin) < len(addresses):
            raise ValueError(f"the store run takes {len(addresses)} vectors from vin, got {len(vin)}")
    taken = 0
    line_mod = 1 << params.addr_bits
    for rel, slots in coalesce(addresses, params):
        line = (seg.base + rel) % line_mod
        if store:
            mask = data = 0
            for slot in slots:
                value = vector_value(vin[taken], lanes)
                taken += 1
                data = (data & ~(((1 << vbits) - 1) << (vbits * slot))) | (value << (vbits * slot))
                mask |= ((1 << wpv) - 1) << (wpv * slot)
            old = result.memory.get(line, 0)
            keep = sum(((0 if (mask >> w) & 1 else (1 << WORD_BITS) - 1) << (WORD_BITS * w))
                       for w in range(LINE_WORDS))
            result.memory[line] = ((old & keep) | (data & ~keep)) & _LINE_MASK
            result.requests.append(LineRequest(line, True, mask, data, slots))
        else:
            value = result.memory.get(line, 0)
            result.requests.append(LineRequest(line, False, (1 << LINE_WORDS) - 1, 0, slots))
            for slot in slots:
                result.vout.append((value >> (vbits * slot)) & ((1 << vbits) - 1))
    result.vin_taken = taken
    return result
