"""Tests of :mod:`coe_host`."""
