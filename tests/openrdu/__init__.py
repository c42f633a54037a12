"""Tests of :mod:`openrdu`."""
