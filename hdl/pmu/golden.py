"""Golden model of a PMU program: a flat word array, the address programs, the handover order.

:func:`run_golden` interprets a :class:`PmuConfig` with a numpy array of
``capacity`` words. Address arithmetic uses the op table's golden functions for
the address ALU ops. The bank layout does not appear here at all: it only places
words, and a correct PMU is indistinguishable from a flat memory. Runs happen in
the order the handover enforces: write run ``r`` completes before read run ``r``
starts, and read run ``r`` completes before write run ``r + buffers`` starts, so
evaluating write run ``r`` then read run ``r`` for ``r = 0, 1, …`` gives what the
hardware must return, as long as each run stays inside its own buffer (checked).
"""

from __future__ import annotations

import numpy as np

from ..counters import counter_steps
from ..numerics.ops import ALU_OPS
from .config import AddressProgram, ConfigError, PmuConfig, PmuParams

__all__ = ["run_golden", "addresses"]

_MASK = 0xFFFFFFFF


def addresses(program: AddressProgram, scalar: int = 0) -> list[int]:
    """The base word address of every access of one run (before the range check)."""
    out = []
    for values, _ in counter_steps(program.counters):
        a = (program.offset + sum(values) + scalar) & _MASK
        for op, imm in program.alu:
            fn = ALU_OPS[op].golden
            a = int(fn(np.uint32(a), np.uint32(imm)) if ALU_OPS[op].arity == 2 else fn(np.uint32(a)))
        out.append(a)
    return out


def run_golden(config: PmuConfig, params: PmuParams, vin=None, sin=None) -> dict:
    """Run ``config``; return ``{"vout": (n, lanes) uint32, "sout": (n,) uint32, "consumed": {...}}``.

    Parameters
    ----------
    vin : array (n, lanes) of uint32
        Write data, one vector per write access.
    sin : array of uint32
        Scalar inputs (one per read run with ``scalar_offset``).

    Raises
    ------
    ConfigError
        If an access of a run leaves its buffer (the hardware would touch another buffer).
    """
    fields = config.check(params)
    lanes, capacity = params.lanes, params.capacity
    memory = np.zeros(capacity, dtype=np.uint32)
    words = fields["buffer_words"]
    lane_offsets = np.arange(lanes, dtype=np.int64)
    runs = (config.write or config.read).runs
    vin = None if vin is None else np.asarray(vin, dtype=np.uint64).astype(np.uint32)
    sin = None if sin is None else [int(x) for x in np.asarray(sin, dtype=np.uint64)]
    taken_v = taken_s = 0
    out = []
    lo, hi = config.range_lo, fields["range_hi"]

    def lane_words(program, base, a, run, side):
        local = a - lo
        last = local + (lanes - 1) * program.lane_stride
        if not (0 <= local < words and 0 <= last < words):
            raise ConfigError(f"{side} run {run}: access at address {a} touches words {local}..{last} of its "
                              f"buffer, which has {words} words")
        return (base + local + lane_offsets * program.lane_stride) % capacity

    for run in range(runs):
        base = (run % config.buffers) * words
        if config.write is not None:
            for a in addresses(config.write):
                if vin is None or taken_v >= len(vin):
                    raise ValueError(f"the write program needs more than {taken_v} input vectors")
                vector = vin[taken_v]
                taken_v += 1
                if lo <= a < hi:
                    memory[lane_words(config.write, base, a, run, "write")] = vector
        if config.read is not None:
            scalar = 0
            if config.read.scalar_offset:
                if sin is None or taken_s >= len(sin):
                    raise ValueError(f"the read program needs more than {taken_s} scalar inputs")
                scalar = sin[taken_s]
                taken_s += 1
            for a in addresses(config.read, scalar):
                if lo <= a < hi:
                    out.append(memory[lane_words(config.read, base, a, run, "read")].copy())
    vectors = np.array(out, dtype=np.uint32).reshape(-1, lanes)
    consumed = {"vin": taken_v, "sin": taken_s}
    if config.scalar_out:
        return {"vout": np.zeros((0, lanes), np.uint32), "sout": vectors[:, 0].copy(), "consumed": consumed}
    return {"vout": vectors, "sout": np.zeros(0, np.uint32), "consumed": consumed}
