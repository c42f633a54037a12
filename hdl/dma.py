"""DDR → HBM copy path: two AGCUs, two channel controllers, three clocks.

:class:`DdrToHbmCopy` is the path the CoE host uses to bring an expert's weights from
its home in DDR into HBM::

    DDR device ─dfi─ MemoryController (ddr clock) ─ bridge ─ AGCU "load"  ─vout─┐
                                                              (fabric clock)    │ fabric hop
    HBM device ─dfi─ MemoryController (hbm clock) ─ bridge ─ AGCU "store" ◀vin──┘ (StreamFifo)

Each controller runs at its DRAM command clock (``ddr_clk``, ``hbm_clk``); the AGCUs
and the hop run at the fabric clock (``clk``). The bridges are asynchronous FIFOs.
The host programs each AGCU's segment table (``rd_seg`` / ``wr_seg``) and kernel
configuration (``rd_cfg`` / ``wr_cfg``), then pulses ``start``; the copy is complete
when ``wr_done`` pulses. A store whose run leaves its segment faults (``wr_fault``)
before issuing a single write.
"""

from amaranth import Module
from amaranth.hdl import DomainRenamer
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .agcu import AddressGenerationUnit, AgcuParams
from .memctrl import DfiSignature, MemoryController, MemoryPortBridge, timing_preset
from .presets import get_preset
from .stream import StreamFifo, vector_layout

__all__ = ["DdrToHbmCopy"]


class DdrToHbmCopy(wiring.Component):
    """One DDR channel → one HBM channel copy path through two AGCUs.

    Parameters
    ----------
    preset : str or Preset
        Fabric preset (vector width of the AGCUs and the hop).
    ddr, hbm : str or DramTiming
        Timing presets of the two channels.
    ecc : bool
        SECDED in both controllers.
    hop_depth : int
        Entries of the fabric FIFO between the AGCUs.

    Attributes
    ----------
    ddr_dfi, hbm_dfi : Out(DfiSignature)
        The channels' DFI-like buses (to the device models), in ``ddr`` / ``hbm``.
    rd_cfg, wr_cfg : In(stream.Signature(32))
        Configuration images of the load (DDR) and store (HBM) AGCUs.
    rd_seg, wr_seg : In(stream.Signature(segment layout))
        Segment table writes of the two AGCUs.
    start : In(1)
        One pulse starts one run of both AGCUs.
    rd_done, wr_done : Out(1)
        One-cycle pulses when the load / store run has finished.
    rd_fault, wr_fault : Out(1)
        Sticky protection faults of the two AGCUs.
    rd_requests, wr_requests : Out(32)
        Line requests the AGCUs have issued.
    rd_configured, wr_configured : Out(1)
        The AGCUs hold a valid configuration.
    """

    def __init__(self, preset="small", *, ddr="DDR4-3200", hbm="HBM2-2000", ecc: bool = False,
                 hop_depth: int = 4, outstanding: int = 32):
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self.ddr = timing_preset(ddr)
        self.hbm = timing_preset(hbm)
        if self.ddr.tier != "ddr":
            raise ValueError(f"ddr must be a DDR preset, got {self.ddr.name}")
        if self.hbm.tier != "hbm":
            raise ValueError(f"hbm must be an HBM preset, got {self.hbm.name}")
        self.ecc = ecc
        self.hop_depth = hop_depth
        self.rd_params = AgcuParams(self.preset, addr_bits=self.ddr.line_address_bits,
                                    outstanding=outstanding)
        self.wr_params = AgcuParams(self.preset, addr_bits=self.hbm.line_address_bits,
                                    outstanding=outstanding)
        super().__init__({
            "ddr_dfi": Out(DfiSignature(self.ddr, ecc)),
            "hbm_dfi": Out(DfiSignature(self.hbm, ecc)),
            "rd_cfg": In(stream.Signature(32)), "wr_cfg": In(stream.Signature(32)),
            "rd_seg": In(stream.Signature(self.rd_params.segment_layout)),
            "wr_seg": In(stream.Signature(self.wr_params.segment_layout)),
            "start": In(1),
            "rd_done": Out(1), "wr_done": Out(1), "rd_fault": Out(1), "wr_fault": Out(1),
            "rd_requests": Out(32), "wr_requests": Out(32),
            "rd_configured": Out(1), "wr_configured": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ddr = m.submodules.ddr_controller = DomainRenamer("ddr")(MemoryController(self.ddr, ecc=self.ecc))
        hbm = m.submodules.hbm_controller = DomainRenamer("hbm")(MemoryController(self.hbm, ecc=self.ecc))
        wiring.connect(m, wiring.flipped(self.ddr_dfi), ddr.dfi)
        wiring.connect(m, wiring.flipped(self.hbm_dfi), hbm.dfi)
        ddr_bridge = m.submodules.ddr_bridge = MemoryPortBridge(self.ddr.line_address_bits, "ddr")
        hbm_bridge = m.submodules.hbm_bridge = MemoryPortBridge(self.hbm.line_address_bits, "hbm")
        wiring.connect(m, ddr_bridge.memory, ddr.port)
        wiring.connect(m, hbm_bridge.memory, hbm.port)
        rd = m.submodules.load_agcu = AddressGenerationUnit(self.rd_params)
        wr = m.submodules.store_agcu = AddressGenerationUnit(self.wr_params)
        wiring.connect(m, rd.mem, ddr_bridge.fabric)
        wiring.connect(m, wr.mem, hbm_bridge.fabric)
        hop = m.submodules.hop = StreamFifo(vector_layout(self.preset.lanes), self.hop_depth)
        wiring.connect(m, rd.vout, hop.i)
        wiring.connect(m, hop.o, wr.vin)
        wiring.connect(m, wiring.flipped(self.rd_cfg), rd.cfg)
        wiring.connect(m, wiring.flipped(self.wr_cfg), wr.cfg)
        wiring.connect(m, wiring.flipped(self.rd_seg), rd.seg)
        wiring.connect(m, wiring.flipped(self.wr_seg), wr.seg)
        for unit in (rd, wr):
            m.d.comb += [unit.start.eq(self.start), unit.cfg_clear.eq(0), unit.sin.valid.eq(0),
                         unit.sout.ready.eq(1)]
        m.d.comb += [rd.vin.valid.eq(0), wr.vout.ready.eq(1)]
        m.d.comb += [self.rd_done.eq(rd.done), self.wr_done.eq(wr.done), self.rd_fault.eq(rd.fault),
                     self.wr_fault.eq(wr.fault), self.rd_requests.eq(rd.requests),
                     self.wr_requests.eq(wr.requests), self.rd_configured.eq(rd.configured),
                     self.wr_configured.eq(wr.configured)]
        return m
