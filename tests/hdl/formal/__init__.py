"""Tests of :mod:`hdl.formal`."""
