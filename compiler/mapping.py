"""The kernel-mapping protocol and the helpers every mapping shares.

A *kernel mapping* is one kernel of the compiler: what a user names (the shape's dimensions,
the input and output tensors, the options it takes), how its graph is built
(:mod:`compiler.ir`) and how it is compiled onto a preset (a plan, the HBM layout of its
tensors, its launches fused or unfused, and the golden model that evaluates in the order the
hardware computes). Each kernel is one subclass of :class:`KernelMapping`, defined in the
module of its mapping (:class:`compiler.gemm.GemmKernel`, :class:`compiler.ffn.FfnKernel`,
:class:`compiler.attention.AttentionKernel`, :class:`compiler.rmsnorm.RmsnormKernel`,
:class:`compiler.elementwise.ElementwiseKernel`); :mod:`compiler.registry` holds one instance
of each, and :func:`compiler.kernels.compile_kernel` is the front door that dispatches to them.

Options
-------
:data:`OPTION_DEFAULTS` lists every option :func:`compiler.kernels.compile_kernel` takes with
its default. A kernel *takes* some of them: its :attr:`~KernelMapping.graph_options` change
what is computed (they enter the graph: ``act``, ``bias``, ``gated``, ``causal``,
``out_dtype``, ``eps``) and its :attr:`~KernelMapping.mapping_options` change only how it is
mapped (``max_pcus``, ``orders``, ``block``). The front door ignores an option a kernel does
not take (callers pass every option with its default); a caller that wants to refuse one
(``--causal`` on gemm) asks :meth:`KernelMapping.refused_options` or
:meth:`KernelMapping.check_options`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np

from hdl.counters import Counter

from .errors import MappingError
from .ir import KernelGraph, reference
from .program import CompiledKernel, HbmAllocator, Launch

__all__ = ["KernelMapping", "OPTION_DEFAULTS", "DEFAULT_HBM_LINES", "COUNTER_LIMIT", "ceil_div",
           "counter_nest", "f32_word"]

#: Every option of :func:`compiler.kernels.compile_kernel` a kernel may take, with its default.
OPTION_DEFAULTS: dict[str, object] = {
    "act": "none",          # activation (gemm; ffn: the hidden layer's, none meaning relu)
    "bias": False,          # gemm: add a bias row
    "gated": False,         # ffn: the SwiGLU form
    "causal": False,        # attention: causal mask
    "out_dtype": "bf16",    # gemm: output type
    "eps": 1e-6,            # rmsnorm: epsilon
    "max_pcus": None,       # gemm, ffn (unfused): at most this many PCUs per GEMM
    "orders": ("nm", "mn"),  # gemm, ffn (unfused): the GEMM loop orders the planner may choose
    "block": None,          # attention: key-block slots (default: the planner's)
}
#: HBM lines a compiled kernel may use unless told otherwise (the modelled HBM).
DEFAULT_HBM_LINES = 1 << 22
#: Counters and ALU immediates of the units are 16 bits wide.
COUNTER_LIMIT = 1 << 16


def ceil_div(a: int, b: int) -> int:
    """``⌈a / b⌉`` for ints (``b > 0``)."""
    return -(-a // b)


def f32_word(value: float) -> int:
    """The fp32 word (RNE) of ``value``."""
    return int(np.array([value], np.float32).view(np.uint32)[0])


def counter_nest(count: int, stream: str) -> list[Counter]:
    """The counter nest of an AGCU or PCU that steps ``count`` times: one counter.

    An AGCU address is the sum of its counters' values, so a longer stream would need an outer
    counter counting past the counter width too.

    Raises
    ------
    MappingError
        When ``count`` does not fit a 16-bit counter (``stream`` names what overflows).
    """
    if count < COUNTER_LIMIT:
        return [Counter(0, count)]
    raise MappingError(f"counter range ({stream})", count, COUNTER_LIMIT - 1, "split the tensor")


class KernelMapping(ABC):
    """One kernel of the compiler (see the module docstring).

    Subclasses set the class attributes and implement :meth:`input_names`,
    :meth:`output_names`, :meth:`graph` and :meth:`compile`.

    Attributes
    ----------
    name : str
        What :func:`~compiler.kernels.compile_kernel` and the CLI call it (``"gemm"``).
    shape_names : tuple of str
        The shape's dimensions in order (``("M", "K", "N")``).
    formula : str
        What it computes, one line (``"C = act(A·B + bias)"``).
    graph_options, mapping_options : tuple of str
        The options (keys of :data:`OPTION_DEFAULTS`) it takes: those that enter the graph and
        those that only steer the mapping.
    user_runnable : bool
        Whether ``openrdu run``, the bench and the sweep offer it (``False``: the compiler uses
        it, and :func:`~compiler.kernels.compile_kernel` compiles it, but the user-facing
        lists leave it out).
    """

    name: ClassVar[str]
    shape_names: ClassVar[tuple[str, ...]]
    formula: ClassVar[str] = ""
    graph_options: ClassVar[tuple[str, ...]] = ()
    mapping_options: ClassVar[tuple[str, ...]] = ()
    user_runnable: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ------------------------------------------------------------------ names and options

    @property
    def shape_text(self) -> str:
        """The shape's dimensions as the CLI writes them (``"M,K,N"``)."""
        return ",".join(self.shape_names)

    @property
    def options(self) -> tuple[str, ...]:
        """Every option it takes (graph options first)."""
        return self.graph_options + self.mapping_options

    def option_defaults(self) -> dict[str, object]:
        """``{option: default}`` of the options it takes."""
        return {name: OPTION_DEFAULTS[name] for name in self.options}

    def _known(self, options: Mapping[str, object]) -> None:
        unknown = [name for name in options if name not in OPTION_DEFAULTS]
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}; options: "
                             f"{', '.join(OPTION_DEFAULTS)}")

    def select(self, options: Mapping[str, object], names: Sequence[str]) -> dict[str, object]:
        """The values of ``names`` (options it takes) from ``options``, defaults filled in;
        the other entries of ``options`` are ignored."""
        self._known(options)
        return {name: options.get(name, OPTION_DEFAULTS[name]) for name in names}

    def refused_options(self, options: Mapping[str, object]) -> list[str]:
        """The options of ``options`` it does not take that are given a value other than their
        default (what a caller should refuse: ``causal=True`` for gemm). Raises
        ``ValueError`` for a name that is no option at all."""
        self._known(options)
        return [name for name, value in options.items()
                if name not in self.options and value != OPTION_DEFAULTS[name]]

    def check_options(self, options: Mapping[str, object]) -> None:
        """Raise ``ValueError`` naming the options of ``options`` it does not take (see
        :meth:`refused_options`) and those it does."""
        refused = self.refused_options(options)
        if refused:
            takes = ", ".join(self.options) or "no options"
            raise ValueError(f"kernel {self.name} does not take {', '.join(refused)} (it takes: {takes})")

    @abstractmethod
    def input_names(self, **options) -> list[str]:
        """The input tensors in order, for the given options (those it does not take are
        ignored): the keys of the golden model's and :func:`reference`'s ``inputs``."""

    @abstractmethod
    def output_names(self, **options) -> list[str]:
        """The output tensors (the keys of the golden model's result)."""

    # ------------------------------------------------------------------ graph, compile, reference

    @abstractmethod
    def graph(self, shape: Sequence[int], **graph_options) -> KernelGraph:
        """The kernel's graph for ``shape`` (its :attr:`shape_names`) and its graph options.

        Raises
        ------
        ShapeError
            For a shape of the wrong length or with a dimension that is not a positive int.
        ValueError
            For an option value it cannot take (the message names the value and what is
            allowed).
        """

    @abstractmethod
    def compile(self, graph: KernelGraph, params, *, fused: bool = True, hbm_lines: int = DEFAULT_HBM_LINES,
                **mapping_options) -> CompiledKernel:
        """Map ``graph`` (from :meth:`graph`) onto the tile ``params``
        (:class:`hdl.params.TileParams`): one launch when ``fused``, else one per op with the
        intermediates in HBM; the result's golden model follows the hardware's order.

        Raises
        ------
        MappingError
            When it does not fit (the message names the resource and the shortfall).
        """

    def reference(self, graph: KernelGraph, inputs: Mapping[str, np.ndarray]) -> dict:
        """The float64 evaluation of ``graph`` with its error bound: ``{tensor: (value, bound)}``
        (:func:`compiler.ir.reference`; ``inputs`` are floats already rounded to bf16)."""
        return reference(graph, dict(inputs))

    # ------------------------------------------------------------------ for subclasses

    def compiled_kernel(self, graph: KernelGraph, params, shape: tuple[int, ...], fused: bool,
                        launches: list[Launch], alloc: HbmAllocator, *,
                        golden: Callable[[dict], dict], collect: Callable[[dict], dict], order: str,
                        plan: dict) -> CompiledKernel:
        """The :class:`CompiledKernel` of a compiled graph (named after the graph, its outputs
        the graph's outputs)."""
        return CompiledKernel(graph.name, params.preset.name, tuple(shape), fused, launches, alloc.regions,
                              inputs=alloc.inputs, outputs=graph.outputs, golden=golden, order=order,
                              plan=plan, flops=graph.flops(), graph=graph, collect=collect)
