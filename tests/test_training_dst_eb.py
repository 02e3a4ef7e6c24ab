"""Dynamic sparse training (thresholds, surrogate gradient) and Early-Bird tickets (masks, distance, FIFO)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend.training import dst, earlybird  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.export import export_trained  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.metrics import model_cost  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(256, 64)


# --- DST ------------------------------------------------------------------------------------------

def test_surrogate_derivative_values():
    x = torch.tensor([0.0, 0.2, -0.4, 0.5, -1.0, 1.5])
    assert torch.allclose(dst.surrogate_grad(x), torch.tensor([2.0, 1.2, 0.4, 0.4, 0.4, 0.0]))


@pytest.mark.parametrize("per_row", [True, False])
def test_fused_mask_matches_autograd_of_the_reference(per_row):
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(6, 3, 3, 3, generator=g) * 0.5).requires_grad_(True)
    t = (torch.rand(6 if per_row else 1, generator=g) * 0.5).requires_grad_(True)
    up = torch.randn(6, 3, 3, 3, generator=g)
    alpha = 0.03
    out, kept = dst.MaskedWeight.apply(w, t, alpha)
    (out * up).sum().backward()
    gw, gt = w.grad.clone(), t.grad.clone()
    w2 = w.detach().clone().requires_grad_(True)
    t2 = t.detach().clone().requires_grad_(True)
    ref = w2 * dst.BinaryStep.apply(w2.reshape(6, -1).abs() - t2.view(-1, 1)).view_as(w2)
    ((ref * up).sum() + alpha * torch.exp(-t2).sum()).backward()
    assert torch.equal(out.detach(), ref.detach()) and kept == int((ref != 0).sum())
    assert torch.allclose(gw, w2.grad, atol=1e-5) and torch.allclose(gt, t2.grad, atol=1e-4)


def test_thresholds_move_and_layers_sparsify(data):
    m = dst.DST(alpha=5e-2)
    res = train(build_model("mlp"), data, m, TrainConfig(epochs=3, optimizer="adam", lr=1e-2, progress=False))
    assert len(res.history) == 3 and all("layer_density" in h for h in res.history)
    dens = m.info()["layer_density"]
    assert set(dens) == {"fc1", "fc2", "fc3"} and min(dens.values()) < 0.95
    recs = m.records(res.model)
    for name, rec in recs.items():
        w = res.model.get_submodule(name).weight
        assert (w[~rec.mask] == 0).all() and rec.prune.kind == "unstructured"
        assert rec.prune.density == pytest.approx(float(rec.mask.float().mean()))
    assert model_cost(res.model, data.x_test[:1], recs).sparsity > 0.05
    assert not hasattr(res.model.fc1, "dst_threshold")  # finalised: plain weights again


def test_thresholds_receive_gradient_and_collapse_resets():
    model = build_model("mlp")
    m = dst.DST(alpha=1e-2)
    m.setup(model, TrainConfig())
    model(torch.rand(4, 1, 8, 8)).sum().backward()
    t = model.fc1.dst_threshold
    assert t.grad is not None and float(t.grad.abs().sum()) > 0
    with torch.no_grad():
        t.fill_(10.0)  # masks everything: the layer collapses, the thresholds are reset
    model(torch.rand(4, 1, 8, 8))
    assert (t == 0).all()


# --- Early-Bird ------------------------------------------------------------------------------------

def test_mask_distance_hand_computed():
    a = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    b = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])
    assert earlybird.mask_distance(a, b) == pytest.approx(0.4)
    assert earlybird.mask_distance(a, a) == 0.0
    with pytest.raises(ValueError):
        earlybird.mask_distance(a, b[:3])


def test_bn_mask_global_threshold():
    model = build_model("cnn", bn=True)
    with torch.no_grad():
        model.bn1.weight.copy_(torch.arange(16, dtype=torch.float32) / 100)  # 0.00 .. 0.15
        model.bn2.weight.copy_(-(torch.arange(32, dtype=torch.float32) + 16) / 100)  # |.| 0.16 .. 0.47
    mask = earlybird.bn_channel_mask(model, 0.5)
    # 48 channels, threshold = 24th smallest |gamma| (0.24): kept are the 23 larger ones
    assert mask.numel() == 48 and int(mask.sum()) == 23 and mask[:16].sum() == 0


def test_fifo_emergence_rule():
    det = earlybird.EarlyBirdDetector(prune_ratio=0.5, fifo=3, threshold=0.1)
    base = torch.zeros(10)
    base[:5] = 1
    flip1 = base.clone()
    flip1[0] = 0  # distance 0.1 from base
    flip2 = base.clone()
    flip2[:2] = 0  # distance 0.2 from base
    assert not det.update(flip2) and not det.update(base)  # FIFO not full yet
    assert not det.update(base)  # 0.2 from the oldest mask
    assert det.dists == [pytest.approx(0.2), 0.0]
    assert det.update(flip1)  # distances 0.1 and 0.1: <= threshold (as the reference code)


def test_earlybird_draws_prunes_and_counts_training_cost(data):
    ex = data.x_test[:1]
    model = build_model("cnn", bn=True)
    m = earlybird.EarlyBird(prune_ratio=0.5, fifo=2, threshold=1.0, max_search_epochs=4, retrain_epochs=1)
    dense = m.record_dense_macs(model, ex)
    res = train(model, data, m, TrainConfig(progress=False, lr=0.05))
    assert m.found_epoch == 2 and m.pruned_at == 2 and res.epochs_run == 3  # 2 search + 1 ticket epoch
    keep1, keep2 = m.channel_masks["conv1"], m.channel_masks["conv2"]
    assert int(keep1.sum()) + int(keep2.sum()) < 48
    net = res.model
    assert (net.bn1.weight[~keep1] == 0).all() and (net.bn1.bias[~keep1] == 0).all()
    assert (net.conv1.weight[~keep1] == 0).all() and (net.conv2.weight[:, ~keep1] == 0).all()
    assert (net.fc.weight.view(10, 32, 16)[:, ~keep2] == 0).all()
    tc = m.training_cost(net, ex, samples_per_epoch=256)
    ticket = model_cost(net, ex, m.records(net)).macs_eff
    assert tc["ticket_forward_macs"] == ticket < dense
    assert tc["eb_train_macs"] == 3 * 256 * (2 * dense + 1 * ticket)
    assert tc["standard_train_macs"] == 3 * 256 * (4 * dense + 1 * ticket) and tc["saving"] > 1
    wl = export_trained(net, m.records(net), ex, name="eb")
    assert wl["conv1"].out_channels == int(keep1.sum()) and wl["conv2"].in_channels == int(keep1.sum())
    assert wl["fc"].in_features == int(keep2.sum()) * 16
