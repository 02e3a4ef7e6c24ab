"""Latency-constrained per-layer density search: the simulator is the latency model.

Mechanism checks: a returned point never exceeds the target when re-simulated; a tighter target
gives lower density (the proxy never rises); the knapsack equals brute force; bad specs are
one-line errors naming the field.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from accelsim.api import simulate
from accelsim.dse.constrained import apply_densities, constrained_density_search, kept_weight_score
from accelsim.errors import ConfigError, InfeasibleError
from accelsim.hardware.io import load_hardware
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent
SPARSE = ROOT / "hw_configs" / "systolic_32x32_os_sparse.yaml"
LEVELS = (1.0, 0.5, 0.25)


@pytest.fixture(scope="module")
def setup():
    # fold order: the sparse modes lower on it, so dense and pruned layers are timed alike
    wl, hw = get_model("tiny_cnn"), load_hardware(SPARSE).model_copy(update={"mapping": "scalesim"})
    dense = simulate(wl, hw, compare_dense=False)
    return wl, hw, dense.latency_cycles / (dense.clock_mhz * 1e3)


def _ms(wl, hw):
    r = simulate(wl, hw, compare_dense=False)
    return r.latency_cycles / (r.clock_mhz * 1e3)


def test_never_over_target_and_tighter_means_sparser(setup):
    wl, hw, dense_ms = setup
    prev = None
    for frac in (1.0, 0.9, 0.75, 0.65, 0.56):
        res = constrained_density_search(wl, hw, dense_ms * frac, levels=LEVELS)
        assert res.latency_ms <= res.target_ms
        assert _ms(apply_densities(wl, res.densities), hw) == pytest.approx(res.latency_ms)
        assert res.dense_latency_ms == pytest.approx(dense_ms)
        if frac == 1.0:
            assert set(res.densities.values()) == {1.0}
        if prev is not None:
            assert res.score <= prev.score + 1e-12
            kept = sum(d * wl[n].weight_words for n, d in res.densities.items())
            kept_prev = sum(d * wl[n].weight_words for n, d in prev.densities.items())
            assert kept <= kept_prev
        prev = res
    assert prev.mean_density < 1.0


def test_knapsack_equals_brute_force(setup):
    wl, hw, dense_ms = setup
    target = dense_ms * 0.7
    score = kept_weight_score(wl)
    names = [l.name for l in wl.layers if l.op in ("conv2d", "linear")]
    best = None
    for combo in itertools.product(LEVELS, repeat=len(names)):
        dens = dict(zip(names, combo))
        if _ms(apply_densities(wl, dens), hw) <= target:
            val = sum(score(n, d) for n, d in dens.items())
            best = val if best is None else max(best, val)
    res = constrained_density_search(wl, hw, target, levels=LEVELS)
    assert res.score == pytest.approx(best)


def test_score_table_and_errors(setup):
    wl, hw, dense_ms = setup
    table = {n: {1.0: 1.0, 0.5: 0.2, 0.25: 0.1} for n in ("conv1", "conv2")}
    table["fc"] = {1.0: 1.0, 0.5: 0.99, 0.25: 0.98}  # fc barely matters: prune it first
    res = constrained_density_search(wl, hw, dense_ms * 0.9, table, levels=LEVELS)
    assert res.densities["fc"] < 1.0 and res.densities["conv1"] == 1.0
    with pytest.raises(InfeasibleError, match="below what the sparsest levels reach"):
        constrained_density_search(wl, hw, dense_ms * 0.01, levels=LEVELS)
    for kw, field in (({"levels": (1.0, 1.5)}, "levels"), ({"layers": ["nope"]}, "layers")):
        with pytest.raises(ConfigError, match=field) as exc:
            constrained_density_search(wl, hw, dense_ms, **kw)
        assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="target_latency_ms"):
        constrained_density_search(wl, hw, -1.0)
    with pytest.raises(ConfigError, match="no score for layer"):
        constrained_density_search(wl, hw, dense_ms * 0.9, {"conv1": {1.0: 1.0}}, levels=LEVELS)


def test_sweep_file_hook(tmp_path):
    """``workloads: [{constrained: {...}}]``: the pruned workload is swept and stored like any other."""
    from accelsim.dse import load, load_sweep, run_sweep

    # fold order: the sparse modes lower on it, so dense and pruned layers are timed alike
    wl, hw = get_model("tiny_cnn"), load_hardware(SPARSE).model_copy(update={"mapping": "scalesim"})
    dense_ms = _ms(wl, hw)
    target = round(dense_ms * 0.7, 9)
    sweep = {"name": "cp", "hardware": str(SPARSE), "axes": {"dram.bw_gbps": [25.6, 12.8]},
             "workloads": ["zoo:tiny_cnn", {"constrained": {"workload": "zoo:tiny_cnn", "target_latency_ms": target,
                                                            "levels": list(LEVELS)}}]}
    res = run_sweep(sweep, tmp_path / "cp.sqlite", workers=1)
    assert res.evaluated == 4
    df = load(tmp_path / "cp.sqlite")
    label = f"constrained:zoo:tiny_cnn@{target:g}ms"
    assert set(df["workload"]) == {"zoo:tiny_cnn", label}
    at_base = df[(df["workload"] == label) & (df["dram.bw_gbps"] == 25.6)]["latency_ms"].iloc[0]
    dense = df[(df["workload"] == "zoo:tiny_cnn") & (df["dram.bw_gbps"] == 25.6)]["latency_ms"].iloc[0]
    assert at_base <= target < dense
    for bad, field in (({"workload": "zoo:tiny_cnn"}, "target_latency_ms"),
                       ({"workload": "zoo:tiny_cnn", "target_latency_ms": dense_ms * 0.01}, "workloads[0].constrained"),
                       ({"workload": "zoo:tiny_cnn", "target_latency_ms": 1, "levels": [2.0]}, "workloads[0].constrained")):
        with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")) as exc:
            load_sweep({**sweep, "workloads": [{"constrained": bad}]})
        assert "\n" not in str(exc.value)


def test_non_additive_latency_is_caught_by_re_simulation(setup, monkeypatch):
    """If the whole network is slower than the sum of its priced layers, the search tightens and retries."""
    import accelsim.api as api
    from types import SimpleNamespace

    wl, hw, dense_ms = setup
    real = api.simulate
    penalty = 150  # cycles added to any network with a pruned layer, invisible in the per-layer prices

    def skewed(workload, hardware, **kw):
        rep = real(workload, hardware, **kw)
        pruned = any(l.compression.sparsity.density < 1 for l in workload.layers)
        mixed = len({l.compression.sparsity.density for l in workload.layers if l.op in ("conv2d", "linear")}) > 1
        extra = penalty if pruned and mixed else 0
        return SimpleNamespace(latency_cycles=rep.latency_cycles + extra, clock_mhz=rep.clock_mhz, layers=rep.layers)

    monkeypatch.setattr(api, "simulate", skewed)
    target = dense_ms * 0.8
    res = constrained_density_search(wl, hw, target, levels=LEVELS)
    assert res.latency_ms <= target
    assert skewed(apply_densities(wl, res.densities), hw, compare_dense=False).latency_cycles / 1e6 == pytest.approx(
        res.latency_ms)
    assert res.rounds >= 2  # the first knapsack answer was over the target once re-simulated
