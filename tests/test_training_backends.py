"""Device-agnostic training: the torch paths of DST and NITI equal their numba CPU fast paths, and
the loop trains from any iterable of batches (a DataLoader) on the model's device/dtype."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.training import DST, LoaderData, Method, TrainConfig, build_model, load_digits_data  # noqa: E402
from accelsim.frontend.training import niti, train  # noqa: E402
from accelsim.frontend.training.dst import MaskedWeight  # noqa: E402
from accelsim.frontend.training.loop import evaluate  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_digits_data(seed=0).subset(160, 80)


@pytest.mark.parametrize("per_row", [True, False])
def test_dst_masked_weight_torch_equals_numba(per_row):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(12, 3, 3, 3, generator=g) * 0.5
    t = (torch.rand(12 if per_row else 1, generator=g) * 0.4)
    up = torch.randn(12, 3, 3, 3, generator=g)
    res = {}
    for backend in ("numba", "torch"):
        wi, ti = w.clone().requires_grad_(True), t.clone().requires_grad_(True)
        out, kept = MaskedWeight.apply(wi, ti, 1e-2, backend)
        (out * up).sum().backward()
        res[backend] = (out.detach(), kept, wi.grad, ti.grad)
    a, b = res["numba"], res["torch"]
    assert a[1] == b[1] and 0 < a[1] < w.numel()
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[2], b[2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a[3], b[3], rtol=1e-4, atol=1e-5)


def test_dst_float64_uses_torch_path(data):
    net = build_model("mlp").double()
    d64 = type(data)(data.x_train.double(), data.y_train, data.x_test.double(), data.y_test, data.x_train_int,
                     data.x_test_int, data.seed)
    m = DST(alpha=1e-2)
    train(net, d64, m, TrainConfig(epochs=1, optimizer="adam", lr=1e-3, progress=False))
    assert all(p.dtype == torch.float64 for p in net.parameters())
    with pytest.raises(ValueError, match="numba"):
        MaskedWeight.apply(torch.randn(4, 4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64), 0.0, "numba")


@pytest.mark.parametrize("shift", [1, 2, 5, 8, 13])
def test_niti_integer_ops_torch_equal_numba(shift):
    g = torch.Generator().manual_seed(shift)
    x = torch.randint(-2 ** 20, 2 ** 20, (257,), generator=g, dtype=torch.int32)
    x[:3] = torch.tensor([0, -(1 << (shift - 1)), 1 << (shift - 1)])  # ties of round-half-away
    for fn in (niti.round_shift, niti.psto_shift):
        a, b = fn(x, shift, backend="numba"), fn(x, shift, backend="torch")
        assert a.dtype == b.dtype == torch.int8
        assert torch.equal(a, b), fn.__name__
    assert niti.absmax(x, backend="numba") == niti.absmax(x, backend="torch") == int(x.abs().max())


def test_niti_training_torch_path_bit_identical(data, monkeypatch):
    """NITI with every integer op on the torch path trains to the same int8 weights."""
    weights = {}
    for use in (True, False):
        monkeypatch.setattr(niti, "USE_NUMBA", use)
        net = niti.IntNet("mlp", seed=0)
        train(net, data, niti.NITI(), TrainConfig(epochs=1, progress=False))
        weights[use] = {k: v.clone() for k, v in net.state_dict().items()}
    for k in weights[True]:
        assert torch.equal(weights[True][k], weights[False][k]), k


def test_loop_trains_from_a_dataloader(data):
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    tr = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=32, shuffle=True, generator=g)
    te = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=50)
    net = build_model("cnn")
    res = train(net, LoaderData(tr, te), Method(), TrainConfig(epochs=3, lr=0.05, progress=False))
    assert res.steps == 3 * 5  # 160 samples in batches of 32
    assert res.test_accuracy == evaluate(net, data.x_test, data.y_test) == evaluate(net, te)

    class SameOrder:
        """Yields the batches of the in-memory path (its seeded permutation per epoch)."""

        def __init__(self):
            self.gen = torch.Generator().manual_seed(0)

        def __iter__(self):
            perm = torch.randperm(len(data.y_train), generator=self.gen)
            for i in range(0, len(perm), 32):
                idx = perm[i:i + 32]
                yield data.x_train[idx], data.y_train[idx]

    a, b = build_model("cnn"), build_model("cnn")
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, progress=False)
    ra = train(a, data, Method(), cfg)
    rb = train(b, LoaderData(SameOrder(), te), Method(), cfg)
    assert ra.test_accuracy == rb.test_accuracy
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)  # the loader path is the same training, step for step
    # a plain list of (x, y) batches is an iterable too, and bad batches are one-line errors
    batches = [(data.x_train[i:i + 40], data.y_train[i:i + 40]) for i in range(0, 160, 40)]
    train(build_model("mlp"), LoaderData(batches, batches), Method(), TrainConfig(epochs=1, progress=False))
    with pytest.raises(ConfigError, match="batch"):
        train(build_model("mlp"), LoaderData([data.x_train], []), Method(), TrainConfig(epochs=1, progress=False))
    with pytest.raises(ConfigError, match="data"):
        train(build_model("mlp"), [1, 2], Method(), TrainConfig(epochs=1, progress=False))


def test_loader_with_integer_inputs_for_niti(data):
    """Batches of (x, y, x_int) feed NITI from a loader."""
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(data.x_train, data.y_train, data.x_train_int)
    te = DataLoader(TensorDataset(data.x_test, data.y_test, data.x_test_int), batch_size=80)
    net = niti.IntNet("mlp", seed=0)
    res = train(net, LoaderData(DataLoader(ds, batch_size=64), te), niti.NITI(), TrainConfig(epochs=1, progress=False))
    assert 0.0 <= res.test_accuracy <= 1.0 and res.steps == 3
