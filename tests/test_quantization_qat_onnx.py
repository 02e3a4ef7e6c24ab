"""LSQ quantisation-aware training and QDQ ONNX export (checked with onnx's reference runtime)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
onnx = pytest.importorskip("onnx")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend import compress, lsq, onnx_export, ptq  # noqa: E402
from accelsim.frontend.training import Method, TrainConfig, build_model, load_digits_data, train  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_digits_data(seed=0)


def test_lsq_step_gradient_matches_the_paper():
    q = lsq.LSQQuantizer(bits=3, signed=True)  # Q_N = 4, Q_P = 3
    x = torch.tensor([-2.0, -0.26, 0.1, 0.37, 5.0])
    q(x)  # initialises the step
    with torch.no_grad():
        q.step.fill_(0.25)
    out = q(x)
    torch.testing.assert_close(out, torch.tensor([-1.0, -0.25, 0.0, 0.25, 0.75]))
    out.sum().backward()
    v = x / 0.25
    inside = (v > -4) & (v < 3)
    expect = torch.where(inside, torch.round(v) - v, torch.where(v <= -4, torch.tensor(-4.0), torch.tensor(3.0))).sum()
    g = 1.0 / (5 * 3) ** 0.5
    assert float(q.step.grad) == pytest.approx(float(expect) * g, rel=1e-5)


def test_lsq_qat_on_digits_learns_steps_on_a_grid(data):
    net = build_model("mlp")
    lsq.prepare_lsq(net, weight_bits=3, act_bits=4, example_input=data.x_train[:64])
    steps0 = {n: p.detach().clone() for n, p in net.named_parameters() if n.endswith("step")}
    res = train(net, data.subset(640, 450), Method(), TrainConfig(epochs=3, optimizer="adam", lr=3e-3, progress=False))
    assert res.test_accuracy > 0.8
    moved = [n for n, p in net.named_parameters() if n.endswith("step") and not torch.equal(p.detach(), steps0[n])]
    assert len(moved) == len(steps0) == 6
    for name, m in lsq.lsq_layers(net).items():
        w = m.weight.detach()  # parametrised: the quantised weight
        for row in w[:8]:
            assert row.unique().numel() <= 2 ** 3
    recs = lsq.lsq_records(net)
    assert {r.weight_bits for r in recs.values()} == {3} and {r.act_bits for r in recs.values()} == {4}
    with pytest.raises(ConfigError, match="layers"):
        lsq.prepare_lsq(build_model("mlp"), layers=["nope"])


def _run_onnx(path, x):
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(str(path))
    return torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])


def test_onnx_qdq_of_a_calibrated_compressed_model(data, tmp_path):
    net = build_model("cnn")
    train(net, data.subset(400, 450), Method(), TrainConfig(epochs=2, optimizer="adam", lr=3e-3, progress=False))
    cm = compress(net, {"name": "q", "quantize": {"weight_bits": 4, "act_bits": 6, "granularity": "channel"},
                        "overrides": [{"names": ["fc"], "quantize": {"weight_bits": 8, "act_bits": 8}}]})
    with pytest.raises(ConfigError, match="calibrate"):
        onnx_export.export_compressed_onnx(cm, data.x_test[:1], tmp_path / "x.onnx")
    ptq.calibrate(cm, [data.x_train[i:i + 100] for i in range(0, 400, 100)], observer="percentile")
    with pytest.raises(ConfigError, match="freeze"):
        onnx_export.export_compressed_onnx(cm, data.x_test[:1], tmp_path / "x.onnx")
    cm.freeze()
    path = onnx_export.export_compressed_onnx(cm, data.x_test[:1], tmp_path / "tiny_cnn_qdq.onnx")
    counts = onnx_export.qdq_counts(path)
    assert counts["QuantizeLinear"] >= 6 and counts["DequantizeLinear"] >= 6  # weight + input of 3 layers
    x = data.x_test[:32]
    with torch.no_grad():
        ref = cm.model(x)
    got = _run_onnx(path, x)
    scale = float(ref.abs().max())
    assert float((got - ref).abs().max()) <= 1e-4 * scale + 1e-5
    assert torch.equal(got.argmax(1), ref.argmax(1))


def test_onnx_qdq_of_an_lsq_model(data, tmp_path):
    net = build_model("mlp")
    lsq.prepare_lsq(net, weight_bits=4, act_bits=8, example_input=data.x_train[:64])
    train(net, data.subset(320, 450), Method(), TrainConfig(epochs=1, optimizer="adam", lr=3e-3, progress=False))
    path = onnx_export.export_lsq_onnx(net, data.x_test[:1], tmp_path / "mlp_lsq.onnx")
    x = data.x_test[:16]
    net.eval()
    with torch.no_grad():
        ref = net(x)
    got = _run_onnx(path, x)
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max()) + 1e-5
    assert onnx_export.qdq_counts(path)["DequantizeLinear"] >= 6


def test_onnx_export_rejects_off_grid_weights(data, tmp_path):
    net = build_model("mlp")
    act = ptq.MinMaxObserver()
    act.update(torch.rand(4, 64))
    qa = act.qparams(8)
    step = torch.full((128,), 1e-3)
    with pytest.raises(ConfigError, match="fc1"):
        onnx_export.export_onnx_qdq(net, data.x_test[:1], tmp_path / "bad.onnx", {"fc1": step}, {"fc1": qa})
