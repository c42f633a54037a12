"""The DDR → HBM copy path (two AGCUs, two controllers, three clocks) on Icarus and Verilator.

The source is random data preloaded into the DDR device model; the destination is read
straight out of the HBM device model's storage and compared with the source.
"""

from __future__ import annotations

import pytest

from hdl.dma import DdrToHbmCopy
from sim.dma import copy_run, run_copy

pytestmark = pytest.mark.cocotb

MIB_LINES = (1 << 20) // 64


def _copy_and_faults(simulator, build_dir, waves, lines):
    path = DdrToHbmCopy("small")
    runs = [
        copy_run(path, "copy", lines, src_line=1024, dst_line=4096, seed=5),
        # one line past the destination segment's bound: fault before any write
        copy_run(path, "out_of_bounds", 256, dst_line=64, dst_bound=255, seed=6),
        # a destination segment without write permission
        copy_run(path, "read_only", 64, dst_writable=False, seed=7),
    ]
    result, metrics = run_copy(runs, path=path, simulator=simulator, build_dir=build_dir, waves=waves)
    assert result.passed, result.summary()
    copy = metrics["copy"]
    assert copy["configured"] == [1, 1]
    assert not copy["timed_out"]
    assert copy["equal"], f"{copy['mismatched_lines']} of {lines} lines differ"
    assert (copy["rd_fault"], copy["wr_fault"]) == (0, 0)
    # burst coalescing: exactly one line request per line on each side
    assert copy["rd_requests"] == lines and copy["wr_requests"] == lines
    assert copy["hbm"]["writes"] == lines and copy["ddr"]["reads"] == lines
    for name in ("out_of_bounds", "read_only"):
        run = metrics[name]
        assert not run["timed_out"], f"{name}: the faulting store never reported done"
        assert run["wr_fault"] == 1, name
        assert run["wr_requests"] == 0 and run["hbm"]["writes"] == 0, f"{name}: a write reached HBM"
        assert run["hbm_nonzero_words"] == 0, f"{name}: HBM holds data after a faulted copy"
    return copy


def test_copy_path(simulator, sim_build_dir, waves):
    """1 MiB on Verilator; 64 KiB on Icarus (its 1 MiB run is the soak test below)."""
    lines = MIB_LINES if simulator == "verilator" else MIB_LINES // 16
    copy = _copy_and_faults(simulator, sim_build_dir, waves, lines)
    gbps = lines * 64 / (copy["elapsed_ps"] / 1000)
    assert gbps > 0.5 * 25.6, f"copy at {gbps:.1f} GB/s: far below a DDR4-3200 channel"


@pytest.mark.soak
def test_copy_path_one_mib_icarus(sim_build_dir):
    from sim import toolchain
    if not toolchain.simulator_status("icarus").usable:
        pytest.skip("icarus unusable")
    _copy_and_faults("icarus", sim_build_dir, False, MIB_LINES)
