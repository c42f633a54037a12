"""Nested loop counters: the sequencer in the header of every PCU and PMU.

A :class:`CounterChain` holds up to three counters, innermost first. Counter
``k`` runs ``value = start; value < stop; value += stride``; when it wraps it
steps counter ``k + 1``. One *step* of the chain is one iteration of the whole
nest; the last step of the outermost counter ends a *run* and raises ``done``
for one cycle.

The Python model :func:`counter_steps` yields the same sequence; the PCU/PMU
golden models and the compiler use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Counter", "counter_layout", "counter_steps", "nest_steps", "nest_fields", "nest_from_fields",
           "IDLE_COUNTER", "CounterChain", "chain_never_ends"]

#: Configuration of a counter that takes no part in a nest (one iteration).
IDLE_COUNTER = {"start": 0, "stop": 1, "stride": 1}


@dataclass(frozen=True)
class Counter:
    """One loop: ``for value in range(start, stop, stride)``.

    Raises
    ------
    ValueError
        If ``stride`` is not positive or ``stop <= start`` (an empty loop) or a value is negative.
    """

    start: int
    stop: int
    stride: int = 1

    def __post_init__(self):
        for name in ("start", "stop", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"counter {name} must be an int, got {type(value).__name__}")
        if self.start < 0:
            raise ValueError(f"counter start must be >= 0, got {self.start}")
        if self.stride <= 0:
            raise ValueError(f"counter stride must be positive, got {self.stride}")
        if self.stop <= self.start:
            raise ValueError(f"counter stop ({self.stop}) must be greater than start ({self.start})")

    @property
    def trips(self) -> int:
        """Iterations of this loop."""
        return len(range(self.start, self.stop, self.stride))

    def check_width(self, width: int, where: str = "counter") -> None:
        """Raise ``ValueError`` unless every value the hardware holds fits in ``width`` bits."""
        # the hardware forms value + stride before comparing with stop
        largest = max(self.stop, self.start + self.trips * self.stride)
        if largest >= 1 << width:
            raise ValueError(f"{where}: {self} needs {largest.bit_length()} bits, counters are {width} bits "
                             f"wide (values must stay below {1 << width})")


def counter_layout(width: int) -> data.StructLayout:
    """Configuration of one counter: ``start``, ``stop``, ``stride`` of ``width`` bits each."""
    return data.StructLayout({"start": width, "stop": width, "stride": width})


def counter_steps(counters: Sequence[Counter]) -> Iterator[tuple[tuple[int, ...], tuple[bool, ...]]]:
    """Every step of a nest, innermost counter first.

    Yields ``(values, firsts)``: the counter values, and for each counter whether it and
    all counters inside it are at their first value (so ``firsts[k]`` marks the first
    step of one iteration of counter ``k + 1``).
    """
    if not counters:
        return
    ranges = [range(c.start, c.stop, c.stride) for c in counters]
    index = [0] * len(counters)
    while True:
        values = tuple(r[i] for r, i in zip(ranges, index, strict=True))
        firsts, inner_first = [], True
        for i in index:
            inner_first = inner_first and i == 0
            firsts.append(inner_first)
        yield values, tuple(firsts)
        for k in range(len(counters)):
            index[k] += 1
            if index[k] < len(ranges[k]):
                break
            index[k] = 0
        else:
            return


def nest_steps(counters: Sequence[Counter]) -> int:
    """Steps in one run of a nest (the product of the trip counts)."""
    total = 1
    for counter in counters:
        total *= counter.trips
    return total


def nest_fields(counters: Sequence[Counter], count: int, width: int, where: str,
                error: type[Exception] = ValueError) -> list[dict]:
    """Check a loop nest for a chain of ``count`` counters of ``width`` bits; return the
    ``counter_layout`` fields of all ``count`` counters (unused ones idle).

    Raises ``error`` naming ``where`` for an empty or too deep nest, a non-Counter, or a
    counter whose values do not fit.
    """
    if not counters:
        raise error(f"{where}: needs at least one counter (its loop nest)")
    if len(counters) > count:
        raise error(f"{where}: {len(counters)} counters given, this unit has {count}")
    for k, counter in enumerate(counters):
        if not isinstance(counter, Counter):
            raise error(f"{where}: counter {k} must be a hdl.counters.Counter, got {counter!r}")
        try:
            counter.check_width(width, f"{where} counter {k}")
        except ValueError as e:
            raise error(str(e)) from None
    fields = [{"start": c.start, "stop": c.stop, "stride": c.stride} for c in counters]
    return fields + [IDLE_COUNTER] * (count - len(fields))


def nest_from_fields(fields, used: int) -> list[Counter]:
    """The first ``used`` counters of a decoded ``ArrayLayout(counter_layout)`` value."""
    return [Counter(int(fields[k].start), int(fields[k].stop), int(fields[k].stride)) for k in range(used)]


def chain_never_ends(config, used) -> Value:
    """High when a :class:`CounterChain` configured with ``config`` and ``used`` would never finish
    a run: a counter that takes part has stride 0 and ``stop > start`` (its value never reaches
    ``stop``). The encoder refuses stride 0 (:class:`Counter`); the units refuse such an image.

    Every other configuration a chain can hold ends: ``stop <= start`` gives one iteration,
    ``used == 0`` a run of one step, ``used`` above the chain's length uses every counter, and
    ``value + stride`` is formed one bit wider than the counters, so it cannot wrap.

    Parameters
    ----------
    config : data.View
        The chain's configuration (``ArrayLayout(counter_layout(width), count)``).
    used : Value
        How many counters take part.

    Returns
    -------
    Value
        One bit.
    """
    hangs = [(k < used) & (config[k].stride == 0) & (config[k].stop > config[k].start)
             for k in range(len(config))]
    return Cat(*hangs).any()


class CounterChain(wiring.Component):
    """Up to ``count`` nested counters that step once per accepted ``step``.

    Parameters
    ----------
    count : int
        Counters in the chain, 1 to 3.
    width : int
        Bits per counter value.

    Attributes
    ----------
    config : In(ArrayLayout(counter_layout(width), count))
        Start, stop and stride of each counter, innermost first; held stable during a run.
    used : In(range(count + 1))
        How many counters take part (the rest hold their start value); 0 makes a run of one step.
    start : In(1)
        Begin a run (ignored while one is running).
    step : In(1)
        Advance to the next step (only while ``running``).
    again : In(1)
        When the final step is taken with ``again`` high, the counters reload their start
        values and the chain keeps running (a new run with no idle cycle); ``done`` still pulses.
    running : Out(1)
        A run is in progress; ``values``/``first``/``last`` describe the current step.
    values : Out(ArrayLayout(width, count))
        Current value of each counter.
    first : Out(ArrayLayout(1, count))
        ``first[k]``: counters ``0..k`` are all at their first value.
    last : Out(ArrayLayout(1, count))
        ``last[k]``: counters ``0..k`` are all at their last value (``last[used-1]``: final step).
    each_first, each_last : Out(ArrayLayout(1, count))
        Counter ``k`` alone is at its first / last value (whatever the others are).
    done : Out(1)
        High for one cycle after the final step of a run was taken.
    """

    def __init__(self, count: int, width: int):
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 3:
            raise ValueError(f"count must be an int in [1, 3], got {count!r}")
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 32:
            raise ValueError(f"width must be an int in [1, 32], got {width!r}")
        self.count, self.width = count, width
        super().__init__({
            "config": In(data.ArrayLayout(counter_layout(width), count)),
            "used": In(range(count + 1)),
            "start": In(1),
            "step": In(1),
            "again": In(1),
            "running": Out(1),
            "values": Out(data.ArrayLayout(width, count)),
            "first": Out(data.ArrayLayout(1, count)),
            "last": Out(data.ArrayLayout(1, count)),
            "each_first": Out(data.ArrayLayout(1, count)),
            "each_last": Out(data.ArrayLayout(1, count)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        wraps = []
        for k in range(self.count):
            cfg = self.config[k]
            value = self.values[k]
            active = k < self.used
            nxt = value + cfg.stride
            at_first = Signal(name=f"at_first{k}")
            at_last = Signal(name=f"at_last{k}")
            m.d.comb += [at_first.eq(~active | (value == cfg.start)),
                         at_last.eq(~active | (nxt >= cfg.stop)),
                         self.each_first[k].eq(at_first), self.each_last[k].eq(at_last)]
            wraps.append((value, cfg, nxt, at_first, at_last))

        inner_first = inner_last = 1
        for k, (_, _, _, at_first, at_last) in enumerate(wraps):
            inner_first = inner_first & at_first
            inner_last = inner_last & at_last
            m.d.comb += [self.first[k].eq(inner_first), self.last[k].eq(inner_last)]
        final = inner_last

        m.d.sync += self.done.eq(0)
        with m.If(~self.running & self.start):
            m.d.sync += self.running.eq(1)
            for value, cfg, *_ in wraps:
                m.d.sync += value.eq(cfg.start)
        with m.Elif(self.running & self.step):
            carry = Const(1, 1)
            for k, (value, cfg, nxt, _, at_last) in enumerate(wraps):
                # counter k moves when every counter inside it wraps on this step
                with m.If(carry & (k < self.used)):
                    m.d.sync += value.eq(Mux(at_last, cfg.start, nxt))
                carry = carry & at_last
            with m.If(final):
                m.d.sync += [self.running.eq(self.again), self.done.eq(1)]
        return m
