"""OpenRDU kernel compiler: graph IR -> placement -> routing -> configuration words.

Pure Python; it reads hardware parameters from :mod:`hdl.presets` but never
elaborates Amaranth code. Filled in by the kernel-compiler issue.
"""
