"""Differentiable (DNA-style) network/accelerator search (issue 16, item 1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim.cli import main
from accelsim.dse import load, load_sweep, run_sweep
from accelsim.dse.differentiable import AccuracyModel, Penalty, RelaxedProblem, UnitModel
from accelsim.dse.relax import HardwareSpace
from accelsim.dse.store import ResultsStore
from accelsim.dse.surrogate import LogQuadSurrogate, features, heldout_error
from accelsim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
HW = str(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")


def _hw_sweep(**search):
    return {"name": "dhw", "hardware": HW, "workloads": [{"zoo": "resnet18", "resolution": 32}],
            "axes": {"rows": [8, 16, 32, 64], "cols": [8, 16, 32, 64], "ifmap_sram.size_kb": [16, 64, 256],
                     "dataflow": ["os", "ws"]},
            "search": {"method": "differentiable", "fit_samples": 16, "holdout": 6, "steps": 100, "trade_offs": 3,
                       **search},
            "objectives": ["latency_ms", "energy_uj"]}


def _random_units(hs, rng, L, C):
    """L layers with a C-way choice plus one fixed unit, each with random log-quadratic surrogates."""
    def model(cat):
        m = LogQuadSurrogate(hs.dims, cat)
        m.coef = rng.normal(scale=0.3, size=len(features(np.zeros(hs.dims), [np.zeros(k) for k in cat])[0]))
        return m

    units = [UnitModel({"latency_ms": model(hs.cat_sizes + [C]), "energy_uj": model(hs.cat_sizes + [C])}, l)
             for l in range(L)]
    return units + [UnitModel({"latency_ms": model(hs.cat_sizes), "energy_uj": model(hs.cat_sizes)}, None)]


def test_surrogate_recovers_a_log_quadratic_and_its_gradient():
    rng = np.random.default_rng(1)
    Z = rng.uniform(-1, 1, (40, 2))
    Q = [np.eye(2)[rng.integers(0, 2, 40)]]
    f = lambda z, q: 1.0 + 0.5 * z[0] - 0.3 * z[1] + 0.2 * z[0] * z[1] + 0.4 * q[1] + 0.1 * q[1] * z[0]  # noqa: E731
    y = np.array([np.exp(f(z, q)) for z, q in zip(Z, Q[0])])
    s = LogQuadSurrogate(2, [2], ridge=1e-9).fit(Z[:30], [Q[0][:30]], y[:30])
    err = heldout_error(y[30:], s.predict(Z[30:], [Q[0][30:]]))
    assert err["mean_rel_err"] < 1e-6 and err["points"] == 10
    z, q = np.array([0.3, -0.2]), [np.array([0.3, 0.7])]
    v, gz, gq = s.value_and_grad(z, q)
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        assert gz[i] == pytest.approx((s.value_and_grad(z + e, q)[0] - s.value_and_grad(z - e, q)[0]) / (2 * h), rel=1e-5)
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = (s.value_and_grad(z, [q[0] + e])[0] - s.value_and_grad(z, [q[0] - e])[0]) / (2 * h)
        assert gq[0][k] == pytest.approx(fd, rel=1e-5)


def test_gradients_reach_architecture_and_hardware_parameters():
    """Finite differences of the relaxed objective w.r.t. every alpha, z and categorical logit."""
    sw = load_sweep(_hw_sweep())
    hs = HardwareSpace(sw.hardware_axes)
    assert hs.dims == 3 and hs.cat_sizes == [2]
    rng = np.random.default_rng(0)
    L, C = 2, 3
    units = _random_units(hs, rng, L, C)
    acc = AccuracyModel(0.9, rng.normal(scale=0.05, size=(L, C)))
    prob = RelaxedProblem(hs, units, L, C, acc, {"accuracy": 0.5, "latency_ms": 0.3, "energy_uj": 0.2},
                          {"accuracy": 0.1, "latency_ms": 2.0, "energy_uj": 3.0})
    theta = rng.normal(scale=0.5, size=prob.size)
    theta[L * C:L * C + hs.dims] = rng.uniform(-0.8, 0.8, hs.dims)
    _, g = prob.loss(theta)
    h = 1e-6
    fd = np.array([(prob.loss(theta + h * e)[0] - prob.loss(theta - h * e)[0]) / (2 * h) for e in np.eye(prob.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-8)
    n_a = L * C
    assert np.abs(g[:n_a]).max() > 1e-4                      # architecture parameters
    assert np.abs(g[n_a:n_a + hs.dims]).max() > 1e-4         # rows / cols / buffer size
    assert np.abs(g[n_a + hs.dims:]).max() > 1e-4            # dataflow logits


def test_hardware_search_surrogate_error_and_stored_points(tmp_path):
    st = tmp_path / "d.sqlite"
    r = run_sweep(_hw_sweep(), st, workers=1)
    info = r.search_info
    assert info["fit_simulations"] == 16 and info["holdout_simulations"] == 6
    for m in ("latency_ms", "energy_uj"):
        e = info["surrogate_error"][m]
        assert e["points"] == 6 and 0 <= e["mean_rel_err"] < 0.5
    df = load(st, sweep="dhw")
    assert len(df) == len(info["designs"]) == r.evaluated and (df["status"] == "ok").all()
    for d in info["designs"]:  # every design snapped to the sweep's values
        assert d["rows"] in (8, 16, 32, 64) and d["dataflow"] in ("os", "ws") and d["ifmap_sram.size_kb"] in (16, 64, 256)
    with ResultsStore(st) as s:
        assert s.search_info("dhw")["designs"] == info["designs"]
    # conservation on the exact re-simulations
    assert (df["macs"] == df["macs"].iloc[0]).all() and df["latency_ms"].min() > 0 and df["utilization"].max() <= 1.0


@pytest.mark.parametrize("change, field", [
    (lambda s: s.update(constraints=["latency_ms <= 1", "foo_ms <= 1"]), "constraints[1]"),  # unknown metric
    (lambda s: s.update(constraints=["utilization >= 0.3"]), "constraints[0]"),  # not modelled by the surrogate
    (lambda s: s.update(constraints=["latency_ms == 1"]), "constraints[0]"),
    (lambda s: s.update(constraints=["energy_uj <= 0"]), "constraints[0]"),
    (lambda s: s.update(constraints=["accuracy >= 0.9"]), "constraints[0]"),  # no compression section
    (lambda s: s.update(objectives=["utilization"]), "objectives[0]"),
    (lambda s: s.update(workloads=["zoo:tiny_cnn", "zoo:resnet18"]), "workloads"),
    (lambda s: s.update(axes={}), "axes"),
    (lambda s: s["search"].update(steps=0), "search.steps"),
])
def test_bad_differentiable_specs_name_the_field(change, field):
    sw = _hw_sweep()
    change(sw)
    with pytest.raises(ConfigError) as ei:
        load_sweep(sw)
    assert ei.value.field == field


def test_cli_bad_spec_exit_2(tmp_path, capsys):
    sw = _hw_sweep()
    sw["constraints"] = ["latency_ms <= 1", "mystery_metric <= 1"]
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(sw))
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "constraints[1]" in err and "mystery_metric" in err and len(err.splitlines()) == 1


def test_constraint_penalty_gradient_reaches_every_parameter():
    """Finite differences of objective + active penalties; the penalty alone moves alpha, z and the logits."""
    sw = load_sweep(_hw_sweep())
    hs = HardwareSpace(sw.hardware_axes)
    rng = np.random.default_rng(3)
    L, C = 2, 3
    units = _random_units(hs, rng, L, C)
    acc = AccuracyModel(0.9, rng.normal(scale=0.05, size=(L, C)))
    spans = {"accuracy": 0.1, "latency_ms": 2.0, "energy_uj": 3.0}
    theta = rng.normal(scale=0.5, size=L * C + hs.dims + sum(hs.cat_sizes))
    theta[L * C:L * C + hs.dims] = rng.uniform(-0.8, 0.8, hs.dims)
    bare = RelaxedProblem(hs, units, L, C, acc, {"energy_uj": 1.0}, spans)
    prob = RelaxedProblem(hs, units, L, C, acc, {"energy_uj": 1.0}, spans)
    prob.rho = 5.0
    prob.penalties = [Penalty("latency_ms", 1.0, 1e-6, 0.1), Penalty("accuracy", -1.0, 2.0)]  # both violated
    J0, g0 = bare.loss(theta)
    J, g = prob.loss(theta)
    assert J > J0
    h = 1e-6
    fd = np.array([(prob.loss(theta + h * e)[0] - prob.loss(theta - h * e)[0]) / (2 * h) for e in np.eye(prob.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-8)
    d, n_a = g - g0, L * C
    assert np.abs(d[:n_a]).max() > 1e-3 and np.abs(d[n_a:n_a + hs.dims]).max() > 1e-3 and np.abs(d[n_a + hs.dims:]).max() > 1e-3
    prob.penalties = [Penalty("latency_ms", 1.0, 1e9)]  # satisfied: no penalty, no gradient change
    assert prob.loss(theta)[0] == pytest.approx(J0) and np.allclose(prob.loss(theta)[1], g0)


def _tiny_sweep(constraints):
    """tiny_cnn on 5 x 5 x 2 arrays: least energy is 64x32/64x64 OS (latency ~1.2-1.3 us); only WS arrays
    of 64 rows reach latency <= 1 us (grid-checked: 64x64 ws 0.90 us, 64x32 ws 0.93 us)."""
    return {"name": "tight", "hardware": HW, "workloads": [{"zoo": "tiny_cnn"}],
            "axes": {"rows": [4, 8, 16, 32, 64], "cols": [4, 8, 16, 32, 64], "dataflow": ["os", "ws"]},
            "search": {"method": "differentiable", "fit_samples": 16, "holdout": 6, "steps": 100, "trade_offs": 1},
            "objectives": ["energy_uj"], "constraints": constraints}


def test_tight_constraint_met_when_resimulated(tmp_path):
    free = run_sweep(_tiny_sweep([]), tmp_path / "free.sqlite", workers=1)
    assert free.search_info["feasible"] == [True]
    lat_free = load(tmp_path / "free.sqlite", sweep="tight")["latency_ms"]
    assert (lat_free > 0.001).all()  # the constraint binds: the unconstrained answer breaks it
    r = run_sweep(_tiny_sweep(["latency_ms <= 0.001"]), tmp_path / "c.sqlite", workers=1)
    df = load(tmp_path / "c.sqlite", sweep="tight")
    assert r.search_info["feasible"] == [True] * len(df) and (df["latency_ms"] <= 0.001).all()
    assert len(r.front) >= 1 and r.feasible == len(df)
    assert "latency_ms" in r.search_info["surrogate_error"]  # the constraint metric has its own surrogate


def test_point_over_a_constraint_is_stored_but_never_the_answer(tmp_path):
    sw = _tiny_sweep(["latency_ms <= 1e-7"])  # no design reaches it
    sw["search"].update(fit_samples=6, holdout=0, steps=20)
    r = run_sweep(sw, tmp_path / "x.sqlite", workers=1)
    df = load(tmp_path / "x.sqlite", sweep="tight")
    assert len(df) >= 1 and (df["status"] == "ok").all()  # re-simulated and stored
    assert r.search_info["feasible"] == [False] * len(df)
    assert len(r.front) == 0 and r.feasible == 0


def test_joint_search_with_per_layer_choices(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")

    def small_net():
        return torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(6 * 6 * 6, 10))

    def density(model):  # 'accuracy' = fraction of non-zero weights (checkable by hand)
        ws = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        return float(sum(int((w != 0).sum()) for w in ws) / sum(w.numel() for w in ws))

    sw = {"name": "dna", "hardware": HW,
          "compression": {"model": small_net, "evaluator": density, "cache_dir": str(tmp_path / "c"),
                          "recipe": {"prune": {"kind": "unstructured", "density": 1.0}}},
          "axes": {"recipe.prune.density": [0.25, 1.0], "rows": [4, 8, 16, 32], "cols": {"same_as": "rows"}},
          "search": {"method": "differentiable", "fit_samples": 6, "holdout": 3, "accuracy_samples": 3, "steps": 100,
                     "trade_offs": 3},
          "objectives": ["accuracy", "latency_ms"]}
    r = run_sweep(sw, tmp_path / "d.sqlite", workers=1)
    info = r.search_info
    assert info["accuracy_evaluations"] == 2 + 3 and info["accuracy_error"]["points"] == 5
    assert info["surrogate_error"]["latency_ms"]["points"] == 3
    df = load(tmp_path / "d.sqlite", sweep="dna")
    assert len(df) == len(info["designs"]) and (df["status"] == "ok").all()
    conv, fc = "recipe.layers[0].prune.density", "recipe.layers[3].prune.density"
    for _, row in df.iterrows():  # the per-layer recipe was applied: measured density = hand count
        want = (round(row[conv] * 54) + round(row[fc] * 2160)) / 2214
        assert row["accuracy"] == pytest.approx(want, abs=1e-9)
    # stored like any sweep: results and plots read it
    assert main(["results", str(tmp_path / "d.sqlite")]) == 0
    assert main(["plot", "--store", str(tmp_path / "d.sqlite"), "--kind", "pareto", "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
