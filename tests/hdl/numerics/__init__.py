"""Tests of :mod:`hdl.numerics`."""
