"""Tests of :mod:`hdl`."""
