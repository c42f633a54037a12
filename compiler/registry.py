"""The one registry of the compiler's kernels: name → :class:`~compiler.mapping.KernelMapping`.

Everything that lists kernels or needs a kernel's facts (its shape's dimensions, its inputs and
outputs, the options it takes) reads them here: :func:`compiler.kernels.compile_kernel`, the
CLI, the bench, the sweep and the tests. A kernel marked not ``user_runnable``
(``elementwise``) is registered and compiles, but :func:`kernel_names` leaves it out unless
asked.
"""

from __future__ import annotations

from types import MappingProxyType

from .attention import AttentionKernel
from .elementwise import ElementwiseKernel
from .ffn import FfnKernel
from .gemm import GemmKernel
from .mapping import KernelMapping
from .rmsnorm import RmsnormKernel

__all__ = ["KERNELS", "get_kernel", "kernel_names"]

#: Every kernel, by name, in the order the CLI lists them (read-only).
KERNELS: MappingProxyType[str, KernelMapping] = MappingProxyType(
    {k.name: k for k in (GemmKernel(), FfnKernel(), AttentionKernel(), RmsnormKernel(), ElementwiseKernel())})


def kernel_names(*, include_internal: bool = False) -> tuple[str, ...]:
    """The names of the user-runnable kernels (what ``openrdu run`` offers), in registry order;
    with ``include_internal`` every registered kernel."""
    return tuple(name for name, k in KERNELS.items() if include_internal or k.user_runnable)


def get_kernel(name: str) -> KernelMapping:
    """The kernel called ``name``.

    Raises
    ------
    ValueError
        For a name that is not registered (the message lists the registered kernels).
    """
    try:
        return KERNELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kernel {name!r}; kernels: {', '.join(KERNELS)}") from None
