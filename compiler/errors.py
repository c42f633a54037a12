"""Errors of the kernel compiler."""

from __future__ import annotations

__all__ = ["MappingError", "ShapeError"]


class MappingError(ValueError):
    """A kernel that does not fit the preset.

    Attributes
    ----------
    resource : str
        What ran out (``"PCUs"``, ``"PMU capacity (words)"``, ``"vector links"`` …).
    need, have : int or None
        How much the kernel needs and how much the preset has (``None`` where a count
        does not apply, e.g. a route that cannot be found).
    """

    def __init__(self, resource: str, need: int | None, have: int | None, detail: str = ""):
        self.resource, self.need, self.have = resource, need, have
        text = f"kernel does not fit: {resource}"
        if need is not None and have is not None:
            text += f": needs {need}, the preset has {have} (short by {need - have})"
        if detail:
            text += f"; {detail}"
        super().__init__(text)


class ShapeError(ValueError):
    """A kernel shape or input array that the kernel cannot take (the message says which)."""
