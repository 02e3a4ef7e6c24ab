"""The shared training loop: seeded, resumable bit-identically from an atomically written checkpoint."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.recipe import QuantSpec, UnstructuredPrune  # noqa: E402
from accelsim.frontend.training import admm, djpq, dst, earlybird  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.loop import Method, TrainConfig, evaluate, train  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(192, 120)


def _states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_digits_split_is_seeded_and_stratified():
    d0, d1 = load_digits_data(0), load_digits_data(0)
    assert torch.equal(d0.x_train, d1.x_train) and torch.equal(d0.y_test, d1.y_test)
    assert d0.x_train.shape[1:] == (1, 8, 8) and len(d0.y_train) + len(d0.y_test) == 1797
    assert float(d0.x_train.max()) == 1.0 and d0.x_train_int.dtype == torch.int8
    assert torch.equal(d0.x_train_int.float() / 16, d0.x_train)
    test = torch.bincount(d0.y_test, minlength=10).double()
    total = test + torch.bincount(d0.y_train, minlength=10).double()
    assert float((test - 0.25 * total).abs().max()) <= 1.0  # stratified: a quarter of every class
    assert not torch.equal(load_digits_data(1).y_test, d0.y_test)


@pytest.mark.parametrize("make", [lambda: Method(), lambda: dst.DST(alpha=1e-2),
                                  lambda: admm.ADMM(admm.ADMMConfig(prune=UnstructuredPrune(density=0.3),
                                                                    quant=QuantSpec(weight_bits=4), admm_epochs=1,
                                                                    retrain_epochs=1, quant_admm_epochs=1,
                                                                    quant_retrain_epochs=1))],
                         ids=["plain", "dst", "admm"])
def test_resume_is_bit_identical(tmp_path, data, make):
    _check_resume(tmp_path, data, make, lambda: build_model("mlp", seed=1))


def _check_resume(tmp_path, data, make, net):
    cfg = dict(epochs=4, batch_size=64, lr=0.05, progress=False, seed=3)
    full = train(net(), data, make(), TrainConfig(checkpoint=tmp_path / "a.pt", **cfg))
    part = train(net(), data, make(), TrainConfig(checkpoint=tmp_path / "b.pt", **cfg), max_epochs_this_run=2)
    assert not part.finished and part.epochs_run == 2
    rest = train(net(), data, make(), TrainConfig(checkpoint=tmp_path / "b.pt", **cfg))
    assert rest.finished and rest.resumed_from_epoch == 2
    assert _states_equal(full.model, rest.model)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in rest.history]
    assert full.test_accuracy == rest.test_accuracy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temp files left behind


def test_resume_djpq_and_earlybird(tmp_path, data):
    ex = data.x_test[:1]
    _check_resume(tmp_path / "djpq", data, lambda: djpq.DJPQ(ex, kl_weight=1e-2), lambda: build_model("mlp", seed=1))
    _check_resume(tmp_path / "eb", data, lambda: earlybird.EarlyBird(fifo=2, threshold=1.0, max_search_epochs=3,
                                                                     retrain_epochs=1),
                  lambda: build_model("mlp", bn=True, seed=1))


def test_seed_changes_the_run(data):
    cfg = dict(epochs=1, progress=False)
    a = train(build_model("mlp", seed=0), data, None, TrainConfig(seed=0, **cfg))
    b = train(build_model("mlp", seed=0), data, None, TrainConfig(seed=1, **cfg))
    assert not _states_equal(a.model, b.model)  # data order differs


def test_checkpoint_of_another_method_is_rejected(tmp_path, data):
    path = tmp_path / "c.pt"
    train(build_model("mlp"), data, None, TrainConfig(epochs=1, checkpoint=path, progress=False))
    with pytest.raises(ConfigError, match="method"):
        train(build_model("mlp"), data, dst.DST(), TrainConfig(epochs=1, checkpoint=path, progress=False))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="c.pt"):
        train(build_model("mlp"), data, None, TrainConfig(epochs=1, checkpoint=path, progress=False))


def test_bad_config_is_a_config_error():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")  # type: ignore[arg-type]


def test_progress_bar_and_timing(data, capsys):
    res = train(build_model("mlp"), data, None, TrainConfig(epochs=2, progress=True, desc="digits-mlp"))
    assert "digits-mlp" in capsys.readouterr().err  # tqdm writes to stderr
    assert res.steps == 2 * 3 and res.train_time_s > 0 and res.step_time_s > 0
    assert res.test_accuracy == evaluate(res.model, data.x_test, data.y_test)


class _Evil:
    """A pickle that runs code when loaded (what an untrusted checkpoint can carry)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_malicious_checkpoint_is_refused(tmp_path, data):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"version": 1, "method": "plain", "model": {}, "method_state": _Evil(marker)}, ckpt)
    with pytest.raises(ConfigError, match="cannot read the checkpoint"):
        train(build_model("mlp", seed=1), data, Method(),
              TrainConfig(epochs=1, batch_size=64, progress=False, checkpoint=ckpt, resume=True))
    assert not marker.exists()  # refused before anything ran
    # the payload is live: a plain (unsafe) load would have run it
    torch.load(ckpt, weights_only=False)
    assert marker.read_text() == "pwned"
