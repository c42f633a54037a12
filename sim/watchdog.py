"""The runners' watchdog: what a launch that did not finish left stalled, and its ABORT.

A kernel bench (:mod:`sim.testbenches.kernel_bench`, :mod:`sim.testbenches.system_bench`) gives
each launch a cycle limit. When it passes, the bench

1. takes a :func:`stuck_report`: the units that stayed busy and the pins where a payload stayed
   offered and not taken over :data:`SAMPLE_CYCLES` cycles, read from the system's top-level
   ``unit_busy``, ``agcu_busy`` and ``pin_waiting`` ports (so it is the same on Icarus and
   Verilator), plus, where the simulator shows the tile's insides (Icarus), the unit FIFOs that
   hold data;
2. sends ``ABORT`` (:func:`abort_launch`) and waits for the launch controller to leave
   ``RUNNING`` (it reports ``ABORTED`` once every unit has stopped);
3. records both with the launch, which then counts as failed: :func:`describe_failure` turns the
   record into the :class:`sim.runner.SimulationError` message that ``openrdu run`` prints.

:func:`watch_names` gives the names of the bits of those ports for a system; the runners put them
in the bench's job.
"""

from __future__ import annotations

from hdl.launch import Command, LaunchState, command_word

__all__ = ["SAMPLE_CYCLES", "ABORT_LIMIT", "watch_names", "state_name", "stuck_report", "abort_launch",
           "describe_failure"]

#: Cycles over which a unit must stay busy, or a pin keep a payload waiting, to be called stalled.
SAMPLE_CYCLES = 16
#: Cycles the bench waits for ABORT to be taken and to finish (an AGCU waits for its memory).
ABORT_LIMIT = 20_000


def watch_names(system) -> dict[str, list[str]]:
    """Names of the bits of a :class:`hdl.system.TileSystem`'s stall ports: ``unit_busy`` (PCU and
    PMU sites), ``agcu_busy`` (AGCU sites) and ``pin_waiting`` (``"site.pin"``)."""
    return {"unit_busy": [site.name for site in system.tile.unit_sites],
            "agcu_busy": list(system.agcu_names),
            "pin_waiting": list(system.tile.watched_pins)}


def state_name(value) -> str:
    """The :class:`hdl.launch.LaunchState` name of a ``state`` value (the number if it is none)."""
    try:
        return LaunchState(int(value)).name
    except (ValueError, TypeError):
        return str(value)


def _read(handle):
    try:
        value = handle.value
        return int(value.to_unsigned()) if hasattr(value, "to_unsigned") else int(value)
    except (AttributeError, ValueError, TypeError):
        return None


def _inside(dut) -> dict:
    """Where the simulator shows the tile's insides (Icarus does; the Verilator build has no public
    internal signals): the units that are not configured and, per unit or switch, the FIFOs that
    hold data (``{instance: [fifo, ...]}``)."""
    report = {"visible": False, "unconfigured": [], "holding": {}}
    try:
        children = list(dut.tile)
    except (AttributeError, TypeError, RuntimeError):
        return report
    report["visible"] = True
    for child in children:
        name = child._name
        if not name.startswith(("pcu_", "pmu_", "agcu_", "switch_")) or name.endswith("_tokens"):
            continue
        if hasattr(child, "configured") and _read(child.configured) == 0:
            report["unconfigured"].append(name)
        try:
            subs = list(child)
        except (TypeError, RuntimeError):
            continue
        held = []
        for sub in subs:
            if "fifo" not in sub._name or type(sub).__name__ != "HierarchyObject":
                continue
            level = None
            for attr in ("r_rdy", "r_level", "level"):
                if hasattr(sub, attr):
                    level = _read(getattr(sub, attr))
                    break
            if level:
                held.append(sub._name)
        if held:
            report["holding"][name] = sorted(held)
    return report


async def stuck_report(dut, names: dict[str, list[str]], cycles: int = SAMPLE_CYCLES) -> dict:
    """What a launch that timed out left stalled (call it before the ABORT).

    Returns ``{"busy": [unit, ...], "waiting": ["site.pin", ...], "inside": {...}}``: the units
    busy in each of ``cycles`` cycles, the pins where a payload waited in each of them (``names``:
    :func:`watch_names`), and :func:`_inside`'s view of the unit FIFOs.
    """
    from cocotb.triggers import FallingEdge

    ports = [("unit_busy", "busy"), ("agcu_busy", "busy"), ("pin_waiting", "waiting")]
    steady = {port: -1 for port, _ in ports}
    for _ in range(cycles):
        await FallingEdge(dut.clk)
        for port, _ in ports:
            value = _read(getattr(dut, port)) if names.get(port) else 0
            steady[port] &= value or 0
    report = {"busy": [], "waiting": []}
    for port, key in ports:
        report[key] += [name for k, name in enumerate(names.get(port, [])) if steady[port] >> k & 1]
    report["inside"] = _inside(dut)
    return report


async def abort_launch(dut, limit: int = ABORT_LIMIT) -> dict:
    """Send ``ABORT`` on the host stream and wait until the controller leaves ``RUNNING`` and the
    abort is complete. Returns ``{"state": name, "cycles": n}`` (``state`` ``ABORTED`` on success;
    the name of the state it stayed in after ``limit`` cycles otherwise)."""
    import cocotb
    from cocotb.triggers import RisingEdge

    from .cocotb_streams import StreamSource

    sender = cocotb.start_soon(StreamSource(dut, "host").send([command_word(Command.ABORT)]))
    cycles = 0
    while cycles < limit and not (sender.done() and int(dut.state.value) == LaunchState.ABORTED):
        await RisingEdge(dut.clk)
        cycles += 1
    if not sender.done():
        sender.cancel()
        dut.host__valid.value = 0
    return {"state": state_name(int(dut.state.value)), "cycles": cycles, "taken": sender.done()}


def describe_failure(kernel: str, launches: list[dict]) -> str:
    """One message for the launches of ``kernel`` that did not finish (the records the benches write:
    ``state``, ``error``, ``cycles``, and for a timed-out launch ``limit``, ``stuck`` and ``abort``)."""
    parts = []
    for launch in launches:
        if not launch.get("timed_out"):
            parts.append(f"launch {launch.get('name')!r} ended {state_name(launch.get('state'))} "
                         f"(error {launch.get('error')}, "
                         f"unit {launch.get('error_unit')})")
            continue
        text = f"launch {launch.get('name')!r} did not finish within {launch.get('limit')} cycles (watchdog)"
        abort = launch.get("abort")
        if abort:
            if abort["state"] == LaunchState.ABORTED.name:
                text += f"; ABORT stopped it, the controller is ABORTED after {abort['cycles']} cycles"
            else:
                why = abort.get("why") or f"the controller stayed {abort['state']}"
                text += f"; ABORT did not complete: {why}"
        stuck = launch.get("stuck") or {}
        text += f"; stalled units: {', '.join(stuck.get('busy', [])) or 'none busy'}"
        if stuck.get("waiting"):
            text += f"; payloads waiting at: {', '.join(stuck['waiting'])}"
        holding = (stuck.get("inside") or {}).get("holding")
        if holding:
            text += "; FIFOs holding data: " + ", ".join(f"{unit} ({', '.join(fifos)})"
                                                         for unit, fifos in sorted(holding.items()))
        parts.append(text)
    return f"kernel {kernel} did not complete: " + "; ".join(parts)
