"""Must-show of issue 14 (part A): a ReLU CNN exported from the front-end carries measured
activation densities (per layer, per channel, real masks) and costs less energy on a zero-gating
config; a config that does not gate says so."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import accelsim  # noqa: E402
from accelsim.frontend.exporter import export, save_export  # noqa: E402
from accelsim.frontend.models import TinyCNN  # noqa: E402
from accelsim.frontend.training import load_digits_data  # noqa: E402
from accelsim.hardware.io import load_hardware  # noqa: E402
from accelsim.workload import load_workload  # noqa: E402
from accelsim.workload.masks import layer_act_mask  # noqa: E402


def _layer(wl, name):
    return next(x for x in wl.layers if x.name == name)


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(0)
    x = load_digits_data(seed=0).x_test[:32]
    net = TinyCNN()
    wl = export(net, x, "tiny_cnn", act_density=True, act_channels=True, act_masks=2)
    # what the exporter should have measured: conv2's input is relu(conv1(x))
    with torch.no_grad():
        h = torch.relu(net.conv1(x))
    return wl, x, h


def test_export_records_measured_activation_sparsity(exported):
    wl, x, h = exported
    conv1, conv2 = _layer(wl, "conv1"), _layer(wl, "conv2")
    assert conv1.compression.act_density == pytest.approx(float((x != 0).float().mean()))
    assert conv2.compression.act_density == pytest.approx(float((h != 0).float().mean()))
    assert conv2.compression.act_density < 0.9  # ReLU zeros
    ch = conv2.compression.act_channel_density
    assert ch is not None and len(ch) == 16
    assert ch == pytest.approx((h != 0).float().mean(dim=(0, 2, 3)).tolist())
    m = layer_act_mask(wl, conv2)
    assert m.shape == (2, 16, 8, 8) and np.array_equal(m, (h[:2] != 0).numpy())


def test_gating_config_lowers_energy_and_dense_config_notes_it(exported):
    wl, _, _ = exported
    gate = accelsim.simulate(wl, load_hardware("hw_configs/eyeriss_like_gating.yaml"))
    dense = accelsim.simulate(wl, load_hardware("hw_configs/eyeriss_like_dense.yaml"))
    g2 = next(x for x in gate.layers if x.layer == "conv2")
    d2 = next(x for x in dense.layers if x.layer == "conv2")
    assert g2.energy_by_component_pj["mac"] < d2.energy_by_component_pj["mac"]
    assert gate.summary()["energy_pj"] < dense.summary()["energy_pj"]
    assert any("not exploited" in n for n in d2.notes)
    assert not any("not exploited" in n for n in g2.notes)
    assert any("zero gating on inputs" in n and "actual masks" in n for n in g2.notes)


def test_saved_export_round_trips_activation_masks(exported, tmp_path):
    wl, _, _ = exported
    path = save_export(wl, tmp_path / "tiny.yaml")
    back = load_workload(path)
    conv2 = _layer(back, "conv2")
    assert conv2.compression.act_mask == "conv2.act"
    assert conv2.compression.act_channel_density == pytest.approx(_layer(wl, "conv2").compression.act_channel_density)
    assert np.array_equal(layer_act_mask(back, conv2), layer_act_mask(wl, _layer(wl, "conv2")))
