"""NITI on a residual network: integer residual add, block forward/backward against float autograd."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.frontend.training import TrainConfig, load_digits_data, train  # noqa: E402
from accelsim.frontend.training import niti  # noqa: E402


def _val(t):
    x, e = t
    return x.to(torch.float64) * 2.0 ** e


def test_int_add_by_hand():
    x = (torch.tensor([100, -3], dtype=torch.int8), 0)
    y = (torch.tensor([64, 6], dtype=torch.int8), -2)  # 16, 1.5 -> shifted to exponent 0: 16, 2 (half away)
    out, e = niti.int_add(x, y)
    assert e == 0 and out.tolist() == [116, -1] and out.dtype == torch.int8
    out, e = niti.int_add((torch.tensor([100], dtype=torch.int8), 3), (torch.tensor([100], dtype=torch.int8), 3))
    assert (out.tolist(), e) == ([100], 4)  # 200 needs 8 bits: shifted by one, exponent + 1


def test_residual_block_matches_float_autograd():
    g = torch.Generator().manual_seed(0)
    block = niti.IntResBlock(4, 6, g)  # with a 1x1 skip conv
    x = (torch.randint(-127, 128, (3, 4, 5, 5), generator=g, dtype=torch.int64).to(torch.int8), -6)
    convs = {n: m.weight.to(torch.float64) * 2.0 ** int(m.weight_exp) for n, m in block.named_modules()
             if isinstance(m, niti.IntConv2d)}
    xf = _val(x).requires_grad_(True)
    ref = torch.relu(torch.nn.functional.conv2d(torch.relu(torch.nn.functional.conv2d(xf, convs["conv1"], padding=1)),
                                                convs["conv2"], padding=1) + torch.nn.functional.conv2d(xf, convs["proj"]))
    out = block(x)
    assert out[0].dtype == torch.int8
    rel = float((_val(out) - ref.detach()).norm() / ref.detach().norm())
    assert rel < 0.05, rel  # int8 rounding at 3 requantisations
    err = (torch.randint(-127, 128, out[0].shape, generator=g, dtype=torch.int64).to(torch.int8), -10)
    ref.backward(_val(err))
    gin = block.backward(err, grad_bits=5)
    assert gin[0].dtype == torch.int8
    rel = float((_val(gin) - xf.grad).norm() / xf.grad.norm())
    assert rel < 0.1, rel  # both branches' errors reach the input


def test_niti_trains_the_residual_net_integer_only():
    data = load_digits_data(seed=0).subset(600, 450)
    net = niti.IntNet("resnet", seed=0)
    res = train(net, data, niti.NITI(), TrainConfig(epochs=2, seed=0, progress=False))
    assert res.test_accuracy > 0.6  # chance is 0.1
    assert all(b.dtype in (torch.int8, torch.int64) for b in net.buffers())
    assert not list(net.parameters())  # no float parameter anywhere
    f = net.to_float()
    with torch.no_grad():
        pred = f(data.x_test[:64]).argmax(1)
    agree = float((pred == niti.NITI().predict(net, None, data.x_test_int[:64])).float().mean())
    assert agree > 0.9  # the exported float equivalent computes the same network
    assert set(niti.NITI().records(net)) == {"conv1", "block1.conv1", "block1.conv2", "block2.conv1", "block2.conv2",
                                              "block2.proj", "fc"}
