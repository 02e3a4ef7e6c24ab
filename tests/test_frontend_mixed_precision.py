"""Mixed precision {2,4,8} on the digits CNN: a budget strictly between all-2 and all-8 gives a real mix."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend import compress, export, ptq  # noqa: E402
from accelsim.frontend.metrics import totals  # noqa: E402
from accelsim.frontend.models import TinyCNN  # noqa: E402
from accelsim.frontend.training import TrainConfig, load_digits_data, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup():
    data = load_digits_data(seed=0)
    torch.manual_seed(0)
    net = TinyCNN()
    train(net, data.subset(600, 450), None, TrainConfig(epochs=3, optimizer="adam", lr=3e-3, progress=False))
    net.eval()
    batches = [(data.x_train[i:i + 64], data.y_train[i:i + 64]) for i in range(0, 256, 64)]
    sens = ptq.loss_sensitivity(net, batches, granularity="tensor")
    dense_macs = totals(export(net, data.x_test[:1]))["macs"]
    return net, data, sens, dense_macs


def _bits_and_bops(setup, recipe, sensitivity=None):
    net, data, _, dense_macs = setup
    cm = compress(net, recipe, example_input=data.x_test[:1], sensitivity=sensitivity)
    bits = {n: u.quant.weight_bits for n, u in cm.units.items()}
    bops = totals(export(cm, data.x_test[:1]))["bops"]
    return bits, bops / (dense_macs * 8 * 8), cm


@pytest.mark.parametrize("fraction", [0.35, 0.5])
def test_measured_optimal_allocation_mixes_between_all_2_and_all_8(setup, fraction):
    recipe = {"name": "mp", "mixed_precision": {"candidates": [2, 4, 8], "budget": "bops",
                                                 "budget_fraction": fraction, "method": "optimal"}}
    bits, frac, cm = _bits_and_bops(setup, recipe, setup[2])
    assert set(bits) == {"conv1", "conv2", "fc"}
    assert len(set(bits.values())) > 1, bits  # a real mix, not a uniform width
    assert 0.25 < frac <= fraction + 1e-9  # the exported workload meets the budget and is above all-2
    assert not any("not met" in n for n in cm.notes)


def test_budget_at_all_2_bit_can_only_be_all_2(setup):
    recipe = {"name": "mp", "mixed_precision": {"candidates": [2, 4, 8], "budget": "bops", "budget_fraction": 0.25,
                                                 "method": "optimal"}}
    bits, frac, _ = _bits_and_bops(setup, recipe, setup[2])
    assert set(bits.values()) == {2} and frac == pytest.approx(0.25)


def test_shipped_recipe_mixes_on_digits(setup):
    """recipes/mixed_precision.yaml (35 %, greedy, default weight-error sensitivity)."""
    bits, frac, cm = _bits_and_bops(setup, str(ROOT / "recipes" / "mixed_precision.yaml"))
    assert len(set(bits.values())) > 1, bits
    assert frac <= 0.35 + 1e-9 and not any("not met" in n for n in cm.notes)
