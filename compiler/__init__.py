"""OpenRDU kernel compiler: graph IR -> placement -> routing -> configuration words.

Pure Python; it reads hardware parameters from :mod:`hdl` presets and configuration
dataclasses but never elaborates Amaranth code. :func:`compile_kernel` is the front door.
"""

from .errors import MappingError, ShapeError
from .program import CompiledKernel, Launch, Region, lines_to_vectors, vectors_to_lines

__all__ = ["MappingError", "ShapeError", "CompiledKernel", "Launch", "Region", "lines_to_vectors",
           "vectors_to_lines", "compile_kernel"]


def compile_kernel(*args, **kwargs):
    from .kernels import compile_kernel as _compile
    return _compile(*args, **kwargs)
