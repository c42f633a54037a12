"""Tests of :mod:`hdl.memctrl`."""
