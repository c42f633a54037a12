"""sim.build_progress: a model build reports its stage, files compiled, elapsed time and an
estimate, and the ``openrdu`` reporter prints them without flooding a log."""

import io
import time

import pytest

from hdl.stream import StreamFifo
from openrdu.cli.common import build_reporter
from sim.build_progress import BuildStatus, BuildWatcher, format_seconds, reporting
from sim.runner import build_model, write_verilog


def _watcher(folder, simulator="verilator", history=None, reporter=None):
    return BuildWatcher(folder, simulator=simulator, design="tiny/x", reporter=reporter or (lambda s: None),
                        history_dir=history or folder)


def test_verilator_stages_follow_the_build_folder(tmp_path):
    w = _watcher(tmp_path)
    assert w.status().stage == "verilating"
    (tmp_path / "Vtop.mk").write_text("")
    for name in ("Vtop", "Vtop__1", "Vtop__2", "verilator"):
        (tmp_path / f"{name}.cpp").write_text("")
    status = w.status()
    assert (status.stage, status.done, status.total) == ("compiling C++", 0, 4)
    (tmp_path / "Vtop.o").write_text("")
    (tmp_path / "Vtop__1.o").write_text("")
    status = w.status()
    assert (status.stage, status.done, status.total) == ("compiling C++", 2, 4)
    assert status.estimate_s is not None and status.estimate_s >= 0
    for name in ("Vtop__2", "verilator"):
        (tmp_path / f"{name}.o").write_text("")
    assert w.status().stage == "linking"


def test_other_simulators_name_their_stage(tmp_path):
    assert _watcher(tmp_path, "icarus").status().stage == "compiling"
    assert _watcher(tmp_path, "amaranth").status().stage == "generating Verilog"


def test_the_previous_build_gives_the_first_estimate(tmp_path):
    with _watcher(tmp_path / "b", history=tmp_path):
        pass
    assert (tmp_path / "last_build.json").exists()
    (tmp_path / "last_build.json").write_text('{"build_s": 600}')
    status = _watcher(tmp_path / "b", history=tmp_path).status()
    assert status.stage == "verilating" and 590 < status.estimate_s <= 600


def test_a_failed_build_leaves_no_history(tmp_path):
    with pytest.raises(RuntimeError), _watcher(tmp_path):
        raise RuntimeError("build failed")
    assert not (tmp_path / "last_build.json").exists()


def test_status_line_names_stage_files_elapsed_and_estimate():
    line = BuildStatus("verilator", "small/system_verilator", "compiling C++", 12, 40, 190.0, 240.0).line()
    assert line == ("building small/system_verilator (verilator): compiling C++ 12/40 files, 3m10s elapsed, "
                    "about 4m00s left")
    assert format_seconds(42.4) == "42s"


def test_reporter_prints_stage_changes_at_once_and_otherwise_every_interval():
    out = io.StringIO()
    report = build_reporter(out, every_s=3600)
    verilating = BuildStatus("verilator", "d", "verilating", None, None, 1.0, None)
    for _ in range(5):
        report(verilating)
    report(BuildStatus("verilator", "d", "compiling C++", 1, 9, 2.0, None))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "verilating" in lines[0] and "1/9 files" in lines[1]


@pytest.mark.cocotb
def test_a_real_build_reports_its_progress(simulator, tmp_path, monkeypatch):
    import sim.build_progress

    monkeypatch.setattr(sim.build_progress, "POLL_S", 0.002)
    source = tmp_path / "fifo.v"
    write_verilog(StreamFifo(64, 16), source, "top")
    seen: list[BuildStatus] = []
    start = time.monotonic()
    with reporting(seen.append):
        build_model([source], simulator=simulator, build_dir=tmp_path / "build")
    assert seen, f"no progress reported during a {time.monotonic() - start:.2f} s build"
    allowed = {"verilating", "compiling C++", "linking"} if simulator == "verilator" else {"compiling"}
    assert {s.stage for s in seen} <= allowed
    assert all(s.simulator == simulator and s.design.endswith("build") for s in seen)
    assert [s.elapsed_s for s in seen] == sorted(s.elapsed_s for s in seen)
    assert (tmp_path / "build" / "last_build.json").exists()
