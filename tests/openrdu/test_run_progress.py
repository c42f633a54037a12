"""The cycle progress line of long runs (``openrdu run``, the demo): never silent in a log, and no
estimate before there is a rate to estimate from."""

import openrdu.flows.run as run_flow


class Recorder:
    def __init__(self):
        self.lines = []

    def print(self, line):
        self.lines.append(line)


def test_progress_lines_in_a_log_estimate_from_the_rate_since_the_first_report(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(run_flow.time, "monotonic", lambda: now[0])
    console = Recorder()
    progress = run_flow._cycle_reporter(console, None, "verilator: ffn", every_s=30.0)
    progress(4096, 14000)           # the first report: it starts the clock, nothing to estimate from
    now[0] += 31.0
    progress(7196, 14000)           # 3100 cycles in 31 s: 100 cycles/s, 6804 cycles left
    now[0] += 10.0
    progress(8196, 14000)           # within 30 s of the last line: not printed in a log
    assert console.lines == ["verilator: ffn: 7,196 of about 14,000 cycles, 31s elapsed, about 1m08s left"]


def test_progress_first_report_has_no_estimate(monkeypatch):
    now = [5.0]
    monkeypatch.setattr(run_flow.time, "monotonic", lambda: now[0])

    class Status:
        text = None

        def update(self, line):
            self.text = line

    status = Status()
    progress = run_flow._cycle_reporter(Recorder(), status, "icarus: gemm")
    progress(1024, 9000)
    assert status.text == "icarus: gemm: 1,024 of about 9,000 cycles, 0s elapsed"
