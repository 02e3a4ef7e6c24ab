"""DFS: per-input gates (skip / 4 / 8 / full), BOPs budget, resume, input-dependent simulation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import accelsim  # noqa: E402
from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend.training import DFS, DFSConfig, simulate_dfs  # noqa: E402
from accelsim.frontend.training.data import load_digits_data  # noqa: E402
from accelsim.frontend.training.dfs import gated_blocks  # noqa: E402
from accelsim.frontend.training.loop import TrainConfig, train  # noqa: E402
from accelsim.frontend.training.models import BasicBlock, DigitsResNet  # noqa: E402
from accelsim.hardware.io import load_hardware  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return load_digits_data(0).subset(192, 96)


def _net(seed=0):
    torch.manual_seed(seed)
    return DigitsResNet(widths=(8, 16), blocks=(1, 1))


def _force(model, bits_index):
    """Make every gate choose ``bits_index`` for every input."""
    with torch.no_grad():
        for gb in gated_blocks(model).values():
            gb.gate.weight.zero_()
            gb.gate.bias.fill_(-10.0)
            gb.gate.bias[bits_index] = 10.0


def test_gate_choice_is_per_input_and_branches_are_right():
    m = DFS(DFSConfig())
    net = _net()
    m.setup(net, TrainConfig())
    net.eval()
    gb = gated_blocks(net)["layer1.0"]
    x = torch.rand(6, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    x[:3, 0] += 2.0  # inputs 0-2: large mean of channel 0
    with torch.no_grad():
        gb.gate.weight.zero_()
        gb.gate.bias.zero_()
        gb.gate.weight[0, 0] = -5.0  # skip when channel 0 is bright
        gb.gate.weight[3, 0] = 5.0   # full precision when it is bright
        gb.gate.bias[0] = 6.0        # dark inputs (channel-0 mean ~0.5) -> skip
        out = gb(x)
    chosen = torch.tensor(gb.bits)[gb.last_choice]
    assert chosen.tolist() == [32, 32, 32, 0, 0, 0]  # different inputs, different widths
    with torch.no_grad():
        ref = gb.block(x)  # the plain block = full precision
        assert torch.allclose(out[:3], ref[:3], atol=1e-6)
        assert torch.equal(out[3:], torch.relu(x[3:]))  # skipped residual branch: relu(identity)


def test_budget_moves_the_average_bops(data):
    def mean_ratio(budget):
        m = DFS(DFSConfig(budget=budget, bops_weight=5.0))
        res = train(_net(), data, m, TrainConfig(epochs=3, optimizer="adam", lr=1e-2, progress=False, seed=0))
        return m.mean_bops_ratio(res.model, data.x_test), m
    high, _ = mean_ratio(1.0)
    low, m = mean_ratio(0.05)
    assert high == 1.0 and low < 0.05  # no pressure: full precision kept; budget 0.05: narrower widths
    dist = m.bit_distribution(m._model, data.x_test)
    assert set(dist) == {"layer1.0", "layer2.0"}
    assert all(abs(sum(d.values()) - 1.0) < 1e-6 for d in dist.values())


def test_static_and_skip_variants_and_bad_config(data):
    m = DFS(DFSConfig(bits=(0, 32), input_dependent=False))
    net = _net()
    m.setup(net, TrainConfig())
    assert all(gb.gate is None and gb.static_logits is not None for gb in gated_blocks(net).values())
    ch = m.choices(net, data.x_test)
    assert all(len(torch.unique(c)) == 1 for c in ch.values())  # static: one width for every input
    with pytest.raises(ConfigError, match="bits"):
        DFSConfig(bits=(0, 3, 3))
    with pytest.raises(ConfigError, match="model"):
        DFS().setup(torch.nn.Sequential(torch.nn.Linear(2, 2)), TrainConfig())


def test_resume_is_bit_identical(tmp_path, data):
    def run(path, stop=None):
        return train(_net(1), data, DFS(DFSConfig(budget=0.05)),
                     TrainConfig(epochs=3, optimizer="adam", lr=1e-2, progress=False, seed=2, checkpoint=path),
                     max_epochs_this_run=stop)
    full = run(tmp_path / "a.pt")
    run(tmp_path / "b.pt", 1)
    rest = run(tmp_path / "b.pt")
    assert rest.resumed_from_epoch == 1 and rest.finished
    sa, sb = full.model.state_dict(), rest.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in rest.history]


def test_simulated_spread_matches_uniform_choices(data):
    hw = load_hardware("hw_configs/systolic_32x32_os_sparse.yaml")
    bs = hw.model_copy(update={"sparse": hw.sparse.model_copy(update={
        "zero_skipping": False, "nm_speedup": False, "block_skipping": False, "bit_serial": True})})
    m = DFS(DFSConfig())
    net = _net()
    m.setup(net, TrainConfig())
    x = data.x_test[:16]
    _force(net, 2)  # everyone 8-bit: the per-input latency is the whole network simulated at 8 bits
    res = simulate_dfs(net, m, x, lambda wl: accelsim.simulate(wl, bs, compare_dense=False))
    assert np.allclose(res.latency_us, res.by_bits_latency_us[8])
    s = res.summary()
    assert s["p50_latency_us"] == pytest.approx(s["expected_latency_us"]) == pytest.approx(res.by_bits_latency_us[8])
    # bit-serial PEs: 4-bit convs are faster than 8-bit ones; skipping is cheapest
    assert res.by_bits_latency_us[0] < res.by_bits_latency_us[4] < res.by_bits_latency_us[8]
    # mixed per-input choices: layer1.0 always 8-bit, layer2.0 skipped for half the inputs, 4-bit for the rest
    mixed = {"layer1.0": torch.full((16,), 8), "layer2.0": torch.tensor([0] * 8 + [4] * 8)}
    m.choices = lambda model, xs: mixed
    res2 = simulate_dfs(net, m, x, lambda wl: accelsim.simulate(wl, bs, compare_dense=False))
    assert len(set(np.round(res2.latency_us, 9))) == 2
    skip_cost, four_cost = res2.latency_us[0], res2.latency_us[-1]
    assert skip_cost < four_cost < res.by_bits_latency_us[8]
    assert res2.summary()["expected_latency_us"] == pytest.approx((skip_cost + four_cost) / 2)
    assert res2.summary()["p95_latency_us"] == pytest.approx(four_cost)
