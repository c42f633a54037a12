"""The PMU on Icarus and Verilator: access patterns, layouts, interleaving, N-buffering.

Every read result is compared with the flat-memory golden model; bandwidths are
measured from the ``writes``/``reads`` counters (accesses over the cycles from the
first to the last), not assumed.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.counters import Counter
from hdl.pmu import AddressProgram, PatternMemoryUnit, PmuConfig, PmuParams
from sim.pmu import bandwidth, pmu_job, refused_job, run_pmu_jobs
from sim.unit_jobs import unpack_vector

pytestmark = pytest.mark.cocotb


def words(rng, rows, lanes):
    return rng.integers(0, 1 << 32, (rows, lanes), dtype=np.uint64).astype(np.uint32)


def run(dut, jobs, simulator, sim_build_dir, waves):
    result = run_pmu_jobs(dut, jobs, simulator=simulator, build_dir=sim_build_dir, waves=waves)
    assert result.passed, result.summary()
    return result.metrics["programs_match_golden"]


def tile_programs(lanes: int, tiles: int):
    """Write ``tiles`` lanes×lanes tiles by rows; read them back by columns."""
    tile = lanes * lanes
    by_rows = AddressProgram([Counter(0, tile, lanes), Counter(0, tiles * tile, tile)])
    by_columns = AddressProgram([Counter(0, lanes, 1), Counter(0, tiles * tile, tile)], lane_stride=lanes)
    return by_rows, by_columns


def test_access_patterns_and_bandwidth(simulator, sim_build_dir, waves):
    params = PmuParams("tiny")
    lanes = params.lanes
    rng = np.random.default_rng(3)
    data = words(rng, 64, lanes)
    linear = AddressProgram([Counter(0, 64 * lanes, lanes)])
    # 16 x 16 word matrix, row pitch 16: read its 4 x 4 tiles, tile by tile, row by row
    tiled = AddressProgram([Counter(0, 4 * 16, 16), Counter(0, 16, 4), Counter(0, 256, 64)])
    # every other vector, and a gather of every second word
    strided = AddressProgram([Counter(0, 64 * lanes, 2 * lanes)])
    gather = AddressProgram([Counter(0, 32 * lanes, 2 * lanes)], lane_stride=2)
    by_rows, by_columns = tile_programs(lanes, 16)
    jobs = [
        pmu_job("linear", PmuConfig(write=linear, read=linear), params, vin=data),
        pmu_job("tiled_2d", PmuConfig(write=linear, read=tiled), params, vin=data, valid_p=0.8, ready_p=0.7),
        pmu_job("strided", PmuConfig(write=linear, read=strided), params, vin=data, valid_p=0.7, ready_p=0.8),
        pmu_job("gather_stride2", PmuConfig(write=linear, read=gather), params, vin=data),
        # address = (counter >> 2) << 2: each aligned vector read four times (address ALU ops)
        pmu_job("bit_field_alu", PmuConfig(write=linear, read=AddressProgram(
            [Counter(0, 64, 1)], alu=[("ishr", 2), ("ishl", 2)])), params, vin=data),
        pmu_job("transpose_striped", PmuConfig(write=by_rows, read=by_columns, stripe_shift=2), params,
                vin=data),
        pmu_job("transpose_plain", PmuConfig(write=by_rows, read=by_columns), params, vin=data),
        pmu_job("scalar_base_and_out", PmuConfig(write=linear, read=AddressProgram(
            [Counter(0, 8 * lanes, lanes)], runs=1, scalar_offset=True), scalar_out=True), params,
            vin=data, sin=[40], valid_p=0.6, ready_p=0.6),
    ]
    m = run(PatternMemoryUnit(params), jobs, simulator, sim_build_dir, waves)
    for name in ("linear", "transpose_striped"):
        assert bandwidth(m[name], "writes") == 1.0 and bandwidth(m[name], "reads") == 1.0, m[name]
    # a column read of a plain layout puts every lane in one bank: lanes cycles per vector
    plain = bandwidth(m["transpose_plain"], "reads")
    assert plain < 1.0 / lanes + 0.05, m["transpose_plain"]
    assert bandwidth(m["transpose_plain"], "writes") == 1.0


def test_interleave_across_two_pmus(simulator, sim_build_dir, waves):
    """One tensor over two PMUs: both see every write, each keeps its half of the address range
    and reads it back; together they return the whole tensor."""
    params = PmuParams("tiny")
    lanes = params.lanes
    rng = np.random.default_rng(5)
    data = words(rng, 32, lanes)
    half = 16 * lanes
    writes = AddressProgram([Counter(0, 32 * lanes, lanes)])
    jobs = [pmu_job(f"pmu{k}", PmuConfig(write=writes, read=AddressProgram([Counter(0, half, lanes)],
                                                                           offset=k * half),
                                         range_lo=k * half, range_hi=(k + 1) * half), params, vin=data,
                    valid_p=0.8, ready_p=0.8)
            for k in range(2)]
    got = np.array([unpack_vector(p, lanes) for job in jobs for p in job["expect"]["vout"]])
    assert np.array_equal(got, data)  # the golden halves make up the tensor
    # the second PMU's read program at offset 0 reads addresses it does not hold: all dropped
    jobs.append(pmu_job("reads_outside_range", PmuConfig(
        write=writes, read=AddressProgram([Counter(0, half, lanes)]), range_lo=half, range_hi=2 * half),
        params, vin=data))
    assert jobs[-1]["expect"]["vout"] == []
    m = run(PatternMemoryUnit(params), jobs, simulator, sim_build_dir, waves)
    assert m["reads_outside_range"]["reads"] == 16 and m["reads_outside_range"]["outputs"] == {}


@pytest.mark.parametrize("buffers", [1, 2, 3])
def test_n_buffering_producer_consumer(simulator, sim_build_dir, waves, buffers):
    """Write run r fills buffer r mod N while the reader drains earlier buffers, at random
    rates on both sides: every read run returns exactly its write run's data, in order."""
    params = PmuParams("tiny")
    lanes = params.lanes
    rng = np.random.default_rng(10 + buffers)
    runs, per_run = 9, 12
    data = words(rng, runs * per_run, lanes)
    program = AddressProgram([Counter(0, per_run * lanes, lanes)], runs=runs)
    config = PmuConfig(write=program, read=program, buffers=buffers, buffer_words=per_run * lanes)
    jobs = [pmu_job("fast_writer", config, params, vin=data, valid_p=1.0, ready_p=0.3),
            pmu_job("slow_writer", config, params, vin=data, valid_p=0.3, ready_p=1.0),
            pmu_job("both_random", config, params, vin=data, valid_p=0.6, ready_p=0.5)]
    assert np.array_equal(np.array([unpack_vector(p, lanes) for p in jobs[0]["expect"]["vout"]]), data)
    run(PatternMemoryUnit(params), jobs, simulator, sim_build_dir, waves)


def test_corrupted_configuration_is_refused(simulator, sim_build_dir, waves):
    params = PmuParams("tiny")
    rng = np.random.default_rng(1)
    data = words(rng, 8, params.lanes)
    program = AddressProgram([Counter(0, 8 * params.lanes, params.lanes)])
    good = PmuConfig(write=program, read=program, auto_start=False)
    image = good.encode(params)
    jobs = [refused_job("magic_bit_flipped", [image[0] ^ (1 << 17), *image[1:]]),
            pmu_job("good_after_refusal_with_start_token", good, params, vin=data, start_token=True)]
    run(PatternMemoryUnit(params), jobs, simulator, sim_build_dir, waves)
