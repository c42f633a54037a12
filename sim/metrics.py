"""Let a cocotb testbench hand numbers (cycles, counts) back to the process that ran it.

:func:`sim.runner.run_cocotb` sets ``OPENRDU_METRICS_FILE`` for the simulator
process; a testbench calls :func:`record` and the runner returns the values in
:attr:`sim.runner.SimResult.metrics`, keyed by test name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS_ENV = "OPENRDU_METRICS_FILE"

__all__ = ["METRICS_ENV", "record"]


def record(test_name: str, **values) -> None:
    """Merge ``values`` (JSON-serialisable) into the metrics of ``test_name``.

    Does nothing when the testbench was not started by :func:`sim.runner.run_cocotb`.
    """
    target = os.environ.get(METRICS_ENV)
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(test_name, {}).update(values)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
