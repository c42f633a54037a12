"""How much data each stream of a launch carries, counted from the unit programs alone.

A launch's :class:`hdl.kernel_image.Kernel` holds every unit's program and every route; these
functions count, without running anything, what the programs make the units send:

* a unit runs its program once per launch, except a PMU side, which runs ``runs`` times, and
  an AGCU, which runs once per token on its ``start`` pin (:func:`start_tokens`);
* a load AGCU sends one vector per step of each run, a store AGCU takes one per step
  (:func:`agcu_streams`, which also gives the 64-byte lines each one touches and the line
  requests it issues after coalescing, :func:`line_requests`);
* a PMU sends one vector per read access inside its address range (:func:`pmu_output_vectors`);
* a PCU sends one vector per step in SIMD mode, only the emitted entries with an accumulator
  that feeds the output, and ``stages`` vectors per tile in systolic mode
  (:func:`pcu_output_vectors`).

The roofline (:mod:`compiler.roofline`) reads these counts; the emulator (:mod:`compiler.emulate`)
takes its AGCU runs and addresses from here, and the tests check every count against the
vectors the emulator actually moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.agcu import AgcuConfig
from hdl.counters import Counter, nest_steps
from hdl.numerics.ops import ALU_OPS
from hdl.pcu import PcuConfig
from hdl.pmu import AddressProgram, PmuConfig

__all__ = ["start_tokens", "nest_values", "agcu_addresses", "line_requests", "AgcuStream", "agcu_streams",
           "pcu_output_vectors", "pmu_read_addresses", "pmu_output_vectors", "source_vectors",
           "route_vectors"]

_WORD_MASK = (1 << 32) - 1


def _sources(kernel) -> dict[str, str]:
    """Sink pin → the source pin of the route that feeds it."""
    return {sink: route.source for route in kernel.routes for sink in route.sinks}


def start_tokens(kernel, site: str) -> int:
    """Tokens that reach ``site.start`` in one launch, i.e. the runs of an AGCU there.

    The host sends one start token per launch; a PMU's ``wdone`` (``rdone``) gives one per write
    (read) run, an AGCU's ``done`` one per run, and a PCU's ``done`` one (its single run).

    Raises
    ------
    NotImplementedError
        For a token source none of these describes.
    """
    source = _sources(kernel).get(f"{site}.start")
    if source is None:
        return 0
    if source == "host.start":
        return 1
    unit, pin = source.split(".")
    config = kernel.units.get(unit)
    if isinstance(config, PmuConfig) and pin in ("wdone", "rdone"):
        side = config.write if pin == "wdone" else config.read
        return side.runs if side is not None else 0
    if isinstance(config, AgcuConfig) and pin == "done":
        return start_tokens(kernel, unit)
    if isinstance(config, PcuConfig) and pin == "done":
        return 1
    raise NotImplementedError(f"start tokens from {source}")


def nest_values(counters: list[Counter]) -> np.ndarray:
    """``Σ`` of the counter values at every step of one run of a nest, in step order (innermost
    counter fastest), as int64."""
    total = np.zeros(1, np.int64)
    for counter in reversed(counters):
        axis = counter.start + counter.stride * np.arange(counter.trips, dtype=np.int64)
        total = np.add.outer(total, axis).ravel()
    return total


def agcu_addresses(config: AgcuConfig, scalar: int = 0) -> np.ndarray:
    """The vector address of every step of one run (:meth:`hdl.agcu.AgcuConfig.vector_addresses`
    with numpy; ``scalar``: the word a ``base_from_scalar`` run takes from ``sin``)."""
    base = config.offset + (scalar if config.base_from_scalar else 0)
    return base + nest_values(config.counters)


def line_requests(addresses: np.ndarray, vectors_per_line: int) -> int:
    """Line requests one run issues: a vector joins the pending request when its address is
    the previous one plus one within the same line, anything else starts a new request (the
    coalescing rule of :mod:`hdl.agcu.golden`)."""
    if len(addresses) == 0:
        return 0
    joins = (np.diff(addresses) == 1) & (addresses[1:] % vectors_per_line != 0)
    return int(len(addresses) - joins.sum())


@dataclass(frozen=True)
class AgcuStream:
    """What one AGCU moves in a launch.

    Attributes
    ----------
    site : str
    direction : str
        ``"load"`` or ``"store"``.
    runs : int
        Runs (start tokens) in the launch.
    vectors : int
        Vectors it sends (load) or takes (store): ``runs ×`` steps per run.
    requests : int
        Line requests it issues: ``runs ×`` the coalesced requests of one run.
    lines : numpy.ndarray
        The distinct 64-byte lines (physical line addresses) one run touches.
    """

    site: str
    direction: str
    runs: int
    vectors: int
    requests: int
    lines: np.ndarray


def _segment_base(launch, site: str, config: AgcuConfig) -> int:
    for segment in launch.segments.get(site, []):
        if segment.index == config.segment:
            return segment.base
    raise ValueError(f"launch {launch.name}: AGCU {site} uses segment {config.segment}, which the "
                     f"launch does not write")


def agcu_streams(launch) -> list[AgcuStream]:
    """Every configured AGCU of ``launch`` (a :class:`compiler.program.Launch`) with its traffic."""
    kernel = launch.kernel
    vpl = kernel.params.agcu.vectors_per_line
    streams = []
    for site, config in kernel.units.items():
        if not isinstance(config, AgcuConfig):
            continue
        runs = start_tokens(kernel, site)
        addresses = agcu_addresses(config)
        lines = _segment_base(launch, site, config) + np.unique(addresses // vpl)
        streams.append(AgcuStream(site, config.direction, runs, runs * len(addresses),
                                  runs * line_requests(addresses, vpl), lines))
    return streams


def pcu_output_vectors(config: PcuConfig, params) -> int:
    """Vectors a PCU program sends on ``vout`` in its run (``params``: its
    :class:`hdl.pcu.PcuParams`)."""
    if not config.vector_output:
        return 0
    steps = nest_steps(config.counters)
    if config.mode == "systolic":
        return steps // config.counters[0].trips * params.stages
    acc = config.accumulator
    if acc is not None and acc.to_vout and acc.emit:
        # an emit step per combination of the other counters' values
        per_emit = 1
        for index in acc.emit:
            per_emit *= config.counters[index].trips if index < len(config.counters) else 1
        return steps // per_emit
    return steps


def pmu_read_addresses(program: AddressProgram, scalar: int = 0) -> np.ndarray:
    """The base word address of every read access of one run (:func:`hdl.pmu.golden.addresses`
    with numpy: the counter sum, then the address ALU's ops)."""
    words = (program.offset + scalar + nest_values(program.counters)) & _WORD_MASK
    words = words.astype(np.uint32)
    for op, imm in program.alu:
        spec = ALU_OPS[op]
        words = np.asarray(spec.golden(words, np.uint32(imm)) if spec.arity == 2 else spec.golden(words),
                           np.uint32)
    return words.astype(np.int64)


def pmu_output_vectors(config: PmuConfig) -> int:
    """Vectors a PMU sends on ``vout`` in a launch: its read accesses inside
    ``[range_lo, range_hi)`` over all read runs (none when it reads out scalars)."""
    read = config.read
    if read is None or config.scalar_out:
        return 0
    if config.range_lo == 0 and config.range_hi >= 1 << 32:
        per_run = nest_steps(read.counters)
    else:
        addresses = pmu_read_addresses(read)
        per_run = int(((addresses >= config.range_lo) & (addresses < config.range_hi)).sum())
    return per_run * read.runs


def source_vectors(kernel, pin: str) -> int:
    """Vectors the output pin ``pin`` (``"site.vout"``) sends in one launch.

    Raises
    ------
    NotImplementedError
        For a pin that is not the vector output of a configured unit.
    """
    site, name = pin.split(".")
    config = kernel.units.get(site)
    if name == "vout" and isinstance(config, AgcuConfig):
        runs = start_tokens(kernel, site) if config.direction == "load" else 0
        return runs * len(agcu_addresses(config))
    if name == "vout" and isinstance(config, PmuConfig):
        return pmu_output_vectors(config)
    if name == "vout" and isinstance(config, PcuConfig):
        return pcu_output_vectors(config, kernel.params.pcu)
    raise NotImplementedError(f"vectors sent by {pin}")


def route_vectors(kernel) -> dict[str, int]:
    """Source pin → vectors, for every route of ``kernel`` on the vector fabric."""
    fg = kernel.fg
    out = {}
    for route in kernel.routes:
        if fg.graph.nodes[fg.pin_node(route.source)]["fabric"] == "vector":
            out[route.source] = source_vectors(kernel, route.source)
    return out
