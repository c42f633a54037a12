"""One Verilog module per distinct design: merge the identical modules Amaranth writes out.

Amaranth writes one Verilog module per submodule *instance*: the eight tails of a PCU's lanes
become ``\\openrdu_pcu.tail0`` … ``\\openrdu_pcu.tail7``, eight copies of one text, and the eight
HBM channel controllers of a stack eight more. Simulators and synthesis then parse, optimise and
(Verilator) compile every copy. :func:`share_identical_modules` keeps the first module of each
group of identical ones and points the instances of the others at it, repeating until no two
modules are alike (merging children can make their parents identical).

Two modules are identical when their port lists are equal and their texts are equal after the
module name and the names Yosys makes up (``\\$auto$…$<n>``, numbered across the whole design)
are replaced by names in order of first use. Only the comparison uses those replaced names: the
kept module is written as Amaranth wrote it, so its ports and signals keep their names (waves,
cocotb handles and instance connections see no difference). Identical text means identical
logic, so a merged design behaves exactly as the original one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["share_identical_modules", "SharingReport"]

# a module with the attribute lines before it: (attributes, name, port list)
_MODULE = re.compile(r"^((?:\(\*[^\n]*\*\)\n)*)module (\\\S+ |\w+)\s*\((.*?)\);\n.*?^endmodule\n",
                     re.S | re.M)
_AUTO_NAME = re.compile(r"\\\$auto\$\S+ ")
# an instance: indentation, the module's name, the instance's name, "("
_INSTANCE = re.compile(r"^(\s+)(\\\S+ |\w+)(\s*\\?\S+\s*\()", re.M)


@dataclass(frozen=True)
class SharingReport:
    """What :func:`share_identical_modules` did: modules and lines before and after."""

    modules_before: int
    modules_after: int
    lines_before: int
    lines_after: int

    def __str__(self) -> str:
        return (f"{self.modules_before} → {self.modules_after} modules, "
                f"{self.lines_before:,} → {self.lines_after:,} lines")


def _key(name: str, ports: str, text: str) -> str:
    body = text.replace(f"module {name}", "module @", 1)
    names: dict[str, str] = {}
    body = _AUTO_NAME.sub(lambda m: names.setdefault(m.group(0), f"@{len(names)} "), body)
    return hashlib.sha256(f"{ports}\0{body}".encode()).hexdigest()


def share_identical_modules(text: str) -> tuple[str, SharingReport]:
    """``text`` (Verilog as Amaranth writes it) with identical modules merged; see the module
    docstring. A merged module's attribute lines go with it; other text outside modules (the
    header comment) is kept in place."""
    pieces: list[str | tuple[str, str]] = []          # text between modules, or (name, ports)
    modules: dict[str, str] = {}
    position = 0
    for match in _MODULE.finditer(text):
        pieces.append(text[position:match.start()])
        name = match.group(2)
        if name in modules:
            raise ValueError(f"module {name.strip()} is defined twice")
        modules[name] = match.group(0)
        pieces.append((name, match.group(3)))
        position = match.end()
    pieces.append(text[position:])
    ports = {p[0]: p[1] for p in pieces if isinstance(p, tuple)}
    lines_before = sum(t.count("\n") for t in modules.values())
    count_before = len(modules)

    replaced: dict[str, str] = {}                   # a merged module → the module kept for it
    while True:
        kept: dict[str, str] = {}
        merged = 0
        for name, body in modules.items():
            if name in replaced:
                continue
            first = kept.setdefault(_key(name, ports[name], body), name)
            if first != name:
                replaced[name] = first
                merged += 1
        if not merged:
            break

        def point(match, replaced=replaced):
            module = match.group(2)
            if module not in replaced:
                return match.group(0)
            while module in replaced:
                module = replaced[module]
            return match.group(1) + module + match.group(3)

        for name in modules:
            if name not in replaced:
                modules[name] = _INSTANCE.sub(point, modules[name])

    out = []
    for piece in pieces:
        if isinstance(piece, tuple):
            if piece[0] not in replaced:
                out.append(modules[piece[0]])
        else:
            out.append(piece)
    report = SharingReport(count_before, count_before - len(replaced), lines_before,
                           sum(modules[n].count("\n") for n in modules if n not in replaced))
    return "".join(out), report

