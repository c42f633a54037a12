"""``openrdu run`` reports the compiler's roofline next to the measured cycles (Icarus, ``tiny``;
the model is the suite's shared build, ``build/kernels/tiny``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import compile_kernel
from openrdu.flows.run import JSON_FIELDS, roofline_line

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "build"          # OPENRDU_BUILD: the models are in build/kernels/<preset>


@pytest.mark.cocotb
def test_a_run_lies_above_its_roofline():
    """The unfused RMSNorm (two launches) on Icarus: the roofline is the compiler's, positive and
    at most the measured cycles, and the HBM lines the stream model predicts are the ones the
    device models saw."""
    from sim import toolchain

    status = toolchain.simulator_status("icarus")
    if not status.usable:
        if "icarus" in toolchain.required_simulators():
            pytest.fail(f"icarus is required but unusable: {status.reason}")
        pytest.skip(f"icarus unusable: {status.reason}")
    args = ["run", "rmsnorm", "--preset", "tiny", "--shape", "6,7", "--unfused", "--sim", "icarus", "--json"]
    proc = subprocess.run([sys.executable, "-m", "openrdu", *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, OPENRDU_BUILD=str(SHARED)), timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(proc.stdout)
    assert list(row) == list(JSON_FIELDS) and row["bit_exact"] and row["launches"] == 2
    roofline = compile_kernel("rmsnorm", "tiny", (6, 7), fused=False).roofline
    assert (row["roofline_cycles"], row["bound"]) == (roofline.cycles, roofline.bound)
    assert 0 < row["roofline_fraction"] <= 1
    assert row["roofline_fraction"] == round(roofline.cycles / row["cycles"], 4)
    assert row["hbm_bytes"] == roofline.details["hbm_bytes_planned"] >= roofline.details["hbm_bytes_needed"]


def test_the_console_line_names_the_roofline_and_what_binds():
    row = {"roofline_cycles": 1234, "bound": "hbm", "cycles": 5000, "roofline_fraction": 0.2468}
    assert roofline_line(row) == ("roofline: 1,234 cycles, bound by hbm; measured 5,000 cycles, "
                                  "roofline fraction 0.2468")
