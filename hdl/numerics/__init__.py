"""OpenRDU arithmetic: bf16/fp32 units, the op table and the bit-exact golden model.

* :mod:`.ops` — the op table (op codes, types, latencies, golden functions, builders).
* :mod:`.golden` — numpy/ml_dtypes golden primitives.
* :mod:`.fp32` — Amaranth builders for binary32 arithmetic.
* :mod:`.tail` — the transcendental approximations, one shared micro-program.
* :mod:`.units` — stream components: :class:`~.units.OpUnit`, :class:`~.units.ArithmeticUnit`,
  :class:`~.units.TailUnit`, :class:`~.units.MacAccumulator`.

See ``docs/numerics.md`` for the contract and the measured error table.
"""
