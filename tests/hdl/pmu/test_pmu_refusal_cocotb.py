"""PMU images the hardware cannot run are refused, on Icarus and Verilator.

:meth:`PmuConfig.encode` refuses such programs, but a configuration image is just words: a
hand-made or corrupted one reaches the unit all the same. Each image here is built from the
fields of a good program with one field changed, packed with :func:`hdl.config_port.encode_image`
(so no encoder check runs), and the bench (:mod:`sim.testbenches.unit_bench`) checks that the PMU
raises ``cfg_error``, stays unconfigured and does not run on a ``start`` token; a good program
afterwards runs as usual (the refusal leaves nothing behind).

Issue 27: the PMU took ``buffers = 3`` on a PMU built for at most 2 (the field holds 0..3). Its
1-bit buffer index never reached 2, so the ring never closed and each write run's base grew past
the scratchpad's buffers; ``buffers = 0`` would have stalled the writer for good.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.config_port import encode_image
from hdl.counters import Counter
from hdl.pmu import AddressProgram, ConfigError, PatternMemoryUnit, PmuConfig, PmuParams
from hdl.pmu.config import CONFIG_MAGIC, CONFIG_VERSION
from sim.pmu import pmu_job, refused_job, run_pmu_jobs

#: a tiny PMU built for double buffering: its 2-bit ``buffers`` field can hold 0..3
PARAMS = PmuParams("tiny", max_buffers=2)
RUNS, PER_RUN = 4, 6


def good_config() -> PmuConfig:
    lanes = PARAMS.lanes
    program = AddressProgram([Counter(0, PER_RUN * lanes, lanes)], runs=RUNS)
    return PmuConfig(write=program, read=program, buffers=2, buffer_words=PER_RUN * lanes, auto_start=False)


def raw_image(**changes) -> list[int]:
    """The good program's image with ``changes`` applied to its register fields (a side's fields
    are merged into that side's), packed without the encoder's checks."""
    fields = good_config().check(PARAMS)
    for name, value in changes.items():
        fields[name] = {**fields[name], **value} if isinstance(value, dict) else value
    return encode_image(PARAMS.layout, fields, CONFIG_MAGIC, CONFIG_VERSION)


def run(jobs, simulator, sim_build_dir, waves):
    result = run_pmu_jobs(PatternMemoryUnit(PARAMS), jobs, simulator=simulator, build_dir=sim_build_dir,
                          waves=waves)
    assert result.passed, result.summary()


def good_job(name: str) -> dict:
    rng = np.random.default_rng(27)
    data = rng.integers(0, 1 << 32, (RUNS * PER_RUN, PARAMS.lanes), dtype=np.uint64).astype(np.uint32)
    return pmu_job(name, good_config(), PARAMS, vin=data, valid_p=0.7, ready_p=0.6, start_token=True)


def test_encoder_refuses_what_the_images_carry():
    """The images below are ones the encoder itself would never make."""
    for buffers in (0, 3):
        with pytest.raises(ConfigError, match=r"buffers must be in \[1, 2\]"):
            PmuConfig(write=good_config().write, read=good_config().read, buffers=buffers,
                      buffer_words=8).encode(PARAMS)
    assert raw_image() == good_config().encode(PARAMS)  # the raw packing is the encoder's packing


@pytest.mark.cocotb
def test_buffer_count_outside_max_buffers_is_refused(simulator, sim_build_dir, waves):
    """Issue 27: ``buffers`` above ``max_buffers`` (3 on a PMU built for 2) and ``buffers = 0`` are
    refused with ``cfg_error``; the PMU does not run on them, and a good program still runs after."""
    jobs = [refused_job("buffers_3_of_max_2", raw_image(buffers=3)),
            refused_job("buffers_0", raw_image(buffers=0)),
            good_job("good_program_after_refusals")]
    run(jobs, simulator, sim_build_dir, waves)


@pytest.mark.cocotb
def test_images_the_pmu_cannot_run_are_refused(simulator, sim_build_dir, waves):
    """Every other rule of :func:`hdl.pmu.unit.refusals`, one broken field per image."""
    lanes, capacity = PARAMS.lanes, PARAMS.capacity
    stuck = {"counter": [{"start": 0, "stop": 8, "stride": 0}] + [{"start": 0, "stop": 1, "stride": 1}] * 2}
    jobs = [
        refused_job("buffer_words_0", raw_image(buffer_words=0)),
        # two buffers of more than half the scratchpad overlap
        refused_job("buffers_overlap", raw_image(buffer_words=capacity // 2 + 1)),
        # bank bits above the address: every word in bank 0, two words per row
        refused_job("bank_shift_past_the_address", raw_image(bank_shift=PARAMS.address_bits - 1)),
        # a stripe inside the bank bits maps two words of a row to one bank
        refused_job("stripe_inside_the_bank_bits", raw_image(stripe_shift=1)),
        # a reader that waits for a fifth write run that never comes
        refused_job("sides_run_unequally", raw_image(read={"runs": RUNS + 1})),
        # 0 runs would run once and leave the run counter wrapped round
        refused_job("zero_runs", raw_image(write={"runs": 0}, read={"runs": 0})),
        refused_job("write_counter_never_ends", raw_image(write=stuck)),
        refused_job("read_counter_never_ends", raw_image(read=stuck)),
        good_job("good_program_after_refusals"),
    ]
    assert (lanes - 1).bit_length() == 2  # the shifts above are chosen for 4 lanes (2 bank bits)
    run(jobs, simulator, sim_build_dir, waves)
