"""Tests of :mod:`hdl.pcu`."""
