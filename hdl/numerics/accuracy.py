"""Accuracy of the tail ops against float64, measured over every finite bf16 input.

``python -m hdl.numerics.accuracy`` prints the error table that ``docs/numerics.md``
quotes; the test suite checks the same numbers against
:data:`hdl.numerics.tail.ERROR_BOUNDS`.

Error is measured in float32 ulps of the float64 reference value
(``ulp(r) = 2**(floor(log2|r|) - 23)``) for references of magnitude at least
the op's underflow limit; below it, the result may be flushed to zero and only
``|result - reference| <= limit`` is required.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from . import golden as g
from .ops import golden
from .tail import ERROR_BOUNDS, UNDERFLOW_LIMITS

__all__ = ["REFERENCES", "all_finite_bf16", "ulp_error", "OpAccuracy", "measure", "error_table"]

_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


#: float64 definitions of the tail ops (the mathematical functions, not the approximations).
REFERENCES = {
    "exp": np.exp,
    "relu": lambda x: np.maximum(x, 0.0),
    "recip": lambda x: 1.0 / x,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    # 0.5·x·(1 + tanh(u)) written as x·sigmoid(2u): the same function, but float64 keeps its
    # precision for negative x where 1 + tanh(u) cancels
    "gelu": lambda x: x * _sigmoid(2.0 * _SQRT_2_OVER_PI * (x + 0.044715 * x**3)),
}


def all_finite_bf16() -> np.ndarray:
    """The fp32 words of every finite bf16 value, subnormals included (65 280 of 65 536 codes)."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = halves.view(ml_dtypes.bfloat16).astype(np.float32)
    return values[np.isfinite(values)].view(np.uint32).copy()


def ulp_error(result_words, reference) -> np.ndarray:
    """|result - reference| in float32 ulps of ``reference`` (float64 array, nonzero normal)."""
    result = g.as_f32(result_words).astype(np.float64)
    magnitude = np.maximum(np.abs(reference), np.finfo(np.float32).tiny)
    ulp = np.exp2(np.floor(np.log2(magnitude)) - 23)
    with np.errstate(invalid="ignore"):
        return np.abs(result - reference) / ulp


@dataclass(frozen=True)
class OpAccuracy:
    """Measured accuracy of one op.

    Attributes
    ----------
    op : str
    inputs : int
        Inputs measured.
    max_ulp : float
        Largest error in ulps where the reference is at least the underflow limit.
    worst_input : float
        An input giving ``max_ulp``.
    underflow_limit : float
        Results below this magnitude may flush to zero.
    underflow_inputs : int
        Inputs whose reference lies below the limit (nonzero).
    max_underflow_abs : float
        Largest ``|result - reference|`` among them.
    mismatched_specials : int
        Inputs where NaN/Inf/overflow expectations were not met (must be 0).
    """

    op: str
    inputs: int
    max_ulp: float
    worst_input: float
    underflow_limit: float
    underflow_inputs: int
    max_underflow_abs: float
    mismatched_specials: int

    @property
    def bound(self) -> float | None:
        return ERROR_BOUNDS.get(self.op)


def measure(op: str, inputs=None) -> OpAccuracy:
    """Measure ``op``'s golden model against its float64 reference over ``inputs`` (default:
    every finite bf16 value)."""
    words = all_finite_bf16() if inputs is None else g.as_words(inputs)
    x = g.as_f32(words).astype(np.float64)
    x = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.copysign(0.0, x), x)  # FTZ inputs
    with np.errstate(all="ignore"):
        reference = REFERENCES[op](x)
    result_words = golden(op, words)
    result = g.as_f32(result_words).astype(np.float64)

    flt_max = float(np.finfo(np.float32).max)
    limit = UNDERFLOW_LIMITS.get(op, float(np.finfo(np.float32).tiny))
    # references beyond float32's range must give Inf of the same sign; NaN must give NaN
    overflow = np.abs(reference) > flt_max * (1 + 2.0**-25)
    bad = np.isnan(reference) != np.isnan(result)
    bad |= overflow & (result != reference) & ~(np.isinf(result) & (np.sign(result) == np.sign(reference)))
    zero_ref = reference == 0
    bad |= zero_ref & (result != 0)
    regular = ~overflow & ~np.isnan(reference) & ~zero_ref & (np.abs(reference) >= limit)
    errors = ulp_error(result_words[regular], reference[regular])
    bad[regular] |= np.isnan(errors)
    tiny = ~zero_ref & ~np.isnan(reference) & (np.abs(reference) < limit)
    tiny_abs = np.abs(result[tiny] - reference[tiny])
    worst = int(np.nanargmax(errors)) if errors.size else 0
    return OpAccuracy(
        op=op,
        inputs=int(words.size),
        max_ulp=float(np.nanmax(errors)) if errors.size else 0.0,
        worst_input=float(x[regular][worst]) if errors.size else float("nan"),
        underflow_limit=limit,
        underflow_inputs=int(tiny.sum()),
        max_underflow_abs=float(tiny_abs.max()) if tiny_abs.size else 0.0,
        mismatched_specials=int(bad.sum()),
    )


def error_table() -> list[OpAccuracy]:
    return [measure(op) for op in REFERENCES]


def main():  # pragma: no cover - a printout
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Tail ops vs float64, all finite bf16 inputs")
    for col in ("op", "inputs", "max ulp", "worst input", "stated bound", "underflow limit",
                "inputs below limit", "special mismatches"):
        table.add_column(col, justify="right")
    for acc in error_table():
        table.add_row(acc.op, str(acc.inputs), f"{acc.max_ulp:.3f}", f"{acc.worst_input:.6g}",
                      str(acc.bound), f"{acc.underflow_limit:.3g}", str(acc.underflow_inputs),
                      str(acc.mismatched_specials))
    Console(width=160).print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
