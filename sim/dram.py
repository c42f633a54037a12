"""Behavioural DRAM channel for cocotb: a timing checker and a device on the DFI-like bus.

:class:`TimingChecker` (pure Python) follows the commands of one channel and raises
:class:`TimingViolation` when one breaks a constraint of :class:`~hdl.memctrl.timing.DramTiming`.
:class:`DramDevice` sits on the controller's ``dfi`` port (:mod:`hdl.memctrl.interface`) in a
cocotb test: it feeds every command to a checker, returns read data, stores write data and
counts what it saw.

Cycles
------
A command in cycle *B* issued "at least *t* after" one in cycle *A* needs ``B - A >= t``.
The device numbers cycles from the rising edges it sees after :meth:`DramDevice.start`: cycle
*k* is the interval after the *k*-th one. Following :mod:`sim.cocotb_streams`, it drives the
read beats of cycle *k* just after that edge and samples the command and the write data at the
falling edge inside cycle *k*.

Decisions
---------
* A PRE or PREA that closes no bank does nothing (JEDEC: a NOP), so it starts no tRP.
* The checker checks a command completely and updates its state even when it then raises,
  so a lenient caller (``DramDevice(strict=False)``) can go on; the first broken constraint
  names the exception, later ones follow after ``"; "``.
* tREFI: :meth:`TimingChecker.check_refresh` raises when more than 9 × REFI cycles passed
  since the last REF (cycle 0 before the first). After reporting it restarts the window at
  that cycle, so a lenient device reports a missing refresh once per 9 × REFI cycles.
* Address fields out of range raise a :class:`TimingViolation` named ``"address"``; such a
  command changes no state and moves no data.
* A row hit is a column command that is not the first one after its bank's ACT.
* The device stores what the controller writes, check bits included; it computes check bits
  only in :meth:`DramDevice.preload`. Rows never written read as zero words with the check
  bits of a zero word.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge

from hdl.memctrl.interface import (
    CHECK_BITS,
    LINE_WORDS,
    WORD_BITS,
    Command,
    beat_bits,
    split_line_address,
    stored_word_bits,
    words_per_beat,
)
from hdl.memctrl.timing import DramTiming

__all__ = ["TimingViolation", "TimingChecker", "DramDevice", "start_devices", "stop_devices",
           "REFRESH_POSTPONE"]

#: Refreshes JEDEC lets a controller postpone; the checker allows (1 + this) × REFI between REFs.
REFRESH_POSTPONE = 8

_NEVER = -(1 << 60)
_WORD_MASK = (1 << WORD_BITS) - 1
_CHECK_MASK = (1 << CHECK_BITS) - 1


class TimingViolation(AssertionError):
    """A command (or write beat) the DRAM does not allow; the message starts with the constraint."""

    def __init__(self, message: str):
        super().__init__(message)
        #: The constraint's name (``"tRCD"``, ``"ACT to open bank"``), the message up to its colon.
        self.constraint = message.split(":", 1)[0]


class _Bank:
    __slots__ = ("open", "row", "act", "pre", "rd", "wr", "fresh")

    def __init__(self):
        self.open = False
        self.row = 0            # the open row, or the last one opened
        self.act = _NEVER       # cycles of this bank's last ACT, PRE/PREA, RD, WR
        self.pre = _NEVER
        self.rd = _NEVER
        self.wr = _NEVER
        self.fresh = False      # no column command since the ACT yet


class TimingChecker:
    """Follows the commands of one channel and checks them against ``timing``.

    Attributes
    ----------
    counts : dict[Command, int]
        Commands seen (also those that raised).
    row_hits, row_misses : int
        Column commands to open banks: a miss is the first after the bank's ACT.
    cycle : int
        Cycle of the last command (``-1`` before any).
    last_first_act : int or None
        For the last column command: the cycle of the ACT it was the first column command
        after, or ``None`` when it was a row hit (used by :class:`DramDevice` for latencies).
    refresh_deadline : int
        The last cycle that still meets the refresh obligation.
    """

    def __init__(self, timing: DramTiming):
        if not isinstance(timing, DramTiming):
            raise TypeError(f"timing must be a DramTiming, got {type(timing).__name__}")
        self.timing = t = timing
        self.banks = [_Bank() for _ in range(t.banks)]
        self.counts: dict[Command, int] = {c: 0 for c in Command}
        self.row_hits = 0
        self.row_misses = 0
        self.cycle = -1
        self.last_first_act: int | None = None
        self._acts: deque[int] = deque(maxlen=4)       # the last four ACT cycles
        self._act_any = _NEVER
        self._act_bg = [_NEVER] * t.bank_groups
        self._rd_any = _NEVER
        self._wr_any = _NEVER
        self._rd_bg = [_NEVER] * t.bank_groups
        self._wr_bg = [_NEVER] * t.bank_groups
        self._pre_any = _NEVER
        self._ref = _NEVER
        self._refresh_window = (REFRESH_POSTPONE + 1) * t.REFI
        self.refresh_deadline = self._refresh_window

    # -- queries ---------------------------------------------------------------------------
    @property
    def row_hit_rate(self) -> float:
        """Row hits / column commands to open banks (0.0 before any)."""
        total = self.row_hits + self.row_misses
        return self.row_hits / total if total else 0.0

    def bank(self, bg: int, bank: int) -> _Bank:
        """State of one bank: ``open``, ``row``, ``act``/``pre``/``rd``/``wr`` cycles."""
        return self.banks[bg * self.timing.banks_per_group + bank]

    def open_banks(self) -> list[tuple[int, int, int]]:
        """(bank group, bank, row) of every open bank."""
        bpg = self.timing.banks_per_group
        return [(i // bpg, i % bpg, b.row) for i, b in enumerate(self.banks) if b.open]

    # -- checks ----------------------------------------------------------------------------
    def check_refresh(self, cycle: int) -> None:
        """Raise ``tREFI`` if more than 9 × REFI cycles passed since the last REF (or cycle 0)."""
        if cycle > self.refresh_deadline:
            message = self._refresh_message(cycle)
            self.refresh_deadline = cycle + self._refresh_window
            raise TimingViolation(message)

    def _refresh_message(self, cycle: int) -> str:
        since = self.refresh_deadline - self._refresh_window
        what = f"the REF in cycle {self._ref}" if self._ref == since else f"cycle {since}"
        return (f"tREFI: no REF in the {cycle - since} cycles from {what} to cycle {cycle} "
                f"(at most {REFRESH_POSTPONE + 1} x REFI = {self._refresh_window})")

    def command(self, cycle: int, cmd: Command, bg: int = 0, bank: int = 0, row: int = 0,
                col: int = 0) -> None:
        """Record ``cmd`` issued in ``cycle``; raise :class:`TimingViolation` if it breaks a rule.

        The state is updated even when it raises (except for an address out of range).

        Raises
        ------
        ValueError
            If ``cycle`` is not after the previous command's.
        """
        cmd = Command(cmd)
        if cmd == Command.NOP:
            self.counts[cmd] += 1
            return
        if cycle <= self.cycle:
            raise ValueError(f"{cmd.name} in cycle {cycle}: commands must come in increasing cycles "
                             f"(last one in cycle {self.cycle})")
        self.counts[cmd] += 1
        self._check_address(cycle, cmd, bg, bank, row, col)
        self.cycle = cycle
        errors: list[str] = []
        if cycle > self.refresh_deadline:
            errors_refresh = self._refresh_message(cycle)
            self.refresh_deadline = cycle + self._refresh_window
        else:
            errors_refresh = None
        if cmd == Command.ACT:
            self._act(cycle, bg, bank, row, errors)
        elif cmd == Command.RD or cmd == Command.WR:
            self._column(cycle, cmd, bg, bank, errors)
        elif cmd == Command.PRE:
            self._precharge(cycle, "PRE to", bg, bank, errors)
        elif cmd == Command.PREA:
            bpg = self.timing.banks_per_group
            for i, b in enumerate(self.banks):
                if b.open:
                    self._precharge(cycle, "PREA of", i // bpg, i % bpg, errors)
        elif cmd == Command.REF:
            self._refresh(cycle, errors)
        if errors_refresh:
            errors.append(errors_refresh)
        if errors:
            raise TimingViolation("; ".join(errors))

    def _check_address(self, cycle, cmd, bg, bank, row, col):
        t = self.timing
        limits = {"bg": (bg, t.bank_groups), "bank": (bank, t.banks_per_group)}
        if cmd == Command.ACT:
            limits["row"] = (row, t.rows)
        elif cmd in (Command.RD, Command.WR):
            limits["col"] = (col, t.row_lines)
        elif cmd in (Command.PREA, Command.REF):
            return
        for name, (value, count) in limits.items():
            if not 0 <= value < count:
                raise TimingViolation(f"address: {cmd.name} in cycle {cycle} has {name} {value}, "
                                      f"outside 0..{count - 1}")

    @staticmethod
    def _after(errors, name, what, cycle, prev, need, since):
        if cycle - prev < need:
            errors.append(f"{name}: {what} in cycle {cycle}, {cycle - prev} cycles after {since} "
                          f"(needs {need})")

    def _act(self, cycle, bg, bank, row, errors):
        t = self.timing
        b = self.bank(bg, bank)
        what = f"ACT to bg {bg} bank {bank}"
        if b.open:
            errors.append(f"ACT to open bank: {what} in cycle {cycle} while row {b.row} is open")
        self._after(errors, "tRP", what, cycle, b.pre, t.RP, "its PRE")
        self._after(errors, "tRFC", what, cycle, self._ref, t.RFC, "the REF")
        self._after(errors, "tRRD_L", what, cycle, self._act_bg[bg], t.RRD_L,
                    f"the last ACT in bank group {bg}")
        self._after(errors, "tRRD_S", what, cycle, self._act_any, t.RRD_S, "the last ACT")
        if len(self._acts) == 4:
            self._after(errors, "tFAW", what, cycle, self._acts[0], t.FAW,
                        f"the 4th previous ACT (cycle {self._acts[0]}), a 5th ACT in the window")
        b.open, b.row, b.act, b.fresh = True, row, cycle, True
        self._acts.append(cycle)
        self._act_any = self._act_bg[bg] = cycle

    def _column(self, cycle, cmd, bg, bank, errors):
        t = self.timing
        b = self.bank(bg, bank)
        what = f"{cmd.name} to bg {bg} bank {bank}"
        read = cmd == Command.RD
        if not b.open:
            errors.append(f"{cmd.name} to closed bank: {what} in cycle {cycle}")
            self.last_first_act = None
        else:
            self._after(errors, "tRCD", what, cycle, b.act, t.RCD, "its ACT")
            if b.fresh:
                self.row_misses += 1
                self.last_first_act = b.act
                b.fresh = False
            else:
                self.row_hits += 1
                self.last_first_act = None
        kind_bg, kind_any = (self._rd_bg, self._rd_any) if read else (self._wr_bg, self._wr_any)
        self._after(errors, "tCCD_L", what, cycle, kind_bg[bg], t.ccd_l,
                    f"the last {cmd.name} in bank group {bg}")
        self._after(errors, "tCCD_S", what, cycle, kind_any, t.ccd_s, f"the last {cmd.name}")
        if read:
            self._after(errors, "tWTR_L", what, cycle, self._wr_bg[bg], t.write_to_read_l,
                        f"the last WR in bank group {bg}")
            self._after(errors, "tWTR_S", what, cycle, self._wr_any, t.write_to_read_s, "the last WR")
            b.rd = self._rd_any = self._rd_bg[bg] = cycle
        else:
            self._after(errors, "tRTW", what, cycle, self._rd_any, t.read_to_write, "the last RD")
            b.wr = self._wr_any = self._wr_bg[bg] = cycle

    def _precharge(self, cycle, verb, bg, bank, errors):
        t = self.timing
        b = self.bank(bg, bank)
        if not b.open:
            return
        what = f"{verb} bg {bg} bank {bank}"
        self._after(errors, "tRAS", what, cycle, b.act, t.RAS, "its ACT")
        self._after(errors, "tRTP", what, cycle, b.rd, t.RTP, "its last RD")
        self._after(errors, "tWR", what, cycle, b.wr, t.write_to_precharge, "its last WR")
        b.open = False
        b.pre = self._pre_any = cycle

    def _refresh(self, cycle, errors):
        t = self.timing
        opened = self.open_banks()
        if opened:
            listed = ", ".join(f"bg {g} bank {k} (row {r})" for g, k, r in opened)
            errors.append(f"REF with open bank: REF in cycle {cycle} while {listed} open")
        self._after(errors, "tRP", "REF", cycle, self._pre_any, t.RP, "the last PRE")
        self._after(errors, "tRFC", "REF", cycle, self._ref, t.RFC, "the previous REF")
        self._ref = cycle
        self.refresh_deadline = cycle + self._refresh_window


def _handle_width(handle) -> int | None:
    try:
        return len(handle)
    except TypeError:
        return None


def _reader(handle):
    """A function reading ``handle`` as an unsigned int (1-bit handles hold a ``Logic``)."""
    from cocotb.handle import LogicObject

    if isinstance(handle, LogicObject):
        return lambda: int(handle.value)
    return lambda: handle.value.to_unsigned()


class DramDevice:
    """A DRAM channel on the DFI-like port ``prefix`` of ``dut`` (a cocotb device model).

    Parameters
    ----------
    dut : cocotb handle
        The toplevel; it must have ``{prefix}__cmd``, ``__bg``, ``__bank``, ``__row``, ``__col``,
        ``__wrdata_en``, ``__wrdata``, ``__wrdata_mask`` (read) and ``__rddata_valid``,
        ``__rddata`` (driven).
    timing : DramTiming
        The channel's timing and organisation.
    ecc : bool
        Stored words carry 8 check bits (bits 64–71 of each word on the bus).
    clk : cocotb handle, optional
        The command clock (default ``dut.clk``).
    strict : bool
        Raise every :class:`TimingViolation` at once (inside the device's coroutine, failing the
        cocotb test); ``False`` only records them in :attr:`violations` (and logs them).
    log : bool
        Keep :attr:`command_log`.

    Attributes
    ----------
    checker : TimingChecker
    violations : list[TimingViolation]
        Every violation seen (also in strict mode, before raising).
    command_log : list of (cycle, Command, bg, bank, row, col)
        With ``log=True``: each command as sampled; for RD/WR ``row`` is the bank's open row.
    first_read_after_act : list[int]
        Per RD that was the first column command after its bank's ACT: cycles from that ACT
        to one past the last read beat (``RD - ACT + CL + burst_cycles``).
    hit_read_latency : int
        Cycles from a RD to one past its last beat, ``CL + burst_cycles`` (every RD; the
        latency of a row hit).
    storage, check_storage : dict[(bg, bank, row), np.ndarray]
        Rows written so far: (row_lines, 8) uint64 data and (ECC) uint8 check bits.
    cycle : int
        The current cycle.
    """

    def __init__(self, dut, timing: DramTiming, *, prefix: str = "dfi", ecc: bool = False, clk=None,
                 name: str = "dram", strict: bool = True, log: bool = False):
        self.timing = timing
        self.ecc = bool(ecc)
        self.name = name
        self.strict = strict
        self.checker = TimingChecker(timing)
        self._logger = logging.getLogger(f"cocotb.{name}")
        self.command_log: list[tuple[int, Command, int, int, int, int]] | None = [] if log else None
        self.violations: list[TimingViolation] = []
        self.first_read_after_act: list[int] = []
        self.hit_read_latency = timing.CL + timing.burst_cycles
        self.storage: dict[tuple[int, int, int], np.ndarray] = {}
        self.check_storage: dict[tuple[int, int, int], np.ndarray] = {}
        self.cycle = 0
        self._wpb = words_per_beat(timing)
        self._word_bits = stored_word_bits(self.ecc)
        self._zero_check_value: int | None = None
        self._zero_line_beats: list[int] | None = None
        self._rd_beats: dict[int, int] = {}                     # cycle → beat to drive
        self._wr_beats: dict[int, tuple] = {}                   # cycle → (bg, bank, row, col, j, WR cycle)
        self._task = None

        self.dut = dut
        self.clk = clk if clk is not None else dut.clk
        sig = {m: getattr(dut, f"{prefix}__{m}") for m in (
            "cmd", "bg", "bank", "row", "col", "wrdata_en", "wrdata", "wrdata_mask", "rddata_valid",
            "rddata")}
        self._sig = sig
        expected = beat_bits(timing, self.ecc)
        for member in ("wrdata", "rddata"):
            width = _handle_width(sig[member])
            if width is not None and width != expected:
                raise ValueError(f"{prefix}__{member} has {width} bits; a {timing.name} beat "
                                 f"{'with' if self.ecc else 'without'} ECC has {expected}")
        sig["rddata_valid"].value = 0
        sig["rddata"].value = 0

    # -- storage -----------------------------------------------------------------------------
    def _zero_check(self) -> int:
        """Check bits of a zero word (what rows never written hold)."""
        if self._zero_check_value is None:
            from hdl.memctrl.ecc import secded_check_bits

            self._zero_check_value = int(secded_check_bits(0))
        return self._zero_check_value

    def _row(self, key: tuple[int, int, int]) -> np.ndarray:
        """The data array of a row, created (zero) on first use."""
        data = self.storage.get(key)
        if data is None:
            data = self.storage[key] = np.zeros((self.timing.row_lines, LINE_WORDS), dtype=np.uint64)
            if self.ecc:
                self.check_storage[key] = np.full((self.timing.row_lines, LINE_WORDS), self._zero_check(),
                                                  dtype=np.uint8)
        return data

    def _line(self, line_addr: int) -> tuple[tuple[int, int, int], int]:
        bg, bank, row, col = split_line_address(self.timing, line_addr)
        return (bg, bank, row), col

    def preload(self, line_addr: int, words) -> None:
        """Store lines ``line_addr``, ``line_addr + 1`` … (channel line addresses).

        ``words`` has shape (n, 8) (or (8,) for one line), non-negative 64-bit integers;
        with ECC their check bits are computed (:func:`hdl.memctrl.ecc.secded_check_bits`).
        """
        array = np.asarray(words)
        if array.dtype == object:
            array = np.array(words, dtype=np.uint64)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != LINE_WORDS:
            raise ValueError(f"preload needs words of shape (n, {LINE_WORDS}), got {np.shape(words)}")
        if array.dtype.kind not in "ui":
            raise TypeError(f"preload needs integer words, got dtype {array.dtype}")
        if array.dtype.kind == "i" and (array < 0).any():
            raise ValueError("preload words must be non-negative")
        array = array.astype(np.uint64)
        if len(array):  # both ends inside the channel before anything is stored
            split_line_address(self.timing, line_addr)
            split_line_address(self.timing, line_addr + len(array) - 1)
        if self.ecc:
            from hdl.memctrl.ecc import secded_check_bits
        for i, line in enumerate(array):
            key, col = self._line(line_addr + i)
            self._row(key)[col] = line
            if self.ecc:
                self.check_storage[key][col] = [int(secded_check_bits(int(w))) for w in line]

    def read_lines(self, line_addr: int, n: int = 1) -> np.ndarray:
        """Stored data of ``n`` lines from ``line_addr``: (n, 8) uint64, raw (no correction)."""
        out = np.zeros((n, LINE_WORDS), dtype=np.uint64)
        for i in range(n):
            key, col = self._line(line_addr + i)
            data = self.storage.get(key)
            if data is not None:
                out[i] = data[col]
        return out

    def read_check_bits(self, line_addr: int, n: int = 1) -> np.ndarray:
        """Stored check bits of ``n`` lines from ``line_addr``: (n, 8) uint8 (ECC only)."""
        if not self.ecc:
            raise ValueError(f"{self.name} has no ECC check bits")
        out = np.full((n, LINE_WORDS), self._zero_check(), dtype=np.uint8)
        for i in range(n):
            key, col = self._line(line_addr + i)
            check = self.check_storage.get(key)
            if check is not None:
                out[i] = check[col]
        return out

    def inject_error(self, line_addr: int, word_index: int, bits: Sequence[int]) -> None:
        """Flip stored bits of word ``word_index`` of a line: 0–63 data, 64–71 check bits (ECC)."""
        if not 0 <= word_index < LINE_WORDS:
            raise ValueError(f"word_index must be in 0..{LINE_WORDS - 1}, got {word_index}")
        limit = self._word_bits
        bits = [int(b) for b in bits]
        for b in bits:
            if not 0 <= b < limit:
                raise ValueError(f"bit {b} outside a stored word (0..{limit - 1}"
                                 f"{'' if self.ecc else '; no check bits without ECC'})")
        key, col = self._line(line_addr)
        data = self._row(key)
        for b in bits:
            if b < WORD_BITS:
                data[col, word_index] ^= np.uint64(1 << b)
            else:
                self.check_storage[key][col, word_index] ^= np.uint8(1 << (b - WORD_BITS))

    # -- beat packing --------------------------------------------------------------------------
    def line_beats(self, bg: int, bank: int, row: int, col: int) -> list[int]:
        """The ``burst_cycles`` bus beats of a stored line (word 0 of each beat in the LSBs)."""
        key = (bg, bank, row)
        data = self.storage.get(key)
        if data is None:
            if self._zero_line_beats is None:
                word = self._zero_check() << WORD_BITS if self.ecc else 0
                beat = sum(word << (i * self._word_bits) for i in range(self._wpb))
                self._zero_line_beats = [beat] * self.timing.burst_cycles
            return list(self._zero_line_beats)
        words = data[col].tolist()
        if self.ecc:
            for i, c in enumerate(self.check_storage[key][col].tolist()):
                words[i] |= c << WORD_BITS
        wpb, width = self._wpb, self._word_bits
        beats = []
        for j in range(self.timing.burst_cycles):
            value = 0
            for i, w in enumerate(words[j * wpb:(j + 1) * wpb]):
                value |= w << (i * width)
            beats.append(value)
        return beats

    def store_beat(self, bg: int, bank: int, row: int, col: int, beat: int, value: int, mask: int) -> None:
        """Write beat ``beat`` of a line from a bus value; word ``i`` only if mask bit ``i`` is set."""
        key = (bg, bank, row)
        data = self._row(key)
        check = self.check_storage.get(key)
        width = self._word_bits
        base = beat * self._wpb
        for i in range(self._wpb):
            if mask >> i & 1:
                word = value >> (i * width)
                data[col, base + i] = word & _WORD_MASK
                if check is not None:
                    check[col, base + i] = (word >> WORD_BITS) & _CHECK_MASK

    # -- per-cycle behaviour (pure Python; the coroutine calls these) ----------------------------
    def _violation(self, exc: TimingViolation) -> None:
        self.violations.append(exc)
        self._logger.error("%s: %s", self.name, exc)
        if self.strict:
            raise exc

    def apply_command(self, cycle: int, cmd: int, bg: int = 0, bank: int = 0, row: int = 0,
                      col: int = 0) -> None:
        """Process a command sampled in ``cycle``: check it, schedule read beats / expect write beats."""
        cmd = Command(cmd)
        chk = self.checker
        try:
            chk.command(cycle, cmd, bg, bank, row, col)
        except TimingViolation as exc:
            self._violation(exc)
            if exc.constraint == "address":
                return
        t = self.timing
        if cmd == Command.RD or cmd == Command.WR:
            row = chk.banks[bg * t.banks_per_group + bank].row
        if self.command_log is not None:
            self.command_log.append((cycle, cmd, bg, bank, row, col))
        if cmd == Command.RD:
            start = cycle + t.CL
            for j, beat in enumerate(self.line_beats(bg, bank, row, col)):
                self._rd_beats[start + j] = beat
            if chk.last_first_act is not None:
                self.first_read_after_act.append(cycle - chk.last_first_act + self.hit_read_latency)
        elif cmd == Command.WR:
            start = cycle + t.CWL
            for j in range(t.burst_cycles):
                self._wr_beats[start + j] = (bg, bank, row, col, j, cycle)

    def apply_wrdata(self, cycle: int, en: int, data: int = 0, mask: int = 0) -> None:
        """Process the write-data signals sampled in ``cycle`` (call every cycle while a WR is pending)."""
        expected = self._wr_beats.pop(cycle, None) if self._wr_beats else None
        if expected is None:
            if en:
                self._violation(TimingViolation(
                    f"write data outside a WR burst: wrdata_en high in cycle {cycle}, no WR beat due"))
            return
        bg, bank, row, col, j, wr_cycle = expected
        if not en:
            self._violation(TimingViolation(
                f"tCWL: no write data in cycle {cycle} for beat {j} of the WR to bg {bg} bank {bank} "
                f"in cycle {wr_cycle} (CWL {self.timing.CWL})"))
            return
        self.store_beat(bg, bank, row, col, j, data, mask)

    def pop_read_beat(self, cycle: int) -> int | None:
        """The read beat to drive in ``cycle`` (``None``: rddata_valid low)."""
        return self._rd_beats.pop(cycle, None) if self._rd_beats else None

    def check_refresh(self) -> None:
        """The refresh obligation at the current cycle (call at the end of a test)."""
        try:
            self.checker.check_refresh(self.cycle)
        except TimingViolation as exc:
            self._violation(exc)

    # -- cocotb --------------------------------------------------------------------------------
    def start(self):
        """Start the device's coroutine (``cocotb.start_soon``); return its task. Several devices on
        one clock are cheaper served together: :func:`start_devices`."""
        return start_devices([self])

    def _io(self) -> _DeviceIO:
        """What the per-cycle loop of :func:`start_devices` needs of this device."""
        return _DeviceIO(self)

    # -- results -------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts and latencies for reports (JSON-friendly)."""
        chk = self.checker
        return {
            "commands": {c.name: chk.counts[c] for c in Command if c != Command.NOP},
            "reads": chk.counts[Command.RD],
            "writes": chk.counts[Command.WR],
            "refreshes": chk.counts[Command.REF],
            "row_hits": chk.row_hits,
            "row_misses": chk.row_misses,
            "row_hit_rate": chk.row_hit_rate,
            "first_read_after_act": list(self.first_read_after_act),
            "hit_read_latency": self.hit_read_latency,
            "cycles": self.cycle,
            "violations": len(self.violations),
        }


class _DeviceIO:
    """A device's signal readers and read-data handles for the loop of :func:`start_devices`."""

    __slots__ = ("device", "cmd", "en", "bg", "bank", "row", "col", "data", "mask", "valid_h", "data_h",
                 "driving")

    def __init__(self, device: DramDevice):
        sig = device._sig
        self.device = device
        self.cmd, self.en = _reader(sig["cmd"]), _reader(sig["wrdata_en"])
        self.bg, self.bank = _reader(sig["bg"]), _reader(sig["bank"])
        self.row, self.col = _reader(sig["row"]), _reader(sig["col"])
        self.data, self.mask = _reader(sig["wrdata"]), _reader(sig["wrdata_mask"])
        self.valid_h, self.data_h = sig["rddata_valid"], sig["rddata"]
        self.driving = False              # rddata_valid is high


def start_devices(devices: Sequence[DramDevice]):
    """Serve ``devices`` (all on one clock) from one coroutine; return its task (also each device's
    ``_task``; cancel it once). Each cycle the coroutine wakes twice for all of them, not twice per
    device (on the demo FFN of ``small``, 8 channels, no speed difference was measurable).

    Per device and cycle, as a DRAM does: on the rising edge, drive the read beat due in this cycle
    (``rddata_valid`` low when none); on the falling edge, sample the command and write-data signals
    (:meth:`DramDevice.apply_command`, :meth:`DramDevice.apply_wrdata`) and check the refresh deadline.
    """
    devices = list(devices)
    if not devices:
        raise ValueError("start_devices needs at least one device")
    clk = devices[0].clk
    for d in devices:
        if d._task is not None:
            raise RuntimeError(f"{d.name} already started")
        if d.clk is not clk:
            raise ValueError(f"{d.name} is on another clock than {devices[0].name}; start them apart")
    task = cocotb.start_soon(_serve(devices))
    for d in devices:
        d._task = task
    return task


def stop_devices(devices: Sequence[DramDevice]) -> None:
    """Cancel the coroutines serving ``devices`` (each once, however many devices it serves)."""
    for task in {id(d._task): d._task for d in devices if d._task is not None}.values():
        task.cancel()


async def _serve(devices):
    rising, falling = RisingEdge(devices[0].clk), FallingEdge(devices[0].clk)
    ios = [d._io() for d in devices]
    cycle = devices[0].cycle
    while True:
        await rising
        cycle += 1
        for io in ios:
            device = io.device
            device.cycle = cycle
            rd_beats = device._rd_beats
            if rd_beats:
                beat = rd_beats.pop(cycle, None)
                if beat is not None:
                    io.data_h.value = beat
                    if not io.driving:
                        io.valid_h.value = 1
                        io.driving = True
                elif io.driving:
                    io.valid_h.value = 0
                    io.driving = False
            elif io.driving:
                io.valid_h.value = 0
                io.driving = False
        await falling
        for io in ios:
            device = io.device
            try:
                cmd = io.cmd()
                en = io.en()
            except ValueError:
                sig = device._sig
                device._violation(TimingViolation(
                    f"X on the command bus: cmd {sig['cmd'].value} wrdata_en {sig['wrdata_en'].value} "
                    f"in cycle {cycle}"))
                continue
            if cmd:
                device.apply_command(cycle, cmd, io.bg(), io.bank(), io.row(), io.col())
            elif cycle > device.checker.refresh_deadline:
                device.check_refresh()
            if en or device._wr_beats:
                if en:
                    device.apply_wrdata(cycle, en, io.data(), io.mask())
                else:
                    device.apply_wrdata(cycle, 0)
