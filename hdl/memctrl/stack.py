"""An HBM stack: the channel controllers of a stack behind a crossbar with a port per requester.

:class:`HbmStack`::

    port0 … portN ─▶ MemoryCrossbar ─▶ channel c: [MemoryPortBridge ─▶] MemoryController ─▶ dfi<c>

Lines are interleaved over the channels in blocks of :data:`STACK_INTERLEAVE_LINES` with the
upper address bits folded into the channel number (the crossbar's address map,
:mod:`hdl.memctrl.crossbar`: a stream keeps one channel's rows open for a whole block, and
streams a power of two apart start in different channels); each port's responses come back in
its request order. With ``memory_domain`` the controllers run in that clock domain
behind an asynchronous bridge each; without, everything is in ``sync``.
:class:`hdl.system.TileSystem` puts its AGCUs on one (``memory_domain="hbm"``); ``openrdu
mem-bench --ports P --channels C`` measures one on its own.
"""

from amaranth import Module
from amaranth.hdl import DomainRenamer
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .controller import MemoryController
from .crossbar import MemoryCrossbar
from .interface import DfiSignature, MemoryPortSignature
from .tier import MemoryPortBridge
from .timing import timing_preset

__all__ = ["HbmStack", "STACK_INTERLEAVE_LINES", "STACK_HASHED"]

#: Lines of a block that stays in one channel: 256 lines (16 KiB), four rows in each of an HBM2
#: channel's four bank groups (16 lines per row). When a stream moves on, the next stream's rows
#: open after the current one's hits drain (about 30 tCK); a block takes 512 tCK, so that costs
#: about 6 %. Measured with 8 ports streaming into 8 HBM2-2000 channels (``openrdu mem-bench
#: --channels 8 --ports 8 --bytes 1048576``): 64-line blocks 79 %, 256-line blocks 92.6 % of the
#: stack's peak; plain line interleave 16 % (every stream in every bank at once). A block in one
#: channel also means one stream gets at most one channel's bandwidth (32 GB/s: one vector of
#: ``small`` per fabric cycle, half a vector of ``plasticine``).
STACK_INTERLEAVE_LINES = 256
#: Fold the upper address bits into the channel number.
STACK_HASHED = True


class HbmStack(wiring.Component):
    """``channels`` controllers reached by ``ports`` requesters through a crossbar.

    Parameters
    ----------
    timing : DramTiming or str
        Timing preset of every channel.
    channels : int
        Channels, a power of two in [1, 32].
    ports : int
        Requesters, in [1, 64].
    ecc : bool
        SECDED in every controller.
    queue_depth : int
        Request slots per controller.
    reorder_depth : int
        Lines a port may have in flight (a power of two; see :class:`MemoryCrossbar`).
    memory_domain : str, optional
        Clock domain of the controllers (each behind a :class:`MemoryPortBridge`); default: ``sync``.
    interleave_lines, hashed
        The address map (:class:`MemoryCrossbar`).

    Attributes
    ----------
    port0, port1, … : In(MemoryPortSignature(addr_bits))
        The requesters (``sync``); ``addr_bits`` = a channel's line bits + log2(channels).
    dfi0, dfi1, … : Out(DfiSignature)
        One DFI-like bus per channel, in the controllers' domain.
    busy : Out(1)
        Any controller busy (``sync`` only; 0 with ``memory_domain``).
    """

    def __init__(self, timing, *, channels: int, ports: int, ecc: bool = False, queue_depth: int = 32,
                 reorder_depth: int = 16, memory_domain: str | None = None,
                 interleave_lines: int = STACK_INTERLEAVE_LINES, hashed: bool = STACK_HASHED):
        self.timing = timing_preset(timing)
        self.ecc = ecc
        self.queue_depth = queue_depth
        self.memory_domain = memory_domain
        # validates ports, channels and reorder_depth
        self.crossbar = MemoryCrossbar(ports, channels, self.timing.line_address_bits,
                                       reorder_depth=reorder_depth, tag_depth=64,
                                       interleave_lines=interleave_lines, hashed=hashed)
        self.interleave_lines, self.hashed = interleave_lines, hashed
        self.ports, self.channels = ports, channels
        self.addr_bits = self.crossbar.addr_bits
        members = {f"port{k}": In(MemoryPortSignature(self.addr_bits)) for k in range(ports)}
        members.update({f"dfi{c}": Out(DfiSignature(self.timing, ecc)) for c in range(channels)})
        members["busy"] = Out(1)
        super().__init__(members)

    @property
    def requesters(self) -> list:
        return [getattr(self, f"port{k}") for k in range(self.ports)]

    def elaborate(self, platform):
        m = Module()
        xbar = m.submodules.crossbar = self.crossbar
        for k in range(self.ports):
            wiring.connect(m, wiring.flipped(self.requesters[k]), xbar.requesters[k])
        line_bits = self.timing.line_address_bits
        busy = []
        for c in range(self.channels):
            ctrl = MemoryController(self.timing, ecc=self.ecc, queue_depth=self.queue_depth)
            if self.memory_domain is None:
                m.submodules[f"channel{c}"] = ctrl
                wiring.connect(m, xbar.channel_ports[c], ctrl.port)
                busy.append(ctrl.busy)
            else:
                bridge = m.submodules[f"bridge{c}"] = MemoryPortBridge(line_bits, self.memory_domain)
                wiring.connect(m, xbar.channel_ports[c], bridge.fabric)
                ctrl = m.submodules[f"channel{c}"] = DomainRenamer(self.memory_domain)(ctrl)
                wiring.connect(m, bridge.memory, ctrl.port)
            wiring.connect(m, wiring.flipped(getattr(self, f"dfi{c}")), ctrl.dfi)
        if busy:
            any_busy = busy[0]
            for b in busy[1:]:
                any_busy = any_busy | b
            m.d.comb += self.busy.eq(any_busy)
        return m
