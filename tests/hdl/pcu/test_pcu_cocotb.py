"""The PCU on Icarus and Verilator: programs against the golden model, with back-pressure.

Every job streams its inputs with random valid stalls and takes both outputs with
random ready stalls (stall probabilities per job); the bench compares every
payload with :func:`hdl.pcu.run_golden` and checks the step count and ``done``.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.counters import Counter
from hdl.numerics.ops import ALU_OPS
from hdl.pcu import Accumulator, PatternComputeUnit, PcuConfig, PcuParams, ScalarInput, Stage, VectorInput
from hdl.presets import get_preset
from sim.pcu import pcu_job, refused_job, run_pcu_jobs

from ..numerics.numerics_vectors import SPECIAL_F32, random_operands

pytestmark = pytest.mark.cocotb


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def bf16(values) -> np.ndarray:
    return (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint32)


def run(dut, jobs, simulator, sim_build_dir, waves):
    result = run_pcu_jobs(dut, jobs, simulator=simulator, build_dir=sim_build_dir, waves=waves)
    assert result.passed, result.summary()
    return result.metrics["programs_match_golden"]


# ---------------------------------------------------------------------------------- SIMD

def test_every_alu_op_in_every_lane(simulator, sim_build_dir, waves):
    """One single-stage program per ALU op, operands from vin0, vin1 and scalar input 0,
    random and special values in every lane."""
    params = PcuParams(get_preset("tiny").replace(name="tiny-1stage", stages=1), ops="all",
                       tail=False, systolic=False)
    lanes, steps = params.lanes, 12
    rng = np.random.default_rng(4)
    jobs = []
    for name, op in ALU_OPS.items():
        sources = ["vin0", "vin1", "scalar0"][: op.arity]
        columns = random_operands(op.operands, steps * lanes, rng)
        if op.operands[0] == "f32":  # special values in the first steps of operand a
            columns[0][: len(SPECIAL_F32)] = SPECIAL_F32
        vin0 = columns[0].reshape(steps, lanes)
        vin1 = columns[1].reshape(steps, lanes) if op.arity > 1 else None
        sin0 = columns[2][:steps] if op.arity > 2 else None
        config = PcuConfig(counters=[Counter(0, steps)], stages=[Stage(name, *sources)],
                           scalars={0: ScalarInput()} if op.arity > 2 else {})
        jobs.append(pcu_job(name, config, params, vin0=vin0, vin1=vin1, sin0=sin0,
                            valid_p=0.7, ready_p=0.6))
    metrics = run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)
    assert set(metrics) == set(ALU_OPS)


def test_stage_chain_sources_shift_and_reductions(simulator, sim_build_dir, waves):
    """Multi-stage programs reading earlier stages, constants, counters, lane ids and held
    scalars; lane rotation; cross-lane sum and max trees."""
    params = PcuParams("tiny", ops=("mov", "fadd", "fmul", "mac", "fmax", "flt", "sel", "i2f", "iadd"),
                       tail=False, systolic=False)
    lanes = params.lanes
    rng = np.random.default_rng(11)
    x = f32(rng.normal(0, 4, (24, lanes)))
    y = f32(rng.normal(0, 4, (24, lanes)))
    s0 = f32(rng.normal(0, 1, 24))
    jobs = [
        pcu_job("scale_shift_sum", PcuConfig(
            counters=[Counter(0, 4), Counter(0, 6)],
            stages=[Stage("fmul", "vin0", "scalar0"), Stage("fadd", "prev", "const0", shift=1),
                    Stage("fmax", "prev", "stage0"), Stage("fadd", "prev", "vin1", shift=3)],
            scalars={0: ScalarInput(pop_level=1)}, constants=[int(f32(0.5))], reduce="add"),
            params, vin0=x, vin1=y, sin0=s0, valid_p=0.6, ready_p=0.5),
        pcu_job("mask_by_counter_max", PcuConfig(
            counters=[Counter(0, 3), Counter(0, 2, 1), Counter(1, 9, 2)],
            stages=[Stage("iadd", "lane", "ctr0"), Stage("i2f", "prev"), Stage("flt", "prev", "vin0"),
                    Stage("sel", "prev", "vin0", "stage1")],
            reduce="max"),
            params, vin0=x, valid_p=0.8, ready_p=0.4),
        pcu_job("scalar_output_only", PcuConfig(
            counters=[Counter(0, 10)],
            stages=[Stage("fmul", "vin0", "vin1")], reduce="add", vector_output=False),
            params, vin0=x, vin1=y, valid_p=0.9, ready_p=0.3),
        pcu_job("mac_bf16_start_token", PcuConfig(
            counters=[Counter(0, 16)], auto_start=False,
            stages=[Stage("mac", "vin0", "vin1", "vin1")]),
            params, vin0=x, vin1=bf16(rng.normal(0, 2, (16, lanes))), valid_p=0.7, ready_p=0.7,
            start_token=True),
    ]
    run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)


def test_tail_chain_gelu_then_bf16(simulator, sim_build_dir, waves):
    """(x·a + b) → GeLU → bf16, and the other tail ops, on a PCU with the per-lane tail."""
    params = PcuParams(get_preset("tiny").replace(name="tiny-tail", lanes=2, stages=2),
                       ops=("mov", "fadd", "fmul"), tail=True, systolic=False)
    rng = np.random.default_rng(2)
    x = f32(rng.normal(0, 3, (40, params.lanes)))
    chain = [Stage("fmul", "vin0", "const0"), Stage("fadd", "prev", "const1")]
    constants = [int(f32(0.75)), int(f32(-0.5))]
    jobs = [pcu_job("gelu_bf16", PcuConfig(counters=[Counter(0, 40)], stages=chain, constants=constants,
                                           tail="gelu", to_bf16=True), params, vin0=x, valid_p=0.7,
                    ready_p=0.6)]
    for tail in ("exp", "recip", "rsqrt", "sigmoid", "silu"):
        jobs.append(pcu_job(tail, PcuConfig(counters=[Counter(0, 8)], stages=chain, constants=constants,
                                            tail=tail), params, vin0=x, valid_p=0.8, ready_p=0.8))
    run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)


def test_accumulator_and_held_vector_inputs(simulator, sim_build_dir, waves):
    """The accumulator stage and held vector inputs, against the golden scan, with stalls:
    a running max per block (one entry updated every cycle), a rescaled sum indexed by a
    counter with a factor held per block (FlashAttention's output update), the ``acc``
    operand source (the previous block's max, one step at a time), an ``add`` emitted at the
    first column, and a plain program on the same PCU (the extra output register)."""
    params = PcuParams("tiny", ops=("mov", "fadd", "fsub", "fmul", "fmax"), tail=True, systolic=False,
                       acc_depth=8)
    lanes = params.lanes
    rng = np.random.default_rng(5)
    x = f32(rng.normal(0, 3, (48, lanes)))
    u = f32(rng.normal(0, 1, (48, lanes)))
    a = f32(rng.uniform(0.05, 1.0, (8, lanes)))
    jobs = [
        pcu_job("running_max_per_block", PcuConfig(
            counters=[Counter(0, 4), Counter(0, 3), Counter(0, 2)],
            stages=[Stage("fmul", "vin0", "const0")], constants=[int(f32(0.125))],
            accumulator=Accumulator("max", reset=(0, 1), emit=(0,))),
            params, vin0=x, valid_p=0.7, ready_p=0.5),
        pcu_job("running_max_full_rate", PcuConfig(
            counters=[Counter(0, 8), Counter(0, 5)], stages=[Stage("mov", "vin0")],
            accumulator=Accumulator("max", reset=(0,), emit=(0,))),
            params, vin0=x),
        pcu_job("rescaled_sum_held_factor", PcuConfig(
            counters=[Counter(0, 6), Counter(0, 4)], vectors={1: VectorInput(pop_level=1)},
            stages=[Stage("mov", "vin1"), Stage("mov", "vin0")],
            accumulator=Accumulator("scale_add", index=0, reset=(1,), emit=(1,), scale=0)),
            params, vin0=u, vin1=a, valid_p=0.6, ready_p=0.7),
        pcu_job("acc_source_previous_max_exp", PcuConfig(
            counters=[Counter(0, 5), Counter(0, 2)],
            stages=[Stage("mov", "vin0"), Stage("fsub", "acc", "vin0")],
            accumulator=Accumulator("max", reset=(0,), value=0, to_vout=False), tail="exp"),
            params, vin0=x, valid_p=0.9, ready_p=0.6),
        pcu_job("add_emitted_at_first_column_bf16", PcuConfig(
            counters=[Counter(0, 3), Counter(0, 4)], stages=[Stage("fmul", "vin0", "vin0")],
            accumulator=Accumulator("add", reset=(1,), emit=(0,), emit_at="first"), to_bf16=True),
            params, vin0=u, valid_p=0.8, ready_p=0.8),
        pcu_job("held_vector_times_stream", PcuConfig(
            counters=[Counter(0, 5), Counter(0, 3)], vectors={1: VectorInput(pop_level=1)},
            stages=[Stage("fmul", "vin0", "vin1")], reduce="add"),
            params, vin0=x, vin1=a, valid_p=0.7, ready_p=0.7),
        pcu_job("plain_program_after", PcuConfig(
            counters=[Counter(0, 12)], stages=[Stage("fadd", "vin0", "vin1")]),
            params, vin0=x, vin1=u, valid_p=0.8, ready_p=0.9),
    ]
    metrics = run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)
    assert metrics["running_max_per_block"]["outputs"]["vout"] == 6
    assert metrics["rescaled_sum_held_factor"]["outputs"]["vout"] == 6
    # an entry updated every cycle: no bubbles, the steps take one cycle each plus the fill
    full = metrics["running_max_full_rate"]
    assert full["cycles"] <= full["steps"] + 4 * params.stage_latency + 12
    # the acc source fires one step at a time: at least a pipeline depth apart
    paced = metrics["acc_source_previous_max_exp"]
    assert paced["cycles"] >= paced["steps"] * (4 * params.stage_latency + 1)
    # PcuParams.acc_read_interval apart from the first step to the last: the roofline's pace
    assert params.acc_read_interval == 4 * params.stage_latency + 2
    assert paced["span"]["steps"] >= (paced["steps"] - 1) * params.acc_read_interval + 1


# ---------------------------------------------------------------------------------- systolic

def gemm_job(name, params, k, tiles, rng, **kw):
    lanes = params.lanes
    a = bf16(rng.normal(0, 1, (k * tiles, lanes)))
    b = bf16(rng.normal(0, 1, (k * tiles, lanes)))
    counters = [Counter(0, k)] + ([Counter(0, tiles)] if tiles > 1 else [])
    return pcu_job(name, PcuConfig(mode="systolic", counters=counters, **kw.pop("config", {})), params,
                   vin0=a, vin1=b, **kw)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_systolic_gemm_tiles(simulator, sim_build_dir, waves, preset):
    """GEMM tiles C = A·B (lanes × stages, sequential fp32 accumulation per output) for several
    K, including K = 1 (tiles closer than the drain allows) and K = 256, with back-pressure."""
    params = PcuParams(preset, ops=("mov",), tail=False, systolic=True)
    rng = np.random.default_rng(7)
    jobs = [
        gemm_job("k1_x6", params, 1, 6, rng, valid_p=1.0, ready_p=1.0),
        gemm_job("k3_x4_stalls", params, 3, 4, rng, valid_p=0.7, ready_p=0.5),
        gemm_job("k_lanes_x3", params, params.lanes, 3, rng, valid_p=0.8, ready_p=0.8),
        gemm_job("k256_x2", params, 256, 2, rng, valid_p=0.75, ready_p=0.6),
        gemm_job("k37_full_rate", params, 37, 3, rng),
        gemm_job("k20_to_bf16", params, 20, 2, rng, valid_p=0.9, ready_p=0.7, config={"to_bf16": True}),
    ]
    metrics = run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)
    assert metrics["k256_x2"]["outputs"]["vout"] == 2 * params.stages
    # back-to-back tiles at full rate: the steps take one cycle each plus one pipeline fill
    full = metrics["k37_full_rate"]
    assert full["cycles"] <= full["steps"] + params.lanes + 2 * params.stages + 8
    # one-step tiles at full rate end exactly PcuParams.tile_interval cycles apart, as the
    # compiler's roofline counts (compiler.roofline.pcu_cycles)
    short = metrics["k1_x6"]
    assert short["span"]["steps"] == short["steps"] + 5 * (params.tile_interval - 1)


def test_corrupted_configuration_is_refused(simulator, sim_build_dir, waves):
    params = PcuParams("tiny", ops=("mov", "fadd"), tail=False, systolic=False)
    good = PcuConfig(counters=[Counter(0, 5)], stages=[Stage("fadd", "vin0", "vin1")])
    words = good.encode(params)
    x = f32(np.arange(20, dtype=np.float32).reshape(5, 4))
    jobs = [
        refused_job("magic_bit_flipped", [words[0] ^ (1 << 20), *words[1:]]),
        refused_job("wrong_length", [words[0] ^ 1, *words[1:]]),
        pcu_job("good_after_refusals", good, params, vin0=x, vin1=x, valid_p=0.8, ready_p=0.8),
    ]
    # the refused images' body words arrive as (refused) headers too; none may configure the PCU
    run(PatternComputeUnit(params), jobs, simulator, sim_build_dir, waves)
