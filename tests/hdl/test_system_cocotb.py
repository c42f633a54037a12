"""A tile whose AGCUs reach HBM: a kernel with its operands in HBM, on Icarus and Verilator.

``y = 1.5·x − 0.25``: HBM → AGCU (base address from kernel argument 0) → PCU (fmul) →
PCU (fadd of argument 2) → AGCU (argument 1) → HBM, launched with LOAD / ARGS / EXEC.
The result is read from the HBM device model and compared bit for bit with the PCU
golden model; a second launch whose destination segment is one line short must fault
without writing anything.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.agcu import Segment
from hdl.launch import LaunchState
from hdl.system import TileSystem
from sim.system import axpb_kernel, lines_of_vectors, run_system, segment_payload, vectors_of_lines

pytestmark = pytest.mark.cocotb


def test_kernel_with_operands_in_hbm(simulator, sim_build_dir, waves):
    system = TileSystem("tiny")
    lanes = system.params.preset.lanes
    vectors = 24
    rng = np.random.default_rng(4)
    x = rng.normal(0, 4, (vectors, lanes)).astype(np.float32).view(np.uint32)
    lines = lines_of_vectors(x)
    src_line, dst_line = 96, 4000
    # vector addresses within the segments: the kernel's arguments, not baked into the image
    src_vec, dst_vec = 8, 4
    vpl = system.params.agcu.vectors_per_line
    kernel, golden = axpb_kernel(system, vectors, 1.5, -0.25, src=src_vec, dst=dst_vec)
    words = kernel.host_words()
    done = [int(LaunchState.DONE), int(LaunchState.REFUSED)]
    n = len(lines)
    out_lines = n + 2
    good_segs = [
        segment_payload(system, "agcu_w0",
                        Segment(0, src_line - src_vec // vpl, n + 4, read=True, write=False)),
        segment_payload(system, "agcu_e1", Segment(0, dst_line, out_lines, read=False, write=True)),
    ]
    short_segs = [good_segs[0],
                  segment_payload(system, "agcu_e1", Segment(0, dst_line, (dst_vec + vectors) // vpl - 1,
                                                             read=False, write=True))]
    runs = [
        {"name": "axpb", "preload": [[src_line, lines]], "seg": good_segs, "host": words, "until": done,
         "timeout_ns": 200_000, "read": [[dst_line, out_lines]]},
        {"name": "short_destination", "preload": [[src_line, lines]], "seg": short_segs, "host": words,
         "until": done, "timeout_ns": 200_000, "read": [[dst_line, out_lines]]},
    ]
    result, metrics = run_system(system, runs, simulator=simulator, build_dir=sim_build_dir, waves=waves)
    assert result.passed, result.summary()

    ok = metrics["axpb"]
    assert ok["state"] == LaunchState.DONE and not ok["timed_out"], ok
    assert ok["faults"] == 0 and ok["violations"] == 0
    rows = ok["read"][str(dst_line)]
    # dst_vec vectors of untouched (zero) memory, then the result, then zeros again
    got = vectors_of_lines(rows, out_lines * vpl, lanes)
    want = np.array(golden(x), dtype=np.uint32).reshape(vectors, lanes)
    assert np.array_equal(got[dst_vec:dst_vec + vectors], want), "result differs from the golden model"
    assert not got[:dst_vec].any() and not got[dst_vec + vectors:].any(), "a store outside the tensor"
    # coalescing: one line read per source line touched, one line write per destination line
    assert ok["hbm_reads"] == (src_vec % vpl + vectors + vpl - 1) // vpl
    assert ok["hbm_writes"] == (dst_vec % vpl + vectors + vpl - 1) // vpl

    bad = metrics["short_destination"]
    assert bad["state"] == LaunchState.DONE and not bad["timed_out"], "a faulting store must still finish"
    store_index = system.agcu_names.index("agcu_e1")
    assert bad["faults"] == 1 << store_index
    assert bad["hbm_writes"] == 0
    assert not vectors_of_lines(bad["read"][str(dst_line)], out_lines * vpl, lanes).any()
