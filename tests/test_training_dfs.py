"""DFS: per-input gates (skip / 4 / 8 / full), BOPs budget, resume, input-dependent simulation."""
from __future__ import annotations

import copy

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
from accelsim.frontend.training.models import DigitsResNet  # noqa: E402
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
    from accelsim.frontend.training.loop import Method

    tc = dict(optimizer="adam", lr=1e-2, progress=False, seed=0)
    base = train(_net(), data, Method(), TrainConfig(epochs=10, **tc)).model

    def mean_ratio(budget, weight=5.0):
        m = DFS(DFSConfig(budget=budget, bops_weight=weight))
        res = train(copy.deepcopy(base), data, m, TrainConfig(epochs=3, **tc))
        return m.mean_bops_ratio(res.model, data.x_test), m, res.model
    assert mean_ratio(1.0)[0] == 1.0  # no pressure: the gates stay at full precision (their start)
    assert mean_ratio(0.3, weight=0.0)[0] == 1.0  # the penalty is what moves them
    r3, r1, (r03, m, model) = mean_ratio(0.3)[0], mean_ratio(0.1)[0], mean_ratio(0.03)
    assert r3 <= 0.3 and r03 <= r1 <= r3 and r03 < 0.03
    dist = m.bit_distribution(model, data.x_test)
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
        return train(_net(1), data, DFS(DFSConfig(budget=0.05, tau=2.0, tau_end=0.5)),
                     TrainConfig(epochs=3, optimizer="adam", lr=1e-2, progress=False, seed=2, checkpoint=path),
                     max_epochs_this_run=stop)
    full = run(tmp_path / "a.pt")
    run(tmp_path / "b.pt", 1)
    rest = run(tmp_path / "b.pt")
    assert rest.resumed_from_epoch == 1 and rest.finished
    sa, sb = full.model.state_dict(), rest.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in rest.history]
    assert all(gb.tau == pytest.approx(0.5) for gb in gated_blocks(rest.model).values())  # annealed to tau_end
    assert DFSConfig(tau=2.0, tau_end=0.5).tau_at(1, 3) == pytest.approx(1.0)


def _digits_and_blanks(n_train=192, n_test=64):
    from accelsim.frontend.training.data import DigitsData

    d = load_digits_data(0)

    def mix(x, y, n):
        return torch.cat([x[:n], torch.zeros_like(x[:n])]), torch.cat([y[:n], torch.zeros_like(y[:n])])
    xtr, ytr = mix(d.x_train, d.y_train, n_train)
    xte, yte = mix(d.x_test, d.y_test, n_test)
    return DigitsData(xtr, ytr, xte, yte, xtr.to(torch.int8), xte.to(torch.int8), 0)


def test_gates_learn_to_skip_the_inputs_that_do_not_need_the_block():
    """Half the inputs are blank (label 0: any path classifies them); under a 0.5 budget of {skip, full}
    the per-input gates must skip exactly those and run the digits, which a static gate cannot."""
    from accelsim.frontend.training.loop import Method

    data = _digits_and_blanks()
    tc = dict(optimizer="adam", lr=1e-2, progress=False, seed=0, batch_size=64)
    base = train(_net(0), data, Method(), TrainConfig(epochs=15, **tc)).model
    n = len(data.x_test) // 2
    m = DFS(DFSConfig(bits=(0, 32), budget=0.5, bops_weight=5.0))
    res = train(copy.deepcopy(base), data, m, TrainConfig(epochs=6, **tc))
    ch = m.choices(res.model, data.x_test)
    for blk, c in ch.items():
        assert float((c[n:] == 0).float().mean()) >= 0.9, blk  # blanks skipped
    assert np.mean([float((c[:n] == 0).float().mean()) for c in ch.values()]) <= 0.25  # digits mostly run
    assert res.test_accuracy > 0.75  # blanks alone are half the test set; the digits must mostly be right too
    st = DFS(DFSConfig(bits=(0, 32), budget=0.5, bops_weight=5.0, input_dependent=False))
    res_s = train(copy.deepcopy(base), data, st, TrainConfig(epochs=6, **tc))
    assert all(len(torch.unique(c)) == 1 for c in st.choices(res_s.model, data.x_test).values())


def test_calibrate_meets_the_target_from_below(data):
    m = DFS(DFSConfig())
    net = _net()
    m.setup(net, TrainConfig())
    with torch.no_grad():
        for gb in gated_blocks(net).values():
            torch.nn.init.normal_(gb.gate.weight, std=2.0, generator=torch.Generator().manual_seed(3))
    net.eval()
    net(data.x_train)  # running statistics of the gate features
    reached = [m.calibrate(net, data.x_train, t) for t in (0.02, 0.1, 0.5)]
    assert all(r <= t + 1e-12 for r, t in zip(reached, (0.02, 0.1, 0.5)))
    assert reached[0] <= reached[1] <= reached[2] and reached[2] > 0.1
    assert m.mean_bops_ratio(net, data.x_train) == reached[2]


def _mixed_export(data):
    m = DFS(DFSConfig())
    net = _net()
    m.setup(net, TrainConfig())
    x = data.x_test[:32]
    mixed = {"layer1.0": torch.tensor([8, 4, 0, 32] * 8), "layer2.0": torch.tensor([0] * 16 + [4] * 8 + [32] * 8)}
    m.choices = lambda model, xs, batch_size=256: mixed
    return m, net, x, m.export(net, x, name="dfs_mixed")


def test_export_round_trip_through_yaml(data, tmp_path):
    from accelsim.workload.io import load_workload, save_workload

    m, net, x, wl = _mixed_export(data)
    dp = {layer.name: layer.compression.dynamic_precision for layer in wl.layers
          if layer.compression.dynamic_precision is not None}
    assert set(dp) == {"layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2"}
    assert dp["layer1.0.conv1"].bits_probability == {0: 0.25, 4: 0.25, 8: 0.25, 16: 0.25}  # full precision -> 16
    assert dp["layer2.0.conv2"].bits_probability == {0: 0.5, 4: 0.25, 16: 0.25}
    assert dp["layer2.0.conv1"].trace == [0] * 16 + [4] * 8 + [16] * 8 and dp["layer2.0.conv1"].inputs == 32
    assert wl["layer1.0.conv1"].compression.quant.weight_bits == 16  # rows at the widest chosen width
    assert wl["conv1"].compression.dynamic_precision is None
    save_workload(wl, tmp_path / "dfs.yaml")
    back = load_workload(tmp_path / "dfs.yaml")
    assert back == wl


def test_core_simulation_of_the_export_equals_the_per_input_sum(data, tmp_path, capsys):
    from accelsim.cli import main
    from accelsim.hardware.io import hardware_to_dict
    from accelsim.report import duration_text
    from accelsim.workload.io import save_workload
    import yaml

    hw = load_hardware("hw_configs/systolic_32x32_os_sparse.yaml")
    bs = hw.model_copy(update={"sparse": hw.sparse.model_copy(update={
        "zero_skipping": False, "nm_speedup": False, "block_skipping": False, "bit_serial": True})})
    m, net, x, wl = _mixed_export(data)
    ref = simulate_dfs(net, m, x, lambda w: accelsim.simulate(w, bs, compare_dense=False)).summary()
    s = accelsim.simulate(wl, bs, compare_dense=False).summary()
    assert s["dynamic_spread_exact"] and s["dynamic_inputs"] == 32
    for k in ("expected", "p50", "p95"):
        assert s[f"{k}_latency_ms"] * 1e3 == pytest.approx(ref[f"{k}_latency_us"], rel=1e-12)
        assert s[f"{k}_energy_uj"] == pytest.approx(ref[f"{k}_energy_uj"], rel=1e-9)
    save_workload(wl, tmp_path / "dfs.yaml")
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hardware_to_dict(bs), sort_keys=False))
    assert main(["simulate", "--workload", str(tmp_path / "dfs.yaml"), "--hw", str(tmp_path / "hw.yaml")]) == 0
    out = capsys.readouterr().out
    assert (f"expected latency {duration_text(s['expected_latency_ms'])}, p50 {duration_text(s['p50_latency_ms'])}, "
            f"p95 {duration_text(s['p95_latency_ms'])} (exact over 32 measured inputs)") in out


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
