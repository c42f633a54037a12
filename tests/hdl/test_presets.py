"""Presets: the values the issues name, validation with clear errors, one registry."""

import dataclasses

import pytest

from hdl.presets import DEFAULT_PRESET, PRESETS, Preset, UnknownPresetError, get_preset


@pytest.mark.parametrize("name, grid, lanes, stages, banks, bank_kib", [
    ("tiny", (2, 2), 4, 4, 4, 1),
    ("quad", (2, 4), 4, 4, 4, 1),
    ("small", (4, 4), 8, 4, 8, 4),
    ("plasticine", (16, 8), 16, 6, 16, 16),
])
def test_named_presets(name, grid, lanes, stages, banks, bank_kib):
    p = get_preset(name)
    assert (p.grid_cols, p.grid_rows) == grid
    assert (p.lanes, p.stages) == (lanes, stages)
    assert (p.pmu_banks, p.pmu_bank_kib) == (banks, bank_kib)
    assert p.num_pcus + p.num_pmus == grid[0] * grid[1]


def test_plasticine_matches_paper():
    p = get_preset("plasticine")
    assert (p.num_pcus, p.num_pmus) == (64, 64)
    assert p.pmu_kib == 256
    assert p.vector_bits == 512
    assert p.pmu_bank_words == 16 * 1024 // 4


def test_quad_is_tiny_with_four_pcus():
    tiny, quad = get_preset("tiny"), get_preset("quad")
    assert quad == tiny.replace(name="quad", grid_cols=2, grid_rows=4)
    assert (quad.num_pcus, quad.num_pmus) == (4, 4)


def test_default_preset_exists():
    assert DEFAULT_PRESET in PRESETS


def test_presets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("tiny").lanes = 8


@pytest.mark.parametrize("field, value, allowed", [
    ("lanes", 3, "power of two in [1, 64]"),
    ("lanes", 0, "power of two in [1, 64]"),
    ("lanes", 128, "power of two in [1, 64]"),
    ("stages", 0, "[1, 16]"),
    ("stages", 17, "[1, 16]"),
    ("grid_cols", 0, "[1, 64]"),
    ("grid_rows", 65, "[1, 64]"),
    ("pmu_banks", 6, "power of two in [1, 64]"),
    ("pmu_bank_kib", 0, "[1, 1024]"),
    ("fifo_depth", 1, "[2, 1024]"),
    ("counters", 4, "[1, 3]"),
    ("counter_width", 2, "[4, 32]"),
    ("hbm_channels", 6, "power of two in [1, 32]"),
    ("hbm_channels", 64, "power of two in [1, 32]"),
])
def test_bad_values_name_field_and_range(field, value, allowed):
    with pytest.raises(ValueError) as info:
        get_preset("small").replace(**{field: value})
    message = str(info.value)
    assert field in message and allowed in message and str(value) in message


def test_bad_clock_and_grid():
    with pytest.raises(ValueError, match="clock_mhz"):
        get_preset("tiny").replace(clock_mhz=0)
    with pytest.raises(ValueError, match="at least 2"):
        get_preset("tiny").replace(grid_cols=1, grid_rows=1)


@pytest.mark.parametrize("value", ["4", 4.0, True])
def test_wrong_types(value):
    with pytest.raises(TypeError, match="lanes must be an int"):
        get_preset("tiny").replace(lanes=value)


def test_replace_unknown_field():
    with pytest.raises(ValueError, match="Unknown preset field.*bogus"):
        get_preset("tiny").replace(bogus=1)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(UnknownPresetError) as info:
        get_preset("nope")
    for name in PRESETS:
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_get_preset_passes_preset_through():
    custom = Preset("custom", 3, 3, 2, 2, 2, 2)
    assert get_preset(custom) is custom
    assert custom.num_pcus == 5 and custom.num_pmus == 4
