"""Formal harnesses for configurable units: stream rules on their outputs, configuration safety."""

from __future__ import annotations

from amaranth import Array, Const, Elaboratable, Module, Signal
from amaranth.hdl import Assert, Assume, Cover

from ..config_port import ConfigLoader
from ..pcu import PatternComputeUnit, PcuParams
from ..pmu import PatternMemoryUnit
from ..presets import get_preset
from .streams import free, reset_at_start, stream_rules

__all__ = ["UnitStreamRulesHarness", "ConfigLoaderHarness", "small_pcu", "tiny_pmu"]


def small_pcu() -> PatternComputeUnit:
    """A PCU small enough to prove: 2 lanes, 2 stages, a few ops, the MAC array, no tail."""
    preset = get_preset("tiny").replace(name="formal", lanes=2, stages=2, fifo_depth=2, counter_width=4)
    return PatternComputeUnit(PcuParams(preset, ops=("mov", "iadd"), tail=False, systolic=True, constants=1))


def tiny_pmu() -> PatternMemoryUnit:
    return PatternMemoryUnit("tiny")


class UnitStreamRulesHarness(Elaboratable):
    """Every input of a unit free (streams following the rules), every output stream checked.

    The configuration port is free too, so the solver may load any image: the rules must hold
    for every program.
    """

    def __init__(self, factory, inputs: tuple[str, ...], outputs: tuple[str, ...], controls: tuple[str, ...],
                 image: list[int] | None = None, output_cover: bool = True):
        self.factory, self.inputs, self.outputs, self.controls = factory, inputs, outputs, controls
        self.output_cover = output_cover
        self.image = image  # when given, the configuration port receives this image, then nothing

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.factory()
        started = reset_at_start(m)
        for name in self.inputs:
            port = getattr(dut, name)
            if name == "cfg" and self.image is not None:
                sent = Signal(range(len(self.image) + 1))
                with m.If(port.valid & port.ready):
                    m.d.sync += sent.eq(sent + 1)
                m.d.comb += [port.valid.eq(started & (sent < len(self.image))),
                             port.payload.eq(Array(Const(w, 32) for w in self.image)[sent])]
                continue
            free(m, port.valid, port.payload)
            stream_rules(m, port, started, check=Assume, label=name)
        for name in self.outputs:
            port = getattr(dut, name)
            free(m, port.ready)
            stream_rules(m, port, started, check=Assert, label=name)
        free(m, *[getattr(dut, name) for name in self.controls])
        # covers: the unit gets configured, and its first output is taken after a stall
        m.d.comb += Cover(started & dut.configured)
        if self.output_cover:
            first = getattr(dut, self.outputs[0])
            stalled = Signal()
            m.d.sync += stalled.eq(first.valid & ~first.ready)
            m.d.comb += Cover(started & stalled & first.valid & first.ready)
        return m


class ConfigLoaderHarness(Elaboratable):
    """A loader fed only words whose magic is wrong never reports ``configured`` and never changes
    its register; covers show that a good image does configure it."""

    def __init__(self, corrupt: bool = True, loader_magic: int = 0x9C0E):
        self.corrupt = corrupt
        self.loader_magic = loader_magic  # a different value models a loader checking the wrong magic

    def elaborate(self, platform):
        m = Module()
        from amaranth.lib import data

        layout = data.StructLayout({"a": 20, "b": 30})
        m.submodules.dut = dut = ConfigLoader(layout, self.loader_magic, 1)
        started = reset_at_start(m)
        free(m, dut.words.valid, dut.words.payload, dut.accept)
        if self.corrupt:
            m.d.comb += Assume(dut.words.payload[16:32] != 0x9C0E)
            with m.If(started):
                m.d.comb += [Assert(~dut.configured), Assert(~dut.loaded), Assert(~dut.loading),
                             Assert(dut.config.as_value() == 0)]
        else:
            seen = Signal()
            with m.If(dut.loaded):
                m.d.sync += seen.eq(1)
            m.d.comb += Cover(started & dut.configured & (dut.config.as_value() != 0))
        return m
