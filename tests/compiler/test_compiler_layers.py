"""The compiler's layering: it reads hardware parameters and configuration formats from :mod:`hdl`
but never loads the RTL (the tile, the units' Amaranth components, the Verilog back-end); and
its kernels keep one protocol (:class:`compiler.mapping.KernelMapping`), listed once in
:mod:`compiler.registry`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Modules the compiler must not load: the tile and system tops (which elaborate every unit),
#: each unit's Amaranth component, the memory controller's RTL and Amaranth's back-ends.
FORBIDDEN = ("hdl.tile", "hdl.system", "hdl.tops", "hdl.pcu.unit", "hdl.pmu.unit", "hdl.agcu.unit",
             "hdl.memctrl.controller", "hdl.memctrl.tier", "amaranth.back")


def test_compiling_every_kernel_loads_no_rtl_module():
    """In a fresh interpreter: import the compiler, compile every kernel fused and unfused, emulate
    one, and list the loaded modules."""
    script = (
        "import json, sys\n"
        "from compiler import compile_kernel\n"
        "from compiler.emulate import emulate\n"
        "import compiler.kernels\n"
        "for kernel, preset, shape, options in [\n"
        "        ('gemm', 'tiny', (6, 5, 3), dict(act='relu', bias=True)),\n"
        "        ('ffn', 'tiny', (6, 5, 7), dict(act='gelu')),\n"
        "        ('ffn', 'quad', (6, 5, 7), dict(gated=True)),\n"
        "        ('rmsnorm', 'tiny', (6, 7), {}),\n"
        "        ('attention', 'small', (16, 8), dict(causal=True))]:\n"
        "    for fused in (True, False):\n"
        "        compiled = compile_kernel(kernel, preset, shape, fused=fused, **options)\n"
        "words = {name: compiled.graph.tensors[name].shape for name in compiled.graph.inputs}\n"
        "import numpy as np\n"
        "emulate(compiled, {name: np.full(shape, 0x3F80, np.uint32) for name, shape in words.items()})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"the compiler loaded RTL modules: {bad}"


# ------------------------------------------------------------------ the kernel protocol and its registry

def test_the_registry_lists_every_kernel_and_its_facts():
    from compiler import kernels
    from compiler.mapping import KernelMapping
    from compiler.registry import KERNELS, get_kernel, kernel_names

    assert kernel_names() == ("gemm", "ffn", "attention", "rmsnorm")
    assert kernel_names(include_internal=True) == ("gemm", "ffn", "attention", "rmsnorm", "elementwise")
    assert all(isinstance(k, KernelMapping) and get_kernel(name) is k for name, k in KERNELS.items())
    # the old scattered tables are gone: the registry is the one place
    assert not any(hasattr(kernels, old) for old in ("KERNELS", "SHAPE_NAMES", "OUTPUT_NAME", "INPUT_NAMES"))
    assert {k: get_kernel(k).shape_text for k in kernel_names()} == {"gemm": "M,K,N", "ffn": "T,D,H",
                                                                      "attention": "T,D", "rmsnorm": "T,D"}
    assert {k: get_kernel(k).output_names()[0] for k in kernel_names()} == {"gemm": "C", "ffn": "Y",
                                                                             "attention": "O", "rmsnorm": "Y"}
    assert get_kernel("gemm").input_names(bias=True) == ["A", "B", "bias"]
    assert get_kernel("ffn").input_names() == ["X", "W1", "W2"]
    assert get_kernel("ffn").input_names(gated=True) == ["X", "Wg", "Wu", "Wd"]
    assert get_kernel("attention").input_names(gated=True, bias=True) == ["Q", "K", "V"]
    assert get_kernel("rmsnorm").input_names() == ["X", "g"]
    with pytest.raises(ValueError, match=r"unknown kernel 'conv'; kernels: gemm, ffn, attention, rmsnorm, "
                                         r"elementwise"):
        get_kernel("conv")


def _cases():
    # (kernel, preset, shape, options) covering every option each kernel takes
    return [("gemm", "tiny", (5, 6, 9), {"act": "silu", "bias": True, "out_dtype": "f32"}),
            ("ffn", "tiny", (6, 5, 7), {"act": "gelu"}), ("ffn", "quad", (6, 5, 7), {"gated": True}),
            ("attention", "small", (20, 8), {"causal": True, "block": 12}),
            ("rmsnorm", "tiny", (6, 7), {"eps": 1e-3}), ("elementwise", "tiny", (5, 7), {})]


def test_every_kernel_keeps_the_protocol_and_equals_its_golden_model():
    """For every registered kernel, fused and unfused: the graph's inputs and outputs are the ones
    the kernel names, the emulated launches equal the golden model bit for bit, and the golden
    model lies within the float64 reference's bound."""
    import numpy as np

    from compiler import compile_kernel
    from compiler.emulate import emulate
    from compiler.kernels import bf16_words_to_float, to_bf16_words
    from compiler.mapping import OPTION_DEFAULTS
    from compiler.registry import KERNELS, get_kernel

    assert {case[0] for case in _cases()} == set(KERNELS)
    for kernel, preset, shape, options in _cases():
        mapping = get_kernel(kernel)
        assert set(mapping.options) <= set(OPTION_DEFAULTS) and len(mapping.shape_names) == len(shape)
        assert not mapping.refused_options(options)
        graph = mapping.graph(shape, **mapping.select(options, mapping.graph_options))
        assert graph.inputs == mapping.input_names(**options)
        assert graph.outputs == mapping.output_names(**options)
        rng = np.random.default_rng(len(shape))
        for fused in (True, False):
            compiled = compile_kernel(kernel, preset, shape, fused=fused, **options)
            assert compiled.graph.inputs == graph.inputs and compiled.outputs == graph.outputs
            words = {name: to_bf16_words(rng.normal(0, 0.5, compiled.graph.tensors[name].shape))
                     for name in compiled.graph.inputs}
            want = compiled.golden(words)
            got = emulate(compiled, words)
            floats = {k: bf16_words_to_float(w).astype(np.float64) for k, w in words.items()}
            ref = mapping.reference(compiled.graph, floats)
            for name in compiled.outputs:
                assert np.array_equal(got[name], want[name]), (kernel, fused, name)
                value, bound = ref[name]
                assert compiled.graph.tensors[name].dtype == "f32" or \
                    np.all(np.abs(bf16_words_to_float(want[name]) - value) <= bound), (kernel, fused)


def test_a_caller_can_refuse_the_options_a_kernel_does_not_take():
    from compiler.registry import get_kernel

    gemm, attention = get_kernel("gemm"), get_kernel("attention")
    assert gemm.options == ("act", "bias", "out_dtype", "max_pcus", "orders")
    assert gemm.refused_options({"causal": True, "act": "gelu", "eps": 1e-6}) == ["causal"]
    assert attention.refused_options({"causal": True, "bias": True, "gated": False}) == ["bias"]
    refusal = r"kernel gemm does not take causal \(it takes: act, bias, out_dtype, max_pcus, orders\)"
    with pytest.raises(ValueError, match=refusal):
        gemm.check_options({"causal": True})
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'stride'; options: act, "):
        gemm.refused_options({"stride": 2})
    assert get_kernel("elementwise").check_options({"act": "none"}) is None


def test_the_fused_ffn_runs_the_gemm_programs():
    """Each pipeline of the fused FFN is two one-PCU GEMMs: its PCU and PMU programs are the GEMM's."""
    from dataclasses import replace

    from compiler import ffn as ff
    from compiler import gemm as gm
    from compiler.kernels import kernel_tile_params

    for gated, wbuf in ((False, True), (False, False), (True, False)):
        plans = ff.plan_ffn(kernel_tile_params("small"), 20, 16, 40, "silu", gated=gated)
        plan = next(p for p in plans if p.wbuf == wbuf)
        first, second = plan.gemm_plan(1), plan.gemm_plan(2)
        _, _, units, _ = ff.ffn_units(plan)
        for g in range(plan.pipes):
            assert units[f"pcu1_{g}"] == gm.mac_pcu(first) and units[f"pcu2_{g}"] == gm.mac_pcu(second)
            assert units[f"pmu_x{g}"] == gm.a_tile_pmu(first, part=g, parts=plan.pipes)
            assert units[f"pmu_h{g}"] == gm.a_tile_pmu(second)
            if gated:
                assert units[f"pcu_u{g}"] == gm.mac_pcu(replace(first, act="none"))
        if wbuf:
            assert units["pmu_w1"] == gm.b_block_pmu(first, 0)
            assert units["pmu_w2"] == gm.b_block_pmu(second, 0)
