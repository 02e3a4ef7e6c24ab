"""NRMF: SVT steps shrink the nuclear norm, ranks re-decided under one global budget, factorisation, resume."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.factorization import LowRankLinear, Tucker2Conv  # noqa: E402
from accelsim.frontend.training import NRMF, NRMFConfig  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.export import export_trained  # noqa: E402
from accelsim.frontend.training.loop import Method, TrainConfig, evaluate, train  # noqa: E402
from accelsim.frontend.training.models import build_model  # noqa: E402
from accelsim.frontend.training.nrmf import (decide_ranks, factorised_params, fold, nuclear_norm,  # noqa: E402
                                             project_rank, unfold)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(256, 120)


@pytest.fixture(scope="module")
def pretrained(data):
    return train(build_model("cnn", seed=2), data, Method(), TrainConfig(epochs=3, lr=0.05, progress=False)).model


def _cfg(**kw):
    base = dict(budget=0.3, lam=0.5, reg_epochs=4, finetune_epochs=1, skip=["conv1"])
    base.update(kw)
    return NRMFConfig(**base)


def test_unfold_fold_and_costs():
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    assert unfold(w, 1).shape == (4, 54) and torch.equal(fold(unfold(w, 1), 1, tuple(w.shape)), w)
    assert factorised_params((6, 4, 3, 3), (2, 3)) == 4 * 3 + 3 * 2 * 9 + 2 * 6
    assert factorised_params((10, 20), (3,)) == 3 * 30
    p = project_rank(w, (2, 3))  # Tucker-2 projection: multilinear rank (2, 3), idempotent
    assert torch.linalg.matrix_rank(unfold(p, 0)) == 2 and torch.linalg.matrix_rank(unfold(p, 1)) == 3
    assert torch.allclose(project_rank(p, (2, 3)), p, atol=1e-5)


def test_greedy_rank_decision_by_hand():
    # two linear layers 10x10 (rank r costs 20 r), budget 0.3 * 200 = 60 -> 3 rank units in total;
    # normalised values: a = [1, .9, .2, .1], b = [1, .5, .4, .3] -> order a1 .9, b1 .5, b2 .4 (a2 .2 does not fit)
    spectra = {"a": [np.array([10.0, 9.0, 2.0, 1.0])], "b": [np.array([4.0, 2.0, 1.6, 1.2])]}
    shapes = {"a": (10, 10), "b": (10, 10)}
    dec = decide_ranks(spectra, shapes, budget=0.3)
    assert dec.ranks == {"a": (2,), "b": (1,)}  # base 1 + 1 each = 40; a1 -> 60; b1 would be 80 > 60
    assert dec.threshold == pytest.approx(0.9) and dec.params == 60 <= dec.budget_params == 60
    dec = decide_ranks(spectra, shapes, budget=0.5)  # 100: a1, b1, b2 -> a 2, b 3
    assert dec.ranks == {"a": (2,), "b": (3,)} and dec.threshold == pytest.approx(0.4)
    zero = decide_ranks({"a": [np.array([1.0, 0.0, 0.0])]}, {"a": (10, 10)}, budget=1.0)
    assert zero.ranks == {"a": (1,)}  # zero singular values are never added


def test_svt_lowers_nuclear_norm_and_ranks_change(data, pretrained):
    import copy

    m = NRMF(_cfg())
    res = train(copy.deepcopy(pretrained), data, m, TrainConfig(lr=0.05, progress=False))
    m0 = NRMF(_cfg(lam=0.0))
    train(copy.deepcopy(pretrained), data, m0, TrainConfig(lr=0.05, progress=False))
    nn_reg = [h["nuclear_norm"] for h in m.log if h["phase"] == "reg"]
    nn_plain = [h["nuclear_norm"] for h in m0.log if h["phase"] == "reg"]
    start = sum(nuclear_norm(pretrained.get_submodule(n).weight) for n in ("conv2", "fc"))
    assert nn_reg[-1] < start and nn_reg[-1] < 0.8 * nn_plain[-1]
    assert all(b <= a for a, b in zip(nn_reg, nn_reg[1:]))  # monotone under the proximal steps here
    ranks = [{n: list(r) for n, r in m.initial_ranks.items()}] + [h["ranks"] for h in m.log]
    assert len({str(r) for r in ranks}) >= 2  # re-decided during training
    assert m.initial_ranks != m.ranks
    assert all(h["param_fraction"] <= 0.3 + 1e-9 for h in m.log)
    # factorised model: Tucker-2 conv2, SVD fc, ranks = the final decision, within the budget
    assert isinstance(res.model.conv2, Tucker2Conv) and isinstance(res.model.fc, LowRankLinear)
    r_out, r_in = m.ranks["conv2"]
    assert (res.model.conv2.core.out_channels, res.model.conv2.core.in_channels) == (r_out, r_in)
    held = sum(p.numel() for n, p in res.model.named_parameters() if n.startswith(("conv2.", "fc.")) and "weight" in n)
    dense = 32 * 16 * 9 + 10 * 512
    assert held <= 0.3 * dense and held == m.param_count()[0]
    assert res.test_accuracy == evaluate(res.model, data.x_test, data.y_test)


def test_finetune_keeps_ranks_and_factorisation_is_exact(data, pretrained):
    import copy

    m = NRMF(_cfg(reg_epochs=1, finetune_epochs=2))
    net = copy.deepcopy(pretrained)
    part = train(net, data, m, TrainConfig(lr=0.05, progress=False), max_epochs_this_run=2)
    assert not part.finished
    w = net.conv2.weight.detach().double()
    r_out, r_in = m.ranks["conv2"]
    assert torch.linalg.matrix_rank(unfold(w, 0), rtol=1e-5) <= r_out
    assert torch.linalg.matrix_rank(unfold(w, 1), rtol=1e-5) <= r_in
    before = evaluate(net, data.x_test, data.y_test)
    m.finalize(net)  # replacing the rank-projected layers by their factors changes no prediction
    assert evaluate(net, data.x_test, data.y_test) == before
    wl = export_trained(net, m.records(net), data.x_test[:1], name="cnn_nrmf")
    pieces = [layer for layer in wl.layers if layer.compression.factor_of == "conv2"]
    assert [p.name for p in pieces] == ["conv2.first", "conv2.core", "conv2.last"]
    assert pieces[0].compression.factorization.kind == "tucker"


def test_resume_is_bit_identical(tmp_path, data, pretrained):
    import copy

    def run(path, stop=None):
        m = NRMF(_cfg(reg_epochs=2, finetune_epochs=2))
        return m, train(copy.deepcopy(pretrained), data, m, TrainConfig(lr=0.05, progress=False, seed=3,
                                                                       checkpoint=path), max_epochs_this_run=stop)
    m_full, full = run(tmp_path / "a.pt")
    for stop in (1, 3):
        path = tmp_path / f"b{stop}.pt"
        run(path, stop)
        m_rest, rest = run(path)
        assert rest.finished and rest.resumed_from_epoch == stop
        sa, sb = full.model.state_dict(), rest.model.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert m_rest.ranks == m_full.ranks and [h["ranks"] for h in m_rest.log] == [h["ranks"] for h in m_full.log]


def test_bad_config():
    with pytest.raises(ConfigError, match="budget"):
        NRMFConfig(budget=0.0)
    with pytest.raises(ConfigError, match="tail_scale"):
        NRMFConfig(tail_scale=0.5)
    with pytest.raises(ConfigError, match="layers"):
        NRMF(NRMFConfig(layers=["nope"])).setup(build_model("cnn"), TrainConfig())
