"""Integer-only training (NITI-style): exact int32 arithmetic, rounding rules, every tensor integer."""
from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import torch.nn.functional as F  # noqa: E402

from accelsim.frontend.training import niti  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402

torch.set_num_threads(1)
INT_TYPES = (torch.int8, torch.int16, torch.int32, torch.int64)


def _py_round_shift(v: int, s: int) -> int:
    q = (abs(v) + (1 << (s - 1))) >> s
    return max(-127, min(127, q if v >= 0 else -q))


def _py_psto(v: int, s: int) -> int:
    m = abs(v)
    q, rem = m >> s, m & ((1 << s) - 1)
    half = s // 2
    prob, rnd = rem >> half, rem & ((1 << half) - 1)
    if s % 2:
        rnd *= 2
    q += prob > rnd
    return max(-127, min(127, q if v >= 0 else -q))


def test_rounding_hand_cases():
    x = torch.tensor([5, 6, 7, -6, 3, -3, 2], dtype=torch.int32)
    assert niti.round_shift(x, 2).tolist() == [1, 2, 2, -2, 1, -1, 1]  # half away from zero
    # pseudo-stochastic, shift 2: discarded bits (prob | rand): 5 -> 0|1 keep, 6 -> 1|0 up, 7 -> 1|1 keep,
    # 3 -> 1|1 keep, 2 -> 1|0 up
    assert niti.psto_shift(x, 2).tolist() == [1, 2, 1, -2, 0, 0, 1]
    assert niti.psto_shift(torch.tensor([1000], dtype=torch.int32), 1).tolist() == [127]  # clipped


def test_rounding_matches_python_reference():
    rng = random.Random(0)
    vals = [rng.randint(-(1 << 20), 1 << 20) for _ in range(2000)]
    x = torch.tensor(vals, dtype=torch.int32)
    for s in (1, 3, 6, 13):
        assert niti.round_shift(x, s).tolist() == [_py_round_shift(v, s) for v in vals]
        assert niti.psto_shift(x, s).tolist() == [_py_psto(v, s) for v in vals]
    # no random generator: the same input always rounds the same way
    assert torch.equal(niti.psto_shift(x, 7), niti.psto_shift(x, 7))
    # ... and is unbiased on average over the discarded bits
    y = torch.arange(0, 1 << 12, dtype=torch.int32) + (5 << 12)
    assert abs(float(niti.psto_shift(y, 12).double().mean()) - 5.5) < 0.02


def test_requantize_shift_rule():
    acc = torch.tensor([300, -1000, 7], dtype=torch.int32)  # max 1000 -> 10 bits -> shift 3
    y, e = niti.requantize(acc, -5)
    assert e == -2 and y.dtype == torch.int8 and y.tolist() == [38, -125, 1]
    assert niti.requantize(torch.tensor([127, -3], dtype=torch.int32), 0)[1] == 0  # fits: no shift
    g = niti.grad_to_bits(torch.tensor([1000, -10, 0], dtype=torch.int32), 5)
    assert g.dtype == torch.int8 and g.tolist() == [32, 0, 0]  # 1000 >> 5: discarded 01000 -> prob 2 > rand 0: up


@pytest.mark.parametrize("k", [64, 512, 3000])
def test_int_matmul_is_exact(k):
    g = torch.Generator().manual_seed(k)
    a = torch.randint(-127, 128, (7, k), generator=g, dtype=torch.int8)
    b = torch.randint(-127, 128, (k, 5), generator=g, dtype=torch.int8)
    a[0], b[:, 0] = 127, 127  # the worst case for the bound (k = 3000 is split into chunks)
    out = niti.int_matmul(a, b)
    assert out.dtype == torch.int32 and torch.equal(out.long(), a.long() @ b.long())


def _conv_ref(x, w, pad):
    """Integer im2col reference in int64."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = F.pad(x.long(), (pad, pad, pad, pad))
    cols = torch.stack([xp[:, :, i:i + h, j:j + wd] for i in range(k) for j in range(k)], dim=2).reshape(n, c * k * k, -1)
    return (w.long().reshape(o, -1) @ cols).reshape(n, o, h, wd), cols


def test_integer_conv_forward_and_gradients_are_exact():
    g = torch.Generator().manual_seed(0)
    conv = niti.IntConv2d(16, 32, 3, 1, g)
    conv.weight.copy_(torch.randint(-127, 128, conv.weight.shape, generator=g, dtype=torch.int8))
    x = torch.randint(-127, 128, (64, 16, 8, 8), generator=g, dtype=torch.int8)
    x[0, :, :3, :3] = 127
    acc_ref, cols = _conv_ref(x, conv.weight, 1)
    y, e = conv((x, 0))
    y_ref, e_ref = niti.requantize(acc_ref.to(torch.int32), int(conv.weight_exp))
    assert e == e_ref and torch.equal(y, y_ref)
    err = torch.randint(-127, 128, (64, 32, 8, 8), generator=g, dtype=torch.int8)
    w0 = conv.weight.clone()
    x_err, _ = conv.backward((err, 0), grad_bits=5)
    gw_ref = torch.einsum("nol,nkl->ok", err.long().reshape(64, 32, -1), cols).reshape(w0.shape)
    assert torch.equal(conv.weight_grad_int32.long(), gw_ref)
    # input error: transposed convolution, in int64
    ref_in = torch.nn.grad.conv2d_input(x.shape, w0.double(), err.double(), padding=1).round().long()
    assert torch.equal(niti.requantize(ref_in.to(torch.int32), 0)[0], x_err)
    assert torch.equal(conv.weight, niti.int8_clip(w0.short() - conv.weight_update_int8.short()))


def test_integer_loss_gradient():
    logits = torch.tensor([[100, -20, 3, 0], [0, 0, 0, 0]], dtype=torch.int8)
    grad = niti.integer_ce_grad(logits, -4, torch.tensor([1, 2]))
    assert grad.dtype == torch.int8
    assert grad[0, 1] < 0 and grad[0, 0] > 0 and grad[1, 2] < 0  # push the target up, the winner down
    assert abs(int(grad[1].long().sum())) <= 2 and (grad[1, [0, 1, 3]] >= 0).all()
    small = niti.integer_ce_grad(logits, -9, torch.tensor([1, 2]))  # the small-exponent approximation
    assert small[0, 1] < 0 and small.dtype == torch.int8


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_integer_training_keeps_every_tensor_integer(kind):
    data = load_digits_data(0).subset(128, 64)
    net = niti.IntNet(kind, seed=0)
    assert list(net.parameters()) == []  # nothing for a float optimiser
    w0 = {n: b.clone() for n, b in net.named_buffers()}
    seen: list[torch.Tensor] = []
    for _, layer in net.layers():
        layer.register_forward_hook(lambda mod, inp, out: seen.extend([inp[0][0], out[0]]))
    res = train(net, data, niti.NITI(), TrainConfig(epochs=2, progress=False))
    assert res.steps == 4 and res.history[-1]["loss"] <= 1.0
    assert seen and all(t.dtype == torch.int8 for t in seen)
    for name, buf in net.named_buffers():
        assert buf.dtype in INT_TYPES, name
        if name.endswith("weight"):
            assert buf.dtype == torch.int8 and not torch.equal(buf, w0[name])  # trained, in int8
    for _, layer in net.layers():
        if layer.has_weight:
            assert layer.weight_grad_int32.dtype == torch.int32 and layer.weight_update_int8.dtype == torch.int8
    fnet = net.to_float()
    first = fnet.conv1 if kind == "cnn" else fnet.fc1
    assert torch.equal(first.weight, net.layers()[0 if kind == "cnn" else 1][1].weight.float()
                       * 2.0 ** int(net.layers()[0 if kind == "cnn" else 1][1].weight_exp))
