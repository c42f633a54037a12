"""DRAM timing presets: published values, derived figures, address mapping, errors."""

from __future__ import annotations

import pytest

from hdl.memctrl import MemoryController, MemoryTier, join_line_address, split_line_address, timing_preset
from hdl.memctrl.timing import LINE_BYTES, TIMING_PRESETS, timing_names


def test_reference_figures():
    """The values docs/architecture.md (Reference figures: DRAM timings) gives, and the peak
    bandwidths it states."""
    hbm2, hbm3, ddr5 = (timing_preset(n) for n in ("HBM2-2000", "HBM3-6400", "DDR5-4800"))
    assert (hbm2.tck_ns, hbm2.CL, hbm2.RCD, hbm2.RP, hbm2.RAS) == (1.0, 14, 14, 14, 34)
    assert (hbm2.bank_groups, hbm2.banks_per_group) == (4, 4)
    assert hbm2.peak_gbps == pytest.approx(32.0)
    assert (hbm3.tck_ns, hbm3.CL, hbm3.RCD, hbm3.RP) == (0.625, 20, 31, 26)
    assert hbm3.peak_gbps == pytest.approx(51.2) and hbm3.channels == 16
    assert (ddr5.CL, ddr5.RCD, ddr5.RP) == (34, 34, 34)
    assert ddr5.peak_gbps == pytest.approx(19.2, rel=0.005)
    assert timing_preset("ddr4-3200").peak_gbps == pytest.approx(25.6)


def test_every_preset_is_consistent():
    for t in TIMING_PRESETS.values():
        assert t.burst_cycles * t.bytes_per_cycle == LINE_BYTES
        assert t.ccd_s >= t.burst_cycles and t.ccd_l >= t.ccd_s
        assert t.read_to_write > 0 and t.write_to_read_l >= t.write_to_read_s
        assert t.RFC < t.REFI
    assert timing_names("hbm") == ["HBM2-2000", "HBM3-6400"]
    assert timing_names("ddr") == ["DDR4-3200", "DDR5-4800"]
    assert "RFC" in timing_preset("HBM3-6400").assumed and not timing_preset("HBM2-2000").assumed


@pytest.mark.parametrize("name", list(TIMING_PRESETS))
def test_address_mapping_round_trips_and_interleaves(name):
    t = timing_preset(name)
    for addr in (0, 1, t.bank_groups, 12345, (1 << t.line_address_bits) - 1):
        assert join_line_address(t, *split_line_address(t, addr)) == addr
    # consecutive lines alternate bank groups; a row of every group holds row_lines lines each
    assert [split_line_address(t, a)[0] for a in range(t.bank_groups)] == list(range(t.bank_groups))
    span = t.bank_groups * t.row_lines
    assert {split_line_address(t, a)[1:3] for a in range(span)} == {(0, 0)}
    with pytest.raises(ValueError, match="outside"):
        split_line_address(t, 1 << t.line_address_bits)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown DRAM timing preset 'LPDDR9'.*HBM2-2000"):
        timing_preset("LPDDR9")
    with pytest.raises(ValueError, match="unknown timing 'tXYZ'"):
        timing_preset("HBM2-2000").reduced(tXYZ=3)
    with pytest.raises(ValueError, match="power of two"):
        timing_preset("HBM2-2000").reduced(rows=1000)
    with pytest.raises(ValueError, match="queue_depth"):
        MemoryController("HBM2-2000", queue_depth=12)
    with pytest.raises(TypeError, match="ecc"):
        MemoryController("HBM2-2000", ecc=1)
    with pytest.raises(ValueError, match="channels"):
        MemoryTier("HBM2-2000", channels=3)
