"""Early-Bird and DJPQ on a residual network and a transformer encoder (channel groups from the fx
graph), the torch DJPQ path against the numba one, and runs in float64 (no numba possible)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend.training import DJPQ, EarlyBird, TrainConfig, build_model, load_digits_data, train  # noqa: E402
from accelsim.frontend.training.graph import channel_groups, is_chain, weight_masks  # noqa: E402
from accelsim.frontend.training.metrics import model_cost  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_digits_data(seed=0).subset(192, 96)


def _net(kind):
    """Narrow versions of the digits ResNet-18 / transformer (same graph, a few seconds to train)."""
    from accelsim.frontend.training.models import DigitsResNet, DigitsTransformer

    torch.manual_seed(0)
    return DigitsResNet(widths=(8, 8, 16, 16)) if kind == "resnet" else DigitsTransformer(dim=16, heads=2, ffn=32)


def _cfg(**kw):
    base = dict(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_channel_groups_resnet_transformer_chain():
    g = channel_groups(build_model("resnet"))
    free = sorted(n for n, x in g.items() if x.free)
    # exactly the first conv of every basic block: the others feed residual adds or the output
    assert free == sorted(f"layer{s}.{b}.conv1" for s in range(1, 5) for b in range(2))
    assert g["layer2.0.conv1"].scale == "layer2.0.bn1" and g["layer2.0.conv1"].consumers == [("layer2.0.conv2", 1)]
    assert "residual add" in g["layer2.0.downsample.0"].reason
    assert not is_chain(g)
    t = channel_groups(build_model("transformer"))
    assert sorted(n for n, x in t.items() if x.free) == ["blocks.0.fc1", "blocks.1.fc1"]
    assert t["blocks.0.fc1"].scale == "blocks.0.scale1" and t["blocks.0.fc1"].consumers == [("blocks.0.fc2", 1)]
    assert not t["blocks.0.q"].free  # feeds the attention matmul
    c = channel_groups(build_model("cnn"))
    assert is_chain(c) and c["conv2"].consumers == [("fc", 16)]  # flatten of 32 x 4 x 4


def test_zeroed_channels_do_not_change_the_network(data):
    """Masking the removed channels' producer rows equals masking the consumer columns too (the
    consumer never sees them): the masks of weight_masks() are consistent across the graph."""
    net = build_model("resnet").eval()
    g = channel_groups(net)
    gen = torch.Generator().manual_seed(0)
    keep = {n: torch.rand(x.channels, generator=gen) > 0.5 for n, x in g.items() if x.free}
    masks = weight_masks(net, g, keep)
    x = data.x_test[:8]
    with torch.no_grad():
        for n, k in keep.items():  # remove channels after BN (gamma = beta = 0)
            bn = net.get_submodule(g[n].scale)
            bn.weight.mul_(k)
            bn.bias.mul_(k)
        ref = net(x)
        for n, m in masks.items():
            net.get_submodule(n).weight.mul_(m)
        out = net(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    cons = masks["layer3.0.conv2"]
    assert bool((~cons[:, ~keep["layer3.0.conv1"]]).all())


@pytest.mark.parametrize("kind", ["resnet", "transformer"])
def test_earlybird_real_models(kind, data):
    net = _net(kind)
    eb = EarlyBird(prune_ratio=0.5, fifo=2, threshold=1.0, max_search_epochs=2, retrain_epochs=1)
    dense = eb.record_dense_macs(net, data.x_test[:1])
    res = train(net, data, eb, _cfg(epochs=3))
    info = eb.info()
    assert info["found_epoch"] == 2 and res.epochs_run == 3
    recs = eb.records(net)
    for layer, keep in eb.channel_masks.items():
        w = net.get_submodule(layer).weight.detach()
        assert 0 < int(keep.sum()) < keep.numel()
        assert float(w[~keep].abs().sum()) == 0.0  # removed filters stay zero through ticket training
        for cons, _ in channel_groups(net)[layer].consumers:
            wc = net.get_submodule(cons).weight.detach()
            assert float(wc[:, ~keep].abs().sum()) == 0.0
    cost = model_cost(net, data.x_test[:1], recs)
    assert cost.macs_eff < dense
    assert eb.training_cost(net, data.x_test[:1], 192)["saving"] >= 1.0


@pytest.mark.parametrize("kind", ["resnet", "transformer"])
def test_djpq_real_models(kind, data):
    net = _net(kind)
    ex = data.x_test[:1]
    m = DJPQ(ex, bops_weight=20.0, kl_weight=1e-3, gate_lr=5e-2, quant_lr=0.3)
    res = train(net, data, m, _cfg(epochs=2))
    assert not m.use_numba and not hasattr(net, "djpq_state")
    gated = {n for n, x in channel_groups(_net(kind)).items() if x.free}
    assert set(m.info()["kept_channels"]) == gated
    assert m.bops() < m.bops_ref  # the BOPs penalty pulled it below the 8-bit dense reference
    for name, f in m.final.items():
        assert 2 <= f["weight_bits"] <= 16 and 2 <= f["act_bits"] <= 16
        w = net.get_submodule(name).weight.detach()
        # on the weight grid: at most 2^b - 1 distinct values per output channel (gate folded per row)
        for row in w.reshape(w.shape[0], -1)[:4]:
            assert row.unique().numel() <= 2 ** f["weight_bits"]
    # evaluation of the finalised model equals what training reported
    net.eval()
    with torch.no_grad():
        acc = float((net(data.x_test).argmax(1) == data.y_test).float().mean())
    assert acc == pytest.approx(res.test_accuracy)
    recs = m.records(net)
    assert model_cost(net, ex, recs).bops == pytest.approx(m.bops(), rel=1e-9)


def test_djpq_torch_path_equals_numba_path(data):
    """One DJPQ step on the chain CNN: the plain-torch path and the fused numba kernels give the
    same loss and the same gradients for the weights, quantiser parameters and gates."""
    x, y = data.x_train[:32], data.y_train[:32]
    grads = {}
    for backend in ("numba", "torch"):
        net = build_model("cnn")
        m = DJPQ(data.x_test[:1], bops_weight=1.0, kl_weight=1e-2, backend=backend)
        m.setup(net, _cfg())
        torch.manual_seed(1)  # the same VIB noise draws
        loss = m.loss(net, x, y)
        loss.backward()
        m.after_backward(net)
        if backend == "numba":
            acc = m._acc
            gq, gmu, glv = (torch.from_numpy(a).float() for a in (acc.g_qp, acc.g_mu, acc.g_lv))
            loss_total = float(loss.detach()) + m.last_penalty[0]
        else:
            st = m.state
            gq, gmu, glv = st.qp.grad, st.mu.grad, st.log_var.grad
            loss_total = float(loss.detach())
        grads[backend] = (loss_total, gq, gmu, glv, net.conv2.weight.grad.clone(), net.fc.bias.grad.clone())
    a, b = grads["numba"], grads["torch"]
    assert a[0] == pytest.approx(b[0], rel=1e-5)
    for ga, gb in zip(a[1:], b[1:]):
        torch.testing.assert_close(ga, gb.to(ga.dtype), rtol=2e-3, atol=1e-5)


def test_float64_runs_on_the_torch_path(data):
    """A float64 model cannot use the float32 numba kernels: DJPQ picks the torch path, EB works
    unchanged, and no tensor leaves its dtype/device (parameters stay float64)."""
    d64 = type(data)(data.x_train.double(), data.y_train, data.x_test.double(), data.y_test, data.x_train_int,
                     data.x_test_int, data.seed)
    net = build_model("cnn").double()
    m = DJPQ(d64.x_test[:1], kl_weight=1e-3)
    train(net, d64, m, _cfg(epochs=1))
    assert not m.use_numba
    assert all(p.dtype == torch.float64 for p in net.parameters())
    with pytest.raises(ValueError, match="numba"):
        DJPQ(d64.x_test[:1], backend="numba").setup(_net("resnet").double(), _cfg())
