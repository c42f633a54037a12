"""``openrdu coe …``: the Composition-of-Experts host on the command line.

::

    openrdu coe simulate --experts 150 --params-per-expert 7e9 --sockets 8 --requests 1000 \\
                         --batch 8 --tokens 20 --baseline dgx-h100 --policy lru --seed 0 [--json]
    openrdu coe route [--json]             train the router, report its held-out accuracy
    openrdu coe demo --backend golden      router -> switch -> expert on small real experts
    openrdu coe demo [--sim icarus|verilator]   the RTL-backed demo (router, copies, FFNs on the RTL)
    openrdu coe report                     docs/coe.md + docs/img/coe_*.png (reproduction report)

Registered by :func:`openrdu.cli.build_parser` (``register(sub)``). Bad input (unknown policy or
baseline, non-positive counts, inconsistent sizes) exits with status 2 and a message naming the valid choices.
``python -m openrdu.cli.coe coe …`` runs the same commands without the main CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from .args import int_at_least, nonneg_int, positive_float, positive_int
from .common import run_one_command

__all__ = ["register", "main", "cmd_simulate", "cmd_route", "cmd_demo", "cmd_report"]

POLICY_CHOICES = ("lru", "lfu", "cost")
BASELINE_CHOICES = ("dgx-h100", "dgx-a100")




def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


# ---------------------------------------------------------------------------------------------
# simulate


def sim_config(args):
    from coe_host.nodemodel import SimConfig

    return SimConfig(experts=args.experts, params_per_expert=args.params_per_expert, sockets=args.sockets,
                     requests=args.requests, batch=args.batch, tokens=args.tokens,
                     prompt_tokens=args.prompt_tokens,
                     baseline=args.baseline, policy=args.policy, seed=args.seed, skew=args.skew,
                     prefetch=args.prefetch, sockets_per_expert=args.sockets_per_expert,
                     gpus_per_expert=args.gpus_per_expert, baseline_links=args.baseline_links,
                     hbm_cache_gib=args.hbm_cache_gb, cache_experts=args.cache_experts, kv_gib=args.kv_gb,
                     lookahead=args.lookahead)


def summary_lines(r: dict) -> list[str]:
    """The human-readable summary of one :func:`coe_host.nodemodel.simulate` result."""
    b = r["baseline"]
    cache = (f"{r['cache_experts']} expert(s)" if r["cache_experts"] else
             f"{r['hbm_cache_GiB_per_device']} GiB per device" if r["hbm_cache_GiB_per_device"] else
             "all HBM left after router and KV regions")
    lines = [
        f"workload: {r['requests']} requests x batch {r['batch']} x ({r['prompt_tokens']} prompt + "
        f"{r['tokens']} generated tokens), {r['experts']} experts of {r['params_per_expert']:.3g} params "
        f"({_fmt_bytes(r['expert_bytes'])} bf16), Zipf skew {r['skew']}, seed {r['seed']}, "
        f"policy {r['policy']}, prefetch {'on' if r['prefetch'] else 'off'}, expert cache: {cache}",
        "copy bandwidth (derivation):",
        *[f"  {line}" for line in r["derivation"]],
        f"roofline: {r['roofline']}",
        "",
        f"{'':34}{'SN40L node':>16}{b:>16}{'ratio':>10}",
    ]

    def row(label, node, base, fmt, ratio=None):
        ratio_text = f"{ratio:>9.2f}x" if ratio is not None else ""
        lines.append(f"{label:34}{fmt(node):>16}{fmt(base):>16}{ratio_text}")

    def ms(v):
        return f"{v * 1e3:.2f} ms"

    row("switch (one expert copy)", r["switch_time_s"], r["baseline_switch_time_s"], ms, r["switch_speedup"])
    row("  bandwidth per switch", r["switch_GBps"], r["baseline_host_to_gpu_GBps"], lambda v: f"{v:.1f} GB/s")
    row("compute per request (roofline)", r["request_compute_s"], r["baseline_request_compute_s"], ms)
    row("requests/s", r["requests_per_s"], r["baseline_requests_per_s"], lambda v: f"{v:.2f}",
        r["overall_speedup"])
    row("HBM hit rate", r["hbm_hit_rate"], r["baseline_hbm_hit_rate"], lambda v: f"{v:.1%}")
    row("experts cached at once", r["experts_cacheable"], r["baseline_experts_cacheable"], str)
    row("switches", r["switches"], r["baseline_switches"], str)
    row("mean exposed switch / request", r["mean_switch_stall_s"], r["baseline_mean_switch_stall_s"], ms)
    row("bytes DDR->HBM | host->GPU", r["bytes_ddr_to_hbm"], r["bytes_host_to_gpu"], _fmt_bytes)
    row("bytes HBM read (weights + KV)", r["bytes_hbm_read"], r["baseline_bytes_hbm_read"], _fmt_bytes)
    row("bytes all-reduce (network|NVLink)", r["bytes_network"], r["baseline_bytes_nvlink"], _fmt_bytes)
    row("nodes to hold every expert", r["node_count"], r["baseline_node_count"], str,
        r["baseline_node_count"] / r["node_count"])
    lines.append(f"  (one expert per GPU, the paper's footprint convention: "
                 f"{r['baseline_node_count_one_expert_per_gpu']} DGX nodes)")
    return lines


def cmd_simulate(args) -> int:
    from coe_host.nodemodel import simulate

    try:
        cfg = sim_config(args)
        cfg.validate()
    except ValueError as exc:
        args._parser.error(str(exc))
    t0 = time.perf_counter()
    try:
        result = simulate(cfg)
    except ValueError as exc:           # sizes that do not fit (caught before any output)
        args._parser.error(str(exc))
    wall = time.perf_counter() - t0
    if args.json:
        print("\n".join(result["derivation"]), file=sys.stderr)
        print(json.dumps(result))
        return 0
    for line in summary_lines(result):
        print(line)
    print(f"\nsimulated in {wall:.2f} s wall")
    return 0


# ---------------------------------------------------------------------------------------------
# route / demo


def cmd_route(args) -> int:
    from coe_host.router import ACCURACY_FLOOR, train_default

    r = train_default(train_n=args.train, test_n=args.test, seed=args.seed, features=args.features)
    out = {k: v for k, v in r.items() if k != "router"}
    out["floor"] = ACCURACY_FLOOR
    out["classes_names"] = list(r["router"].classes)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"router: hashed bag of words ({args.features} buckets incl. bias) -> bf16 GEMM "
              f"({args.features} x {out['classes']}, {out['weight_bytes']} bytes) -> argmax, golden mode")
        print(f"train {out['train_accuracy']:.1%} on {args.train} prompts; held out "
              f"{out['heldout_accuracy']:.1%} on {args.test} (keyword oracle {out['oracle_accuracy']:.1%}, "
              f"floor {ACCURACY_FLOOR:.0%})")
    return 0 if out["heldout_accuracy"] >= ACCURACY_FLOOR else 1


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed into place)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _writable(path: Path, what: str) -> str | None:
    """``None`` when a file can be written at ``path``, else one line saying why not."""
    import os

    if path.is_dir():
        return f"{what} {path} is a folder; give a file name"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".openrdu-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"{what} {path}: cannot write in {path.parent} ({error.strerror or error})"
    return None


def cmd_demo(args) -> int:
    if args.save and (problem := _writable(Path(args.save), "--save")):
        args._parser.error(problem)
    if args.backend == "rtl":
        return _demo_rtl(args)
    from coe_host.host import CoeHost
    from coe_host.router import make_prompts

    host = CoeHost(args.experts, cache_experts=args.cache_experts, policy=args.policy, seed=args.seed)
    prompts, _ = make_prompts(args.prompts, seed=args.seed + 1)
    served = host.serve(prompts)
    ok = all(s.exact for s in served)
    copies = sum(not s.hit for s in served)
    copied = sum(s.bytes_copied for s in served)
    summary = {"backend": "golden", "requests": len(served), "switches": copies,
               "bytes_copied": copied, "outputs_equal_numpy": ok,
               "trace": [{"domain": s.domain, "expert": s.expert, "hit": s.hit,
                          "bytes_copied": s.bytes_copied, "evicted": list(s.evicted)}
                         for s in served]}
    if args.save:
        _write_text(Path(args.save), json.dumps(summary) + "\n")
        print(f"wrote {args.save}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary))
    else:
        for i, s in enumerate(served):
            print(f"{i:3d} {s.domain:12} -> {s.expert:5} {'hit ' if s.hit else 'copy'} "
                  f"{s.bytes_copied:6d} B evicted {','.join(s.evicted) or '-':10} "
                  f"{'== numpy' if s.exact else 'MISMATCH'}")
        print(f"golden mode: {len(served)} requests, {copies} switches, {copied} bytes DDR->HBM, "
              f"outputs {'equal' if ok else 'DIFFER from'} numpy")
    return 0 if ok else 1


def _demo_rtl(args) -> int:
    from coe_host.host import run_rtl_demo
    from coe_host.rtl import demo_json

    say = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    t0 = time.perf_counter()
    r = run_rtl_demo(experts=args.experts, simulator=args.sim, prompts=args.prompts,
                     cache_experts=args.cache_experts, policy=args.policy, seed=args.seed, say=say)
    wall = time.perf_counter() - t0
    if args.save:
        _write_text(Path(args.save), demo_json(r) + "\n")
        say(f"wrote {args.save}")
    if args.json:
        print(demo_json(r))
        return 0 if r.ok else 1
    copy_of = {c.request: c for c in r.copies}
    for i, (s, run) in enumerate(zip(r.served, r.expert_runs, strict=True)):
        c = copy_of.get(i)
        copy = (f"copy {s.bytes_copied:5d} B in {c.result['elapsed_ps'] / 1000:7.1f} ns"
                if c else f"hit  {0:5d} B {'':13}")
        print(f"{i:3d} {s.domain:12} -> {s.expert:5} {copy}  evicted {','.join(s.evicted) or '-':6} "
              f"ffn {run.cycles:5d} cycles  {'== numpy' if s.exact else 'MISMATCH'}")
    t = r.timings
    probe = r.fault_probe
    print(f"router: {len(r.served)} prompts' logits on the RTL "
          f"{'equal' if r.router_logits_equal else 'DIFFER from'} Router.logits bit for bit "
          f"({r.router_cycles} cycles)")
    print(f"switches: {r.switches} in the trace, {len(r.copies)} RTL copies; bytes DDR->HBM: "
          f"{r.bytes_copied} in the trace, {r.rtl_bytes_copied} written to the simulated HBM; "
          f"read back {'equal to' if r.copies_exact else 'DIFFERENT from'} the DDR images; "
          f"{sum(c.result['elapsed_ps'] for c in r.copies) / 1000:.1f} ns of copies")
    print(f"fault probe (one line past the expert's HBM segment): "
          f"{'faulted, no HBM write' if r.fault_probe_ok else f'DID NOT FAULT: {probe}'}")
    print(f"experts: {len(r.expert_runs)} fused FFN kernels, {sum(x.cycles for x in r.expert_runs)} cycles, "
          f"outputs {'equal' if r.outputs_equal_numpy else 'DIFFER from'} numpy "
          f"(ffn_forward on the registry's weights) and "
          f"{'equal' if r.kernels_bit_exact else 'DIFFER from'} the compiler's golden model")
    build = f", kernel system build {t['system_build']:.0f} s" if "system_build" in t else ""
    print(f"rtl mode ({args.sim}): {len(r.served)} requests, {r.switches} switches, {r.bytes_copied} bytes "
          f"DDR->HBM; wall {wall:.1f} s (router {t.get('router', 0):.1f} s, "
          f"copies {t.get('copies', 0):.1f} s, experts {t.get('experts', 0):.1f} s{build}); "
          f"{'all checks pass' if r.ok else 'CHECKS FAILED'}")
    return 0 if r.ok else 1


def cmd_report(args) -> int:
    from ..flows.coe_report import write_report

    if Path(args.output).suffix.lower() != ".md":
        args._parser.error(f"--output {args.output}: the report is Markdown; give a name ending in .md")
    problem = _writable(Path(args.output), "--output") or _writable(Path(args.img_dir) / "probe.png",
                                                                    "--img-dir")
    if problem:
        args._parser.error(problem)

    path = write_report(args.output, args.img_dir, requests=args.requests, seed=args.seed,
                        plots=not args.no_plots)
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------


def register(sub) -> argparse.ArgumentParser:
    """Add ``coe`` (with ``simulate``, ``route``, ``demo``, ``report``) to the ``openrdu`` subparsers."""
    coe = sub.add_parser("coe", help="Composition-of-Experts host: node model, router, demo, report",
                         description="Samba-CoE on the modelled SN40L node: expert switching DDR->HBM, "
                                     "router, reproduction report.")
    csub = coe.add_subparsers(dest="coe_command", metavar="COE_COMMAND", required=True)

    p = csub.add_parser("simulate", help="event-driven model of an SN40L node vs a DGX baseline",
                        description="Serve a request trace on an SN40L node and a DGX baseline; print switch "
                                    "time, requests/s, HBM hit rate, bytes per tier and the ratios. Every "
                                    "figure that is not measured is printed as an assumption (--json).")
    p.add_argument("--experts", type=positive_int, default=150, help="number of experts (default 150)")
    p.add_argument("--params-per-expert", type=positive_float, default=7e9,
                   help="parameters per expert, bf16 (default 7e9)")
    p.add_argument("--sockets", type=positive_int, default=8, help="SN40L sockets in the node (default 8)")
    p.add_argument("--requests", type=positive_int, default=1000,
                   help="requests in the trace (default 1000)")
    p.add_argument("--batch", type=positive_int, default=8, help="sequences per request (default 8)")
    p.add_argument("--tokens", type=positive_int, default=20,
                   help="generated tokens per sequence (default 20)")
    p.add_argument("--prompt-tokens", type=nonneg_int, default=64,
                   help="prompt tokens per sequence (default 64)")
    p.add_argument("--baseline", default="dgx-h100", choices=BASELINE_CHOICES, metavar="NAME",
                   help=f"GPU baseline, one of: {', '.join(BASELINE_CHOICES)} (default dgx-h100)")
    p.add_argument("--policy", default="lru", choices=POLICY_CHOICES, metavar="NAME",
                   help=f"eviction policy, one of: {', '.join(POLICY_CHOICES)} (default lru)")
    p.add_argument("--seed", type=int, default=0, help="seed of the request trace (default 0)")
    p.add_argument("--skew", type=_nonneg_float, default=1.0,
                   help="Zipf exponent of expert popularity (0: uniform; default 1.0)")
    p.add_argument("--prefetch", action="store_true",
                   help="copy the next request's expert while the current one runs")
    p.add_argument("--sockets-per-expert", type=positive_int, default=None,
                   help="sockets one expert runs on, tensor parallel (default: all)")
    p.add_argument("--gpus-per-expert", type=positive_int, default=8,
                   help="GPUs one expert runs on in the baseline (default 8)")
    p.add_argument("--baseline-links", type=positive_int, default=1,
                   help="host->GPU links one switch uses (default 1: the paper's 64/32 GB/s)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--hbm-cache-gb", type=positive_float, default=None,
                       help="expert cache per socket/GPU in GiB (default: HBM left after router and KV)")
    cache.add_argument("--cache-experts", type=positive_int, default=None,
                       help="expert cache holding exactly N experts, both platforms (1: the paper's "
                            "'HBM region for the active expert')")
    p.add_argument("--kv-gb", type=positive_float, default=8.0,
                   help="KV region per socket/GPU, GiB (default 8)")
    p.add_argument("--lookahead", type=nonneg_int, default=0,
                   help="queued requests a free group may look past for an expert it holds (default 0: FIFO)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_simulate, _parser=p)

    p = csub.add_parser("route", help="train the bf16 router on generated prompts, report its accuracy")
    p.add_argument("--train", type=positive_int, default=3000, help="training prompts (default 3000)")
    p.add_argument("--test", type=positive_int, default=1000, help="held-out prompts (default 1000)")
    p.add_argument("--features", type=int_at_least(2, "one hashed bucket and the bias"), default=512,
                   help="hashed features incl. bias, at least 2 (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prompt sets (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_route, _parser=p)

    p = csub.add_parser("demo", help="router -> switch -> expert on small experts with real weights",
                        description="--backend rtl (default) is the RTL-backed demo: the router GEMM, every "
                                    "DDR->HBM expert copy and every expert's fused FFN run on the "
                                    "simulated RTL (tiny preset), checked against numpy. --backend golden "
                                    "runs the same flow on the golden models.")
    p.add_argument("--backend", default="rtl", choices=("rtl", "golden"), help="rtl (default) or golden")
    p.add_argument("--experts", type=positive_int, default=3, help="small FFN experts (default 3)")
    p.add_argument("--prompts", type=positive_int, default=12, help="requests to serve (default 12)")
    p.add_argument("--cache-experts", type=positive_int, default=2,
                   help="HBM expert cache in experts (default 2)")
    p.add_argument("--policy", default="lru", choices=POLICY_CHOICES, metavar="NAME",
                   help=f"eviction policy, one of: {', '.join(POLICY_CHOICES)} (default lru)")
    p.add_argument("--sim", default="verilator", choices=("icarus", "verilator"), help="RTL simulator")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="also write the --json object to PATH (rtl: docs/data/coe_rtl_demo_<sim>.json "
                        "feeds openrdu coe report)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and prompts (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_demo, _parser=p)

    p = csub.add_parser("report", help="write docs/coe.md and docs/img/coe_*.png (reproduction report)")
    p.add_argument("--output", default="docs/coe.md", help="Markdown report path (default docs/coe.md)")
    p.add_argument("--img-dir", default="docs/img", help="where the plots go (default docs/img)")
    p.add_argument("--requests", type=positive_int, default=1000,
                   help="requests per simulation (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.set_defaults(func=cmd_report, _parser=p)
    return coe


def main(argv: list[str] | None = None) -> int:
    """``python -m openrdu.cli.coe coe ...``: the CoE commands outside ``openrdu``."""
    return run_one_command(register, argv, "OpenRDU CoE host commands")


if __name__ == "__main__":
    raise SystemExit(main())
