"""DJPQ: learnable bit-widths and gates (kernels vs autograd references), BOPs bookkeeping, baseline."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend import metrics as fe_metrics  # noqa: E402
from accelsim.frontend.training import djpq  # noqa: E402
from accelsim.frontend.training import _djpq_kernels as K  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.export import export_trained  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.metrics import model_cost  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(256, 64)


def test_int_bits_hand_cases():
    ln = math.log
    assert djpq.int_bits(0.0, ln(127), True) == 8  # 255 levels
    assert djpq.int_bits(0.0, ln(128), True) == 9  # 257 levels
    assert djpq.int_bits(0.0, ln(255), False) == 8
    assert djpq.int_bits(0.0, ln(3), True) == 3  # 7 levels
    assert djpq.int_bits(0.0, ln(3), True, pow2=True) == 4
    assert djpq.int_bits(0.0, ln(20), False, pow2=True) == 8  # 21 levels -> 5 bits -> 8
    assert djpq.int_bits(0.0, 0.0, True) == 2  # at least 2 bits


class _State:
    def __init__(self, qp):
        st = djpq.DJPQState(qp.shape[0], [])
        with torch.no_grad():
            st.qp.copy_(qp)
        self.acc = djpq._Grads(st)
        self.st = st


@pytest.mark.parametrize("signed,pow2", [(True, None), (False, None), (True, 4), (False, 2)])
def test_quantiser_kernel_matches_autograd_reference(signed, pow2):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(300, generator=g) * 2).requires_grad_(True)
    qp = torch.tensor([[math.log(0.1), math.log(1.7), math.log(0.05), math.log(2.3)]])
    s = _State(qp)
    up = torch.randn(300, generator=g)
    col = 0 if signed else 2
    out = djpq._DQFunction.apply(x, s.acc, 0, col, signed, pow2)
    (out * up).sum().backward()
    ld = qp[0, col].clone().requires_grad_(True)
    lq = qp[0, col + 1].clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    ref = djpq.dq_reference(x2, ld, lq, signed, pow2)
    (ref * up).sum().backward()
    assert torch.allclose(out, ref.detach(), atol=1e-6)
    assert torch.allclose(x.grad, x2.grad)
    assert s.acc.g_qp[0, col] == pytest.approx(float(ld.grad), rel=1e-4, abs=1e-5)
    assert s.acc.g_qp[0, col + 1] == pytest.approx(float(lq.grad), rel=1e-4, abs=1e-5)
    levels = out.detach().unique().numel()
    assert levels <= (2 ** djpq.int_bits(float(qp[0, col]), float(qp[0, col + 1]), signed, pow2 is not None)) \
        if pow2 is None else levels <= 2 ** pow2


def test_penalty_kernel_matches_autograd_reference():
    g = torch.Generator().manual_seed(2)
    L = 3
    qp = torch.tensor([[-3.0, 0.5, -4.0, 1.0], [-2.5, 0.2, -3.0, 0.7], [-2.0, 0.1, -1.0, 0.9]], dtype=torch.float64)
    mu = torch.randn(12, generator=g, dtype=torch.float64) * 0.5 + 1
    lv = torch.randn(12, generator=g, dtype=torch.float64) - 2
    offsets = np.array([0, 8, 12, 12])
    gated = np.array([True, True, False])
    macs = np.array([1000.0, 5000.0, 300.0])
    signed = np.array([False, False, False])
    bits = np.array([[djpq.int_bits(float(qp[i, 0]), float(qp[i, 1]), True),
                      djpq.int_bits(float(qp[i, 2]), float(qp[i, 3]), False)] for i in range(L)], dtype=np.float64)
    args = (qp.numpy(), bits, signed, macs, True, mu.numpy(), lv.numpy(), offsets, gated, 0.0, 0.7, 1e-3, 1e-4, 2.0,
            16.0)
    g_qp, g_mu, g_lv = np.zeros((L, 4)), np.zeros(12), np.zeros(12)
    total, kl, bops = K.penalty(*args, g_qp, g_mu, g_lv)
    qpr, mur, lvr = (t.clone().requires_grad_(True) for t in (qp, mu, lv))
    ref = djpq.penalty_reference(qpr, [tuple(b) for b in bits], list(signed), list(macs), True,
                                 [(mur[0:8], lvr[0:8]), (mur[8:12], lvr[8:12]), None], 0.0, 0.7, 1e-3, 1e-4)
    ref.backward()
    assert total == pytest.approx(float(ref.detach()), rel=1e-9)
    assert np.allclose(g_qp, qpr.grad.numpy(), rtol=1e-6, atol=1e-12)
    assert np.allclose(g_mu, mur.grad.numpy(), rtol=1e-6, atol=1e-12)
    assert np.allclose(g_lv, lvr.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_training_learns_bits_and_gates_and_books_bops(data):
    ex = data.x_test[:1]
    m = djpq.DJPQ(ex, bops_weight=2.0, kl_weight=1e-2, gate_lr=5e-2, quant_lr=5e-2)
    model = build_model("cnn")
    res = train(model, data, m, TrainConfig(epochs=3, optimizer="adam", lr=1e-3, progress=False))
    assert not hasattr(model, "djpq_state") and "forward" not in vars(model.conv1)  # finalised
    bits = m.info()["bits"]
    assert set(bits) == {"conv1", "conv2", "fc"} and all(isinstance(b, int) for wa in bits.values() for b in wa)
    assert any(w < 8 for w, _ in bits.values())  # the BOPs penalty lowered some bit-widths
    assert res.history[-1]["bops"] < res.history[0]["bops"] <= m.bops_ref
    recs = m.records(model)
    cost = model_cost(model, ex, recs)
    assert cost.bops == pytest.approx(m.bops_log[-1])  # training's hard BOPs == reported BOPs
    for name, (wb, _) in bits.items():
        w = model.get_submodule(name).weight.detach()
        # every output channel holds at most the 2^b - 1 values of a signed b-bit grid (its own scale)
        assert max(row.unique().numel() for row in w.reshape(w.shape[0], -1)) <= 2 ** wb - 1
    wl = export_trained(model, recs, ex, name="djpq")
    for layer in wl.layers:
        if layer.name in bits:
            assert (layer.compression.quant.weight_bits, layer.compression.quant.act_bits) == bits[layer.name]
    fe = {lm.layer: lm for lm in fe_metrics.layer_metrics(wl)}
    assert sum(lm.bops for lm in fe.values()) == cost.bops  # the front-end's BOPs of the export agree


def test_two_stage_baseline_stays_within_the_bops_budget(data):
    ex = data.x_test[:1]
    cfgs = dict(prune_config=TrainConfig(epochs=1, optimizer="adam", lr=1e-3, progress=False),
                qat_config=TrainConfig(epochs=1, lr=0.02, progress=False))
    # 2-bit weights x 4-bit activations is the cheapest the candidates allow: 17,024 MACs x 8 > 50,000
    infeasible = djpq.two_stage_baseline(build_model("mlp"), data, ex, target_bops=50_000, act_bits=4, **cfgs)
    assert infeasible["assign_summary"]["met"] == 0.0 and set(b for b, _ in infeasible["bits"].values()) == {2}
    out = djpq.two_stage_baseline(build_model("mlp"), data, ex, target_bops=300_000, act_bits=4, **cfgs)
    assert out["assign_summary"]["met"] == 1.0 and 200_000 < out["bops"] <= 300_000
    model = out["qat_result"].model
    cost = model_cost(model, ex, out["records"])
    assert cost.bops == out["bops"]
    for name, (wb, ab) in out["bits"].items():
        w = model.get_submodule(name).weight.detach()
        assert ab == 4 and max(r[r != 0].unique().numel() for r in w) <= 2 ** wb - 1
