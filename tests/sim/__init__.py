"""Tests of :mod:`sim`."""
