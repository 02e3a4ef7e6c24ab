"""Post-training quantisation: observers, calibration, BN folding, measured mixed precision, LSQ, ONNX QDQ."""
from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend import compress, ptq  # noqa: E402
from accelsim.frontend import quantization as qz  # noqa: E402
from accelsim.frontend.training import TrainConfig, build_model, load_digits_data, train  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_digits_data(seed=0)


@pytest.fixture(scope="module")
def trained_cnn(data):
    net = build_model("cnn")
    train(net, data.subset(600, 450), None, TrainConfig(epochs=4, optimizer="adam", lr=3e-3, progress=False))
    return net.eval()


def _batches(data, n=4, bs=64):
    return [(data.x_train[i:i + bs], data.y_train[i:i + bs]) for i in range(0, n * bs, bs)]


# --- observers -------------------------------------------------------------------------------------

def test_minmax_and_moving_average_qparams_by_hand():
    obs = ptq.MinMaxObserver()
    obs.update(torch.tensor([-1.0, 0.5, 2.0]))
    obs.update(torch.tensor([0.0, 3.0]))
    qp = obs.qparams(8)
    assert float(qp.scale) == pytest.approx(4.0 / 255)  # range [-1, 3]
    assert int(qp.zero_point) == round(1.0 / (4.0 / 255)) == 64
    sym = obs.qparams(4, symmetric=True)
    assert float(sym.scale) == pytest.approx(3.0 / 7) and (sym.qmin, sym.qmax) == (-7, 7)
    ma = ptq.MovingAverageObserver(averaging_constant=0.5)
    ma.update(torch.tensor([0.0, 2.0]))
    ma.update(torch.tensor([0.0, 4.0]))
    assert float(ma.range()[1]) == pytest.approx(3.0)  # 2 + 0.5 (4 - 2)
    ch = ptq.MinMaxObserver(axis=0)
    ch.update(torch.tensor([[1.0, -2.0], [0.5, 0.25]]))
    q = ch.qparams(8, symmetric=True)
    assert q.scale.shape == (2,) and float(q.scale[0]) == pytest.approx(2.0 / 127)


def test_percentile_observer_clips_an_outlier():
    x = torch.linspace(0, 1, 10001)
    x[-1] = 100.0
    mm, pc = ptq.MinMaxObserver(), ptq.PercentileObserver(percentile=99.9)
    mm.update(x)
    pc.update(x)
    assert float(mm.qparams(8).scale) == pytest.approx(100 / 255)
    assert float(pc.qparams(8).scale) < 1.01 / 255
    with pytest.raises(ConfigError, match="no data"):
        ptq.MinMaxObserver().qparams(8)
    with pytest.raises(ConfigError, match="observer"):
        ptq.make_observer("kl")


@pytest.mark.parametrize("observer", ["minmax", "moving_average", "percentile"])
def test_calibrate_installs_static_activation_grids(trained_cnn, data, observer):
    cm = compress(trained_cnn, {"name": "q", "quantize": {"weight_bits": 4, "act_bits": 4, "granularity": "channel"}})
    qps = ptq.calibrate(cm, _batches(data), observer=observer)
    assert set(qps) == {"conv1", "conv2", "fc"} and cm.act_qparams is qps
    x = data.x_test[:20]
    with torch.no_grad():
        alone = cm.model(x[:1])
        batched = cm.model(x)[:1]
    torch.testing.assert_close(alone, batched)  # static: a sample's output no longer depends on its batch
    acts = {}
    h = cm.model.conv2.register_forward_pre_hook(lambda m, a: acts.setdefault("x", a[0]))
    with torch.no_grad():
        cm.model(x)
    h.remove()
    qp = qps["conv2"]
    assert torch.unique(ptq.QParams(qp.scale, qp.zero_point, qp.qmin, qp.qmax, 4).fake_quant(acts["x"])).numel() <= 16
    correct = int((cm.model(data.x_test).argmax(1) == data.y_test).sum())
    assert correct / len(data.y_test) > 0.8


# --- BN folding ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cnn_bn", "resnet"])
def test_fold_batchnorm_is_exact(kind, data):
    torch.manual_seed(0)
    net = build_model("cnn", bn=True) if kind == "cnn_bn" else build_model("resnet")
    net.train()
    with torch.no_grad():  # non-trivial running statistics
        for i in range(3):
            net(data.x_train[i * 64:(i + 1) * 64])
    net.eval()
    folded = ptq.fold_batchnorm(net)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    assert {n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)} == \
        {n for n, m in folded.named_modules() if isinstance(m, torch.nn.Conv2d)}
    x = data.x_test[:16]
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched


# --- mixed precision -------------------------------------------------------------------------------------------

def test_optimal_assignment_equals_brute_force():
    gen = torch.Generator().manual_seed(3)
    layers = {f"l{i}": {"weight": torch.zeros(1), "macs": int(m), "nnz": 1}
              for i, m in enumerate(torch.randint(100, 1000, (5,), generator=gen))}
    sens_table = {(n, b): float(torch.rand((), generator=gen)) / b for n in layers for b in (2, 4, 8)}
    sens = lambda n, b: sens_table[(n, b)]  # noqa: E731
    bits, summary = qz.assign_bits(layers, [2, 4, 8], "bops", 0.5, act_bits=8, sensitivity=sens, method="optimal",
                                   resolution=100000)
    target = summary["target"]
    best = min((sum(sens(n, b) for n, b in zip(layers, combo)), combo)
               for combo in itertools.product((2, 4, 8), repeat=5)
               if sum(layers[n]["macs"] * 8 * b for n, b in zip(layers, combo)) <= target)
    assert summary["met"] == 1.0
    assert sum(sens(n, b) for n, b in bits.items()) == pytest.approx(best[0])


def test_measured_sensitivity_gives_a_real_mix_on_digits(trained_cnn, data):
    """{2,4,8} at 35% of the 8-bit BOPs: measured loss sensitivity + the optimal allocation give a
    real mix that meets the budget, at no more total measured sensitivity than the greedy search."""
    sens = ptq.loss_sensitivity(trained_cnn, _batches(data, n=6), granularity="tensor")
    assert min(sens(n, b) for n in ("conv1", "conv2", "fc") for b in (2, 4, 8)) >= 0.0
    assert sens("fc", 2) > 0.0
    mp = {"candidates": [2, 4, 8], "budget": "bops", "budget_fraction": 0.35}
    cm = compress(trained_cnn, {"name": "mp", "mixed_precision": {**mp, "method": "optimal"}},
                  example_input=data.x_test[:1], sensitivity=sens)
    bits = {n: u.quant.weight_bits for n, u in cm.units.items()}
    assert len(set(bits.values())) > 1, bits
    assert not any("not met" in n for n in cm.notes)
    greedy = compress(trained_cnn, {"name": "mp", "mixed_precision": mp}, example_input=data.x_test[:1],
                      sensitivity=sens)
    gbits = {n: u.quant.weight_bits for n, u in greedy.units.items()}
    assert sum(sens(n, b) for n, b in bits.items()) <= sum(sens(n, b) for n, b in gbits.items()) + 1e-12
    with pytest.raises(ConfigError, match="metric"):
        ptq.loss_sensitivity(trained_cnn, _batches(data), metric="top5")
