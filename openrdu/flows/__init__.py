"""The flows behind the ``openrdu`` commands: each builds or measures something and returns plain
data (dicts, dataclasses, paths); :mod:`openrdu.cli` turns arguments into calls and results into
tables. A flow may use every layer below (hdl, compiler, sim, coe_host)."""

__all__ = ["simulators"]


def simulators(choice: str) -> list[str]:
    """``--sim`` value -> the simulators to run (``all``: Verilator first, then Icarus)."""
    return ["verilator", "icarus"] if choice == "all" else [choice]
