"""What a CoE host backend is and what it returns; shared by the golden and the RTL backend.

A backend serves :class:`coe_host.host.CoeHost`'s three steps (route, switch, run). It is any
object with

``name`` : str
    ``"golden"`` or ``"rtl"``.
``route(router_table, router, prompts) -> ndarray``
    The class index of every prompt, from the router GEMM whose weights it reads through
    ``router_table`` (a read-only segment on the router's HBM region).
``run_expert(expert, grant, socket, x_words) -> ndarray``
    The expert FFN's output words (bf16 in the low 16 bits) for input words ``x_words``, with the
    weights and buffers reached only through ``grant.tables[socket]``.
``serve(host, prompts)`` (optional)
    The whole flow at once, batched (the RTL backend: one simulation per step kind); returns an
    object whose ``served`` is what :meth:`CoeHost.serve` returns.

This module imports neither backend nor the host, so the host can import both backends and the
RTL backend need not import the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["Backend", "Served", "words_to_bytes", "bytes_to_words"]


class Backend(Protocol):
    """The interface of a CoE host backend (see the module text)."""

    name: str

    def route(self, router_table, router, prompts: list[str]) -> np.ndarray: ...

    def run_expert(self, expert, grant, socket: int, x_words: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Served:
    """One served request: where it was routed, whether its expert was resident, and its output.

    Attributes
    ----------
    prompt, domain, expert : str
        The request, the router's class for it, and the expert that class maps to.
    hit : bool
        The expert was resident in HBM (no DDR -> HBM copy).
    bytes_copied : int
        Bytes the switch copied DDR -> HBM (0 on a hit).
    evicted : tuple of str
        Experts the switch evicted to make room.
    output, expected : ndarray
        The backend's output words and the numpy FFN's on the registry's own weights.
    """

    prompt: str
    domain: str
    expert: str
    hit: bool
    bytes_copied: int
    evicted: tuple[str, ...]
    output: np.ndarray
    expected: np.ndarray

    @property
    def exact(self) -> bool:
        """The output equals the numpy FFN's bit for bit."""
        return bool(np.array_equal(self.output, self.expected))


def words_to_bytes(words: np.ndarray) -> bytes:
    """bf16 words (low 16 bits of uint32) -> little-endian bytes, as they sit in memory."""
    return np.asarray(words, dtype=np.uint32).astype("<u2").tobytes()


def bytes_to_words(raw: bytes, shape) -> np.ndarray:
    """Little-endian bf16 bytes -> uint32 words of ``shape``."""
    return np.frombuffer(raw, dtype="<u2").astype(np.uint32).reshape(shape)
