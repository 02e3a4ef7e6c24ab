"""Min-max robust co-design over a sweep's workloads (issue 16, item 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim.cli import main
from accelsim.dse import load, load_sweep, run_sweep
from accelsim.dse.minmax import solve_game
from accelsim.dse.store import ResultsStore
from accelsim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
HW = str(ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml")
WLS = ["zoo:tiny_cnn", {"zoo": "resnet18", "resolution": 32}]


def _sweep(aggregate="minmax", **search):
    sw = {"name": f"mm_{aggregate}", "hardware": HW, "workloads": WLS,
          "axes": {"rows": [8, 16, 64], "cols": [8, 32, 64], "dataflow": ["os", "ws"]},
          "objectives": [{"metric": "latency_ms", "aggregate": aggregate, "normalize": "best"}]}
    if search:
        sw["search"] = search
        sw["name"] += "_" + search["method"]
    return sw


def test_game_weights_on_simplex_and_shift_to_worst():
    # design 0 is good on workload 0, bad on 1; design 1 the reverse; design 2 balanced
    M = np.array([[1.0, 4.0], [4.0, 1.0], [2.6, 2.6], [1.2, 3.0]])
    g = solve_game(M, "minmax", eta=0.5)
    assert g.weights.sum() == pytest.approx(1.0) and np.all(g.weights >= 0)
    for w in g.history:
        assert w.sum() == pytest.approx(1.0)
    assert g.best == 2  # the balanced design has the lowest worst case (2.6 < 3.0 < 4)
    # workload 1 is the worse one at the uniform best response (design 3: 1.2 vs 3.0): its weight grows
    assert g.history[1][1] > 0.5
    mean = solve_game(M, "mean")
    assert mean.best == 3 and np.allclose(mean.weights, 0.5)
    assert M[g.best].max() <= M[mean.best].max()


def test_game_never_worse_than_uniform_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(50):
        M = rng.lognormal(size=(12, 3))
        g, u, mx = solve_game(M, "minmax"), solve_game(M, "mean"), solve_game(M, "max")
        assert M[g.best].max() <= M[u.best].max() + 1e-12
        assert M[mx.best].max() == pytest.approx(M.max(axis=1).min())
        assert g.weights.sum() == pytest.approx(1.0)


def test_grid_minmax_vs_mean_and_stored(tmp_path):
    st = tmp_path / "mm.sqlite"
    mm = run_sweep(_sweep("minmax"), st, workers=1)
    mean = run_sweep(_sweep("mean"), st, workers=1)
    labels = ["zoo:tiny_cnn", "zoo:resnet18,resolution=32"]
    for r in (mm, mean):
        assert list(r.workload_weights) == labels
        assert sum(r.workload_weights.values()) == pytest.approx(1.0)
    assert mean.evaluated == 0 and mean.skipped == 36  # same points: nothing simulated twice
    # exact check from the store: the chosen design's per-workload latency, and the worst case order
    df = load(st, sweep="mm_minmax")
    best = mm.best["best_params"]
    sel = df[(df["rows"] == best["rows"]) & (df["cols"] == best["cols"]) & (df["dataflow"] == best["dataflow"])]
    assert dict(zip(sel["workload"], sel["latency_ms"])) == pytest.approx(mm.best["per_workload"])
    norm = df.groupby("workload")["latency_ms"].min()
    regret = lambda b: max(b["per_workload"][k] / norm[k] for k in labels)  # noqa: E731
    assert regret(mm.best) <= regret(mean.best) + 1e-12
    with ResultsStore(st) as s:
        info = s.search_info("mm_minmax")
    assert info["workload_weights"] == pytest.approx(mm.workload_weights)


def test_differentiable_minmax_resimulates_and_reports_surrogate_error(tmp_path):
    st = tmp_path / "mmd.sqlite"
    r = run_sweep(_sweep("minmax", method="differentiable", fit_samples=10, holdout=4, steps=120, trade_offs=4), st,
                  workers=1)
    assert sum(r.workload_weights.values()) == pytest.approx(1.0)
    errs = r.search_info["surrogate_error"]
    assert set(errs) == set(r.workload_weights) and all(e["points"] == 4 for e in errs.values())
    assert all(np.isfinite(e["mean_rel_err"]) and e["mean_rel_err"] < 1.0 for e in errs.values())
    df = load(st, sweep=r.sweep)
    assert len(df) == 2 * r.best["designs"] and (df["status"] == "ok").all()  # every design on both workloads
    assert r.best["worst"] == pytest.approx(max(r.best["per_workload"].values()))


@pytest.mark.parametrize("change, field", [
    (lambda s: s.update(workloads=["zoo:tiny_cnn"]), "objectives[0]"),
    (lambda s: s.update(objectives=[{"metric": "latency_ms", "aggregate": "minmax"}, "energy_uj"]), "objectives[0]"),
    (lambda s: s.update(search={"method": "nsga2"}), "search.method"),
    (lambda s: s.update(objectives=[{"metric": "accuracy", "aggregate": "minmax"}]), "objectives"),
    (lambda s: s.update(objectives=[{"metric": "latency_ms", "normalize": "best"}]), "objectives[0]"),
    (lambda s: s.update(objectives=[{"metric": "latency_ms", "aggregate": "worst"}]), "objectives"),
])
def test_bad_aggregate_specs_name_the_field(change, field):
    sw = _sweep()
    change(sw)
    with pytest.raises(ConfigError) as ei:
        load_sweep(sw)
    assert ei.value.field is not None and ei.value.field.startswith(field)


def test_cli_exit_2_and_results_plot(tmp_path, capsys):
    bad = _sweep()
    bad["workloads"] = ["zoo:tiny_cnn"]
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(bad))
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "objectives[0]" in err and len(err.splitlines()) == 1
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_sweep()))
    st = tmp_path / "g.sqlite"
    assert main(["sweep", str(good), "--store", str(st), "--workers", "1", "--no-progress"]) == 0
    assert "workload weights:" in capsys.readouterr().out
    assert main(["results", str(st)]) == 0
    out = capsys.readouterr().out
    assert "workload weights" in out and "zoo:tiny_cnn 0." in out
    assert main(["plot", "--store", str(st), "--kind", "pareto", "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
