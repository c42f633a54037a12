"""hdl.module_sharing: identical Verilog modules are written once, different ones are kept apart."""

import re
import shutil
import subprocess

import pytest
from amaranth import Cat, Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.module_sharing import share_identical_modules


def _modules(text):
    return re.findall(r"^module (\S+?) ?\(", text, re.M)


def _instances(text):
    return re.findall(r"^  (\\\S+|\w+)\s+\S+\s*\($", text, re.M)


class Lanes(wiring.Component):
    """``lanes`` lanes of one register-plus-adder each (``odd`` adds 2 instead of 1 in lane 1),
    each lane inside a group module, so that merging lanes makes the groups identical too."""

    a: In(64)
    o: Out(64)

    def __init__(self, odd=False, *, slice_inside=False):
        self.odd, self.slice_inside = odd, slice_inside
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        outs = []
        for g in range(2):
            group = Module()
            m.submodules[f"group{g}"] = group
            operand = Signal(32, name="operand")
            m.d.comb += operand.eq(self.a[32 * g:32 * (g + 1)])
            lane = Module()
            group.submodules["lane"] = lane
            result = Signal(32, name="result")
            step = 2 if self.odd and g == 1 else 1
            source = self.a[32 * g:32 * (g + 1)] if self.slice_inside else operand
            lane.d.sync += result.eq(source + step)
            outs.append(result)
        m.d.comb += self.o.eq(Cat(*outs))
        return m


def test_identical_modules_are_written_once_and_instances_point_at_the_kept_one():
    text = verilog.convert(Lanes(), name="top", emit_src=False)
    assert len(_modules(text)) == 5                 # top, two groups, two lanes
    shared, report = share_identical_modules(text)
    modules = _modules(shared)
    assert modules == ["top", r"\top.group0", r"\top.group0.lane"]
    assert (report.modules_before, report.modules_after) == (5, 3)
    assert report.lines_after < report.lines_before
    # every instance names a module that is still there; group1 became an instance of group0
    assert set(_instances(shared)) <= set(modules)
    assert _instances(shared).count(r"\top.group0") == 2
    # the kept modules are written as Amaranth wrote them, but for the instances pointed elsewhere
    for name in modules:
        block = re.search(rf"^(?:\(\*.*\*\)\n)*module {re.escape(name)} ?\(.*?^endmodule\n", text,
                          re.S | re.M)
        assert block.group(0).replace(r"\top.group1", r"\top.group0") in shared


def test_modules_that_differ_are_kept():
    # a different constant in one lane
    shared, report = share_identical_modules(verilog.convert(Lanes(odd=True), name="top", emit_src=False))
    assert report.modules_after == report.modules_before == 5
    assert "32'd2" in shared or "2'h2" in shared
    # a lane that slices the whole input itself: same logic, different port widths and offsets
    text = verilog.convert(Lanes(slice_inside=True), name="top", emit_src=False)
    _, report = share_identical_modules(text)
    assert report.modules_after == report.modules_before


def test_text_outside_modules_is_kept_and_a_module_defined_twice_is_refused():
    text = verilog.convert(Lanes(), name="top", emit_src=False)
    shared, _ = share_identical_modules(text)
    assert shared.startswith(text[:text.index("\n")])     # the generator comment
    assert shared.count("(* generator") == 3               # one attribute line per kept module
    assert share_identical_modules(shared)[0] == shared    # nothing left to merge
    block = re.search(r"^module top\(.*?^endmodule\n", text, re.S | re.M).group(0)
    with pytest.raises(ValueError, match="module top is defined twice"):
        share_identical_modules(text + block)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_shared_verilog_compiles(tmp_path):
    shared, _ = share_identical_modules(verilog.convert(Lanes(), name="top", emit_src=False))
    (tmp_path / "top.v").write_text(shared)
    run = subprocess.run(["iverilog", "-o", str(tmp_path / "top.vvp"), "-s", "top", str(tmp_path / "top.v")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
