"""PCU images outside the encoder's rules, on Icarus and Verilator: refused, or run safely.

A configuration image is just words: a hand-made or corrupted one reaches the unit whatever
:meth:`PcuConfig.encode` would have said. The images here are packed with
:func:`hdl.config_port.encode_image` from a good program's fields with one field changed.

* A counter nest that never ends (a used counter with stride 0) is refused with ``cfg_error``:
  the run could never stop and the PCU, busy for good, could never be reconfigured.
* An accumulator index counter that runs past the register file (the encoder refuses it) is
  run, safely: an entry past the file reads as +0 and is not written. Before, the index was
  cut to the file's address bits, so it aliased other entries (and, with a file whose size is not a
  power of two, addressed words the file does not have: X on Icarus).
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.config_port import encode_image
from hdl.counters import Counter
from hdl.pcu import Accumulator, PatternComputeUnit, PcuConfig, PcuParams, Stage
from hdl.pcu.config import CONFIG_MAGIC, CONFIG_VERSION, ConfigError
from hdl.presets import get_preset
from sim.pcu import pcu_job, refused_job, run_pcu_jobs
from sim.unit_jobs import make_job, pack_vector, stream_payloads

pytestmark = pytest.mark.cocotb

#: 2 lanes, an accumulator of 6 entries per lane (3 address bits: entries 6 and 7 do not exist)
PARAMS = PcuParams(get_preset("tiny").replace(name="tiny-acc6", lanes=2, stages=2), ops=("mov", "fadd"),
                   tail=False, systolic=False, acc_depth=6)


def raw_image(config: PcuConfig, **counter_changes) -> list[int]:
    """``config``'s image with counter ``k``'s fields updated by ``counter_changes["k"]``, packed
    without the encoder's checks."""
    fields = config.check(PARAMS)
    counters = [dict(c) for c in fields["counter"]]
    for k, change in counter_changes.items():
        counters[int(k.removeprefix("ctr"))].update(change)
    return encode_image(PARAMS.layout, {**fields, "counter": counters}, CONFIG_MAGIC, CONFIG_VERSION)


def run(jobs, simulator, sim_build_dir, waves):
    result = run_pcu_jobs(PatternComputeUnit(PARAMS), jobs, simulator=simulator, build_dir=sim_build_dir,
                          waves=waves)
    assert result.passed, result.summary()
    return result.metrics["programs_match_golden"]


def test_never_ending_counter_is_refused(simulator, sim_build_dir, waves):
    """Stride 0 in the outer counter: ``cfg_error``, no run on ``start``; a good program after."""
    plain = PcuConfig(counters=[Counter(0, 4), Counter(0, 3)], stages=[Stage("fadd", "vin0", "vin1")],
                      auto_start=False)
    with pytest.raises(ValueError, match="stride must be positive"):
        Counter(0, 3, 0)
    rng = np.random.default_rng(3)
    x, y = (rng.integers(0, 64, (12, PARAMS.lanes)).astype(np.float32) for _ in range(2))
    jobs = [refused_job("outer_counter_stride_0", raw_image(plain, ctr1={"stride": 0})),
            refused_job("inner_counter_stride_0", raw_image(plain, ctr0={"stride": 0})),
            pcu_job("good_program_after", plain, PARAMS, vin0=x.view(np.uint32), vin1=y.view(np.uint32),
                    start_token=True, valid_p=0.8, ready_p=0.8)]
    run(jobs, simulator, sim_build_dir, waves)


def test_accumulator_index_past_the_file_reads_zero_and_writes_nothing(simulator, sim_build_dir, waves):
    """A running sum per entry, entry = counter 0 running over 0..9 on a 6-entry file, three blocks
    (counter 1; a reset at block 0). Entries 0..5 accumulate; entries 6..9 are past the file: each
    step's output is its own input (+0 + x), and entries 0..3 are not disturbed by them."""
    entries, blocks = 10, 3
    legal = PcuConfig(counters=[Counter(0, PARAMS.acc_depth), Counter(0, blocks)],
                      stages=[Stage("mov", "vin0")],
                      accumulator=Accumulator("add", index=0, reset=(1,), emit=()))
    with pytest.raises(ConfigError, match="reaches 9, the register file has 6 entries"):
        PcuConfig(counters=[Counter(0, entries), Counter(0, blocks)], stages=legal.stages,
                  accumulator=legal.accumulator).encode(PARAMS)
    rng = np.random.default_rng(27)
    # small integers: every fp32 sum is exact, so the expected values need no rounding model
    x = rng.integers(1, 1000, (blocks, entries, PARAMS.lanes)).astype(np.float32)
    expect = x.copy()
    expect[:, :PARAMS.acc_depth] = np.cumsum(x[:, :PARAMS.acc_depth], axis=0)
    steps = blocks * entries
    flat = x.reshape(steps, PARAMS.lanes).view(np.uint32)
    job = make_job("index_past_the_file", raw_image(legal, ctr0={"stop": entries}),
                   {"vin0": stream_payloads(flat, steps, True)},
                   {"vout": [pack_vector(row) for row in expect.reshape(steps, PARAMS.lanes).view(np.uint32)],
                    "sout": []},
                   tokens={"done": 1}, counts={"steps": steps}, valid_p=0.8, ready_p=0.7, start_token=False,
                   timeout_cycles=2000)
    run([job], simulator, sim_build_dir, waves)
