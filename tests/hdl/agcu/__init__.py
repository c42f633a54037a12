"""Tests of :mod:`hdl.agcu`."""
