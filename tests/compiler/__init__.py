"""Tests of :mod:`compiler`."""
