"""A crossbar from many memory requesters to the channels of an HBM stack.

:class:`MemoryCrossbar`::

    port0 ─┐                         ┌─▶ channel0 (one controller each)
    port1 ─┼─▶ route by address ───▶ ├─▶ channel1
     …     │   round robin per       │    …
    portN ─┘   channel, tag FIFOs    └─▶ channelC
      ▲                                   │ responses, in order per channel
      └──── reorder buffer per port ◀─────┘ (written by tag, read in request order)

Address map
-----------
Lines are interleaved over the ``C`` channels in blocks of ``G`` = ``interleave_lines``
consecutive lines. A line address splits, from the least significant bit, into ``offset``
(log2 G bits), ``select`` (log2 C bits) and ``upper`` (the rest)::

    channel       = select XOR fold(upper)        (with hash; else select)
    channel line  = upper · G + offset

``fold`` XORs ``upper``'s log2 C-bit groups together, so streams that start a power of two
apart (the same ``select`` at the same time) land in different channels instead of queueing at
one. The map is a bijection (``upper`` is part of the channel line); :func:`channel_of` and
:func:`line_of` are its reference in Python (the testbenches place data with them).
``G = 1`` without hash is the plain line interleave of :class:`hdl.memctrl.MemoryTier`.

Every channel has its own round-robin arbiter, so up to ``C`` requests from different ports
are taken per cycle, and a port waits only for the channel its line lives in.

Order and deadlock freedom
--------------------------
A port's responses must come back in its request order, but its requests spread over
channels that answer at different times. Each request of port *k* is given a *slot* of
port *k*'s reorder buffer (``reorder_depth`` entries, taken in order); the channel records
(*k*, slot) in its tag FIFO and, when it answers, the response is written into that slot
at once. The port reads its slots in order. A port holds at most ``reorder_depth``
requests in flight, so a slot is always free for a response: a channel's response is never
held up by another channel (with a shared in-order return path, port A waiting on channel 1
while channel 1's head answers port B, who waits on channel 0, would deadlock).

One cycle is added to every response (the write into the reorder buffer).
"""

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .interface import MemoryPortSignature, response_layout

__all__ = ["MemoryCrossbar", "channel_of", "line_of", "channel_map"]


def _fold(upper, channels: int):
    """XOR of ``upper``'s log2(channels)-bit groups (ints or numpy arrays)."""
    bits = (channels - 1).bit_length()
    if bits == 0:
        return upper * 0
    out = upper * 0
    upper = upper + 0
    for _ in range(64 // bits + 1):
        out = out ^ (upper & (channels - 1))
        upper = upper >> bits
    return out


def channel_map(lines, channels: int, interleave_lines: int = 1, hashed: bool = False):
    """(channel, channel line) of each global line address (ints or an integer numpy array)."""
    g, cb = (interleave_lines - 1).bit_length(), (channels - 1).bit_length()
    lines = np.asarray(lines, dtype=np.int64) if not isinstance(lines, int) else lines
    offset = lines & (interleave_lines - 1)
    select = (lines >> g) & (channels - 1)
    upper = lines >> (g + cb)
    channel = select ^ _fold(upper, channels) if hashed else select
    return channel, (upper << g) | offset


def channel_of(line: int, channels: int, interleave_lines: int = 1, hashed: bool = False) -> tuple[int, int]:
    """(channel, channel line) of global line ``line`` under the address map (module docstring)."""
    channel, local = channel_map(int(line), channels, interleave_lines, hashed)
    return int(channel), int(local)


def line_of(channel: int, local: int, channels: int, interleave_lines: int = 1, hashed: bool = False) -> int:
    """The global line at ``local`` in ``channel``: the inverse of :func:`channel_of`."""
    g, cb = (interleave_lines - 1).bit_length(), (channels - 1).bit_length()
    upper, offset = local >> g, local & (interleave_lines - 1)
    select = channel ^ _fold(upper, channels) if hashed else channel
    return (((upper << cb) | select) << g) | offset


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


class MemoryCrossbar(wiring.Component):
    """``ports`` memory requesters to ``channels`` interleaved channels (module docstring).

    Parameters
    ----------
    ports : int
        Requesters, in [1, 64].
    channels : int
        Channels, a power of two in [1, 32].
    channel_addr_bits : int
        Line-address width of one channel, in [1, 40].
    reorder_depth : int
        Requests a port may have in flight (its reorder buffer), a power of two in [2, 256].
    tag_depth : int
        Requests a channel may have in flight (its tag FIFO), in [2, 1024].
    interleave_lines : int
        Consecutive lines per channel before the next channel, a power of two in [1, 2**16].
    hashed : bool
        Fold the upper address bits into the channel number (module docstring).

    Attributes
    ----------
    port0, port1, … : In(MemoryPortSignature(channel_addr_bits + log2(channels)))
        The requesters. Responses come back in each port's request order; ``resp.ready``
        may be low (the reorder buffer holds the responses).
    channel0, channel1, … : Out(MemoryPortSignature(channel_addr_bits))
        To the channels; each must answer its requests in order. ``resp.ready`` is high
        whenever a request of the channel is in flight.
    """

    def __init__(self, ports: int, channels: int, channel_addr_bits: int, *,
                 reorder_depth: int = 16, tag_depth: int = 64, interleave_lines: int = 1,
                 hashed: bool = False):
        if not _is_int(ports) or not 1 <= ports <= 64:
            raise ValueError(f"ports must be an int in [1, 64], got {ports!r}")
        if not _is_int(channels) or not 1 <= channels <= 32 or not _power_of_two(channels):
            raise ValueError(f"channels must be a power of two in [1, 32], got {channels!r}")
        if not _is_int(channel_addr_bits) or not 1 <= channel_addr_bits <= 40:
            raise ValueError(f"channel_addr_bits must be an int in [1, 40], got {channel_addr_bits!r}")
        if not _is_int(reorder_depth) or not 2 <= reorder_depth <= 256 or not _power_of_two(reorder_depth):
            raise ValueError(f"reorder_depth must be a power of two in [2, 256], got {reorder_depth!r}")
        if not _is_int(tag_depth) or not 2 <= tag_depth <= 1024:
            raise ValueError(f"tag_depth must be an int in [2, 1024], got {tag_depth!r}")
        if not _is_int(interleave_lines) or not 1 <= interleave_lines <= 1 << 16 \
                or not _power_of_two(interleave_lines):
            raise ValueError(f"interleave_lines must be a power of two in [1, 65536], "
                             f"got {interleave_lines!r}")
        if not isinstance(hashed, bool):
            raise TypeError(f"hashed must be a bool, got {type(hashed).__name__}")
        self.interleave_lines = interleave_lines
        self.hashed = hashed
        self.interleave_bits = (interleave_lines - 1).bit_length()
        if self.interleave_bits > channel_addr_bits:
            raise ValueError(f"interleave_lines {interleave_lines} is more than a channel's "
                             f"{1 << channel_addr_bits} lines")
        self.ports = ports
        self.channels = channels
        self.channel_bits = (channels - 1).bit_length()
        self.channel_addr_bits = channel_addr_bits
        self.addr_bits = channel_addr_bits + self.channel_bits
        self.reorder_depth = reorder_depth
        self.tag_depth = tag_depth
        members = {f"port{k}": In(MemoryPortSignature(self.addr_bits)) for k in range(ports)}
        members.update({f"channel{c}": Out(MemoryPortSignature(channel_addr_bits)) for c in range(channels)})
        super().__init__(members)

    @property
    def requesters(self) -> list:
        return [getattr(self, f"port{k}") for k in range(self.ports)]

    @property
    def channel_ports(self) -> list:
        return [getattr(self, f"channel{c}") for c in range(self.channels)]

    def _channel(self, addr):
        """The channel of line address ``addr`` (an Amaranth value)."""
        g, cb = self.interleave_bits, self.channel_bits
        channel = addr[g:g + cb]
        if self.hashed:
            upper = addr[g + cb:]
            for start in range(0, len(upper), cb):
                group = upper[start:start + cb]
                channel = channel ^ group
        return channel[:cb]

    def _channel_line(self, addr):
        """The line within its channel of line address ``addr``: upper · G + offset."""
        g, cb = self.interleave_bits, self.channel_bits
        return Cat(addr[:g], addr[g + cb:]) if g else addr[g + cb:]

    def elaborate(self, platform):
        m = Module()
        n, cb, depth = self.ports, self.channel_bits, self.reorder_depth
        port_bits = max(1, (n - 1).bit_length())
        slot_bits = (depth - 1).bit_length()
        ports, chans = self.requesters, self.channel_ports

        # per port: the channel it asks for, its next free slot, slots in flight
        want_channel, tail, head, held, credit, taken_by = [], [], [], [], [], []
        for k, port in enumerate(ports):
            ch = Signal(max(1, cb), name=f"p{k}_channel")
            m.d.comb += ch.eq(self._channel(port.req.payload.addr) if cb else 0)
            want_channel.append(ch)
            tail.append(Signal(slot_bits, name=f"p{k}_tail"))
            head.append(Signal(slot_bits, name=f"p{k}_head"))
            held.append(Signal(range(depth + 1), name=f"p{k}_held"))
            ok = Signal(name=f"p{k}_credit")
            m.d.comb += ok.eq(held[k] < depth)
            credit.append(ok)
            taken_by.append([])

        req_payload_bits = len(ports[0].req.payload.as_value())
        resp_bits = response_layout().size
        writes = [[] for _ in range(n)]  # per port: (enable, slot, data) from each channel
        for c, chan in enumerate(chans):
            tags = m.submodules[f"tags{c}"] = fifo.SyncFIFO(width=port_bits + slot_bits, depth=self.tag_depth)
            wants = Signal(n, name=f"c{c}_wants")
            m.d.comb += wants.eq(Cat(*[p.req.valid & (want_channel[k] == c) & credit[k]
                                       for k, p in enumerate(ports)]))
            # round robin: the first wanting port after the last granted one, else the first
            last = Signal(port_bits, name=f"c{c}_last")
            after = Signal(n, name=f"c{c}_after")
            m.d.comb += after.eq(wants & Cat(Const(0, 1), *[last < k for k in range(1, n)]))
            pick_after, pick_any = Const(0, port_bits), Const(0, port_bits)
            for k in reversed(range(n)):
                pick_after = Mux(after[k], k, pick_after)
                pick_any = Mux(wants[k], k, pick_any)
            grant = Signal(port_bits, name=f"c{c}_grant")
            m.d.comb += grant.eq(Mux(after != 0, pick_after, pick_any))
            chosen = ports[0].req.payload.as_value()
            for k in range(1, n):
                chosen = Mux(grant == k, ports[k].req.payload.as_value(), chosen)
            payload = Signal(req_payload_bits, name=f"c{c}_request")
            m.d.comb += payload.eq(chosen)
            fields = ports[0].req.payload.shape()(payload)
            m.d.comb += [chan.req.valid.eq((wants != 0) & tags.w_rdy),
                         chan.req.payload.addr.eq(self._channel_line(fields.addr)),
                         chan.req.payload.write.eq(fields.write),
                         chan.req.payload.mask.eq(fields.mask),
                         chan.req.payload.data.eq(fields.data)]
            taken = Signal(name=f"c{c}_taken")
            m.d.comb += taken.eq(chan.req.valid & chan.req.ready)
            slot = Signal(slot_bits, name=f"c{c}_slot")
            slot_value = tail[0]
            for k in range(1, n):
                slot_value = Mux(grant == k, tail[k], slot_value)
            m.d.comb += [slot.eq(slot_value), tags.w_en.eq(taken), tags.w_data.eq(Cat(slot, grant))]
            with m.If(taken):
                m.d.sync += last.eq(grant)
            for k in range(n):
                mine = Signal(name=f"c{c}_takes_p{k}")
                m.d.comb += mine.eq(taken & (grant == k))
                taken_by[k].append(mine)
            # responses: straight into the reorder slot their tag names
            m.d.comb += [chan.resp.ready.eq(tags.r_rdy), tags.r_en.eq(chan.resp.valid & tags.r_rdy)]
            tag_slot, tag_port = tags.r_data[:slot_bits], tags.r_data[slot_bits:]
            for k in range(n):
                en = Signal(name=f"c{c}_answers_p{k}")
                m.d.comb += en.eq(chan.resp.valid & tags.r_rdy & (tag_port == k))
                writes[k].append((en, tag_slot, chan.resp.payload.as_value()))

        for k, port in enumerate(ports):
            accepted = Signal(name=f"p{k}_accepted")
            m.d.comb += [accepted.eq(Cat(*taken_by[k]).any()), port.req.ready.eq(accepted)]
            rob = m.submodules[f"reorder{k}"] = Memory(shape=resp_bits, depth=depth, init=[])
            filled = Signal(depth, name=f"p{k}_filled")
            set_bits = Const(0, depth)
            for en, tag_slot, data in writes[k]:
                wp = rob.write_port()
                m.d.comb += [wp.en.eq(en), wp.addr.eq(tag_slot), wp.data.eq(data)]
                set_bits = set_bits | Mux(en, Const(1, depth) << tag_slot, 0)
            rp = rob.read_port(domain="comb")
            m.d.comb += [rp.addr.eq(head[k]), port.resp.valid.eq(filled.bit_select(head[k], 1)),
                         port.resp.payload.eq(rp.data)]
            popped = Signal(name=f"p{k}_popped")
            m.d.comb += popped.eq(port.resp.valid & port.resp.ready)
            clear_bits = Mux(popped, Const(1, depth) << head[k], 0)
            m.d.sync += [filled.eq((filled | set_bits) & ~clear_bits),
                         held[k].eq(held[k] + accepted - popped)]
            with m.If(accepted):
                m.d.sync += tail[k].eq(tail[k] + 1)
            with m.If(popped):
                m.d.sync += head[k].eq(head[k] + 1)
        return m
