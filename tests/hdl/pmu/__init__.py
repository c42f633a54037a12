"""Tests of :mod:`hdl.pmu`."""
