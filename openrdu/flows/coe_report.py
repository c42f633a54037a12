"""``openrdu coe report``: docs/coe.md, our Samba-CoE numbers beside the paper's, and the plots.

Everything in the report is computed here from :func:`coe_host.nodemodel.simulate`,
:func:`coe_host.router.train_default` and :mod:`coe_host.platform`; nothing is typed in
except the paper's figures (:data:`coe_host.nodemodel.PAPER`) and the prose around them.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from coe_host.memory import SocketMemory
from coe_host.nodemodel import PAPER, SimConfig, simulate
from coe_host.platform import GIB, NodePreset, assumptions, measured_pair_bandwidth

__all__ = ["write_report", "scenarios", "implied_paper_decomposition", "REPORT_COMMAND"]

REPORT_COMMAND = "openrdu coe report"


def implied_paper_decomposition(p=PAPER) -> dict:
    """What the paper's four ratios imply if every request switches on both sides and the DGX's
    per-request compute is the same on H100 and A100 (times in units of one node switch ``s``).

    ``O_h (s + c_n) = R_h s + c_g`` and ``O_a (s + c_n) = R_a s + c_g`` give
    ``(s + c_n)/s = (R_a - R_h)/(O_a - O_h)`` and ``c_g/s = O_h (s + c_n)/s - R_h``.
    """
    total = (p.switch_vs_a100 - p.switch_vs_h100) / (p.overall_vs_a100 - p.overall_vs_h100)
    c_n = total - 1
    c_g = p.overall_vs_h100 * total - p.switch_vs_h100
    return {"node_request_over_switch": total, "node_compute_over_switch": c_n,
            "gpu_compute_over_switch": c_g,
            "gpu_over_node_compute": c_g / c_n, "switch_share_of_node_request": 1 / total,
            "implied_node_copy_GBps_h100": p.switch_vs_h100 * 64.0,
            "implied_node_copy_GBps_a100": p.switch_vs_a100 * 32.0}


def scenarios(requests: int = 1000, seed: int = 0) -> dict[str, SimConfig]:
    base = SimConfig(requests=requests, seed=seed)
    return {
        "paper flow (one active-expert slot)": replace(base, cache_experts=1),
        "expert cache (CLI default)": base,
        "expert cache + prefetch": replace(base, prefetch=True),
        "expert cache, uniform popularity": replace(base, skew=0.0),
    }


def _cache_gib(hbm_gib: float, kv_gib: float) -> float:
    """Expert cache per device by default: HBM minus the router and KV regions."""
    from coe_host.nodemodel import ROUTER_CLASSES, ROUTER_FEATURES

    mem = SocketMemory(0, ddr_bytes=0, hbm_bytes=int(hbm_gib * GIB), sram_bytes=0,
                       router_bytes=2 * ROUTER_FEATURES * ROUTER_CLASSES, kv_bytes=int(kv_gib * GIB))
    return mem.hbm.region_lines("experts") * 64 / GIB


def _plots(img_dir: Path, requests: int, seed: int) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    out = []
    base = SimConfig(requests=requests, seed=seed)

    def sweep(configs):
        return [simulate(c) for c in configs]

    # vs number of experts
    e_gib = base.params_per_expert * 2 / 8 / GIB
    node_gib, gpu_gib = _cache_gib(NodePreset().hbm_gib, base.kv_gib), _cache_gib(80.0, base.kv_gib)
    counts = [10, 25, 50, 100, 150, 200, 300]
    rows = sweep([replace(base, experts=n) for n in counts])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(counts, [r["hbm_hit_rate"] for r in rows], "o-",
            label=f"SN40L node ({node_gib:.0f} GiB/socket cache)")
    a1.plot(counts, [r["baseline_hbm_hit_rate"] for r in rows], "s--",
            label=f"DGX H100 ({gpu_gib:.0f} GiB/GPU cache)")
    a1.set_xlabel("experts")
    a1.set_ylabel("HBM hit rate")
    a1.set_ylim(0, 1.05)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a2.semilogy(counts, [r["mean_switch_stall_s"] * 1e3 for r in rows], "o-", label="SN40L node")
    a2.semilogy(counts, [r["baseline_mean_switch_stall_s"] * 1e3 for r in rows], "s--", label="DGX H100")
    a2.axhline(rows[0]["switch_time_s"] * 1e3, color="C0", lw=0.8, ls=":", label="one node switch")
    a2.axhline(rows[0]["baseline_switch_time_s"] * 1e3, color="C1", lw=0.8, ls=":", label="one DGX switch")
    a2.set_xlabel("experts")
    a2.set_ylabel("exposed switch time per request (ms)")
    a2.grid(alpha=0.3, which="both")
    a2.legend(fontsize=8)
    fig.suptitle(f"7B experts, Zipf 1.0, LRU, batch 8, 20 tokens, {requests} requests")
    fig.tight_layout()
    path = img_dir / "coe_vs_experts.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append((path.name, "HBM hit rate and exposed switch time per request vs number of experts"))

    # vs HBM cache size
    sizes = [2, 4, 8, 16, 24, 32, 40, 48, int(node_gib)]
    rows = sweep([replace(base, hbm_cache_gib=float(g)) for g in sizes])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(sizes, [r["hbm_hit_rate"] for r in rows], "o-", label="SN40L node")
    a1.plot(sizes, [r["baseline_hbm_hit_rate"] for r in rows], "s--", label="DGX H100")
    a1.set_xlabel(f"expert cache per socket / GPU (GiB; one expert shard = {e_gib:.2f} GiB)")
    a1.set_ylabel("HBM hit rate")
    a1.set_ylim(0, 1.05)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8)
    a2.semilogy(sizes, [r["mean_switch_stall_s"] * 1e3 for r in rows], "o-", label="SN40L node")
    a2.semilogy(sizes, [r["baseline_mean_switch_stall_s"] * 1e3 for r in rows], "s--", label="DGX H100")
    a2.set_xlabel("expert cache per socket / GPU (GiB)")
    a2.set_ylabel("exposed switch time per request (ms)")
    a2.grid(alpha=0.3, which="both")
    a2.legend(fontsize=8)
    fig.suptitle(f"150 x 7B experts, Zipf 1.0, LRU, batch 8, 20 tokens, {requests} requests")
    fig.tight_layout()
    path = img_dir / "coe_vs_cache.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append((path.name, "HBM hit rate and exposed switch time per request vs expert-cache size"))
    return out


_TEMPLATE = """\
# Samba-CoE on the modelled SN40L node: reproduction report

Generated by `{command}` (`coe_host/report.py`); do not edit by hand. Every number below
comes from `openrdu coe simulate` (`coe_host/nodemodel.py`) with seed {seed} and {requests}
requests, except the paper's figures (arXiv 2405.07518; see the SN40L reference figures in
[docs/architecture.md](architecture.md#sn40l)).

## Reproduction table

"Paper flow" gives each platform one HBM region for the active expert, as the paper describes
(router → copy → run, so nearly every request switches): `--cache-experts 1`. "Expert cache"
keeps as many experts as the HBM left after the router and KV regions holds (the CLI
default). Both: 150 × 7B experts, batch 8, 64 prompt + 20 generated tokens, Zipf-1.0 expert
popularity, LRU, no prefetch.

| metric | paper | ours, paper flow | ours, expert cache | command |
|---|---|---|---|---|
| model switching vs DGX H100 | {p_sw_h:.0f}× | {pf_h_sw:.1f}× | {d_h_sw:.1f}× \
| `openrdu coe simulate --baseline dgx-h100` |
| model switching vs DGX A100 | {p_sw_a:.0f}× | {pf_a_sw:.1f}× | {d_a_sw:.1f}× \
| `openrdu coe simulate --baseline dgx-a100` |
| footprint (DGX nodes per SN40L node holding all experts) | {p_fp:.0f}× | {fp_paper}× (one expert per GPU) \
| {fp_cap:.0f}× (packed by HBM capacity) | `--json`: `baseline_node_count*` |
| overall vs DGX H100, batch 8, 20 tokens | {p_o_h}× | {pf_h_o:.2f}× | {d_h_o:.2f}× \
| `openrdu coe simulate --cache-experts 1` / without |
| overall vs DGX A100, batch 8, 20 tokens | {p_o_a}× | {pf_a_o:.2f}× | {d_a_o:.2f}× \
| the same with `--baseline dgx-a100` |

`openrdu coe simulate` with 150 experts × 1000 requests (node and baseline) took {wall:.2f} s wall
here.

### Where the numbers come from

```
{derivation}
```

### Why our numbers differ (explained, not tuned away)

* **Switching, {pf_h_sw:.1f}× instead of {p_sw_h:.0f}×.** A switch ratio is a bandwidth ratio: the
  node's DDR→HBM bandwidth over the host→GPU link. The paper's 15× against 64 GB/s and 31×
  against 32 GB/s both imply a node copy bandwidth of about {imp_h:.0f}–{imp_a:.0f} GB/s ("above
  1 TB/s per node"). Ours is {node_GBps:.0f} GB/s: the measured {pair:.2f} GB/s per DDR4-3200 →
  HBM2-2000 channel pair (92.7 % of the DDR channel) times {ddr_ch} DDR channels per socket (chosen
  to match the [SN40L's](architecture.md#sn40l) ~200 GB/s per socket) times {sockets} sockets.
  The paper's copy reached
  about {imp_frac:.0%} of that: its DDR configuration (channels, DIMMs) is not public, and a real
  copy carries software, descriptor and contention overheads that our one-pair RTL measurement,
  scaled linearly, does not. Both our ratios are {r_h:.2f}× and {r_a:.2f}× the paper's — the same
  factor, as expected when only the node bandwidth differs.
* **Footprint.** The paper's 19× is ⌈150 experts / 8 GPUs⌉ = 19 DGX nodes: one expert per GPU,
  the usual way to serve one 7B model per GPU; `baseline_node_count_one_expert_per_gpu`
  reproduces it exactly. Packing experts by capacity instead (80 GB per GPU less {kv_gib:.0f} GiB for
  the KV region, each expert tensor-parallel over 8 GPUs) fits {per_dgx} experts per DGX and needs
  {fp_cap:.0f} nodes: the 19× is a deployment convention, {fp_cap:.0f}× the floor set by HBM capacity.
  (The DGX's 2 TiB of host memory {host_fits} the {total_tb:.1f} TB of experts (we assume they
  live there); the node's
  {sockets} × {ddr_tib:.1f} TiB of DDR holds them {ddr_over:.1f} times over.)
* **Overall, paper flow: {pf_h_o:.2f}× / {pf_a_o:.2f}× instead of 3.7× / 6.6×.** With a switch on
  nearly every request, overall = (S_gpu + C_gpu) / (S_node + C_node). If the DGX's compute per
  request is the same on H100 and A100, the paper's four ratios imply (in units of one node
  switch S) that a node request takes {imp_total:.2f} S (the switch is {imp_share:.0%} of it) and that a
  DGX request computes for {imp_cg:.2f} S, **{imp_ratio:.2f}× the node's compute**. Our roofline gives
  the node a switch share of {our_share:.0%} (close), but the DGX H100 computes in {h_ratio:.2f}× and
  the A100 in {a_ratio:.2f}× the node's time: it credits every platform with the same 85 % of its
  peak HBM bandwidth, and an H100 has 3.35 TB/s against 2.05 TB/s per socket. The paper measured
  real software stacks, where the SN40L's fused decoder kernels run much closer to their roofline
  than per-operator GPU kernels at batch 8 — its central claim, which a common-efficiency
  roofline leaves out on purpose. Our larger switch ratio pushes the other way; the two partly
  cancel.
* **Overall, expert cache: {d_h_o:.2f}× / {d_a_o:.2f}×.** When HBM holds {d_cache} (node) or
  {d_bcache} (DGX) experts, {d_hit:.0%} / {d_bhit:.0%} of requests find theirs resident under a Zipf-1.0
  popularity; fewer switches leave less for the faster copy to win. The DGX holds more because
  it has 80 GB per GPU against 64 GB per socket. The popularity law is our assumption (the paper
  gives none): with uniform popularity the hit rates drop and the speedup rises (below).

## Scenarios

| scenario | baseline | switch speedup | node req/s | DGX req/s | overall | node hit rate \
| DGX hit rate | node exposed switch / req | DGX exposed switch / req |
|---|---|---|---|---|---|---|---|---|---|
{scenario_rows}

Prefetch (`--prefetch`) reserves the next request and copies its expert while the current one
runs. On the node a switch ({d_sw_ms:.1f} ms) is shorter than a request's compute ({d_c_ms:.1f} ms),
so prefetch hides nearly every switch; on the DGX H100 a switch ({d_bsw_ms:.0f} ms) is
{d_b_over:.0f}× longer than the compute ({d_bc_ms:.1f} ms), and prefetch hides only a compute's
worth of it.

### Sensitivity (paper flow, DGX H100)

| change | switch speedup | overall | node req/s | DGX req/s |
|---|---|---|---|---|
{sensitivity_rows}

The switch ratio hinges on comparing a whole-node DDR→HBM copy with one 64 GB/s link, as the
paper does. If each GPU loads its own shard over its own PCIe link the DGX's aggregate is
8 × 64 = 512 GB/s, and the node's advantage shrinks to the ratio of per-socket DDR→HBM
bandwidth to one PCIe link ({socket_GBps:.0f} / 64 GB/s); host-memory bandwidth and PCIe switches
would cap the DGX below that, which this model does not include.

### Eviction policies

| policy | trace | node hit rate | DGX hit rate | node req/s | overall vs H100 |
|---|---|---|---|---|---|
{policy_rows}

`cost` is GreedyDual with frequency (priority = L + uses × reload time, L aged to each victim's
priority). With equal experts all reload times are equal, and it ranks like a frequency policy
with aging; it departs from LFU when experts differ in size or home (a remote home is a slower
copy).

{plots}## Router

A hashed bag of words ({buckets} CRC-32 buckets and a bias input) → one bf16 GEMM ({features} ×
{classes}, {weight_bytes} bytes in the HBM router region) → argmax, trained with numpy (softmax
regression, float32) on generated prompts over {classes} domains, then rounded to bf16. The
golden mode computes the GEMM with fp32 MACs in sequential order (`coe_host/golden.py`), the
order the RTL-backed router reproduces bit for bit (`tests/coe_host/test_coe_rtl.py`).

| train prompts | held-out prompts | train accuracy | held-out accuracy | keyword oracle | floor (tests) |
|---|---|---|---|---|---|
| {train_n} | {test_n} | {train_acc:.1%} | {test_acc:.1%} | {oracle:.1%} | {floor:.0%} |

The prompts mix their domain's words with filler and, in 35 % of them, words of another domain;
the keyword oracle (count each domain's words) is the ceiling of the set. `openrdu coe route`
prints these figures.

## Model

* **Registry** (`coe_host/experts.py`): name, architecture (layers, d_model, ffn, dtype),
  parameters, bytes, domain and home (one DDR shard per socket of its group: socket, base line,
  lines). 7B experts are sized descriptors with the Llama-2-7B shape; the demo's FFN experts
  carry real bf16 weights.
* **Memory** (`coe_host/memory.py`): per socket DDR (`experts`: the homes), HBM (`router`, `kv`,
  `experts` cache) and SRAM (`scratch`), each a first-fit line allocator. Kernels reach memory
  only through segment tables of `hdl.agcu.config.Segment` entries (base, bound, read/write, in
  64-byte lines) checked as the AGCU checks them (`hdl.agcu.golden.check_run` for whole runs): an
  expert's kernel gets segment 0 = its weights (read-only) and 1 = its request's KV cache and
  buffers; any other access faults.
* **Residency** (`coe_host/residency.py`): `ensure_resident` copies a missing expert's shards
  DDR→HBM (the group's sockets in parallel, copies serialised per group), evicting by LRU, LFU or
  cost-aware GreedyDual; running, reserved and in-flight experts are pinned; eviction is planned
  on allocator clones and applied all or nothing; finished requests' KV caches are retained until
  the KV region needs room, live ones never are.
* **Node model** (`coe_host/nodemodel.py`): an event-driven simulation of serving groups (the
  whole node by default: each expert tensor-parallel over 8 sockets, like the baseline over 8
  GPUs) sharing one FIFO request queue; requests all wait at time 0, and requests/s = requests /
  makespan.
* **RTL-backed mode** (`coe_host/rtl.py`, `RtlBackend`): the same flow with the router GEMM,
  every DDR→HBM switch and every expert's fused FFN on the simulated RTL (next section);
  `openrdu coe demo --backend golden` runs it on the golden models (`GoldenBackend`), with real
  weights moving between backing stores.

{rtl_section}
## Assumptions

| assumption | value | why |
|---|---|---|
{assumption_rows}
| request | batch 8 sequences routed together to one expert, 64 prompt + 20 generated tokens \
| the paper's "batch 8, 20 tokens"; the prompt length is ours |
| expert popularity | Zipf 1.0 over a seeded permutation (`--skew`) | the paper gives none |
| KV region | {kv_gib:.0f} GiB per socket and per GPU (`--kv-gb`) | room for the live request's KV \
cache ({kv_mb:.0f} MB at the defaults, split over the group) and retained ones |
| arrivals | a closed backlog at time 0, FIFO | throughput, not latency under load |
| router cost | a 4096 × 256 bf16 GEMM per request on the roofline (microseconds) \
| the trained router is smaller; either way it is negligible |
| prefetch contention | a prefetch copy's HBM writes (≤ {socket_GBps:.0f} GB/s per socket) are not \
charged to the running expert | under 10 % of the socket's HBM bandwidth |
"""


def _scenario_row(name: str, b: str, r: dict) -> str:
    return (f"| {name} | {b} | {r['switch_speedup']:.1f}× | {r['requests_per_s']:.2f} | "
            f"{r['baseline_requests_per_s']:.2f} | {r['overall_speedup']:.2f}× | {r['hbm_hit_rate']:.1%} | "
            f"{r['baseline_hbm_hit_rate']:.1%} | {r['mean_switch_stall_s'] * 1e3:.2f} ms | "
            f"{r['baseline_mean_switch_stall_s'] * 1e3:.1f} ms |")


RTL_DEMO_COMMAND = "openrdu coe demo --experts 3 --sim {sim}"


def rtl_demo_section(data_dir: Path) -> str:
    """The RTL-backed demo: how to run it, what it checks, and the figures of the last recorded
    runs (``docs/data/coe_rtl_demo_<sim>.json``: the ``--json`` output of the demo), if any."""
    import json

    from coe_host.rtl import PRESET, ROUTER_FEATURES

    rows = []
    for sim in ("icarus", "verilator"):
        path = data_dir / f"coe_rtl_demo_{sim}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        t = r["timings_s"]
        rows.append(f"| {sim} | {r['requests']} | {r['switches']} / {r['rtl_copies']} | "
                    f"{r['bytes_copied']} / {r['rtl_bytes_copied']} | {r['router_cycles']} | "
                    f"{r['copy_cycles']} | {r['expert_cycles']} | {t.get('router', 0):.0f} / "
                    f"{t.get('copies', 0):.0f} / {t.get('experts', 0):.0f} | {t.get('total', 0):.0f} | "
                    f"{'yes' if r['ok'] else 'NO'} |")
    table = ("| simulator | requests | switches (trace / RTL copies) "
             "| bytes DDR→HBM (trace / HBM writes × 64) | router cycles | copy cycles | FFN cycles "
             "| wall s: router / copies / FFNs | wall s total "
             "| all checks |\n|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
             "Recorded with `" + RTL_DEMO_COMMAND.format(sim="SIM") + " --save "
             "docs/data/coe_rtl_demo_SIM.json` against an existing kernel-system build (the first run "
             "per simulator builds it: here 13 to 25 minutes of Icarus compilation on the loaded machine, "
             "about a minute of Verilator build). Wall times are on a shared 2-core machine under `nice`; "
             "router / copies / FFNs are the simulator runs, the rest of the total is host-side Python "
             "(training the router, regenerating the copy path's Verilog to see "
             "that its build is current, compiling the kernels, the golden checks). The cycle counts are "
             "the simulated hardware's.\n\n"
             if rows else "No recorded runs in docs/data (run the command above with "
             "`--save docs/data/coe_rtl_demo_SIM.json`).\n\n")
    return f"""## RTL-backed demo

```sh
.venv/bin/{RTL_DEMO_COMMAND.format(sim="icarus")}      # or --sim verilator (the default)
.venv/bin/openrdu coe demo --backend golden              # the same flow on the golden models
```

Three small FFN experts (d_model 32, ffn 64, real bf16 weights, 8 KiB each) live in DDR; the
HBM expert cache holds two; twelve generated prompts are served with LRU eviction. Everything
that computes or moves data runs on the simulated RTL of the `{PRESET}` preset, in three batched
simulations:

1. **router** — the bf16 GEMM (12 prompts × {ROUTER_FEATURES} hashed features × 10 classes, fp32
   logits) as one compiled kernel on a tile with AGCUs and HBM2 controllers. Its logits must
   equal `Router.logits` bit for bit: both accumulate `acc = +0; acc = RNE(acc + a·b)` over k
   in order with exact bf16 products, so the golden router needed no change. The router has
   {ROUTER_FEATURES} features here (the `{PRESET}` PMUs hold 1024 words; 128 features need 1032),
   so it routes less accurately than the golden demo's 256-feature router.
2. **switches** — each miss copies the expert DDR4-3200 → HBM2-2000 through the copy path of two
   AGCUs and two memory controllers (`hdl/dma.py`), segments = the expert's home lines (read) and
   the HBM region the residency manager allocated (write). The lines are read back out of the
   simulated HBM and written into the host's HBM tier, whose expert cache is first filled with
   NaN, so the kernels can only see what the RTL copy delivered. One more run stores one line past
   the last switched expert's segment: the store AGCU must fault with no write reaching HBM.
3. **experts** — every request's `y = bf16(relu(bf16(x·W1))·W2)` as one fused FFN kernel
   (`compile_kernel("ffn", "{PRESET}", (1, 32, 64), act="relu")`), W1/W2 loaded through the
   request's segment table from those bytes; each kernel argument is checked against the table
   first (one outside its segment raises `SegmentFault` and nothing runs).

Checks (the demo exits non-zero if one fails; `tests/coe_host/test_coe_rtl.py` asserts them on both
simulators): logits equal to the golden router; switch count and bytes equal to the trace (the
test replays the routed experts through its own LRU model) and to the copies the RTL made (HBM
write count × 64); the HBM read-back equal to each expert's DDR image; every output equal to
`ffn_forward` on the registry's own weight arrays (numpy) and to the compiler's golden model; the
fault probe faults. The small experts' FFN (no bias, no gate, ReLU, bf16 hidden layer) is exactly
what the fused kernel computes, so nothing had to be changed to fit the compiler.

{table}"""


def write_report(output: str | Path = "docs/coe.md", img_dir: str | Path = "docs/img", *,
                 requests: int = 1000, seed: int = 0, plots: bool = True,
                 data_dir: str | Path = "docs/data") -> Path:
    from coe_host.router import ACCURACY_FLOOR, train_default

    output, img_dir = Path(output), Path(img_dir)
    node = NodePreset()
    pair = measured_pair_bandwidth()
    runs: dict[tuple[str, str], dict] = {}
    for name, cfg in scenarios(requests, seed).items():
        for b in ("dgx-h100", "dgx-a100"):
            runs[(name, b)] = simulate(replace(cfg, baseline=b))
    t0 = time.perf_counter()
    simulate(SimConfig(requests=1000, seed=seed))
    wall = time.perf_counter() - t0
    pf_h, pf_a = runs[("paper flow (one active-expert slot)", "dgx-h100")], \
        runs[("paper flow (one active-expert slot)", "dgx-a100")]
    d_h, d_a = runs[("expert cache (CLI default)", "dgx-h100")], \
        runs[("expert cache (CLI default)", "dgx-a100")]
    imp = implied_paper_decomposition()

    paper_flow = SimConfig(requests=requests, seed=seed, cache_experts=1)
    sens = [
        ("4 host links per switch", replace(paper_flow, baseline_links=4)),
        ("8 host links per switch (each GPU loads its shard over its own PCIe link)",
         replace(paper_flow, baseline_links=8)),
        ("one expert per socket / per GPU (no tensor parallelism), 1 host link per GPU",
         replace(paper_flow, sockets_per_expert=1, gpus_per_expert=1)),
        ("prompt 0 tokens (decode only)", replace(paper_flow, prompt_tokens=0)),
        ("batch 1", replace(paper_flow, batch=1)),
        ("200 generated tokens", replace(paper_flow, tokens=200)),
    ]
    sens_rows = []
    for label, cfg in sens:
        r = simulate(cfg)
        sens_rows.append(f"| {label} | {r['switch_speedup']:.2f}× | {r['overall_speedup']:.2f}× | "
                         f"{r['requests_per_s']:.2f} | {r['baseline_requests_per_s']:.2f} |")
    policy_rows = []
    for p in ("lru", "lfu", "cost"):
        for c, kw in (("default cache", {}), ("16 GiB cache", {"hbm_cache_gib": 16.0}),
                      ("uniform, default cache", {"skew": 0.0})):
            r = simulate(SimConfig(requests=requests, seed=seed, policy=p, **kw))
            policy_rows.append(f"| {p} | {c} | {r['hbm_hit_rate']:.1%} | {r['baseline_hbm_hit_rate']:.1%} | "
                               f"{r['requests_per_s']:.2f} | {r['overall_speedup']:.2f}× |")
    router = train_default(seed=seed)
    images = _plots(img_dir, requests, seed) if plots else []
    rel_img = Path("img") if img_dir.resolve().parent == output.resolve().parent else img_dir
    plot_text = ""
    if images:
        plot_text = "## Plots\n\n"
        for name, caption in images:
            plot_text += (f"![{caption}]({(rel_img / name).as_posix()})\n\n*{caption}.* The copy time of one "
                          "switch depends neither on the number of experts nor on the cache; what changes is "
                          "how often a request has to switch, so the plots show the exposed switch time per "
                          "request (switches × copy time / requests, no prefetch) beside the hit rate.\n\n")

    derivation = [*pf_h["derivation"], pf_a["derivation"][-1],
                  f"one expert = {pf_h['params_per_expert']:.3g} params x 2 bytes = "
                  f"{pf_h['expert_bytes'] / 1e9:.2f} GB; node switch = {pf_h['switch_time_s'] * 1e3:.2f} ms, "
                  f"DGX H100 {pf_h['baseline_switch_time_s'] * 1e3:.1f} ms, "
                  f"DGX A100 {pf_a['baseline_switch_time_s'] * 1e3:.1f} ms",
                  f"roofline: {pf_h['roofline']}",
                  f"compute per request: node {pf_h['request_compute_s'] * 1e3:.2f} ms, DGX H100 "
                  f"{pf_h['baseline_request_compute_s'] * 1e3:.2f} ms, DGX A100 "
                  f"{pf_a['baseline_request_compute_s'] * 1e3:.2f} ms "
                  f"(decode {pf_h['decode_bound']}-bound on every platform)"]
    arch = d_h["architecture"]
    kv_bytes = (arch["layers"] * 2 * arch["d_model"] * 2 * d_h["batch"]
                * (d_h["prompt_tokens"] + d_h["tokens"]))
    total = d_h["experts"] * d_h["expert_bytes"]
    values = dict(
        command=REPORT_COMMAND, seed=seed, requests=requests, wall=wall, derivation="\n".join(derivation),
        p_sw_h=PAPER.switch_vs_h100, p_sw_a=PAPER.switch_vs_a100, p_fp=PAPER.footprint,
        p_o_h=PAPER.overall_vs_h100, p_o_a=PAPER.overall_vs_a100,
        pf_h_sw=pf_h["switch_speedup"], pf_a_sw=pf_a["switch_speedup"],
        d_h_sw=d_h["switch_speedup"], d_a_sw=d_a["switch_speedup"],
        fp_paper=pf_h["baseline_node_count_one_expert_per_gpu"], fp_cap=d_h["footprint_ratio"],
        pf_h_o=pf_h["overall_speedup"], pf_a_o=pf_a["overall_speedup"],
        d_h_o=d_h["overall_speedup"], d_a_o=d_a["overall_speedup"],
        imp_h=imp["implied_node_copy_GBps_h100"], imp_a=imp["implied_node_copy_GBps_a100"],
        node_GBps=pf_h["node_ddr_to_hbm_GBps"], pair=pair.GBps, ddr_ch=node.ddr_channels,
        sockets=node.sockets,
        imp_frac=imp["implied_node_copy_GBps_h100"] / pf_h["node_ddr_to_hbm_GBps"],
        r_h=pf_h["switch_speedup"] / PAPER.switch_vs_h100, r_a=pf_a["switch_speedup"] / PAPER.switch_vs_a100,
        kv_gib=d_h["kv_region_GiB_per_device"], per_dgx=d_h["baseline_experts_per_node_by_capacity"],
        host_fits="holds" if d_h["baseline_host_memory_fits"] else "cannot hold", total_tb=total / 1e12,
        ddr_tib=node.ddr_gib / 1024, ddr_over=node.sockets * node.ddr_gib * GIB / total,
        imp_total=imp["node_request_over_switch"], imp_share=imp["switch_share_of_node_request"],
        imp_cg=imp["gpu_compute_over_switch"], imp_ratio=imp["gpu_over_node_compute"],
        our_share=pf_h["switch_time_s"] / (pf_h["switch_time_s"] + pf_h["request_compute_s"]),
        h_ratio=pf_h["baseline_request_compute_s"] / pf_h["request_compute_s"],
        a_ratio=pf_a["baseline_request_compute_s"] / pf_a["request_compute_s"],
        d_cache=d_h["experts_cacheable"], d_bcache=d_h["baseline_experts_cacheable"],
        d_hit=d_h["hbm_hit_rate"], d_bhit=d_h["baseline_hbm_hit_rate"],
        scenario_rows="\n".join(_scenario_row(n, b, r) for (n, b), r in runs.items()),
        d_sw_ms=d_h["switch_time_s"] * 1e3, d_c_ms=d_h["request_compute_s"] * 1e3,
        d_bsw_ms=d_h["baseline_switch_time_s"] * 1e3, d_bc_ms=d_h["baseline_request_compute_s"] * 1e3,
        d_b_over=d_h["baseline_switch_time_s"] / d_h["baseline_request_compute_s"],
        sensitivity_rows="\n".join(sens_rows), socket_GBps=node.socket_copy_GBps(pair),
        policy_rows="\n".join(policy_rows), plots=plot_text,
        buckets=router["features"] - 1, features=router["features"], classes=router["classes"],
        weight_bytes=router["weight_bytes"], train_n=router["train_n"], test_n=router["test_n"],
        train_acc=router["train_accuracy"], test_acc=router["heldout_accuracy"],
        oracle=router["oracle_accuracy"],
        floor=ACCURACY_FLOOR,
        assumption_rows="\n".join(f"| {a.name} | {a.value} | {a.why} |" for a in assumptions(node)),
        kv_mb=kv_bytes / 1e6, rtl_section=rtl_demo_section(Path(data_dir)),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(_TEMPLATE.format(**values))
    return output
