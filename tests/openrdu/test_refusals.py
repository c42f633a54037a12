"""Bad input to every ``openrdu`` command ends with exit status 2 and one line that names the bad
value and says what is allowed, before anything is simulated (issue: runs that can't corrupt each
other). In-process: each case is refused before a simulator starts."""

from __future__ import annotations

import numpy as np
import pytest

from openrdu.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    np.save(d / "one.npy", np.ones((4, 4), np.float32))
    (d / "text.txt").write_text("not numbers\n")
    np.savez(d / "strings.npz", A=np.array([["a"] * 4] * 4), B=np.ones((4, 4), np.float32))
    np.savez(d / "complex.npz", A=np.ones((4, 4)) * (1 + 2j), B=np.ones((4, 4), np.float32))
    np.savez(d / "good.npz", A=np.ones((4, 4), np.float32), B=np.ones((4, 4), np.float32))
    np.savez(d / "nokey.npz", A=np.ones((4, 4), np.float32))
    (d / "folder").mkdir()
    return d


RUN = ["run", "gemm", "--preset", "tiny", "--shape", "4,4,4", "--sim", "icarus"]

CASES = [
    # (id, argv with {d} for the inputs folder, text the one line must contain)
    ("inputs-folder", RUN + ["--inputs", "{d}/folder"], "{d}/folder is a folder"),
    ("inputs-npy", RUN + ["--inputs", "{d}/one.npy"], "(an .npy file)"),
    ("inputs-text", RUN + ["--inputs", "{d}/text.txt"], "{d}/text.txt is not an .npz archive"),
    ("inputs-strings", RUN + ["--inputs", "{d}/strings.npz"], "array 'A' has dtype <U1"),
    ("inputs-complex", RUN + ["--inputs", "{d}/complex.npz"], "array 'A' is complex"),
    ("inputs-missing-key", RUN + ["--inputs", "{d}/nokey.npz"], "lacks the key(s) B"),
    ("inputs-absent", RUN + ["--inputs", "{d}/absent.npz"], "{d}/absent.npz does not exist"),
    ("shape-negative", ["run", "gemm", "--preset", "tiny", "--shape", "-1,4,4"], "'-1,4,4'"),
    ("seed-negative", RUN + ["--seed=-1"], "--seed: expected an integer >= 0, got -1"),
    ("timeout-zero", RUN + ["--timeout-cycles", "0"], "--timeout-cycles: expected a positive integer, got 0"),
    ("out-unwritable", RUN + ["--out", "/proc/o.npz"], "--out /proc/o.npz: cannot write"),
    ("out-suffix", RUN + ["--out", "{d}/o.txt"], "--out {d}/o.txt: the result is written as an .npz"),
    ("out-is-inputs", RUN + ["--inputs", "{d}/good.npz", "--out", "{d}/good.npz"], "is the --inputs file"),
    ("floorplan-type", RUN + ["--floorplan", "{d}/fp.xyz"], "unknown picture type '.xyz'"),
    ("floorplan-unwritable", RUN + ["--floorplan", "/proc/fp.png"], "--floorplan /proc/fp.png: cannot"),
    ("gemm-gated", RUN + ["--gated"],
     "--gated does not apply to gemm (it takes: --act, --bias, --out-dtype)"),
    ("gemm-causal", RUN + ["--causal"], "--causal does not apply to gemm"),
    ("gemm-eps", RUN + ["--eps", "1e-6"], "--eps does not apply to gemm"),
    ("ffn-bias", ["run", "ffn", "--preset", "tiny", "--shape", "4,4,4", "--bias"],
     "--bias does not apply to ffn"),
    ("ffn-out-dtype", ["run", "ffn", "--preset", "tiny", "--shape", "4,4,4", "--out-dtype", "f32"],
     "--out-dtype does not apply to ffn"),
    ("rmsnorm-act", ["run", "rmsnorm", "--preset", "tiny", "--shape", "4,8", "--act", "relu"],
     "--act does not apply to rmsnorm (it takes: --eps)"),
    ("attention-unfused-tiny", ["run", "attention", "--preset", "tiny", "--shape", "8,8", "--unfused"],
     "unfused attention needs 8 PCUs"),
    ("coe-requests", ["coe", "simulate", "--requests", "1000000000"], "requests 1000000000 is more than"),
    ("coe-experts", ["coe", "simulate", "--experts", "100000000"], "experts 100000000 is more than"),
    ("coe-sockets", ["coe", "simulate", "--sockets", "1000000"], "sockets 1000000 is more than"),
    ("coe-experts-ddr", ["coe", "simulate", "--experts", "2000"], "experts 2000 x 7e+09 parameters need"),
    ("coe-features", ["coe", "route", "--features", "1"], "--features: expected an integer >= 2"),
    ("coe-report-output", ["coe", "report", "--output", "/proc/coe.md"], "--output /proc/coe.md: cannot"),
    ("coe-report-suffix", ["coe", "report", "--output", "{d}/coe.txt"], "give a name ending in .md"),
    ("coe-demo-save", ["coe", "demo", "--backend", "golden", "--save", "/proc/x.json"],
     "--save /proc/x.json"),
    ("mem-bytes-partial-line", ["mem-bench", "--bytes", "100"], "--bytes 100: must be a multiple of"),
    ("mem-bytes-short", ["mem-bench", "--bytes", "63"], "--bytes 63: must be a multiple of"),
    ("mem-bytes-huge", ["mem-bench", "--bytes", "1000000000000000"], "--bytes 1000000000000000:"),
    ("mem-stride", ["mem-bench", "--stride", "7"], "--stride 7: must be a positive multiple of 64"),
    ("mem-preset", ["mem-bench", "--preset", "HBM9"], "--preset HBM9: unknown DRAM timing preset"),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_naming_it(files, capsys, argv, expected):
    argv = [a.format(d=files) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out[-500:], captured.err[-500:])
    assert not captured.out, f"the refusal must go to stderr, stdout had: {captured.out[-300:]}"
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1, captured.err
    assert expected.format(d=files) in errors[0], errors[0]
