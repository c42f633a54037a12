"""``openrdu doctor``: which simulators are usable, their versions, and what is missing."""

from __future__ import annotations

__all__ = ["register", "cmd_doctor"]


def cmd_doctor(args) -> int:
    from sim import toolchain

    return toolchain._main()


def register(sub) -> None:
    p = sub.add_parser("doctor", help="show which simulators are usable and why not")
    p.set_defaults(func=cmd_doctor)
