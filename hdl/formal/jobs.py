"""The property jobs: one line each on what a pass guarantees."""

from __future__ import annotations

from .agcu import AgcuSegmentHarness, formal_agcu_params
from .job import FormalJob
from .launch import LaunchCrcHarness
from .memctrl import DfiTimingHarness, formal_timing, refresh_timing
from .network import SwitchCreditHarness, SwitchOrderHarness, formal_fabric
from .pmu_buffers import PmuBufferHarness, formal_pmu_params
from .streams import FifoOrderHarness, fifo_rules_harness, register_harness
from .units import ConfigLoaderHarness, UnitStreamRulesHarness, small_pcu, tiny_pmu


def _pmu_image() -> list[int]:
    """A PMU program for the cover: write four vectors, read them back."""
    from ..counters import Counter
    from ..pmu import AddressProgram, PmuConfig, PmuParams

    program = AddressProgram([Counter(0, 16, 4)])
    return PmuConfig(write=program, read=program).encode(PmuParams("tiny"))

def _agcu(counters: int) -> AgcuSegmentHarness:
    return AgcuSegmentHarness(formal_agcu_params(counters))


def _memctrl(rules, banks_per_group: int = 1, timing=None) -> DfiTimingHarness:
    t = timing or formal_timing()
    return DfiTimingHarness(t.reduced(banks_per_group=banks_per_group), rules=rules)


def _launch_units() -> LaunchCrcHarness:
    """Three addresses (address 1 without an endpoint), one-word units, images of at most 5 words whose
    non-CRC words vary in bits 17..16 and 1..0 (addresses 0..3; a unit header 0x00010001 fits; the CRC
    words are free)."""
    return LaunchCrcHarness(units=True, record_contract=True, max_words=5, word_mask=0x00030003)


def _launch_abort() -> LaunchCrcHarness:
    """As :func:`_launch_units`, checking what follows an ABORT."""
    return LaunchCrcHarness(units=True, record_contract=True, max_words=5, word_mask=0x00030003,
                            checks=("abort",))


def _launch_frames() -> LaunchCrcHarness:
    """Endpoints played by the solver; images of at most 4 words whose non-CRC words vary in bits 17..16
    (address 0..3, address 1 and 3 without an endpoint) and 1..0 (record length); CRC words free."""
    return LaunchCrcHarness(max_words=4, word_mask=0x00030003)


PCU_IN = ("cfg", "vin0", "vin1", "sin0", "sin1")
PMU_IN = ("cfg", "vin", "sin")
#: bound of pmu_buffers (steps 0..25): the 12-word image is in at step 14, the first write reaches the banks
#: at step 19, the first read at step 24, the read of the second buffer at 25 (pmu_buffer_covers)
PMU_BUFFERS_DEPTH = 26
#: ... and the writer's return to the first buffer after the reader left it at step 28
PMU_BUFFERS_DEEP = 29
#: bound of pmu_buffer_lap_covers: with 3 buffers and non-zero offsets the reader reads the last buffer of the
#: second lap (run 5) at step 34, the writer starts the third lap (run 6, buffer 0 again) at step 36
PMU_BUFFER_LAPS = 37


def _pmu_laps(**options) -> PmuBufferHarness:
    """The N-buffering harness on a PMU of up to 3 buffers with any address offsets and ALU ops."""
    return PmuBufferHarness(formal_pmu_params(3), fixed_address=False, fixed_alu=False, **options)


__all__ = ["JOBS", "job_names"]

JOBS: list[FormalJob] = [
    FormalJob("fifo_stream_rules", "a StreamFifo's output keeps valid and payload until taken, whatever the "
              "(rule-abiding) producer and consumer do", lambda: fifo_rules_harness(4, 8), "prove", 4),
    FormalJob("register_stream_rules", "a StreamRegister's output keeps valid and payload until taken",
              lambda: register_harness(8), "prove", 4),
    FormalJob("pcu_stream_rules", "a PCU's vector and scalar outputs keep the stream rules for every "
              "program and every rule-abiding environment (2 lanes, 2 stages, MAC array)",
              lambda: UnitStreamRulesHarness(small_pcu, PCU_IN, ("vout", "sout"), ("start", "cfg_clear")),
              "prove", 3),
    FormalJob("pmu_stream_rules", "a PMU's vector and scalar outputs keep the stream rules for every program "
              "and every rule-abiding environment (tiny preset)",
              lambda: UnitStreamRulesHarness(tiny_pmu, PMU_IN, ("vout", "sout"), ("start", "cfg_clear")),
              "prove", 3,
              map_memories=False),
    FormalJob("pcu_covers", "the PCU rules are not vacuous: some program is loaded and a vector output is "
              "taken after a stall", lambda: UnitStreamRulesHarness(small_pcu, PCU_IN, ("vout", "sout"),
                                                                    ("start",)), "cover", 16, slow=True),
    FormalJob("pmu_covers", "the PMU harness reaches a configured PMU (a program that writes four vectors "
              "and reads them back is loaded); an output-transfer cover needs > 40 cycles and is not run yet",
              lambda: UnitStreamRulesHarness(tiny_pmu, PMU_IN, ("vout", "sout"), ("start",), _pmu_image(),
                                             output_cover=False),
              "cover", 26, map_memories=False, slow=True),
    FormalJob("pmu_buffers", "PMU N-buffering: with both sides enabled, a read reaches the banks only in a "
              "buffer the writer has finished and a write only in a buffer the reader has left (or never "
              "used), each in the buffer of its run (run r: buffer r mod buffers); never more full buffers "
              "than buffers (any program the PMU takes, any environment; 2 lanes, up to 2 buffers)",
              lambda: PmuBufferHarness(), "bmc", PMU_BUFFERS_DEPTH, map_memories=False,
              flatten=True, slow=True),
    FormalJob("pmu_buffers_deep", "as pmu_buffers, bounded to 29 cycles: also the writer's return to a "
              "buffer the reader has left (this job found issue 27: buffers above max_buffers were taken)",
              lambda: PmuBufferHarness(), "bmc", PMU_BUFFERS_DEEP,
              map_memories=False, flatten=True),
    FormalJob("pmu_buffer_covers", "the N-buffering properties are not vacuous: a written buffer is read, "
              "the reader moves on to the second buffer, the writer comes back to a buffer the reader left",
              lambda: PmuBufferHarness(), "cover", PMU_BUFFERS_DEEP, map_memories=False, flatten=True,
              slow=True),
    FormalJob("pmu_buffers_proof", "the pmu_buffers properties in every reachable state, every run of every "
              "lap (k-induction with invariants tying the handover counters, rings and pipelines to the "
              "shadow; 3 buffers, any address offsets and ALU ops, any program and environment)",
              lambda: _pmu_laps(invariants=True), "prove", 4, map_memories=False, flatten=True),
    FormalJob("pmu_buffer_lap_covers", "pmu_buffers_proof reaches deep runs: with 3 buffers and non-zero "
              "address offsets the reader reads the last buffer of the second lap and the writer starts "
              "the third", lambda: _pmu_laps(invariants=True, lap_covers=True), "cover", PMU_BUFFER_LAPS,
              map_memories=False, flatten=True, slow=True),
    FormalJob("config_refused", "a configuration loader that never sees a valid header never configures "
              "its unit and never changes its register", lambda: ConfigLoaderHarness(True), "prove", 4),
    FormalJob("config_covers", "a valid image does configure the loader (the refusal is not vacuous)",
              lambda: ConfigLoaderHarness(False), "cover", 6),
    FormalJob("fifo_order", "a StreamFifo loses, duplicates and reorders nothing: the n-th payload out is "
              "the n-th in, and its level counts what is inside", lambda: FifoOrderHarness(4, 1), "bmc", 12),
    FormalJob("fifo_covers", "the FIFO properties are not vacuous: the FIFO fills, and a tracked payload "
              "comes out", lambda: FifoOrderHarness(4, 1), "cover", 12),
    FormalJob("fifo_order_deep", "as fifo_order, bounded to 16 cycles", lambda: FifoOrderHarness(4, 1), "bmc",
              16),
    FormalJob("register_covers", "a StreamRegister transfers, also right after a stall",
              lambda: register_harness(8), "cover", 12),
    FormalJob("switch_credits", "a switch never sends on a link without a credit (a full receiver never "
              "receives), never holds more credits than the receiver's depth, and every unit pin it drives "
              "keeps the stream rules, for every configuration and rule-abiding neighbour (2 x 2 fabric, "
              "switch (0, 0))",
              lambda: SwitchCreditHarness(), "bmc", 10),
    FormalJob("switch_credits_deep", "as switch_credits, bounded to 16 cycles", lambda: SwitchCreditHarness(),
              "bmc", 16, slow=True),
    FormalJob("switch_credits_2tracks", "as switch_credits with two tracks per vector link (the `small` "
              "fabric's): each track keeps its own credits",
              lambda: SwitchCreditHarness(formal_fabric(vector_tracks=2)), "bmc", 10),
    FormalJob("switch_covers", "the switch properties are not vacuous: a link's receiver fills to its last "
              "free entry, and one input is multicast to a link and a unit pin at once",
              lambda: SwitchCreditHarness(), "cover", 10),
    FormalJob("switch_order", "a configured switch loses, duplicates, corrupts and reorders nothing: the "
              "n-th payload (symbolic n) out of every output is the n-th into the input it selects, for "
              "every taker of a multicast; an unrouted output stays silent (any routes, vector fabric, "
              "switch (0, 0), 2-entry FIFOs)", lambda: SwitchOrderHarness(), "bmc", 9),
    FormalJob("switch_order_deep", "as switch_order, bounded to 10 cycles", lambda: SwitchOrderHarness(),
              "bmc", 10, slow=True),
    FormalJob("switch_order_2tracks", "as switch_order with two tracks per vector link: routes on the two "
              "tracks of one link keep their own order",
              lambda: SwitchOrderHarness(formal_fabric(2, vector_tracks=2)), "bmc", 9),
    FormalJob("switch_order_covers", "the order properties are not vacuous: the second payload of one input "
              "is multicast to a link and a unit pin", lambda: SwitchOrderHarness(), "cover", 14),
    FormalJob("agcu_segments", "an AGCU (1 counter) never offers the memory port a request outside the "
              "segment its program names or against the segment's permission; a run out of range, not "
              "permitted or hanging issues nothing and ends with the fault flag; a legal run does not fault",
              lambda: _agcu(1), "bmc", 15),
    FormalJob("agcu_segments_2ctr", "as agcu_segments, with a 2-counter nest", lambda: _agcu(2), "bmc", 15,
              slow=True),
    FormalJob("agcu_covers", "the AGCU properties are not vacuous: a store and a load (to a segment's last "
              "line) reach memory, and an out-of-range run faults", lambda: _agcu(1), "cover", 30),
    FormalJob("memctrl_timing", "a DRAM channel controller (2 bank groups x 1 bank) never puts a command on "
              "the bus before tRCD, tRAS, tRP, tRRD_S/L, tFAW, tCCD_S/L, tWTR_S/L, RD-to-WR, tRTP, tWR or "
              "tRFC allow, and drives write data exactly CWL after each WR (k-induction: all reachable "
              "states)", lambda: _memctrl(("spacing", "data")), "prove", 10),
    FormalJob("memctrl_timing_4banks", "as memctrl_timing with 2 bank groups x 2 banks",
              lambda: _memctrl(("spacing", "data"), banks_per_group=2), "prove", 13, slow=True),
    FormalJob("memctrl_refresh", "the controller refreshes at most tREFI + the bank-closing slack after the "
              "last REF, sends ACT only to a closed bank, RD/WR/PRE only to an open one, REF only with "
              "every bank closed (tREFI 6, so several intervals fit)",
              lambda: _memctrl(("state", "refresh"), timing=refresh_timing()), "bmc", 24),
    FormalJob("memctrl_all", "every memctrl rule together (spacing, bank state, refresh, write data)",
              lambda: _memctrl(("spacing", "state", "refresh", "data")), "bmc", 20, slow=True),
    FormalJob("memctrl_covers", "the timing rules are not vacuous: a refresh comes due after tREFI and "
              "happens, a RD comes exactly tRCD after its ACT and tWTR_L after a WR, an ACT exactly tRP "
              "after its PRE", lambda: _memctrl(("spacing", "state", "refresh", "data")), "cover", 30,
              slow=True),
    FormalJob("launch_bad_crc", "after a kernel image whose CRC is wrong no unit leaves the unconfigured "
              "state until the next LOAD (launch controller + three one-word configuration loaders)",
              _launch_units, "bmc", 10, slow=True),
    FormalJob("launch_frames", "from a bad CRC word until the next LOAD the launch controller never "
              "reports LOADED and offers no endpoint a word (no held word commits); while an image arrives "
              "an endpoint is offered only the host's current non-final body word of its own record",
              _launch_frames, "bmc", 8, slow=True),
    FormalJob("launch_frames_deep", "as launch_frames, bounded to 10 cycles", _launch_frames, "bmc", 10,
              slow=True),
    FormalJob("launch_covers", "the launch properties are not vacuous: a doomed image is refused with a "
              "CRC error, and a good image loads and configures a unit", _launch_units, "cover", 14,
              slow=True),
    FormalJob("launch_abort", "from an ABORT until the next LOAD the launch controller offers no endpoint a "
              "word and no argument or start token, and no unit stays configured; once it reports ABORTED "
              "it is neither LOADED nor RUNNING (launch controller + three one-word configuration loaders)",
              _launch_abort, "bmc", 10),
    FormalJob("launch_abort_covers", "the ABORT properties are not vacuous: an ABORT of a running kernel "
              "reaches ABORTED", _launch_abort, "cover", 16, slow=True),
]


def job_names() -> list[str]:
    return [job.name for job in JOBS]
