"""The repository's architecture rules (docs/architecture.md), checked on every ``make test``.

* Layers import only downward (``hdl -> compiler -> sim -> coe_host -> openrdu``) and no package
  has an import cycle between its modules: ``lint-imports`` with the contracts in
  ``pyproject.toml``. A copy of the packages with one upward import must break the contract, so
  the check is known to be able to fail.
* The repository stands on its own: nothing in README or docs points outside it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("hdl", "compiler", "sim", "coe_host", "openrdu")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.fail(f"lint-imports is not installed next to {sys.executable} (pip install import-linter)")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_layers_import_only_downward():
    proc = _lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"Contracts: (\d+) kept, 0 broken", proc.stdout), proc.stdout[-2000:]


@pytest.mark.parametrize("module, line, broken", [
    # hdl may import nothing of ours above it
    ("hdl/counters.py", "from sim import toolchain", "hdl is not allowed to import sim"),
    # the compiler sits below the simulation layer
    ("compiler/errors.py", "from openrdu import cli", "compiler is not allowed to import openrdu"),
    # the RTL backend must not import the host that imports it
    ("coe_host/rtl.py", "from .host import CoeHost", "No cycles are allowed in coe_host"),
])
def test_an_upward_import_or_a_cycle_breaks_the_contract(tmp_path, module, line, broken):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n\ndef _injected():\n    {line}  # noqa\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert broken in proc.stdout, proc.stdout[-3000:]


def test_nothing_points_outside_the_repository():
    texts = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    offenders = [f"{path.relative_to(REPO)}:{n}: {text.strip()}"
                 for path in texts for n, text in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"shared/|\.\./shared|DESIGN\.md", text)]
    assert not offenders, "\n".join(offenders)
