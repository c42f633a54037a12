"""Tests of :mod:`hdl.network`."""
