"""PCU parameters and configuration: Python dataclasses ↔ configuration words.

One Amaranth layout, :func:`config_layout`, describes the configuration register
of a PCU. The RTL slices its fields out of that register; :meth:`PcuConfig.encode`
packs the same layout into words with ``layout.const``; :meth:`PcuConfig.decode`
reads words back. So the hardware and the encoder cannot disagree on a bit.

Word format (version :data:`CONFIG_VERSION`)
--------------------------------------------
Word 0 is a header: bits 31..16 :data:`CONFIG_MAGIC`, bits 15..8 the version,
bits 7..0 the number of body words that follow. The body is the configuration
register, least significant word first. The number of body words depends on the
PCU's parameters (:attr:`PcuParams.config_words`).

Operand sources
---------------
Each operand of a stage names where its value comes from:

============  =========================================================
``"zero"``    the word 0
``"vin0"``    vector input 0 of this step (per lane), ``"vin1"`` input 1
``"prev"``    the previous stage's result (stage 0: ``vin0``)
``"stageN"``  the result of an earlier stage N (carried by pipeline registers)
``"constN"``  configuration constant N (same in every lane)
``"ctrN"``    the value of counter N for this step (int32, every lane)
``"scalarN"`` scalar input N (every lane; popped as :class:`ScalarInput` says)
``"lane"``    the lane index (int32)
``"acc"``     this step's accumulator entry before its update (+0 on a reset step); a
              program that reads it fires one step at a time (see :class:`Accumulator`)
============  =========================================================

Accumulator
-----------
A PCU built with ``acc_depth > 0`` has, after its last SIMD stage, a per-lane register file of
``acc_depth`` fp32 entries and a single-cycle update unit (:class:`Accumulator`): the state a
loop carries from one step to the next (a running max, a running sum, a rescaled output
accumulator), which SIMD stages alone cannot keep.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from amaranth import Shape
from amaranth.lib import data

from ..config_port import body_words, decode_image, encode_image
from ..counters import Counter, counter_layout, nest_fields, nest_from_fields
from ..numerics.ops import ALU_OPS, TAIL_OPS
from ..numerics.tail import TAIL_OPCODES
from ..numerics.units import ALU_OPCODE_BITS, TAIL_OPCODE_BITS
from ..presets import Preset, get_preset

__all__ = [
    "CONFIG_MAGIC", "CONFIG_VERSION", "DEFAULT_STAGE_OPS", "ConfigError", "PcuParams", "Stage",
    "ScalarInput", "VectorInput", "Accumulator", "PcuConfig", "config_layout", "SOURCE_KINDS", "REDUCE_OPS",
    "ACC_OPS",
]

CONFIG_MAGIC = 0x9C0E
CONFIG_VERSION = 1
VECTOR_INPUTS = 2
SCALAR_INPUTS = 2

#: Operand source kinds as encoded in a stage's ``src[k].kind`` field.
SOURCE_KINDS = {"zero": 0, "vin": 1, "stage": 2, "const": 3, "ctr": 4, "scalar": 5, "lane": 6, "acc": 7}
#: Accumulator updates (``acc.op``); ``x`` is the last stage's result, ``y`` the ``scale`` stage's.
ACC_OPS = {"none": 0, "add": 1, "max": 2, "scale_add": 3}
#: Largest accumulator register file (entries per lane).
MAX_ACC_DEPTH = 1024
#: Cross-lane reduction ops (``reduce`` field).
REDUCE_OPS = {"none": 0, "add": 1, "max": 2}
MODES = {"simd": 0, "systolic": 1}

#: ALU ops a PCU stage implements unless told otherwise: float arithmetic, compares,
#: selects, conversions and the integer ops masks and indices need.
DEFAULT_STAGE_OPS = ("mov", "fadd", "fsub", "fmul", "mac", "fmax", "fmin", "flt", "fle", "feq",
                     "fneg", "fabs", "sel", "cvt_bf16", "cvt_f32", "iadd", "isub", "ilt", "ieq")


class ConfigError(ValueError):
    """A PCU configuration the hardware cannot run; the message says which field and why."""


def _int_in(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


@dataclass(frozen=True)
class PcuParams:
    """The hardware parameters of one PCU build (from a preset plus build options).

    Parameters
    ----------
    preset : Preset or str
        Gives ``lanes``, ``stages``, ``fifo_depth``, ``counters``, ``counter_width``.
    ops : sequence of str
        ALU ops every stage's functional units implement (default :data:`DEFAULT_STAGE_OPS`;
        ``"all"`` for the whole op table). ``mov`` is always included.
    tail : bool
        Build the per-lane tail unit (exp, recip, rsqrt, sigmoid, SiLU, GeLU).
    systolic : bool
        Build the ``lanes × stages`` output-stationary MAC array (needs ``stages <= lanes``).
    constants : int
        Configuration constants, 1 to 16.
    acc_depth : int
        Entries per lane of the accumulator register file after the SIMD stages, 0 (none, the
        default) to :data:`MAX_ACC_DEPTH`.
    """

    preset: Preset
    ops: tuple[str, ...] = DEFAULT_STAGE_OPS
    tail: bool = True
    systolic: bool = True
    constants: int = 4
    acc_depth: int = 0

    def __init__(self, preset: Preset | str, ops: Sequence[str] | str = DEFAULT_STAGE_OPS,
                 tail: bool = True, systolic: bool = True, constants: int = 4, acc_depth: int = 0):
        preset = get_preset(preset)
        if ops == "all":
            ops = tuple(ALU_OPS)
        if isinstance(ops, str) or not all(isinstance(o, str) for o in ops):
            raise TypeError("ops must be a sequence of ALU op names or 'all'")
        unknown = [o for o in ops if o not in ALU_OPS]
        if unknown:
            raise ValueError(f"unknown ALU op(s) {', '.join(unknown)}; ALU ops: {', '.join(ALU_OPS)}")
        ordered = tuple(sorted(set(ops) | {"mov"}, key=lambda o: ALU_OPS[o].opcode))
        _int_in("constants", constants, 1, 16)
        _int_in("acc_depth", acc_depth, 0, MAX_ACC_DEPTH)
        if not isinstance(tail, bool) or not isinstance(systolic, bool):
            raise TypeError("tail and systolic must be bools")
        if systolic and preset.stages > preset.lanes:
            raise ValueError(f"systolic mode streams B rows through the lanes, so it needs stages <= lanes; "
                             f"preset {preset.name!r} has {preset.stages} stages and {preset.lanes} lanes")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "ops", ordered)
        object.__setattr__(self, "tail", tail)
        object.__setattr__(self, "systolic", systolic)
        object.__setattr__(self, "constants", constants)
        object.__setattr__(self, "acc_depth", acc_depth)

    @property
    def lanes(self) -> int:
        return self.preset.lanes

    @property
    def stages(self) -> int:
        return self.preset.stages

    @property
    def counters(self) -> int:
        return self.preset.counters

    @property
    def counter_width(self) -> int:
        return self.preset.counter_width

    @property
    def stage_latency(self) -> int:
        """Cycles through one stage: the slowest op of the set."""
        return max(ALU_OPS[o].latency for o in self.ops)

    @property
    def tile_interval(self) -> int:
        """Fewest cycles between the last steps of two systolic tiles: ``max(lanes, stages)``.

        Each tile's sums move to shadow registers at its last step and leave as ``stages``
        column vectors while the next tile computes (:mod:`hdl.pcu.unit`), so a tile with a K loop
        shorter than this gets bubbles."""
        return max(self.lanes, self.stages)

    @property
    def acc_read_interval(self) -> int:
        """Fewest cycles between two steps of a program that reads the ``acc`` source:
        ``stages × stage_latency + 2``.

        Such a step fires only once the previous step's update is written
        (:mod:`hdl.pcu.unit`: its counter of quiet cycles must exceed the pipeline depth
        ``stages × stage_latency``, and it restarts from 0 the cycle after a step fired)."""
        return self.stages * self.stage_latency + 2

    @property
    def reduce_levels(self) -> int:
        return (self.lanes - 1).bit_length()

    @property
    def layout(self) -> data.StructLayout:
        return config_layout(self)

    @property
    def config_words(self) -> int:
        """Body words of a configuration image."""
        return body_words(self.layout)


def config_layout(params: PcuParams) -> data.StructLayout:
    """The configuration register of a PCU with ``params``."""
    index_bits = max(params.stages, params.constants, params.counters, SCALAR_INPUTS, VECTOR_INPUTS)
    source = data.StructLayout({"kind": 3, "index": max(1, (index_bits - 1).bit_length())})
    stage = data.StructLayout({
        "op": ALU_OPCODE_BITS,
        "src": data.ArrayLayout(source, 3),
        "shift": max(1, (params.lanes - 1).bit_length()),
    })
    scalar = data.StructLayout({"used": 1, "pop_level": 2})
    extra = {}
    if params.acc_depth:
        extra["acc"] = data.StructLayout({
            "op": 2,
            "indexed": 1,
            "index": 2,
            "reset": params.counters,
            "emit": params.counters,
            "emit_first": 1,
            "to_vout": 1,
            "read": 1,
            "scale": max(1, (params.stages - 1).bit_length()),
            "value": max(1, (params.stages - 1).bit_length()),
        })
    return data.StructLayout({
        "mode": 1,
        "auto_start": 1,
        "counters_used": 2,
        "counter": data.ArrayLayout(counter_layout(params.counter_width), params.counters),
        "stage": data.ArrayLayout(stage, params.stages),
        "vin_used": VECTOR_INPUTS,
        "vin_pop": data.ArrayLayout(2, VECTOR_INPUTS),
        "scalar": data.ArrayLayout(scalar, SCALAR_INPUTS),
        "const": data.ArrayLayout(32, params.constants),
        "reduce": 2,
        "tail": TAIL_OPCODE_BITS,
        "to_bf16": 1,
        "vout_enable": 1,
        "sout_enable": 1,
        **extra,
    })


_SOURCE_RE = re.compile(r"^(zero|prev|lane|acc|vin|stage|const|ctr|scalar)(\d*)$")


def parse_source(text: str, stage: int, params: PcuParams) -> tuple[int, int]:
    """``"stage1"`` → ``(kind, index)`` for stage ``stage``; raises ConfigError naming the problem."""
    if not isinstance(text, str):
        raise ConfigError(f"stage {stage}: an operand source must be a string such as 'vin0', got {text!r}")
    match = _SOURCE_RE.match(text)
    if not match:
        raise ConfigError(f"stage {stage}: unknown operand source {text!r}; sources are zero, prev, lane, "
                          f"acc, vinN, stageN, constN, ctrN, scalarN")
    name, digits = match[1], match[2]
    if name == "acc" and not params.acc_depth:
        raise ConfigError(f"stage {stage}: source 'acc' needs a PCU built with an accumulator "
                          f"(acc_depth > 0)")
    if name in ("zero", "prev", "lane", "acc"):
        if digits:
            raise ConfigError(f"stage {stage}: source {name!r} takes no index, got {text!r}")
        if name == "prev":
            return (SOURCE_KINDS["vin"], 0) if stage == 0 else (SOURCE_KINDS["stage"], stage - 1)
        return SOURCE_KINDS[name], 0
    if not digits:
        raise ConfigError(f"stage {stage}: source {text!r} needs an index, e.g. {name}0")
    index = int(digits)
    limit = {"vin": VECTOR_INPUTS, "stage": stage, "const": params.constants, "ctr": params.counters,
             "scalar": SCALAR_INPUTS}[name]
    if name == "stage" and index >= stage:
        raise ConfigError(f"stage {stage}: operand {text!r} comes from a later stage (or this one); "
                          f"a stage reads only stages 0..{stage - 1}")
    if index >= limit:
        raise ConfigError(f"stage {stage}: source {text!r} out of range; this PCU has {limit} {name} "
                          f"source(s)")
    return SOURCE_KINDS[name], index


def source_text(kind: int, index: int) -> str:
    name = {v: k for k, v in SOURCE_KINDS.items()}[kind]
    return name if name in ("zero", "lane", "acc") else f"{name}{index}"


@dataclass(frozen=True)
class Stage:
    """One SIMD stage: ``op`` applied in every lane to operands ``a``, ``b``, ``c``.

    ``shift`` rotates the stage's result across lanes: lane ``i`` receives the result
    of lane ``(i + shift) mod lanes``.
    """

    op: str = "mov"
    a: str = "prev"
    b: str = "zero"
    c: str = "zero"
    shift: int = 0


@dataclass(frozen=True)
class ScalarInput:
    """Use of one scalar input port.

    ``pop_level`` 0 pops a value every step; ``n`` > 0 pops one when counters
    ``0..n-1`` are all at their first value (once per iteration of counter ``n``)
    and holds it for the other steps.
    """

    pop_level: int = 0


@dataclass(frozen=True)
class VectorInput:
    """Use of one vector input port (SIMD mode), like :class:`ScalarInput`.

    ``pop_level`` 0 pops a vector every step; ``n`` > 0 pops one when counters ``0..n-1`` are
    all at their first value and holds it for the other steps (a per-row factor applied to a
    whole block of columns, say).
    """

    pop_level: int = 0


@dataclass(frozen=True)
class Accumulator:
    """The accumulator stage of a PCU built with ``acc_depth > 0``.

    At every step, in each lane, with ``x`` the result of stage ``value`` (default: the last stage)
    and ``y`` the result of stage ``scale``, entry ``e`` (the value of counter ``index``, or 0
    when ``index`` is None) becomes::

        x                       on a reset step
        op(entry, x, y)         otherwise: add  entry + x
                                           max  max(entry, x)
                                           scale_add  fadd(fmul(entry, y), x)  (two roundings)

    A step is a *reset* step when every counter in ``reset`` is at its first value, and an *emit*
    step when every counter in ``emit`` is at its last value (``emit_at="first"``: its first
    value; an empty ``emit`` emits every step). With ``to_vout`` the vector output carries the
    updated entry at emit steps only (then the tail and the bf16 conversion, as usual); without
    it the vector output carries the last stage's result every step and the entries serve the
    ``acc`` operand source only. The update is single-cycle and sits at one pipeline position, so steps that
    update the same entry may follow each other every cycle.
    """

    op: str
    index: int | None = None
    reset: tuple[int, ...] = (0,)
    emit: tuple[int, ...] = ()
    emit_at: str = "last"
    to_vout: bool = True
    scale: int | None = None
    value: int | None = None


@dataclass(frozen=True)
class PcuConfig:
    """A PCU program.

    Attributes
    ----------
    mode : str
        ``"simd"``: every step pushes one vector per used input through the stages.
        ``"systolic"``: the MAC array computes ``C = A·B`` tiles; each step takes a column
        of A (``vin0``, bf16 per lane) and a row of B (``vin1``, bf16 in lanes
        ``0..stages-1``); counter 0 is the K loop (its first/last step start/end a tile) and
        each tile leaves as ``stages`` vectors: the columns of C (fp32).
    counters : list of Counter
        The loop nest, innermost first (at least one). The run has one step per iteration.
    stages : list of Stage
        SIMD stages in order; missing stages pass ``prev`` through.
    scalars : dict of int → ScalarInput
        Scalar input ports that the program uses.
    vectors : dict of int → VectorInput
        How often vector input ports are popped (a used port not listed pops every step).
    accumulator : Accumulator or None
        The accumulator stage's program (needs a PCU built with ``acc_depth > 0``).
    constants : list of int
        32-bit words for ``constN`` sources.
    reduce : str
        ``"none"``, ``"add"`` or ``"max"``: a cross-lane tree over the last stage's result,
        pairing lanes (0,1), (2,3)… at each level; the result leaves on the scalar output.
    tail : str
        ``"none"`` or a tail op (``"exp"``, ``"gelu"`` …) applied per lane to the vector output.
    to_bf16 : bool
        Convert the vector output to bf16 (RNE) after the tail.
    vector_output : bool
        Send results to the vector output (default True).
    auto_start : bool
        Start a run as soon as the configuration is loaded (else wait for ``start``).
    """

    mode: str = "simd"
    counters: list[Counter] = field(default_factory=lambda: [Counter(0, 1)])
    stages: list[Stage] = field(default_factory=list)
    scalars: dict[int, ScalarInput] = field(default_factory=dict)
    vectors: dict[int, VectorInput] = field(default_factory=dict)
    accumulator: Accumulator | None = None
    constants: list[int] = field(default_factory=list)
    reduce: str = "none"
    tail: str = "none"
    to_bf16: bool = False
    vector_output: bool = True
    auto_start: bool = True

    # ------------------------------------------------------------------ checks
    def check(self, params: PcuParams) -> dict:
        """Validate against ``params``; return the configuration register's field values.

        Raises
        ------
        ConfigError
            Naming the offending field and the allowed values.
        """
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        counters = nest_fields(self.counters, params.counters, params.counter_width, "PCU program",
                               ConfigError)
        if len(self.stages) > params.stages:
            raise ConfigError(f"{len(self.stages)} stages given, this PCU has {params.stages}")
        if self.reduce not in REDUCE_OPS:
            raise ConfigError(f"reduce must be one of {', '.join(REDUCE_OPS)}, got {self.reduce!r}")
        if self.tail != "none" and self.tail not in TAIL_OPS:
            raise ConfigError(f"tail must be 'none' or one of {', '.join(TAIL_OPS)}, got {self.tail!r}")
        if self.tail != "none" and not params.tail:
            raise ConfigError(f"tail {self.tail!r} asked for, but this PCU was built without a tail unit")
        if len(self.constants) > params.constants:
            raise ConfigError(f"{len(self.constants)} constants given, this PCU has {params.constants}")
        for k, word in enumerate(self.constants):
            if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << 32:
                raise ConfigError(f"constant {k} must be a 32-bit word (0 <= w < 2**32), got {word!r}")
        for kind, uses, ports, cls in (("scalar", self.scalars, SCALAR_INPUTS, ScalarInput),
                                       ("vector", self.vectors, VECTOR_INPUTS, VectorInput)):
            for port, use in uses.items():
                if port not in range(ports):
                    raise ConfigError(f"{kind} input {port} does not exist; ports are 0..{ports - 1}")
                if not isinstance(use, cls) or not 0 <= use.pop_level <= len(self.counters):
                    raise ConfigError(f"{kind} input {port}: pop_level must be in [0, {len(self.counters)}] "
                                      f"(the number of counters), got {use!r}")
        if not self.vector_output and self.reduce == "none":
            raise ConfigError("the program has no output: enable vector_output or a reduction")
        acc_fields = self._check_accumulator(params)

        stages, vin_used, scalars_read = [], set(), set()
        for s in range(params.stages):
            stage = self.stages[s] if s < len(self.stages) else Stage()
            if not isinstance(stage, Stage):
                raise ConfigError(f"stage {s} must be a Stage, got {stage!r}")
            if stage.op not in ALU_OPS:
                raise ConfigError(f"stage {s}: unknown op {stage.op!r}; ALU ops: {', '.join(ALU_OPS)}")
            if stage.op not in params.ops:
                raise ConfigError(f"stage {s}: op {stage.op!r} is not built into this PCU; its stages "
                                  f"implement {', '.join(params.ops)}")
            if isinstance(stage.shift, bool) or not isinstance(stage.shift, int) \
                    or not 0 <= stage.shift < params.lanes:
                raise ConfigError(f"stage {s}: shift must be in [0, {params.lanes - 1}], got {stage.shift!r}")
            arity = ALU_OPS[stage.op].arity
            sources = []
            for k, text in enumerate((stage.a, stage.b, stage.c)):
                if k >= arity:
                    if text != "zero":
                        raise ConfigError(f"stage {s}: {stage.op} takes {arity} operand(s); operand "
                                          f"{'abc'[k]} is unused and must be 'zero', got {text!r}")
                    sources.append({"kind": 0, "index": 0})
                    continue
                kind, index = parse_source(text, s, params)
                if kind == SOURCE_KINDS["vin"]:
                    vin_used.add(index)
                if kind == SOURCE_KINDS["scalar"]:
                    scalars_read.add(index)
                if kind == SOURCE_KINDS["acc"]:
                    if self.accumulator is None:
                        raise ConfigError(f"stage {s}: reads 'acc' but the program has no accumulator")
                    acc_fields["read"] = 1
                sources.append({"kind": kind, "index": index})
            stages.append({"op": ALU_OPS[stage.op].opcode, "src": sources, "shift": stage.shift})
        missing = sorted(scalars_read - set(self.scalars))
        if missing:
            raise ConfigError(f"stages read scalar input(s) {missing} but scalars= does not declare them "
                              f"(say how often each is popped with ScalarInput)")

        if self.mode == "systolic":
            if not params.systolic:
                raise ConfigError("systolic mode asked for, but this PCU was built without the MAC array")
            if self.reduce != "none":
                raise ConfigError("systolic mode has no cross-lane reduction (reduce must be 'none')")
            if not self.vector_output:
                raise ConfigError("systolic mode drains C on the vector output (vector_output must be True)")
            if self.scalars:
                raise ConfigError("systolic mode takes no scalar inputs")
            if any(use.pop_level for use in self.vectors.values()):
                raise ConfigError("systolic mode pops both vector inputs every step (no pop_level)")
            if self.accumulator is not None:
                raise ConfigError("systolic mode has no accumulator stage (the MAC array accumulates)")
            vin_used = {0, 1}
        held = sorted(p for p, use in self.vectors.items() if use.pop_level and p not in vin_used)
        if held:
            raise ConfigError(f"vector input(s) {held} have a pop_level but no stage reads them")
        scalar_fields = [{"used": int(p in self.scalars),
                          "pop_level": self.scalars[p].pop_level if p in self.scalars else 0}
                         for p in range(SCALAR_INPUTS)]
        fields = {
            "mode": MODES[self.mode],
            "auto_start": int(self.auto_start),
            "counters_used": len(self.counters),
            "counter": counters,
            "stage": stages,
            "vin_used": sum(1 << k for k in vin_used),
            "vin_pop": [self.vectors[k].pop_level if k in self.vectors else 0 for k in range(VECTOR_INPUTS)],
            "scalar": scalar_fields,
            "const": list(self.constants) + [0] * (params.constants - len(self.constants)),
            "reduce": REDUCE_OPS[self.reduce],
            "tail": TAIL_OPCODES[self.tail] if self.tail != "none" else 0,
            "to_bf16": int(self.to_bf16),
            "vout_enable": int(self.vector_output),
            "sout_enable": int(self.reduce != "none"),
        }
        if params.acc_depth:
            fields["acc"] = acc_fields
        return fields

    def _check_accumulator(self, params: PcuParams) -> dict:
        """Validate :attr:`accumulator`; return the ``acc`` fields (all zero without one)."""
        acc = self.accumulator
        if acc is None:
            return {}          # every acc field zero (layout.const fills missing fields with 0)
        if not params.acc_depth:
            raise ConfigError("an accumulator program needs a PCU built with acc_depth > 0")
        if not isinstance(acc, Accumulator):
            raise ConfigError(f"accumulator must be an Accumulator, got {acc!r}")
        if acc.op not in ACC_OPS or acc.op == "none":
            raise ConfigError(f"accumulator op must be one of add, max, scale_add, got {acc.op!r}")
        n = len(self.counters)
        for name in ("reset", "emit"):
            value = getattr(acc, name)
            if not isinstance(value, tuple) or not all(isinstance(c, int) and 0 <= c < n for c in value):
                raise ConfigError(f"accumulator {name} must be a tuple of counter indices in [0, {n - 1}], "
                                  f"got {value!r}")
        if not acc.reset:
            raise ConfigError("accumulator reset must name at least one counter (entries must start "
                              "somewhere)")
        if acc.emit_at not in ("first", "last"):
            raise ConfigError(f"accumulator emit_at must be 'first' or 'last', got {acc.emit_at!r}")
        if acc.index is not None:
            if isinstance(acc.index, bool) or not isinstance(acc.index, int) or not 0 <= acc.index < n:
                raise ConfigError(f"accumulator index must be None or a counter in [0, {n - 1}], "
                                  f"got {acc.index!r}")
            counter = self.counters[acc.index]
            largest = counter.start + (counter.trips - 1) * counter.stride
            if largest >= params.acc_depth:
                raise ConfigError(f"accumulator index counter {acc.index} reaches {largest}, the register "
                                  f"file has {params.acc_depth} entries per lane")
        if (acc.op == "scale_add") != (acc.scale is not None):
            raise ConfigError("accumulator scale (a stage index) is needed by scale_add and only by it")
        for name, what in (("scale", "a stage"), ("value", "None (the last stage) or a stage")):
            stage = getattr(acc, name)
            if stage is not None and (isinstance(stage, bool) or not isinstance(stage, int)
                                      or not 0 <= stage < params.stages):
                raise ConfigError(f"accumulator {name} must be {what} in [0, {params.stages - 1}], "
                                  f"got {stage!r}")
        if acc.to_vout and not self.vector_output:
            raise ConfigError("accumulator to_vout needs vector_output=True")
        return {
            "op": ACC_OPS[acc.op],
            "indexed": int(acc.index is not None),
            "index": acc.index or 0,
            "reset": sum(1 << c for c in acc.reset),
            "emit": sum(1 << c for c in acc.emit),
            "emit_first": int(acc.emit_at == "first"),
            "to_vout": int(acc.to_vout),
            "read": 0,
            "scale": acc.scale or 0,
            "value": params.stages - 1 if acc.value is None else acc.value,
        }

    # ------------------------------------------------------------------ words
    def encode(self, params: PcuParams) -> list[int]:
        """Header word plus body words (least significant first) for the configuration port."""
        return encode_image(params.layout, self.check(params), CONFIG_MAGIC, CONFIG_VERSION)

    @classmethod
    def decode(cls, words: Sequence[int], params: PcuParams) -> PcuConfig:
        """Inverse of :meth:`encode` (stages and constants come back at full length)."""
        view = decode_image(words, params.layout, CONFIG_MAGIC, CONFIG_VERSION, "PCU", ConfigError)
        opcode_to_op = {op.opcode: name for name, op in ALU_OPS.items()}
        stages = []
        for s in range(params.stages):
            st = view.stage[s]
            srcs = [source_text(int(st.src[k].kind), int(st.src[k].index)) for k in range(3)]
            stages.append(Stage(opcode_to_op[int(st.op)], *srcs, shift=int(st.shift)))
        counters = nest_from_fields(view.counter, int(view.counters_used))
        scalars = {p: ScalarInput(int(view.scalar[p].pop_level)) for p in range(SCALAR_INPUTS)
                   if int(view.scalar[p].used)}
        tails = {code: name for name, code in TAIL_OPCODES.items()}
        vectors = {p: VectorInput(int(view.vin_pop[p])) for p in range(VECTOR_INPUTS) if int(view.vin_pop[p])}
        accumulator = None
        if params.acc_depth and int(view.acc.op):
            a = view.acc
            accumulator = Accumulator(
                op={v: k for k, v in ACC_OPS.items()}[int(a.op)],
                index=int(a.index) if int(a.indexed) else None,
                reset=tuple(c for c in range(params.counters) if int(a.reset) >> c & 1),
                emit=tuple(c for c in range(params.counters) if int(a.emit) >> c & 1),
                emit_at="first" if int(a.emit_first) else "last", to_vout=bool(int(a.to_vout)),
                scale=int(a.scale) if int(a.op) == ACC_OPS["scale_add"] else None,
                value=None if int(a.value) == params.stages - 1 else int(a.value))
        return cls(
            mode={v: k for k, v in MODES.items()}[int(view.mode)],
            counters=counters, stages=stages, scalars=scalars, vectors=vectors, accumulator=accumulator,
            constants=[int(view.const[k]) for k in range(params.constants)],
            reduce={v: k for k, v in REDUCE_OPS.items()}[int(view.reduce)],
            tail=tails.get(int(view.tail), "none") if int(view.tail) else "none",
            to_bf16=bool(int(view.to_bf16)), vector_output=bool(int(view.vout_enable)),
            auto_start=bool(int(view.auto_start)))


def layout_fields(layout, prefix: str = "", offset: int = 0) -> list[tuple[str, int, int]]:
    """``(field path, bit offset, width)`` of every leaf field of ``layout``, in bit order."""
    if isinstance(layout, data.StructLayout):
        children = [(f"{prefix}{name}", fld.offset, fld.shape) for name, fld in layout]
    elif isinstance(layout, data.ArrayLayout):
        step = data.Layout.cast(layout.elem_shape).size if isinstance(layout.elem_shape, data.Layout) \
            else Shape.cast(layout.elem_shape).width
        children = [(f"{prefix}[{k}]", k * step, layout.elem_shape) for k in range(layout.length)]
    else:
        return [(prefix, offset, Shape.cast(layout).width)]
    rows = []
    for path, child_offset, shape in children:
        nested = isinstance(shape, data.Layout)
        rows += layout_fields(shape, path + ("." if isinstance(shape, data.StructLayout) else "") if nested
                              else path, offset + child_offset)
    return sorted(rows, key=lambda row: row[1])


def main(argv=None) -> int:  # pragma: no cover - a printout
    """``python -m hdl.pcu [PRESET]``: the configuration register's fields."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    params = PcuParams(args[0] if args else "tiny")
    print(f"PCU configuration, preset {params.preset.name}: {params.layout.size} bits in "
          f"{params.config_words} body words after the header (version {CONFIG_VERSION})")
    print(f"{'field':32} {'bits':>10} {'body word(s)':>12}")
    for path, offset, width in layout_fields(params.layout):
        first, last = offset // 32, (offset + width - 1) // 32
        bits = f"{offset + width - 1}..{offset}" if width > 1 else str(offset)
        print(f"{path:32} {bits:>10} {str(first) if first == last else f'{first}-{last}':>12}")
    return 0
