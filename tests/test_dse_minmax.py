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


def _kinked_space():
    """A 5 x 5 x 2 space and two workloads whose log-metric has kinks (|.|), so a quadratic surrogate fitted on
    a few random designs misplaces the min-max optimum; brute force gives the true one."""
    import math

    from accelsim.dse.relax import HardwareSpace

    sw = load_sweep({"name": "kinked", "hardware": HW, "workloads": ["zoo:tiny_cnn"],
                     "axes": {"rows": [16, 32, 64, 128, 256], "cols": [16, 32, 64, 128, 256], "dataflow": ["os", "ws"]}})

    def f(p):
        u, v = math.log2(p["rows"]), math.log2(p["cols"])
        a = math.exp(0.6 * abs(u - 8) + 0.3 * abs(v - 5)) * (1.0 if p["dataflow"] == "os" else 1.5)
        b = math.exp(0.5 * abs(u - 5) + 0.6 * abs(v - 7)) * (1.4 if p["dataflow"] == "os" else 1.0)
        return [a, b]

    return HardwareSpace(sw.hardware_axes), f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surrogate_game_refits_on_the_designs_it_picks(seed):
    """The defect behind examples/minmax_codesign.py missing the grid's answer: the surrogates were fitted once
    and the game's end point (where they extrapolate worst) was trusted. Closed-loop refinement reaches the
    brute-force optimum; one open-loop round (the old behaviour) does not; fit designs are candidates too."""
    from accelsim.dse.minmax import distinct_sampler, surrogate_game

    hs, f = _kinked_space()
    grid = [{"rows": r, "cols": c, "dataflow": d} for r in (16, 32, 64, 128, 256) for c in (16, 32, 64, 128, 256)
            for d in ("os", "ws")]
    worst = {tuple(p.values()): max(f(p)) for p in grid}
    optimum = min(worst.values())
    calls: list[dict] = []

    def evaluate(ps):
        calls.extend(ps)
        return np.array([f(p) for p in ps])

    def run(refine):
        rng = np.random.default_rng(seed)
        calls.clear()
        gs = surrogate_game(hs, evaluate, distinct_sampler(lambda: hs.sample(rng)), aggregate="minmax", normalize="none", fit_samples=8, holdout=2,
                            refine=refine, steps=200, lr=0.05, weight_lr=0.5)
        assert calls == gs.designs and len({tuple(p.values()) for p in calls}) == len(calls)  # nothing twice
        assert len(calls) <= 8 + 2 + refine and gs.M.shape == (len(calls), 2)
        assert sum(gs.weights) == pytest.approx(1.0)
        best = solve_game(gs.M, "max")
        # the answer is the best exactly simulated design, fit and held-out designs included
        assert gs.M[best.best].max() == pytest.approx(min(max(f(p)) for p in calls))
        return worst[tuple(gs.designs[best.best].values())]

    assert run(refine=8) == pytest.approx(optimum)
    assert run(refine=1) > optimum * 1.1  # one open-loop round trusts the surrogate where it is wrong


def test_differentiable_minmax_on_a_space_smaller_than_its_samples(tmp_path):
    """fit_samples + holdout above the number of designs (18): each design is simulated at most once, none twice."""
    st = tmp_path / "small.sqlite"
    r = run_sweep(_sweep("minmax", method="differentiable", fit_samples=16, holdout=4, steps=60, trade_offs=3), st,
                  workers=1)
    df = load(st, sweep=r.sweep)
    assert r.best["designs"] <= 18 and len(df) == 2 * r.best["designs"] and df["key"].nunique() == len(df)
    assert r.search_info["fit_simulations"] + r.search_info["holdout_simulations"] <= 2 * r.best["designs"]
    assert r.best["worst"] == pytest.approx(max(r.best["per_workload"].values()))
