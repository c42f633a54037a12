"""The stream smoke test on every generated stream top (``openrdu smoke``, the start of the demo)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from hdl.tops import stream_tops

__all__ = ["run_smoke", "smoke_table", "report_unusable"]


def run_smoke(preset_name: str, simulators: list[str], *, items: int, seed: int | None,
              waves: bool, build_root: Path, console=None) -> list[dict]:
    """Run the stream smoke testbench on every generated stream top and each simulator."""
    from sim import toolchain
    from sim.runner import SimulationError, run_cocotb

    rows = []
    factories = stream_tops(preset_name)
    for sim in simulators:
        status = toolchain.simulator_status(sim)
        for top in factories:
            row = {"simulator": sim, "preset": preset_name, "top": top, "items": items}
            if not status.usable:
                rows.append({**row, "result": "unavailable", "reason": status.reason})
                continue
            label = f"{top} on {sim}: building and running {items} payloads each way"
            if console is not None and not console.is_terminal:
                console.print(label)
            spinner = (console.status(label) if console is not None and console.is_terminal
                       else nullcontext())
            try:
                with spinner:
                    result = run_cocotb(
                        factories[top](), "sim.testbenches.stream_smoke", simulator=sim,
                        build_dir=build_root / preset_name / f"{top}-{sim}", seed=seed,
                        waves=waves, env={"OPENRDU_SMOKE_ITEMS": str(items)})
            except SimulationError as e:
                rows.append({**row, "result": "error", "reason": str(e)})
                continue
            stalls = result.metrics.get("random_stalls_lose_nothing", {})
            full = result.metrics.get("full_rate_one_per_cycle", {})
            rows.append({
                **row,
                "version": status.version,
                "result": "pass" if result.passed else "FAIL",
                "failed_tests": result.failed_tests,
                "payload_bits": stalls.get("payload_bits"),
                "cycles_random_stalls": stalls.get("cycles"),
                "cycles_full_rate": full.get("cycles"),
                "cycles_per_s": stalls.get("cycles_per_s"),
                "build_s": round(result.build_s, 3),
                "run_s": round(result.run_s, 3),
                "waves": str(result.waves) if result.waves else None,
            })
    return rows


def smoke_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="Stream smoke test: random valid/ready stalls, nothing lost or duplicated")
    for column, justify in (("simulator", "left"), ("top", "left"), ("bits", "right"),
                            ("items", "right"), ("cycles (stalls)", "right"),
                            ("cycles (full rate)", "right"), ("cycles/s", "right"),
                            ("build s", "right"), ("result", "left")):
        table.add_column(column, justify=justify)
    for r in rows:
        if r["result"] in ("unavailable", "error"):
            table.add_row(r["simulator"], r["top"], "-", str(r["items"]), "-", "-", "-", "-",
                          f"[yellow]{r['result']}[/yellow]")
            continue
        color = "green" if r["result"] == "pass" else "red"
        table.add_row(r["simulator"], r["top"], str(r["payload_bits"]), str(r["items"]),
                      str(r["cycles_random_stalls"]), str(r["cycles_full_rate"]),
                      f"{r['cycles_per_s']:,.0f}" if r["cycles_per_s"] else "-",
                      f"{r['build_s']:.2f}", f"[{color}]{r['result']}[/{color}]")
    return table


def report_unusable(console, rows):
    seen = set()
    for r in rows:
        if r["result"] in ("unavailable", "error") and r["simulator"] not in seen:
            seen.add(r["simulator"])
            console.print(f"[yellow]{r['simulator']}: {r['reason']}[/yellow]")

