"""Recipe schema and per-layer resolution (no torch needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.errors import ConfigError
from accelsim.frontend.recipe import LayerInfo, QuantSpec, load_recipe, resolve

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    LayerInfo("conv1", "conv2d", (7, 7), 147, 64),
    LayerInfo("layer1.0.conv1", "conv2d", (3, 3), 576, 64),
    LayerInfo("layer1.0.conv2", "conv2d", (3, 3), 576, 64),
    LayerInfo("layer1.0.down", "conv2d", (1, 1), 64, 64),
    LayerInfo("fc", "linear", (1, 1), 512, 10),
]


def _err(data, layers=LAYERS):
    with pytest.raises(ConfigError) as e:
        resolve(load_recipe(data), layers)
    return e.value


@pytest.mark.parametrize("data, field", [
    ({"prune": {"kind": "unstructured", "density": 0.0}}, "prune.unstructured.density"),
    ({"prune": {"kind": "unstructured", "density": 1.5}}, "prune.unstructured.density"),
    ({"quantize": {"weight_bits": 0}}, "quantize.weight_bits"),
    ({"quantize": {"weight_bits": 4, "act_bits": 0}}, "quantize.act_bits"),
    ({"prune": {"kind": "nm", "n": 4, "m": 2}}, "prune.nm"),
    ({"prune": {"kind": "magic"}}, "prune"),
    ({"prune": {"kind": "block", "density": 0.5, "blok": [2, 2]}}, "prune.block.blok"),
    ({"overrides": [{"prune": None}]}, "overrides[0]"),
])
def test_schema_errors_name_the_field(data, field):
    with pytest.raises(ConfigError) as e:
        load_recipe(data)
    assert e.value.field is not None and e.value.field.startswith(field), e.value.field
    assert "\n" not in str(e.value)


def test_unknown_layer_name_is_an_error_naming_the_override():
    err = _err({"overrides": [{"names": ["conv1", "layer9.conv"], "quantize": {"weight_bits": 4}}]})
    assert err.field == "overrides[0].names" and "layer9.conv" in str(err)


def test_bad_override_section_names_its_path():
    err = _err({"overrides": [{"names": ["fc"], "prune": {"kind": "unstructured", "density": 2}}]})
    assert err.field.startswith("overrides[0].prune") and "density" in err.field


def test_incompatible_nm_on_an_explicit_layer_is_an_error_but_skipped_as_default():
    err = _err({"overrides": [{"names": ["conv1"], "prune": {"kind": "nm", "n": 2, "m": 4}}]})
    assert err.field == "overrides[0].prune" and "147" in str(err)
    plans, notes = resolve(load_recipe({"prune": {"kind": "nm", "n": 2, "m": 4}}), LAYERS)
    assert plans["conv1"].prune is None and plans["layer1.0.conv1"].prune.n == 2
    assert any("conv1" in n and "multiple of m=4" in n for n in notes)


def test_pattern_defaults_apply_to_3x3_convs_only():
    plans, notes = resolve(load_recipe({"prune": {"kind": "pattern"}}), LAYERS)
    assert [n for n, p in plans.items() if p.prune is not None] == ["layer1.0.conv1", "layer1.0.conv2"]
    assert len(notes) == 3
    err = _err({"overrides": [{"names": ["fc"], "prune": {"kind": "pattern"}}]})
    assert err.field == "overrides[0].prune"


def test_overrides_merge_fields_and_null_removes():
    rec = load_recipe({
        "prune": {"kind": "unstructured", "density": 0.3},
        "quantize": {"weight_bits": 4, "granularity": "channel"},
        "overrides": [
            {"regex": "conv1", "prune": None, "quantize": {"weight_bits": 8}},
            {"types": ["linear"], "prune": {"density": 0.5}},
            {"regex": r"layer1\..*conv2", "prune": {"kind": "block", "density": 0.25, "block": [2, 8]}},
        ],
    })
    plans, _ = resolve(rec, LAYERS)
    assert plans["conv1"].prune is None
    assert plans["conv1"].quantize == QuantSpec(weight_bits=8, granularity="channel")
    assert plans["fc"].prune.kind == "unstructured" and plans["fc"].prune.density == 0.5
    assert plans["layer1.0.conv2"].prune.kind == "block" and plans["layer1.0.conv2"].prune.block == (2, 8)
    assert plans["layer1.0.conv1"].prune.density == 0.3


def test_override_matching_nothing_is_an_error_listing_the_layers():
    rec = load_recipe({"types": ["linear"], "quantize": {"weight_bits": 4},
                       "overrides": [{"regex": "classifier.*", "quantize": {"weight_bits": 2}}]})
    with pytest.raises(ConfigError) as ei:
        resolve(rec, LAYERS, "my.yaml")
    err = ei.value
    assert err.field == "overrides[0].regex" and "classifier" in str(err) and "my.yaml" in str(err)
    assert all(info.name in str(err) for info in LAYERS)
    rec = load_recipe({"overrides": [{"regex": "conv.*", "types": ["lstm"], "prune": None}]})
    with pytest.raises(ConfigError) as ei:
        resolve(rec, LAYERS)
    assert ei.value.field == "overrides[0].types"


def test_types_limit_defaults():
    rec = load_recipe({"types": ["linear"], "quantize": {"weight_bits": 4},
                       "overrides": [{"regex": "f.*", "quantize": {"weight_bits": 2}}]})
    plans, notes = resolve(rec, LAYERS)
    assert plans["fc"].quantize.weight_bits == 2 and plans["conv1"].quantize is None


def test_quant_scheme_bit_rules():
    for data in ({"scheme": "binary", "weight_bits": 2}, {"scheme": "ternary", "weight_bits": 3},
                 {"scheme": "int", "weight_bits": 1}):
        with pytest.raises(ConfigError):
            load_recipe({"quantize": data})


def test_shipped_recipes_load(tmp_path):
    files = sorted((ROOT / "recipes").glob("*.yaml"))
    assert len(files) >= 8 and (ROOT / "recipes" / "pattern_4bit.yaml") in files
    for f in files:
        rec = load_recipe(f)
        assert rec.name == f.stem
    bad = tmp_path / "bad.yaml"
    bad.write_text("prune: {kind: unstructured, density: 3}\n")
    with pytest.raises(ConfigError) as e:
        load_recipe(bad)
    assert str(bad) in str(e.value) and "prune.unstructured.density" in str(e.value)
