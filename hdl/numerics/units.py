"""Stream components around the arithmetic builders.

Every unit is a globally stalled pipeline: the input stream ``i`` carries the
operands (and an op code where the unit has several ops), the output stream
``o`` carries one 32-bit result per input, in order, ``latency`` transfers
later. The pipeline moves when its output is empty or taken
(``advance = ~o.valid | o.ready``), so it runs at one result per cycle under
no back-pressure and never drops or duplicates under any.

Components
----------
:class:`OpUnit`
    One op of the table (e.g. ``OpUnit("mac")``, ``OpUnit("exp")``).
:class:`ArithmeticUnit`
    Every ALU op of the table behind an op code: the per-lane ALU of a PCU stage.
:class:`TailUnit`
    The shared transcendental datapath (exp, recip, rsqrt, sigmoid, SiLU, GeLU).
:class:`MacAccumulator`
    A running ``acc += a*b`` over bf16 pairs that emits the fp32 sum at the end of each chain.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .datapath import Datapath
from .ops import ALU_OPS, TAIL_LATENCY, TAIL_OPS, build_ops, build_tail, get_op

__all__ = ["OpUnit", "ArithmeticUnit", "TailUnit", "MacAccumulator",
           "operand_layout", "ALU_OPCODE_BITS", "TAIL_OPCODE_BITS"]

ALU_OPCODE_BITS = max(op.opcode for op in ALU_OPS.values()).bit_length()
TAIL_OPCODE_BITS = max(op.opcode for op in TAIL_OPS.values()).bit_length()


def operand_layout(arity: int, opcode_bits: int = 0) -> data.StructLayout:
    """Input payload: ``op`` (when ``opcode_bits``) and operands ``a``, ``b``, ``c`` (32 bits each)."""
    fields = {"op": opcode_bits} if opcode_bits else {}
    fields.update({name: 32 for name in "abc"[:arity]})
    return data.StructLayout(fields)


def _check_latency(latency, minimum: int = 0):
    if isinstance(latency, bool) or not isinstance(latency, int):
        raise TypeError(f"latency must be an int, got {type(latency).__name__}")
    if latency < minimum:
        raise ValueError(f"latency must be at least {minimum}, got {latency}")


class _Pipelined(wiring.Component):
    """Base: a stream-to-stream pipeline whose datapath :meth:`compute` builds."""

    def __init__(self, in_layout, latency: int):
        self._latency = latency
        super().__init__({"i": In(stream.Signature(in_layout)), "o": Out(stream.Signature(32))})

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its result at ``o`` (without stalls)."""
        return self._latency

    def compute(self, dp: Datapath, payload):  # pragma: no cover - abstract
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        dp = Datapath(m, advance)
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        result = self.compute(dp, self.i.payload)
        valid = dp.valid_delay(self.i.valid, self._latency)[-1]
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.eq(result)]
        return m


class OpUnit(_Pipelined):
    """One op of the table as a stream unit.

    Parameters
    ----------
    op : str
        An ALU op (``"fadd"``, ``"mac"``, ``"f2i"`` …) or a tail op (``"exp"``, ``"gelu"`` …).
    latency : int, optional
        Pipeline registers (ALU ops only; default: the table's latency). Ops with internal
        cut points (``fadd``, ``fsub``, ``fmul``, ``mac``, ``i2f``) place them between their
        phases; further registers go at the output.

    Attributes
    ----------
    i : In(stream.Signature(operand_layout(arity)))
        Operands ``a``, ``b``, ``c`` in the op's operand order.
    o : Out(stream.Signature(32))
        The result word.
    """

    def __init__(self, op: str, latency: int | None = None):
        if not isinstance(op, str):
            raise TypeError(f"op must be an op name (str), got {type(op).__name__}")
        self.op = get_op(op)
        if self.op.kind == "tail":
            if latency not in (None, TAIL_LATENCY):
                raise ValueError(f"tail op {op!r} has a fixed latency of {TAIL_LATENCY}, got {latency}")
            latency = TAIL_LATENCY
        elif latency is None:
            latency = self.op.latency
        _check_latency(latency)
        super().__init__(operand_layout(self.op.arity), latency)

    def compute(self, dp, payload):
        operands = [payload[name] for name in "abc"[:self.op.arity]]
        if self.op.kind == "tail":
            return build_tail(dp, operands[0], Const(self.op.opcode, TAIL_OPCODE_BITS))
        return self.op.build(dp, operands, self.latency)


class ArithmeticUnit(_Pipelined):
    """Every ALU op of the op table, selected per input by its op code.

    All ops are built side by side, each padded to the slowest op's latency, and
    the op code travels with the data to pick the result. This is one lane of one
    PCU stage.

    Attributes
    ----------
    i : In(stream.Signature(operand_layout(3, ALU_OPCODE_BITS)))
        ``op``: an ALU op code (:data:`hdl.numerics.ops.ALU_OPS`); ``a``, ``b``, ``c``:
        operands (unused ones are ignored). An unknown op code gives 0.
    o : Out(stream.Signature(32))
        Result word.
    """

    def __init__(self):
        super().__init__(operand_layout(3, ALU_OPCODE_BITS), max(op.latency for op in ALU_OPS.values()))

    def compute(self, dp, payload):
        operands = [payload.a, payload.b, payload.c]
        op_late = dp.delay(payload.op, self.latency)
        results = build_ops(dp, ALU_OPS, operands, payload.op, self.latency)
        result = Signal(32)
        with dp.m.Switch(op_late):
            for opcode, value in results.items():
                with dp.m.Case(opcode):
                    dp.m.d.comb += result.eq(value)
            with dp.m.Default():
                dp.m.d.comb += result.eq(0)
        return result


class TailUnit(_Pipelined):
    """The tail unit: exp, recip, rsqrt, sigmoid, SiLU, GeLU on one shared datapath.

    Attributes
    ----------
    i : In(stream.Signature(operand_layout(1, TAIL_OPCODE_BITS)))
        ``op``: a tail op code (:data:`hdl.numerics.tail.TAIL_OPCODES`; 0 passes ``a``
        through); ``a``: an fp32 word.
    o : Out(stream.Signature(32))
        fp32 result, :data:`hdl.numerics.ops.TAIL_LATENCY` cycles later.
    """

    def __init__(self):
        super().__init__(operand_layout(1, TAIL_OPCODE_BITS), TAIL_LATENCY)

    def compute(self, dp, payload):
        return build_tail(dp, payload.a, payload.op)


class MacAccumulator(wiring.Component):
    """Sequential ``acc = acc + a*b`` over chains of bf16 pairs, fp32 accumulator.

    Each chain starts from +0; after each pair the running sum is emitted, and
    after the pair marked ``last`` the accumulator returns to +0. The next pair
    waits for the previous sum (one MAC in flight), so the accumulation order is
    exactly the input order — the order of a plain sequential loop.

    Parameters
    ----------
    latency : int
        Latency of the MAC pipeline (``mac`` op), at least 1.

    Attributes
    ----------
    i : In(stream.Signature(StructLayout({"a": 16, "b": 16, "last": 1})))
        One bf16 pair; ``last`` ends the chain.
    o : Out(stream.Signature(32))
        The running fp32 sum after each pair (one output per input).
    """

    def __init__(self, latency: int = ALU_OPS["mac"].latency):
        _check_latency(latency, 1)
        self.latency = latency
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": 16, "b": 16, "last": 1}))),
            "o": Out(stream.Signature(32)),
        })

    def elaborate(self, platform):
        m = Module()
        dp = Datapath(m, Const(1, 1))
        acc = Signal(32)
        a = Signal(16)
        b = Signal(16)
        last = Signal()
        busy = Signal(range(self.latency + 2))
        total = ALU_OPS["mac"].build(dp, [acc, Cat(a, Const(0, 16)), Cat(b, Const(0, 16))], self.latency)

        m.d.comb += self.i.ready.eq((busy == 0) & ~self.o.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [a.eq(self.i.payload.a), b.eq(self.i.payload.b), last.eq(self.i.payload.last),
                         busy.eq(self.latency + 1)]  # operands reach the MAC next cycle
        with m.If(busy == 1):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(total), acc.eq(Mux(last, 0, total))]
        with m.If(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
