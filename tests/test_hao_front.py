"""HAO completion: accuracy predictor, bit widths as integer-program decisions, accuracy-latency fronts.

Mechanism checks: the predictor recovers a known additive model and reports a measured held-out
error; the pipeline front with per-stage bit widths equals exhaustive enumeration on small
instances; every front is non-dominated; overlay front points are re-simulated by the engine.
"""
from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from accelsim import cli
from accelsim.dse.fpga.front import exhaustive_pipeline_front, overlay_front, pipeline_front, with_uniform_bits
from accelsim.dse.fpga.ilp import OverlaySpace, PipelineSpace, _stage_options
from accelsim.dse.fpga.predictor import AccuracyPredictor, fit_predictor
from accelsim.errors import ConfigError
from accelsim.hardware.fpga import macs_per_dsp
from accelsim.hardware.io import hardware_from_dict
from accelsim.workload.layer import Conv2d, Linear
from accelsim.workload.workload import Workload
from accelsim.workload.zoo import get_model

ROOT = Path(__file__).resolve().parent.parent


def fpga(**kw):
    data = dict(kind="fpga", name="t", device="zu3eg", clock_mhz=200, pe_in=8, pe_out=8, pe_pix=1,
                ifmap_sram={"size_kb": 64}, filter_sram={"size_kb": 64}, ofmap_sram={"size_kb": 64},
                dram={"bw_gbps": 4.26})
    data.update(kw)
    return hardware_from_dict(data)


def _synthetic(layers, bits=(4, 8), noise=0.0, seed=0, densities=(1.0,)):
    """Samples from a known additive model: per-layer penalties for fewer bits and lower density."""
    rng = np.random.default_rng(seed)
    true_w = {n: {4: -0.01 * (i + 1), 8: 0.0, 2: -0.1 * (i + 1)} for i, n in enumerate(layers)}
    samples, accs = [], []
    for combo in itertools.product(bits, repeat=len(layers)):
        for d in densities:
            s = {n: {"weight_bits": b, "act_bits": b, "density": d} for n, b in zip(layers, combo)}
            a = 0.95 + sum(true_w[n][b] for n, b in zip(layers, combo)) - 0.05 * len(layers) * (1 - d) ** 2
            samples.append(s)
            accs.append(a + noise * rng.standard_normal())
    return samples, accs


def test_predictor_recovers_an_additive_model_and_reports_held_out_error(tmp_path):
    names = ["a", "b", "c"]
    samples, accs = _synthetic(names, bits=(2, 4, 8), densities=(1.0, 0.5, 0.25))
    p = fit_predictor(samples, accs, ridge=1e-8)
    assert p.n_test == round(0.25 * len(accs)) and p.n_train + p.n_test == len(accs)
    assert p.holdout_mae < 1e-4  # noise-free additive data: exact up to the ridge
    # the terms equal the generating model (weights and activations share each bit penalty)
    assert p.term("b", 4, 4) == pytest.approx(-0.02, abs=1e-4)
    assert p.term("c", 2, 2) == pytest.approx(-0.3, abs=1e-4)
    assert p.uniform(8) == pytest.approx(0.95, abs=1e-4)
    assert p.predict({"a": {"weight_bits": 8, "density": 0.5}}) == pytest.approx(0.95 - 0.05 * 0.25, abs=1e-4)
    # noisy measurements: the held-out error is measured and of the noise's size
    samples, accs = _synthetic(names, bits=(2, 4, 8), noise=0.01, seed=1, densities=(1.0, 0.5))
    q = fit_predictor(samples, accs)
    assert 0.002 < q.holdout_mae < 0.03 and q.holdout_max_abs_error >= q.holdout_mae
    q.save(tmp_path / "p.json")
    r = AccuracyPredictor.load(tmp_path / "p.json")
    assert r.predict(samples[3]) == pytest.approx(q.predict(samples[3]))


def test_predictor_bad_input():
    with pytest.raises(ConfigError, match="need >= 4"):
        fit_predictor([{"a": {"weight_bits": 8}}], [0.9])
    samples, accs = _synthetic(["a", "b"])
    p = fit_predictor(samples, accs)
    with pytest.raises(ConfigError, match="outside the fitted set"):
        p.term("a", 3, 3)
    with pytest.raises(ConfigError, match="not in the predictor"):
        p.predict({"zz": {"weight_bits": 8}})


def test_stage_bits_change_dsp_packing():
    """A 4-bit stage packs more MACs per DSP (WP486-style packing) and stores fewer weight bits."""
    layer = Conv2d(name="c", in_channels=16, out_channels=32, in_h=8, in_w=8, kernel=3, padding=1)
    base = fpga()
    o8 = {(o.pe_in, o.pe_out, o.memory): o for o in _stage_options(layer, base, PipelineSpace(parallel=(4, 16)), ("bram",), 8)}
    o4 = {(o.pe_in, o.pe_out, o.memory): o for o in _stage_options(layer, base, PipelineSpace(parallel=(4, 16)), ("bram",), 4)}
    assert macs_per_dsp(4, 4, 16, 1, False, True, base.costs.dsp_macs_low_bit) > macs_per_dsp(8, 8, 16, 1, False, True, 2)
    for key in o8:
        assert o4[key].cycles == o8[key].cycles
        assert o4[key].res.dsp < o8[key].res.dsp
        assert (o4[key].weight_bits, o8[key].weight_bits) == (4, 8)


def _rand_wl(seed: int) -> Workload:
    rng = random.Random(seed)
    c, h, layers = 3, 8, []
    for i in range(3):
        out = rng.choice([8, 16, 32])
        layers.append(Conv2d(name=f"c{i}", in_channels=c, out_channels=out, in_h=h, in_w=h, kernel=3, padding=1))
        c = out
    layers.append(Linear(name="fc", in_features=c * h * h, out_features=10))
    return Workload(name=f"r{seed}", layers=layers)


@pytest.mark.parametrize("seed, dsp", [(1, 16), (2, 24), (3, 40)])
def test_pipeline_front_equals_brute_force(seed, dsp):
    wl = _rand_wl(seed)
    names = [l.name for l in wl.layers]
    samples, accs = _synthetic(names, bits=(4, 8), noise=0.002, seed=seed)
    pred = fit_predictor(samples, accs)
    base = fpga(budget={"dsp": dsp, "bram18": 200})
    space = PipelineSpace(parallel=(1, 4, 16), bits=(4, 8))
    got = pipeline_front(wl, base, pred, space)
    ref = exhaustive_pipeline_front(wl, base, pred, space)
    key = lambda f: [(p.latency_cycles, round(p.predicted_accuracy, 9)) for p in f.points]  # noqa: E731
    assert key(got) == key(ref)
    assert len(got.points) >= 2 and got.complete == "yes"
    capped = pipeline_front(wl, base, pred, space, max_points=1)
    assert len(capped.points) == 1 and "max_points" in capped.complete and "INCOMPLETE" in capped.text()
    # non-dominated and consistent: faster <=> less accurate; each point's accuracy is the predictor's
    for a, b in zip(got.points, got.points[1:]):
        assert a.latency_cycles < b.latency_cycles and a.predicted_accuracy < b.predicted_accuracy
    for p in got.points:
        cfg = {n: {"weight_bits": w, "act_bits": a} for n, (w, a) in p.bits.items()}
        assert p.predicted_accuracy == pytest.approx(pred.predict(cfg), abs=1e-9)
        assert p.detail["dsp"] <= base.fits().limit["dsp"]


def test_pipeline_front_loop_does_not_repeat_a_point_within_solver_tolerance():
    """Regression (digits predictor of examples/hao_front.py, seed 0): with the accuracy step at the
    solver's feasibility tolerance the loop returned 4/4/8 fifty times (100 solves, truncated)."""
    # the fitted coefficients at full precision (rounded ones do not hit the tolerance)
    wt = {"conv1": {"8": 0.0, "2": -0.0033895192174547588, "3": -0.0011024317052838102, "4": 0.0012539677699951934},
          "conv2": {"8": 0.0, "2": -0.052839233524212534, "3": -0.004948903511882381, "4": 0.002466818480412356},
          "fc": {"8": 0.0, "2": -0.2327439734186496, "3": -0.0014704118810262715, "4": -0.0013317991083741916}}
    at = {"conv1": {"8": 0.0, "2": -0.0033895192174547457, "3": -0.0011024317052837765, "4": 0.0012539677699951572},
          "conv2": {"8": 0.0, "2": -0.05283923352421229, "3": -0.004948903511882349, "4": 0.0024668184804123297},
          "fc": {"8": 0.0, "2": -0.23274397341864864, "3": -0.0014704118810265926, "4": -0.0013317991083741695}}
    pred = AccuracyPredictor(layers=["conv1", "conv2", "fc"], bits=[2, 3, 4, 8], intercept=0.9950041347700689,
                             weight_bit_terms=wt, act_bit_terms=at, density_terms={n: [0.0, 0.0] for n in wt})
    f = pipeline_front(get_model("tiny_cnn"), fpga(budget={"dsp": 16}), pred, PipelineSpace(bits=(2, 3, 4, 8)))
    assert f.complete == "yes" and f.solves <= 6
    # the most accurate stage widths (4, 4, 8) are also the fastest: 2/3/4-bit pack alike, fc is not the bottleneck
    assert len(f.points) == 1 and f.points[0].bits == {"conv1": (4, 4), "conv2": (4, 4), "fc": (8, 8)}


def test_overlay_front_is_simulated_and_non_dominated():
    wl = get_model("tiny_cnn")
    names = [l.name for l in wl.layers if l.op in ("conv2d", "linear")]
    samples, accs = _synthetic(names, bits=(4, 8))
    pred = fit_predictor(samples, accs)
    base = fpga(budget={"dsp": 60})
    space = OverlaySpace(pe_in=(4, 8, 16), pe_out=(4, 8, 16), pe_pix=(1, 2), depths=(512, 1024), memories=("bram",))
    front = overlay_front(wl, base, pred, (4, 8), space)
    assert [p.bits["conv1"] for p in front.points] == [(4, 4), (8, 8)]
    for p in front.points:
        assert p.simulated and p.latency_cycles == p.simulated["latency_cycles"]
        assert p.simulated["latency_cycles"] >= p.detail["est_cycles"]  # the simulator is never faster
        assert 0 < p.simulated["utilization"] <= 1
    a, b = front.points
    assert a.latency_cycles < b.latency_cycles and a.predicted_accuracy < b.predicted_accuracy
    q = with_uniform_bits(wl, 4, 4)
    assert all(l.compression.quant.weight_bits == 4 for l in q.layers)


@pytest.fixture
def run_cli(monkeypatch, capsys):
    mods = list(cli.SUBCOMMAND_MODULES)
    if "accelsim.dse.fpga.cli" not in mods:
        mods.append("accelsim.dse.fpga.cli")
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", mods)

    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_front(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default results store is written to the working directory
    names = ["conv1", "conv2", "fc"]
    samples, accs = _synthetic(names, bits=(4, 8))
    fit_predictor(samples, accs).save(tmp_path / "p.json")
    code, out, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", "zu3eg", "--front", "--mode", "pipeline",
                             "--predictor", tmp_path / "p.json", "--parallel", "1,4,16", "--out", tmp_path / "f.json",
                             "--plot", tmp_path / "f.png")
    assert code == 0, err
    assert "accuracy-latency front on zu3eg (pipeline" in out
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["points"] and all("bits" in p for p in data["points"])
    assert (tmp_path / "f.png").stat().st_size > 1000
    code, _, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", "zu3eg", "--front")
    assert code == 2 and err.count("\n") == 1 and "--predictor" in err
    code, _, err = run_cli("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", "zu3eg", "--front",
                           "--predictor", tmp_path / "p.json", "--bits", "3,8")
    assert code == 2 and err.count("\n") == 1 and "bits" in err


def test_example_measures_fits_and_solves(tmp_path, monkeypatch, capsys):
    """examples/hao_front.py end to end at a small scale: measured points -> predictor -> fronts."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        ex = importlib.import_module("hao_front")
    finally:
        sys.path.remove(str(ROOT / "examples"))
    out = tmp_path / "p.json"
    monkeypatch.setattr(sys, "argv", ["hao_front.py", "--epochs", "2", "--bits", "4,8", "--pipeline-budgets", "dsp=16",
                                      "--predictor-out", str(out), "--store", str(tmp_path / "ex.sqlite")])
    assert ex.main() == 0
    text = capsys.readouterr().out
    pred = AccuracyPredictor.load(out)
    assert pred.n_train + pred.n_test == 8 and pred.holdout_mae == pred.holdout_mae  # measured, not NaN
    assert f"MAE {pred.holdout_mae:.4f}" in text and "| dsp=16 |" in text and "us |" in text
    from accelsim.dse.store import load

    df = load(tmp_path / "ex.sqlite", status="ok")  # both fronts stored with the example's measured accuracy
    assert set(df["sweep"]) >= {"hao_tiny_cnn_zu3eg_overlay", "hao_tiny_cnn_zu3eg_pipeline_dsp_16"}
    assert (df["accuracy_measured"] == 1).all() and (df["accuracy"] == df["measured_accuracy"]).all()
    for _, r in df.iterrows():  # the measured figure is the one the predictor was fitted on for that configuration
        bits = {n: (int(r[f"bits.{n}.weight"]), int(r[f"bits.{n}.act"])) for n in ("conv1", "conv2", "fc")}
        assert r["measured_accuracy"] == pytest.approx(pred.measured_accuracy(bits))


def test_overlay_width_decision_equals_brute_force():
    """The overlay's datapath width (one-hot, solved by decomposition) against exhaustive enumeration."""
    from accelsim.dse.fpga.ilp import exhaustive_overlay
    from accelsim.hardware.fpga import FpgaAccelerator

    wl = _rand_wl(5)
    names = [l.name for l in wl.layers]
    pred = fit_predictor(*_synthetic(names, bits=(4, 8)))
    base = fpga(budget={"dsp": 30, "bram18": 80})
    space = OverlaySpace(pe_in=(4, 8, 16), pe_out=(4, 8), pe_pix=(1, 2), depths=(512, 1024, 2048), memories=("bram",))
    front = overlay_front(wl, base, pred, (4, 8), space, simulate=False)
    best = {}
    for b in (4, 8):
        hw_b = FpgaAccelerator.model_validate({**base.model_dump(), "weight_bits": b, "act_bits": b})
        best[b] = exhaustive_overlay(with_uniform_bits(wl, b, b), hw_b, space).est_cycles
    for p in front.points:
        assert p.latency_cycles == p.detail["est_cycles"] == best[p.bits["c0"][0]]
    # the fastest point is the best over both widths (the joint optimum of the width decision)
    assert front.points[0].latency_cycles == min(best.values())


def test_cli_front_stored_like_sweep_points(run_cli, tmp_path):
    """--front stores every front point in the results store; a rerun adds nothing; results/plot read it."""
    from accelsim.dse.store import ResultsStore, load

    names = ["conv1", "conv2", "fc"]
    samples, accs = _synthetic(names, bits=(4, 8))
    fit_predictor(samples, accs).save(tmp_path / "p.json")
    db = tmp_path / "hao.sqlite"
    argv = ("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", "zu3eg", "--front", "--predictor", tmp_path / "p.json",
            "--out", tmp_path / "f.json", "--store", db)
    code, out, err = run_cli(*argv)
    assert code == 0, err
    front = json.loads((tmp_path / "f.json").read_text())["points"]
    df = load(db, sweep="hao_tiny_cnn_zu3eg_overlay", status="ok")
    n_all = len(df)
    df = df[df["on_front"] == 1].sort_values("latency_cycles")
    assert len(df) == len(front) >= 1
    assert list(df["latency_cycles"]) == sorted(p["latency_cycles"] for p in front)
    assert list(df["predicted_accuracy"]) == pytest.approx(sorted(p["predicted_accuracy"] for p in front))
    assert (df["on_front"] == 1).all() and (df["simulated"] == 1).all()
    for p in front:  # the stored figures are the re-simulated ones
        row = df[df["latency_cycles"] == p["simulated"]["latency_cycles"]].iloc[0]
        assert row["energy_pj"] == pytest.approx(p["simulated"]["energy_pj"])
        assert row["bits.conv1.weight"] == p["bits"]["conv1"][0]
    code, _, err = run_cli(*argv)
    assert code == 0 and "0 new" in err
    with ResultsStore(db) as st:
        assert st.count() == n_all and st.count(sweep="hao_tiny_cnn_zu3eg_overlay") == n_all
    code, out, _ = run_cli("results", db)
    assert code == 0 and f"sweep 'hao_tiny_cnn_zu3eg_overlay': {n_all} points" in out
    code, _, err = run_cli("plot", "--store", db, "--kind", "pareto", "--out", tmp_path / "front.png")
    assert code == 0, err
    assert (tmp_path / "front.png").stat().st_size > 1000


def test_store_pipeline_front_with_measured_accuracy(tmp_path):
    """Python API: a pipeline front stored with a measured-accuracy callback; one row per front point."""
    from accelsim.dse.fpga.front import store_front
    from accelsim.dse.store import load

    wl = _rand_wl(1)
    names = [l.name for l in wl.layers]
    pred = fit_predictor(*_synthetic(names, bits=(4, 8), seed=1))
    base = fpga(budget={"dsp": 60, "bram18": 200})
    front = pipeline_front(wl, base, pred, PipelineSpace(parallel=(1, 4, 16), bits=(4, 8)))

    def measured(bits):  # a stand-in for quantise-and-evaluate: 0.9 + 0.01 per 8-bit layer
        return 0.9 + 0.01 * sum(w == 8 for w, _ in bits.values())

    run = store_front(front, wl, base, tmp_path / "s.sqlite", "pipe", measured=measured)
    assert run.requested == run.evaluated == len(front.points) + len(front.dominated) and len(front.points) >= 2
    df = load(tmp_path / "s.sqlite", sweep="pipe", status="ok")
    df = df[df["on_front"] == 1].sort_values("latency_cycles")
    assert list(df["latency_cycles"]) == [p.latency_cycles for p in front.points]
    want = [measured(p.bits) for p in front.points]
    assert list(df["measured_accuracy"]) == pytest.approx(want) and list(df["accuracy"]) == pytest.approx(want)
    assert list(df["predicted_accuracy"]) == pytest.approx([p.predicted_accuracy for p in front.points])
    assert (df["simulated"] == 0).all() and df["key"].nunique() == len(df)
    assert store_front(front, wl, base, tmp_path / "s.sqlite", "pipe", measured=measured).evaluated == 0


def test_cli_front_stores_measured_accuracy_and_a_rerun_fills_it_in(run_cli, tmp_path):
    """(a) the predictor file's measured points give the stored front points a measured accuracy; (c) a store
    written without measurements gets them on a rerun with --measured: same rows, no duplicates."""
    from accelsim.dse.store import ResultsStore, load

    names = ["conv1", "conv2", "fc"]
    samples, accs = _synthetic(names, bits=(4, 8))
    pred = fit_predictor(samples, accs)
    assert len(pred.measured) == 8 and pred.measured_accuracy({n: (8, 8) for n in names}) == pytest.approx(0.95)
    assert pred.measured_accuracy({"conv1": (4, 4), "conv2": (8, 8), "fc": (8, 8)}) == pytest.approx(0.94)
    pred.save(tmp_path / "p.json")
    truth = {tuple(s[n]["weight_bits"] for n in names): a for s, a in zip(samples, accs)}

    def rows(db):
        df = load(db, sweep="hao_tiny_cnn_zu3eg_overlay", status="ok")
        return df.assign(b=[tuple(int(r[f"bits.{n}.weight"]) for n in names) for _, r in df.iterrows()])

    base = ("fpga-optimize", "-w", "zoo:tiny_cnn", "--device", "zu3eg", "--front")
    code, _, err = run_cli(*base, "--predictor", tmp_path / "p.json", "--store", tmp_path / "a.sqlite")
    assert code == 0, err
    df = rows(tmp_path / "a.sqlite")
    assert (df["accuracy_measured"] == 1).all()  # uniform bit widths: every overlay point was measured
    assert list(df["measured_accuracy"]) == pytest.approx([truth[b] for b in df["b"]])
    assert list(df["accuracy"]) == pytest.approx(list(df["measured_accuracy"]))

    # a predictor file without its measured points: predicted accuracy only
    data = json.loads((tmp_path / "p.json").read_text())
    data["measured"] = []
    (tmp_path / "bare.json").write_text(json.dumps(data))
    db = tmp_path / "b.sqlite"
    code, _, err = run_cli(*base, "--predictor", tmp_path / "bare.json", "--store", db)
    assert code == 0 and "0 with measured accuracy" in err
    before = rows(db)
    assert (before["accuracy_measured"] == 0).all() and before.get("measured_accuracy") is None
    # only the all-8-bit configuration measured: the rerun fills in that point and nothing else
    (tmp_path / "m.json").write_text(json.dumps([{"config": {n: {"weight_bits": 8, "act_bits": 8} for n in names},
                                                  "accuracy": 0.9}]))
    code, _, err = run_cli(*base, "--predictor", tmp_path / "bare.json", "--measured", tmp_path / "m.json", "--store", db)
    assert code == 0 and "0 new" in err and "1 given their measured accuracy now" in err, err
    after = rows(db).set_index("key").loc[before["key"]]
    assert len(after) == len(before) and after.index.is_unique
    with ResultsStore(db) as st:
        assert st.count() == len(before)
    eight = after["b"] == (8, 8, 8)
    assert eight.sum() == 1 and after.loc[eight, "measured_accuracy"].iloc[0] == pytest.approx(0.9)
    assert after.loc[eight, "accuracy"].iloc[0] == pytest.approx(0.9) and after.loc[eight, "accuracy_measured"].iloc[0] == 1
    assert after.loc[~eight, "measured_accuracy"].isna().all() and (after.loc[~eight, "accuracy_measured"] == 0).all()
    assert list(after.loc[~eight, "accuracy"]) == pytest.approx(list(after.loc[~eight, "predicted_accuracy"]))
    code, _, err = run_cli(*base, "--predictor", tmp_path / "bare.json", "--measured", tmp_path / "m.json", "--store", db)
    assert code == 0 and "0 given their measured accuracy now" in err  # already filled: nothing rewritten
    (tmp_path / "bad.json").write_text(json.dumps([{"config": {"conv1": {"weight_bits": 8}}}]))
    code, _, err = run_cli(*base, "--predictor", tmp_path / "bare.json", "--measured", tmp_path / "bad.json")
    assert code == 2 and err.count("\n") == 1 and "bad.json" in err and "[0]" in err


def test_front_stores_dominated_evaluated_points(tmp_path):
    """(b) the dominated configurations the integer program evaluated are stored with on_front 0, and each is
    (weakly) dominated by a stored front point; the front points keep on_front 1."""
    from accelsim.dse.fpga.front import store_front
    from accelsim.dse.store import load

    wl = _rand_wl(1)
    names = [l.name for l in wl.layers]
    pred = fit_predictor(*_synthetic(names, bits=(4, 8), seed=1))
    base = fpga(budget={"dsp": 60, "bram18": 200})
    front = pipeline_front(wl, base, pred, PipelineSpace(parallel=(1, 4, 16), bits=(4, 8)))
    assert front.dominated and front.to_dict()["dominated_points"] == len(front.dominated)
    run = store_front(front, wl, base, tmp_path / "s.sqlite", "pipe")
    df = load(tmp_path / "s.sqlite", sweep="pipe", status="ok")
    on, off = df[df["on_front"] == 1], df[df["on_front"] == 0]
    assert len(on) == len(front.points) and len(off) == len(front.dominated) == run.requested - len(front.points)
    for _, r in off.iterrows():
        assert ((on["latency_cycles"] <= r["latency_cycles"]) & (on["predicted_accuracy"] >= r["predicted_accuracy"] - 1e-9)).any()
    assert df["key"].nunique() == len(df)
