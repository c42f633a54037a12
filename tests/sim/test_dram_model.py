"""The behavioural DRAM model (:mod:`sim.dram`) in pure Python.

The timing checker sees a legal sequence on every preset, and for every constraint a
sequence that breaks it by one cycle (it must raise, naming that constraint) next to the
same sequence one cycle later (it must pass). The device's storage, beat packing and
per-cycle behaviour run without a simulator on a stand-in ``dut``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hdl.memctrl.interface import Command, beat_bits, join_line_address, split_line_address, words_per_beat
from hdl.memctrl.timing import TIMING_PRESETS
from sim.dram import REFRESH_POSTPONE, DramDevice, TimingChecker, TimingViolation

ACT, RD, WR, PRE, PREA, REF = Command.ACT, Command.RD, Command.WR, Command.PRE, Command.PREA, Command.REF
PRESETS = list(TIMING_PRESETS.values())
PRESET_IDS = list(TIMING_PRESETS)
B = 10  # first command cycle of every sequence


def run(timing, seq):
    """Feed (cycle, cmd, bg, bank, row, col) tuples to a fresh checker; return it."""
    chk = TimingChecker(timing)
    for cycle, cmd, *fields in seq:
        chk.command(cycle, cmd, *fields)
    return chk


# -- a legal sequence ----------------------------------------------------------------------------
def legal_sequence(t):
    seq = []
    a0 = B
    seq.append((a0, ACT, 0, 0, 5))
    r1 = a0 + t.RCD
    r2 = r1 + t.ccd_l
    seq += [(r1, RD, 0, 0, 0, 0), (r2, RD, 0, 0, 0, 1)]                  # miss, hit
    p0 = max(a0 + t.RAS, r2 + t.RTP)
    seq.append((p0, PRE, 0, 0))
    a1 = p0 + t.RP
    seq.append((a1, ACT, 0, 0, 6))
    w = a1 + t.RCD
    r3 = w + t.write_to_read_l
    seq += [(w, WR, 0, 0, 0, 2), (r3, RD, 0, 0, 0, 2)]                   # miss, hit
    # four ACTs to other bank groups at tRRD_S, the fifth exactly tFAW after the first
    acts = [r3 + 1 + k * t.RRD_S for k in range(3)]
    seq += [(c, ACT, k + 1, 1, 7) for k, c in enumerate(acts)]
    fifth = max(acts[-1] + t.RRD_S, a1 + t.FAW, a1 + t.RRD_L)
    seq.append((fifth, ACT, 0, 1, 8))
    # reads alternating bank groups 0 and 1 (bank 1) at tCCD_S: miss, miss, hit, hit
    c = fifth + t.RCD
    for k in range(4):
        seq.append((c, RD, k % 2, 1, 0, k))
        c += t.ccd_s
    last_rd = c - t.ccd_s
    prea = max(fifth + t.RAS, last_rd + t.RTP, w + t.write_to_precharge, r3 + t.RTP)
    seq.append((prea, PREA))
    pre_closed = prea + 1                                                  # PRE to a closed bank: no tRP
    seq.append((pre_closed, PRE, 2, 1))
    ref = prea + t.RP
    seq.append((ref, REF))
    ref2 = ref + t.RFC
    seq.append((ref2, REF))
    seq.append((ref2 + t.RFC, ACT, 3, 3, 9))
    return seq


@pytest.mark.parametrize("timing", PRESETS, ids=PRESET_IDS)
def test_legal_sequence_passes(timing):
    seq = legal_sequence(timing)
    assert [c for c, *_ in seq] == sorted({c for c, *_ in seq}), "sequence must be in increasing cycles"
    chk = run(timing, seq)
    last_ref = max(c for c, cmd, *_ in seq if cmd == REF)
    chk.check_refresh(last_ref + (REFRESH_POSTPONE + 1) * timing.REFI)
    assert chk.counts[ACT] == 7 and chk.counts[RD] == 7 and chk.counts[WR] == 1
    assert chk.counts[PRE] == 2 and chk.counts[PREA] == 1 and chk.counts[REF] == 2
    assert (chk.row_hits, chk.row_misses) == (4, 4)
    assert chk.row_hit_rate == 0.5
    assert chk.open_banks() == [(3, 3, 9)]


# -- one case per constraint: ok=False breaks it by one cycle, ok=True is one cycle later ---------
def _trcd(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RCD - 1 + ok, RD, 0, 0, 0, 0)]


def _trp(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RAS, PRE, 0, 0), (B + t.RAS + t.RP - 1 + ok, ACT, 0, 0, 2)]


def _trp_ref(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RAS, PRE, 0, 0), (B + t.RAS + t.RP - 1 + ok, REF)]


def _tras(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RAS - 1 + ok, PRE, 0, 0)]


def _tras_prea(t, ok):
    # bank group 0 is old enough; bank group 1's ACT is the one PREA comes too early for
    return [(B, ACT, 0, 0, 1), (B + t.RRD_L, ACT, 1, 0, 1), (B + t.RRD_L + t.RAS - 1 + ok, PREA)]


def _trrd_s(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RRD_S - 1 + ok, ACT, 1, 0, 1)]


def _trrd_l(t, ok):
    return [(B, ACT, 0, 0, 1), (B + t.RRD_L - 1 + ok, ACT, 0, 1, 1)]


def _tfaw(t, ok):
    acts = [(B + k * t.RRD_S, ACT, k, 0, 1) for k in range(4)]
    return acts + [(B + t.FAW - 1 + ok, ACT, 0, 1, 1)]


def _twr(t, ok):
    w = max(t.RCD, t.RAS - t.write_to_precharge + 1)
    return [(B, ACT, 0, 0, 1), (B + w, WR, 0, 0, 0, 0), (B + w + t.write_to_precharge - 1 + ok, PRE, 0, 0)]


def _trtp(t, ok):
    r = max(t.RCD, t.RAS - t.RTP + 1)
    return [(B, ACT, 0, 0, 1), (B + r, RD, 0, 0, 0, 0), (B + r + t.RTP - 1 + ok, PRE, 0, 0)]


def _twtr_s(t, ok):
    w = B + t.RRD_L + t.RCD
    return [(B, ACT, 0, 0, 1), (B + t.RRD_L, ACT, 1, 0, 1), (w, WR, 0, 0, 0, 0),
            (w + t.write_to_read_s - 1 + ok, RD, 1, 0, 0, 0)]


def _twtr_l(t, ok):
    w = B + t.RCD
    return [(B, ACT, 0, 0, 1), (w, WR, 0, 0, 0, 0), (w + t.write_to_read_l - 1 + ok, RD, 0, 0, 0, 1)]


def _trtw(t, ok):
    r = B + t.RCD
    return [(B, ACT, 0, 0, 1), (r, RD, 0, 0, 0, 0), (r + t.read_to_write - 1 + ok, WR, 0, 0, 0, 1)]


def _tccd_s(t, ok):
    r = B + t.RRD_S + t.RCD
    return [(B, ACT, 0, 0, 1), (B + t.RRD_S, ACT, 1, 0, 1), (r, RD, 0, 0, 0, 0),
            (r + t.ccd_s - 1 + ok, RD, 1, 0, 0, 0)]


def _tccd_s_wr(t, ok):
    w = B + t.RRD_S + t.RCD
    return [(B, ACT, 0, 0, 1), (B + t.RRD_S, ACT, 1, 0, 1), (w, WR, 0, 0, 0, 0),
            (w + t.ccd_s - 1 + ok, WR, 1, 0, 0, 0)]


def _tccd_l(t, ok):
    r = B + t.RCD
    return [(B, ACT, 0, 0, 1), (r, RD, 0, 0, 0, 0), (r + t.ccd_l - 1 + ok, RD, 0, 0, 0, 1)]


def _trfc(t, ok):
    return [(B, REF), (B + t.RFC - 1 + ok, ACT, 0, 0, 1)]


def _trfc_ref(t, ok):
    return [(B, REF), (B + t.RFC - 1 + ok, REF)]


def _trefi(t, ok):
    # late by one cycle breaks it, so the passing sequence is the one a cycle earlier
    return [(B, REF), (B + (REFRESH_POSTPONE + 1) * t.REFI + 1 - ok, ACT, 0, 0, 1)]


def _act_open(t, ok):
    pre = [(B + t.RAS, PRE, 0, 0)] if ok else []
    return [(B, ACT, 0, 0, 1), *pre, (B + t.RAS + t.RP, ACT, 0, 0, 2)]


def _rd_closed(t, ok):
    act = [(B, ACT, 0, 0, 1)] if ok else []
    return [*act, (B + t.RCD, RD, 0, 0, 0, 0)]


def _ref_open(t, ok):
    pre = [(B + t.RAS, PRE, 0, 0)] if ok else []
    return [(B, ACT, 0, 0, 1), *pre, (B + t.RAS + t.RP, REF)]


CASES = [
    ("tRCD", _trcd), ("tRP", _trp), ("tRP", _trp_ref), ("tRAS", _tras), ("tRAS", _tras_prea),
    ("tRRD_S", _trrd_s), ("tRRD_L", _trrd_l), ("tFAW", _tfaw), ("tWR", _twr), ("tWTR_S", _twtr_s),
    ("tWTR_L", _twtr_l), ("tRTW", _trtw), ("tRTP", _trtp), ("tCCD_S", _tccd_s), ("tCCD_S", _tccd_s_wr),
    ("tCCD_L", _tccd_l), ("tRFC", _trfc), ("tRFC", _trfc_ref), ("tREFI", _trefi),
    ("ACT to open bank", _act_open), ("RD to closed bank", _rd_closed), ("REF with open bank", _ref_open),
]


def _case_timing(name, timing):
    if name == "tFAW" and timing.FAW <= 4 * timing.RRD_S:
        # DDR5-4800: tFAW = 4 × tRRD_S, so tRRD_S alone already keeps a fifth ACT out of the window
        return timing.reduced(FAW=4 * timing.RRD_S + 1)
    return timing


@pytest.mark.parametrize("timing", PRESETS, ids=PRESET_IDS)
@pytest.mark.parametrize("name, case", CASES, ids=[f"{n}-{c.__name__.strip('_')}" for n, c in CASES])
def test_constraint(name, case, timing):
    timing = _case_timing(name, timing)
    bad, good = case(timing, False), case(timing, True)
    with pytest.raises(TimingViolation) as info:
        run(timing, bad)
    assert str(info.value).startswith(f"{name}: "), str(info.value)
    assert info.value.constraint == name
    run(timing, good)


def test_message_format():
    t = TIMING_PRESETS["HBM2-2000"]
    with pytest.raises(TimingViolation) as info:
        run(t, [(109, ACT, 1, 2, 3), (118, RD, 1, 2, 0, 0)])
    assert str(info.value) == "tRCD: RD to bg 1 bank 2 in cycle 118, 9 cycles after its ACT (needs 14)"


@pytest.mark.parametrize("timing", PRESETS, ids=PRESET_IDS)
def test_refresh_obligation_from_cycle_zero(timing):
    window = (REFRESH_POSTPONE + 1) * timing.REFI
    chk = TimingChecker(timing)
    chk.check_refresh(window)
    with pytest.raises(TimingViolation, match=r"^tREFI: "):
        chk.check_refresh(window + 1)
    chk.check_refresh(window + 2)  # reported once, then a new window starts


def test_several_violations_first_names_the_exception_and_state_is_kept():
    t = TIMING_PRESETS["HBM2-2000"]
    chk = TimingChecker(t)
    chk.command(B, ACT, 0, 0, 1)
    with pytest.raises(TimingViolation) as info:
        chk.command(B + 1, ACT, 0, 1, 1)            # tRRD_L and tRRD_S
    assert info.value.constraint == "tRRD_L"
    assert "; tRRD_S: " in str(info.value)
    assert chk.bank(0, 1).open and chk.bank(0, 1).act == B + 1
    assert chk.counts[ACT] == 2


def test_pre_to_closed_bank_does_nothing():
    t = TIMING_PRESETS["HBM2-2000"]
    run(t, [(B, PRE, 0, 0), (B + 1, ACT, 0, 0, 1)])
    run(t, [(B, PREA), (B + 1, REF)])


def test_address_out_of_range_and_order():
    t = TIMING_PRESETS["HBM2-2000"]
    chk = TimingChecker(t)
    with pytest.raises(TimingViolation, match=r"^address: ACT in cycle 3 has bg 4"):
        chk.command(3, ACT, 4, 0, 0)
    chk.command(4, ACT, 0, 0, 0)
    with pytest.raises(ValueError, match="increasing cycles"):
        chk.command(4, PRE, 0, 0)


# -- the device, on a stand-in dut ---------------------------------------------------------------
class FakeSignal:
    def __init__(self, width):
        self.width = width
        self.value = None

    def __len__(self):
        return self.width


def fake_dut(timing, ecc, prefix="dfi"):
    beat = beat_bits(timing, ecc)
    widths = {"cmd": 3, "bg": 2, "bank": 2, "row": 15, "col": 4, "wrdata_en": 1, "wrdata": beat,
              "wrdata_mask": words_per_beat(timing), "rddata_valid": 1, "rddata": beat}
    return SimpleNamespace(clk=FakeSignal(1), **{f"{prefix}__{k}": FakeSignal(w) for k, w in widths.items()})


def random_lines(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, size=(n, 8), dtype=np.uint64, endpoint=False)


def unpack_beats(beats, timing, ecc):
    """Bus beats → (words, check bits) of a line."""
    width, wpb = 64 + 8 * ecc, words_per_beat(timing)
    stored = [(b >> (i * width)) & ((1 << width) - 1) for b in beats for i in range(wpb)]
    return [s & (2**64 - 1) for s in stored], [s >> 64 for s in stored]


def test_device_construction_drives_idle_read_port():
    t = TIMING_PRESETS["HBM2-2000"]
    dut = fake_dut(t, False)
    dev = DramDevice(dut, t)
    assert dut.dfi__rddata_valid.value == 0 and dut.dfi__rddata.value == 0
    assert dev.clk is dut.clk
    with pytest.raises(ValueError, match="ECC"):
        DramDevice(fake_dut(t, False), t, ecc=True)
    DramDevice(fake_dut(t, True, prefix="mem"), t, ecc=True, prefix="mem")


@pytest.mark.parametrize("timing", PRESETS, ids=PRESET_IDS)
def test_preload_read_lines_and_beats(timing):
    dev = DramDevice(fake_dut(timing, False), timing)
    lines = random_lines(3 * timing.bank_groups)
    base = join_line_address(timing, 0, 1, 7, 0)
    dev.preload(base, lines)
    assert np.array_equal(dev.read_lines(base, len(lines)), lines)
    assert not dev.read_lines(base + len(lines), 2).any()          # untouched lines read zero
    assert len(dev.storage) == timing.bank_groups
    for k, line in enumerate(lines):
        bg, bank, row, col = split_line_address(timing, base + k)
        beats = dev.line_beats(bg, bank, row, col)
        assert len(beats) == timing.burst_cycles
        assert all(0 <= b < 1 << beat_bits(timing, False) for b in beats)
        words, _ = unpack_beats(beats, timing, False)
        assert words == [int(w) for w in line]
    assert dev.line_beats(0, 0, 0, 0) == [0] * timing.burst_cycles


def test_preload_validation():
    t = TIMING_PRESETS["HBM2-2000"]
    dev = DramDevice(fake_dut(t, False), t)
    with pytest.raises(ValueError, match="shape"):
        dev.preload(0, np.zeros((2, 4), dtype=np.uint64))
    with pytest.raises(ValueError, match="outside"):
        dev.preload((1 << t.line_address_bits) - 1, np.zeros((2, 8), dtype=np.uint64))
    assert not dev.storage                                         # nothing stored by the refused call
    with pytest.raises(ValueError, match="non-negative"):
        dev.preload(0, -np.ones((1, 8), dtype=np.int64))
    dev.preload(3, [2**64 - 1] * 8)                                 # one line as a flat list
    assert (dev.read_lines(3) == np.uint64(2**64 - 1)).all()


@pytest.mark.parametrize("timing", PRESETS, ids=PRESET_IDS)
def test_ecc_storage_check_bits_and_injection(timing):
    ecc = pytest.importorskip("hdl.memctrl.ecc")
    assert ecc.secded_check_bits(0) == 0
    dev = DramDevice(fake_dut(timing, True), timing, ecc=True)
    lines = random_lines(2, seed=7)
    dev.preload(40, lines)
    checks = dev.read_check_bits(40, 2)
    assert checks.dtype == np.uint8
    assert checks.tolist() == [[ecc.secded_check_bits(int(w)) for w in line] for line in lines]
    bg, bank, row, col = split_line_address(timing, 40)
    words, check = unpack_beats(dev.line_beats(bg, bank, row, col), timing, True)
    assert words == [int(w) for w in lines[0]] and check == checks[0].tolist()
    # a single data flip is corrected, a data + check double flip is not
    dev.inject_error(40, 3, [17])
    assert int(dev.read_lines(40)[0, 3]) == int(lines[0, 3]) ^ (1 << 17)
    words, check = unpack_beats(dev.line_beats(bg, bank, row, col), timing, True)
    assert ecc.secded_decode(words[3], check[3]) == (int(lines[0, 3]), "corrected")
    dev.inject_error(41, 5, [2, 66])
    assert int(dev.read_check_bits(41)[0, 5]) == checks[1, 5] ^ 4
    bg, bank, row, col = split_line_address(timing, 41)
    words, check = unpack_beats(dev.line_beats(bg, bank, row, col), timing, True)
    assert ecc.secded_decode(words[5], check[5])[1] == "uncorrectable"
    # untouched rows: zero words with the check bits of zero
    words, check = unpack_beats(dev.line_beats(1, 1, 99, 0), timing, True)
    assert words == [0] * 8 and check == [ecc.secded_check_bits(0)] * 8


def test_inject_error_validation():
    t = TIMING_PRESETS["DDR4-3200"]
    dev = DramDevice(fake_dut(t, False), t)
    with pytest.raises(ValueError, match="no check bits"):
        dev.inject_error(0, 0, [64])
    with pytest.raises(ValueError, match="word_index"):
        dev.inject_error(0, 8, [0])
    with pytest.raises(ValueError, match="no ECC"):
        dev.read_check_bits(0)
    dev.inject_error(5, 7, [0, 63])
    assert int(dev.read_lines(5)[0, 7]) == (1 << 63) | 1


@pytest.mark.parametrize("ecc", [False, True])
def test_store_beat_respects_mask(ecc):
    t = TIMING_PRESETS["HBM2-2000"]                                   # 4 words per beat, 2 beats
    dev = DramDevice(fake_dut(t, ecc), t, ecc=ecc)
    width = 64 + 8 * ecc
    value = sum(((0x1111 * (i + 1)) | ((i + 1) << 64 if ecc else 0)) << (i * width) for i in range(4))
    dev.store_beat(0, 0, 0, 3, 1, value, 0b0101)
    stored = dev.storage[(0, 0, 0)][3]
    assert stored.tolist() == [0, 0, 0, 0, 0x1111, 0, 0x3333, 0]
    if ecc:
        assert dev.check_storage[(0, 0, 0)][3].tolist() == [0, 0, 0, 0, 1, 0, 3, 0]


def test_device_write_then_read_round_trip():
    t = TIMING_PRESETS["HBM2-2000"]
    dev = DramDevice(fake_dut(t, False), t, log=True)
    line = random_lines(1, seed=3)[0]
    packed = [sum(int(w) << (64 * i) for i, w in enumerate(line[j * 4:(j + 1) * 4])) for j in range(2)]
    act, wr = 5, 5 + t.RCD
    rd = wr + t.write_to_read_l
    rd2 = rd + t.ccd_l
    cycle_cmds = {act: (ACT, 2, 1, 33, 0), wr: (WR, 2, 1, 0, 9), rd: (RD, 2, 1, 0, 9), rd2: (RD, 2, 1, 0, 10)}
    wr_beats = {wr + t.CWL + j: packed[j] for j in range(2)}
    reads = {}
    for cycle in range(1, rd2 + t.CL + 4):
        dev.cycle = cycle
        beat = dev.pop_read_beat(cycle)
        if beat is not None:
            reads[cycle] = beat
        if cycle in cycle_cmds:
            dev.apply_command(cycle, *cycle_cmds[cycle])
        if cycle in wr_beats:
            dev.apply_wrdata(cycle, 1, wr_beats[cycle], 0b1111)
        else:
            dev.apply_wrdata(cycle, 0)
    assert reads == {rd + t.CL: packed[0], rd + t.CL + 1: packed[1], rd2 + t.CL: 0, rd2 + t.CL + 1: 0}
    key = (2, 1, 33)
    assert dev.storage[key][9].tolist() == [int(w) for w in line]
    addr = join_line_address(t, 2, 1, 33, 9)
    assert np.array_equal(dev.read_lines(addr), line[None])
    s = dev.stats()
    assert s["commands"]["ACT"] == 1 and s["reads"] == 2 and s["writes"] == 1 and s["refreshes"] == 0
    assert s["row_hit_rate"] == pytest.approx(2 / 3)
    assert s["first_read_after_act"] == []                            # the WR was first after the ACT
    assert s["hit_read_latency"] == t.CL + t.burst_cycles
    assert s["violations"] == 0
    assert dev.command_log == [(act, ACT, 2, 1, 33, 0), (wr, WR, 2, 1, 33, 9), (rd, RD, 2, 1, 33, 9),
                               (rd2, RD, 2, 1, 33, 10)]


def test_device_first_read_latency():
    t = TIMING_PRESETS["DDR4-3200"]
    dev = DramDevice(fake_dut(t, False), t)
    dev.apply_command(3, ACT, 0, 0, 1)
    dev.apply_command(3 + t.RCD + 2, RD, 0, 0, 0, 0)
    dev.apply_command(3 + t.RCD + 2 + t.ccd_l, RD, 0, 0, 0, 1)
    assert dev.stats()["first_read_after_act"] == [t.RCD + 2 + t.CL + t.burst_cycles]


def test_device_write_beat_violations():
    t = TIMING_PRESETS["HBM2-2000"]
    dev = DramDevice(fake_dut(t, False), t, strict=False)
    dev.apply_command(1, ACT, 0, 0, 1)
    w = 1 + t.RCD
    dev.apply_command(w, WR, 0, 0, 0, 0)
    dev.apply_wrdata(w + t.CWL, 1, 0xAB, 0b1111)
    dev.apply_wrdata(w + t.CWL + 1, 0)                                 # second beat missing
    dev.apply_wrdata(w + t.CWL + 2, 1, 0xCD, 0b1111)                   # beat after the burst
    assert [v.constraint for v in dev.violations] == ["tCWL", "write data outside a WR burst"]
    line = dev.read_lines(join_line_address(t, 0, 0, 1, 0))[0]
    assert line[0] == 0xAB and not line[1:].any()

    strict = DramDevice(fake_dut(t, False), t)
    with pytest.raises(TimingViolation, match="^write data outside a WR burst"):
        strict.apply_wrdata(5, 1, 0, 1)
    with pytest.raises(TimingViolation, match="^RD to closed bank"):
        strict.apply_command(6, RD, 0, 0, 0, 0)


def test_device_lenient_continues_after_timing_violation():
    t = TIMING_PRESETS["HBM2-2000"]
    dev = DramDevice(fake_dut(t, False), t, strict=False)
    dev.preload(join_line_address(t, 0, 0, 4, 2), np.full((1, 8), 7, dtype=np.uint64))
    dev.apply_command(1, ACT, 0, 0, 4)
    dev.apply_command(2, RD, 0, 0, 0, 2)                               # far too early
    assert [v.constraint for v in dev.violations] == ["tRCD"]
    assert dev.pop_read_beat(2 + t.CL) == sum(7 << (64 * i) for i in range(4))
    dev.apply_command(3, ACT, 9, 0, 0)                                 # bad address: no state change
    assert dev.violations[-1].constraint == "address"
    dev.cycle = (REFRESH_POSTPONE + 1) * t.REFI + 1
    dev.check_refresh()
    assert dev.violations[-1].constraint == "tREFI"
