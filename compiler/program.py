"""What the compiler emits: launches (tile configuration images), the HBM layout of every
tensor and the host-side argument list.

A :class:`CompiledKernel` is everything a runner needs: for each :class:`Launch` the
:class:`hdl.kernel_image.Kernel` (unit programs, routes, arguments) and the segment-table
entries its AGCUs use; for each tensor its :class:`Region` in HBM with the functions that
pack host arrays into vectors and unpack vectors back. The runner preloads the input
regions, writes the segments, sends each launch's host words, and reads the output regions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from hdl.agcu import Segment
from hdl.kernel_image import Kernel

from .ir import KernelGraph
from .roofline import Roofline, roofline

__all__ = ["Region", "Launch", "CompiledKernel", "HbmAllocator", "vectors_to_lines", "lines_to_vectors"]


def vectors_to_lines(vectors: np.ndarray) -> np.ndarray:
    """(n, lanes) uint32 vectors → (lines, 8) uint64 memory lines (zero-padded)."""
    flat = np.ascontiguousarray(vectors, dtype=np.uint32).reshape(-1)
    flat = np.concatenate([flat, np.zeros((-len(flat)) % 16, np.uint32)])
    return flat.view(np.uint64).reshape(-1, 8)


def lines_to_vectors(lines: np.ndarray, count: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`vectors_to_lines` for the first ``count`` vectors."""
    flat = np.ascontiguousarray(lines, dtype=np.uint64).reshape(-1).view(np.uint32)
    return flat[:count * lanes].reshape(count, lanes)


@dataclass
class Region:
    """A tensor's place in HBM: ``lines`` 64-byte lines from ``base`` (a line address).

    ``vectors`` is the number of ``lanes``-word vectors it holds; ``pack`` turns the host
    array(s) into those vectors (inputs), ``unpack`` turns them back (outputs).
    """

    name: str
    base: int
    vectors: int
    lanes: int
    pack: Callable[..., np.ndarray] | None = None
    unpack: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def lines(self) -> int:
        return -(-self.vectors * self.lanes // 16)

    def segment(self, index: int = 0, *, read: bool = True, write: bool = False) -> Segment:
        return Segment(index, self.base, self.lines, read=read, write=write)


class HbmAllocator:
    """Hands out line-aligned regions, in order, from line 0 (each region starts on a fresh
    line, so two tensors never share a line)."""

    def __init__(self, lanes: int, limit_lines: int):
        self.lanes, self.limit, self.next = lanes, limit_lines, 0
        self.regions: dict[str, Region] = {}
        self.inputs: list[str] = []       # regions the host fills

    def region(self, name: str, vectors: int, **kw) -> Region:
        if name in self.regions:
            raise ValueError(f"region {name!r} allocated twice")
        r = Region(name, self.next, vectors, self.lanes, **kw)
        self.next += r.lines
        if self.next > self.limit:
            from .errors import MappingError
            raise MappingError("HBM lines", self.next, self.limit,
                               f"tensor {name} does not fit the modelled HBM")
        self.regions[name] = r
        return r


@dataclass
class Launch:
    """One kernel launch: the tile image and the segment entries of each AGCU it uses.

    ``units`` maps roles (``"pcu_gemm0"``) to sites, for reports and the floorplan.
    ``expected_steps`` is the PCU steps of the launch (a progress estimate).
    """

    name: str
    kernel: Kernel
    segments: dict[str, list[Segment]]
    roles: dict[str, str] = field(default_factory=dict)
    pcu_steps: dict[str, int] = field(default_factory=dict)
    pmu_words: dict[str, int] = field(default_factory=dict)

    @property
    def pcus(self) -> list[str]:
        return [s for s in self.kernel.units if s.startswith("pcu")]

    @property
    def pmus(self) -> list[str]:
        return [s for s in self.kernel.units if s.startswith("pmu")]


@dataclass
class CompiledKernel:
    """A kernel mapped onto a preset (see the module docstring).

    Attributes
    ----------
    name, preset, shape, fused
        What was compiled.
    launches : list of Launch
        In order; fused kernels have one.
    regions : dict of str → Region
        Every tensor in HBM (inputs, outputs and, unfused, the intermediates).
    inputs, outputs : list of str
        Region names the host fills / reads.
    golden : callable
        ``golden(words) -> dict`` of output words in the hardware's evaluation order
        (``words``: the bf16 input words by tensor name).
    order : str
        The accumulation order the compiler chose (what ``golden`` follows).
    plan : dict
        The mapping choices (tile sizes, units per role), for reports.
    flops : int
        Floating-point operations of the graph (a multiply-add counts two).
    graph : KernelGraph
        The graph it computes (:mod:`compiler.ir`; its float64 reference is
        :func:`compiler.ir.reference`).
    collect : callable
        ``collect(vectors) -> dict`` of output words, from the output regions' vectors.
    roofline : Roofline
        Its roofline (a property, computed on first use; :mod:`compiler.roofline`).
    """

    name: str
    preset: str
    shape: tuple[int, ...]
    fused: bool
    launches: list[Launch]
    regions: dict[str, Region]
    inputs: list[str]
    outputs: list[str]
    golden: Callable[[dict], dict]
    order: str
    plan: dict = field(default_factory=dict)
    flops: int = 0
    graph: KernelGraph | None = None
    collect: Callable[[dict], dict] | None = None

    @property
    def hbm_lines(self) -> int:
        return max((r.base + r.lines for r in self.regions.values()), default=0)

    @cached_property
    def roofline(self) -> Roofline:
        """Lower bounds on the kernel's cycles per resource and the binding one
        (:func:`compiler.roofline.roofline` on the kernel memory system), computed on first use."""
        return roofline(self)

    def preload(self, words: dict[str, np.ndarray | tuple]) -> list[tuple[int, np.ndarray]]:
        """``(base line, (n, 8) uint64 lines)`` for every input region, from input words."""
        out = []
        for name in self.inputs:
            region = self.regions[name]
            vectors = region.pack(words)
            if vectors.shape != (region.vectors, region.lanes):
                raise AssertionError(f"{name}: packed {vectors.shape}, region holds "
                                     f"({region.vectors}, {region.lanes})")
            out.append((region.base, vectors_to_lines(vectors)))
        return out
