"""Re-run the placement that hung the unfused FFN on ``small`` (docs/kernels.md, "Fixed: tokens
one kernel left behind started the next kernel's AGCU").

Before the router's fix, commit 09f8985 with ``PYTHONHASHSEED=0`` placed and routed the unfused
FFN 32×64×256 (relu) so that its second launch (``down``) never completed: ``wdone`` tokens the
first launch left on a pin it did not route started ``agcu_w1`` three extra times. Since
Program Load clears the tile's token counters it completes, bit exact. This script
compiles the kernel at that commit (in a temporary git worktree), pickles its launches, and
runs them with today's RTL and compiler (same HBM layout) on the chosen simulator, with a
launch timeout. On Icarus a timed-out launch reports the busy units and the FIFOs that still
hold data (``stuck`` in the error message).

    .venv/bin/python scripts/repro_ffn_hang.py [--sim icarus|verilator] [--timeout CYCLES]
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_COMMIT = "09f8985"
SHAPE = (32, 64, 256)

_DUMP = f"""
import pickle, sys
from compiler import compile_kernel
ck = compile_kernel("ffn", "small", {SHAPE!r}, act="relu", fused=False)
pickle.dump(ck.launches, open(sys.argv[1], "wb"))
"""


def old_launches(workdir: Path) -> list:
    tree = workdir / "old"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), OLD_COMMIT], cwd=REPO, check=True,
                   capture_output=True)
    try:
        out = workdir / "launches.pkl"
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(tree))
        subprocess.run([sys.executable, "-c", _DUMP, str(out)], cwd=tree, env=env, check=True)
        with open(out, "rb") as f:
            return pickle.load(f)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", default="icarus", choices=("icarus", "verilator"))
    parser.add_argument("--timeout", type=int, default=15_000, help="cycles each launch may take")
    parser.add_argument("--build-dir", default=str(REPO / "build" / "hang"))
    args = parser.parse_args()

    from compiler import compile_kernel
    from sim.kernels import random_inputs, run_many
    from sim.runner import SimulationError

    with tempfile.TemporaryDirectory() as tmp:
        launches = old_launches(Path(tmp))
    compiled = compile_kernel("ffn", "small", SHAPE, act="relu", fused=False)
    compiled.launches = launches
    for launch in launches:
        print(launch.name, sorted(s for s in launch.roles.values() if s.startswith("pcu")), flush=True)
    start = time.time()
    try:
        run = run_many([(compiled, random_inputs(compiled))], simulator=args.sim, build_dir=args.build_dir,
                       timeout_cycles=args.timeout)[0]
        print(f"completed: {run.cycles} cycles, bit exact {run.bit_exact}")
    except SimulationError as error:
        print(error)
    print(f"wall {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
