"""Kernel launch: Program Load → Argument Load → Kernel Execute, with CRC-checked images.

The host talks to a tile through one stream of 32-bit command words
(:class:`LaunchController`, port ``host``). A command word carries an opcode in
bits 31..24 and an operand in bits 23..0:

=============  ======  =====================================================
command        opcode  operand, and the words that follow
=============  ======  =====================================================
``LOAD``       0xA1    ``n``: the next ``n`` words are a kernel image
``ARGS``       0xA2    ``n`` ≤ :data:`ARGUMENTS`: the next ``n`` words are arguments 0..n-1
``EXEC``       0xA3    ``t`` ≥ 1: run; the kernel is done after ``t`` done tokens
``ABORT``      0xA4    none (the operand is ignored): stop whatever runs, clear every endpoint
=============  ======  =====================================================

Kernel image
------------
A sequence of *records*, one per configured unit or switch::

    (address << 16) | count      the endpoint (hdl.network.FabricGraph.config_endpoints)
    count words                  the endpoint's own configuration image (header + body)
    crc                          CRC-32 of the address word and the count words (hdl.network.crc)

Every word of an image is covered by one record's CRC. Program Load first clears
every endpoint (no routes, no unit configured), then streams each record's words
to its endpoint except the last one, which is *held* here. Only when the whole
image has arrived with every CRC correct are the held words released, so all
units and switches commit together; the controller then checks each addressed
endpoint reports ``configured`` (an image of the wrong kind is refused there).
Any failure — a bad CRC, an address with no endpoint, a record addressed twice,
a truncated image, or an endpoint refusing its image — drops the held words and
clears every endpoint again: nothing is configured, so nothing can run.
``error`` says what failed and ``error_unit`` which endpoint.

Kernel Execute sends each loaded argument once on the host's scalar pins
``arg0 …`` and one token on its ``start`` control pin, then counts cycles until
``t`` tokens have arrived on its ``done`` pin *and* no unit is busy (``busy`` low): a
kernel whose results leave through several units names one of them as its done source
and still ends only when every unit has drained.

Abort
-----
``ABORT`` is taken wherever a command word is: in every state between commands and, alone of
all commands, while a kernel runs (``RUNNING``; other commands wait for the run to end). It
is not recognised inside a ``LOAD`` image or ``ARGS`` data, which are data words. It drops
the kernel's pending argument and start offers, then raises ``ep_abort`` and ``ep_clear``
together until no unit is busy (at least two cycles): every endpoint is cleared as Program Load
clears it, and ``ep_abort`` additionally stops units that are still running (the tile resets
its PCUs and PMUs, whose memories keep their contents, and AGCUs drop their run and wait for
the memory to answer the requests it had taken). The controller then reports ``ABORTED``
with ``error`` ``NONE``; ``cycles`` and ``tokens`` keep the aborted run's counts. Nothing is
configured afterwards, so ``EXEC`` is refused with ``NOT_LOADED`` until the next ``LOAD``, which
needs no reset.
"""

from __future__ import annotations

import enum

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .network.crc import CRC_INIT, crc_result_value, crc_update_value
from .network.graph import ARGUMENTS

__all__ = ["Command", "LaunchState", "LaunchError", "LaunchController", "command_word"]


class Command(enum.IntEnum):
    """Host command opcodes (bits 31..24 of a command word; see the module docstring)."""

    LOAD = 0xA1     #: the next ``n`` words are a kernel image
    ARGS = 0xA2     #: the next ``n`` words are arguments 0..n-1
    EXEC = 0xA3     #: run until ``t`` done tokens arrived and no unit is busy
    ABORT = 0xA4    #: stop the kernel (taken also while RUNNING) and clear every endpoint


class LaunchState(enum.IntEnum):
    """What the ``state`` output reports."""

    EMPTY = 0      #: nothing loaded (after reset)
    LOADING = 1    #: a kernel image is arriving
    LOADED = 2     #: every record checked and committed; EXEC may run
    REFUSED = 3    #: the last image or command was refused (see ``error``)
    RUNNING = 4    #: executing; waiting for done tokens (only ABORT is taken meanwhile)
    DONE = 5       #: the kernel finished; ``cycles`` holds its run time
    ABORTED = 6    #: an ABORT stopped everything and cleared every endpoint; nothing is loaded


class LaunchError(enum.IntEnum):
    """What the ``error`` output reports (sticky until the next LOAD)."""

    NONE = 0
    BAD_COMMAND = 1    #: unknown opcode, EXEC with t = 0, or ARGS with too many words
    BAD_ADDRESS = 2    #: a record names an address with no endpoint
    BAD_RECORD = 3     #: a record with no words
    DUPLICATE = 4      #: two records for one endpoint
    CRC = 5            #: a record's CRC does not match
    TRUNCATED = 6      #: the image ended inside a record
    UNIT_REFUSED = 7   #: an endpoint did not accept its image (wrong kind, length or version)
    NOT_LOADED = 8     #: EXEC without a loaded kernel (also after ABORT)


#: Internal phases of the controller (``COMMAND`` is also the default of the state decoder).
_PHASES = ("COMMAND", "ARGS", "ADDRESS", "BODY", "CRC", "DRAIN", "COMMIT", "SETTLE", "RUN", "ABORT")


def command_word(command: Command, operand: int = 0) -> int:
    """The host word of ``command`` with ``operand`` in bits 23..0 (``command_word(Command.ABORT)``)."""
    if not isinstance(command, Command):
        raise TypeError(f"command must be a hdl.launch.Command, got {command!r}")
    if not 0 <= operand < 1 << 24:
        raise ValueError(f"command operand must fit in 24 bits, got {operand}")
    return (int(command) << 24) | operand


class LaunchController(wiring.Component):
    """Host command decoder, configuration distributor and kernel run timer of a tile.

    Parameters
    ----------
    present : sequence of bool
        One entry per configuration address: whether an endpoint is built there
        (an address without one is refused as ``BAD_ADDRESS``). At most 65536.

    Attributes
    ----------
    host : In(stream.Signature(32))
        Command words and their data (see the module docstring).
    ep_cfg : Out(stream.Signature(32)).array(endpoints)
        Configuration words to each endpoint.
    ep_clear : Out(1)
        Clear every endpoint (one cycle at the start of LOAD and after a refusal; during ABORT).
    ep_abort : Out(1)
        Stop every unit, running or not (high with ``ep_clear`` while an ABORT is carried out,
        until ``busy`` is low; at least two cycles).
    ep_configured : In(endpoints)
        Each endpoint reports a valid configuration.
    arg : Out(stream.Signature(32)).array(ARGUMENTS)
        The host site's argument pins; argument ``k`` is offered once per EXEC when loaded.
    start : Out(stream.Signature(1))
        The host site's start pin: one token per EXEC.
    done : In(stream.Signature(1))
        The host site's done pin: tokens that mark the kernel's completion (always taken).
    state : Out(3)
        :class:`LaunchState`.
    error : Out(4)
        :class:`LaunchError` of the last refusal.
    error_unit : Out(16)
        The configuration address the error concerns.
    busy : In(1)
        Some unit is still working; the kernel is done only when this is low after the last
        done token (tie low where there is nothing to wait for).
    cycles : Out(32)
        Cycles from EXEC to the end of the kernel, or to its ABORT (counting while RUNNING).
    tokens : Out(16)
        Done tokens received in this run (kept by an ABORT).
    """

    def __init__(self, present):
        present = [bool(p) for p in present]
        if not 1 <= len(present) <= 1 << 16:
            raise ValueError(f"between 1 and 65536 configuration addresses, got {len(present)}")
        self.present = present
        n = len(present)
        super().__init__({
            "host": In(stream.Signature(32)),
            "ep_cfg": Out(stream.Signature(32)).array(n),
            "ep_clear": Out(1),
            "ep_abort": Out(1),
            "ep_configured": In(n),
            "arg": Out(stream.Signature(32)).array(ARGUMENTS),
            "start": Out(stream.Signature(1)),
            "done": In(stream.Signature(1)),
            "busy": In(1),
            "state": Out(3),
            "error": Out(4),
            "error_unit": Out(16),
            "cycles": Out(32),
            "tokens": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.present)
        present = Const(sum(1 << k for k, p in enumerate(self.present) if p), n)
        host = self.host
        word = host.payload
        take = host.valid & host.ready

        remaining = Signal(24)        # LOAD words still to come
        record_left = Signal(16)      # body words of the current record still to come
        addr = Signal(16)
        crc = Signal(32)
        addressed = Signal(n)
        holding = Signal(n)
        held = [Signal(32, name=f"held{k}") for k in range(n)]
        args = [Signal(32, name=f"arg{k}") for k in range(ARGUMENTS)]
        arg_count = Signal(range(ARGUMENTS + 1))
        arg_index = Signal(range(ARGUMENTS + 1))
        arg_pending = Signal(ARGUMENTS)
        start_pending = Signal()
        target = Signal(16)
        settle = Signal(2)

        def refuse(code, unit=None):
            m.d.sync += [self.state.eq(LaunchState.REFUSED), self.error.eq(code)]
            if unit is not None:
                m.d.sync += self.error_unit.eq(unit)

        def abort():
            """Take an ABORT: drop the run's pending offers, then clear and stop in phase ABORT."""
            m.d.sync += [arg_pending.eq(0), start_pending.eq(0), addressed.eq(0), holding.eq(0),
                         settle.eq(0), phase.eq(_PHASES.index("ABORT"))]

        # endpoint words: pass-through of a record's body, or the held words at commit
        body_word = Signal()
        addressed_ready = Signal()
        m.d.comb += addressed_ready.eq(Cat((addr == k) & ep.ready for k, ep in enumerate(self.ep_cfg)).any())
        committing = Signal()
        for k in range(n):
            ep = self.ep_cfg[k]
            m.d.comb += ep.payload.eq(word)
        m.d.comb += [self.ep_clear.eq(0), self.ep_abort.eq(0)]

        for k in range(ARGUMENTS):
            m.d.comb += [self.arg[k].valid.eq(arg_pending[k]), self.arg[k].payload.eq(args[k])]
            with m.If(self.arg[k].valid & self.arg[k].ready):
                m.d.sync += arg_pending[k].eq(0)
        m.d.comb += [self.start.valid.eq(start_pending), self.start.payload.eq(1), self.done.ready.eq(1)]
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += start_pending.eq(0)

        phase = Signal(range(len(_PHASES)))
        with m.If(phase == _PHASES.index("ARGS")):
            m.d.comb += host.ready.eq(1)
            with m.If(take):
                m.d.sync += arg_index.eq(arg_index + 1)
                for k in range(ARGUMENTS):
                    with m.If(arg_index == k):
                        m.d.sync += args[k].eq(word)
                with m.If(arg_index + 1 == arg_count):
                    m.d.sync += phase.eq(_PHASES.index("COMMAND"))

        with m.Elif(phase == _PHASES.index("ADDRESS")):
            m.d.comb += host.ready.eq(1)
            a, count = word[16:32], word[0:16]
            with m.If(take):
                m.d.sync += [remaining.eq(remaining - 1), addr.eq(a), record_left.eq(count),
                             crc.eq(crc_update_value(Const(CRC_INIT, 32), word))]
                with m.If((a >= n) | ~(present >> a)[0]):
                    refuse(LaunchError.BAD_ADDRESS, a)
                    m.d.sync += phase.eq(_PHASES.index("DRAIN"))
                with m.Elif(count == 0):
                    refuse(LaunchError.BAD_RECORD, a)
                    m.d.sync += phase.eq(_PHASES.index("DRAIN"))
                with m.Elif((addressed >> a)[0]):
                    refuse(LaunchError.DUPLICATE, a)
                    m.d.sync += phase.eq(_PHASES.index("DRAIN"))
                with m.Elif(remaining < count + 2):
                    refuse(LaunchError.TRUNCATED, a)
                    m.d.sync += phase.eq(_PHASES.index("DRAIN"))
                with m.Else():
                    for k in range(n):
                        with m.If(a == k):
                            m.d.sync += addressed[k].eq(1)
                    m.d.sync += phase.eq(_PHASES.index("BODY"))

        with m.Elif(phase == _PHASES.index("BODY")):
            last = record_left == 1
            with m.If(last):
                m.d.comb += host.ready.eq(1)   # the last word is held until commit
            with m.Else():
                m.d.comb += [body_word.eq(host.valid), host.ready.eq(addressed_ready)]
            with m.If(take):
                m.d.sync += [remaining.eq(remaining - 1), record_left.eq(record_left - 1),
                             crc.eq(crc_update_value(crc, word))]
                with m.If(last):
                    for k in range(n):
                        with m.If(addr == k):
                            m.d.sync += [held[k].eq(word), holding[k].eq(1)]
                    m.d.sync += phase.eq(_PHASES.index("CRC"))

        with m.Elif(phase == _PHASES.index("CRC")):
            m.d.comb += host.ready.eq(1)
            with m.If(take):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(word != crc_result_value(crc)):
                    refuse(LaunchError.CRC, addr)
                    m.d.sync += phase.eq(_PHASES.index("DRAIN"))
                with m.Elif(remaining == 1):
                    m.d.sync += phase.eq(_PHASES.index("COMMIT"))
                with m.Else():
                    m.d.sync += phase.eq(_PHASES.index("ADDRESS"))

        with m.Elif(phase == _PHASES.index("DRAIN")):  # swallow the rest of a refused image, clear all
            m.d.comb += host.ready.eq(remaining != 0)
            with m.If(take):
                m.d.sync += remaining.eq(remaining - 1)
            with m.If(remaining == 0):
                m.d.comb += self.ep_clear.eq(1)
                m.d.sync += holding.eq(0)
                m.d.sync += phase.eq(_PHASES.index("COMMAND"))

        with m.Elif(phase == _PHASES.index("COMMIT")):  # release the held words; all endpoints commit
            m.d.comb += committing.eq(1)
            for k in range(n):
                with m.If(self.ep_cfg[k].valid & self.ep_cfg[k].ready):
                    m.d.sync += holding[k].eq(0)
            m.d.sync += settle.eq(0)
            with m.If(holding == 0):
                m.d.sync += phase.eq(_PHASES.index("SETTLE"))

        with m.Elif(phase == _PHASES.index("SETTLE")):  # loaders report `configured` a cycle later
            m.d.sync += settle.eq(settle + 1)
            with m.If(settle == 1):
                missing = addressed & ~self.ep_configured
                with m.If(missing != 0):
                    first = Signal(16)
                    for k in reversed(range(n)):
                        with m.If(missing[k]):
                            m.d.comb += first.eq(k)
                    refuse(LaunchError.UNIT_REFUSED, first)
                    m.d.comb += self.ep_clear.eq(1)
                with m.Else():
                    m.d.sync += self.state.eq(LaunchState.LOADED)
                m.d.sync += phase.eq(_PHASES.index("COMMAND"))

        with m.Elif(phase == _PHASES.index("RUN")):
            # only ABORT is taken while a kernel runs; other commands wait for the end of the run
            m.d.comb += host.ready.eq(word[24:32] == Command.ABORT)
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(self.done.valid):
                m.d.sync += self.tokens.eq(self.tokens + 1)
            with m.If(take):
                abort()
            with m.Elif((self.tokens >= target) & ~self.busy):
                m.d.sync += self.state.eq(LaunchState.DONE)
                m.d.sync += phase.eq(_PHASES.index("COMMAND"))

        with m.Elif(phase == _PHASES.index("ABORT")):
            # endpoints are cleared and units stopped until none is busy; units report busy from
            # registers, which the clear reaches at the end of the first cycle
            m.d.comb += [self.ep_clear.eq(1), self.ep_abort.eq(1)]
            with m.If(settle != 3):
                m.d.sync += settle.eq(settle + 1)
            with m.If((settle != 0) & ~self.busy):
                m.d.sync += [self.state.eq(LaunchState.ABORTED), self.error.eq(LaunchError.NONE),
                             self.error_unit.eq(0), phase.eq(_PHASES.index("COMMAND"))]

        with m.Else():  # COMMAND (and any unused encoding)
            m.d.comb += host.ready.eq(1)
            op, operand = word[24:32], word[0:24]
            with m.If(take):
                with m.If(op == Command.LOAD):
                    m.d.comb += self.ep_clear.eq(1)
                    m.d.sync += [self.state.eq(LaunchState.LOADING), self.error.eq(0),
                                 self.error_unit.eq(0), addressed.eq(0), holding.eq(0),
                                 remaining.eq(operand)]
                    with m.If(operand == 0):
                        refuse(LaunchError.TRUNCATED)
                    with m.Else():
                        m.d.sync += phase.eq(_PHASES.index("ADDRESS"))
                with m.Elif(op == Command.ARGS):
                    with m.If(operand > ARGUMENTS):
                        refuse(LaunchError.BAD_COMMAND)
                    with m.Elif(operand != 0):
                        m.d.sync += [arg_count.eq(operand), arg_index.eq(0)]
                        m.d.sync += phase.eq(_PHASES.index("ARGS"))
                    with m.Else():
                        m.d.sync += arg_count.eq(0)
                with m.Elif(op == Command.EXEC):
                    with m.If(operand[0:16] == 0):
                        refuse(LaunchError.BAD_COMMAND)
                    with m.Elif((self.state == LaunchState.LOADED) | (self.state == LaunchState.DONE)):
                        m.d.sync += [self.state.eq(LaunchState.RUNNING), self.cycles.eq(0),
                                     self.tokens.eq(0), target.eq(operand[0:16]),
                                     start_pending.eq(1),
                                     arg_pending.eq(Cat(arg_count > k for k in range(ARGUMENTS)))]
                        m.d.sync += phase.eq(_PHASES.index("RUN"))
                    with m.Else():
                        refuse(LaunchError.NOT_LOADED)
                with m.Elif(op == Command.ABORT):
                    abort()
                with m.Else():
                    refuse(LaunchError.BAD_COMMAND)

        for k in range(n):
            ep = self.ep_cfg[k]
            with m.If(holding[k] & committing):
                m.d.comb += [ep.valid.eq(1), ep.payload.eq(held[k])]
            with m.Elif(body_word & (addr == k)):
                m.d.comb += ep.valid.eq(1)
        return m
