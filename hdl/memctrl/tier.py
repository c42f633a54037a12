"""A memory tier: several channel controllers behind one port, and a clock-domain bridge.

:class:`MemoryTier` interleaves 64-byte lines over ``channels`` controllers (the low
bits of the line address pick the channel) and returns responses in request order.
:class:`MemoryPortBridge` carries a user port from the fabric clock into a memory
clock domain (asynchronous FIFOs both ways).
"""

from amaranth import Cat, Module, Signal
from amaranth.hdl import DomainRenamer
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .controller import MemoryController
from .interface import DfiSignature, MemoryPortSignature, request_layout, response_layout
from .timing import timing_preset

__all__ = ["MemoryTier", "MemoryPortBridge"]


class MemoryTier(wiring.Component):
    """``channels`` :class:`MemoryController` s interleaved at line granularity.

    Parameters
    ----------
    timing : DramTiming or str
        Timing preset of every channel.
    channels : int
        Number of channels (power of two, 1..32).
    ecc : bool
        SECDED in every controller.
    queue_depth : int
        Request slots per controller.

    Attributes
    ----------
    port : In(MemoryPortSignature(addr_bits))
        Line address = channel line address × channels + channel; responses in request order.
    dfi0, dfi1, … : Out(DfiSignature)
        One DFI-like bus per channel (to one device model each).
    busy : Out(1)
        Any channel busy.
    ecc_corrected, ecc_uncorrectable : Out(32)
        Sums over the channels.
    """

    def __init__(self, timing, *, channels: int = 2, ecc: bool = False, queue_depth: int = 32):
        timing = timing_preset(timing)
        if isinstance(channels, bool) or not isinstance(channels, int):
            raise TypeError(f"channels must be an int, got {type(channels).__name__}")
        if not 1 <= channels <= 32 or channels & (channels - 1):
            raise ValueError(f"channels must be a power of two in [1, 32], got {channels}")
        self.timing = timing
        self.channels = channels
        self.ecc = ecc
        self.queue_depth = queue_depth
        self.channel_bits = (channels - 1).bit_length()
        self.addr_bits = timing.line_address_bits + self.channel_bits
        members = {"port": In(MemoryPortSignature(self.addr_bits))}
        for c in range(channels):
            members[f"dfi{c}"] = Out(DfiSignature(timing, ecc))
        members.update(busy=Out(1), ecc_corrected=Out(32), ecc_uncorrectable=Out(32))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n, cb = self.channels, self.channel_bits
        ctrls = []
        for c in range(n):
            ctrl = MemoryController(self.timing, ecc=self.ecc, queue_depth=self.queue_depth)
            m.submodules[f"channel{c}"] = ctrl
            wiring.connect(m, wiring.flipped(getattr(self, f"dfi{c}")), ctrl.dfi)
            ctrls.append(ctrl)
        # every request in flight has its channel in the order FIFO
        order = m.submodules.order = fifo.SyncFIFO(width=max(cb, 1),
                                                   depth=n * (self.queue_depth + 8))
        req, resp = self.port.req, self.port.resp
        ch = Signal(max(cb, 1))
        m.d.comb += ch.eq(req.payload.addr[:cb] if cb else 0)
        accepted = Signal()
        for c, ctrl in enumerate(ctrls):
            sel = ch == c
            m.d.comb += [ctrl.port.req.payload.addr.eq(req.payload.addr[cb:]),
                         ctrl.port.req.payload.write.eq(req.payload.write),
                         ctrl.port.req.payload.mask.eq(req.payload.mask),
                         ctrl.port.req.payload.data.eq(req.payload.data),
                         ctrl.port.req.valid.eq(req.valid & sel & order.w_rdy)]
        m.d.comb += req.ready.eq(order.w_rdy & Cat(*[(ch == c) & ctrl.port.req.ready
                                                     for c, ctrl in enumerate(ctrls)]).any())
        m.d.comb += [accepted.eq(req.valid & req.ready), order.w_en.eq(accepted), order.w_data.eq(ch)]
        # responses: from the channel at the head of the order FIFO (AND-OR multiplexer)
        payload_bits = len(resp.payload.as_value())
        data = Signal(payload_bits)
        terms_d, terms_v = [], []
        for c, ctrl in enumerate(ctrls):
            sel = Signal(name=f"resp_sel{c}")
            m.d.comb += sel.eq(order.r_rdy & (order.r_data == c))
            terms_d.append(ctrl.port.resp.payload.as_value() & sel.replicate(payload_bits))
            terms_v.append(ctrl.port.resp.valid & sel)
            m.d.comb += ctrl.port.resp.ready.eq(resp.ready & sel)
        for term in terms_d:
            data = data | term
        valid_any = Signal()
        m.d.comb += valid_any.eq(sum(terms_v) != 0) if n > 1 else valid_any.eq(terms_v[0])
        m.d.comb += [resp.payload.eq(data), resp.valid.eq(valid_any), order.r_en.eq(resp.valid & resp.ready)]
        m.d.comb += [self.busy.eq(sum(c.busy for c in ctrls) != 0),
                     self.ecc_corrected.eq(sum(c.ecc_corrected for c in ctrls)),
                     self.ecc_uncorrectable.eq(sum(c.ecc_uncorrectable for c in ctrls))]
        return m


class MemoryPortBridge(wiring.Component):
    """A user port crossing from the ``sync`` (fabric) domain into ``domain`` (memory clock).

    Parameters
    ----------
    addr_bits : int
        Line address width of the port.
    domain : str
        Clock domain of the memory side.
    depth : int
        Entries of each asynchronous FIFO.

    Attributes
    ----------
    fabric : In(MemoryPortSignature(addr_bits))
        The requester's port, in ``sync``.
    memory : Out(MemoryPortSignature(addr_bits))
        To the controller, in ``domain``.
    """

    def __init__(self, addr_bits: int, domain: str, *, depth: int = 8):
        if not isinstance(domain, str) or not domain:
            raise TypeError(f"domain must be a non-empty str, got {domain!r}")
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self.domain = domain
        self.depth = depth
        self.addr_bits = addr_bits
        super().__init__({"fabric": In(MemoryPortSignature(addr_bits)),
                          "memory": Out(MemoryPortSignature(addr_bits))})

    def elaborate(self, platform):
        m = Module()
        req_bits = request_layout(self.addr_bits).size
        resp_bits = response_layout().size
        reqf = m.submodules.requests = fifo.AsyncFIFO(width=req_bits, depth=self.depth,
                                                     r_domain=self.domain, w_domain="sync")
        respf = m.submodules.responses = fifo.AsyncFIFO(width=resp_bits, depth=self.depth,
                                                       r_domain="sync", w_domain=self.domain)
        m.d.comb += [
            reqf.w_data.eq(self.fabric.req.payload), reqf.w_en.eq(self.fabric.req.valid),
            self.fabric.req.ready.eq(reqf.w_rdy),
            self.memory.req.payload.eq(reqf.r_data), self.memory.req.valid.eq(reqf.r_rdy),
            reqf.r_en.eq(self.memory.req.ready),
            respf.w_data.eq(self.memory.resp.payload), respf.w_en.eq(self.memory.resp.valid),
            self.memory.resp.ready.eq(respf.w_rdy),
            self.fabric.resp.payload.eq(respf.r_data), self.fabric.resp.valid.eq(respf.r_rdy),
            respf.r_en.eq(self.fabric.resp.ready),
        ]
        return m


def in_domain(component, domain: str):
    """``component`` with its ``sync`` domain renamed to ``domain``."""
    return DomainRenamer(domain)(component)
