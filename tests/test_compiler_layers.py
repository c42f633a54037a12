"""The compiler's layering: it reads hardware parameters and configuration formats from :mod:`hdl`
but never loads the RTL (the tile, the units' Amaranth components, the Verilog back-end)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Modules the compiler must not load: the tile and system tops (which elaborate every unit),
#: each unit's Amaranth component, the memory controller's RTL and Amaranth's back-ends.
FORBIDDEN = ("hdl.tile", "hdl.system", "hdl.tops", "hdl.pcu.unit", "hdl.pmu.unit", "hdl.agcu.unit",
             "hdl.memctrl.controller", "hdl.memctrl.tier", "amaranth.back")


def test_compiling_every_kernel_loads_no_rtl_module():
    """In a fresh interpreter: import the compiler, compile every kernel fused and unfused, emulate
    one, and list the loaded modules."""
    script = (
        "import json, sys\n"
        "from compiler import compile_kernel\n"
        "from compiler.emulate import emulate\n"
        "import compiler.kernels\n"
        "for kernel, preset, shape, options in [\n"
        "        ('gemm', 'tiny', (6, 5, 3), dict(act='relu', bias=True)),\n"
        "        ('ffn', 'tiny', (6, 5, 7), dict(act='gelu')),\n"
        "        ('ffn', 'quad', (6, 5, 7), dict(gated=True)),\n"
        "        ('rmsnorm', 'tiny', (6, 7), {}),\n"
        "        ('attention', 'small', (16, 8), dict(causal=True))]:\n"
        "    for fused in (True, False):\n"
        "        compiled = compile_kernel(kernel, preset, shape, fused=fused, **options)\n"
        "words = {name: compiled.graph.tensors[name].shape for name in compiled.graph.inputs}\n"
        "import numpy as np\n"
        "emulate(compiled, {name: np.full(shape, 0x3F80, np.uint32) for name, shape in words.items()})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"the compiler loaded RTL modules: {bad}"
