"""Bit-exact golden model of a PCU program, from the op table's golden functions.

:func:`run_golden` interprets a :class:`PcuConfig` directly (not its encoded
words) with numpy: the counter nest from :func:`hdl.counters.counter_steps`,
every stage as the op table's golden function over all steps and lanes at once,
the reduction tree pairing lanes (0, 1), (2, 3)… at each level, the tail ops'
golden micro-programs and the RNE bf16 conversion. Systolic tiles accumulate
each output in K order starting from +0, as a sequential fp32 loop does. The
accumulator stage is a scan over the steps in order; a program that reads the
``acc`` source is evaluated one step at a time.
"""

from __future__ import annotations

import numpy as np

from ..counters import counter_steps
from ..numerics.ops import ALU_OPS, golden
from .config import SCALAR_INPUTS, SOURCE_KINDS, VECTOR_INPUTS, PcuConfig, PcuParams, Stage, parse_source

__all__ = ["run_golden", "steps_of"]


def steps_of(config: PcuConfig) -> list[tuple[tuple[int, ...], tuple[bool, ...]]]:
    return list(counter_steps(config.counters))


def _take(stream, count: int, name: str, lanes: int | None) -> np.ndarray:
    if stream is None:
        raise ValueError(f"the program reads {name} on {count} steps but no {name} data was given")
    array = np.asarray(stream, dtype=np.uint64).astype(np.uint32)
    want = (count, lanes) if lanes else (count,)
    if array.shape[0] < count or array.shape[1:] != want[1:]:
        raise ValueError(f"{name}: need shape {want}, got {array.shape}")
    return array[:count]


def _finish_vectors(vectors: np.ndarray, config: PcuConfig) -> np.ndarray:
    if config.tail != "none":
        vectors = golden(f"tail.{config.tail}", vectors)
    if config.to_bf16:
        vectors = golden("cvt_bf16", vectors)
    return vectors.astype(np.uint32)


def run_golden(config: PcuConfig, params: PcuParams, vin0=None, vin1=None, sin0=None, sin1=None) -> dict:
    """Run ``config`` on the given input streams; return what the PCU emits.

    Parameters
    ----------
    config, params
        The program and the PCU it runs on (validated with :meth:`PcuConfig.check`).
    vin0, vin1 : array (n, lanes) of uint32, optional
        Vector input payloads in arrival order (only as many as the program reads).
    sin0, sin1 : array (n,) of uint32, optional
        Scalar input payloads in arrival order.

    Returns
    -------
    dict
        ``vout``: array (m, lanes) uint32 (empty when the vector output is off), ``sout``:
        array (m,) uint32 (empty without a reduction), ``steps``: steps in the run, and
        ``consumed``: how many payloads each input gave.
    """
    config.check(params)
    lanes, n_stages = params.lanes, params.stages
    steps = steps_of(config)
    n = len(steps)
    vins = (vin0, vin1)
    sins = (sin0, sin1)
    consumed = {}

    if config.mode == "systolic":
        a = _take(vin0, n, "vin0", lanes) & 0xFFFF
        b = _take(vin1, n, "vin1", lanes)[:, :n_stages] & 0xFFFF
        consumed.update(vin0=n, vin1=n)
        k_trips = config.counters[0].trips
        columns = []
        for t in range(n // k_trips):
            acc = np.zeros((lanes, n_stages), dtype=np.uint32)
            for k in range(t * k_trips, (t + 1) * k_trips):
                acc = golden("mac", acc, a[k][:, None], b[k][None, :])
            columns.extend(acc.T)  # column j of C is one output vector
        vout = _finish_vectors(np.array(columns, dtype=np.uint32).reshape(-1, lanes), config)
        return {"vout": vout, "sout": np.zeros(0, dtype=np.uint32), "steps": n, "consumed": consumed}

    # which inputs each stage reads
    stages = [config.stages[s] if s < len(config.stages) else Stage() for s in range(n_stages)]
    resolved = []
    vin_used, sin_used = set(), set()
    for s, stage in enumerate(stages):
        arity = ALU_OPS[stage.op].arity
        srcs = [parse_source(text, s, params) for text in (stage.a, stage.b, stage.c)[:arity]]
        resolved.append(srcs)
        for kind, index in srcs:
            if kind == 1:
                vin_used.add(index)
            if kind == 5:
                sin_used.add(index)

    def held_stream(stream, level, name, lanes_):
        """(values per step, payloads consumed) of an input popped at ``level``."""
        pops = np.array([level == 0 or firsts[level - 1] for _, firsts in steps], dtype=bool)
        values = _take(stream, int(pops.sum()), name, lanes_)
        held = np.zeros((n, lanes_) if lanes_ else n, dtype=np.uint32)
        index, current = -1, np.zeros(lanes_, np.uint32) if lanes_ else 0
        for step, pop in enumerate(pops):
            if pop:
                index += 1
                current = values[index]
            held[step] = current
        return held, int(pops.sum())

    vin_data = []
    for k in range(VECTOR_INPUTS):
        if k in vin_used:
            level = config.vectors[k].pop_level if k in config.vectors else 0
            data, count = held_stream(vins[k], level, f"vin{k}", lanes)
            vin_data.append(data)
            consumed[f"vin{k}"] = count
        else:
            vin_data.append(np.zeros((n, lanes), dtype=np.uint32))
    scalar_data = []
    for k in range(SCALAR_INPUTS):
        if k not in config.scalars:
            scalar_data.append(np.zeros(n, dtype=np.uint32))
            continue
        data, count = held_stream(sins[k], config.scalars[k].pop_level, f"sin{k}", None)
        scalar_data.append(data)
        consumed[f"sin{k}"] = count
    counter_values = np.array([values for values, _ in steps], dtype=np.uint32).reshape(n, -1)

    def operand(kind, index, results, rows, acc_now):
        count = len(range(n)[rows])
        shape = (count, lanes)
        if kind == 0:
            return np.zeros(shape, dtype=np.uint32)
        if kind == 1:
            return vin_data[index][rows]
        if kind == 2:
            return results[index]
        if kind == 3:
            words = list(config.constants) + [0] * (params.constants - len(config.constants))
            return np.full(shape, words[index], dtype=np.uint32)
        if kind == 4:
            return np.broadcast_to(counter_values[rows, index][:, None], shape).astype(np.uint32)
        if kind == 5:
            return np.broadcast_to(scalar_data[index][rows][:, None], shape).astype(np.uint32)
        if kind == 6:
            return np.broadcast_to(np.arange(lanes, dtype=np.uint32)[None, :], shape).copy()
        if kind == SOURCE_KINDS["acc"]:
            return acc_now
        raise AssertionError(kind)

    def evaluate(rows, acc_now=None):
        results = []
        for stage, srcs in zip(stages, resolved, strict=True):
            value = golden(stage.op, *[operand(kind, index, results, rows, acc_now) for kind, index in srcs])
            results.append(np.roll(value, -stage.shift, axis=1))
        return results

    acc = config.accumulator
    reads_acc = any(kind == SOURCE_KINDS["acc"] for srcs in resolved for kind, _ in srcs)
    if acc is None:
        results = evaluate(slice(None))
        final = results[-1]
        vector_rows = final
    else:
        final, vector_rows = _accumulate(config, params, steps, counter_values, evaluate, reads_acc)

    sout = np.zeros(0, dtype=np.uint32)
    if config.reduce != "none":
        level = final
        while level.shape[1] > 1:
            left, right = level[:, 0::2], level[:, 1::2]
            level = golden("fadd" if config.reduce == "add" else "fmax", left, right)
        sout = level[:, 0].astype(np.uint32)
    vout = _finish_vectors(vector_rows, config) if config.vector_output else np.zeros((0, lanes), np.uint32)
    return {"vout": vout, "sout": sout, "steps": n, "consumed": consumed}


def _accumulate(config: PcuConfig, params: PcuParams, steps, counter_values, evaluate, reads_acc: bool):
    """The accumulator stage as a scan over the steps: returns (the last stage's result per step,
    the vector output rows)."""
    acc = config.accumulator
    lanes, n = params.lanes, len(steps)
    counters = config.counters
    each_first = np.array([[v == c.start for v, c in zip(values, counters, strict=True)]
                           for values, _ in steps], dtype=bool)
    each_last = np.array([[v + c.stride >= c.stop for v, c in zip(values, counters, strict=True)]
                          for values, _ in steps], dtype=bool)
    reset = each_first[:, list(acc.reset)].all(axis=1)
    emit_on = each_first if acc.emit_at == "first" else each_last
    emit = emit_on[:, list(acc.emit)].all(axis=1) if acc.emit else np.ones(n, dtype=bool)
    index = counter_values[:, acc.index] if acc.index is not None else np.zeros(n, dtype=np.uint32)

    value = -1 if acc.value is None else acc.value
    entries = np.zeros((params.acc_depth, lanes), dtype=np.uint32)
    written = np.zeros(params.acc_depth, dtype=bool)
    whole = None if reads_acc else evaluate(slice(None))
    finals, emitted = [], []
    for t in range(n):
        e = int(index[t])
        if not reset[t] and not written[e]:
            raise ValueError(f"step {t}: accumulator entry {e} is used before a reset step wrote it "
                             f"(reset={acc.reset} must cover the first use of every entry)")
        old = entries[e]
        if reads_acc:      # this step alone, with the entry (+0 on a reset step) as the acc operand
            operand = np.zeros(lanes, np.uint32) if reset[t] else old
            results, row = evaluate(slice(t, t + 1), operand[None, :]), 0
        else:
            results, row = whole, t
        last, x = results[-1][row], results[value][row]
        y = results[acc.scale][row] if acc.scale is not None else None
        if reset[t]:
            new = x
        elif acc.op == "add":
            new = golden("fadd", old, x)
        elif acc.op == "max":
            new = golden("fmax", old, x)
        else:
            new = golden("fadd", golden("fmul", old, y), x)
        entries[e] = np.asarray(new, dtype=np.uint32)
        written[e] = True
        finals.append(last)
        if emit[t]:
            emitted.append(entries[e].copy())
    final = np.array(finals, dtype=np.uint32).reshape(n, lanes)
    if not acc.to_vout:
        return final, final
    return final, np.array(emitted, dtype=np.uint32).reshape(-1, lanes)
