"""cocotb models of :mod:`amaranth.lib.stream` ports, with random stalls.

Amaranth writes a stream port ``o`` as Verilog ports ``o__valid``, ``o__ready``
and ``o__payload`` (the payload flattened to bits, lane 0 in the LSBs).

The source and the sink drive their outputs just after a rising edge and sample the
handshake at the falling edge, when every combinational path has settled; the
transfer itself happens on the following rising edge, as in the RTL. A source
holds ``valid`` and ``payload`` until the transfer (stream rules); stalls are
drawn from a :class:`random.Random` so a seed reproduces a run. A monitor drives nothing: it
records every transfer on a port and every break of the stream rules it sees there.
"""

from __future__ import annotations

import random

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

__all__ = ["StreamSource", "StreamSink", "StreamMonitor", "start_clock_and_reset"]


async def start_clock_and_reset(dut, period_ns: int = 10, reset_cycles: int = 2):
    """Start ``dut.clk`` and pulse ``dut.rst``; return just after a rising edge with reset low."""
    Clock(dut.clk, period_ns, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, reset_cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _stream_port(dut, prefix: str):
    """The ``valid``, ``ready`` and ``payload`` handles of the stream port ``prefix`` of ``dut``."""
    return (getattr(dut, f"{prefix}__valid"), getattr(dut, f"{prefix}__ready"),
            getattr(dut, f"{prefix}__payload"))


def _check_probability(name: str, p: float) -> float:
    if not 0.0 < p <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {p}")
    return p


class StreamSource:
    """Drives the stream port ``prefix`` of ``dut`` (``valid``/``payload`` out, ``ready`` in).

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    prefix : str
        Port name in the Amaranth signature (``"i"`` for ``i__valid`` …).
    valid_probability : float
        Chance, each idle cycle, of offering the next payload (1.0 = no stalls).
    rng : random.Random, optional
        Source of stall decisions.
    """

    def __init__(self, dut, prefix: str, *, valid_probability: float = 1.0, rng=None):
        self.clk = dut.clk
        self.valid, self.ready, self.payload = _stream_port(dut, prefix)
        self.width = len(self.payload)
        self.p = _check_probability("valid_probability", valid_probability)
        self.rng = rng or random.Random()
        self.valid.value = 0

    async def send(self, payloads) -> int:
        """Send every payload in order; return the number of cycles it took."""
        payloads = list(payloads)
        limit = 1 << self.width
        for value in payloads:
            if not 0 <= value < limit:
                raise ValueError(f"payload {value:#x} does not fit in {self.width} bits")
        index = cycles = 0
        offering = False
        while index < len(payloads):
            if not offering and self.rng.random() < self.p:
                offering = True
                self.payload.value = payloads[index]
            self.valid.value = int(offering)
            await FallingEdge(self.clk)
            if offering and self.ready.value == 1:
                index += 1
                offering = False
            await RisingEdge(self.clk)
            cycles += 1
        self.valid.value = 0
        return cycles


class StreamSink:
    """Accepts from the stream port ``prefix`` of ``dut`` (``ready`` out, ``valid``/``payload`` in).

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    prefix : str
        Port name in the Amaranth signature (``"o"`` for ``o__valid`` …).
    ready_probability : float
        Chance, each cycle, of being ready (1.0 = no back-pressure).
    rng : random.Random, optional
        Source of stall decisions.
    """

    def __init__(self, dut, prefix: str, *, ready_probability: float = 1.0, rng=None):
        self.clk = dut.clk
        self.valid, self.ready, self.payload = _stream_port(dut, prefix)
        self.p = _check_probability("ready_probability", ready_probability)
        self.rng = rng or random.Random()
        self.ready.value = 0

    async def receive(self, count: int, *, timeout_cycles: int | None = None) -> list[int]:
        """Collect ``count`` payloads in arrival order.

        Raises
        ------
        TimeoutError
            If ``timeout_cycles`` pass before ``count`` payloads arrived.
        """
        received: list[int] = []
        cycles = 0
        while len(received) < count:
            ready = self.rng.random() < self.p
            self.ready.value = int(ready)
            await FallingEdge(self.clk)
            if ready and self.valid.value == 1:
                received.append(self.payload.value.to_unsigned())
            await RisingEdge(self.clk)
            cycles += 1
            if timeout_cycles is not None and cycles >= timeout_cycles:
                raise TimeoutError(
                    f"received {len(received)} of {count} payloads in {cycles} cycles"
                )
        self.ready.value = 0
        return received


class StreamMonitor:
    """Watches the stream port ``prefix`` of ``dut`` without driving it: records each transfer and
    checks the stream rules on every cycle.

    The rules (those of :mod:`amaranth.lib.stream`): once ``valid`` is high it stays high, with
    the same ``payload``, until the cycle ``ready`` is high too (the transfer). A cycle that
    breaks them is recorded in :attr:`violations` (cycle number and what happened); the monitor
    never raises, so a test asserts on :attr:`violations` where it wants.

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    prefix : str
        Port name in the Amaranth signature (``"o"`` for ``o__valid`` …).

    Attributes
    ----------
    transfers : list of int
        Payloads of the transfers seen, in order.
    violations : list of str
        One line per cycle that broke the stream rules.
    """

    def __init__(self, dut, prefix: str):
        self.clk = dut.clk
        self.valid, self.ready, self.payload = _stream_port(dut, prefix)
        self.prefix = prefix
        self.transfers: list[int] = []
        self.violations: list[str] = []
        self._task = None

    def start(self) -> StreamMonitor:
        """Start watching (a background coroutine, until :meth:`stop`); returns ``self``."""
        import cocotb

        self._task = cocotb.start_soon(self._watch())
        return self

    def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self):
        cycle = 0
        pending = None              # payload offered and not taken in the previous cycle
        while True:
            await FallingEdge(self.clk)
            valid, ready = self.valid.value == 1, self.ready.value == 1
            payload = self.payload.value.to_unsigned() if valid else None
            if pending is not None:
                if not valid:
                    self.violations.append(f"cycle {cycle}: {self.prefix}.valid withdrawn before the "
                                           f"transfer of {pending:#x}")
                elif payload != pending:
                    self.violations.append(f"cycle {cycle}: {self.prefix}.payload changed from "
                                           f"{pending:#x} to {payload:#x} while waiting for ready")
            if valid and ready:
                self.transfers.append(payload)
            pending = payload if valid and not ready else None
            await RisingEdge(self.clk)
            cycle += 1
