"""CoE node model and CLI: determinism, invariants, the copy-bandwidth derivation, bad input, hooks."""

import argparse
import json
from dataclasses import replace

import numpy as np
import pytest

from coe_host.experts import llama_like
from coe_host.host import CoeHost, make_backend
from coe_host.nodemodel import SimConfig, make_trace, simulate
from coe_host.platform import COPY_JSON, MEASURED_PAIR_GBPS, NodePreset, measured_pair_bandwidth
from coe_host.router import make_prompts
from coe_host.rtl import RtlBackend
from openrdu.cli import coe as coe_cli

REQUIRED = ("experts", "sockets", "requests", "policy", "node_ddr_to_hbm_GBps", "baseline_host_to_gpu_GBps",
            "switch_time_s", "baseline_switch_time_s", "switch_speedup", "requests_per_s",
            "baseline_requests_per_s", "overall_speedup", "hbm_hit_rate", "bytes_ddr_to_hbm", "node_count",
            "baseline_node_count")


@pytest.fixture(scope="module")
def full():
    """150 experts x 1000 requests, twice (wall time is reported by pytest --durations, not asserted)."""
    cfg = SimConfig(experts=150, requests=1000, seed=11)
    return cfg, simulate(cfg), simulate(cfg)


def test_simulate_is_deterministic_for_a_seed(full):
    cfg, a, b = full
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    other = simulate(replace(cfg, seed=12))
    assert other["switches"] != a["switches"] or other["makespan_s"] != a["makespan_s"]


def test_simulate_invariants(full):
    cfg, r, _ = full
    for key in REQUIRED:
        assert key in r, key
    assert (r["experts"], r["sockets"], r["requests"], r["policy"]) == (150, 8, 1000, "lru")
    assert 0 <= r["hbm_hit_rate"] <= 1 and 0 <= r["baseline_hbm_hit_rate"] <= 1
    # without prefetch every request either hits or switches once
    assert r["switches"] == round((1 - r["hbm_hit_rate"]) * 1000)
    assert r["bytes_ddr_to_hbm"] == r["switches"] * r["expert_bytes"]
    assert r["bytes_host_to_gpu"] == r["baseline_switches"] * r["expert_bytes"]
    # the copy bandwidth is the measured pair x 8 DDR channels x 8 sockets, and the switch ratio follows
    pair = measured_pair_bandwidth().GBps
    assert r["node_ddr_to_hbm_GBps"] == pytest.approx(pair * 8 * 8, rel=1e-3)
    assert r["switch_time_s"] == pytest.approx(r["expert_bytes"] / (pair * 64e9), rel=1e-6)
    assert r["switch_speedup"] == pytest.approx(pair * 64 / 64.0, rel=1e-6)
    assert any("x 8 DDR channels per socket x 8 sockets" in line for line in r["derivation"])
    # one serving group: throughput is bounded by compute, and by compute + every switch
    assert r["requests_per_s"] <= 1 / r["request_compute_s"] + 1e-9
    floor = 1000 * r["request_compute_s"] + r["switches"] * r["switch_time_s"]
    assert r["makespan_s"] == pytest.approx(floor, rel=1e-3)
    assert r["node_count"] == 1 and r["baseline_node_count"] >= 1
    assert r["baseline_node_count_one_expert_per_gpu"] == 19
    assert r["overall_speedup"] == pytest.approx(r["requests_per_s"] / r["baseline_requests_per_s"])
    assert {a["name"] for a in r["assumptions"]} >= {"DDR channels per socket", "capacities per socket"}


def test_one_slot_cache_hits_exactly_on_repeated_experts():
    cfg = SimConfig(experts=20, requests=300, seed=4, cache_experts=1)
    r = simulate(cfg)
    trace = make_trace(20, 300, skew=cfg.skew, seed=4)
    repeats = int(np.sum(trace[1:] == trace[:-1]))
    assert r["hbm_hit_rate"] == pytest.approx(repeats / 300)
    assert r["baseline_hbm_hit_rate"] == r["hbm_hit_rate"]


def test_prefetch_hides_switches_on_the_node():
    cfg = SimConfig(experts=40, requests=200, seed=2, cache_experts=2)
    plain, pre = simulate(cfg), simulate(replace(cfg, prefetch=True))
    assert pre["mean_switch_stall_s"] < plain["mean_switch_stall_s"]
    assert pre["requests_per_s"] > plain["requests_per_s"]


def test_policies_and_groups_run():
    for policy in ("lru", "lfu", "cost"):
        r = simulate(SimConfig(experts=30, requests=100, policy=policy, sockets_per_expert=2,
                               gpus_per_expert=2, hbm_cache_gib=12.0, lookahead=3))
        assert r["policy"] == policy and 0 <= r["hbm_hit_rate"] <= 1


def test_pair_bandwidth_fallback_equals_the_measurement(tmp_path):
    measured = json.loads(COPY_JSON.read_text())["copy_GBps"]
    assert MEASURED_PAIR_GBPS == pytest.approx(measured)
    fallback = measured_pair_bandwidth(tmp_path / "missing.json")
    assert not fallback.measured and fallback.GBps == MEASURED_PAIR_GBPS and "fallback" in fallback.source
    assert NodePreset().ddr_peak_GBps == pytest.approx(204.8)


def test_llama_like_shape():
    arch = llama_like(7e9)
    assert (arch.layers, arch.d_model, arch.ffn) == (32, 4096, 11008)
    assert abs(llama_like(30e9).params / 30e9 - 1) < 0.05


# ---------------------------------------------------------------------------------------------
# CLI


def _parser():
    parser = argparse.ArgumentParser(prog="openrdu")
    coe_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.parametrize("argv, message", [
    (["--policy", "mru"], "invalid choice: 'mru' (choose from 'lru', 'lfu', 'cost')"),
    (["--baseline", "dgx-b200"], "choose from 'dgx-h100', 'dgx-a100'"),
    (["--experts", "0"], "expected a positive integer, got 0"),
    (["--requests", "-5"], "expected a positive integer, got -5"),
    (["--batch", "0"], "expected a positive integer"),
    (["--tokens", "x"], "expected a positive integer, got 'x'"),
    (["--sockets", "0"], "expected a positive integer"),
    (["--params-per-expert", "0"], "expected a positive number"),
    (["--sockets-per-expert", "3"], "sockets_per_expert must divide sockets (8), got 3"),
    (["--baseline-links", "9"], "baseline_links (9) cannot exceed gpus_per_expert"),
    (["--hbm-cache-gb", "4", "--cache-experts", "2"], "not allowed with argument"),
])
def test_bad_input_exits_2(capsys, argv, message):
    parser = _parser()
    with pytest.raises(SystemExit) as exc:
        args = parser.parse_args(["coe", "simulate", *argv])
        args.func(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_json_is_one_object(capsys):
    assert coe_cli.main(["coe", "simulate", "--experts", "20", "--requests", "40", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert all(k in data for k in REQUIRED) and data["experts"] == 20
    assert "node DDR->HBM = " in err                       # the derivation is printed, not hidden


def test_simulate_human_output(capsys):
    argv = ["coe", "simulate", "--experts", "20", "--requests", "40", "--baseline", "dgx-a100"]
    assert coe_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "node DDR->HBM = 23.73 GB/s/pair x 8 DDR channels per socket x 8 sockets" in out
    assert "roofline:" in out and "dgx-a100" in out and "requests/s" in out


# ---------------------------------------------------------------------------------------------
# two fidelities behind one API


def test_rtl_mode_refuses_unknown_simulators(capsys):
    """The RTL-backed mode itself runs in tests/coe_host/test_coe_rtl.py (it needs a simulator)."""
    with pytest.raises(ValueError, match="icarus.*verilator"):
        RtlBackend("modelsim")
    assert isinstance(make_backend("rtl", simulator="icarus"), RtlBackend)
    with pytest.raises(SystemExit) as exc:
        coe_cli.main(["coe", "demo", "--sim", "modelsim"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_golden_demo_outputs_equal_numpy_and_switches_match_the_trace():
    host = CoeHost(3, cache_experts=2, policy="lru", seed=0, train_n=600)
    prompts, _ = make_prompts(16, seed=5)
    served = host.serve(prompts)
    assert all(s.exact for s in served)
    # replay LRU with two slots on the routed expert sequence
    cache, hits = [], []
    for s in served:
        hits.append(s.expert in cache)
        if s.expert in cache:
            cache.remove(s.expert)
        elif len(cache) == 2:
            cache.pop(0)
        cache.append(s.expert)
    assert [s.hit for s in served] == hits
    lines = next(iter(host.registry)).lines
    assert sum(s.bytes_copied for s in served) == hits.count(False) * lines * 64
    assert host.manager.stats["bytes_copied"] == hits.count(False) * lines * 64
