"""Every shipped hardware config x a few models: numbers pinned in tests/data/golden.json.

If a change to a model is intended, regenerate with `python tools/update_golden.py` and commit
the new golden file with the change (the diff shows what moved).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from update_golden import GOLDEN, MODELS, golden_entry  # noqa: E402

GOLD = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
CONFIGS = sorted(p.name for p in (ROOT / "hw_configs").glob("*.yaml"))


def test_every_shipped_config_is_pinned():
    missing = [c for c in CONFIGS if c not in GOLD]
    assert not missing, f"no golden numbers for {missing}: run python tools/update_golden.py"
    stale = [c for c in GOLD if c not in CONFIGS]
    assert not stale, f"golden numbers for removed configs {stale}: run python tools/update_golden.py"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("model", MODELS)
def test_golden_numbers(config, model):
    if config not in GOLD:
        pytest.fail(f"{config} has no golden entry")
    expected = GOLD[config][model]
    got = golden_entry(ROOT / "hw_configs" / config, model)
    if "unsupported" in expected:
        assert "unsupported" in got, f"{config}/{model} now runs: {got}"
        return
    assert "unsupported" not in got, got["unsupported"] if "unsupported" in got else ""
    assert got["macs"] == expected["macs"]
    assert got["latency_cycles"] == expected["latency_cycles"]
    assert got["total_cycles"] == expected["total_cycles"]
    assert got["dram_bytes"] == pytest.approx(expected["dram_bytes"], rel=1e-12)
    assert got["energy_pj"] == pytest.approx(expected["energy_pj"], rel=1e-9)
