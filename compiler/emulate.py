"""Run a compiled kernel on the units' golden models instead of the RTL (no simulator).

Each launch is evaluated as a dataflow graph: load AGCUs read vectors from a flat model of
HBM at the addresses their counter nests give, PMUs and PCUs run their golden models
(:func:`hdl.pmu.run_golden`, :func:`hdl.pcu.run_golden`) on the streams their routes carry,
and store AGCUs write back. A load AGCU runs once per token it receives
(:func:`compiler.streams.start_tokens`: the host's start, or one per write run of the PMU
whose ``wdone`` feeds it). This checks a mapping's programs, routes and layouts end to end in
seconds, independently of the RTL; the simulators then check that the hardware does the same.
"""

from __future__ import annotations

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.pcu import PcuConfig
from hdl.pcu import run_golden as pcu_golden
from hdl.pmu import PmuConfig
from hdl.pmu import run_golden as pmu_golden

from .program import CompiledKernel, lines_to_vectors
from .streams import agcu_addresses, start_tokens

__all__ = ["emulate"]


def emulate(compiled: CompiledKernel, words: dict, *, streams: dict | None = None) -> dict:
    """Outputs of ``compiled`` for bf16 input ``words``, computed with the golden models.

    ``streams``, when given, receives ``(launch name, pin) → vectors`` for the vector output
    (``vout``) of every unit the launch ran: what the unit sent."""
    lanes = next(iter(compiled.regions.values())).lanes
    vpl = 16 // lanes
    memory = np.zeros((compiled.hbm_lines * vpl + vpl, lanes), np.uint32)
    for base, lines in compiled.preload(words):
        vec = lines_to_vectors(lines, len(lines) * vpl, lanes)
        memory[base * vpl: base * vpl + len(vec)] = vec
    for launch in compiled.launches:
        sent = _run_launch(launch, memory, vpl)
        if streams is not None:
            streams.update({(launch.name, pin): len(vectors) for pin, vectors in sent.items()
                            if pin.endswith(".vout")})
    vectors = {}
    for name in compiled.outputs:
        r = compiled.regions[name]
        vectors[name] = memory[r.base * vpl: r.base * vpl + r.vectors].copy()
    return compiled.collect(vectors)


def _run_launch(launch, memory: np.ndarray, vpl: int) -> dict[str, np.ndarray]:
    """Run one launch on ``memory``; return what each output pin of the units it ran sent."""
    kernel = launch.kernel
    params = kernel.params
    sources: dict[str, str] = {}     # sink pin -> source pin
    for route in kernel.routes:
        for sink in route.sinks:
            sources[sink] = route.source
    outputs: dict[str, np.ndarray] = {}
    done: set[str] = set()

    def stream(pin: str):
        src = sources.get(pin)
        if src is None:
            return None
        unit = src.split(".")[0]
        if src not in outputs:
            evaluate(unit)
        return outputs[src]

    def evaluate(site: str) -> None:
        if site in done:
            return
        done.add(site)
        config = kernel.units[site]
        if isinstance(config, AgcuConfig):
            base = launch.segments[site][0].base * vpl
            addresses = agcu_addresses(config)
            if config.direction == "load":
                runs = start_tokens(kernel, site)
                outputs[f"{site}.vout"] = np.concatenate([memory[base + addresses]] * runs) if runs else \
                    np.zeros((0, params.preset.lanes), np.uint32)
            else:
                data = stream(f"{site}.vin")
                memory[base + addresses] = data[:len(addresses)]
        elif isinstance(config, PmuConfig):
            result = pmu_golden(config, params.pmu, vin=stream(f"{site}.vin"), sin=stream(f"{site}.sin"))
            outputs[f"{site}.vout"], outputs[f"{site}.sout"] = result["vout"], result["sout"]
        elif isinstance(config, PcuConfig):
            result = pcu_golden(config, params.pcu, vin0=stream(f"{site}.vin0"), vin1=stream(f"{site}.vin1"),
                                sin0=stream(f"{site}.sin0"), sin1=stream(f"{site}.sin1"))
            outputs[f"{site}.vout"], outputs[f"{site}.sout"] = result["vout"], result["sout"]

    for site, config in kernel.units.items():
        if isinstance(config, AgcuConfig) and config.direction == "store":
            evaluate(site)
    return outputs
