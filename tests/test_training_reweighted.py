"""Reweighted group Lasso (BLK-REW): factors 1/(norm+eps), block density, masks, LSTM export, resume."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.training import ReweightedGroupLasso, ReweightedGroupLassoConfig  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.export import export_trained  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402
from accelsim.frontend.training.reweighted import block_groups  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(192, 120)


def _hand_block_norms(view, bh, bw):
    """Block norms by an explicit loop (edge blocks partial)."""
    rows, cols = view.shape
    out = torch.zeros(math.ceil(rows / bh), math.ceil(cols / bw), dtype=torch.float64)
    for i in range(0, rows, bh):
        for j in range(0, cols, bw):
            out[i // bh, j // bw] = float(view[i:i + bh, j:j + bw].double().pow(2).sum().sqrt())
    return out


def _cfg(**kw):
    base = dict(density=0.25, block=(4, 4), lam=1e-3, reweight_every=3, penalty_epochs=2, retrain_epochs=2)
    base.update(kw)
    return ReweightedGroupLassoConfig(**base)


def test_factors_follow_one_over_norm_plus_eps():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.Flatten(), torch.nn.Linear(6, 10))
    m = ReweightedGroupLasso(_cfg(block=(4, 4), eps=0.05))
    m.setup(net, TrainConfig())
    m.reweight_now()
    for name, mod in (("0", net[0]), ("2", net[2])):
        view = mod.weight.detach().reshape(mod.weight.shape[0], -1)  # conv: 6 x 27 -> 2 x 7 blocks, partial edges
        want = 1.0 / (_hand_block_norms(view, 4, 4) + 0.05)
        assert m.factors[name].shape == want.shape
        assert torch.allclose(m.factors[name].double(), want, rtol=1e-5)
    plain = ReweightedGroupLasso(_cfg(reweight=False))
    plain.setup(net, TrainConfig())
    plain.reweight_now()
    assert all(bool((f == 1).all()) for f in plain.factors.values())
    # the penalty is sum P_g ||W_g||: with P from the same weights each block contributes ||W||/(||W||+eps) < 1
    with torch.no_grad():
        pen = float(m.group_penalty())
    n_blocks = sum(f.numel() for f in m.factors.values())
    assert 0 < pen < n_blocks


class _Snap(ReweightedGroupLasso):
    """Records the weights every time the factors are recomputed."""

    def reweight_now(self):
        self.snap = {g.key: [t.detach().clone() for t in self._tensors(g)] for g in self.groups}
        super().reweight_now()


def test_factors_are_recomputed_every_k_steps_during_training(data):
    m = _Snap(_cfg(reweight_every=2, penalty_epochs=1, retrain_epochs=0, eps=1e-3))
    res = train(build_model("lstm"), data, m, TrainConfig(epochs=1, batch_size=32, lr=0.05, progress=False))
    steps = res.steps  # 192 / 32 = 6 steps in the penalty phase
    assert m.reweights == math.ceil(steps / 2) == 3
    g = next(g for g in m.groups if g.module == "lstm")
    assert g.params == ["weight_ih_l0", "weight_hh_l0"]
    view = torch.cat(m.snap[g.key], dim=1)  # [W_ih | W_hh] = 256 x (8 + 64)
    assert m.factors[g.key].shape == (64, 18)
    assert torch.allclose(m.factors[g.key].double(), 1.0 / (_hand_block_norms(view, 4, 4) + 1e-3), rtol=1e-5)


@pytest.mark.parametrize("kind,block", [("cnn", (4, 4)), ("transformer", (8, 4)), ("lstm", (4, 8))])
def test_block_density_reached_and_pruned_blocks_stay_zero(data, kind, block):
    m = ReweightedGroupLasso(_cfg(block=block, density=0.3, penalty_epochs=1, retrain_epochs=1))
    res = train(build_model(kind), data, m, TrainConfig(batch_size=64, lr=0.01, optimizer="adam", progress=False))
    for g in m.groups:
        bm = m.block_masks[g.key]
        assert int(bm.sum()) == max(1, round(0.3 * bm.numel()))
        ts = m._tensors(g)
        view = torch.cat([t.detach().reshape(t.shape[0], -1) for t in ts], dim=1)
        norms = _hand_block_norms(view, *block)
        assert float(norms[~bm].max()) == 0.0  # exactly zero after masked retraining
    recs = m.records(res.model)
    wl = export_trained(res.model, recs, data.x_test[:1], name=f"{kind}_blk")
    exported = {layer.name: layer for layer in wl.layers}
    for name, rec in recs.items():
        assert rec.prune.kind == "block" and tuple(rec.prune.block) == block
        layer = exported[name]
        sp = layer.compression.sparsity
        assert sp.kind == "block" and (sp.block_h, sp.block_w) == block
        masks = [rec.mask] if rec.mask is not None else list(rec.param_masks.values())
        kept = sum(int(x.sum()) for x in masks) / sum(x.numel() for x in masks)
        assert sp.density == pytest.approx(kept, rel=1e-6)


def test_reweighted_penalty_empties_blocks_before_pruning(data):
    """At the end of the penalty phase the blocks hard pruning drops hold less weight energy than
    after the same plain training (lam = 0) or plain group Lasso of the same strength."""
    def dropped_energy(lam, reweight=True):
        m = ReweightedGroupLasso(_cfg(lam=lam, reweight=reweight, penalty_epochs=4, retrain_epochs=1, density=0.25))
        train(build_model("mlp", seed=1), data, m, TrainConfig(batch_size=32, lr=0.05, progress=False, seed=0),
              max_epochs_this_run=4)
        norms = torch.cat([n.reshape(-1) for n in m.current_norms().values()]).double()
        kept = torch.sort(norms, descending=True).values[:round(0.25 * norms.numel())]
        return 1.0 - float(kept.pow(2).sum() / norms.pow(2).sum())
    rew = dropped_energy(1e-2)
    assert rew < 0.5 * dropped_energy(0.0) and rew < 0.5 * dropped_energy(1e-2, reweight=False)


def test_resume_is_bit_identical(tmp_path, data):
    def run(path, stop=None):
        m = ReweightedGroupLasso(_cfg(penalty_epochs=2, retrain_epochs=2))
        return m, train(build_model("lstm", seed=1), data, m,
                        TrainConfig(batch_size=64, lr=0.05, progress=False, seed=3, checkpoint=path),
                        max_epochs_this_run=stop)
    m_full, full = run(tmp_path / "a.pt")
    for stop in (1, 3):  # interrupted in the penalty phase and in the retraining phase
        path = tmp_path / f"b{stop}.pt"
        _, part = run(path, stop)
        assert not part.finished
        m_rest, rest = run(path)
        assert rest.finished and rest.resumed_from_epoch == stop
        sa, sb = full.model.state_dict(), rest.model.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert [h["loss"] for h in full.history] == [h["loss"] for h in rest.history]
        assert m_rest.reweights == m_full.reweights
        assert all(torch.equal(m_full.block_masks[k], m_rest.block_masks[k]) for k in m_full.block_masks)


def test_bad_config_and_layers():
    with pytest.raises(ConfigError, match="density"):
        ReweightedGroupLassoConfig(density=0.0)
    with pytest.raises(ConfigError, match="reweight_every"):
        ReweightedGroupLassoConfig(reweight_every=0)
    with pytest.raises(ConfigError, match="layers"):
        block_groups(build_model("cnn"), layers=["nope"])
    assert [g.key for g in block_groups(build_model("cnn"), skip=["conv1"])] == ["conv2", "fc"]
